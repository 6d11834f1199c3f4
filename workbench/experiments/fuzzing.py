"""Coverage-guided fuzzing against random mutation: does the feedback help?

The critique papers of coverage criteria (Harel-Canada et al., FSE 2020; Yang et al., "Revisiting
Neuron Coverage Metrics and Quality of Deep Neural Networks", SANER 2022; Yuan et al., ICSE
2023) ask whether inputs chosen for the coverage they add find more faults than as many chosen
without it. Here, as functions of a model and its data:

- :func:`compare`: for each feedback criterion, :func:`workbench.fuzzing.fuzz` guided by it and
  with the gate off (random mutation) at the same budget, from the same seeds, over several
  runs (run ``r`` draws its seeds and its key from ``seed + r``);
- :func:`summary_table`: coverage reached and failures found (all, distinct seeds, distinct
  classes, distinct label-to-prediction pairs) per criterion and mode, with 95% intervals;
- :func:`difference_table`: guided minus random, paired by run, with its interval, A12 and
  the Mann-Whitney p-value, and which way it went;
- :func:`oracles`: the TensorFuzz oracle (the model against its float16 / bfloat16 copy);
- :func:`curves` (coverage over mutants, mean over runs) and :func:`gallery` (failures with
  their mutation chains) for the figures.
"""

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np
from jaxtyping import ArrayLike, Float, Shaped

from workbench import fuzzing, stats, validation
from workbench.experiments.deepxplore import draw_seeds

__all__ = [
    "METRICS",
    "MODES",
    "Compared",
    "claims",
    "compare",
    "curves",
    "difference_table",
    "gallery",
    "oracles",
    "summarize",
    "summary_table",
]

MODES = ("guided", "random")
METRICS = ("coverage", "coverage_gain", "failures", "distinct_seeds", "distinct_classes",
           "distinct_pairs")


class Compared(NamedTuple):
    """What :func:`compare` returns."""

    rows: list  # one dict per criterion, mode and run
    results: dict  # (criterion, mode, run) -> (fuzzing.Result, seed indices into the images)


def summarize(result: fuzzing.Result) -> dict:
    """One run's numbers: ``coverage_before``, ``coverage``, ``coverage_gain``, ``failures``,
    ``distinct_seeds`` (seeds with a failure), ``distinct_classes`` (their labels),
    ``distinct_pairs`` (label-to-prediction pairs), ``valid_fraction``, ``queue``,
    ``seconds`` and ``mutants_per_second`` (wall time, compilation included: the first run of
    a criterion compiles its step).

    Example:
        >>> lineage = fuzzing.Lineage(*[np.zeros(0)] * 9)
        >>> r = fuzzing.Result(np.zeros((3, 1, 1, 1)), np.array([4, 4, 7]), np.array([1, 1, 2]),
        ...                    np.array([[0, 3, 0]]), np.array([1, 2, 3]),
        ...                    {"seconds": np.array([2.0])}, 0.5, 0.25, 100, 80, 5, 9, 3, 0,
        ...                    lineage)
        >>> s = summarize(r)
        >>> s["distinct_seeds"], s["distinct_classes"], s["distinct_pairs"], s["coverage_gain"]
        (2, 2, 3, 0.25)
    """
    validation.instance(result, fuzzing.Result, "result")
    seconds = float(result.history["seconds"][-1])
    pairs = set(zip(result.labels.tolist(), result.predictions[0].tolist()))
    return {"coverage_before": result.coverage_before, "coverage": result.coverage,
            "coverage_gain": result.coverage - result.coverage_before,
            "failures": result.failures_total,
            "distinct_seeds": len(set(result.seed_index.tolist())),
            "distinct_classes": len(set(result.labels.tolist())), "distinct_pairs": len(pairs),
            "valid_fraction": result.valid / max(result.mutants, 1),
            "queue": result.queue_size, "seconds": seconds,
            "mutants_per_second": result.mutants / seconds if seconds else None}


def _k(criterion: str, k_sections: int, k_top: int) -> int | None:
    return k_sections if criterion == "kmnc" else k_top if criterion in ("tknc", "tknp") \
        else None


def compare(model, images: Shaped[ArrayLike, "_n ..."], labels: Shaped[ArrayLike, " _n"], *,
            criteria: Sequence[str], n_runs: int, n_seeds: int, seed: int,
            settings: Mapping, profile=None, k_sections: int = 10, k_top: int = 2,
            progress: bool = False) -> Compared:
    """Guided and random fuzzing for each criterion, ``n_runs`` runs of ``n_seeds`` seeds
    drawn from ``images``; both modes of a run start from the same seeds with the same key.

    Args:
        model: the model under test.
        images, labels: the pool of seeds (test images) and their classes.
        criteria: names in ``fuzzing.FEEDBACK``.
        n_runs, n_seeds: runs, and seeds drawn per run (``seed + r``).
        seed: the master seed.
        settings: keyword arguments of :func:`workbench.fuzzing.fuzz` that stay fixed
            (``budget``, ``batch_size``, ``mutants_per_seed``, ``threshold``, ...).
        profile: the training profile KMNC, NBC and SNAC need.
        k_sections, k_top: KMNC's sections; TKNC's and TKNP's top k.
        progress: a progress bar per run.

    Returns:
        A :class:`Compared`; each row has ``criterion``, ``mode``, ``run``, ``seeds_used``,
        ``mutants`` and the numbers of :func:`summarize`.

    References:
        DeepHunter, ISSTA 2019 (random testing as the baseline); Yuan et al., ICSE 2023.
    """
    images = np.asarray(validation.images(np.asarray(images), "images"))
    labels = np.asarray(labels)
    validation.positive_int(n_runs, "n_runs")
    for criterion in criteria:
        validation.choice(criterion, "criterion", fuzzing.FEEDBACK)
    rows, results = [], {}
    for run in range(n_runs):
        index = draw_seeds(len(images), n_seeds, seed=seed + run)
        for criterion in criteria:
            for mode in MODES:
                result = fuzzing.fuzz(model, images[index], labels[index],
                                      key=jax.random.key(seed + run), feedback=criterion,
                                      guided=mode == "guided", profile=profile,
                                      k=_k(criterion, k_sections, k_top), progress=progress,
                                      **settings)
                rows.append({"criterion": criterion, "mode": mode, "run": run,
                             "seeds_used": result.seeds_used, "mutants": result.mutants,
                             **summarize(result)})
                results[criterion, mode, run] = (result, index)
    return Compared(rows, results)


def summary_table(rows: Sequence[Mapping]) -> list[dict]:
    """Per criterion and mode: the runs, and each of ``METRICS`` as its mean and the
    half-width of its 95% Student-t interval (``<metric> ci95``; NaN for one run).

    Example:
        >>> rows = [{"criterion": "nc", "mode": "guided", **{m: v for m in METRICS}}
        ...         for v in (1.0, 3.0)]
        >>> t = summary_table(rows)[0]
        >>> t["runs"], t["failures"], round(t["failures ci95"], 2)
        (2, 2.0, 12.71)
    """
    table = []
    for key in dict.fromkeys((r["criterion"], r["mode"]) for r in rows):
        members = [r for r in rows if (r["criterion"], r["mode"]) == key]
        entry = {"criterion": key[0], "mode": key[1], "runs": len(members)}
        for metric in METRICS:
            mean, half = stats.mean_interval([float(m[metric]) for m in members])
            entry[metric], entry[f"{metric} ci95"] = mean, half
        table.append(entry)
    return table


def difference_table(rows: Sequence[Mapping],
                     metrics: Sequence[str] = ("coverage_gain", "failures", "distinct_seeds",
                                               "distinct_classes")) -> list[dict]:
    """Guided minus random per criterion and metric, paired by run: ``guided``, ``random``
    (means), ``difference`` (the mean paired difference) and its 95% interval half-width,
    ``a12`` (the probability that a guided run beats a random one, ties half) with the
    two-sided Mann-Whitney ``p``, and ``finding``: ``"guided higher"`` / ``"random higher"``
    when the interval excludes 0, else ``"no clear difference"``.

    Example:
        >>> rows = [{"criterion": "nc", "mode": m, "run": r, "failures": f}
        ...         for r, (g, x) in enumerate([(5, 1), (6, 2), (7, 2)])
        ...         for m, f in (("guided", g), ("random", x))]
        >>> d = difference_table(rows, ["failures"])[0]
        >>> d["difference"], d["a12"], d["finding"]
        (4.333333333333333, 1.0, 'guided higher')

    References:
        Vargha and Delaney 2000 (A12); Arcuri and Briand 2011 (reporting randomised
        algorithms).
    """
    table = []
    for criterion in dict.fromkeys(r["criterion"] for r in rows):
        paired = {}
        for r in rows:
            if r["criterion"] == criterion:
                paired.setdefault(r["run"], {})[r["mode"]] = r
        runs = [p for p in paired.values() if set(p) >= set(MODES)]
        if not runs:
            continue
        for metric in metrics:
            guided = np.array([float(p["guided"][metric]) for p in runs])
            random = np.array([float(p["random"][metric]) for p in runs])
            mean, half = stats.mean_interval(guided - random)
            test = stats.compare(guided, random)
            finding = ("no clear difference" if not half < abs(mean)
                       else "guided higher" if mean > 0 else "random higher")
            table.append({"criterion": criterion, "metric": metric, "runs": len(runs),
                          "guided": float(guided.mean()), "random": float(random.mean()),
                          "difference": mean, "difference ci95": half, "a12": test.a12,
                          "p": test.p, "finding": finding})
    return table


def claims(differences: Sequence[Mapping]) -> list[dict]:
    """The notebook's results table: per criterion, coverage gained and failures found by
    guided fuzzing minus random mutation (the paper column is empty: DeepHunter reports no
    such paired interval).

    Example:
        >>> claims([{"criterion": "nc", "metric": "failures", "difference": 2.0,
        ...          "difference ci95": 1.0, "finding": "guided higher"}])[0]["ours"]
        2.0
    """
    return [{"claim": f"{d['criterion']}: guided - random, {d['metric']} ({d['finding']}, "
                      f"95% CI +- {d['difference ci95']:.3g})",
             "paper": None, "ours": d["difference"]}
            for d in differences if d["metric"] in ("coverage_gain", "failures")]


def curves(results: Mapping, criterion: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{mode: (mutants, mean coverage)}``: the feedback criterion over the mutants generated,
    averaged over the runs of ``criterion`` in ``results`` (``Compared.results``)."""
    out = {}
    for mode in MODES:
        runs = [r for (c, m, _), (r, _) in results.items() if c == criterion and m == mode]
        if runs:
            steps = min(len(r.history["coverage"]) for r in runs)
            coverage = np.mean([r.history["coverage"][:steps] for r in runs], axis=0)
            out[mode] = (runs[0].history["mutants"][:steps], coverage)
    return out


def gallery(result: fuzzing.Result, seeds: Shaped[ArrayLike, "_n ..."], *, n: int = 8
            ) -> tuple[Float[np.ndarray, "m h w c"], Float[np.ndarray, "m h w c"], list[str]]:
    """The first ``n`` failures of ``result`` from distinct seeds, for
    :func:`workbench.plots.image_grid`: their seeds (``seeds`` are the images fuzzed), the
    failures, and titles ``"label>prediction: mutation, mutation, ..."``."""
    n = validation.positive_int(n, "n")
    first = [int(i) for i in np.unique(result.seed_index, return_index=True)[1]][:n]
    titles = [f"{result.labels[i]}>{result.predictions[0, i]}: "
              + ",".join(m.name[:5] for m in fuzzing.chain(result, i)) for i in first]
    return np.asarray(seeds)[result.seed_index[first]], result.failures[first], titles


def oracles(model, images: Shaped[ArrayLike, "_n ..."], labels: Shaped[ArrayLike, " _n"], *,
            precisions: Sequence[str], n_seeds: int, seed: int, settings: Mapping,
            feedback: str = "nc") -> list[dict]:
    """Failures found under each oracle from the same seeds: misclassification, and the model
    against its copy in each of ``precisions`` (TensorFuzz's quantisation oracle).

    Returns:
        One row per oracle: ``oracle``, ``seeds_used`` (seeds that pass it), ``failures``,
        ``distinct_seeds``, ``coverage``.

    References:
        Odena et al., TensorFuzz, ICML 2019 (a model against its 16-bit copy).
    """
    images = np.asarray(validation.images(np.asarray(images), "images"))
    index = draw_seeds(len(images), n_seeds, seed=seed)
    runs = [("misclassification", {"oracle": "misclassification"})]
    runs += [(f"quantization ({p})", {"oracle": "quantization", "precision": p})
             for p in precisions]
    rows = []
    for name, options in runs:
        result = fuzzing.fuzz(model, images[index], np.asarray(labels)[index],
                              key=jax.random.key(seed), feedback=feedback, **options,
                              **settings)
        s = summarize(result)
        rows.append({"oracle": name, "seeds_used": result.seeds_used, "failures": s["failures"],
                     "distinct_seeds": s["distinct_seeds"], "coverage": s["coverage"]})
    return rows
