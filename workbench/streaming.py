"""Streams a whole dataset through a jitted fold in fixed-size batches, over every device.

Every batch has the same shape, so nothing recompiles: the last one is zero-padded and a
boolean ``mask`` marks its real rows. The batch axis is sharded over a one-axis
``jax.sharding.Mesh`` of all devices JAX sees (one CPU by default; force several with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``); the running state is replicated.

A step is a pure function, compiled once per (step, model structure, options). Pass a
module-level function, not a new lambda per call, or it is compiled again each time.
"""

import functools

import jax
import jax.numpy as jnp  # noqa: F401  (used by the doctests)
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from workbench import activations

__all__ = ["fold", "fold_model", "trace_batches", "batch_sharding"]


@functools.cache
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), ("batch",))


def batch_sharding() -> NamedSharding:
    """Shards axis 0 over every device JAX sees."""
    return NamedSharding(_mesh(tuple(jax.devices())), PartitionSpec("batch"))


def _round_batch(batch_size: int) -> int:
    devices = jax.device_count()
    return -(-batch_size // devices) * devices


def _batches(arrays, batch_size: int):
    """Yields ``(mask, *batch)`` with every batch ``batch_size`` rows, the last zero-padded."""
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays of different lengths: {[len(a) for a in arrays]}")
    sharding = batch_sharding()
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        mask = np.zeros(batch_size, bool)
        mask[: stop - start] = True
        batch = []
        for a in arrays:
            chunk = np.asarray(a[start:stop])
            if stop - start < batch_size:
                pad = np.zeros((batch_size - (stop - start), *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            batch.append(jax.device_put(chunk, sharding))
        yield (jax.device_put(mask, sharding), *batch)


@functools.partial(jax.jit, static_argnames=("step",))
def _fold_step(step, state, mask, params, *batch):
    return step(state, mask, params, *batch)


def fold(step, state, *arrays, params=None, batch_size: int = 1000):
    """Folds ``step(state, mask, params, *batch) -> state`` over ``arrays`` batch by batch.

    Args:
        step: a pure, module-level function; ``mask`` is ``bool[batch]``, true on real rows.
        state: the initial state (any pytree of arrays).
        arrays: per-example arrays of one length (host or device memory).
        params: a pytree passed to every step as traced values (thresholds, profiles).
        batch_size: rows per batch, rounded up to a multiple of the device count.

    Returns:
        The final state.

    Example:
        >>> def count(state, mask, params, x):
        ...     return state + jnp.sum(jnp.where(mask, x > params, False))
        >>> int(fold(count, jnp.int32(0), np.arange(10.0), params=4.5, batch_size=4))
        5
    """
    batch_size = _round_batch(batch_size)
    for mask, *batch in _batches(arrays, batch_size):
        state = _fold_step(step, state, mask, params, *batch)
    return state


@functools.partial(jax.jit, static_argnames=("step", "graphdef", "kind", "reduce", "scale"))
def _fold_model_step(step, graphdef, state, model_state, mask, params, images, *extra,
                     kind, reduce, scale):
    model = nnx.merge(graphdef, model_state)
    model.eval()
    trace = activations._trace_model(model, images, kind, reduce, scale)
    return step(state, trace, mask, params, *extra)


def fold_model(model: nnx.Module, images, step, state, *extra, params=None,
               batch_size: int = 1000, kind: str = "post", reduce: str = "mean",
               scale: str | None = None):
    """Folds ``step(state, trace, mask, params, *extra_batch) -> state`` over a dataset's
    forward passes: one jitted pass per batch computes the model's
    :class:`~workbench.activations.Trace` and folds it in.

    Args:
        model: any NNX model that sows its activations.
        images: inputs, ``(n, ...)``.
        step: a pure, module-level function of the running state, the batch's ``Trace``
            (``acts`` in layer order), ``mask: bool[batch]``, ``params`` and the batch of each
            ``extra`` array.
        state: the initial state.
        extra: more per-example arrays (labels, say), batched alongside ``images``.
        params: a pytree passed to every step as traced values.
        batch_size: rows per batch, rounded up to a multiple of the device count.
        kind, reduce, scale: as :func:`workbench.activations.trace`.

    Returns:
        The final state.
    """
    activations._check(kind, reduce, scale)
    if len(images) == 0:
        raise ValueError("no inputs to stream")
    activations._check_input(images)
    graphdef, model_state = nnx.split(model)
    batch_size = _round_batch(batch_size)
    for mask, batch_images, *batch_extra in _batches((images, *extra), batch_size):
        state = _fold_model_step(step, graphdef, state, model_state, mask, params,
                                 batch_images, *batch_extra, kind=kind, reduce=reduce,
                                 scale=scale)
    return state


def trace_batches(model: nnx.Module, images, *, batch_size: int = 1000, kind: str = "post",
                  reduce: str = "mean", scale: str | None = None) -> activations.Trace:
    """The :class:`~workbench.activations.Trace` of every input, gathered in host memory.

    Batches have a fixed size (the last one zero-padded and cut back), so one compilation
    serves the whole dataset. For datasets whose neurons do not fit in memory, fold instead.

    Returns:
        A ``Trace`` of NumPy arrays: logits ``(n, classes)`` and ``{site: (n, neurons)}`` in
        layer order.

    Example:
        >>> from workbench import models
        >>> t = trace_batches(models.create("lenet1"), np.zeros((5, 28, 28, 1), np.float32),
        ...                   batch_size=2)
        >>> t.logits.shape, t.acts["conv2"].shape
        ((5, 10), (5, 12))
    """
    activations._check(kind, reduce, scale)
    if len(images) == 0:
        raise ValueError("no inputs to trace")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    activations._check_input(images)
    graphdef, model_state = nnx.split(model)
    batch_size = min(batch_size, len(images))
    logits, parts = [], []
    for mask, batch in _batches((images,), batch_size):
        real = int(mask.sum())
        # The inputs were checked once above; ``trace`` would check and split per batch.
        result = activations._in_order(graphdef, kind, activations._trace_jit(
            graphdef, model_state, batch, kind=kind, reduce=reduce, scale=scale))
        logits.append(np.asarray(result.logits)[:real])
        parts.append({site: np.asarray(value)[:real] for site, value in result.acts.items()})
    return activations.Trace(np.concatenate(logits),
                             {site: np.concatenate([p[site] for p in parts]) for site in parts[0]})
