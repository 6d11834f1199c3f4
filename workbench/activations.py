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

What counts as a neuron is one value, a :class:`Convention` (or the name of one in
``CONVENTIONS``), passed as ``convention=``. Its ``kind`` says which values are read:

- ``"post"`` (default): values sown as ``nnx.Intermediate``, the hidden layers after their
  nonlinearity. This is what DeepFault and the DeepGauge family count as neurons.
- ``"pre"``: values sown as :class:`PreActivation`, the same layers before the nonlinearity.
- ``"deepxplore"``: what the released DeepXplore code counts: every conv, pooling (sown as
  :class:`Pooling`) and dense layer, then the logits and the softmax layer, in layer order.

Its ``reduce`` says how a convolutional map ``(batch, h, w, c)`` becomes neurons: one value per
channel by the spatial mean (DeepXplore, NeuraL-Coverage), the maximum, or every position
(``"none"``, neurons ordered ``(h, w, c)`` row-major). Its ``scale="minmax"`` first min-max
scales each input's whole layer output (all positions and channels together) to [0, 1], as
DeepXplore's ``scale`` does before it takes the channel mean; a constant output scales to 0
everywhere, so it covers nothing at any threshold >= 0.

This module and :mod:`workbench.models` (with :mod:`workbench.train`) are the only ones that
import Flax. Everything else takes a model apart with :func:`split`, calls the pure
:func:`neurons` or :func:`forward` inside its own ``jax.jit`` (the structure is a static
argument, the weights are traced), and reads the layer order from :func:`neuron_counts`: a dict
leaving ``jax.jit`` comes back with sorted keys, so :func:`in_order` puts it back.

References:
    Pei et al., "DeepXplore", SOSP 2017, section 4 and its released code (``utils.py``).
    Eniser et al., "DeepFault", FASE 2019, section 3.
"""

import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np  # noqa: F401  (used by the doctests)
from flax import nnx
from jaxtyping import Array, ArrayLike, Float, Shaped

from workbench import validation
from workbench.sites import flat_index, flatten, in_order, site_index, unflatten

__all__ = [
    "CONVENTIONS",
    "KINDS",
    "REDUCTIONS",
    "Convention",
    "Pooling",
    "PreActivation",
    "Trace",
    "activations",
    "as_convention",
    "check_model_input",
    "flat_index",
    "flatten",
    "forward",
    "in_order",
    "merge",
    "neuron_counts",
    "neurons",
    "site_index",
    "split",
    "trace",
    "unflatten",
]

KINDS = ("post", "pre", "deepxplore")
REDUCTIONS = ("mean", "max", "none")

GraphDef = Any  # nnx.GraphDef: the model's structure, hashable (a static jit argument)
State = Any  # nnx.State: the model's weights, a pytree of arrays


class PreActivation(nnx.Variable):
    """A hidden layer's value before its nonlinearity, sown next to its post-activation twin."""


class Pooling(nnx.Variable):
    """A pooling layer's output; DeepXplore counts pooling channels as neurons."""


class Trace(NamedTuple):
    """One forward pass: the model's logits and its neurons per site, in layer order."""

    logits: jax.Array  # shape=(batch, classes)
    acts: dict[str, jax.Array]  # site -> shape=(batch, neurons)


class Convention(NamedTuple):
    """Which values are a model's neurons (see the module docstring). Hashable: a static
    argument of every jitted pass."""

    kind: str = "post"  # "post", "pre" or "deepxplore"
    reduce: str = "mean"  # "mean", "max" or "none": how a conv map becomes neurons
    scale: str | None = None  # None or "minmax": per input and layer, before ``reduce``


CONVENTIONS = {
    # DeepGauge (Ma et al. 2018, section 3) and DeepFault (Eniser et al. 2019, section 3):
    # hidden layers after the nonlinearity, one neuron per feature map (the spatial mean).
    "post": Convention("post", "mean", None),
    # The same layers before the nonlinearity: what DeepFault's released code ascends.
    "pre": Convention("pre", "mean", None),
    # DeepXplore's coverage (Pei et al. 2017, section 4.1; released ``utils.update_coverage``):
    # every conv, pooling and dense layer plus logits and softmax, each input's layer min-max
    # scaled before the channel mean.
    "deepxplore": Convention("deepxplore", "mean", "minmax"),
    # The raw values of the same neurons: what DeepXplore's joint objective climbs.
    "deepxplore_raw": Convention("deepxplore", "mean", None),
}


def as_convention(spec: "str | Convention") -> Convention:
    """The :class:`Convention` named by ``spec`` (a key of ``CONVENTIONS``), checked.

    Example:
        >>> as_convention("deepxplore")
        Convention(kind='deepxplore', reduce='mean', scale='minmax')
        >>> as_convention(Convention(reduce="max")).reduce
        'max'
    """
    if isinstance(spec, Convention):
        validation.choice(spec.kind, "kind", KINDS)
        validation.choice(spec.reduce, "reduce", REDUCTIONS)
        validation.choice(spec.scale, "scale", (None, "minmax"))
        return spec
    if isinstance(spec, str) and spec in CONVENTIONS:
        return CONVENTIONS[spec]
    raise ValueError(f"unknown convention {spec!r}; choose one of {tuple(CONVENTIONS)} or pass "
                     "an activations.Convention")


# ------------------------------------------------------------------ taking a model apart


def split(model: nnx.Module) -> tuple[GraphDef, State]:
    """A model as its structure (hashable, a static jit argument) and its weights (traced).

    The one way the rest of the package takes a model into ``jax.jit``; :func:`merge` is the
    way back.
    """
    if not isinstance(model, nnx.Module):
        raise ValueError(f"model must be a Flax NNX module, got {type(model).__name__}")
    return nnx.split(model)


def merge(graphdef: GraphDef, state: State) -> nnx.Module:
    """The model of :func:`split`, in evaluation mode (dropout off).

    Merge inside the trace that uses the model (a jit, a gradient, a loop body): NNX modules
    cannot be mutated (``nnx.capture``) from an inner trace level. Outside a trace the merged
    model shares its Variables (and arrays) with the one that was split: it is a view, not a
    copy; copy the state's arrays first to train a copy.
    """
    model = nnx.merge(graphdef, state)
    model.eval()
    return model


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


# Site order per (graphdef, kind), recorded while tracing: a dict leaving ``jax.jit`` comes
# back with sorted keys, and the layer order is only known inside the model.
_SITE_ORDER: dict[tuple, tuple[str, ...]] = {}
_COUNTS: dict[tuple, dict[str, int]] = {}  # neuron_counts: (structure, shapes, conv) -> counts


def _capture(model, x, kind: str):
    # One type per capture where names are shared: a site sows its pre- and post-activation
    # values under one name, and a capture of both would keep only one of them.
    if kind == "pre":
        logits, pre = nnx.capture(model, PreActivation)(x)
        return logits, _values(pre)
    if kind == "post":
        logits, post = nnx.capture(model, nnx.Intermediate)(x)
        return logits, _values(post)
    logits, post, pooled = nnx.capture(model, nnx.Intermediate, Pooling)(x)
    return logits, {**_values(post), **_values(pooled)}


def neurons(graphdef: GraphDef, state: State, x: Float[Array, "batch ..."],
            conv: Convention = CONVENTIONS["post"]) -> Trace:
    """The logits and neurons of the model ``(graphdef, state)`` on ``x``: a pure function.

    Call it inside your own ``jax.jit`` (``graphdef`` and ``conv`` static), a gradient or a loop
    body; inside the trace ``acts`` is in layer order. Nothing is checked here: check at your
    public boundary (:func:`check_model_input`, :func:`as_convention`).

    Example:
        >>> from workbench import models
        >>> g, s = split(models.create("lenet1", seed=0))
        >>> t = neurons(g, s, jnp.zeros((2, 28, 28, 1)), CONVENTIONS["deepxplore"])
        >>> list(t.acts)
        ['conv1', 'pool1', 'conv2', 'pool2', 'logits', 'softmax']
    """
    result = _neurons_of(merge(graphdef, state), x, conv)
    _SITE_ORDER[(graphdef, conv.kind)] = tuple(result.acts)
    return result


def _neurons_of(model, x, conv: Convention) -> Trace:
    logits, values = _capture(model, x, conv.kind)
    names = _ordered(model, values)
    if conv.kind == "deepxplore":
        values.update(logits=logits, softmax=jax.nn.softmax(logits))
        names += ["logits", "softmax"]
    acts = {}
    for name in names:
        value = _minmax(values[name]) if conv.scale == "minmax" else values[name]
        acts[name] = _reduce(value, conv.reduce)
    return Trace(logits, acts)


def forward(graphdef: GraphDef, state: State, x: Float[Array, "batch ..."]
            ) -> Float[Array, "batch classes"]:
    """The model's logits on ``x`` in evaluation mode: a pure function, as :func:`neurons`.

    The model runs under ``nnx.capture`` (its sown values are dropped, and XLA removes their
    computation): a model that sows under its layers' own names, as the README's ``MyNet``
    does, may only be called inside a capture.
    """
    return _capture(merge(graphdef, state), x, "post")[0]


@functools.partial(jax.jit, static_argnames=("graphdef", "conv"))
def _neurons_jit(graphdef, state, x, *, conv):
    return neurons(graphdef, state, x, conv)


# Why a model cannot take an input shape (``None``: it can), per (graphdef, shape, dtype).
_INPUT_PROBLEMS: dict[tuple, str | None] = {}


def _input_problem(graphdef, state, shape: tuple[int, ...], dtype) -> str | None:
    cache_key = (graphdef, shape, dtype)
    if cache_key not in _INPUT_PROBLEMS:
        x = jax.ShapeDtypeStruct((1, *shape), dtype)
        try:
            jax.eval_shape(functools.partial(_neurons_jit, graphdef, conv=CONVENTIONS["post"]),
                           state, x)
            _INPUT_PROBLEMS[cache_key] = None
        except Exception as error:  # noqa: BLE001  (any failure inside the model is the answer)
            text = str(error).strip().splitlines()
            _INPUT_PROBLEMS[cache_key] = f"{type(error).__name__}: {text[0] if text else ''}"
    return _INPUT_PROBLEMS[cache_key]


# Per-example shapes tried when an input does not fit, to say what the model takes: the common
# image shapes (MNIST, CIFAR-10), channel-last and channel-first, and flat.
_KNOWN_SHAPES = ((28, 28, 1), (32, 32, 3), (1, 28, 28), (3, 32, 32), (784,), (3072,))


def _candidates(shape: tuple[int, ...], batched: tuple[int, ...]):
    """``(per-example shape, hint)`` pairs to try for an input of shape ``batched``, most
    telling first: the same input as one unbatched example, with a channel axis added, with the
    channels moved last, then the common shapes (same rank first)."""
    yield batched, "a single unbatched input? Add the batch axis: x[None]"
    if len(shape) == 2:
        yield (*shape, 1), "a missing channel axis? Add it: x[..., None]"
    if len(shape) == 3 and shape[0] in (1, 3) and shape[2] not in (1, 3):
        yield (*shape[1:], shape[0]), ("channel-first images? The model takes them channel-last"
                                       " (NHWC): np.moveaxis(x, 1, -1)")
    for known in sorted(_KNOWN_SHAPES, key=lambda k: len(k) != len(shape)):
        if known != shape:
            yield known, None


def _expected_input(graphdef, state, shape, batched, dtype) -> tuple[tuple, str | None] | None:
    """A per-example shape the model runs on, found by tracing it on a few candidates."""
    for candidate, hint in _candidates(shape, batched):
        if candidate and _input_problem(graphdef, state, candidate, dtype) is None:
            return candidate, hint
    return None


def check_model_input(model_or_parts, x, name: str = "inputs") -> tuple[int, ...]:
    """Checks that ``x`` is a batch of finite floats the model can take; returns its input
    shape ``x.shape[1:]``. The model is traced once per input shape (nothing is computed).

    When ``x`` does not fit, the message gives its shape and a shape the model runs on, found
    by tracing the model on a few candidates (``x`` as one unbatched example, with a channel
    axis added, channel-last, the MNIST and CIFAR-10 shapes), else the model's own error.
    Inputs far beyond [0, 1] (raw 0-255 pixels) warn: :func:`workbench.validation.input_range`.

    Args:
        model_or_parts: an NNX model or its ``(graphdef, state)`` from :func:`split`.
        x: ``(batch, ...)`` inputs.
        name: the argument's name in error messages.

    Raises:
        ValueError: ``x`` is not a non-empty batch of finite floats, or the model cannot take
            its shape.

    Example:
        >>> from workbench import models
        >>> check_model_input(models.create("lenet1"), np.zeros((2, 28, 28, 1), np.float32))
        (28, 28, 1)
        >>> check_model_input(models.create("lenet1"), np.zeros((2, 32, 32, 3), np.float32))
        Traceback (most recent call last):
        ...
        ValueError: inputs of shape (2, 32, 32, 3) do not fit the model: it runs on (batch, 28, 28, 1) ...
    """
    validation.images(x, name, pixel_range=True)
    if len(x) == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)}); give at least "
                         f"one input")
    graphdef, state = (split(model_or_parts) if isinstance(model_or_parts, nnx.Module)
                       else model_or_parts)
    shape = tuple(int(d) for d in x.shape[1:])
    dtype = jnp.dtype(x.dtype)
    batched = tuple(int(d) for d in x.shape)
    _fits(graphdef, state, shape, batched, dtype, f"{name} of shape {batched} do not fit")
    return shape


def _fits(graphdef, state, shape, batched, dtype, given: str) -> None:
    """Raises the ``ValueError`` saying what the model takes unless it runs on ``shape``."""
    problem = _input_problem(graphdef, state, shape, dtype)
    if problem is None:
        return
    found = _expected_input(graphdef, state, shape, batched, dtype)
    if found is None:
        raise ValueError(f"{given} the model (no shape among {_KNOWN_SHAPES} fits it either; "
                         f"the model said: {problem})")
    expected, hint = found
    raise ValueError(f"{given} the model: it runs on (batch, {', '.join(map(str, expected))})"
                     f"{f'; {hint}' if hint else ''} (the model said: {problem})")


def trace(model: nnx.Module, x: Shaped[ArrayLike, "batch ..."], *,
          convention: "str | Convention" = "post") -> Trace:
    """Runs ``model`` on ``x`` in evaluation mode and returns its logits and neurons.

    Jitted per model structure and convention; the weights are traced values, so new weights
    or new inputs of the same shape do not recompile. Inside your own ``jax.jit`` use
    :func:`neurons`.

    Args:
        model: any Flax NNX model that sows its activations (see the module docstring).
        x: inputs, shape ``(batch, ...)`` as the model takes them, floating point, finite.
        convention: a :class:`Convention` or a name in ``CONVENTIONS``.

    Returns:
        A :class:`Trace` of the logits ``(batch, classes)`` and ``{site: (batch, neurons)}``.

    Example:
        >>> from workbench import models
        >>> net = models.create("lenet1", seed=0)
        >>> t = trace(net, jnp.zeros((2, 28, 28, 1)))
        >>> t.logits.shape, {k: v.shape for k, v in t.acts.items()}
        ((2, 10), {'conv1': (2, 4), 'conv2': (2, 12)})
    """
    conv = as_convention(convention)
    graphdef, state = split(model)
    check_model_input((graphdef, state), x)
    result = _neurons_jit(graphdef, state, x, conv=conv)
    return Trace(result.logits, in_order(result.acts, _SITE_ORDER[(graphdef, conv.kind)]))


def activations(model: nnx.Module, x: Shaped[ArrayLike, "batch ..."], *,
                convention: "str | Convention" = "post") -> dict[str, jax.Array]:
    """The neurons of every site of ``model`` on ``x``: ``trace(...).acts``.

    Example:
        >>> from workbench import models
        >>> acts = activations(models.create("lenet5", seed=0), jnp.zeros((3, 28, 28, 1)))
        >>> [(k, v.shape[1]) for k, v in acts.items()]
        [('conv1', 6), ('conv2', 16), ('fc1', 120), ('fc2', 84)]
    """
    return trace(model, x, convention=as_convention(convention)).acts


def neuron_counts(model_or_acts, input_shape: tuple[int, ...] | None = None, *,
                  convention: "str | Convention" = "post") -> dict[str, int]:
    """Neurons per site, in layer order, from activations or from a model (or its
    ``(graphdef, state)`` from :func:`split`) and an input shape.

    The input shape comes from the data (``images.shape[1:]``). Nothing is computed for a
    model: the shapes come from ``jax.eval_shape``. The keys' order is the layer order every
    pass restores with :func:`in_order`.

    Example:
        >>> from workbench import models
        >>> neuron_counts(models.create("lenet4", seed=0), (28, 28, 1), convention="deepxplore")
        {'conv1': 6, 'pool1': 6, 'conv2': 16, 'pool2': 16, 'fc1': 84, 'logits': 10, 'softmax': 10}
    """
    if isinstance(model_or_acts, Mapping):
        return {k: int(v.shape[-1]) for k, v in model_or_acts.items()}
    if input_shape is None:
        raise ValueError("neuron_counts(model, input_shape): the input shape is needed "
                         "(images.shape[1:])")
    conv = as_convention(convention)
    graphdef, state = (split(model_or_acts) if isinstance(model_or_acts, nnx.Module)
                       else model_or_acts)
    if not isinstance(input_shape, (tuple, list)) or not input_shape \
            or not all(validation.is_int(d) and d > 0 for d in input_shape):
        raise ValueError(f"input_shape must be a tuple of positive ints (images.shape[1:]), "
                         f"got {input_shape!r}")
    input_shape = tuple(int(d) for d in input_shape)
    # The counts depend on the structure and the weights' shapes only: remembered, since the
    # passes and synthesis ask on every call and the check and trace below cost milliseconds.
    key = (graphdef, input_shape, conv,
           tuple((tuple(v.shape), str(v.dtype)) for v in jax.tree.leaves(state)))
    if key not in _COUNTS:
        _fits(graphdef, state, input_shape, input_shape, jnp.dtype(jnp.float32),
              f"input_shape {input_shape} does not fit")
        x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
        shapes = jax.eval_shape(functools.partial(_neurons_jit, graphdef, conv=conv), state, x)
        if len(_COUNTS) >= 64:
            _COUNTS.clear()
        _COUNTS[key] = {k: int(shapes.acts[k].shape[-1])
                        for k in _SITE_ORDER[(graphdef, conv.kind)]}
    return dict(_COUNTS[key])
