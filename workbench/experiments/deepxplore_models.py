"""DeepXplore's MNIST experiments that train models: retraining with the found inputs
(Figure 10), LeNet-1 variants against each other (Table 12), and polluted training data.

- :func:`matching_models`: models of the trio trained only until they reach a given accuracy
  (Figure 10 starts near 92.8 / 94.7 / 94.7%, below Table 1's);
- :func:`retraining_curves`: Figure 10, accuracy after each retraining epoch with 100
  error-inducing inputs added, against 100 random and 100 FGSM inputs;
- :func:`lenet1_variants` and :func:`variant_differences`: Table 12, iterations until a
  LeNet-1 and a variant trained on fewer samples, with more filters or for more epochs
  disagree;
- :func:`pollution_detection`: section 7.3, training images of 9 relabelled as 1, found by the
  inputs on which a clean and a polluted LeNet-1 disagree.

Checkpoints go to :func:`workbench.experiments.common.model_cache`. Seeds as in
:mod:`workbench.experiments.deepxplore` (run ``r`` uses ``seed + offset + r``).
"""

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import numpy as np

from workbench import adversarial, data, differential, keras, models, retraining, train, validation
from workbench.experiments import common, deepxplore
from workbench.experiments import deepxplore_published as published

__all__ = [
    "lenet1_variants",
    "matching_models",
    "pollution_detection",
    "retraining_curves",
    "variant_differences",
    "wider_lenet1",
]

_OFFSET = {"figure10": 2000, "table12": 700, "pollution": 800}
SOURCES = ("deepxplore", "adversarial", "random")  # Figure 10's inputs added


# --------------------------------------------------------------------------- Figure 10


def matching_models(names: Sequence[str], targets: Mapping[str, float] | None = None, *,
                    n_train_grid: Sequence[int] = (4000, 8000, 12000, 16000, 24000, 32000,
                                                   48000, 60000),
                    seed: int = 0) -> tuple[dict, list[dict]]:
    """Each model trained for one epoch on the first ``n`` training images, ``n`` from
    ``n_train_grid`` chosen so that its test accuracy is closest to ``targets[name]`` (default:
    Figure 10's accuracy before retraining): a model "stopped" at a given accuracy (cached
    checkpoints).

    The grid is tried in increasing order up to the first ``n`` that reaches the target.

    Returns:
        ``({name: train.TrainResult}, rows)``, a row per model and ``n`` tried: ``model``,
        ``n_train``, ``accuracy``, ``target``, ``chosen``.
    """
    if targets is None:
        targets = {name: published.FIGURE10[name]["random"][0] for name in names}
    chosen, rows = {}, []
    for name in names:
        tried = []
        for n in sorted(n_train_grid):  # accuracy grows with n: stop once past the target
            tried.append((n, common.load_model(name, epochs=1, n_train=n, seed=seed)))
            if tried[-1][1].test_accuracy >= targets[name]:
                break
        best = min(tried, key=lambda t: abs(t[1].test_accuracy - targets[name]))
        chosen[name] = best[1]
        rows += [{"model": name, "n_train": n, "accuracy": r.test_accuracy,
                  "target": targets[name], "chosen": n == best[0]} for n, r in tried]
    return chosen, rows


def retraining_curves(models: Mapping[str, object], base: data.Dataset, test: data.Dataset, *,
                      n_runs: int, n_seeds: int, seed: int,
                      settings: Mapping, n_retrain: int = 100, epochs: int = 5,
                      fgsm_epsilon: float = 0.1, start: str = "") -> list[dict]:
    """Figure 10: accuracy after each epoch of training each model further on ``base`` plus up
    to ``n_retrain`` inputs of one source: DeepXplore's error-inducing inputs (lighting, from
    ``n_seeds`` seeds, labelled by the models' majority vote, ties dropped), as many random
    test images, or FGSM inputs made from them (true labels).

    The seeds and random images come from the second half of ``test`` (``pool``), the accuracy
    from the first (``judge``), which is never trained on nor climbed from
    (:func:`workbench.experiments.deepxplore.held_out_halves`). Run ``r`` draws its seeds under
    ``seed + 2000 + r`` and trains under ``seed + r``.

    Returns:
        A row per run, model, source and epoch (0: before retraining): ``start`` (a label of
        the starting models), ``added``, ``accuracy``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.3 and Figure 10.
    """
    nets = list(models.values())
    if len(nets) < 2:
        raise ValueError(f"retraining needs two or more models to vote, got {len(nets)}")
    judge, pool = deepxplore.held_out_halves(test)
    rows = []
    for run in range(validation.positive_int(n_runs, "n_runs")):
        number = seed + _OFFSET["figure10"] + run
        index = deepxplore.draw_seeds(len(pool.images), n_seeds, seed=number)
        r = differential.generate(nets, pool.images[index], transformation="light",
                                  key=jax.random.key(number), **settings)
        labels, majority = retraining.majority_vote(r.predictions)
        keep = np.flatnonzero(majority & (r.iterations > 0))[:n_retrain]
        found_images, found_labels = r.inputs[keep], labels[keep]
        pick = deepxplore.draw_seeds(len(pool.images), len(keep), seed=number + 1000)
        for name, net in models.items():
            before = train.accuracy(net, judge)
            adv = adversarial.fgsm(net, pool.images[pick], pool.labels[pick],
                                   epsilon=fgsm_epsilon)
            sources = {"deepxplore": (found_images, found_labels),
                       "adversarial": (adv, pool.labels[pick]),
                       "random": (pool.images[pick], pool.labels[pick])}
            for source, (images, image_labels) in sources.items():
                curve = retraining.finetune_curve(net, base, images, image_labels, judge,
                                                  epochs=epochs, seed=seed + run)
                for epoch, accuracy in enumerate([before, *curve]):
                    rows.append({"start": start, "model": name, "source": source, "run": run,
                                 "epoch": epoch, "added": len(images), "accuracy": accuracy})
    return rows


# --------------------------------------------------------------------------- Table 12


def wider_lenet1(extra: int, *, seed: int = 0):
    """A fresh LeNet-1 with ``extra`` more filters in each convolutional layer (``4 + extra``
    and ``12 + extra``), LeCun-normal kernels and zero biases, as a
    :class:`workbench.models.Sequential` (built through the Keras plan, the public way to
    describe a non-zoo architecture)."""
    extra = int(extra)
    if extra < 0:
        raise ValueError(f"extra must be a non-negative number of filters, got {extra}")
    rng = np.random.default_rng(seed)
    first, second = 4 + extra, 12 + extra

    def kernel(*shape):
        fan_in = int(np.prod(shape[:-1]))
        return (rng.normal(size=shape) / np.sqrt(fan_in)).astype(np.float32)

    layers = (("conv", first, 5, "SAME", "relu"), ("pool",), ("conv", second, 5, "SAME", "relu"),
              ("pool",), ("dense", 10))
    weights = ((kernel(5, 5, 1, first), np.zeros(first, np.float32)), (),
               (kernel(5, 5, first, second), np.zeros(second, np.float32)), (),
               (kernel(7 * 7 * second, 10), np.zeros(10, np.float32)))
    plan = keras.KerasPlan(layers, (28, 28, 1), weights,
                           ("conv1", "pool1", "conv2", "pool2", "logits"), True)
    with tempfile.TemporaryDirectory() as folder:
        keras.write(plan, Path(folder) / "w.h5", Path(folder) / "m.json")
        return models.from_keras(Path(folder) / "m.json", Path(folder) / "w.h5")


def _base_stem(epochs: int, seed: int, n: int) -> str:
    """The checkpoint name of the plain LeNet-1 Table 12 and the pollution test start from
    (ending, like every derived name, in ``train.training_digest("lenet1")``, so a changed model
    or training retrains them)."""
    return f"lenet1-table12-e{epochs}-s{seed}-n{n}-{train.training_digest('lenet1')}"


def _cached(make, path: Path, training: data.Dataset, *, epochs: int, seed: int):
    """``make()`` trained on ``training`` with the LeNets' recipe, or loaded from ``path``."""
    model = make()
    if path.is_file():
        return train.load(model, path)[0]
    recipe = train.recipe("lenet1")
    train.train(model, training, epochs=epochs, batch_size=recipe.batch_size,
                learning_rate=recipe.learning_rate, seed=seed)
    train.save(model, path, metadata={"epochs": epochs, "seed": seed})
    return model


def lenet1_variants(training: data.Dataset, *, base_epochs: int, seed: int = 0,
                    samples: Sequence[int] = (1, 100, 1000, 10000),
                    neurons: Sequence[int] = (1, 2, 3, 4),
                    epochs: Sequence[int] = (1, 2, 4, 8)) -> tuple[object, dict]:
    """Table 12's models: a LeNet-1 trained for ``base_epochs`` on ``training`` and variants
    that differ by one factor: trained on the first ``n - d`` of the ``n`` images, with ``d``
    more filters per convolutional layer, or for ``d`` more epochs (continued from the base).
    Difference 0 is the base itself. Cached under ``common.model_cache()``.

    Returns:
        ``(base, {(factor, d): model})`` with factors ``"training samples"``,
        ``"neurons per layer"``, ``"training epochs"``.
    """
    cache = common.model_cache()
    n = len(training.images)
    if max(samples, default=0) >= n:
        raise ValueError(f"samples differences {list(samples)} must stay below the {n} "
                         "training images")
    stem = _base_stem(base_epochs, seed, n)
    base = _cached(lambda: models.create("lenet1", seed=seed), cache / f"{stem}.msgpack",
                   training, epochs=base_epochs, seed=seed)
    out = {}
    for d in samples:
        part = data.Dataset(training.images[:n - d], training.labels[:n - d],
                            training.class_names)
        out["training samples", d] = _cached(lambda: models.create("lenet1", seed=seed),
                                             cache / f"{stem}-samples{d}.msgpack", part,
                                             epochs=base_epochs, seed=seed)
    for d in neurons:
        out["neurons per layer", d] = _cached(lambda d=d: wider_lenet1(d, seed=seed),
                                              cache / f"{stem}-filters{d}.msgpack", training,
                                              epochs=base_epochs, seed=seed)
    done = 0
    model = models.create("lenet1", seed=seed)
    train.load(model, cache / f"{stem}.msgpack")
    recipe = train.recipe("lenet1")
    for d in sorted(epochs):
        path = cache / f"{stem}-epochs{d}.msgpack"
        if path.is_file():
            train.load(model, path)
        else:
            train.train(model, training, epochs=d - done, batch_size=recipe.batch_size,
                        learning_rate=recipe.learning_rate, seed=seed + d)
            train.save(model, path, metadata={"epochs": base_epochs + d, "seed": seed})
        done = d
        out["training epochs", d] = train.load(models.create("lenet1", seed=seed), path)[0]
    return base, out


def variant_differences(base, variants: Mapping[tuple, object], images, *, n_runs: int,
                        n_seeds: int, seed: int, settings: Mapping,
                        iterations: int = published.TIMEOUT) -> list[dict]:
    """Table 12: for each variant and run, ``n_seeds`` random seeds climbed (lighting) with the
    base and the variant as the two models, at most ``iterations`` steps each.

    Returns:
        A row per factor, difference (0: the base against itself, run once and shown under
        every factor) and run: ``seeds``,
        ``climbed``, ``found`` (within the limit), ``mean_iterations`` of those found (``None``
        when none: a timeout).

    References:
        Pei et al., DeepXplore, SOSP 2017, section 8 and Table 12 (100 seeds, 1,000 steps).
    """
    images = validation.images(np.asarray(images), "images")
    validation.positive_int(n_runs, "n_runs")
    pairs = [(None, 0, base)] + [(factor, d, model) for (factor, d), model in variants.items()]
    factors = list(dict.fromkeys(factor for factor, _ in variants)) or \
        list(published.TABLE12_ITERATIONS)
    rows = []
    for factor, d, model in pairs:
        for run in range(n_runs):
            number = seed + _OFFSET["table12"] + run
            index = deepxplore.draw_seeds(len(images), n_seeds, seed=number)
            r = differential.generate([base, model], images[index], transformation="light",
                                      key=jax.random.key(number),
                                      **{**settings, "iterations": iterations})
            climbed = r.iterations > 0
            row = {"difference": d, "run": run, "seeds": len(index), "climbed": r.seeds_climbed,
                   "found": int(climbed.sum()),
                   "mean_iterations": (float(r.iterations[climbed].mean()) if climbed.any()
                                       else None)}
            # Difference 0 is the same pair (the base twice) for every factor: run once.
            rows += [{"factor": f, **row} for f in ([factor] if factor else factors)]
    return rows


# --------------------------------------------------------------------------- pollution


def pollution_detection(training: data.Dataset, test: data.Dataset, *, epochs: int,
                        n_runs: int, n_seeds: int, seed: int, settings: Mapping,
                        fraction: float = 0.3, source: int = 9, into: int = 1,
                        n_queries: int = 50) -> list[dict]:
    """Section 7.3: ``fraction`` of the training images of ``source`` relabelled ``into``; a
    clean and a polluted LeNet-1 (``epochs`` each, cached); from test seeds of ``source``,
    DeepXplore finds inputs the clean model calls ``source`` and the polluted one ``into``; the
    training images labelled ``into`` are ranked by their highest SSIM with any of the first
    ``n_queries`` of them (:func:`workbench.retraining.most_similar`), and as many as were
    polluted are flagged.

    The paper names the method (SSIM between the found inputs and the training images) but not
    the cut-off; flagging as many as were polluted makes the share found equal to the precision.

    Returns:
        A row per run: ``polluted``, ``seeds``, ``queries`` (inputs found), ``flagged``,
        ``identified`` (polluted among the flagged) and ``identified_share``.

    References:
        Pei et al., DeepXplore, SOSP 2017, section 7.3 ("training data pollution attack").
    """
    labels = np.asarray(training.labels)
    rng = np.random.default_rng(seed + _OFFSET["pollution"])
    nines = np.flatnonzero(labels == source)
    polluted = np.sort(rng.choice(nines, size=round(fraction * len(nines)), replace=False))
    dirty = labels.copy()
    dirty[polluted] = into
    cache = common.model_cache()
    stem = (f"lenet1-pollution{source}to{into}-f{fraction}-e{epochs}-s{seed}-"
            f"{train.training_digest('lenet1')}")
    clean = _cached(lambda: models.create("lenet1", seed=seed),  # Table 12's base
                    cache / f"{_base_stem(epochs, seed, len(training.images))}.msgpack", training,
                    epochs=epochs, seed=seed)
    bad = _cached(lambda: models.create("lenet1", seed=seed), cache / f"{stem}-dirty.msgpack",
                  data.Dataset(training.images, dirty, training.class_names), epochs=epochs,
                  seed=seed)
    candidates = np.flatnonzero(dirty == into)
    is_polluted = np.isin(candidates, polluted)
    seeds = np.flatnonzero(np.asarray(test.labels) == source)
    rows = []
    for run in range(validation.positive_int(n_runs, "n_runs")):
        number = seed + _OFFSET["pollution"] + run
        index = seeds[deepxplore.draw_seeds(len(seeds), n_seeds, seed=number)]
        r = differential.generate([clean, bad], test.images[index], transformation="light",
                                  key=jax.random.key(number), **settings)
        wanted = (r.iterations > 0) & (r.predictions[0] == source) & (r.predictions[1] == into)
        queries = r.inputs[wanted][:n_queries]
        row = {"run": run, "polluted": len(polluted), "seeds": len(index),
               "queries": len(queries), "flagged": None, "identified": None,
               "identified_share": None}
        if len(queries):
            score = retraining.most_similar(queries, training.images[candidates])
            flagged = np.argsort(-score, kind="stable")[:len(polluted)]
            identified = int(is_polluted[flagged].sum())
            row.update(flagged=len(flagged), identified=identified,
                       identified_share=identified / len(polluted))
        rows.append(row)
    return rows
