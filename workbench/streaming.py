"""Streams whole datasets through a jitted fold in fixed-size batches, over every device.

One padding policy, used by every pass (:mod:`workbench.passes`): a dataset of ``n`` rows is
cut into batches of ``min(batch_size, n)`` rows, rounded up to a multiple of the device
count; every batch has that size, the last one zero-padded, and a boolean ``mask`` marks its
real rows (:func:`batches`). Every batch has the same shape, so nothing recompiles. The batch
axis is sharded over a one-axis ``jax.sharding.Mesh`` of all devices JAX sees
(:func:`batch_sharding`; one CPU by default, force several with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``); the running state and the parameters
are replicated.

A step is a pure function, compiled once per (step, shapes). Pass a module-level function, not
a new lambda per call, or it is compiled again each time.
"""

import functools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp  # noqa: F401  (used by the doctests)
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, ArrayLike, Shaped

from workbench import validation

__all__ = ["batch_rows", "batch_sharding", "batches", "fold"]


@functools.cache
def _mesh(devices: tuple) -> Mesh:
    return Mesh(np.array(devices), ("batch",))


def batch_sharding() -> NamedSharding:
    """Shards axis 0 over every device JAX sees."""
    return NamedSharding(_mesh(tuple(jax.devices())), PartitionSpec("batch"))


def _replicated() -> NamedSharding:
    return NamedSharding(_mesh(tuple(jax.devices())), PartitionSpec())


def batch_rows(n: int, batch_size: validation.Int) -> int:
    """The rows of every batch for ``n`` rows: ``min(batch_size, n)`` rounded up to a multiple
    of the device count (the one padding policy).

    Example:
        >>> batch_rows(10, 4), batch_rows(3, 1000)
        (4, 3)
    """
    batch_size = validation.positive_int(batch_size, "batch_size")
    devices = jax.device_count()
    rows = max(min(batch_size, int(n)), 1)
    return -(-rows // devices) * devices


def batches(arrays: tuple[Shaped[ArrayLike, "_n ..."], ...], batch_size: validation.Int
            ) -> Iterator[tuple[Shaped[Array, "_batch ..."], ...]]:
    """Yields ``(mask, *batch)``: every batch :func:`batch_rows` rows, the last zero-padded,
    ``mask`` true on its real rows, all sharded over the devices (:func:`batch_sharding`).

    Args:
        arrays: per-example arrays of one length (host or device memory).
        batch_size: the most rows per batch.

    Example:
        >>> [(m.tolist(), x.tolist()) for m, x in batches((np.arange(3.0),), 2)]
        [([True, True], [0.0, 1.0]), ([True, False], [2.0, 0.0])]
    """
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays of different lengths: {[len(a) for a in arrays]}")
    rows = batch_rows(n, batch_size)
    sharding = batch_sharding()
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        mask = np.arange(rows) < stop - start
        batch = []
        for a in arrays:
            chunk = np.asarray(a[start:stop])
            if stop - start < rows:
                pad = np.zeros((rows - (stop - start), *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            batch.append(jax.device_put(chunk, sharding))
        yield (jax.device_put(mask, sharding), *batch)


@functools.partial(jax.jit, static_argnames=("step",))
def _fold_step(step, state, mask, params, *batch):
    return step(state, mask, params, *batch)


def fold(step: Callable, state: Any, *arrays: Shaped[ArrayLike, "_n ..."],
         params: Any = None, batch_size: validation.Int = 1000) -> Any:
    """Folds ``step(state, mask, params, *batch) -> state`` over ``arrays`` batch by batch.

    Args:
        step: a pure, module-level function; ``mask`` is ``bool[batch]``, true on real rows.
        state: the initial state (any pytree of arrays).
        arrays: per-example arrays of one length (host or device memory), at least one.
        params: a pytree passed to every step as traced values (thresholds, profiles, weights).
        batch_size: the most rows per batch (see :func:`batch_rows`).

    Returns:
        The final state.

    Example:
        >>> def count(state, mask, params, x):
        ...     return state + jnp.sum(jnp.where(mask, x > params, False))
        >>> int(fold(count, jnp.int32(0), np.arange(10.0), params=4.5, batch_size=4))
        5
    """
    if not arrays or len(arrays[0]) == 0:
        raise ValueError("fold needs at least one non-empty array to stream")
    # Every step's state comes back replicated over the mesh; the first one goes in that way
    # too, so that the first batch and the others share one compilation.
    state, params = jax.device_put((state, params), _replicated())
    for mask, *batch in batches(arrays, batch_size):
        state = _fold_step(step, state, mask, params, *batch)
    return state
