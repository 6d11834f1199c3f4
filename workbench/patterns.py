"""Top-k neuron patterns (DeepGauge's TKNP): how many distinct layer-wise top-k patterns.

An input's pattern is the tuple, over layers (sites), of the set of its ``k`` most active
neurons there (:func:`top_k_mask` gives it as booleans). TKNP counts the distinct patterns a
set of inputs gives: :func:`top_k_neuron_patterns` in one shot, or as a running state
(:func:`patterns_init` / :func:`patterns_update` / :func:`patterns_count`) that keeps the
distinct patterns on the device as packed bits, so a dataset streams through in fixed-size
batches (:func:`workbench.passes.model_patterns`) and a generator can ask what a batch added.
TKNC, the neurons that are in some input's pattern, is
:func:`workbench.coverage.top_k_neuron_coverage`.

References:
    Ma et al., "DeepGauge: Multi-Granularity Testing Criteria for Deep Learning Systems", ASE
    2018, section 3.2 (top-k neuron coverage and patterns).
"""

import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from workbench import validation

__all__ = [
    "PatternState",
    "patterns_count",
    "patterns_init",
    "patterns_update",
    "top_k_mask",
    "top_k_neuron_patterns",
]

Acts = validation.Acts  # {site: (batch, neurons)}
RowMask = validation.RowMask  # bool[batch] or None


def top_k_mask(value: Float[Array, "*rows neurons"], *, k: int) -> Bool[Array, "*rows neurons"]:
    """Each row's ``k`` largest entries as a mask (all of a row shorter than ``k``); ties go
    to the lower index (``jax.lax.top_k``), rows along the last axis. Pure, unchecked: for use
    inside a jitted kernel.

    Example:
        >>> top_k_mask(jnp.array([[3.0, 1.0, 3.0], [0.0, 2.0, 1.0]]), k=2).tolist()
        [[True, False, True], [False, True, True]]
    """
    k = min(k, value.shape[-1])
    _, index = jax.lax.top_k(value, k)
    return (index[..., None] == jnp.arange(value.shape[-1])[(None,) * index.ndim]).any(axis=-2)


def _patterns(values: tuple, k: int):
    """``bool[batch, total]``: every input's pattern, the sites side by side."""
    return jnp.concatenate([top_k_mask(value, k=k) for value in values], axis=1)


_patterns_jit = jax.jit(_patterns, static_argnames=("k",))


def _checked(acts, mask):
    acts = validation.acts(acts)
    return acts, validation.row_mask(mask, next(iter(acts.values())).shape[0])


def top_k_neuron_patterns(acts: Acts, *, k: validation.Int, mask: RowMask = None) -> int:
    """DeepGauge's top-k neuron patterns (TKNP): how many distinct patterns the inputs give.

    An input's pattern is the tuple, over sites, of its ``k`` most active neurons there.

    Args:
        acts: ``{site: (batch, neurons)}``, floating point, finite.
        k: neurons per site in a pattern (static: a new ``k`` compiles anew).
        mask: ``bool[batch]``, the rows to count; all rows when ``None``.

    Example:
        >>> acts = {"a": jnp.array([[3.0, 1.0], [2.0, 0.0], [0.0, 1.0]]),
        ...         "b": jnp.array([[1.0, 2.0], [2.0, 1.0], [1.0, 2.0]])}
        >>> top_k_neuron_patterns(acts, k=1)
        3

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.2 (top-k neuron patterns).
    """
    acts, rows = _checked(acts, mask)
    k = validation.positive_int(k, "k")
    patterns = np.asarray(_patterns_jit(tuple(acts.values()), k=k))[np.asarray(rows)]
    return len(np.unique(np.packbits(patterns, axis=1), axis=0))


class PatternState(NamedTuple):
    """The distinct top-k patterns seen so far (TKNP's running form).

    Each pattern is its bits packed into ``uint32`` words; ``table`` keeps the distinct ones
    sorted in its first ``count`` rows (the others are empty). Fixed shapes, so folding a batch
    in is one jitted call that never recompiles.
    """

    table: jax.Array  # shape=(capacity, words), dtype=uint32
    count: jax.Array  # shape=(), dtype=int32: distinct patterns in ``table``
    overflow: jax.Array  # shape=(), dtype=bool: more distinct patterns came than fit
    k: int  # the top-k of the patterns
    sites: tuple[tuple[str, int], ...]  # (site, neurons) in pattern order


def _words(total: int) -> int:
    return -(-total // 32)


def patterns_init(counts: Mapping[str, int], *, k: validation.Int,
                  capacity: validation.Int = 65536) -> PatternState:
    """An empty TKNP state for sites ``counts`` that holds up to ``capacity`` distinct patterns.

    Memory: ``capacity * ceil(neurons / 32)`` uint32 words on the device.

    Example:
        >>> state = patterns_init({"a": 2, "b": 2}, k=1, capacity=8)
        >>> state.table.shape, int(state.count)
        ((8, 1), 0)
    """
    counts = validation.counts(counts)
    capacity = validation.positive_int(capacity, "capacity")
    words = _words(sum(counts.values()))
    return PatternState(jnp.zeros((capacity, words), jnp.uint32), jnp.int32(0),
                        jnp.bool_(False), validation.positive_int(k, "k"), tuple(counts.items()))


def _pack(bits):
    """``bool[batch, total]`` -> ``uint32[batch, words]``, bit ``i`` of word ``i // 32``."""
    pad = _words(bits.shape[1]) * 32 - bits.shape[1]
    bits = jnp.pad(bits, ((0, 0), (0, pad))).reshape(bits.shape[0], -1, 32)
    shifts = jnp.arange(32, dtype=jnp.uint32)
    return (bits.astype(jnp.uint32) << shifts[None, None]).sum(axis=2, dtype=jnp.uint32)


def _merge(table, count, packed, rows):
    """Sorted distinct rows of ``table[:count]`` and ``packed[rows]``, cut to the capacity.

    One lexicographic sort puts empty rows last and equal patterns next to each other; the
    first of each run of equals is kept.
    """
    capacity = table.shape[0]
    empty = jnp.concatenate([jnp.arange(capacity) >= count, ~rows]).astype(jnp.uint32)
    both = jnp.concatenate([table, packed])
    keys = [both[:, w] for w in range(both.shape[1] - 1, -1, -1)] + [empty]
    order = jnp.lexsort(keys)
    both, empty = both[order], empty[order].astype(bool)
    first = jnp.concatenate([jnp.ones(1, bool), (both[1:] != both[:-1]).any(axis=1)])
    keep = first & ~empty
    total = keep.sum(dtype=jnp.int32)
    kept = jnp.argsort(~keep, stable=True)[:capacity]
    table = jnp.where((jnp.arange(capacity) < total)[:, None], both[kept], 0).astype(jnp.uint32)
    return table, jnp.minimum(total, capacity), total > capacity


@functools.partial(jax.jit, static_argnames=("k",))
def _update_jit(table, count, overflow, values: tuple, rows, *, k):
    table, count, over = _merge(table, count, _pack(_patterns(values, k)), rows)
    return table, count, overflow | over


def patterns_update(state: PatternState, acts: Acts, *, mask: RowMask = None) -> PatternState:
    """Folds a batch into a TKNP state: its inputs' top-k patterns join the distinct ones.

    ``acts`` must have the state's sites, in its order. One jitted call (pure: it can also run
    inside your own ``jax.jit``); how many patterns a batch added is
    ``patterns_count(after) - patterns_count(before)``.

    Args:
        state: from :func:`patterns_init` or a previous update.
        acts: ``{site: (batch, neurons)}`` with the state's sites and sizes, in its order.
        mask: ``bool[batch]``, the rows to count (padding excluded).

    Example:
        >>> state = patterns_init({"a": 2, "b": 2}, k=1)
        >>> acts = {"a": jnp.array([[3.0, 1.0], [2.0, 0.0], [0.0, 1.0]]),
        ...         "b": jnp.array([[1.0, 2.0], [2.0, 1.0], [1.0, 2.0]])}
        >>> state = patterns_update(state, acts)
        >>> patterns_count(patterns_update(state, acts))
        3

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.2 (top-k neuron patterns).
    """
    validation.instance(state, PatternState, "state")
    acts, rows = _checked(acts, mask)
    sites = tuple((s, int(v.shape[1])) for s, v in acts.items())
    if sites != state.sites:
        raise ValueError(f"acts have sites {sites}, the state was made for {state.sites}")
    table, count, overflow = _update_jit(state.table, state.count, state.overflow,
                                         tuple(acts.values()), rows, k=state.k)
    return state._replace(table=table, count=count, overflow=overflow)


def patterns_count(state: PatternState) -> int:
    """TKNP: how many distinct top-k patterns the folded inputs gave.

    Raises:
        ValueError: if more distinct patterns came than the state's capacity holds.
    """
    validation.instance(state, PatternState, "state")
    if bool(state.overflow):
        raise ValueError(f"more than {state.table.shape[0]} distinct top-k patterns: make the "
                         "state with a larger capacity (patterns_init(..., capacity=...))")
    return int(state.count)
