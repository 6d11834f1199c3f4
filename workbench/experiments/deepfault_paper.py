"""DeepFault at the paper's scale: every published table with ours beside it, 95% intervals
over independent replicates, and a verdict per claim.

Eniser, Gerasimou and Sen (FASE 2019, arXiv 1902.05974v1, section 5). The grid of
:func:`workbench.experiments.deepfault.run_grid` runs on each model of Table 2, with the
authors' released weights and with ours (:func:`load_entries`), ``n_replicates`` times: each
replicate draws new seeds and random neurons, and for our trained models also trains from a
new seed (``seed + replicate``). A Table 3 cell of one replicate averages 10 seeds per class
(100 inputs; random: 5 draws, 500 inputs), as the paper; the cell's value here is the mean over
the replicates and its interval the Student-t 95% interval of that mean
(:func:`workbench.stats.mean_interval`). Since each replicate is one run of the paper's size and
each published value one such run, a table also gives the 95% *prediction* interval of one run
(``pi95``): ``in_run`` says whether the paper's value is what one of our runs could give,
``inside`` whether it matches our mean to our precision (both give or take the paper's rounding).

Tables (one function each, rows for :func:`workbench.experiments.common.save_table`): :func:`table2`
(models), :func:`table3` and :func:`significance` (loss and accuracy on synthesised inputs,
Mann-Whitney U and A12 against random neurons), :func:`table4` (distances), :func:`table5` and
:func:`neighbour_table` (activation increases, appendix Tables 6-7), :func:`layers` (RQ3: where
the suspicious neurons sit), :func:`table10` (time) and :func:`budget_gap` (suspicious against
random at a matched perturbation budget: not in the paper);
:mod:`workbench.experiments.deepfault_verdicts` turns them into a verdict per claim.

Every "paper" value comes from :mod:`workbench.experiments.deepfault_published`, cited by
table. A run smaller than the paper's (:func:`is_paper_size`) is labelled by :func:`labelled`:
its ``ours`` column is renamed so that no ``ours - paper`` difference is drawn from it.
"""

import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from jaxtyping import ArrayLike, Shaped

from workbench import activations, stats, validation
from workbench import models as zoo
from workbench.experiments import common, deepfault
from workbench.experiments import deepfault_published as published

__all__ = [
    "REDUCED",
    "Entry",
    "budget_gap",
    "budget_matched",
    "figures",
    "is_paper_size",
    "labelled",
    "layers",
    "load_entries",
    "neighbour_table",
    "panels",
    "pick",
    "raw_l2_budget",
    "run",
    "run_cifar10",
    "run_info",
    "significance",
    "synthesis_label",
    "table2",
    "table3",
    "table3_means",
    "table4",
    "table5",
    "table10",
    "tables",
]

REDUCED = "ours (reduced sizes)"  # the ``ours`` column of a run smaller than the paper's
_RANDOM = "random"
_DISTANCES = ("l1", "l2", "linf")
_PIXEL_SCALE = {"mnist": 1.0, "cifar10": 255.0}  # Table 4's scale: CIFAR-10 on 0-255


class Entry(NamedTuple):
    """One model of the grid: a zoo model, its weights and replicate."""

    name: str  # zoo name
    weights: str  # "released" or "trained"
    replicate: int  # 0, 1, ...: seeds, random neurons and (trained) training seed
    model: Any  # the NNX model
    accuracy: float  # test accuracy
    train_seconds: float | None  # None for released weights or a cached checkpoint's unknown


def load_entries(names: Sequence[str], *, weight_sets: Sequence[str], n_replicates: int,
                 epochs: int | None = None, n_train: int | None = None, seed: int = 0,
                 cache=None, root=None) -> list[Entry]:
    """Each of ``names`` with each of ``weight_sets`` for each replicate.

    Released weights (:func:`workbench.models.released`) are loaded once and shared by the
    replicates; trained ones (:func:`workbench.experiments.common.load_model`, cached) use the
    training seed ``seed + replicate``. A model without released weights is skipped for
    ``"released"``.
    """
    n_replicates = validation.positive_int(n_replicates, "n_replicates")
    for weights in weight_sets:
        validation.choice(weights, "weight_sets", common.WEIGHTS)
    entries = []
    for name in names:
        for weights in weight_sets:
            if weights == "released" and name not in zoo.released_names():
                continue
            shared = common.load_model(name, weights="released", root=root) \
                if weights == "released" else None
            for r in range(n_replicates):
                result = shared or common.load_model(name, weights="trained", epochs=epochs,
                                                     n_train=n_train, seed=seed + r,
                                                     cache=cache, root=root)
                entries.append(Entry(name, weights, r, result.model, result.test_accuracy,
                                     result.train_seconds))
    return entries


def is_paper_size(*, dataset: str, classes: Sequence[int], k_values: Sequence[int],
                  n_seeds: int, n_random: int, n_replicates: int, step: float, d: float,
                  n_test: int, n_train: int | None) -> bool:
    """Whether a run has at least the paper's sizes: every class, the paper's ``k`` values,
    step and ``d``, 10 seeds per class, 5 random draws, the whole test set, the whole training
    set (``None``: the recipe's), and at least 5 replicates for the intervals.

    Example:
        >>> is_paper_size(dataset="mnist", classes=range(10), k_values=[1, 2, 3, 5, 10],
        ...               n_seeds=10, n_random=5, n_replicates=5, step=1.0, d=0.1,
        ...               n_test=10000, n_train=60000)
        True
    """
    return (set(classes) == set(range(10)) and tuple(k_values) == published.K_VALUES[dataset]
            and n_seeds >= 10 and n_random >= 5 and n_replicates >= 5
            and step == published.STEP[dataset] and d == published.D and n_test >= 10_000
            and (n_train is None or n_train >= common.TRAIN_SIZE[dataset]))


def synthesis_label(normalize: str, n_steps: int) -> str:
    """A short name for a synthesis setting: ``"raw"`` is Algorithm 2's single pass on the raw
    gradients (the default, as the released code), ``"rms"`` the paper-era code's
    RMS-normalised gradients, ``"<name>, <n> steps"`` the iterative variant.

    Example:
        >>> synthesis_label("none", 1), synthesis_label("rms", 1), synthesis_label("none", 10)
        ('raw', 'rms', 'raw, 10 steps')
    """
    name = "raw" if normalize == "none" else normalize
    return name if n_steps == 1 else f"{name}, {n_steps} steps"


def run(entries: Sequence[Entry], images: Shaped[ArrayLike, "n ..."],
        labels: Shaped[ArrayLike, " n"], *, key: ArrayLike, k_values: Sequence[int],
        step: float, d: float, normalizations: Sequence[str] = ("none",),
        neighbours: bool = True, **options) -> list[dict]:
    """The grid (:func:`workbench.experiments.deepfault.run_grid`, step ``step``) on every entry
    and for each of ``normalizations``, each entry with its own key (``fold_in(key,
    position)``, the same for every normalisation: the same seeds and random neurons).

    Args:
        entries: from :func:`load_entries`.
        images, labels: the test set the spectra and seeds come from.
        key: the source of every replicate's seeds and random neurons.
        k_values, step, d: the paper's ``k``, step size and maximum distance.
        normalizations: the synthesis gradients (``"none"``: Algorithm 2's raw gradient;
            ``"rms"``: the paper-era code's; see :mod:`workbench.synthesis`).
        neighbours: also measure the k' >= k neighbours (Tables 6-7).
        options: the rest of ``run_grid``'s (``classes``, ``measures``, ``n_seeds``,
            ``n_random``, ``n_steps``, ``ties``, ``batch_size``...).

    Returns:
        ``run_grid``'s rows, each led by ``dataset``, ``model``, ``weights``, ``synthesis``
        (:func:`synthesis_label`), ``replicate`` and ending with ``sites`` (the model's layers
        in order, space-separated).
    """
    key = validation.key(key)
    images = validation.images(np.asarray(images), "images")
    rows = []
    for normalize in normalizations:
        for i, entry in enumerate(entries):
            counts = activations.neuron_counts(entry.model, images.shape[1:], convention="pre")
            lead = {"dataset": zoo.dataset_of(entry.name), "model": entry.name,
                    "weights": entry.weights,
                    "synthesis": synthesis_label(normalize, options.get("n_steps", 1)),
                    "replicate": entry.replicate}
            found = deepfault.run_grid(
                entry.model, images, labels, key=jax.random.fold_in(key, i), k_values=k_values,
                step_sizes=[step], d=d, normalize=normalize,
                neighbours=k_values if neighbours else (), **options)
            rows += [{**lead, **row, "sites": " ".join(counts)} for row in found]
    return rows


def run_cifar10(entries: Sequence[Entry], *, key: ArrayLike, n_test: int | None, d: float,
                root=None, **options) -> list[dict]:
    """:func:`run` on CIFAR-10's first ``n_test`` test images with the paper's CIFAR-10 ``k``
    values and step size (``deepfault_published.K_VALUES`` / ``STEP``)."""
    test = common.load_data("cifar10", "test", n=n_test, root=root)
    return run(entries, test.images, test.labels, key=key,
               k_values=published.K_VALUES["cifar10"], step=published.STEP["cifar10"], d=d,
               **options)


def pick(entries: Sequence[Entry], name: str, weights: str) -> Any:
    """The first replicate's model called ``name`` with ``weights`` among ``entries``.

    Raises:
        ValueError: there is none.
    """
    for entry in entries:
        if (entry.name, entry.weights) == (name, weights):
            return entry.model
    raise ValueError(f"no {weights} {name!r} among the entries; there are "
                     f"{sorted({(e.name, e.weights) for e in entries})}")


def raw_l2_budget(rows: Sequence[Mapping], *, d: float) -> float:
    """The matched L2 budget: the median L2 distance of the suspicious neurons' raw
    single-pass runs among ``rows`` (:func:`workbench.experiments.deepfault.l2_budget`)."""
    return deepfault.l2_budget([r for r in rows if r["synthesis"] == "raw"], d=d)


def budget_matched(entries: Sequence[Entry], images: Shaped[ArrayLike, "n ..."],
                   labels: Shaped[ArrayLike, " n"], *, grid_rows: Sequence[Mapping], d: float,
                   key: ArrayLike, k_values: Sequence[int],
                   normalizations: Sequence[str] | None = None, **options) -> list[dict]:
    """:func:`run` again with every step of L-infinity size ``d`` (``normalize="sign"``) and
    of one L2 size (``normalize="l2"``): suspicious and random neurons then move the input
    equally far (not in the paper). The L2 size is the median L2 distance of the suspicious
    neurons' raw single-pass runs among ``grid_rows`` (:func:`raw_l2_budget`); ``options`` as
    for :func:`run`; ``normalizations`` is ignored (the budget sets the step), so the grid's
    options pass through unchanged."""
    del normalizations
    key = validation.key(key)
    l2_budget = raw_l2_budget(grid_rows, d=d)
    rows = []
    for i, (normalize, step) in enumerate((("sign", d), ("l2", l2_budget))):
        rows += run(entries, images, labels, key=jax.random.fold_in(key, i), k_values=k_values,
                    step=step, d=d, normalizations=[normalize], neighbours=False, **options)
    return rows


# ----------------------------------------------------------------------------- aggregation


def _groups(rows: Sequence[Mapping], keys: Sequence[str]) -> dict[tuple, list[Mapping]]:
    out: dict[tuple, list[Mapping]] = {}
    for row in rows:
        out.setdefault(tuple(row[k] for k in keys), []).append(row)
    return out


def _per_replicate(rows: Sequence[Mapping], keys: Sequence[str], value: str
                   ) -> dict[tuple, list[float]]:
    """``{key: [value per replicate]}``: the seed-weighted mean of ``value`` over the rows of
    each key and replicate (rows without the value are left out)."""
    out: dict[tuple, list[float]] = {}
    for key, members in _groups(rows, (*keys, "replicate")).items():
        pairs = [(m[value], m["seeds"]) for m in members if m.get(value) is not None]
        if pairs:
            v, w = np.array(pairs, np.float64).T
            out.setdefault(key[:-1], []).append(float((v * w).sum() / w.sum()))
    return out


def _interval(values: stats.Sample) -> tuple[float, float]:
    """Mean and 95% half-width (NaN for one value)."""
    return stats.mean_interval(values)


def _inside(paper: float | None, ours: float, half: float) -> bool | None:
    """Whether ``paper`` lies within ``half`` of ``ours``, give or take the paper's rounding
    (:func:`deepfault_published.rounding`); ``None`` without a paper value."""
    if paper is None:
        return None
    half = 0.0 if np.isnan(half) else half
    return bool(abs(ours - paper) <= half + published.rounding(paper) + 1e-12)


def _value_row(paper: float | None, values: Sequence[float], scale: float = 1.0) -> dict:
    """``paper``, ``ours`` (the mean over replicates), ``ci95`` (its 95% half-width), ``pi95``
    (the 95% prediction half-width of one more replicate: one paper-sized run,
    ``ci95 * sqrt(n + 1)``), ``inside`` (the paper's value in the confidence interval) and
    ``in_run`` (in the prediction interval)."""
    ours, half = _interval(np.asarray(values) * scale)
    run = half * np.sqrt(len(values) + 1)
    return {"replicates": len(values), "paper": paper, "ours": ours, "ci95": half,
            "pi95": run, "inside": _inside(paper, ours, half),
            "in_run": _inside(paper, ours, run)}


def _suspicious(rows: Sequence[Mapping]) -> list[Mapping]:
    return [r for r in rows if r["approach"] != _RANDOM]


# ---------------------------------------------------------------------------------- tables


def table2(entries: Sequence[Entry], names: Sequence[str]) -> list[dict]:
    """Table 2: parameters and test accuracy per model and weights, ours next to the paper's.

    ``ours`` is the mean test accuracy over the replicates (trained: one training seed each;
    released: one model), ``ci95`` its 95% half-width and ``pi95`` the 95% prediction
    half-width of one more training run. A model of ``names`` without entries
    (CIFAR-10 without a GPU run) keeps a row with its parameter count (from the zoo) and
    ``note`` saying it is pending.
    """
    table = []
    for name in names:
        mine = [e for e in entries if e.name == name]
        base = {"model": name, "paper_model": published.PAPER_MODELS.get(name),
                "paper_params": published.PARAMS.get(name)}
        if not mine:
            table.append({**base, "weights": "trained",
                          "params": deepfault.parameter_count(zoo.create(name)),
                          "paper": published.ACCURACY.get(name), "ours": None, "ci95": None,
                          "pi95": None, "replicates": 0, "train_seconds": None,
                          "note": "pending a GPU run (not trained here)"})
            continue
        for weights in dict.fromkeys(e.weights for e in mine):
            runs = [e for e in mine if e.weights == weights]
            unique = runs[:1] if weights == "released" else runs
            ours, half = _interval([e.accuracy for e in unique])
            seconds = [e.train_seconds for e in unique if e.train_seconds is not None]
            table.append({**base, "weights": weights,
                          "params": deepfault.parameter_count(runs[0].model),
                          "paper": published.ACCURACY.get(name), "ours": ours, "ci95": half,
                          "pi95": half * np.sqrt(len(unique) + 1), "replicates": len(unique),
                          "train_seconds": float(np.mean(seconds)) if seconds else None,
                          "note": "" if name in published.ACCURACY else "not in the paper"})
    return table


def table3(rows: Sequence[Mapping]) -> list[dict]:
    """Table 3: loss and accuracy on the synthesised inputs per (model, weights, k, measure).

    ``paper`` / ``ours`` / ``ci95`` / ``pi95`` / ``inside`` / ``in_run`` are the accuracy (the
    paper's value, our mean over replicates, its 95% half-width, the 95% prediction half-width
    of one paper-sized run, whether the paper's value lies in each interval); ``paper_loss`` /
    ``loss`` / ``loss_ci95`` / ``loss_inside`` / ``loss_in_run`` the same for the loss.

    Each replicate is one run of the paper's size, and the paper's cell is one such run, so
    ``in_run`` asks whether the paper's value is what one of our runs could give; ``inside``
    asks whether it equals our mean to within our precision.
    """
    keys = ("dataset", "model", "weights", "synthesis", "k", "approach")
    accuracy, loss = _per_replicate(rows, keys, "accuracy"), _per_replicate(rows, keys, "loss")
    table = []
    for key, values in accuracy.items():
        _, name, weights, synthesis, k, approach = key
        paper_loss, paper_accuracy = published.TABLE3.get(name, {}).get((k, approach),
                                                                        (None, None))
        mean_loss, half_loss = _interval(loss[key])
        run_loss = half_loss * np.sqrt(len(loss[key]) + 1)
        table.append({"dataset": key[0], "model": name,
                      "paper_model": published.PAPER_MODELS.get(name),
                      "weights": weights, "synthesis": synthesis, "k": k,
                      "measure": approach, "paper_loss": paper_loss, "loss": mean_loss,
                      "loss_ci95": half_loss, "loss_inside": _inside(paper_loss, mean_loss,
                                                                     half_loss),
                      "loss_in_run": _inside(paper_loss, mean_loss, run_loss),
                      **_value_row(paper_accuracy, values)})
    return table


def table3_means(rows: Sequence[Mapping]) -> list[dict]:
    """Table 3 in one number per measure: the mean accuracy over every model and ``k`` (the
    paper's 15 cells; its values derived from Table 3), with our 95% interval."""
    return [{"dataset": dataset, "weights": weights, "synthesis": synthesis, "measure": measure,
             **_value_row(published.MEAN_ACCURACY.get(dataset, {}).get(measure), values)}
            for (dataset, weights, synthesis, measure), values in _per_replicate(
                rows, ("dataset", "weights", "synthesis", "approach"), "accuracy").items()]


def significance(rows: Sequence[Mapping]) -> list[dict]:
    """Each measure against random neurons per (model, weights, k): Mann-Whitney U and A12
    over the per-run accuracies (one per class and replicate; random: also per draw).

    ``paper`` is the paper's finding (Table 3's text: T-R and O-R significant on every model
    and k; D*-R on MNIST, not on CIFAR-10); ``ours`` is "significant" when p < 0.05 and
    A12 < 0.5 (the measure's inputs are classified correctly less often).
    """
    table = []
    for (dataset, name, weights, synthesis, k), mine in _groups(
            rows, ("dataset", "model", "weights", "synthesis", "k")).items():
        random = [r["accuracy"] for r in mine if r["approach"] == _RANDOM]
        for measure in dict.fromkeys(r["approach"] for r in _suspicious(mine)):
            ours = [r["accuracy"] for r in mine if r["approach"] == measure]
            if not random:
                continue
            c = stats.compare(ours, random)
            held = c.p < 0.05 and c.a12 < 0.5
            paper = "not significant" if measure == "dstar" and dataset == "cifar10" \
                else "significant"
            table.append({"dataset": dataset, "model": name, "weights": weights,
                          "synthesis": synthesis, "k": k, "measure": measure, "n": c.n_a,
                          "n_random": c.n_b, "accuracy": float(np.mean(ours)),
                          "random_accuracy": float(np.mean(random)), "p": c.p, "a12": c.a12,
                          "effect": c.magnitude, "paper": paper,
                          "ours": "significant" if held else "not significant"})
    return table


def table4(rows: Sequence[Mapping]) -> list[dict]:
    """Table 4: L1, L2 and L-infinity distance from the seeds, by ``k`` (the three measures
    together) and by measure (random included), over the models; one row per distance.

    MNIST on [0, 1] pixels, as the paper's. CIFAR-10 is multiplied by 255, the scale the paper
    names; its printed CIFAR-10 "L2" exceeds its L1, so it cannot be the Euclidean norm there,
    and its L1 is small for that scale: treat the CIFAR-10 comparison with care.
    """
    table = []
    for by, keys, subset, source in (
            ("k", ("dataset", "weights", "synthesis", "k"), _suspicious(rows),
             published.TABLE4_BY_K),
            ("measure", ("dataset", "weights", "synthesis", "approach"), rows,
             published.TABLE4_BY_MEASURE)):
        for j, distance in enumerate(_DISTANCES):
            for (dataset, weights, synthesis, value), values in _per_replicate(
                    subset, keys, distance).items():
                paper = source.get(dataset, {}).get(value)
                table.append({"dataset": dataset, "weights": weights, "synthesis": synthesis,
                              "by": by, "value": value, "distance": distance,
                              **_value_row(None if paper is None else paper[j], values,
                                           _PIXEL_SCALE.get(dataset, 1.0))})
    return table


def table5(rows: Sequence[Mapping]) -> list[dict]:
    """Table 5: the share of the ``k`` suspicious neurons whose activation rose, over every
    measure, model, class and seed, per ``k``."""
    return [{"dataset": dataset, "weights": weights, "synthesis": synthesis, "k": k,
             **_value_row(published.TABLE5.get(dataset, {}).get(k), values)}
            for (dataset, weights, synthesis, k), values in _per_replicate(
                _suspicious(rows), ("dataset", "weights", "synthesis", "k"), "rose").items()]


def neighbour_table(rows: Sequence[Mapping]) -> list[dict]:
    """Appendix Tables 6 (MNIST) and 7 (CIFAR-10): for inputs synthesised from a measure's top
    ``k``, the share of increases among its ``k' >= k`` most suspicious neurons."""
    paper = {"mnist": (6, published.TABLE6), "cifar10": (7, published.TABLE7)}
    primes = sorted({int(c[6:]) for r in rows for c in r if c.startswith("rose_k")})
    table = []
    for kk in primes:
        for (dataset, weights, synthesis, measure, k), values in _per_replicate(
                _suspicious(rows), ("dataset", "weights", "synthesis", "approach", "k"),
                f"rose_k{kk}").items():
            number, source = paper.get(dataset, (None, {}))
            table.append({"table": number, "dataset": dataset, "weights": weights,
                          "synthesis": synthesis, "measure": measure, "k": k, "k_prime": kk,
                          **_value_row(source.get((measure, k, kk)), values)})
    return sorted(table, key=lambda r: (r["dataset"], r["weights"], r["synthesis"],
                                        r["measure"], r["k"], r["k_prime"]))


def layers(rows: Sequence[Mapping]) -> list[dict]:
    """RQ3: where the suspicious neurons sit. Per (model, weights, measure, k) and layer, the
    share of the ``k`` neurons in that layer, averaged over classes and replicates (``depth``
    counts the model's neuron layers from 1)."""
    table = []
    first = rows[0]["synthesis"] if rows else None  # the picks do not depend on synthesis
    for (dataset, name, weights, measure, k), mine in _groups(
            [r for r in _suspicious(rows) if r["synthesis"] == first],
            ("dataset", "model", "weights", "approach", "k")).items():
        order = mine[0]["sites"].split()
        picked = [[n.split(":")[0] for n in r["neurons"].split()] for r in mine]
        for depth, site in enumerate(order, 1):
            table.append({"dataset": dataset, "model": name, "weights": weights,
                          "measure": measure, "k": k, "layer": site, "depth": depth,
                          "share": float(np.mean([p.count(site) / k for p in picked]))})
    return table


def table10(rows: Sequence[Mapping]) -> list[dict]:
    """Table 10: synthesis time per (measure, k). ``paper`` is the printed mm:ss; ``ours``
    the median seconds per input over every run (each run: one class's seeds, one jitted call;
    the median leaves out the first call's compilation) and ``ours_per_cell`` the seconds for
    a Table 3 cell's 100 inputs at that rate."""
    table = []
    for (dataset, synthesis, measure, k), mine in _groups(
            _suspicious(rows), ("dataset", "synthesis", "approach", "k")).items():
        per_input = float(np.median([r["seconds"] / r["seeds"] for r in mine]))
        table.append({"dataset": dataset, "synthesis": synthesis, "measure": measure, "k": k,
                      "paper": published.TABLE10.get(dataset, {}).get((measure, k)),
                      "paper_per_input": published.SECONDS_PER_INPUT.get(dataset),
                      "ours_per_input": per_input, "ours_per_cell": 100 * per_input})
    return table


def budget_gap(rows: Sequence[Mapping]) -> list[dict]:
    """Suspicious against random accuracy per (dataset, weights) and budget
    (:func:`workbench.experiments.deepfault.gap_by_budget`; not in the paper)."""
    return [{"dataset": dataset, "weights": weights, **row}
            for (dataset, weights), mine in _groups(rows, ("dataset", "weights")).items()
            for row in deepfault.gap_by_budget(mine)]


def tables(rows: Sequence[Mapping]) -> dict[str, list[dict]]:
    """Every table of the grid's ``rows``: ``{file name: rows}``."""
    return {"table3": table3(rows), "table3_means": table3_means(rows),
            "significance": significance(rows), "table4": table4(rows),
            "table5": table5(rows), "table6_7": neighbour_table(rows), "layers": layers(rows),
            "table10": table10(rows)}


def labelled(rows: Sequence[Mapping], paper_size: bool) -> list[dict]:
    """``rows`` as they are for a paper-sized run; else with ``ours`` renamed :data:`REDUCED`
    (so that no ``ours - paper`` difference is drawn from reduced sizes)."""
    if paper_size:
        return [dict(r) for r in rows]
    return [{(REDUCED if c == "ours" else c): v for c, v in r.items()} for r in rows]


def figures(tables: Mapping[str, Sequence[Mapping]], *, k: int
            ) -> dict[str, tuple[dict[tuple, list[Mapping]], str, str, str | None, str]]:
    """What the notebook draws, one bar chart per panel ``(weights, model)``:
    ``{file name: (panels, group, value, error, label)}`` for
    :func:`workbench.plots.grouped_bars` with ``series="measure"``: Table 3's raw-synthesis
    accuracy by ``k`` with its 95% interval, and RQ3's share of the top ``k`` suspicious
    neurons by layer depth."""
    raw = [r for r in tables["table3"] if r["synthesis"] == "raw"]
    top = [r for r in tables["layers"] if r["k"] == k]
    return {"table3_accuracy": (panels(raw, row="weights", col="model"), "k", "ours", "ci95",
                                "accuracy"),
            "layers": (panels(top, row="weights", col="model"), "depth", "share", None,
                       f"share of the top {k}")}


def panels(rows: Sequence[Mapping], *, row: str, col: str) -> dict[tuple, list[Mapping]]:
    """``rows`` split by ``(row[row], row[col])`` in order of first appearance, one figure
    panel each.

    Example:
        >>> list(panels([{"w": "a", "m": 1}, {"w": "b", "m": 1}], row="w", col="m"))
        [('a', 1), ('b', 1)]
    """
    return _groups(rows, (row, col))


def _processor() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def run_info(seconds: float, **sizes) -> list[dict]:
    """The run's hardware, versions and wall time as ``item``/``value`` rows, with ``sizes``
    (the run's parameters worth recording) appended."""
    rows = [("processor", _processor()), ("cores", os.cpu_count()),
            ("jax backend", jax.default_backend()),
            ("devices", ", ".join(str(d) for d in jax.devices())),
            ("python", platform.python_version()),
            *((package, metadata.version(package)) for package in ("jax", "flax", "optax")),
            ("wall time (s)", round(float(seconds), 1)), *sizes.items()]
    return [{"item": item, "value": value} for item, value in rows]

