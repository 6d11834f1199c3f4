"""DeepXplore: differential testing of several models by joint gradient ascent on the input.

For a seed on which all models agree on class ``c``, DeepXplore climbs the joint objective

    obj(x) = sum_{k != j} F_k(x)[c] - lambda1 * F_j(x)[c] + lambda2 * sum_k f_{n_k}(x)

where ``F_k(x)[c]`` is model ``k``'s probability of ``c``, ``j`` the target model pushed away
from ``c``, and ``f_{n_k}`` the (raw, spatially averaged) output of one neuron ``n_k`` of model
``k`` not yet covered. Each step normalises the gradient by its root mean square, keeps only the
part a realistic transformation allows (:mod:`workbench.constraints`: a uniform brightness
change, a rectangle, black patches) and adds ``step`` times it. The models see the seed plus the
sum of all steps, clipped to the valid box: under lighting a found input is the seed plus one
constant, clipped. A seed stops as soon as the target model disagrees with the others; every
difference-inducing input updates each model's neuron coverage (DeepXplore's convention,
``activations.CONVENTIONS["deepxplore"]``: per-layer min-max scaling, channel means,
``> threshold``, counted by :func:`workbench.coverage.neuron_coverage`).

Here hundreds of seeds advance together over a pool of ``batch_size`` slots, each holding one
seed. Every iteration computes all slots' gradients at once (a batched forward and backward pass
per model), records the slots that now differ, updates the coverage with them, draws fresh
uncovered neurons from the coverage as it now stands, and refills every finished slot with the
next agreeing seed; once no seed is queued, the pool narrows to the slots still climbing. On GPUs
and TPUs the iterations run as one jitted ``lax.while_loop``; on the CPU each iteration is its own
jitted call (XLA's CPU backend runs the loop body ~1.5x slower inside a ``while_loop``); both
run the same step and give the same results (tested). The pool and the objective it climbs are
:mod:`workbench.climbing`.

**Paper or released code.** Where the paper (Algorithm 1, sections 5-6) and the released code
(``MNIST/gen_diff.py``, ``utils.py``) differ, :func:`generate` follows the paper by default and
offers the code's choice by a named option (:data:`VARIANTS` holds both sets):

============================  =============================  ===============================
option                        paper (default)                released code
============================  =============================  ===============================
``target``                    ``None``: drawn per seed       ``0`` (``-t``, fixed per run)
``neuron_choice``             ``"iteration"``: a new         ``"seed"``: once per seed
                              uncovered neuron every step
``scores``                    ``"probabilities"``            ``"logits"`` (``before_softmax``)
``stop``                      ``"target"``: the target       ``"any"``: any two models
                              differs from every other       disagree
``clip``                      ``True``                       ``False`` (never clipped)
occlusion                     anywhere (per seed)            ``constraints.occlusion(start=(0, 0))``
============================  =============================  ===============================

Both divide the gradient by ``sqrt(mean(g**2)) + 1e-5`` (the code; not in Algorithm 1), take
the neuron term as the raw output (``CONVENTIONS["deepxplore_raw"]``) but judge coverage on
scaled outputs, count logits and softmax outputs as neurons, and report seeds on which the
models already disagree (iteration 0, not climbed), as the code does. Unclipped "findings" may
be no images at all: :attr:`Result.survives_quantisation` tells which still differ as 8-bit
images. Everything random derives from ``key`` (the code cannot be seeded).

References:
    Pei, Cao, Yang, Jana, "DeepXplore: Automated Whitebox Testing of Deep Learning Systems",
    SOSP 2017 (arXiv:1705.06640), section 5 (Algorithm 1), section 6 (domain constraints),
    section 7 (MNIST hyperparameters: lambda1 = 1, lambda2 = 0.1, s = 10, t = 0), and the
    released code, github.com/peikexin9/deepxplore, ``MNIST/gen_diff.py`` and ``utils.py``.
"""

import functools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Int, Shaped

from workbench import activations, climbing, constraints, coverage, validation

__all__ = [
    "NEURON_CHOICES",
    "SCORES",
    "STOPS",
    "VARIANTS",
    "Result",
    "generate",
    "joint_objective",
    "predictions",
    "quantize",
]

# The neurons DeepXplore's coverage counts (min-max scaled).
_SCALED = activations.CONVENTIONS["deepxplore"]

SCORES = ("probabilities", "logits")  # what F_k(x)[c] is: softmax output or pre-softmax logit
NEURON_CHOICES = ("iteration", "seed")  # a new uncovered neuron every step, or once per seed
STOPS = ("target", "any")  # stop when the target differs from every other model, or any two
# The keyword arguments of :func:`generate` that make it the paper's algorithm or the code's
# (``clip`` and the occlusion corner are set apart: experiments run both clippings).
VARIANTS = {
    "paper": {"target": None, "neuron_choice": "iteration", "scores": "probabilities",
              "stop": "target"},
    "code": {"target": 0, "neuron_choice": "seed", "scores": "logits", "stop": "any"},
}

Model = Any  # a Flax NNX model (only the model layer imports Flax)


# --------------------------------------------------------------------------- checks


def _check_models(models, x, name: str = "seeds") -> tuple[tuple, tuple, list[dict[str, int]]]:
    """``(graphdefs, states, counts)`` of two or more models that take ``x`` and have the same
    classes; ``counts`` per model ``{site: neurons}`` in layer order (DeepXplore's convention)."""
    given = (len(models) if isinstance(models, Sequence) and not isinstance(models, str)
             else type(models).__name__)
    if not isinstance(given, int) or given < 2:
        raise ValueError(f"differential testing needs a sequence of at least two models, got "
                         f"{given}")
    parts = [activations.split(m) for m in models]
    for part in parts:
        activations.check_model_input(part, x, name)
    shape = tuple(x.shape[1:])
    counts = [activations.neuron_counts(m, shape, convention=_SCALED) for m in models]
    classes = [c["logits"] for c in counts]
    if len(set(classes)) != 1:
        raise ValueError(f"the models must have the same number of classes, got {classes}")
    return tuple(p[0] for p in parts), tuple(p[1] for p in parts), counts


def _check_target(target, n_models: int, *, random: bool = True) -> int:
    """The target's index, or -1 for one drawn per seed (``None``)."""
    if target is None and random:
        return -1
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)):
        raise ValueError(f"target must be a model index in 0..{n_models - 1}"
                         + (" or None (drawn per seed)" if random else "") + f", got {target!r}")
    return int(validation.choice(int(target), "target", range(n_models)))


# --------------------------------------------------------------------------- objective


@functools.partial(jax.jit, static_argnames=("graphdefs", "scores"))
def _objective_jit(graphdefs, states, x, labels, neurons, target, weight_diff, weight_nc, *,
                   scores):
    weights = climbing.objective_weights(len(graphdefs), jnp.full(x.shape[0], target),
                                         weight_diff)
    return climbing.objective(graphdefs, states, x, labels, neurons, weights, weight_nc,
                              scores)[0]


def joint_objective(models: Sequence[Model], x: Shaped[ArrayLike, "n ..."],
                    labels: Shaped[ArrayLike, " n"], neurons: Shaped[ArrayLike, "models n"], *,
                    target: int = 0, weight_diff: float = 1.0, weight_nc: float = 0.1,
                    scores: str = "probabilities") -> Float[Array, " n"]:
    """DeepXplore's joint objective for each input.

    ``obj = sum_{k != target} F_k[c] - weight_diff * F_target[c] + weight_nc * sum_k neuron_k``,
    with ``c = labels``, ``F`` the class probabilities (the paper) or the pre-softmax logits
    (``scores="logits"``, the released code), and ``neuron_k`` the raw output of neuron
    ``neurons[k]`` of model ``k``: a flat index over the sites of
    ``activations.trace(model, x, convention="deepxplore_raw")`` (conv and pooling channels by
    their spatial mean, dense units, logits, softmax outputs).

    Args:
        models: two or more models that take ``x`` and have the same classes.
        x: inputs, ``(n, h, w, c)``.
        labels: ``int[n]``, the agreed class of each input.
        neurons: ``int[models, n]`` flat neuron indices, one per model and input.
        target: the model pushed away from ``labels``.
        weight_diff: lambda1.
        weight_nc: lambda2.
        scores: ``"probabilities"`` or ``"logits"``.

    Returns:
        ``(n,)`` objective values; its gradient with respect to ``x`` is what DeepXplore climbs.

    Example:
        >>> from workbench import models as zoo
        >>> nets = [zoo.create(name, seed=0) for name in ("lenet1", "lenet4")]
        >>> x = jnp.full((2, 28, 28, 1), 0.5)
        >>> joint_objective(nets, x, jnp.array([3, 7]), jnp.zeros((2, 2), jnp.int32)).shape
        (2,)

    References:
        DeepXplore, section 5.2, equations (2)-(3) (probabilities); released ``gen_diff.py``
        (``before_softmax`` outputs, ``K.mean`` of the chosen neuron's output).
    """
    x = jnp.asarray(validation.images(x, "x"), jnp.float32)
    graphdefs, states, counts = _check_models(models, x, "x")
    classes = counts[0]["logits"]
    labels = validation.labels(labels, len(x), classes=classes)
    totals = [sum(c.values()) for c in counts]
    neurons = np.asarray(neurons)
    if neurons.shape != (len(models), len(x)) or not np.issubdtype(neurons.dtype, np.integer):
        raise ValueError(f"neurons must be int[{len(models)}, {len(x)}], got {neurons.dtype}"
                         f"{list(neurons.shape)}")
    if (neurons < 0).any() or (neurons >= np.array(totals)[:, None]).any():
        raise ValueError(f"neurons out of range: the models have {totals} neurons")
    target = _check_target(target, len(models), random=False)
    return _objective_jit(graphdefs, states, x, jnp.asarray(labels, jnp.int32),
                          jnp.asarray(neurons, jnp.int32), jnp.int32(target),
                          validation.scalar(weight_diff, "weight_diff"),
                          validation.scalar(weight_nc, "weight_nc"),
                          scores=validation.choice(scores, "scores", SCORES))


# --------------------------------------------------------------------------- generation


class Result(NamedTuple):
    """What :func:`generate` found: every difference-inducing input and the coverage it reached.
    Inputs are in seed order; ``iterations == 0`` marks a seed on which the models already
    disagreed (reported and counted for coverage, but not climbed)."""

    inputs: np.ndarray  # shape=(found, h, w, c), dtype=float32
    seed_index: np.ndarray  # shape=(found,), dtype=int32: the seed each input came from
    predictions: np.ndarray  # shape=(models, found), dtype=int32
    iterations: np.ndarray  # shape=(found,), dtype=int32: gradient steps taken
    targets: np.ndarray  # shape=(found,), dtype=int32: the model pushed away from the label
    coverage_before: np.ndarray  # shape=(models,), dtype=float64: NC ratio per model
    coverage_after: np.ndarray  # shape=(models,), dtype=float64
    covered: tuple  # per model {site: bool[neurons]} after the run (pass on as coverage=)
    seeds_climbed: int  # seeds on which all models agreed
    seed_targets: np.ndarray  # shape=(seeds,), dtype=int32: every seed's target model
    survives_quantisation: np.ndarray  # shape=(found,), dtype=bool: still disagree when
    # clipped to [0, 1] and rounded to 8 bits




@functools.partial(jax.jit, static_argnames=("graphdefs",))
def _predict_jit(graphdefs, states, x):
    # The logits of ``neurons``, not ``activations.forward``: a model written like the README's
    # ``MyNet`` sows under its layers' names, which Flax refuses outside a capture.
    return jnp.stack([jnp.argmax(activations.neurons(g, s, x).logits, axis=-1)
                      for g, s in zip(graphdefs, states)]).astype(jnp.int32)


def _predictions(graphdefs, states, x, batch_size):
    out = [np.asarray(_predict_jit(graphdefs, states, _pad(x[i:i + batch_size], batch_size)))
           [:, :len(x[i:i + batch_size])] for i in range(0, len(x), batch_size)]
    return np.concatenate(out, axis=1) if out else np.zeros((len(graphdefs), 0), np.int32)


def predictions(models: Sequence[Model], x: Shaped[ArrayLike, "n ..."], *,
                batch_size: int = 1000) -> Int[np.ndarray, "models n"]:
    """Each model's predicted class of each input: ``int32[models, n]``.

    Example:
        >>> from workbench import models as zoo
        >>> nets = [zoo.create(name, seed=0) for name in ("lenet1", "lenet4")]
        >>> predictions(nets, np.zeros((3, 28, 28, 1), np.float32)).shape
        (2, 3)
    """
    batch_size = validation.positive_int(batch_size, "batch_size")
    x = np.asarray(validation.images(x, "x"), np.float32)
    if isinstance(models, str) or not isinstance(models, Sequence) or not models:
        raise ValueError(f"models must be a non-empty sequence of models, got "
                         f"{type(models).__name__}")
    parts = [activations.split(m) for m in models]
    if len(x):
        for part in parts:
            activations.check_model_input(part, x, "x")
    return _predictions(tuple(p[0] for p in parts), tuple(p[1] for p in parts), x, batch_size)


def _pad(x, size):
    if len(x) == size:
        return x
    return np.concatenate([x, np.zeros((size - len(x), *x.shape[1:]), x.dtype)])


def quantize(x: Shaped[ArrayLike, "*shape"]) -> Float[np.ndarray, "*shape"]:
    """Clips to [0, 1] and rounds to the nearest of 256 levels, as saving an 8-bit image does.

    Example:
        >>> quantize(np.array([-0.5, 0.5, 1.7])).tolist()
        [0.0, 0.5019607843137255, 1.0]
    """
    return np.round(np.clip(np.asarray(x, np.float64), 0.0, 1.0) * 255.0) / 255.0


def _check_seeds(seeds, clip):
    validation.images(seeds, "seeds")
    if seeds.ndim != 4:
        raise ValueError(f"seeds must be images (n, height, width, channels), got shape "
                         f"{tuple(seeds.shape)}")
    seeds = np.asarray(seeds, np.float32)
    if clip and len(seeds) and (seeds.min() < 0 or seeds.max() > 1):
        raise ValueError("seeds must lie in [0, 1] (the models' input range)")
    return seeds


def _transformation(transformation):
    """A name in ``constraints.TRANSFORMATIONS`` (its paper default) or an Optax
    transformation, as the transformation to chain."""
    if isinstance(transformation, optax.GradientTransformation):
        return transformation
    if isinstance(transformation, str) and transformation in constraints.TRANSFORMATIONS:
        return constraints.TRANSFORMATIONS[transformation]()
    raise ValueError(f"unknown transformation {transformation!r}; choose one of "
                     f"{tuple(constraints.TRANSFORMATIONS)} or pass an optax "
                     "GradientTransformation")


def _initial_coverage(counts, covered):
    if covered is None:
        return tuple(jnp.zeros(sum(c.values()), bool) for c in counts)
    if len(covered) != len(counts):
        raise ValueError(f"covered has {len(covered)} entries for {len(counts)} models")
    flat = []
    for c, masks in zip(counts, covered):
        if not isinstance(masks, Mapping) or list(masks) != list(c) \
                or any(np.shape(masks[k]) != (c[k],) for k in c):
            raise ValueError(f"covered masks must be {{site: bool[n]}} for sites {c}")
        flat.append(jnp.concatenate([jnp.asarray(masks[k], bool) for k in c]))
    return tuple(flat)


def _masks(counts, flat) -> dict[str, np.ndarray]:
    return activations.unflatten(counts, np.asarray(flat))


def generate(models: Sequence[Model], seeds: Shaped[ArrayLike, "n ..."], *,
             transformation: str | optax.GradientTransformation = "light",
             weight_diff: float = 1.0, weight_nc: float = 0.1, step: float = 10.0,
             iterations: int = 50, threshold: float = 0.0, target: int | None = None,
             neuron_choice: str = "iteration", scores: str = "probabilities",
             stop: str = "target", key: ArrayLike, clip: bool = True, batch_size: int = 256,
             covered: Sequence[Mapping[str, ArrayLike]] | None = None) -> Result:
    """Finds difference-inducing inputs from ``seeds`` by DeepXplore's joint gradient ascent.

    For each seed on which all models agree, climbs :func:`joint_objective` for at most
    ``iterations`` steps: ``x <- x + step * constraint(g / (rms(g) + 1e-5))``, the models
    seeing ``clip(x)``; it stops as soon as the seed's target model differs (``stop``). The
    neuron term targets, per model, a neuron drawn uniformly from those not yet covered, anew at
    every iteration (or once per seed). Coverage (DeepXplore's convention: each layer min-max
    scaled per input, conv channels averaged, covered when ``> threshold``) is updated with every
    difference-inducing input, including seeds the models already disagree on (these are
    reported with ``iterations == 0`` and not climbed).

    The defaults are the paper's algorithm; ``**VARIANTS["code"]``, ``clip=False`` and
    ``constraints.occlusion(start=(0, 0))`` the released code's (see the module docstring).
    Deterministic under ``key``; the hyperparameters and ``target`` are traced (new values do
    not recompile), the other options and ``batch_size`` compiled in.

    Args:
        models: two or more NNX models that take the seeds and have the same classes.
        seeds: images ``(n, h, w, c)`` in [0, 1].
        transformation: ``"light"``, ``"occlusion"``, ``"blackout"``, ``"none"`` (the paper's
            defaults), or an Optax transformation such as
            ``constraints.occlusion(start=(0, 0))`` or ``constraints.constraint(my_fn)``.
        weight_diff: lambda1, the weight of pushing the target model off the agreed class.
        weight_nc: lambda2, the weight of the uncovered neurons' outputs.
        step: the gradient ascent step ``s``, ``> 0``.
        iterations: the most gradient steps per seed.
        threshold: the coverage threshold ``t`` (on min-max scaled outputs).
        target: the index of the model pushed away, for every seed (the code's ``-t``); ``None``
            draws one per seed (the paper).
        neuron_choice: ``"iteration"`` (the paper) or ``"seed"`` (the code).
        scores: ``"probabilities"`` (the paper) or ``"logits"`` (the code).
        stop: ``"target"``, when the target's prediction differs from every other model's (the
            paper), or ``"any"``, when any two models disagree (the code).
        key: the source of everything random (targets, neuron choices, rectangles, patches),
            e.g. ``jax.random.key(0)`` (a legacy ``jax.random.PRNGKey`` works too).
        clip: show the models the seed plus all steps clipped to [0, 1]; ``False`` never clips
            (the released code).
        batch_size: seeds advanced together (at most as many as there are seeds).
        covered: per model ``{site: bool[neurons]}`` to continue from (``Result.covered`` of
            an earlier run); nothing covered when ``None``.

    Returns:
        A :class:`Result`.

    Example:
        >>> from workbench import models as zoo
        >>> nets = [zoo.create(name, seed=0) for name in ("lenet1", "lenet4")]
        >>> seeds = np.full((4, 28, 28, 1), 0.5, np.float32)
        >>> r = generate(nets, seeds, key=jax.random.key(0), iterations=3, batch_size=4)
        >>> r.predictions.shape[0], len(r.inputs) == len(r.seed_index) == len(r.iterations)
        (2, True)

    References:
        Pei et al., DeepXplore, SOSP 2017, Algorithm 1 and section 6; released code
        ``MNIST/gen_diff.py``.
    """
    seeds = _check_seeds(seeds, clip)
    graphdefs, states, counts = _check_models(models, seeds)
    options = climbing.Options(transformation=_transformation(transformation), clip=bool(clip),
                               scores=validation.choice(scores, "scores", SCORES),
                               stop=validation.choice(stop, "stop", STOPS),
                               per_iteration=validation.choice(neuron_choice, "neuron_choice",
                                                               NEURON_CHOICES) == "iteration")
    constraints.check(options.transformation, seeds.shape[1:])  # a rectangle outside the image
    hyper = {"weight_diff": validation.scalar(weight_diff, "weight_diff"),
             "weight_nc": validation.scalar(weight_nc, "weight_nc"),
             "step": validation.scalar(step, "step", above=0.0),
             "iterations": jnp.int32(validation.positive_int(iterations, "iterations")),
             "threshold": validation.scalar(threshold, "threshold")}
    target = jnp.int32(_check_target(target, len(models)))
    # No wider than the seeds: a pool of empty slots would cost every iteration for nothing.
    slots = min(validation.positive_int(batch_size, "batch_size"), max(len(seeds), 1))
    key = validation.key(key)
    covered = _initial_coverage(counts, covered)
    before = np.array([coverage.ratio(_masks(c, f)) for c, f in zip(counts, covered)])

    n = len(seeds)
    padded = -(-n // slots) * slots
    valid = np.arange(padded) < n
    context, carry = climbing.setup(graphdefs, states, _pad(seeds, padded), valid, covered, key,
                                    hyper["threshold"], target, slots=slots)
    _, run = climbing.climber()(graphdefs, states, context, carry, hyper, options=options,
                                slots=slots)
    found = np.asarray(run["out_found"])[:n]
    index = np.flatnonzero(found).astype(np.int32)
    inputs = np.asarray(run["out_x"])[:n][index]
    preds = np.asarray(run["out_preds"])[:, :n][:, index].astype(np.int32)
    covered = tuple(_masks(c, f) for c, f in zip(counts, run["covered"]))
    after = np.array([coverage.ratio(m) for m in covered])
    still = _predictions(graphdefs, states, quantize(inputs).astype(np.float32), slots)
    survives = np.any(still != still[:1], axis=0) if len(index) else np.zeros(0, bool)
    seed_targets = np.asarray(context["targets"])[:n].astype(np.int32)
    return Result(inputs=inputs, seed_index=index, predictions=preds,
                  iterations=np.asarray(run["out_it"])[:n][index].astype(np.int32),
                  targets=seed_targets[index], coverage_before=before, coverage_after=after,
                  covered=covered, seeds_climbed=int(context["n_agree"]),
                  seed_targets=seed_targets, survives_quantisation=survives)
