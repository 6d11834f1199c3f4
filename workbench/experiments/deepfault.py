"""DeepFault's experiments: suspicious against random neurons, over a grid and at a matched
budget.

Eniser, Gerasimou and Sen (FASE 2019, arXiv 1902.05974v1, section 5) rank neurons by the
suspiciousness of their hit spectra and synthesise inputs that raise the top ``k`` from
correctly classified seeds; inputs synthesised for suspicious neurons should be misclassified
more often than those synthesised for random neurons. Here:

- :func:`run_grid` / :func:`grid`: the paper's grid (class x measure x ``k`` x step size, with
  random draws), one row per run, with the share of target neurons whose activation rose (and,
  for the k' >= k most suspicious neurons, the appendix's neighbours);
- :func:`budget_matched` and :func:`gap_by_budget`: the same comparison with every step of one
  L-infinity (``sign``) or L2 size, to separate blame from perturbation budget (not in the
  paper);
- :func:`variants`: what the synthesis variants (raw, RMS-normalised, sign, L2, iterative)
  change on one class;
- :func:`significance`, :func:`budget_table`: tables built from those rows;
- :func:`parameter_count`: a model's trainable parameters (Table 2).

The paper-scale reproduction (every published table, repeated over independent seeds, with
verdicts) is :mod:`workbench.experiments.deepfault_paper`; the published values are in
:mod:`workbench.experiments.deepfault_published`. Every function returns rows (a list of dicts)
for :func:`workbench.experiments.common.save_table`.
"""

import time
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
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

__all__ = [
    "SINGLE_PASS",
    "TIES",
    "budget_matched",
    "budget_table",
    "class_spectra",
    "gap_by_budget",
    "grid",
    "l2_budget",
    "parameter_count",
    "run_grid",
    "significance",
    "suspicious",
    "variants",
]

TIES = ("deeper", "earlier")
SINGLE_PASS = "single pass: raw gradient, step 1 (Algorithm 2)"  # the variants' default row
_RANDOM = "random"


def parameter_count(model) -> int:
    """The number of floating-point weights in ``model``'s state (its trainable parameters;
    784·w + (L−1)·w² + 10·w for DeepFault's MLPs, which have no bias; random-number keys of
    dropout layers are not counted).

    Example:
        >>> from workbench import models
        >>> parameter_count(models.create("deepfault_3x50_relu"))
        44700
    """
    _, state = activations.split(model)
    return sum(int(np.size(leaf)) for leaf in jax.tree.leaves(state)
               if jnp.issubdtype(leaf.dtype, jnp.floating))


def class_spectra(model, images: Shaped[ArrayLike, "n ..."],
                  labels: Shaped[ArrayLike, " n"], *, threshold: float = 0.0,
                  batch_size: int = 1000) -> tuple[spectra.Spectrum, float]:
    """Every class's hit spectrum in one streamed pass (``by_class=True``), and its seconds."""
    start = time.perf_counter()
    spectrum = jax.block_until_ready(passes.model_spectrum(
        model, images, labels, threshold=threshold, by_class=True, batch_size=batch_size))
    return spectrum, time.perf_counter() - start


def suspicious(scores: Mapping[str, Shaped[ArrayLike, " neurons"]], k: int, *,
               ties: str = "deeper") -> list[tuple[str, int]]:
    """The ``k`` most suspicious neurons of ``scores`` (``{site: scores}`` in layer order),
    most suspicious first.

    ``ties="deeper"`` (the paper, section 5: ties go to the deeper layer; within a layer to the
    lower index) or ``"earlier"`` (:func:`workbench.suspiciousness.top_k`'s layer order; the
    released code breaks ties arbitrarily, ``np.argpartition``).

    Example:
        >>> scores = {"fc1": jnp.array([0.9, 0.5]), "fc2": jnp.array([0.5, 0.1])}
        >>> suspicious(scores, 2), suspicious(scores, 2, ties="earlier")
        ([('fc1', 0), ('fc2', 0)], [('fc1', 0), ('fc1', 1)])
    """
    validation.choice(ties, "ties", TIES)
    if ties == "deeper":
        scores = dict(reversed(list(scores.items())))
    return suspiciousness.top_k(scores, k)


def _flat_values(trace: activations.Trace, counts: Mapping[str, int], flat: np.ndarray
                 ) -> np.ndarray:
    """The neurons at flat positions ``flat`` of a host trace, ``(n, len(flat))``."""
    return np.concatenate([trace.acts[s] for s in counts], axis=1)[:, flat]


def run_grid(model, images: Shaped[ArrayLike, "n ..."], labels: Shaped[ArrayLike, " n"], *,
             classes: Sequence[int], measures: Sequence[str], k_values: Sequence[int],
             step_sizes: Sequence[float], d: float, n_seeds: int, n_random: int, key: ArrayLike,
             normalize: str = "none", n_steps: int = 1, exclude_picked: bool = True,
             ties: str = "deeper", neighbours: Sequence[int] = (),
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
    variant, ``run.py``; the paper does not say).

    Args:
        model: an NNX model that sows its activations.
        images, labels: the inputs the spectra and seeds come from.
        classes, measures, k_values, step_sizes: the grid.
        d: the L-infinity radius; ``normalize``, ``n_steps``: see :mod:`workbench.synthesis`
            (``n_steps=1``: the paper's single pass, Algorithm 2; more: the iterative variant).
        n_seeds, n_random: seeds per class, random draws per class and ``k``.
        key: the source of the seeds and the random neurons.
        exclude_picked: random neurons avoid every measure's picks (see above).
        ties: how equal scores are ranked (:func:`suspicious`).
        neighbours: the k' of the appendix's Tables 6-7: a measure's row at ``k`` gains
            ``rose_k<k'>``, the share of (seed, neuron) pairs among its ``k'`` most suspicious
            neurons whose activation rose, for each ``k' >= k`` here.
        spectrum, predictions: precomputed by-class spectrum and predicted classes.
        threshold: the spectrum's activation threshold (the paper does not state one; the
            released code uses 0).
        convention: the neurons ascended and compared (``"pre"``, as the released code; see
            :mod:`workbench.synthesis`).
        batch_size: rows per streamed batch.

    Returns:
        One dict per run: ``class``, ``approach`` (a measure or ``"random"``), ``repeat`` (the
        random draw; 0 for a measure), ``k``, ``step``, ``normalize``, ``n_steps``, ``seeds``,
        ``accuracy`` (fraction of synthesised inputs still classified as the class), ``loss``
        (mean cross-entropy), ``gain`` (mean rise of the targets' activations), ``rose``
        (share of (seed, target) pairs whose activation rose: Table 5), ``l1``, ``l2``,
        ``linf`` (means), ``seconds`` (synthesis time), ``neurons`` (the targets, as text),
        and the ``rose_k<k'>`` of ``neighbours``.

    References:
        Eniser, Gerasimou and Sen, "DeepFault", FASE 2019 (arXiv 1902.05974v1), section 5
        (research questions 1-2, Tables 3-5, appendix Tables 6-7); the released ``run.py``.
    """
    images = validation.images(np.asarray(images), "images")
    labels = np.asarray(labels)
    key = validation.key(key)
    validation.choice(ties, "ties", TIES)
    neighbours = sorted({validation.positive_int(kk, "neighbours") for kk in neighbours})
    if spectrum is None:
        spectrum = passes.model_spectrum(model, images, labels, by_class=True,
                                          threshold=threshold, batch_size=batch_size)
    if predictions is None:
        predictions = train.predict(model, images, batch_size=batch_size)
    predictions = np.asarray(predictions)
    sizes = activations.neuron_counts(model, images.shape[1:], convention=convention)
    deepest = max([*k_values, *neighbours])
    rows = []
    for c in classes:
        key, seed_key = jax.random.split(key)
        n = min(n_seeds, int(((labels == c) & (predictions == c)).sum()))
        if n == 0:
            continue
        seeds = images[synthesis.choose_seeds(labels, predictions, c, n, key=seed_key)]
        seed_trace = passes.model_trace(model, seeds, convention=convention) if neighbours \
            else None
        class_spectrum = spectra.for_class(spectrum, c)
        ranked = {name: suspicious(suspiciousness.measure(name)(class_spectrum), deepest,
                                   ties=ties) for name in measures}
        for k in k_values:
            runs = [(name, 0, ranked[name][:k]) for name in measures]
            exclude = {t for name in measures for t in ranked[name][:k]} if exclude_picked \
                else ()
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
                    row = {
                        "class": int(c), "approach": approach, "repeat": repeat, "k": int(k),
                        "step": float(step), "normalize": normalize, "n_steps": n_steps,
                        "seeds": n,
                        "accuracy": float(np.mean(np.asarray(out.predictions) == c)),
                        "loss": float(np.mean(synthesis.cross_entropy(out.logits, true))),
                        "gain": float(np.mean(out.after - out.before)),
                        "rose": float(np.mean(np.asarray(out.after > out.before))),
                        "l1": float(np.mean(out.l1)), "l2": float(np.mean(out.l2)),
                        "linf": float(np.mean(out.linf)), "seconds": seconds,
                        "neurons": " ".join(f"{s}:{i}" for s, i in targets),
                    }
                    if neighbours and approach != _RANDOM:
                        flat = np.array([activations.flat_index(sizes, s, i)
                                         for s, i in ranked[approach]])
                        after = _flat_values(passes.model_trace(
                            model, np.asarray(out.inputs), convention=convention), sizes, flat)
                        rose = after > _flat_values(seed_trace, sizes, flat)
                        row.update({f"rose_k{kk}": float(rose[:, :kk].mean())
                                    for kk in neighbours if kk >= k})
                    rows.append(row)
    return rows


def grid(models: Mapping[str, object], images: Shaped[ArrayLike, "n ..."],
         labels: Shaped[ArrayLike, " n"], *, key: ArrayLike, **options) -> list[dict]:
    """:func:`run_grid` on each of ``models`` (``{name: model}``) with the same ``options``, a
    fresh key each; every row gains a leading ``model`` column.

    Example:
        >>> from workbench import models as zoo
        >>> net = zoo.create("deepfault_3x50_relu", seed=0)
        >>> x = jax.random.uniform(jax.random.key(0), (40, 28, 28, 1))
        >>> p = train.predict(net, x)
        >>> c = int(np.bincount(p).argmax())  # the class predicted most often
        >>> y = np.where(np.arange(40) % 4 == 0, c, p)  # some failing inputs labelled c
        >>> rows = grid({"net": net}, x, y, key=jax.random.key(1), classes=[c],
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
             n_steps: int, n_seeds: int, key: ArrayLike, ties: str = "deeper"
             ) -> tuple[list[dict], dict[str, synthesis.Synthesis]]:
    """What the synthesis variants change: D*'s top ``k`` neurons of ``spectrum`` (one class's)
    raised from ``n_seeds`` correctly classified seeds of class ``label`` by the single raw
    step of Algorithm 2 (:data:`SINGLE_PASS`, the default everywhere, as the released code),
    the paper-era code's RMS-normalised step, sign and L2 steps, and the iterative variant:
    ``n_steps`` projected sign or RMS steps of size ``d / 4``.

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
    targets = suspicious(suspiciousness.dstar(spectrum), k, ties=ties)
    settings = [(SINGLE_PASS, {"step_size": 1.0, "normalize": "none"}),
                ("single pass, rms-normalised (paper-era code)",
                 {"step_size": 1.0, "normalize": "rms"}),
                ("single pass, sign", {"step_size": d, "normalize": "sign"}),
                ("single pass, l2", {"step_size": l2_budget, "normalize": "l2"}),
                (f"iterative: {n_steps} sign steps of d/4",
                 {"step_size": d / 4, "normalize": "sign", "n_steps": n_steps}),
                (f"iterative: {n_steps} rms steps of d/4",
                 {"step_size": d / 4, "normalize": "rms", "n_steps": n_steps})]
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
