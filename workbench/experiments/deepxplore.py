"""DeepXplore's experiments: difference-inducing inputs, coverage against baselines,
hyperparameters and retraining.

Pei, Cao, Yang and Jana (SOSP 2017, arXiv 1705.06640, section 7) test several models against
one another with :func:`workbench.differential.generate`. Here, as functions of the models
(``{name: model}``) and the data:

- :func:`find`: difference-inducing inputs per transformation, clipped to valid images or not
  (the released code), over several seeds (section 7.2, Table 2);
- :func:`coverage_vs_baselines`: neuron coverage of as many DeepXplore, random and FGSM inputs
  (section 7.3, Table 6, at 1% of the test set);
- :func:`sweep`: the effect of ``weight_nc``, ``step`` and ``threshold`` (section 7.4);
- :func:`retraining`: accuracy gained by training further with the found inputs, against as
  many random or FGSM inputs (section 7.3, Figure 9);
- :func:`found_table`, :func:`coverage_table`, :func:`retraining_table`, :func:`claims`: the
  tables built from those rows.

``settings`` is the keyword arguments of :func:`workbench.differential.generate` that stay
fixed (``weight_diff``, ``weight_nc``, ``step``, ``iterations``, ``threshold``, ``target``,
``batch_size``). Runs are seeded: run ``r`` draws its seeds with ``seed + r``.
"""

import time
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np
from jaxtyping import ArrayLike, Float, Int, Shaped

from workbench import (
    adversarial,
    coverage,
    data,
    differential,
    passes,
    stats,
    train,
    validation,
)
from workbench import retraining as retrain

__all__ = [
    "PAPER",
    "SOURCES",
    "Found",
    "claims",
    "coverage_table",
    "coverage_vs_baselines",
    "draw_seeds",
    "find",
    "found_table",
    "gallery",
    "held_out_halves",
    "model_table",
    "retraining",
    "retraining_table",
    "sweep",
]

# Paper values (arXiv 1705.06640v4). Only what could be checked in the text is filled in;
# the other cells stay empty rather than guessed.
PAPER = {
    "hyperparameters": {"weight_diff": 1.0, "weight_nc": 0.1, "step": 10.0, "threshold": 0.0},
    "seconds_per_input": 1.0,  # abstract: one difference-inducing input within a second
    "retrain_gain_max": 0.03,  # abstract, section 7.3: accuracy up to 3% higher
}
SOURCES = ("none", "deepxplore", "random", "adversarial")  # retraining's extra inputs


class Found(NamedTuple):
    """What :func:`find` returns."""

    rows: list  # one dict per transformation, clip and run
    results: dict  # (transformation, clip, run) -> (differential.Result, seed indices)


def model_table(loaded: Mapping[str, train.TrainResult]) -> list[dict]:
    """One row per model: ``model``, ``test_accuracy``, ``cached``."""
    return [{"model": name, "test_accuracy": r.test_accuracy, "cached": r.cached}
            for name, r in loaded.items()]


def held_out_halves(test: data.Dataset) -> tuple[data.Dataset, data.Dataset]:
    """``(judge, pool)``: the first and second halves of ``test``. Retraining must not see the
    images it is judged on: its seeds and random inputs come from ``pool``, its accuracy from
    ``judge``."""
    half = len(test.images) // 2
    return (data.Dataset(test.images[:half], test.labels[:half], test.class_names),
            data.Dataset(test.images[half:], test.labels[half:], test.class_names))


def draw_seeds(n_images: int, n_seeds: int, *, seed: int) -> Int[np.ndarray, " m"]:
    """``min(n_seeds, n_images)`` distinct indices of ``range(n_images)``, drawn under NumPy's
    ``default_rng(seed)``.

    Example:
        >>> draw_seeds(10, 3, seed=0).tolist() == draw_seeds(10, 3, seed=0).tolist()
        True
        >>> len(set(draw_seeds(5, 9, seed=1).tolist()))
        5
    """
    rng = np.random.default_rng(seed)
    return rng.choice(n_images, size=min(n_seeds, n_images), replace=False)


def _models(models: Mapping[str, object]) -> list:
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError("models must be a dict {name: model} of two or more models, got "
                         f"{type(models).__name__} of {len(models)}")
    return list(models.values())


def find(models: Mapping[str, object], images: Shaped[ArrayLike, "n h w c"], *,
         transformations: Sequence[str], n_runs: int, n_seeds: int, seed: int,
         settings: Mapping[str, float], clips: Sequence[bool] = (True, False)) -> Found:
    """Difference-inducing inputs for each transformation, with and without clipping to
    [0, 1], over ``n_runs`` runs of ``n_seeds`` seeds drawn from ``images``.

    Returns:
        A :class:`Found`; each row has ``transformation``, ``clip``, ``run``, ``seeds``,
        ``already_differ`` (seeds the models disagree on before any step), ``climbed`` (seeds
        they agree on), ``found`` (difference-inducing inputs from climbing),
        ``found_fraction`` (``found / climbed``), ``survive_8bit`` (found inputs still
        difference-inducing as 8-bit images), ``mean_iterations``, ``coverage`` (mean NC over
        the models after the run), ``seconds`` and ``inputs_per_second``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.2 and Table 2.
    """
    nets = _models(models)
    images = validation.images(np.asarray(images), "images")
    validation.positive_int(n_runs, "n_runs")
    rows, results = [], {}
    for name in transformations:
        for clip in clips:
            for run in range(n_runs):
                index = draw_seeds(len(images), n_seeds, seed=seed + run)
                start = time.perf_counter()
                r = differential.generate(nets, images[index], transformation=name, clip=clip,
                                          key=jax.random.key(seed + run), **settings)
                seconds = time.perf_counter() - start
                climbed = r.iterations > 0
                rows.append({
                    "transformation": name, "clip": clip, "run": run, "seeds": len(index),
                    "already_differ": int((~climbed).sum()), "climbed": r.seeds_climbed,
                    "found": int(climbed.sum()),
                    "found_fraction": float(climbed.sum() / max(r.seeds_climbed, 1)),
                    "survive_8bit": int(r.survives_quantisation[climbed].sum()),
                    "mean_iterations": (float(r.iterations[climbed].mean()) if climbed.any()
                                        else None),
                    "coverage": float(np.mean(r.coverage_after)), "seconds": seconds,
                    "inputs_per_second": float(climbed.sum() / seconds)})
                results[name, clip, run] = (r, index)
    return Found(rows, results)


def found_table(rows: Sequence[Mapping]) -> list[dict]:
    """Means over runs per transformation and clipping."""
    return stats.group_mean(rows, ["transformation", "clip"],
                            ["found", "found_fraction", "survive_8bit", "mean_iterations",
                             "coverage", "inputs_per_second"])


def gallery(result: differential.Result, seeds: Shaped[ArrayLike, "n h w c"], *, n: int = 8
            ) -> tuple[Float[np.ndarray, "m h w c"], Float[np.ndarray, "m h w c"], list[str]]:
    """The first ``n`` climbed inputs of ``result`` for :func:`workbench.plots.image_grid`:
    their seeds (``seeds`` are the images ``generate`` started from), the inputs and each
    one's predictions as ``"p1/p2/p3"``."""
    shown = np.flatnonzero(result.iterations > 0)[:n]
    titles = ["/".join(str(int(p)) for p in result.predictions[:, i]) for i in shown]
    return np.asarray(seeds)[result.seed_index[shown]], result.inputs[shown], titles


def coverage_vs_baselines(models: Mapping[str, object], images: Shaped[ArrayLike, "n h w c"],
                          labels: Shaped[ArrayLike, " n"], found: Sequence[np.ndarray], *,
                          fraction: float, fgsm_epsilon: float, threshold: float, seed: int
                          ) -> list[dict]:
    """Neuron coverage (DeepXplore's convention) of the same number of DeepXplore, random and
    FGSM inputs, per model and run.

    Run ``r`` compares the first ``round(fraction * len(images))`` inputs of ``found[r]`` with
    as many test inputs drawn under ``seed + 1000 + r`` and FGSM inputs made from them
    (:func:`workbench.adversarial.fgsm`, ``fgsm_epsilon``).

    Returns:
        One row per run, model and source: ``model``, ``source``, ``run``, ``inputs``,
        ``coverage``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.3 and Table 6.
    """
    _models(models)
    images = validation.images(np.asarray(images), "images")
    labels = np.asarray(labels)
    n_compare = max(1, round(fraction * len(images)))
    rows = []
    for run, ours in enumerate(found):
        pick = np.random.default_rng(seed + 1000 + run).choice(len(images), size=n_compare,
                                                               replace=False)
        random_inputs = images[pick]
        for name, net in models.items():
            adv = adversarial.fgsm(net, random_inputs, labels[pick], epsilon=fgsm_epsilon)
            for source, inputs in (("deepxplore", ours[:n_compare]), ("random", random_inputs),
                                   ("adversarial", adv)):
                masks = passes.deepxplore_coverage(net, inputs, threshold=threshold)
                rows.append({"model": name, "source": source, "run": run,
                             "inputs": len(inputs), "coverage": coverage.ratio(masks)})
    return rows


def coverage_table(rows: Sequence[Mapping]) -> list[dict]:
    """Mean coverage per model and source (``ours``; ``spread``: its sample standard deviation
    over runs, ``ddof=1``), with an empty ``paper`` column."""
    table = stats.group_mean(rows, ["model", "source"], ["coverage"])
    return [{"model": r["model"], "source": r["source"], "n": r["n"], "paper": None,
             "ours": r["coverage"], "spread": r[stats.sd_column("coverage")]} for r in table]


def sweep(models: Mapping[str, object], seeds: Shaped[ArrayLike, "n h w c"],
          values: Mapping[str, Sequence[float]], *, transformation: str, key: ArrayLike,
          settings: Mapping[str, float]) -> list[dict]:
    """One :func:`workbench.differential.generate` run per value of each swept parameter
    (``{parameter: values}``, e.g. ``{"weight_nc": [0, 1]}``), the others at ``settings``.

    Returns:
        One row per run: ``parameter``, ``value``, ``found``, ``coverage``, ``l1_from_seed``
        (mean L1 distance of the inputs from their seeds), ``distinct_triples`` (distinct
        tuples of the models' predictions), ``mean_iterations``, ``seconds``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.4 (Tables 7-9).
    """
    nets = _models(models)
    seeds = validation.images(np.asarray(seeds), "seeds")
    key = validation.key(key)
    rows = []
    for parameter, chosen in values.items():
        if parameter not in settings:
            raise ValueError(f"cannot sweep {parameter!r}: settings has {sorted(settings)}")
        for value in chosen:
            start = time.perf_counter()
            r = differential.generate(nets, seeds, transformation=transformation, key=key,
                                      **{**settings, parameter: value})
            seconds = time.perf_counter() - start
            climbed = r.iterations > 0
            change = np.abs(r.inputs[climbed] - seeds[r.seed_index[climbed]])
            rows.append({
                "parameter": parameter, "value": value, "found": int(climbed.sum()),
                "coverage": float(np.mean(r.coverage_after)),
                "l1_from_seed": (float(change.reshape(len(change), -1).sum(axis=1).mean())
                                 if climbed.any() else None),
                "distinct_triples": len({tuple(p) for p in r.predictions[:, climbed].T}),
                "mean_iterations": float(r.iterations[climbed].mean()) if climbed.any() else None,
                "seconds": seconds})
    return rows


def retraining(models: Mapping[str, object], base: data.Dataset, pool: data.Dataset,
               judge: data.Dataset, *, n_runs: int, n_seeds: int, n_retrain: int,
               fgsm_epsilon: float, epochs: int, transformation: str, seed: int,
               settings: Mapping[str, float]) -> list[dict]:
    """Accuracy gained by training each model further on ``base`` plus up to ``n_retrain``
    inputs of one source (:data:`SOURCES`): DeepXplore's, labelled by the models' majority vote
    (three-way ties dropped); as many random ``pool`` images, or FGSM inputs made from them
    (true labels); or nothing.

    Run ``r`` draws ``n_seeds`` seeds from ``pool`` under ``seed + 2000 + r`` (so ``judge``,
    where the accuracy is measured, is never trained on) and trains under ``seed + r``.

    Returns:
        One row per run, model and source: ``model``, ``source``, ``run``, ``added``,
        ``before``, ``after`` (accuracy on ``judge``) and ``gain``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.3 and Figure 9.
    """
    nets = _models(models)
    validation.positive_int(n_runs, "n_runs")
    rows = []
    for run in range(n_runs):
        rng = np.random.default_rng(seed + 2000 + run)
        index = rng.choice(len(pool.images), size=min(n_seeds, len(pool.images)), replace=False)
        r = differential.generate(nets, pool.images[index], transformation=transformation,
                                  key=jax.random.key(seed + run), **settings)
        labels, majority = retrain.majority_vote(r.predictions)
        found_images, found_labels = r.inputs[majority][:n_retrain], labels[majority][:n_retrain]
        pick = rng.choice(len(pool.images), size=len(found_images), replace=False)
        for name, net in models.items():
            adv = adversarial.fgsm(net, pool.images[pick], pool.labels[pick],
                                   epsilon=fgsm_epsilon)
            sources = {"none": (found_images[:0], found_labels[:0]),
                       "deepxplore": (found_images, found_labels),
                       "random": (pool.images[pick], pool.labels[pick]),
                       "adversarial": (adv, pool.labels[pick])}
            before = train.accuracy(net, judge)
            for source, (images, image_labels) in sources.items():
                after = retrain.finetune_accuracy(net, base, images, image_labels, judge,
                                                  epochs=epochs, seed=seed + run)
                rows.append({"model": name, "source": source, "run": run,
                             "added": len(images), "before": before, "after": after,
                             "gain": after - before})
    return rows


def retraining_table(rows: Sequence[Mapping]) -> list[dict]:
    """Mean gain per model and source over runs (``ours``) with the half-width of its 95%
    Student-t interval (``spread``; NaN for one run) and the paper's best gain.

    Example:
        >>> rows = [{"model": "m", "source": "deepxplore", "gain": g} for g in (0.01, 0.03)]
        >>> [(r["source"], r["runs"], round(r["ours"], 3)) for r in retraining_table(rows)]
        [('deepxplore', 2, 0.02)]
    """
    table = []
    for name in dict.fromkeys(r["model"] for r in rows):
        for source in SOURCES:
            gains = [r["gain"] for r in rows if r["model"] == name and r["source"] == source]
            if not gains:
                continue
            mean, half_width = stats.mean_interval(gains)
            table.append({"model": name, "source": source, "runs": len(gains),
                          "paper": PAPER["retrain_gain_max"] if source == "deepxplore" else None,
                          "ours": mean, "spread": half_width})
    return table


def claims(found: Sequence[Mapping]) -> list[dict]:
    """The notebook's results table from :func:`found_table`: inputs found per climbed seed
    (clipped), unclipped findings still valid as 8-bit images, seconds per input.

    Example:
        >>> rows = [{"transformation": "light", "clip": True, "found_fraction": 0.5,
        ...          "inputs_per_second": 4.0},
        ...         {"transformation": "light", "clip": False, "found": 10.0,
        ...          "survive_8bit": 5.0}]
        >>> [r["ours"] for r in claims(rows)]
        [0.5, 0.5, 0.25]
    """
    clipped = [r for r in found if r["clip"]]
    table = [{"claim": f"{r['transformation']}: inputs found per climbed seed (clipped)",
              "paper": None, "ours": r["found_fraction"]} for r in clipped]
    table += [{"claim": f"{r['transformation']}: unclipped findings valid as 8-bit images",
               "paper": None, "ours": r["survive_8bit"] / max(r["found"], 1e-9)}
              for r in found if not r["clip"]]
    seconds = [1.0 / r["inputs_per_second"] for r in clipped if r["inputs_per_second"]]
    table.append({"claim": "seconds per difference-inducing input (fastest transformation)",
                  "paper": PAPER["seconds_per_input"], "ours": min(seconds) if seconds else None})
    return table
