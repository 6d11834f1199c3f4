"""Training profiles: each neuron's range and moments over (usually) the training data.

DeepGauge's criteria compare test values with the training range of each neuron: KMNC cuts
``[low_n, high_n]`` into sections, NBC and SNAC look beyond it by a multiple of ``std_n``
(:mod:`workbench.coverage`). :func:`profile` computes the four tables in one shot;
:func:`profile_init` / :func:`profile_update` / :func:`profile_value` fold batches into a
running :class:`ProfileState` (Chan, Golub and LeVeque's pairwise update of mean and variance),
so a dataset of any size streams through (:func:`workbench.passes.model_profile`).
:func:`dead_neurons` names the neurons that never exceeded a threshold on the profiled data.

References:
    Ma et al., "DeepGauge: Multi-Granularity Testing Criteria for Deep Learning Systems", ASE
    2018, section 3.1 (the major function region ``[low_n, high_n]``).
    Chan, Golub and LeVeque, "Algorithms for computing the sample variance", The American
    Statistician 37(3), 1983 (the pairwise update).
"""

from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Bool

from workbench import validation

__all__ = [
    "Profile",
    "ProfileState",
    "check",
    "dead_neurons",
    "profile",
    "profile_init",
    "profile_update",
    "profile_value",
]

Acts = validation.Acts  # {site: (batch, neurons)}
RowMask = validation.RowMask  # bool[batch] or None


class Profile(NamedTuple):
    """Each neuron's range and moments over training data (DeepGauge's ``low_n``, ``high_n``)."""

    low: dict[str, jax.Array]  # site -> shape=(neurons,), the minimum
    high: dict[str, jax.Array]  # site -> shape=(neurons,), the maximum
    mean: dict[str, jax.Array]  # site -> shape=(neurons,)
    std: dict[str, jax.Array]  # site -> shape=(neurons,), population std (ddof=0)


class ProfileState(NamedTuple):
    """Running totals of a :class:`Profile`; sites in the order of :func:`profile_init`."""

    count: jax.Array  # shape=(), dtype=float32: inputs folded so far
    low: dict[str, jax.Array]  # site -> shape=(neurons,)
    high: dict[str, jax.Array]  # site -> shape=(neurons,)
    mean: dict[str, jax.Array]  # site -> shape=(neurons,)
    m2: dict[str, jax.Array]  # site -> shape=(neurons,): sum of squared deviations


def profile_init(counts: Mapping[str, int]) -> ProfileState:
    """An empty running profile for ``{site: neurons}`` (say, ``activations.neuron_counts``).

    Example:
        >>> profile_init({"fc": 2}).count.tolist()
        0.0
    """
    counts = validation.counts(counts)
    full = lambda v: {s: jnp.full(n, v, jnp.float32) for s, n in counts.items()}
    return ProfileState(jnp.float32(0), full(jnp.inf), full(-jnp.inf), full(0.0), full(0.0))


def _fold_site(count, n, n_b, low, high, mean, m2, value, keep):
    """One site's pairwise update (Chan et al. 1983) with the batch's kept rows."""
    value = value.astype(jnp.float32)
    low = jnp.minimum(low, jnp.where(keep, value, jnp.inf).min(axis=0))
    high = jnp.maximum(high, jnp.where(keep, value, -jnp.inf).max(axis=0))
    mean_b = jnp.where(keep, value, 0.0).sum(axis=0) / jnp.maximum(n_b, 1.0)
    m2_b = jnp.where(keep, (value - mean_b[None]) ** 2, 0.0).sum(axis=0)
    delta = mean_b - mean
    weight = n_b / jnp.maximum(n, 1.0)
    return low, high, mean + delta * weight, m2 + m2_b + delta**2 * count * weight


@jax.jit
def _fold(count, tables: tuple, values: tuple, rows):
    """Tuples in, tuples out (a dict leaving ``jax.jit`` would come back key-sorted)."""
    n_b = rows.sum().astype(jnp.float32)
    n = count + n_b
    keep = rows[:, None]
    return n, tuple(_fold_site(count, n, n_b, *table, value, keep)
                    for table, value in zip(tables, values))


def profile_update(state: ProfileState, acts: Acts, *, mask: RowMask = None) -> ProfileState:
    """Folds a batch of (training) activations into a running profile, in one jitted call.

    Pure: it can also run inside your own ``jax.jit`` (the streamed pass does).

    Args:
        state: from :func:`profile_init` or a previous update.
        acts: ``{site: (batch, neurons)}`` with the state's sites.
        mask: ``bool[batch]``, the rows to count (padding excluded); all rows when ``None``.

    Returns:
        The new state, sites in the state's order.

    Example:
        >>> state = profile_init({"fc": 1})
        >>> state = profile_update(state, {"fc": jnp.array([[1.0], [3.0]])})
        >>> state = profile_update(state, {"fc": jnp.array([[5.0]])})
        >>> profile_value(state).mean["fc"].tolist(), profile_value(state).high["fc"].tolist()
        ([3.0], [5.0])
    """
    validation.instance(state, ProfileState, "state")
    acts = validation.acts(acts)
    if set(acts) != set(state.low):
        raise ValueError(f"acts sites {list(acts)} differ from the profile's {list(state.low)}")
    for site, value in acts.items():
        if value.shape[1:] != jnp.shape(state.low[site]):
            raise ValueError(f"acts[{site!r}] has {value.shape[1]} neurons, the profile "
                             f"{jnp.shape(state.low[site])[0]}")
    rows = validation.row_mask(mask, next(iter(acts.values())).shape[0])
    sites = list(state.low)
    tables = tuple((state.low[s], state.high[s], state.mean[s], state.m2[s]) for s in sites)
    count, tables = _fold(state.count, tables, tuple(acts[s] for s in sites), rows)
    fields = ({s: t[i] for s, t in zip(sites, tables)} for i in range(4))
    return ProfileState(count, *fields)


def profile_value(state: ProfileState) -> Profile:
    """The :class:`Profile` of everything folded in so far.

    Raises:
        ValueError: if nothing was folded in.
    """
    validation.instance(state, ProfileState, "state")
    if not validation.is_traced(state.count) and float(state.count) == 0:
        raise ValueError("the profile is empty: fold some inputs in first")
    std = {s: jnp.sqrt(jnp.maximum(m2, 0.0) / state.count) for s, m2 in state.m2.items()}
    return Profile(dict(state.low), dict(state.high), dict(state.mean), std)


def profile(acts: Acts, *, mask: RowMask = None) -> Profile:
    """Each neuron's minimum, maximum, mean and (population) standard deviation over ``acts``,
    usually the training data's: DeepGauge's ``low_n`` and ``high_n`` and the ``std`` of NBC.

    Example:
        >>> prof = profile({"fc": jnp.array([[0.0, 1.0], [4.0, 1.0]])})
        >>> prof.low["fc"].tolist(), prof.high["fc"].tolist(), prof.std["fc"].tolist()
        ([0.0, 1.0], [4.0, 1.0], [2.0, 0.0])

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.1 (the major function region).
    """
    acts = validation.acts(acts)
    state = profile_init({s: int(v.shape[1]) for s, v in acts.items()})
    return profile_value(profile_update(state, acts, mask=mask))


def dead_neurons(prof: Profile, *, threshold: validation.Float = 0.0
                 ) -> dict[str, Bool[np.ndarray, " _neurons"]]:
    """Neurons never above ``threshold`` on the data ``prof`` was made from (``high <= t``).

    With ``threshold=0`` these are the ReLU neurons that never fire on the training data: no
    test input is likely to cover them under NC, so report coverage with and without them
    (``coverage.ratio(masks, exclude=dead_neurons(prof))``).

    Example:
        >>> dead_neurons(profile({"fc": jnp.array([[0.0, 1.0], [0.0, 2.0]])}))["fc"].tolist()
        [True, False]
    """
    validation.instance(prof, Profile, "profile")
    t = float(validation.scalar(threshold, "threshold"))
    return {site: np.asarray(high) <= t for site, high in prof.high.items()}


def check(prof: Profile, counts: Mapping[str, int], name: str = "profile") -> Profile:
    """The profile's tables for the sites of ``counts`` (``{site: neurons}``), as float32,
    each checked to have its site's size: the check every criterion that reads a profile runs.

    Example:
        >>> check(profile({"fc": jnp.zeros((2, 3))}), {"fc": 4})
        Traceback (most recent call last):
        ...
        ValueError: profile.low['fc'] has shape (3,), but the site has 4 neurons
    """
    validation.instance(prof, Profile, name)
    for site, n in counts.items():
        for field in Profile._fields:
            table = getattr(prof, field)
            if site not in table:
                raise ValueError(f"{name}.{field} has no site {site!r}; it has {list(table)}")
            if jnp.shape(table[site]) != (n,):
                raise ValueError(f"{name}.{field}[{site!r}] has shape {jnp.shape(table[site])}, "
                                 f"but the site has {n} neurons")
    return Profile(*({s: jnp.asarray(getattr(prof, f)[s], jnp.float32) for s in counts}
                     for f in Profile._fields))
