"""DeepFault's suspiciousness-guided input synthesis: gradient ascent on chosen neurons.

From correctly classified seed inputs, DeepFault (Eniser, Gerasimou and Sen, FASE 2019,
section 3.3, Algorithm 1) synthesises new inputs that raise the activations of the suspicious
neurons, staying close to the seed. One step, as the released code does it
(``input_synthesis.py`` / ``mutate_via_gradient.py``):

1. for each selected neuron ``j``, the gradient ``g_j`` of its activation with respect to
   the input (the code's ``K.mean(layer.output[..., j])`` on a batch of one);
2. optionally ``normalize`` each ``g_j`` (see below), then average over the ``k`` neurons;
3. multiply by the step size and clip each pixel's change to ``[-d, d]``;
4. clip the result to the valid pixel range ``[0, 1]``.

Steps 3-4 are the projection onto the intersection of the L-infinity ball of radius ``d``
around the seed and the box ``[0, 1]``; with ``n_steps > 1`` the same projected step repeats
from the current input (the iterative variant, like projected gradient ascent). The update is
an Optax transformation (``optax.scale(step_size)``) followed by the projections of
``optax.projections``; all seeds run as one batch inside one ``jax.jit``, looping with
``lax.fori_loop``. Step size and ``d`` are traced: changing them does not recompile.

Steps 1-2 cost one batched backward pass, not ``k``: the mean of the neurons' gradients is the
gradient of their mean activation. Only ``normalize="rms"``, which rescales each neuron's
gradient before the mean, takes the per-neuron Jacobian (``k`` backward passes).

``normalize``:

- ``"none"``: the raw gradients (the released code after the paper, and the default);
- ``"rms"``: each neuron's gradient divided by its root mean square plus ``1e-5`` before
  averaging (the paper-era code's ``utils.normalize``, called there an "L2 norm");
- ``"sign"``: the sign of the averaged gradient, so every pixel moves by ``step_size``
  (before clipping): a fixed L-infinity budget, like FGSM;
- ``"l2"``: the averaged gradient scaled to unit L2 norm: a fixed L2 budget ``step_size``.

The last two equalise the perturbation budget between suspicious and random neurons, whose
raw gradients differ in size.

Neurons are read with :func:`workbench.activations.neurons` under a named convention; by
default the objective is the pre-activation value (``convention="pre"``), which is what the
released code differentiates: its Keras models apply the nonlinearity as a separate layer, and
``layer.output`` of a weighted layer is pre-activation. A post-ReLU objective
(``convention="post"``) has no gradient where the neuron is off.

The paper's text describes an iterative search that keeps a candidate only when the
suspicious neurons' activations rise; the released code takes the single step above.
"""

import functools
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Int, Shaped

from workbench import activations, validation

__all__ = [
    "NORMALIZE",
    "Synthesis",
    "choose_seeds",
    "cross_entropy",
    "synthesize",
    "target_indices",
]

NORMALIZE = ("none", "rms", "sign", "l2")

Model = Any  # a Flax NNX model (only the model layer imports Flax)
# The neurons to raise: (site, index) pairs or flat ints, or one of either (checked by
# target_indices, so annotated loosely: a wrong value gets its ValueError).
Targets = Any


class Synthesis(NamedTuple):
    """The result of :func:`synthesize` for ``n`` seeds and ``k`` target neurons."""

    inputs: jax.Array  # shape=(n, *input_shape): the synthesised inputs
    seeds: jax.Array  # shape=(n, *input_shape): the seeds they started from
    before: jax.Array  # shape=(n, k): target neurons' values on the seeds
    after: jax.Array  # shape=(n, k): target neurons' values on the synthesised inputs
    logits: jax.Array  # shape=(n, classes): the model's logits on the synthesised inputs
    predictions: jax.Array  # shape=(n,), dtype=int32: argmax of ``logits``
    l1: jax.Array  # shape=(n,): sum |x' - x|
    l2: jax.Array  # shape=(n,): sqrt(sum (x' - x)^2)
    linf: jax.Array  # shape=(n,): max |x' - x|


def _targets(x, graphdef, state, targets, conv):
    """The target neurons' values ``(n, k)`` and the logits for a batch ``x``."""
    result = activations.neurons(graphdef, state, x, conv)
    return activations.flatten(result.acts)[:, targets], result.logits


def _direction(jacobian, normalize: str):
    """The ascent direction from per-neuron input gradients ``(k, *input_shape)`` of one seed
    (``normalize="rms"``: each is normalised before they are averaged)."""
    axes = tuple(range(1, jacobian.ndim))
    rms = jnp.sqrt(jnp.mean(jacobian ** 2, axis=axes, keepdims=True))
    return (jacobian / (rms + 1e-5)).mean(axis=0)


def _finish(direction, normalize: str):
    """``"sign"`` and ``"l2"`` applied to one seed's averaged gradient."""
    if normalize == "sign":
        return jnp.sign(direction)
    if normalize == "l2":
        norm = jnp.sqrt(jnp.sum(direction ** 2))
        return jnp.where(norm > 0, direction / jnp.where(norm > 0, norm, 1.0), 0.0)
    return direction


def _gradients(x, graphdef, state, targets, normalize, conv):
    """Every seed's ascent direction at ``x`` ``(n, ...)`` and its target values ``(n, k)``.

    The mean of the ``k`` neurons' input gradients is the input gradient of their mean
    activation (linearity), so ``"none"``, ``"sign"`` and ``"l2"`` take one batched backward
    pass; ``"rms"`` normalises each neuron's gradient first and needs the per-neuron Jacobian
    (``k`` backward passes).
    """
    if normalize == "rms":
        def per_neuron(x):  # (k,) summed over the seeds, which do not interact
            values = _targets(x, graphdef, state, targets, conv)[0]
            return values.sum(axis=0), values

        jacobian, values = jax.jacrev(per_neuron, has_aux=True)(x)  # (k, n, ...)
        return jax.vmap(_direction, in_axes=(1, None))(jacobian, normalize), values

    def mean_activation(x):
        values = _targets(x, graphdef, state, targets, conv)[0]
        return values.mean(axis=1).sum(), values

    grads, values = jax.grad(mean_activation, has_aux=True)(x)
    return jax.vmap(functools.partial(_finish, normalize=normalize))(grads), values


def _synthesize_impl(graphdef, state, seeds, targets, step_size, d, *, normalize, n_steps,
                     conv):
    """DeepFault's projected ascent from every seed at once, then the measures (``seeds`` in
    the result is left for the caller to fill: returning an input would copy it)."""
    def step(x):
        direction, values = _gradients(x, graphdef, state, targets, normalize, conv)
        updates, _ = optax.scale(step_size).update(direction, optax.EmptyState())
        delta = optax.projections.projection_linf_ball(optax.apply_updates(x, updates) - seeds,
                                                       d)
        return optax.projections.projection_box(seeds + delta, 0.0, 1.0), values

    # The first step's forward pass reads the targets on the seeds ("before").
    inputs, before = step(seeds)
    if n_steps > 1:
        inputs = jax.lax.fori_loop(1, n_steps, lambda _, x: step(x)[0], inputs)
    after, logits = _targets(inputs, graphdef, state, targets, conv)
    # Flattened before subtracting: XLA's CPU backend reduces the rows ~1.5x faster so.
    n = seeds.shape[0]
    change = jnp.abs(inputs.reshape(n, -1) - seeds.reshape(n, -1))
    return Synthesis(inputs=inputs, seeds=None, before=before, after=after, logits=logits,
                     predictions=jnp.argmax(logits, axis=-1).astype(jnp.int32),
                     l1=change.sum(axis=1), l2=jnp.sqrt((change * change).sum(axis=1)),
                     linf=change.max(axis=1))


_synthesize = jax.jit(_synthesize_impl,
                      static_argnames=("graphdef", "normalize", "n_steps", "conv"))


def _is_pair(target) -> bool:
    """Whether ``target`` is one ``(site, index)`` pair (a tuple or a list)."""
    return isinstance(target, (tuple, list)) and len(target) == 2 and isinstance(target[0], str)


def target_indices(model: Model, input_shape: Sequence[int], targets: Targets, *,
                   convention: "str | activations.Convention" = "pre") -> Int[Array, " k"]:
    """Flat positions (among all neurons of ``convention``, in layer order) of ``(site, index)``
    pairs, or of already flat integer indices.

    Args:
        model: an NNX model that sows its activations.
        input_shape: the shape of one input, ``images.shape[1:]``.
        targets: ``(site, index)`` pairs or flat ints (a single pair such as ``("fc1", 3)``,
            or a single int, is one target); indices must be ints, never floats.
        convention: which values are the neurons (a name in ``activations.CONVENTIONS``).

    Example:
        >>> from workbench import models
        >>> target_indices(models.create("deepfault_3x50_relu"), (28, 28, 1), [("fc2", 3)]).tolist()
        [53]
    """
    counts = activations.neuron_counts(model, tuple(input_shape),
                                       convention=activations.as_convention(convention))
    return _flat_targets(counts, targets)


def _flat_targets(counts: dict[str, int], targets: Targets) -> Int[Array, " k"]:
    """:func:`target_indices` given the model's neuron counts."""
    total = sum(counts.values())
    if isinstance(targets, (jax.Array, np.ndarray)):
        flat = np.asarray(targets).reshape(-1) if np.ndim(targets) == 0 else np.asarray(targets)
    else:
        if _is_pair(targets) or validation.is_int(targets):
            targets = [targets]  # one target: ("fc1", 3) or a flat 7
        if isinstance(targets, (str, bytes)) or not isinstance(targets, Iterable):
            raise ValueError(f"targets must be a list of (site, index) pairs or flat ints, got "
                             f"{targets!r}")
        targets = list(targets)
        if not targets:
            raise ValueError("no target neurons")
        flat = []
        for i, target in enumerate(targets):
            if _is_pair(target):
                flat.append(activations.flat_index(counts, *target))
            elif validation.is_int(target):
                flat.append(int(target))
            else:
                raise ValueError(f"targets[{i}] must be a (site, index) pair or a flat int "
                                 f"index, got {target!r}")
        flat = np.array(flat)
    if flat.ndim != 1 or flat.size == 0 or not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"targets must be a non-empty list of (site, index) pairs or flat int "
                         f"indices, got {flat.dtype} of shape {flat.shape}")
    if (flat < 0).any() or (flat >= total).any():
        raise ValueError(f"target indices must lie in 0..{total - 1}, got {flat.tolist()}")
    return jnp.asarray(flat, jnp.int32)


def _check_unit_range(seeds) -> None:
    """Seeds in ``[0, 1]``: the projection's box, so every synthesised input lies within ``d``
    of its seed (from a seed of 2.0 the box alone moves it by 1.0)."""
    if seeds.size == 0 or validation.is_traced(seeds):
        return
    low, high = validation.extremes(seeds)
    if low < 0.0 or high > 1.0:
        raise ValueError(f"seeds must lie in [0, 1] (the pixel range synthesis projects onto), "
                         f"got values in [{low:g}, {high:g}]"
                         + (": raw 0-255 pixels? Divide them by 255"
                            if high > validation.PIXEL_LIMIT else ""))


def synthesize(model: Model, seeds: Shaped[ArrayLike, "n ..."], targets: Targets, *,
               step_size: validation.Float = 1.0, d: validation.Float = 0.1,
               normalize: str = "none", n_steps: validation.Int = 1, convention: "str | activations.Convention" = "pre"
               ) -> Synthesis:
    """Synthesises one input per seed that raises the target neurons' activations (DeepFault).

    Args:
        model: a zoo model or any NNX model that sows its activations.
        seeds: ``(n, ...)`` inputs in ``[0, 1]`` that the model takes, usually correctly
            classified (:func:`choose_seeds`); seeds outside ``[0, 1]`` are refused (the
            ascent projects onto ``[0, 1]``, so from such a seed it could not keep within
            ``d``).
        targets: the neurons to raise: ``(site, index)`` pairs (e.g. from
            :func:`workbench.suspiciousness.top_k`) or flat int indices; a single pair
            ``("fc1", 3)`` is one target.
        step_size: the gradient's multiplier, ``> 0`` (DeepFault's grid: 0.01, 0.1, 1, 10).
        d: the L-infinity radius around each seed (DeepFault: 0.1 on MNIST).
        normalize: ``"none"``, ``"rms"``, ``"sign"`` or ``"l2"`` (see the module docstring).
        n_steps: projected steps; 1 is the released code's single step.
        convention: which value is the neuron's activation: ``"pre"`` (default, as the
            released code) or ``"post"`` (a name in ``activations.CONVENTIONS`` or an
            ``activations.Convention``; its ``reduce`` says how a conv channel becomes a
            neuron, the spatial mean as DeepFault).

    Returns:
        A :class:`Synthesis`.

    Example:
        >>> from workbench import models
        >>> net = models.create("deepfault_3x50_relu")
        >>> x = jnp.full((2, 28, 28, 1), 0.5)
        >>> out = synthesize(net, x, [("fc1", 0), ("fc3", 7)], step_size=10.0, d=0.1)
        >>> out.inputs.shape, bool((out.linf <= 0.1 + 1e-6).all())
        ((2, 28, 28, 1), True)
        >>> bool((out.after.mean(axis=1) > out.before.mean(axis=1)).all())
        True

    References:
        Eniser, Gerasimou and Sen, "DeepFault", FASE 2019, section 3.3 and Algorithm 1; the
        released ``input_synthesis.py``.
    """
    validation.choice(normalize, "normalize", NORMALIZE)
    n_steps = validation.positive_int(n_steps, "n_steps")
    step_size = validation.scalar(step_size, "step_size", above=0.0)
    d = validation.scalar(d, "d", minimum=0.0)
    conv = activations.as_convention(convention)
    graphdef, state = activations.split(model)
    # On the device before the range checks: validation.extremes remembers a JAX array's
    # minimum and maximum, so the unit-range check and the model's input check share them.
    seeds = jnp.asarray(validation.images(seeds, "seeds"), jnp.float32)
    _check_unit_range(seeds)
    shape = activations.check_model_input((graphdef, state), seeds, "seeds")
    flat = _flat_targets(activations.neuron_counts((graphdef, state), shape, convention=conv),
                         targets)
    return _synthesize(graphdef, state, seeds, flat, step_size, d, normalize=normalize,
                       n_steps=n_steps, conv=conv)._replace(seeds=seeds)


def choose_seeds(labels: Int[ArrayLike, " n"], predictions: Int[ArrayLike, " n"], label: int,
                 n: int, *, key: ArrayLike) -> Int[np.ndarray, " n_seeds"]:
    """Indices of ``n`` inputs of true class ``label`` that the model classifies correctly,
    drawn without replacement under ``key`` (the released ``run.py`` draws 10 with Python's
    ``random.sample``).

    Raises:
        ValueError: fewer than ``n`` such inputs.

    Example:
        >>> choose_seeds(np.array([1, 1, 2, 1]), np.array([1, 0, 2, 1]), 1, 2,
        ...              key=jax.random.key(0)).tolist() in ([0, 3], [3, 0])
        True
    """
    key = validation.key(key)
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(f"labels and predictions must be 1-D of one length, got "
                         f"{labels.shape} and {predictions.shape}")
    pool = np.flatnonzero((labels == label) & (predictions == label))
    if n > len(pool):
        raise ValueError(f"only {len(pool)} correctly classified inputs of class {label}, "
                         f"asked for {n}")
    return pool[np.asarray(jax.random.choice(key, len(pool), (n,), replace=False))]


def cross_entropy(logits: Float[ArrayLike, "n classes"], labels: Int[ArrayLike, " n"]
                  ) -> Float[Array, " n"]:
    """Softmax cross-entropy per input (the "loss" of the model on synthesised inputs).

    Example:
        >>> round(float(cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([1]))[0]), 4)
        0.6931
    """
    return optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(logits),
                                                           jnp.asarray(labels, jnp.int32))
