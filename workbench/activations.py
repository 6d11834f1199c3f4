"""Reads the neurons of any Flax NNX model: every hidden layer's values as ``(batch, neurons)``.

A model exposes its neurons by sowing them in ``__call__``; nothing is rewritten::

    class MyNet(nnx.Module):
        sites = ("fc1", "fc2")                 # optional: layer order (else sorted by name)

        def __init__(self, rngs):
            self.fc1 = nnx.Linear(784, 64, rngs=rngs)
            self.fc2 = nnx.Linear(64, 32, rngs=rngs)
            self.out = nnx.Linear(32, 10, rngs=rngs)

        def __call__(self, x):
            h = x.reshape(x.shape[0], -1)
            h = nnx.relu(self.fc1(h))
            self.sow(nnx.Intermediate, "fc1", h)       # post-activation: the neurons
            z = self.fc2(h)
            self.sow(PreActivation, "fc2", z)          # optional: before the nonlinearity
            h = nnx.relu(z)
            self.sow(nnx.Intermediate, "fc2", h)
            return self.out(h)                         # logits

Three kinds of value are read (``kind=``):

- ``"post"`` (default): values sown as ``nnx.Intermediate``, the hidden layers after their
  nonlinearity. This is what DeepFault and the DeepGauge family count as neurons.
- ``"pre"``: values sown as :class:`PreActivation`, the same layers before the nonlinearity.
- ``"deepxplore"``: what the released DeepXplore code counts: every conv, pooling (sown as
  :class:`Pooling`) and dense layer, then the logits and the softmax layer, in layer order.

Convolutional maps ``(batch, h, w, c)`` become one value per channel by the spatial mean
(DeepXplore, NeuraL-Coverage), the maximum, or are kept whole (``reduce="none"``, neurons
ordered ``(h, w, c)`` row-major). ``scale="minmax"`` first min-max scales each input's whole
layer output (all positions and channels together) to [0, 1], as DeepXplore's ``scale`` does
before it takes the channel mean; a constant output scales to 0 everywhere.

References:
    Pei et al., "DeepXplore", SOSP 2017, section 4 and its released code (``utils.py``).
    Eniser et al., "DeepFault", FASE 2019, section 3.
"""

import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = [
    "PreActivation", "Pooling", "Trace", "KINDS", "REDUCTIONS",
    "trace", "activations", "neuron_counts", "flatten", "flat_index", "site_index",
]

KINDS = ("post", "pre", "deepxplore")
REDUCTIONS = ("mean", "max", "none")


class PreActivation(nnx.Variable):
    """A hidden layer's value before its nonlinearity, sown next to its post-activation twin."""


class Pooling(nnx.Variable):
    """A pooling layer's output; DeepXplore counts pooling channels as neurons."""


class Trace(NamedTuple):
    """One forward pass: the model's logits and its neurons per site, in layer order."""

    logits: jax.Array  # shape=(batch, classes)
    acts: dict[str, jax.Array]  # site -> shape=(batch, neurons)


def _values(state) -> dict[str, jax.Array]:
    """Flattens a captured state to ``{name: value}``; nested modules give dotted names."""
    out = {}
    for path, leaf in nnx.to_flat_state(state):
        value = leaf.get_value() if hasattr(leaf, "get_value") else leaf
        name = ".".join(str(p) for p in path)
        out[name] = value[0] if isinstance(value, tuple) else value
    return out


def _ordered(model, values: Mapping[str, jax.Array]) -> list[str]:
    order = getattr(model, "sites", None)
    if order is None:
        return sorted(values)
    return [name for name in order if name in values] + sorted(set(values) - set(order))


def _minmax(value: jax.Array) -> jax.Array:
    axes = tuple(range(1, value.ndim))
    low = value.min(axis=axes, keepdims=True)
    high = value.max(axis=axes, keepdims=True)
    span = high - low
    scaled = (value - low) / jnp.where(span > 0, span, 1.0)
    # Pin the extremes: XLA may fuse ``value - low`` into a multiply-add whose rounding leaves
    # the minimum at 1e-9 instead of 0, which flips coverage at threshold 0.
    scaled = jnp.where(value <= low, 0.0, jnp.where(value >= high, 1.0, scaled))
    return jnp.where(span > 0, scaled, 0.0)


def _reduce(value: jax.Array, reduce: str) -> jax.Array:
    if value.ndim == 2:
        return value
    if reduce == "none":
        return value.reshape(value.shape[0], -1)
    spatial = tuple(range(1, value.ndim - 1))
    return value.mean(axis=spatial) if reduce == "mean" else value.max(axis=spatial)


def _check(kind: str, reduce: str, scale: str | None) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of {KINDS}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"unknown reduce {reduce!r}; choose one of {REDUCTIONS}")
    if scale not in (None, "minmax"):
        raise ValueError(f"unknown scale {scale!r}; choose None or 'minmax'")


def _check_input(x) -> None:
    if not hasattr(x, "ndim") or x.ndim < 2:
        raise ValueError(f"inputs must be a batched array, got {type(x).__name__} "
                         f"of shape {getattr(x, 'shape', None)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"inputs must be floating point in the model's range, got {x.dtype}")
    if isinstance(x, np.ndarray):
        finite = np.isfinite(x).all()
    elif isinstance(x, jax.core.Tracer):
        return
    else:
        finite = jnp.isfinite(x).all()
    if not bool(finite):
        raise ValueError("inputs contain NaN or infinity")


def _trace_model(model, x, kind: str, reduce: str, scale: str | None) -> Trace:
    # One type per capture where names are shared: a site sows its pre- and post-activation
    # values under one name, and a capture of both would keep only one of them.
    if kind == "pre":
        logits, pre = nnx.capture(model, PreActivation)(x)
        values = _values(pre)
    elif kind == "post":
        logits, post = nnx.capture(model, nnx.Intermediate)(x)
        values = _values(post)
    else:
        logits, post, pooled = nnx.capture(model, nnx.Intermediate, Pooling)(x)
        values = {**_values(post), **_values(pooled)}
    names = _ordered(model, values)
    if kind == "deepxplore":
        values.update(logits=logits, softmax=jax.nn.softmax(logits))
        names += ["logits", "softmax"]
    acts = {}
    for name in names:
        value = _minmax(values[name]) if scale == "minmax" else values[name]
        acts[name] = _reduce(value, reduce)
    return Trace(logits, acts)


# Site order per (graphdef, kind), recorded while tracing: a dict leaving ``jax.jit`` comes
# back with sorted keys, and the layer order is only known inside the model.
_SITE_ORDER: dict[tuple, tuple[str, ...]] = {}


@functools.partial(jax.jit, static_argnames=("graphdef", "kind", "reduce", "scale"))
def _trace_jit(graphdef, state, x, *, kind, reduce, scale):
    model = nnx.merge(graphdef, state)
    model.eval()
    result = _trace_model(model, x, kind, reduce, scale)
    _SITE_ORDER[(graphdef, kind)] = tuple(result.acts)
    return result


def _in_order(graphdef, kind, result: Trace) -> Trace:
    order = _SITE_ORDER[(graphdef, kind)]
    return Trace(result.logits, {name: result.acts[name] for name in order})


def trace(model: nnx.Module, x: jax.Array, *, kind: str = "post", reduce: str = "mean",
          scale: str | None = None) -> Trace:
    """Runs ``model`` on ``x`` in evaluation mode and returns its logits and neurons.

    Jitted per model structure; the weights are traced values, so new weights or new inputs of
    the same shape do not recompile. Works inside a caller's ``jax.jit`` too.

    Args:
        model: any Flax NNX model that sows its activations (see the module docstring).
        x: inputs, shape ``(batch, ...)`` as the model takes them, floating point, finite.
        kind: ``"post"``, ``"pre"`` or ``"deepxplore"`` (see the module docstring).
        reduce: ``"mean"``, ``"max"`` or ``"none"``: how a conv map becomes neurons.
        scale: ``None`` or ``"minmax"`` (per input and layer, before ``reduce``).

    Returns:
        A :class:`Trace` of the logits ``(batch, classes)`` and ``{site: (batch, neurons)}``.

    Example:
        >>> from workbench import models
        >>> net = models.create("lenet1", seed=0)
        >>> t = trace(net, jnp.zeros((2, 28, 28, 1)))
        >>> t.logits.shape, {k: v.shape for k, v in t.acts.items()}
        ((2, 10), {'conv1': (2, 4), 'conv2': (2, 12)})
    """
    _check(kind, reduce, scale)
    _check_input(x)
    graphdef, state = nnx.split(model)
    result = _trace_jit(graphdef, state, x, kind=kind, reduce=reduce, scale=scale)
    return _in_order(graphdef, kind, result)


def activations(model: nnx.Module, x: jax.Array, *, kind: str = "post", reduce: str = "mean",
                scale: str | None = None) -> dict[str, jax.Array]:
    """The neurons of every site of ``model`` on ``x``: ``trace(...).acts``.

    Example:
        >>> from workbench import models
        >>> acts = activations(models.create("lenet5", seed=0), jnp.zeros((3, 28, 28, 1)))
        >>> [(k, v.shape[1]) for k, v in acts.items()]
        [('conv1', 6), ('conv2', 16), ('fc1', 120), ('fc2', 84)]
    """
    return trace(model, x, kind=kind, reduce=reduce, scale=scale).acts


def neuron_counts(model_or_acts, input_shape: tuple[int, ...] | None = None, **options
                  ) -> dict[str, int]:
    """Neurons per site, in layer order, from activations or from a model and an input shape.

    ``options`` are :func:`trace`'s ``kind``, ``reduce`` and ``scale``. Nothing is computed for
    a model: the shapes come from ``jax.eval_shape``.

    Example:
        >>> from workbench import models
        >>> neuron_counts(models.create("lenet4", seed=0), (28, 28, 1), kind="deepxplore")
        {'conv1': 6, 'pool1': 6, 'conv2': 16, 'pool2': 16, 'fc1': 84, 'logits': 10, 'softmax': 10}
    """
    if isinstance(model_or_acts, Mapping):
        return {k: int(v.shape[-1]) for k, v in model_or_acts.items()}
    if input_shape is None:
        raise ValueError("neuron_counts(model, input_shape): the input shape is needed")
    kind, reduce, scale = (options.get("kind", "post"), options.get("reduce", "mean"),
                           options.get("scale"))
    _check(kind, reduce, scale)
    graphdef, state = nnx.split(model_or_acts)
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    shapes = jax.eval_shape(
        functools.partial(_trace_jit, graphdef, kind=kind, reduce=reduce, scale=scale), state, x)
    shapes = _in_order(graphdef, kind, shapes)
    return {k: int(v.shape[-1]) for k, v in shapes.acts.items()}


def flatten(acts: Mapping[str, jax.Array]) -> jax.Array:
    """Concatenates the sites into ``(batch, total_neurons)``, in the dict's order."""
    return jnp.concatenate([v for v in acts.values()], axis=-1)


def flat_index(counts: Mapping[str, int], site: str, index):
    """The position of neuron ``(site, index)`` among all neurons of ``counts``, in order.

    Example:
        >>> flat_index({"conv1": 6, "conv2": 16}, "conv2", 3)
        9
    """
    if site not in counts:
        raise ValueError(f"unknown site {site!r}; the sites are {list(counts)}")
    index_array = np.asarray(index)
    if np.any(index_array < 0) or np.any(index_array >= counts[site]):
        raise ValueError(f"neuron index {index} is outside site {site!r} of {counts[site]} neurons")
    offset = 0
    for name, count in counts.items():
        if name == site:
            return offset + index
        offset += count


def site_index(counts: Mapping[str, int], flat) -> tuple[str, int]:
    """The ``(site, index)`` of the neuron at flat position ``flat``: the inverse of
    :func:`flat_index`.

    Example:
        >>> site_index({"conv1": 6, "conv2": 16}, 9)
        ('conv2', 3)
    """
    flat = int(flat)
    total = sum(counts.values())
    if not 0 <= flat < total:
        raise ValueError(f"flat index {flat} is outside 0..{total - 1}")
    for name, count in counts.items():
        if flat < count:
            return name, flat
        flat -= count
    raise AssertionError("unreachable")
