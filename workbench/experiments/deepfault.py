"""DeepFault's experiments: suspicious against random neurons, over a grid and at a matched
budget.

Eniser, Gerasimou and Sen (FASE 2019, arXiv 1902.05974, section 5) rank neurons by the
suspiciousness of their hit spectra and synthesise inputs that raise the top ``k`` from
correctly classified seeds; inputs synthesised for suspicious neurons should be misclassified
more often than those synthesised for random neurons. Here:

- :func:`run_grid` / :func:`grid`: the paper's grid (class x measure x ``k`` x step size, with
  random draws), one row per run;
- :func:`budget_matched` and :func:`gap_by_budget`: the same comparison with every step of one
  L-infinity (``sign``) or L2 size, to separate blame from perturbation budget;
- :func:`variants`: what the synthesis variants (raw, RMS-normalised, sign, L2, iterative)
  change on one class;
- :func:`summary`, :func:`significance`, :func:`by_parameter`, :func:`budget_table`,
  :func:`distances`, :func:`timing`, :func:`claims`: the tables built from those rows;
- :func:`model_accuracy`: Table 1, the models' accuracies.

Every function returns rows (a list of dicts) for :func:`workbench.stats.write_table`.
"""

import time
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jaxtyping import ArrayLike, Shaped

from workbench import (
    activations,
    passes,
    spectra,
    stats,
    suspiciousness,
    synthesis,
    train,
    validation,
)
from workbench import models as zoo
from workbench.experiments import common

__all__ = [
    "PAPER_ACCURACY",
    "PAPER_SYNTH",
    "SUMMARY_COLUMNS",
    "budget_matched",
    "budget_table",
    "by_parameter",
    "claims",
    "class_spectra",
    "distances",
    "gap_by_budget",
    "grid",
    "l2_budget",
    "model_accuracy",
    "run_grid",
    "significance",
    "summary",
    "timing",
    "variants",
]

# Table 1 (model accuracies) as transcribed for the notebook: check against the PDF before
# quoting. PAPER_SYNTH is the range the released code's own MNIST models give (suspicious
# 0.2-0.4, random 0.55-0.85, step 1, d 0.1), as summarised in the project issue.
PAPER_ACCURACY = {"deepfault_5x30_relu": 0.966, "deepfault_6x25_relu": 0.958,
                  "deepfault_8x20_relu": 0.950, "deepfault_5x30_leaky": 0.965,
                  "deepfault_6x25_leaky": 0.960, "deepfault_8x20_leaky": 0.952,
                  "deepfault_cifar_1x512": 0.701}
PAPER_SYNTH = {"suspicious": "0.2-0.4", "random": "0.55-0.85"}
SUMMARY_COLUMNS = ("model", "approach", "n", "paper", "ours", "spread", "loss", "gain", "l2",
                   "linf")
_RANDOM = "random"


def model_accuracy(names: Sequence[str], *, weights: str = "trained", epochs: int | None = None,
                   n_train: int | None = None, seed: int = 0, cache=None, root=None
                   ) -> list[dict]:
    """Table 1: each model's parameters and test accuracy, next to the paper's.

    Models are loaded by :func:`workbench.experiments.common.load_model` (``weights``,
    ``epochs``, ``n_train``, ``seed``, ``cache``, ``root``). Parameters are the floating-point
    arrays of the model's state (784·w + (L−1)·w² + 10·w for the MLPs without bias). With
    ``weights="released"``, a model its authors never published (the 6x25 ReLU network) keeps
    its row, with ``ours`` empty and ``weights`` saying so.

    Returns:
        One row per model: ``model``, ``weights``, ``params``, ``paper``, ``ours`` (test
        accuracy), ``train_seconds`` (``None`` for released weights).
    """
    rows = []
    for name in names:
        if weights == "released" and name not in zoo.released_names():
            rows.append({"model": name, "weights": "not released", "params": None,
                         "paper": PAPER_ACCURACY.get(name), "ours": None, "train_seconds": None})
            continue
        result = common.load_model(name, weights=weights, epochs=epochs, n_train=n_train,
                                   seed=seed, cache=cache, root=root)
        _, state = activations.split(result.model)
        n_params = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(state)
                       if np.issubdtype(leaf.dtype, np.floating))
        seconds = result.train_seconds
        rows.append({"model": name, "weights": weights, "params": n_params,
                     "paper": PAPER_ACCURACY.get(name), "ours": round(result.test_accuracy, 4),
                     "train_seconds": None if seconds is None else round(seconds, 1)})
    return rows


def class_spectra(model, images: Shaped[ArrayLike, "n ..."],
                  labels: Shaped[ArrayLike, " n"], *, threshold: float = 0.0,
                  batch_size: int = 1000) -> tuple[spectra.Spectrum, float]:
    """Every class's hit spectrum in one streamed pass (``by_class=True``), and its seconds."""
    start = time.perf_counter()
    spectrum = jax.block_until_ready(passes.model_spectrum(
        model, images, labels, threshold=threshold, by_class=True, batch_size=batch_size))
    return spectrum, time.perf_counter() - start


def run_grid(model, images: Shaped[ArrayLike, "n ..."], labels: Shaped[ArrayLike, " n"], *,
             classes: Sequence[int], measures: Sequence[str], k_values: Sequence[int],
             step_sizes: Sequence[float], d: float, n_seeds: int, n_random: int, key: ArrayLike,
             normalize: str = "none", n_steps: int = 1, exclude_picked: bool = True,
             spectrum: spectra.Spectrum | None = None,
             predictions: Shaped[ArrayLike, " n"] | None = None, threshold: float = 0.0,
             convention: str = "pre", batch_size: int = 1000) -> list[dict]:
    """DeepFault's experiment grid on one model: per class, suspicious neurons by each measure
    and ``n_random`` random draws, for each ``k`` and step size, synthesised from the same
    seeds (:func:`workbench.synthesis.synthesize`).

    The spectrum is per class over ``images``/``labels`` (computed in one streamed pass unless
    given, ``by_class=True``); the seeds are ``n_seeds`` correctly classified inputs of the
    class (fewer if the class has fewer; a class with none is skipped). Random neurons exclude
    those any measure picked at the same ``k`` when ``exclude_picked`` (the released code's
    variant, ``run.py``).

    Args:
        model: an NNX model that sows its activations.
        images, labels: the inputs the spectra and seeds come from.
        classes, measures, k_values, step_sizes: the grid.
        d: the L-infinity radius; ``normalize``, ``n_steps``: see :mod:`workbench.synthesis`.
        n_seeds, n_random: seeds per class, random draws per class and ``k``.
        key: the source of the seeds and the random neurons.
        spectrum, predictions: precomputed by-class spectrum and predicted classes.
        threshold: the spectrum's activation threshold.
        convention: the neurons ascended (``"pre"``, as the released code; see
            :mod:`workbench.synthesis`).
        batch_size: rows per streamed batch.

    Returns:
        One dict per run: ``class``, ``approach`` (a measure or ``"random"``), ``repeat``,
        ``k``, ``step``, ``normalize``, ``n_steps``, ``seeds``, ``accuracy`` (fraction of
        synthesised inputs still classified as the class), ``loss`` (mean cross-entropy),
        ``gain`` (mean rise of the targets' activations), ``l1``, ``l2``, ``linf`` (means),
        ``seconds`` (synthesis time), ``neurons`` (the targets, as text).

    References:
        Eniser, Gerasimou and Sen, "DeepFault", FASE 2019, section 5 (research questions 1-2);
        the released ``run.py``.
    """
    images = validation.images(np.asarray(images), "images")
    labels = np.asarray(labels)
    key = validation.key(key)
    if spectrum is None:
        spectrum = passes.model_spectrum(model, images, labels, by_class=True,
                                          threshold=threshold, batch_size=batch_size)
    if predictions is None:
        predictions = train.predict(model, images, batch_size=batch_size)
    predictions = np.asarray(predictions)
    sizes = activations.neuron_counts(model, images.shape[1:], convention=convention)
    rows = []
    for c in classes:
        key, seed_key = jax.random.split(key)
        n = min(n_seeds, int(((labels == c) & (predictions == c)).sum()))
        if n == 0:
            continue
        seeds = images[synthesis.choose_seeds(labels, predictions, c, n, key=seed_key)]
        class_spectrum = spectra.for_class(spectrum, c)
        picks = {}
        for name in measures:
            scores = suspiciousness.measure(name)(class_spectrum)
            picks[name] = {k: suspiciousness.top_k(scores, k) for k in k_values}
        for k in k_values:
            runs = [(name, 0, picks[name][k]) for name in measures]
            exclude = {t for name in measures for t in picks[name][k]} if exclude_picked else ()
            for r in range(n_random):
                key, sub = jax.random.split(key)
                runs.append((_RANDOM, r, suspiciousness.random_neurons(
                    sizes, k, key=sub, exclude=exclude)))
            for approach, repeat, targets in runs:
                for step in step_sizes:
                    start = time.perf_counter()
                    out = jax.block_until_ready(synthesis.synthesize(
                        model, seeds, targets, step_size=step, d=d, normalize=normalize,
                        n_steps=n_steps, convention=convention))
                    seconds = time.perf_counter() - start
                    true = np.full(n, c, np.int32)
                    rows.append({
                        "class": int(c), "approach": approach, "repeat": repeat, "k": int(k),
                        "step": float(step), "normalize": normalize, "n_steps": n_steps,
                        "seeds": n,
                        "accuracy": float(np.mean(np.asarray(out.predictions) == c)),
                        "loss": float(np.mean(synthesis.cross_entropy(out.logits, true))),
                        "gain": float(np.mean(out.after - out.before)),
                        "l1": float(np.mean(out.l1)), "l2": float(np.mean(out.l2)),
                        "linf": float(np.mean(out.linf)), "seconds": seconds,
                        "neurons": " ".join(f"{s}:{i}" for s, i in targets),
                    })
    return rows


def grid(models: Mapping[str, object], images: Shaped[ArrayLike, "n ..."],
         labels: Shaped[ArrayLike, " n"], *, key: ArrayLike, **options) -> list[dict]:
    """:func:`run_grid` on each of ``models`` (``{name: model}``) with the same ``options``, a
    fresh key each; every row gains a leading ``model`` column.

    Example:
        >>> from workbench import models as zoo
        >>> net = zoo.create("deepfault_3x50_relu", seed=0)
        >>> x = jax.random.uniform(jax.random.key(0), (40, 28, 28, 1))
        >>> y = train.predict(net, x)  # every input "correct", so every class has seeds
        >>> rows = grid({"net": net}, x, y, key=jax.random.key(1), classes=[int(y[0])],
        ...             measures=["ochiai"], k_values=[2], step_sizes=[1.0], d=0.1, n_seeds=2,
        ...             n_random=1)
        >>> [(r["model"], r["approach"], r["k"]) for r in rows]
        [('net', 'ochiai', 2), ('net', 'random', 2)]
    """
    key = validation.key(key)
    rows = []
    for name, model in models.items():
        key, sub = jax.random.split(key)
        rows += [{"model": name, **row}
                 for row in run_grid(model, images, labels, key=sub, **options)]
    return rows


def _is_random(row: Mapping) -> bool:
    return row["approach"] == _RANDOM


def summary(rows: Sequence[Mapping], *, paper: Mapping[str, str] | None = PAPER_SYNTH
            ) -> list[dict]:
    """Suspicious against random: mean accuracy per model and approach (``ours``, its sample
    standard deviation over runs ``spread``, ``ddof=1``), loss, gain and distances, with the
    paper's range (``paper``: ``{"suspicious": ..., "random": ...}``; no such column when
    ``None``).

    Example:
        >>> rows = [{"model": "m", "approach": a, "accuracy": v, "loss": 0.0, "gain": 0.0,
        ...          "l2": 0.0, "linf": 0.0} for a, v in [("ochiai", 0.2), ("random", 0.6),
        ...                                             ("random", 0.8)]]
        >>> [(r["approach"], r["paper"], r["ours"], round(r["spread"], 3))
        ...  for r in summary(rows)]
        [('ochiai', '0.2-0.4', 0.2, nan), ('random', '0.55-0.85', 0.7, 0.141)]
    """
    table = stats.group_mean(rows, ["model", "approach"], ["accuracy", "loss", "gain", "l2",
                                                          "linf"])
    for row in table:
        if paper is not None:
            row["paper"] = paper["random" if _is_random(row) else "suspicious"]
        row["ours"], row["spread"] = row.pop("accuracy"), row.pop(stats.sd_column("accuracy"))
    return table


def significance(rows: Sequence[Mapping], measures: Sequence[str], *, setting: str
                 ) -> list[dict]:
    """Each measure against random neurons, per model: Mann-Whitney U and Vargha-Delaney A12
    over the per-run accuracies (:func:`workbench.stats.compare`); A12 < 0.5 means the
    measure's synthesised inputs are classified correctly less often."""
    table = []
    for name in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == name]
        random = [r["accuracy"] for r in mine if _is_random(r)]
        for measure in measures:
            ours = [r["accuracy"] for r in mine if r["approach"] == measure]
            if ours and random:
                c = stats.compare(ours, random)
                table.append({"setting": setting, "model": name, "measure": measure,
                              "median": c.median_a, "median_random": c.median_b, "p": c.p,
                              "a12": c.a12, "effect": c.magnitude})
    return table


def by_parameter(rows: Sequence[Mapping]) -> dict[str, list[dict]]:
    """Mean accuracy and distances per approach and ``k`` (``"by_k"``) and per approach and
    step size (``"by_step"``)."""
    return {"by_k": stats.group_mean(rows, ["approach", "k"], ["accuracy", "l2"]),
            "by_step": stats.group_mean(rows, ["approach", "step"], ["accuracy", "l2", "linf"])}


def l2_budget(rows: Sequence[Mapping], *, d: float) -> float:
    """The L2 step of the matched-budget runs: the median L2 distance of the suspicious
    neurons' runs in ``rows`` (``10 * d`` when there are none).

    Example:
        >>> l2_budget([{"approach": "dstar", "l2": 1.0}, {"approach": "random", "l2": 9.0}],
        ...           d=0.1)
        1.0
    """
    return float(np.median([r["l2"] for r in rows if not _is_random(r)] or [10 * d]))


def budget_matched(models: Mapping[str, object], images: Shaped[ArrayLike, "n ..."],
                   labels: Shaped[ArrayLike, " n"], *, l2_budget: float, d: float,
                   key: ArrayLike, **options) -> list[dict]:
    """The grid again at a matched perturbation budget: every step of L-infinity size ``d``
    (``normalize="sign"``) and of L2 size ``l2_budget`` (``normalize="l2"``), whatever the
    neurons' gradients; ``options`` as for :func:`run_grid` (without ``step_sizes`` and
    ``normalize``)."""
    key = validation.key(key)
    rows = []
    for normalize, step in (("sign", d), ("l2", l2_budget)):
        key, sub = jax.random.split(key)
        rows += grid(models, images, labels, key=sub, step_sizes=[step], d=d,
                     normalize=normalize, **options)
    return rows


def budget_table(rows: Sequence[Mapping]) -> list[dict]:
    """Mean accuracy and distances per ``normalize`` and approach."""
    return stats.group_mean(rows, ["normalize", "approach"], ["accuracy", "l2", "linf"])


def gap_by_budget(rows: Sequence[Mapping]) -> list[dict]:
    """Suspicious (every measure) against random accuracy per ``normalize`` (``none``, ``sign``,
    ``l2``): means, their ``gap`` (random minus suspicious), Mann-Whitney U p-value, A12 and
    ``gap_remaining`` (the gap as a fraction of the raw-gradient gap).

    Example:
        >>> rows = [{"normalize": n, "approach": a, "accuracy": v}
        ...         for n, a, v in [("none", "ochiai", 0.2), ("none", "random", 0.8),
        ...                         ("sign", "ochiai", 0.5), ("sign", "random", 0.8)]]
        >>> [(r["normalize"], round(r["gap"], 2), round(r["gap_remaining"], 2))
        ...  for r in gap_by_budget(rows)]
        [('none', 0.6, 1.0), ('sign', 0.3, 0.5)]
    """
    table = []
    for normalize in ("none", "sign", "l2"):
        mine = [r for r in rows if r["normalize"] == normalize]
        suspicious = [r["accuracy"] for r in mine if not _is_random(r)]
        random = [r["accuracy"] for r in mine if _is_random(r)]
        if suspicious and random:
            c = stats.compare(suspicious, random)
            table.append({"normalize": normalize, "suspicious": float(np.mean(suspicious)),
                          "random": float(np.mean(random)),
                          "gap": float(np.mean(random) - np.mean(suspicious)), "p": c.p,
                          "a12": c.a12, "effect": c.magnitude})
    if table and table[0]["normalize"] == "none" and table[0]["gap"] != 0:
        for row in table:
            row["gap_remaining"] = row["gap"] / table[0]["gap"]
    return table


def variants(model, images: Shaped[ArrayLike, "n ..."],
             labels: Shaped[ArrayLike, " n"], *, spectrum: spectra.Spectrum, label: int, k: int,
             d: float, l2_budget: float,
             n_steps: int, n_seeds: int, key: ArrayLike
             ) -> tuple[list[dict], dict[str, synthesis.Synthesis]]:
    """What the synthesis variants change: D*'s top ``k`` neurons of ``spectrum`` (one class's)
    raised from ``n_seeds`` correctly classified seeds of class ``label`` by the released single
    raw step, the paper-era RMS-normalised step, sign and L2 steps, and ``n_steps`` projected
    sign or RMS steps of size ``d / 4``.

    Returns:
        ``(rows, results)``: one row per variant (``variant``, ``seconds``, ``accuracy``,
        ``gain``, ``l1``, ``l2``, ``linf``) and ``{variant: Synthesis}``.
    """
    images = validation.images(np.asarray(images), "images")
    labels = np.asarray(labels)
    predictions = train.predict(model, images)
    n = min(n_seeds, int(((labels == label) & (predictions == label)).sum()))
    seeds = images[synthesis.choose_seeds(labels, predictions, label, n,
                                          key=validation.key(key))]
    targets = suspiciousness.top_k(suspiciousness.dstar(spectrum), k)
    settings = [("released: raw, 1 step", {"step_size": 1.0, "normalize": "none"}),
                ("paper-era: rms, 1 step", {"step_size": 1.0, "normalize": "rms"}),
                ("sign, 1 step", {"step_size": d, "normalize": "sign"}),
                ("l2, 1 step", {"step_size": l2_budget, "normalize": "l2"}),
                (f"sign, {n_steps} steps", {"step_size": d / 4, "normalize": "sign",
                                            "n_steps": n_steps}),
                (f"rms, {n_steps} steps", {"step_size": d / 4, "normalize": "rms",
                                           "n_steps": n_steps})]
    rows, results = [], {}
    for name, options in settings:
        start = time.perf_counter()
        result = jax.block_until_ready(synthesis.synthesize(model, seeds, targets, d=d,
                                                            **options))
        results[name] = result
        rows.append({"variant": name, "seconds": time.perf_counter() - start,
                     "accuracy": float(np.mean(np.asarray(result.predictions) == label)),
                     "gain": float(np.mean(result.after - result.before)),
                     "l1": float(np.mean(result.l1)), "l2": float(np.mean(result.l2)),
                     "linf": float(np.mean(result.linf))})
    return rows, results


def distances(rows: Sequence[Mapping]) -> list[dict]:
    """Mean L1, L2 and L-infinity distance from the seeds, per approach."""
    return stats.group_mean(rows, ["approach"], ["l1", "l2", "linf"])


def timing(spectrum_seconds: float, n_images: int,
           runs: Mapping[str, Sequence[Mapping]]) -> list[dict]:
    """Seconds per step: the all-class spectrum pass, and the median synthesis run of each
    non-empty list of ``runs`` (``{setting: grid rows}``) with its mean number of seeds.

    Example:
        >>> timing(0.5, 100, {"grid": [{"seeds": 4, "seconds": 0.1}], "none": []})[1]
        {'step': 'synthesis, grid (per run)', 'images': 4, 'seconds': 0.1}
    """
    table = [{"step": "spectrum, all classes, one pass", "images": int(n_images),
              "seconds": float(spectrum_seconds)}]
    for setting, rows in runs.items():
        if rows:
            table.append({"step": f"synthesis, {setting} (per run)",
                          "images": int(np.mean([r["seeds"] for r in rows])),
                          "seconds": float(np.median([r["seconds"] for r in rows]))})
    return table


def claims(gap_rows: Sequence[Mapping]) -> list[dict]:
    """The notebook's results table: suspicious against random at each budget."""
    return [{"claim": f"suspicious vs random, normalize={row['normalize']}",
             "suspicious": row["suspicious"], "random": row["random"], "p": row["p"],
             "a12": row["a12"], "effect": row["effect"]} for row in gap_rows]
