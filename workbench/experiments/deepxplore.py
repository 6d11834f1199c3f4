"""DeepXplore's MNIST experiments that test the trio: difference-inducing inputs, coverage, and
the hyperparameters' effect, as functions of the models (``{name: model}``) and the data.

Pei, Cao, Yang and Jana (SOSP 2017, arXiv 1705.06640, section 7) test several models against
one another with :func:`workbench.differential.generate`. Each function returns one row per run
(and model, source, ...); :mod:`workbench.experiments.deepxplore_tables` turns the rows into
the paper's tables with 95% intervals and the published values:

- :func:`difference_inducing`: Table 2, inputs found per target model and transformation,
  clipped or not, and how many survive 8-bit storage;
- :func:`coverage_vs_baselines`: Figure 9, NC of DeepXplore's inputs against as many random and
  FGSM inputs, per threshold;
- :func:`coverage_of_test_inputs`: Table 6, NC of 10 random test inputs and of the test set;
- :func:`activation_overlap`: Table 7, neurons two inputs of one or of two classes share;
- :func:`coverage_term`: Table 5, ``weight_nc`` (lambda2) 0 against 1;
- :func:`time_to_full_coverage`: Table 8; :func:`time_to_first_difference`: Tables 9-11.

``settings`` is the keyword arguments of ``generate`` that stay fixed (:func:`settings` builds
them: the paper's algorithm or the released code's, ``VARIANTS``). Run ``r`` of an experiment
draws its seeds under ``seed + offset + r``, the offset differing per experiment, and its key
is ``jax.random.key`` of the same number. The retraining, model-variant and pollution
experiments are in :mod:`workbench.experiments.deepxplore_models`.
"""

import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import NamedTuple

import jax
import numpy as np
import optax
from jaxtyping import ArrayLike, Int, Shaped

from workbench import activations, adversarial, constraints, data, differential, passes, validation
from workbench.experiments import common
from workbench.experiments import deepxplore_published as published

__all__ = [
    "Found",
    "activation_overlap",
    "coverage_of_test_inputs",
    "coverage_term",
    "coverage_vs_baselines",
    "difference_inducing",
    "draw_seeds",
    "environment",
    "for_each",
    "gallery",
    "held_out_halves",
    "load_trios",
    "model_table",
    "settings",
    "time_to_first_difference",
    "time_to_full_coverage",
    "transformation",
]

# Seed offsets: each experiment draws its own seeds.
_OFFSET = {"table2": 0, "figure9": 100, "table5": 200, "table8": 300, "first": 400,
           "table6": 500, "table7": 600}


class Found(NamedTuple):
    """What :func:`difference_inducing` returns."""

    rows: list  # one dict per transformation, clip, run and target model (and "all")
    results: dict  # (transformation, clip, run) -> (differential.Result, seed indices)


# --------------------------------------------------------------------------- set-up


def settings(variant: str = "paper", **hyper) -> dict:
    """The keyword arguments of :func:`workbench.differential.generate` for ``variant``
    (``"paper"``: Algorithm 1, clipped; ``"code"``: the released ``gen_diff.py``, unclipped),
    then ``hyper`` (``weight_diff``, ``weight_nc``, ``step``, ``iterations``, ``threshold``,
    ``batch_size``) over them.

    Example:
        >>> settings("code", step=1.0)["target"], settings()["clip"], settings(step=1.0)["step"]
        (0, True, 1.0)
    """
    validation.choice(variant, "variant", tuple(differential.VARIANTS))
    return {**differential.VARIANTS[variant], "clip": variant == "paper", **hyper}


def transformation(name: str, variant: str = "paper") -> "str | optax.GradientTransformation":
    """The transformation ``name`` as ``variant`` has it: the paper places the occluding
    rectangle anywhere, the released code at ``(0, 0)``."""
    validation.choice(variant, "variant", tuple(differential.VARIANTS))
    if name == "occlusion" and variant == "code":
        return constraints.occlusion(start=(0, 0))
    return name


def load_trios(names: Sequence[str], weights: Sequence[str], **options
               ) -> dict[str, dict[str, object]]:
    """``{weights: {name: train.TrainResult}}``: the models ``names`` under each of
    ``weights`` (:func:`workbench.experiments.common.load_model` with ``options``)."""
    return {w: {name: common.load_model(name, weights=w, **options) for name in names}
            for w in dict.fromkeys(weights)}


def environment(*, seconds: float | None = None) -> list[dict]:
    """Where a run ran: processor, cores, JAX's backend and devices, the versions, and
    ``seconds`` of wall time if given. Rows ``item``, ``value``."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    rows = [("processor", cpu), ("cores", os.cpu_count()), ("backend", jax.default_backend()),
            ("devices", ", ".join(str(d) for d in jax.devices())),
            ("python", platform.python_version())]
    for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            rows.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            rows.append((package, "not installed"))
    if seconds is not None:
        rows.append(("wall seconds", round(float(seconds), 1)))
    return [{"item": k, "value": v} for k, v in rows]


def model_table(trios: Mapping[str, Mapping[str, object]], *, compare: bool = True
                ) -> list[dict]:
    """One row per weights and model: test accuracy and neurons, the paper's beside them
    (Table 1: the reported accuracy; ``paper_measured``: the authors' own measurement) unless
    ``compare`` is false."""
    rows = []
    for w, loaded in trios.items():
        for name, result in loaded.items():
            shape = (28, 28, 1) if name.startswith("lenet") else None
            counts = (activations.neuron_counts(result.model, shape, convention="deepxplore")
                      if shape else {})
            reported, measured = published.ACCURACY.get(name, (None, None))
            rows.append({"weights": w, "model": name, "paper": reported,
                         "ours": result.test_accuracy, "paper_measured": measured,
                         "neurons": sum(counts.values()) or None,
                         "paper_neurons": published.NEURONS.get(name),
                         "paper_source": published.source("ACCURACY")})
    if not compare:
        rows = [{k: v for k, v in r.items() if not k.startswith("paper")} for r in rows]
    return rows


def for_each(trios: Mapping[str, Mapping[str, object]], experiment: Callable, *args, **kwargs
             ) -> list[dict]:
    """``experiment(models, *args, **kwargs)`` for each trio of ``{weights: {name: model or
    TrainResult}}``, its rows (or ``Found.rows``) gathered with ``weights`` first.

    Example:
        >>> trios = {"w1": {"a": 1}, "w2": {"a": 2}}
        >>> for_each(trios, lambda models, k: [{"v": models["a"] * k}], 10)
        [{'weights': 'w1', 'v': 10}, {'weights': 'w2', 'v': 20}]
    """
    rows = []
    for w, models in trios.items():
        nets = {name: getattr(m, "model", m) for name, m in models.items()}
        out = experiment(nets, *args, **kwargs)
        rows += [{"weights": w, **row} for row in getattr(out, "rows", out)]
    return rows


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


def _models(models) -> list:
    if not isinstance(models, Mapping) or len(models) < 2:
        raise ValueError("models must be a dict {name: model} of two or more models, got "
                         f"{type(models).__name__} of {len(models)}")
    return list(models.values())


def _per_2000(count, seeds) -> float:
    """``count`` out of ``seeds`` as a count out of Table 2's 2,000 seeds."""
    return float(count) / max(seeds, 1) * published.TABLE2_SEEDS


# --------------------------------------------------------------------------- Table 2


def difference_inducing(models: Mapping[str, object], images: Shaped[ArrayLike, "n h w c"], *,
                        transformations: Sequence[str], n_runs: int, n_seeds: int, seed: int,
                        settings: Mapping, variant: str = "paper",
                        clips: Sequence[bool] = (True, False)) -> Found:
    """Table 2: difference-inducing inputs from ``n_seeds`` random seeds per run, for each
    transformation, clipped to [0, 1] or not (the released code).

    Returns:
        A :class:`Found`; a row per transformation, clip, run and target (each model by name,
        and ``"all"``): ``seeds`` (seeds with that target), ``climbed`` (seeds all models agreed
        on), ``found`` (inputs found by climbing), ``found_per_2000`` (``found`` per 2,000
        seeds), ``survive_8bit`` (found inputs still difference-inducing as 8-bit images) and
        ``survive_per_2000``, ``mean_iterations``; the ``"all"`` row also ``already_differ``,
        ``coverage`` (mean NC over the models after the run), ``seconds``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.2 and Table 2.
    """
    nets = _models(models)
    names = list(models)
    images = validation.images(np.asarray(images), "images")
    validation.positive_int(n_runs, "n_runs")
    rows, results = [], {}
    for name in transformations:
        for clip in clips:
            for run in range(n_runs):
                number = seed + _OFFSET["table2"] + run
                index = draw_seeds(len(images), n_seeds, seed=number)
                start = time.perf_counter()
                r = differential.generate(
                    nets, images[index], transformation=transformation(name, variant),
                    key=jax.random.key(number), **{**settings, "clip": clip})
                seconds = time.perf_counter() - start
                climbed = r.iterations > 0
                base = {"variant": variant, "transformation": name, "clip": clip, "run": run}
                for k, target in [*enumerate(names), (None, "all")]:
                    mine = climbed if k is None else climbed & (r.targets == k)
                    seeds = len(index) if k is None else int((r.seed_targets == k).sum())
                    found, survive = int(mine.sum()), int(r.survives_quantisation[mine].sum())
                    row = {**base, "target": target, "seeds": seeds,
                           "climbed": r.seeds_climbed if k is None else None, "found": found,
                           "found_per_2000": _per_2000(found, seeds),
                           "survive_8bit": survive, "survive_per_2000": _per_2000(survive, seeds),
                           "mean_iterations": (float(r.iterations[mine].mean()) if found
                                               else None)}
                    if k is None:
                        row.update(already_differ=int((~climbed).sum()),
                                   coverage=float(np.mean(r.coverage_after)), seconds=seconds)
                    rows.append(row)
                results[name, clip, run] = (r, index)
    return Found(rows, results)


def gallery(result: differential.Result, seeds: Shaped[ArrayLike, "n h w c"], *, n: int = 8
            ) -> dict:
    """The first ``n`` climbed inputs of ``result`` as the keyword arguments of
    :func:`workbench.plots.image_grid`: ``seeds`` (``seeds`` are the images ``generate``
    started from), ``synthesised`` (the inputs), ``n`` and ``titles`` (each one's predictions as
    ``"p1/p2/p3"``). With nothing found, the seeds themselves stand in (titled "none found")."""
    shown = np.flatnonzero(result.iterations > 0)[:n]
    if not len(shown):
        first = np.asarray(seeds)[:1]
        return {"seeds": first, "synthesised": first, "n": 1, "titles": ["none found"]}
    titles = ["/".join(str(int(p)) for p in result.predictions[:, i]) for i in shown]
    return {"seeds": np.asarray(seeds)[result.seed_index[shown]],
            "synthesised": result.inputs[shown], "n": len(shown), "titles": titles}


# --------------------------------------------------------------------------- coverage


def _nc(net, inputs, threshold) -> float:
    masks = passes.deepxplore_coverage(net, inputs, threshold=threshold)
    return float(sum(m.sum() for m in masks.values()) / sum(m.size for m in masks.values()))


def coverage_vs_baselines(models: Mapping[str, object], test: data.Dataset, *,
                          thresholds: Sequence[float], n_runs: int, n_seeds: int, seed: int,
                          settings: Mapping, fraction: float = 0.01, fgsm_epsilon: float = 0.1,
                          variant: str = "paper") -> list[dict]:
    """Figure 9: neuron coverage of DeepXplore's inputs against as many random test inputs and
    as many FGSM inputs made from them, at each threshold ``t``.

    Run ``r`` at threshold ``t`` climbs ``n_seeds`` seeds under lighting with coverage judged at
    ``t`` and keeps the first ``round(fraction * len(test.images))`` inputs found by climbing (fewer
    if fewer were found); the random inputs are as many test images drawn afresh, the FGSM ones
    (:func:`workbench.adversarial.fgsm`, ``fgsm_epsilon``, true labels) are made from them for
    each model. Coverage is DeepXplore's at ``t``.

    Returns:
        A row per threshold, run, model and source (``deepxplore``, ``random``,
        ``adversarial``): ``inputs``, ``coverage``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.3 and Figure 9.
    """
    nets = _models(models)
    validation.positive_int(n_runs, "n_runs")
    n_compare = max(1, round(fraction * len(test.images)))
    rows = []
    for t in thresholds:
        for run in range(n_runs):
            number = seed + _OFFSET["figure9"] + run
            index = draw_seeds(len(test.images), n_seeds, seed=number)
            r = differential.generate(nets, test.images[index], transformation="light",
                                      key=jax.random.key(number),
                                      **{**settings, "threshold": t})
            ours = r.inputs[r.iterations > 0][:n_compare]
            pick = draw_seeds(len(test.images), n_compare, seed=number + 1000)
            for name, net in models.items():
                adv = adversarial.fgsm(net, test.images[pick], test.labels[pick],
                                       epsilon=fgsm_epsilon)
                for source, inputs in (("deepxplore", ours), ("random", test.images[pick]),
                                       ("adversarial", adv)):
                    rows.append({"threshold": t, "run": run, "model": name, "source": source,
                                 "inputs": len(inputs),
                                 "coverage": _nc(net, inputs, t) if len(inputs) else None})
    return rows


def coverage_of_test_inputs(models: Mapping[str, object], test: data.Dataset, *,
                            n_runs: int, seed: int, n_inputs: int = 10,
                            threshold: float = 0.75) -> list[dict]:
    """Table 6: DeepXplore's coverage of ``n_inputs`` random test inputs (a fresh draw per run)
    and of the whole test set, at ``threshold``.

    Returns:
        Rows ``model``, ``inputs`` (``"10 random"`` or ``"test set"``), ``run``, ``count``,
        ``coverage``; the test set's row has ``run`` 0 only (it is not random).

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.2, Table 6 and its text.
    """
    validation.positive_int(n_runs, "n_runs")
    rows = []
    for name, net in models.items():
        for run in range(n_runs):
            pick = draw_seeds(len(test.images), n_inputs, seed=seed + _OFFSET["table6"] + run)
            rows.append({"model": name, "inputs": f"{n_inputs} random", "run": run,
                         "count": len(pick), "coverage": _nc(net, test.images[pick], threshold)})
        rows.append({"model": name, "inputs": "test set", "run": 0, "count": len(test.images),
                     "coverage": _nc(net, test.images, threshold)})
    return rows


def _pairs(labels, n_pairs, rng, same):
    """``(n_pairs, 2)`` indices of distinct images with equal (or unequal) labels."""
    out = []
    while len(out) < n_pairs:
        a, b = rng.choice(len(labels), size=2, replace=False)
        if (labels[a] == labels[b]) == same:
            out.append((a, b))
    return np.array(out)


def activation_overlap(models: Mapping[str, object], test: data.Dataset, *, model: str,
                       n_runs: int, seed: int, thresholds: Sequence[float],
                       n_pairs: int = 100) -> list[dict]:
    """Table 7: how many neurons two inputs activate together in ``models[model]``, for pairs
    of one class and of two classes.

    A neuron is activated by an input when its DeepXplore-scaled output exceeds the threshold
    (the paper does not say which: every one of ``thresholds`` is reported). Per run,
    ``n_pairs`` random pairs of each kind.

    Returns:
        Rows ``model``, ``pairs`` (``"same class"``, ``"different class"``), ``threshold``, ``run``,
        ``neurons`` (total), ``activated`` (mean per input), ``overlap`` (mean per pair),
        ``overlap_share`` (``overlap / activated``).

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.2 and Table 7 (LeNet-5).
    """
    validation.positive_int(n_runs, "n_runs")
    validation.choice(model, "model", tuple(models))
    labels = np.asarray(test.labels)
    rows = []
    for run in range(n_runs):
        rng = np.random.default_rng(seed + _OFFSET["table7"] + run)
        for kind, same in (("same class", True), ("different class", False)):
            pairs = _pairs(labels, n_pairs, rng, same)
            acts = activations.trace(models[model], test.images[pairs.ravel()],
                                     convention="deepxplore").acts
            values = np.concatenate([np.asarray(v) for v in acts.values()], axis=1)
            for t in thresholds:
                on = (values > t).reshape(n_pairs, 2, -1)
                activated = float(on.sum(axis=2).mean())
                overlap = float((on[:, 0] & on[:, 1]).sum(axis=1).mean())
                rows.append({"model": model, "pairs": kind, "threshold": t, "run": run,
                             "neurons": values.shape[1], "activated": activated,
                             "overlap": overlap,
                             "overlap_share": overlap / activated if activated else None})
    return rows


def coverage_term(models: Mapping[str, object], images: Shaped[ArrayLike, "n h w c"], *,
                  n_runs: int, n_seeds: int, seed: int, settings: Mapping,
                  weight_nc_values: Sequence[float] = (0.0, 1.0),
                  threshold: float = 0.25) -> list[dict]:
    """Table 5: the same seeds climbed with ``weight_nc`` (lambda2) 0 and 1, under lighting,
    coverage judged at ``threshold``.

    Returns:
        A row per ``weight_nc`` and run: ``seeds``, ``found`` (by climbing),
        ``found_per_2000``, ``diversity_l1`` (mean L1 distance of a found input from its seed,
        pixels in [0, 1]), ``coverage`` (mean NC over the models after the run).

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.4 and Table 5.
    """
    nets = _models(models)
    images = validation.images(np.asarray(images), "images")
    rows = []
    for run in range(validation.positive_int(n_runs, "n_runs")):
        number = seed + _OFFSET["table5"] + run
        index = draw_seeds(len(images), n_seeds, seed=number)
        for value in weight_nc_values:
            r = differential.generate(nets, images[index], transformation="light",
                                      key=jax.random.key(number),
                                      **{**settings, "weight_nc": value, "threshold": threshold})
            climbed = r.iterations > 0
            change = np.abs(r.inputs[climbed] - images[index][r.seed_index[climbed]])
            rows.append({"weight_nc": value, "run": run, "seeds": len(index),
                         "found": int(climbed.sum()),
                         "found_per_2000": _per_2000(climbed.sum(), len(index)),
                         "diversity_l1": (float(change.reshape(len(change), -1).sum(1).mean())
                                          if climbed.any() else None),
                         "coverage": float(np.mean(r.coverage_after))})
    return rows


# --------------------------------------------------------------------------- timing


def _spatial(model, shape) -> list[str]:
    """The sites that are feature maps (conv, pooling): more neurons per position than per
    channel. Table 8 leaves the others (dense layers, logits, softmax) out."""
    per_channel = activations.neuron_counts(model, shape, convention="deepxplore")
    per_position = activations.neuron_counts(
        model, shape, convention=activations.Convention("deepxplore", "none", "minmax"))
    return [s for s in per_channel if per_position[s] != per_channel[s]]


def _one_by_one(nets, images, order, number, settings):
    """Climbs the seeds ``images[order]`` one at a time, as the released code does, coverage
    carried over; yields ``(seeds tried, seconds, iterations, result)`` after each seed (the
    clock started at the first). The caller stops when it has what it needs."""
    covered, iterations, start = None, 0, time.perf_counter()
    for i, image in enumerate(order):
        r = differential.generate(nets, images[image:image + 1], transformation="light",
                                  key=jax.random.fold_in(jax.random.key(number), i),
                                  covered=covered, **{**settings, "batch_size": 1})
        covered = r.covered
        climbed = r.iterations > 0
        iterations += int(r.iterations[climbed].sum()) if climbed.any() else (
            int(settings.get("iterations", 50)) * r.seeds_climbed)
        yield i + 1, time.perf_counter() - start, iterations, r


def _compile(nets, images, settings):
    """One call of the one-seed generator, so that no timed run pays for compilation."""
    next(_one_by_one(nets, images, [0], 0, settings))


def time_to_full_coverage(models: Mapping[str, object], images: Shaped[ArrayLike, "n h w c"],
                          *, n_runs: int, seed: int, settings: Mapping,
                          max_seeds: int = 100) -> list[dict]:
    """Table 8: seconds, seeds and gradient steps until DeepXplore covers every neuron of each
    model's conv and pooling layers (dense layers excluded), seeds climbed one at a time under
    lighting from an empty coverage, at most ``max_seeds``.

    The clock includes everything a seed costs here (a compiled ``generate`` call, its
    predictions and coverage); compilation happens beforehand.

    Returns:
        A row per run and model: ``seeds``, ``seconds``, ``iterations`` (``None`` each when
        ``max_seeds`` did not reach full coverage) and ``reached``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.4 and Table 8 (t = 0 here, Table 2's).
    """
    nets = _models(models)
    images = validation.images(np.asarray(images), "images")
    shape = tuple(images.shape[1:])
    spatial = {name: _spatial(net, shape) for name, net in models.items()}
    _compile(nets, images, settings)
    rows = []
    for run in range(validation.positive_int(n_runs, "n_runs")):
        number = seed + _OFFSET["table8"] + run
        order = draw_seeds(len(images), max_seeds, seed=number)
        reached: dict[str, tuple] = {}
        for tried, seconds, iterations, r in _one_by_one(nets, images, order, number, settings):
            for name, masks in zip(models, r.covered):
                if name not in reached and all(masks[s].all() for s in spatial[name]):
                    reached[name] = (tried, seconds, iterations)
            if len(reached) == len(models):
                break
        for name in models:
            tried, seconds, iterations = reached.get(name, (None, None, None))
            rows.append({"run": run, "model": name, "seeds": tried, "seconds": seconds,
                         "iterations": iterations, "reached": name in reached})
    return rows


def time_to_first_difference(models: Mapping[str, object],
                             images: Shaped[ArrayLike, "n h w c"], *,
                             values: Mapping[str, Sequence[float]], n_runs: int, seed: int,
                             settings: Mapping, max_seeds: int = 50) -> list[dict]:
    """Tables 9-11: seconds and gradient steps until the first difference-inducing input, seeds
    climbed one at a time under lighting (seeds the models already disagree on are passed
    over), for each value of each parameter in ``values`` (``step``, ``weight_diff``,
    ``weight_nc``), the others at ``settings``.

    Returns:
        A row per parameter, value and run: ``seeds`` tried, ``iterations`` (every step of
        every seed tried), ``seconds`` (this machine's; the first call compiles beforehand),
        ``found`` (whether one came within ``max_seeds``).

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.4 and Tables 9-11.
    """
    nets = _models(models)
    images = validation.images(np.asarray(images), "images")
    _compile(nets, images, settings)
    rows = []
    for parameter, chosen in values.items():
        if parameter not in ("step", "weight_diff", "weight_nc"):
            raise ValueError(f"cannot vary {parameter!r}; Tables 9-11 vary step, weight_diff, "
                             "weight_nc")
        for value in chosen:
            for run in range(validation.positive_int(n_runs, "n_runs")):
                number = seed + _OFFSET["first"] + run
                order = draw_seeds(len(images), max_seeds, seed=number)
                for tried, seconds, iterations, r in _one_by_one(
                        nets, images, order, number, {**settings, parameter: value}):
                    if (r.iterations > 0).any():
                        break
                rows.append({"parameter": parameter, "value": value, "run": run,
                             "seeds": tried, "iterations": iterations, "seconds": seconds,
                             "found": bool((r.iterations > 0).any())})
    return rows
