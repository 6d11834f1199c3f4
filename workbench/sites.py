"""Sites and neurons as plain bookkeeping: ``{site: (batch, neurons)}`` dicts, their layer
order and the (site, index) <-> flat position of a neuron. No Flax, no models: kernels use
these, and :mod:`workbench.activations` re-exports them.

A dict that leaves ``jax.jit`` comes back with sorted keys; :func:`in_order` restores the layer
order from the keys of :func:`workbench.activations.neuron_counts`.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Shaped

__all__ = ["flat_index", "flatten", "in_order", "site_index", "unflatten"]


def in_order(values: Mapping[str, Any], order: "Sequence[str] | Mapping[str, Any]"
             ) -> dict[str, Any]:
    """``values`` with its keys in ``order`` (a sequence of sites, or the keys of a dict such
    as :func:`neuron_counts`): the one repair for dicts that ``jax.jit`` returns sorted.

    Example:
        >>> in_order({"b": 1, "a": 2}, ["b", "a"])
        {'b': 1, 'a': 2}
    """
    return {site: values[site] for site in order}


def flatten(acts: Mapping[str, jax.Array]) -> jax.Array:
    """Concatenates the sites into ``(batch, total_neurons)``, in the dict's order."""
    return jnp.concatenate([v for v in acts.values()], axis=-1)


def unflatten(counts: Mapping[str, int], flat) -> dict[str, Any]:
    """Splits the last axis of ``flat`` (``total_neurons`` long) back into sites: the inverse of
    :func:`flatten` for the sizes ``counts``.

    Example:
        >>> {k: v.tolist() for k, v in unflatten({"a": 1, "b": 2}, np.arange(3)).items()}
        {'a': [0], 'b': [1, 2]}
    """
    total = sum(counts.values())
    if np.shape(flat)[-1] != total:
        raise ValueError(f"expected {total} neurons on the last axis, got {np.shape(flat)}")
    out, offset = {}, 0
    for site, count in counts.items():
        out[site] = flat[..., offset:offset + count]
        offset += count
    return out


def flat_index(counts: Mapping[str, int], site: str, index: "int | Shaped[ArrayLike, '*n']"):
    """The position of neuron ``(site, index)`` among all neurons of ``counts``, in order.

    Example:
        >>> flat_index({"conv1": 6, "conv2": 16}, "conv2", 3)
        9
    """
    if site not in counts:
        raise ValueError(f"unknown site {site!r}; the sites are {list(counts)}")
    index_array = np.asarray(index)
    if not np.issubdtype(index_array.dtype, np.integer):
        raise ValueError(f"neuron index must be an integer, got {index!r}")
    if np.any(index_array < 0) or np.any(index_array >= counts[site]):
        raise ValueError(f"neuron index {index} is outside site {site!r} of {counts[site]} neurons")
    offset = 0
    for name, count in counts.items():
        if name == site:
            return offset + index
        offset += count


def site_index(counts: Mapping[str, int], flat: "int | Shaped[ArrayLike, '']") -> tuple[str, int]:
    """The ``(site, index)`` of the neuron at flat position ``flat``: the inverse of
    :func:`flat_index`.

    Example:
        >>> site_index({"conv1": 6, "conv2": 16}, 9)
        ('conv2', 3)
    """
    if not np.issubdtype(np.asarray(flat).dtype, np.integer):
        raise ValueError(f"flat index must be an integer, got {flat!r}")
    flat = int(flat)
    total = sum(counts.values())
    if not 0 <= flat < total:
        raise ValueError(f"flat index {flat} is outside 0..{total - 1}")
    for name, count in counts.items():
        if flat < count:
            return name, flat
        flat -= count
    raise AssertionError("unreachable")
