"""Neuron coverage: how much of a network a set of inputs exercises (DeepXplore, DeepGauge).

Every criterion is a pure function of ``acts: {site: (batch, neurons)}`` (as
:func:`workbench.activations.trace` returns them) and gives boolean masks ``{site: bool[...]}``:
which neurons (or a neuron's sections, or its corners) at least one input covered.
:func:`ratio` turns masks into the covered fraction, :func:`site_ratios` into one per site.

Criteria (``CRITERIA``):

- ``"nc"``: :func:`neuron_coverage` (DeepXplore): value above a threshold.
- ``"kmnc"``: :func:`k_multisection_coverage` (DeepGauge): which of ``k`` equal sections of the
  training range ``[low, high]`` a value fell in.
- ``"nbc"``: :func:`neuron_boundary_coverage` (DeepGauge): below ``low`` or above ``high``.
- ``"snac"``: :func:`strong_neuron_activation_coverage` (DeepGauge): above ``high``.
- ``"tknc"``: :func:`top_k_neuron_coverage` (DeepGauge): among its layer's ``k`` largest.
- :func:`top_k_neuron_patterns` (DeepGauge's TKNP) counts distinct top-k patterns instead.

Running totals: ``init`` / ``update`` / ``value`` fold batches into a state of boolean masks, so
a generator can fold new inputs in and ask what they newly covered (:func:`newly_covered`);
:func:`patterns_init` / :func:`patterns_update` / :func:`patterns_count` do it for TKNP (a
state of the distinct patterns seen, as packed bits).
:func:`profile_init` / :func:`profile_update` / :func:`profile_value` do the same for the
training profile. :func:`model_coverage` and :func:`model_profile` stream a whole dataset
through a model in fixed-size batches (:func:`workbench.streaming.fold_model`: one jitted
pass per batch, the last one padded and masked, the batch axis sharded over every device) and
return every requested criterion from that one pass.

Neuron conventions (``PRESETS``, arguments of the model-level helpers):

============  ====================  ======================================================
preset        sites / values        conv map -> neurons, scaling
============  ====================  ======================================================
default       hidden layers, post-  channel mean, no scaling
              activation
deepgauge     as default            as default: DeepGauge's neurons are layer outputs after
                                    the activation, one per feature map (the mean)
deepxplore    every conv, pool and  each input's whole layer output min-max scaled to
              dense layer + logits  [0, 1] (all positions and channels), then the channel
              + softmax             mean; NC compares these with the threshold
============  ====================  ======================================================

Where published tools differ: the released DeepXplore code scales each layer per input but
only looks at the first input of every batch and keeps a dict of ``(layer, index) -> bool``
updated in Python loops; NeuraL-Coverage (Yuan et al., ICSE 2023) averages conv maps but warns
that scaling by a batch-wide min/max is wrong for batches; DeepGauge's KMNC leaves a neuron with
a zero-width training range undefined (here it covers no section).

References:
    Pei et al., "DeepXplore: Automated Whitebox Testing of Deep Learning Systems", SOSP 2017,
    section 4.1 and the released code (``utils.py``).
    Ma et al., "DeepGauge: Multi-Granularity Testing Criteria for Deep Learning Systems", ASE
    2018, section 3.
"""

import functools
from collections.abc import Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from workbench import activations, streaming

__all__ = [
    "CRITERIA", "PRESETS", "Convention", "Profile", "ProfileState",
    "neuron_coverage", "k_multisection_coverage", "neuron_boundary_coverage",
    "strong_neuron_activation_coverage", "top_k_neuron_coverage", "top_k_neuron_patterns",
    "profile", "profile_init", "profile_update", "profile_value", "dead_neurons",
    "ratio", "site_ratios", "init", "update", "value", "newly_covered",
    "PatternState", "patterns_init", "patterns_update", "patterns_count",
    "model_profile", "model_coverage", "model_patterns",
]

CRITERIA = ("nc", "kmnc", "nbc", "snac", "tknc")

Acts = Mapping[str, Float[ArrayLike, "batch _neurons"]]
Masks = Mapping[str, Bool[ArrayLike, "_neurons *_sections"]]
RowMask = Bool[ArrayLike, "batch"] | None


class Convention(NamedTuple):
    """Which values are a model's neurons: the options of :func:`workbench.activations.trace`."""

    kind: str  # "post", "pre" or "deepxplore"
    reduce: str  # "mean", "max" or "none"
    scale: str | None  # None or "minmax"


PRESETS = {
    "default": Convention("post", "mean", None),
    "deepgauge": Convention("post", "mean", None),
    "deepxplore": Convention("deepxplore", "mean", "minmax"),
}


class Profile(NamedTuple):
    """Each neuron's range and moments over training data (DeepGauge's ``low_n``, ``high_n``)."""

    low: dict[str, jax.Array]  # site -> shape=(neurons,), the minimum
    high: dict[str, jax.Array]  # site -> shape=(neurons,), the maximum
    mean: dict[str, jax.Array]  # site -> shape=(neurons,)
    std: dict[str, jax.Array]  # site -> shape=(neurons,), population std (ddof=0)


class ProfileState(NamedTuple):
    """Running totals of :class:`Profile` (Chan et al.'s pairwise mean and variance update)."""

    count: jax.Array  # shape=(), dtype=float32: inputs folded so far
    low: dict[str, jax.Array]  # site -> shape=(neurons,)
    high: dict[str, jax.Array]  # site -> shape=(neurons,)
    mean: dict[str, jax.Array]  # site -> shape=(neurons,)
    m2: dict[str, jax.Array]  # site -> shape=(neurons,): sum of squared deviations


# ----------------------------------------------------------------------------------- checks


def _is_traced(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_acts(acts, name: str = "acts") -> dict[str, jax.Array]:
    if not isinstance(acts, Mapping) or not acts:
        raise ValueError(f"{name} must be a non-empty dict {{site: (batch, neurons)}}, "
                         f"got {type(acts).__name__}")
    out, batch = {}, None
    for site, value in acts.items():
        value = jnp.asarray(value)
        if value.ndim != 2:
            raise ValueError(f"{name}[{site!r}] must be (batch, neurons), got shape {value.shape}")
        if not jnp.issubdtype(value.dtype, jnp.floating):
            raise ValueError(f"{name}[{site!r}] must be floating point, got {value.dtype}")
        if batch is not None and value.shape[0] != batch:
            raise ValueError(f"{name}: sites have different batch sizes "
                             f"({batch} and {value.shape[0]} at {site!r})")
        batch = value.shape[0]
        if not _is_traced(value) and not bool(jnp.isfinite(value).all()):
            raise ValueError(f"{name}[{site!r}] contains NaN or infinity")
        out[site] = value
    return out


def _counts_of(acts: Mapping[str, jax.Array]) -> dict[str, int]:
    return {site: int(value.shape[1]) for site, value in acts.items()}


def _check_rows(mask, batch: int) -> jax.Array:
    if mask is None:
        return jnp.ones(batch, bool)
    mask = jnp.asarray(mask)
    if mask.shape != (batch,) or mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be bool[{batch}], got {mask.dtype}{list(mask.shape)}")
    return mask


def _scalar(x, name: str, *, positive: bool = False) -> jax.Array:
    value = jnp.asarray(x, jnp.float32)
    if value.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {value.shape}")
    if not _is_traced(value) and not bool(jnp.isfinite(value)):
        raise ValueError(f"{name} must be finite, got {x}")
    if positive and not _is_traced(value) and float(value) < 0:
        raise ValueError(f"{name} must be >= 0, got {x}")
    return value


def _check_k(k, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    return int(k)


def _check_profile(prof, counts: Mapping[str, int]) -> Profile:
    """The profile's tables for the sites of ``counts``, checked against their sizes."""
    if not isinstance(prof, Profile):
        raise ValueError(f"profile must be a coverage.Profile, got {type(prof).__name__}")
    for site, n in counts.items():
        for field in Profile._fields:
            table = getattr(prof, field)
            if site not in table:
                raise ValueError(f"profile.{field} has no site {site!r}; it has {list(table)}")
            if jnp.shape(table[site]) != (n,):
                raise ValueError(f"profile.{field}[{site!r}] has shape {jnp.shape(table[site])}, "
                                 f"but the site has {n} neurons")
    return Profile(*({s: jnp.asarray(getattr(prof, f)[s], jnp.float32) for s in counts}
                     for f in Profile._fields))


# ------------------------------------------------------------------ per-site definitions
# Each takes one site's values ``(batch, neurons)`` and ``rows: bool[batch]`` (the inputs to
# count) and says which of the site's targets some counted input covered.


def _scale_rows(value: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Min-max scales each row to [0, 1]; also says which rows vary (a constant row is 0/0)."""
    low = value.min(axis=1, keepdims=True)
    high = value.max(axis=1, keepdims=True)
    span = high - low
    varies = span > 0
    return _snap(value, low, high), varies[:, 0]


def _snap(value, low, high):
    """``(value - low) / (high - low)``, exactly 0 at the minimum and 1 at the maximum, and 0
    where ``high == low``.

    NumPy gives exact zeros at the minimum; under ``jax.jit`` XLA on CPU may fuse the producer
    of ``value`` into ``value - low`` as one fused multiply-add, leaving ~1e-9 where NumPy has 0
    (enough to flip NC at threshold 0), so the ends are set by comparison.
    """
    span = high - low
    scaled = (value - low) / jnp.where(span > 0, span, 1.0)
    return jnp.where(value <= low, 0.0, jnp.where(value >= high, 1.0, scaled))


def _nc(value, rows, threshold, *, scaled: bool, zero_is_constant: bool):
    if scaled:
        value, varies = _scale_rows(value)
        rows = rows & varies
    if zero_is_constant:
        # Values scaled before the channel mean: an all-zero row is a constant layer output,
        # which DeepXplore scales to NaN (0 / 0), so it covers nothing at any threshold.
        rows = rows & (value != 0).any(axis=1)
    return ((value > threshold) & rows[:, None]).any(axis=0)


def _kmnc(value, rows, low, high, *, k: int):
    low, high = low[None], high[None]
    width = high - low
    valid = (width > 0) & (value >= low) & (value <= high) & rows[:, None]
    position = (value - low) / jnp.where(width > 0, width, 1.0) * k
    section = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, k - 1)
    hits = (section[..., None] == jnp.arange(k)[None, None]) & valid[..., None]
    return hits.any(axis=0)


def _corners(value, rows, low, high, std, scale):
    low, high, std = low[None], high[None], std[None]
    lower = ((value < low - scale * std) & rows[:, None]).any(axis=0)
    upper = ((value > high + scale * std) & rows[:, None]).any(axis=0)
    return jnp.stack([lower, upper], axis=-1)


def _top_k(value, *, k: int):
    """``bool[batch, neurons]``: each row's ``k`` largest (ties: the lower index first)."""
    k = min(k, value.shape[1])
    _, index = jax.lax.top_k(value, k)
    return (index[..., None] == jnp.arange(value.shape[1])[None, None]).any(axis=1)


def _tknc(value, rows, *, k: int):
    return (_top_k(value, k=k) & rows[:, None]).any(axis=0)


def _criterion(criterion: str, value, rows, params, site: str, *, k, scaled, zero_is_constant):
    if criterion == "nc":
        return _nc(value, rows, params["threshold"], scaled=scaled,
                   zero_is_constant=zero_is_constant)
    if criterion == "tknc":
        return _tknc(value, rows, k=k)
    prof = params["profile"]
    if criterion == "kmnc":
        return _kmnc(value, rows, prof.low[site], prof.high[site], k=k)
    corners = _corners(value, rows, prof.low[site], prof.high[site], prof.std[site],
                       params["scale"])
    return corners if criterion == "nbc" else corners[:, 1]


@functools.partial(jax.jit, static_argnames=("criterion", "k", "scaled", "zero_is_constant"))
def _masks_jit(acts, rows, params, *, criterion, k, scaled, zero_is_constant):
    return {site: _criterion(criterion, value, rows, params, site, k=k, scaled=scaled,
                             zero_is_constant=zero_is_constant)
            for site, value in acts.items()}


def _masks(criterion, acts, mask, params, *, k=None, scaled=False, zero_is_constant=False):
    acts = _check_acts(acts)
    rows = _check_rows(mask, next(iter(acts.values())).shape[0])
    if "profile" in params:
        params = dict(params, profile=_check_profile(params["profile"], _counts_of(acts)))
    out = _masks_jit(acts, rows, params, criterion=criterion, k=k, scaled=scaled,
                     zero_is_constant=zero_is_constant)
    return {site: out[site] for site in acts}


# ----------------------------------------------------------------------------- criteria


def neuron_coverage(acts: Acts, *, threshold: float | ArrayLike, scaled: bool = True,
                    mask: RowMask = None) -> dict[str, Bool[Array, "_neurons"]]:
    """DeepXplore's neuron coverage (NC): which neurons exceed ``threshold`` on some input.

    A neuron is covered when its value is strictly greater than ``threshold`` for at least one
    input. With ``scaled=True`` each input's values within each site are first min-max scaled
    to [0, 1], as the released DeepXplore code does per layer and input (``utils.scale``); an
    input whose values at a site are all equal covers nothing there (DeepXplore divides 0 by 0
    and a NaN exceeds no threshold).

    Note:
        The released DeepXplore code scales a conv layer's whole output (all positions and
        channels) *before* taking each channel's mean. ``acts`` here are already one value per
        neuron, so to reproduce DeepXplore exactly, take them from
        ``activations.trace(model, x, kind="deepxplore", reduce="mean", scale="minmax")`` and
        pass ``scaled=False`` (or use :func:`model_coverage` with ``preset="deepxplore"``).
        That scaling maps a constant layer output to 0, which exceeds none of DeepXplore's
        thresholds (0, 0.25, 0.5, 0.75), so a constant layer covers nothing there either;
        :func:`model_coverage` also keeps it uncovered for negative thresholds. Unlike
        DeepXplore, every input of a batch is counted, not only the first.

    Args:
        acts: ``{site: (batch, neurons)}``, floating point, finite.
        threshold: the activation threshold (a traced value: changing it does not recompile).
        scaled: min-max scale each input's values per site first.
        mask: ``bool[batch]``, the rows to count (padding excluded); all rows when ``None``.

    Returns:
        ``{site: bool[neurons]}``, true where covered, in the order of ``acts``.

    Example:
        >>> acts = {"fc": jnp.array([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])}
        >>> neuron_coverage(acts, threshold=0.5)["fc"].tolist()
        [False, False, True]
        >>> neuron_coverage(acts, threshold=1.5, scaled=False)["fc"].tolist()
        [True, True, True]

    References:
        Pei et al., "DeepXplore", SOSP 2017, section 4.1 (definition of neuron coverage) and
        the released code (``utils.py``: ``scale``, ``update_coverage``).
    """
    params = {"threshold": _scalar(threshold, "threshold")}
    return _masks("nc", acts, mask, params, scaled=bool(scaled))


def k_multisection_coverage(acts: Acts, profile: Profile, *, k: int, mask: RowMask = None
                            ) -> dict[str, Bool[Array, "_neurons _k"]]:
    """DeepGauge's k-multisection neuron coverage (KMNC): which sections of the training range
    some input's value fell in.

    Neuron ``n``'s range ``[low_n, high_n]`` (from :func:`profile` of training data) is cut
    into ``k`` equal sections ``[low_n + i d, low_n + (i + 1) d)``, ``d = (high_n - low_n) / k``,
    the last one closed at ``high_n``. Values outside the range cover no section; a neuron
    with ``high_n == low_n`` has no sections to cover (DeepGauge leaves it undefined).
    KMNC is ``ratio(masks)``: covered sections over ``k`` times the neurons.

    Args:
        acts: ``{site: (batch, neurons)}``.
        profile: the training profile; only ``low`` and ``high`` are used.
        k: sections per neuron (static: a new ``k`` compiles anew).
        mask: ``bool[batch]``, the rows to count.

    Returns:
        ``{site: bool[neurons, k]}``.

    Example:
        >>> prof = profile({"fc": jnp.array([[0.0, 1.0], [4.0, 1.0]])})
        >>> k_multisection_coverage({"fc": jnp.array([[1.5, 1.0], [4.0, 0.0]])}, prof, k=4
        ...                         )["fc"].tolist()
        [[False, True, False, True], [False, False, False, False]]

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.1 (k-multisection neuron coverage).
    """
    return _masks("kmnc", acts, mask, {"profile": profile}, k=_check_k(k))


def neuron_boundary_coverage(acts: Acts, profile: Profile, *, scale: float | ArrayLike = 0.0,
                             mask: RowMask = None) -> dict[str, Bool[Array, "_neurons 2"]]:
    """DeepGauge's neuron boundary coverage (NBC): which corner regions some input reached.

    Column 0 is the lower corner, covered by a value below ``low_n - scale * std_n``; column 1
    the upper corner, a value above ``high_n + scale * std_n`` (``std_n`` over the training
    data; DeepGauge's experiments use ``scale`` 0, 0.5 and 1). NBC is ``ratio(masks)``:
    covered corners over twice the neurons.

    Args:
        acts: ``{site: (batch, neurons)}``.
        profile: the training profile.
        scale: how many standard deviations beyond the training range a corner starts (traced).
        mask: ``bool[batch]``, the rows to count.

    Returns:
        ``{site: bool[neurons, 2]}`` (lower, upper).

    Example:
        >>> prof = profile({"fc": jnp.array([[0.0, 1.0], [4.0, 1.0]])})
        >>> neuron_boundary_coverage({"fc": jnp.array([[-1.0, 2.0]])}, prof)["fc"].tolist()
        [[True, False], [False, True]]

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.1 (neuron boundary coverage).
    """
    params = {"profile": profile, "scale": _scalar(scale, "scale", positive=True)}
    return _masks("nbc", acts, mask, params)


def strong_neuron_activation_coverage(acts: Acts, profile: Profile, *,
                                      scale: float | ArrayLike = 0.0, mask: RowMask = None
                                      ) -> dict[str, Bool[Array, "_neurons"]]:
    """DeepGauge's strong neuron activation coverage (SNAC): the upper corners of
    :func:`neuron_boundary_coverage`, values above ``high_n + scale * std_n``.

    Example:
        >>> prof = profile({"fc": jnp.array([[0.0, 1.0], [4.0, 1.0]])})
        >>> strong_neuron_activation_coverage({"fc": jnp.array([[-1.0, 2.0]])}, prof
        ...                                   )["fc"].tolist()
        [False, True]

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.1 (strong neuron activation coverage).
    """
    params = {"profile": profile, "scale": _scalar(scale, "scale", positive=True)}
    return _masks("snac", acts, mask, params)


def top_k_neuron_coverage(acts: Acts, *, k: int, mask: RowMask = None
                          ) -> dict[str, Bool[Array, "_neurons"]]:
    """DeepGauge's top-k neuron coverage (TKNC): neurons among their layer's ``k`` most active
    for some input.

    Each site is a layer; a site with at most ``k`` neurons has all of them in every top-k.
    Ties go to the lower index (``jax.lax.top_k``).

    Example:
        >>> acts = {"fc": jnp.array([[3.0, 1.0, 2.0], [0.0, 1.0, 5.0]])}
        >>> top_k_neuron_coverage(acts, k=1)["fc"].tolist()
        [True, False, True]

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.2 (top-k neuron coverage).
    """
    return _masks("tknc", acts, mask, {}, k=_check_k(k))


@functools.partial(jax.jit, static_argnames=("k",))
def _patterns_jit(acts, *, k):
    return jnp.concatenate([_top_k(value, k=k) for value in acts.values()], axis=1)


def top_k_neuron_patterns(acts: Acts, *, k: int, mask: RowMask = None) -> int:
    """DeepGauge's top-k neuron patterns (TKNP): how many distinct patterns the inputs give.

    An input's pattern is the tuple, over layers, of its ``k`` most active neurons there.

    Example:
        >>> acts = {"a": jnp.array([[3.0, 1.0], [2.0, 0.0], [0.0, 1.0]]),
        ...         "b": jnp.array([[1.0, 2.0], [2.0, 1.0], [1.0, 2.0]])}
        >>> top_k_neuron_patterns(acts, k=1)
        3

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.2 (top-k neuron patterns).
    """
    acts = _check_acts(acts)
    rows = np.asarray(_check_rows(mask, next(iter(acts.values())).shape[0]))
    patterns = np.asarray(_patterns_jit(acts, k=_check_k(k)))[rows]
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


def patterns_init(counts: Mapping[str, int], *, k: int, capacity: int = 65536) -> PatternState:
    """An empty TKNP state for sites ``counts`` that holds up to ``capacity`` distinct patterns.

    Example:
        >>> state = patterns_init({"a": 2, "b": 2}, k=1, capacity=8)
        >>> state.table.shape, int(state.count)
        ((8, 1), 0)
    """
    counts = _check_counts(counts)
    capacity = _check_k(capacity, "capacity")
    words = _words(sum(counts.values()))
    return PatternState(jnp.zeros((capacity, words), jnp.uint32), jnp.int32(0),
                        jnp.bool_(False), _check_k(k), tuple(counts.items()))


def _pack(bits):
    """``bool[batch, total]`` -> ``uint32[batch, words]``, bit ``i`` of word ``i // 32``."""
    pad = _words(bits.shape[1]) * 32 - bits.shape[1]
    bits = jnp.pad(bits, ((0, 0), (0, pad))).reshape(bits.shape[0], -1, 32)
    shifts = jnp.arange(32, dtype=jnp.uint32)
    return (bits.astype(jnp.uint32) << shifts[None, None]).sum(axis=2, dtype=jnp.uint32)


def _merge_patterns(table, count, packed, rows):
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
def _patterns_update_jit(table, count, overflow, acts, rows, *, k):
    packed = _pack(_patterns_jit.__wrapped__(acts, k=k))
    table, count, over = _merge_patterns(table, count, packed, rows)
    return table, count, overflow | over


def patterns_update(state: PatternState, acts: Acts, *, mask: RowMask = None) -> PatternState:
    """Folds a batch into a TKNP state: its inputs' top-k patterns join the distinct ones.

    ``acts`` must have the state's sites, in its order. One jitted call; how many patterns a
    batch added is ``patterns_count(after) - patterns_count(before)``.

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
    if not isinstance(state, PatternState):
        raise ValueError(f"state must be a coverage.PatternState, got {type(state).__name__}")
    acts = _check_acts(acts)
    sites = tuple(_counts_of(acts).items())
    if sites != state.sites:
        raise ValueError(f"acts have sites {sites}, the state was made for {state.sites}")
    rows = _check_rows(mask, next(iter(acts.values())).shape[0])
    table, count, overflow = _patterns_update_jit(state.table, state.count, state.overflow,
                                                  acts, rows, k=state.k)
    return state._replace(table=table, count=count, overflow=overflow)


def patterns_count(state: PatternState) -> int:
    """TKNP: how many distinct top-k patterns the folded inputs gave.

    Raises:
        ValueError: if more distinct patterns came than the state's capacity holds.
    """
    if bool(state.overflow):
        raise ValueError(f"more than {state.table.shape[0]} distinct top-k patterns: make the "
                         "state with a larger capacity (patterns_init(..., capacity=...))")
    return int(state.count)


# ----------------------------------------------------------------------------- profile


def profile_init(counts: Mapping[str, int]) -> ProfileState:
    """An empty running profile for ``{site: neurons}`` (say, ``activations.neuron_counts``).

    Example:
        >>> profile_init({"fc": 2}).count.tolist()
        0.0
    """
    counts = _check_counts(counts)
    full = lambda v: {s: jnp.full(n, v, jnp.float32) for s, n in counts.items()}
    return ProfileState(jnp.float32(0), full(jnp.inf), full(-jnp.inf), full(0.0), full(0.0))


def _check_counts(counts) -> dict[str, int]:
    if not isinstance(counts, Mapping) or not counts:
        raise ValueError("counts must be a non-empty dict {site: neurons}")
    for site, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"counts[{site!r}] must be a positive int, got {n!r}")
    return {s: int(n) for s, n in counts.items()}


def _profile_fold(state: ProfileState, acts, rows) -> ProfileState:
    """Chan, Golub and LeVeque's pairwise update of count, mean and squared deviations."""
    n_b = rows.sum().astype(jnp.float32)
    n = state.count + n_b
    low, high, mean, m2 = {}, {}, {}, {}
    for site, value in acts.items():
        value = value.astype(jnp.float32)
        keep = rows[:, None]
        low[site] = jnp.minimum(state.low[site], jnp.where(keep, value, jnp.inf).min(axis=0))
        high[site] = jnp.maximum(state.high[site], jnp.where(keep, value, -jnp.inf).max(axis=0))
        mean_b = jnp.where(keep, value, 0.0).sum(axis=0) / jnp.maximum(n_b, 1.0)
        m2_b = jnp.where(keep, (value - mean_b[None]) ** 2, 0.0).sum(axis=0)
        delta = mean_b - state.mean[site]
        weight = n_b / jnp.maximum(n, 1.0)
        mean[site] = state.mean[site] + delta * weight
        m2[site] = state.m2[site] + m2_b + delta**2 * state.count * weight
    return ProfileState(n, low, high, mean, m2)


_profile_fold_jit = jax.jit(_profile_fold)


def profile_update(state: ProfileState, acts: Acts, *, mask: RowMask = None) -> ProfileState:
    """Folds a batch of training activations into a running profile (jitted).

    Example:
        >>> state = profile_init({"fc": 1})
        >>> state = profile_update(state, {"fc": jnp.array([[1.0], [3.0]])})
        >>> state = profile_update(state, {"fc": jnp.array([[5.0]])})
        >>> profile_value(state).mean["fc"].tolist(), profile_value(state).high["fc"].tolist()
        ([3.0], [5.0])
    """
    if not isinstance(state, ProfileState):
        raise ValueError(f"state must be a ProfileState, got {type(state).__name__}")
    acts = _check_acts(acts)
    if set(acts) != set(state.low):
        raise ValueError(f"acts sites {list(acts)} differ from the profile's {list(state.low)}")
    for site, value in acts.items():
        if value.shape[1:] != state.low[site].shape:
            raise ValueError(f"acts[{site!r}] has {value.shape[1]} neurons, the profile "
                             f"{state.low[site].shape[0]}")
    rows = _check_rows(mask, next(iter(acts.values())).shape[0])
    return _ordered_state(_profile_fold_jit(state, acts, rows), list(acts))


def _ordered_state(state: ProfileState, order) -> ProfileState:
    return ProfileState(state.count, *({s: table[s] for s in order} for table in state[1:]))


def profile_value(state: ProfileState) -> Profile:
    """The :class:`Profile` of everything folded in so far.

    Raises:
        ValueError: if nothing was folded in.
    """
    if not isinstance(state, ProfileState):
        raise ValueError(f"state must be a ProfileState, got {type(state).__name__}")
    if not _is_traced(state.count) and float(state.count) == 0:
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
    acts = _check_acts(acts)
    state = profile_update(profile_init(activations.neuron_counts(acts)), acts, mask=mask)
    return profile_value(state)


def dead_neurons(prof: Profile, *, threshold: float | ArrayLike = 0.0) -> dict[str, np.ndarray]:
    """Neurons never above ``threshold`` on the data ``prof`` was made from (``high <= t``).

    With ``threshold=0`` these are the ReLU neurons that never fire on the training data: no
    test input is likely to cover them under NC, so report coverage with and without them
    (``ratio(masks, exclude=dead_neurons(prof))``).

    Example:
        >>> dead_neurons(profile({"fc": jnp.array([[0.0, 1.0], [0.0, 2.0]])}))["fc"].tolist()
        [True, False]
    """
    if not isinstance(prof, Profile):
        raise ValueError(f"profile must be a coverage.Profile, got {type(prof).__name__}")
    t = float(_scalar(threshold, "threshold"))
    return {site: np.asarray(high) <= t for site, high in prof.high.items()}


# ------------------------------------------------------------------------------- ratios


def _host_masks(masks, name: str = "masks") -> dict[str, np.ndarray]:
    if not isinstance(masks, Mapping) or not masks:
        raise ValueError(f"{name} must be a non-empty dict {{site: bool[neurons, ...]}}")
    out = {}
    for site, mask in masks.items():
        if _is_traced(mask):
            raise ValueError("ratio works on concrete masks; call it outside jax.jit")
        mask = np.asarray(mask)
        if mask.dtype != np.bool_ or mask.ndim < 1:
            raise ValueError(f"{name}[{site!r}] must be a boolean array (neurons, ...), got "
                             f"{mask.dtype}{list(mask.shape)}")
        out[site] = mask
    return out


def _kept(masks: dict[str, np.ndarray], exclude) -> dict[str, np.ndarray]:
    """Each site's mask with the rows of excluded neurons removed."""
    if exclude is None:
        return masks
    exclude = _host_masks(exclude, "exclude")
    out = {}
    for site, mask in masks.items():
        if site not in exclude:
            raise ValueError(f"exclude has no site {site!r}; it has {list(exclude)}")
        drop = exclude[site]
        if drop.shape != mask.shape[:1]:
            raise ValueError(f"exclude[{site!r}] must be bool[{mask.shape[0]}], got "
                             f"shape {drop.shape}")
        out[site] = mask[~drop]
    return out


def ratio(masks: Masks, *, exclude: Masks | None = None) -> float:
    """The covered fraction of all neurons (or sections, or corners) over all sites.

    Args:
        masks: ``{site: bool[neurons, ...]}`` from any criterion; every element counts once,
            so KMNC's ``(neurons, k)`` masks give covered sections over ``k * neurons`` and
            NBC's ``(neurons, 2)`` covered corners over ``2 * neurons``.
        exclude: optional ``{site: bool[neurons]}`` of neurons to leave out of numerator and
            denominator alike (say, :func:`dead_neurons`).

    Returns:
        A float in [0, 1]; 0.0 when nothing is left to cover.

    Example:
        >>> ratio({"a": jnp.array([True, False]), "b": jnp.array([True, True, False, False])})
        0.5
        >>> ratio({"a": jnp.array([True, False])}, exclude={"a": jnp.array([False, True])})
        1.0
    """
    kept = _kept(_host_masks(masks), exclude)
    total = sum(m.size for m in kept.values())
    return float(sum(int(m.sum()) for m in kept.values()) / total) if total else 0.0


def site_ratios(masks: Masks, *, exclude: Masks | None = None) -> dict[str, float]:
    """The covered fraction per site, in the order of ``masks`` (see :func:`ratio`).

    Example:
        >>> site_ratios({"a": jnp.array([True, False]), "b": jnp.array([True, True])})
        {'a': 0.5, 'b': 1.0}
    """
    kept = _kept(_host_masks(masks), exclude)
    return {site: float(m.sum() / m.size) if m.size else 0.0 for site, m in kept.items()}


# ------------------------------------------------------------------- running coverage


def _shape(criterion: str, n: int, k) -> tuple[int, ...]:
    if criterion == "kmnc":
        return (n, _check_k(k))
    if criterion == "nbc":
        return (n, 2)
    return (n,)


def _check_criterion(criterion: str) -> str:
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {CRITERIA}")
    return criterion


def init(counts: Mapping[str, int], *, criterion: str, k: int | None = None
         ) -> dict[str, jax.Array]:
    """An empty running coverage: ``{site: bool[...]}`` all false, shaped for ``criterion``.

    Args:
        counts: ``{site: neurons}``.
        criterion: one of ``CRITERIA``.
        k: KMNC's sections (needed for ``"kmnc"`` only).

    Example:
        >>> {s: m.shape for s, m in init({"fc": 3}, criterion="kmnc", k=4).items()}
        {'fc': (3, 4)}
    """
    _check_criterion(criterion)
    return {s: jnp.zeros(_shape(criterion, n, k), bool) for s, n in _check_counts(counts).items()}


@functools.partial(jax.jit, static_argnames=("criterion", "k", "scaled"))
def _update_jit(state, acts, rows, params, *, criterion, k, scaled):
    new = _masks_jit.__wrapped__(acts, rows, params, criterion=criterion, k=k, scaled=scaled,
                                 zero_is_constant=False)
    return {site: state[site] | new[site] for site in state}


def update(state: Masks, acts: Acts, *, criterion: str, mask: RowMask = None,
           threshold: float | ArrayLike = 0.0, scaled: bool = True, profile: Profile | None = None,
           k: int | None = None, scale: float | ArrayLike = 0.0) -> dict[str, jax.Array]:
    """Folds a batch into a running coverage: ``state | criterion(acts)``, in one jitted call.

    Args:
        state: from :func:`init` or a previous :func:`update`.
        acts: ``{site: (batch, neurons)}`` with the sites of ``state``.
        criterion: one of ``CRITERIA``; the other options are that criterion's arguments
            (``threshold``/``scaled`` for NC, ``profile`` and ``k`` for KMNC, ``profile`` and
            ``scale`` for NBC and SNAC, ``k`` for TKNC).
        mask: ``bool[batch]``, the rows to count.

    Returns:
        The new state, in the order of ``state``.

    Example:
        >>> state = init({"fc": 3}, criterion="nc")
        >>> state = update(state, {"fc": jnp.array([[0.0, 1.0, 0.2]])}, criterion="nc",
        ...                threshold=0.5)
        >>> value(state)["fc"].tolist()
        [False, True, False]
    """
    _check_criterion(criterion)
    acts = _check_acts(acts)
    if not isinstance(state, Mapping) or set(state) != set(acts):
        raise ValueError(f"state sites {list(state) if isinstance(state, Mapping) else state} "
                         f"differ from the acts sites {list(acts)}")
    params = {}
    if criterion == "nc":
        params["threshold"] = _scalar(threshold, "threshold")
    if criterion in ("kmnc", "nbc", "snac"):
        if profile is None:
            raise ValueError(f"criterion {criterion!r} needs a training profile")
        params["profile"] = _check_profile(profile, _counts_of(acts))
    if criterion in ("nbc", "snac"):
        params["scale"] = _scalar(scale, "scale", positive=True)
    if criterion in ("kmnc", "tknc"):
        k = _check_k(k)
    else:
        k = None
    for site, value in acts.items():
        expected = _shape(criterion, value.shape[1], k if criterion == "kmnc" else None)
        if jnp.shape(state[site]) != expected or jnp.asarray(state[site]).dtype != jnp.bool_:
            raise ValueError(f"state[{site!r}] must be bool{list(expected)} for {criterion}, "
                             f"got {jnp.asarray(state[site]).dtype}{list(jnp.shape(state[site]))}")
    rows = _check_rows(mask, next(iter(acts.values())).shape[0])
    new = _update_jit(dict(state), acts, rows, params, criterion=criterion, k=k,
                      scaled=bool(scaled) if criterion == "nc" else False)
    return {site: new[site] for site in state}


def value(state: Masks) -> dict[str, jax.Array]:
    """The masks of a running coverage (the state itself: its covered targets)."""
    if not isinstance(state, Mapping):
        raise ValueError(f"state must be a dict of boolean masks, got {type(state).__name__}")
    return {site: jnp.asarray(m) for site, m in state.items()}


def newly_covered(before: Masks, after: Masks) -> dict[str, jax.Array]:
    """What ``after`` covers that ``before`` did not: ``after & ~before`` per site.

    Example:
        >>> newly_covered({"fc": jnp.array([True, False])}, {"fc": jnp.array([True, True])}
        ...               )["fc"].tolist()
        [False, True]
    """
    if set(before) != set(after):
        raise ValueError(f"sites differ: {list(before)} and {list(after)}")
    return {site: jnp.asarray(after[site]) & ~jnp.asarray(before[site]) for site in after}


# ------------------------------------------------------------------------ model level


def _preset(preset: str | Convention) -> Convention:
    if isinstance(preset, Convention):
        activations._check(*preset)
        return preset
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESETS)} or pass a "
                         "coverage.Convention")
    return PRESETS[preset]


def _stream(model, images, conv: Convention):
    """What to ask :func:`workbench.streaming.fold_model` for, and the neurons per site.

    Under the DeepXplore convention the whole layer outputs are streamed (``reduce="none"``,
    no scaling) and scaled here by :func:`_deepxplore_neurons`, so that a layer's minimum
    scales to exactly 0 as in DeepXplore's NumPy code.
    """
    counts = activations.neuron_counts(model, tuple(np.shape(images)[1:]), **conv._asdict())
    if conv.kind == "deepxplore" and conv.scale == "minmax" and conv.reduce == "mean":
        return dict(kind="deepxplore", reduce="none", scale=None), tuple(counts.items()), counts
    return conv._asdict(), None, counts


def _deepxplore_neurons(acts, channels):
    """DeepXplore's neurons from whole layer outputs ``(batch, h * w * c)`` (row-major): each
    input's layer min-max scaled to [0, 1], then each channel's mean (``utils.scale`` and
    ``update_coverage`` of the released code)."""
    out = {}
    for site, c in channels:
        value = acts[site]
        low = value.min(axis=1, keepdims=True)
        high = value.max(axis=1, keepdims=True)
        out[site] = _snap(value, low, high).reshape(value.shape[0], -1, c).mean(axis=1)
    return out


@functools.cache
def _profile_step(channels):
    def step(state, trace, mask, params):
        acts = trace.acts if channels is None else _deepxplore_neurons(trace.acts, channels)
        return _profile_fold(state, acts, mask)

    return step


def model_profile(model, images, *, preset: str | Convention = "default",
                  batch_size: int = 1000) -> Profile:
    """Streams ``images`` (usually the training set) through ``model`` and profiles its neurons.

    One jitted pass per fixed-size batch (:func:`workbench.streaming.fold_model`), sharded over
    every device; nothing recompiles for the last, padded batch.

    Args:
        model: an NNX model that sows its activations.
        images: ``(n, ...)`` inputs.
        preset: a name in ``PRESETS`` or a :class:`Convention`.
        batch_size: inputs per batch.

    Returns:
        The :class:`Profile`, sites in layer order.
    """
    options, channels, counts = _stream(model, images, _preset(preset))
    state = streaming.fold_model(model, images, _profile_step(channels), profile_init(counts),
                                 batch_size=batch_size, **options)
    return profile_value(_ordered_state(state, list(counts)))


@functools.cache
def _coverage_step(criteria: tuple[str, ...], k_sections: int | None, k_top: int | None,
                   channels):
    """One module-level step per set of static options, so streaming compiles once per set."""

    def step(state, trace, mask, params):
        acts = trace.acts if channels is None else _deepxplore_neurons(trace.acts, channels)
        out = {}
        for criterion in criteria:
            k = k_sections if criterion == "kmnc" else k_top
            out[criterion] = {
                site: state[criterion][site] | _criterion(
                    criterion, value, mask, params, site, k=k, scaled=False,
                    zero_is_constant=channels is not None)
                for site, value in acts.items()}
        return out

    return step


def model_coverage(model, images, *, criteria: tuple[str, ...] = CRITERIA,
                   preset: str | Convention = "default", profile: Profile | None = None,
                   threshold: float | ArrayLike = 0.0, k_sections: int = 10, k_top: int = 2,
                   scale: float | ArrayLike = 0.0, batch_size: int = 1000
                   ) -> dict[str, dict[str, jax.Array]]:
    """Every requested criterion of ``images`` on ``model``, from one streamed pass.

    The batches are fixed-size (the last padded and masked), each one jitted forward pass plus
    all criteria, the batch axis sharded over every device JAX sees.

    Args:
        model: an NNX model that sows its activations.
        images: ``(n, ...)`` test inputs.
        criteria: names from ``CRITERIA``.
        preset: a name in ``PRESETS`` or a :class:`Convention`. Under ``"deepxplore"`` NC
            compares the already-scaled values with ``threshold`` (no second scaling) and an
            input whose layer output is constant covers nothing there, as in DeepXplore.
            Under other presets NC uses the raw values (``scaled=False``).
        profile: the training profile (:func:`model_profile`, same preset), needed by KMNC,
            NBC and SNAC.
        threshold: NC's threshold.
        k_sections: KMNC's ``k``.
        k_top: TKNC's ``k``.
        scale: NBC's and SNAC's standard-deviation multiple.
        batch_size: inputs per batch.

    Returns:
        ``{criterion: {site: mask}}``, sites in layer order; pass each to :func:`ratio`.

    Example:
        >>> from workbench import models
        >>> net = models.create("lenet1", seed=0)
        >>> cov = model_coverage(net, np.ones((3, 28, 28, 1), np.float32), criteria=("nc",),
        ...                      preset="deepxplore", threshold=0.0)
        >>> {site: m.shape for site, m in cov["nc"].items()}["softmax"]
        (10,)
    """
    conv = _preset(preset)
    if isinstance(criteria, str) or not criteria:
        raise ValueError(f"criteria must be a non-empty tuple of names from {CRITERIA}")
    criteria = tuple(_check_criterion(c) for c in criteria)
    options, channels, counts = _stream(model, images, conv)
    params = {"threshold": _scalar(threshold, "threshold")}
    if {"kmnc", "nbc", "snac"} & set(criteria):
        if profile is None:
            raise ValueError("KMNC, NBC and SNAC need a training profile (model_profile)")
        params["profile"] = _check_profile(profile, counts)
        params["scale"] = _scalar(scale, "scale", positive=True)
    k_sections = _check_k(k_sections, "k_sections") if "kmnc" in criteria else None
    k_top = _check_k(k_top, "k_top") if "tknc" in criteria else None
    state = {c: init(counts, criterion=c, k=k_sections) for c in criteria}
    step = _coverage_step(criteria, k_sections, k_top, channels)
    state = streaming.fold_model(model, images, step, state, params=params,
                                 batch_size=batch_size, **options)
    return {c: {site: state[c][site] for site in counts} for c in criteria}


@functools.cache
def _patterns_step(k: int, channels):
    def step(state, trace, mask, params):
        acts = trace.acts if channels is None else _deepxplore_neurons(trace.acts, channels)
        return _patterns_update_jit.__wrapped__(*state, acts, mask, k=k)

    return step


def model_patterns(model, images, *, k: int = 2, preset: str | Convention = "default",
                   batch_size: int = 1000) -> int:
    """TKNP of ``images`` on ``model``: the number of distinct top-``k`` patterns, streamed.

    Same pass as :func:`model_coverage` (fixed batches, every device); the distinct patterns
    are kept on the device as packed bits, so ``images`` can be as many as memory holds
    ``words = ceil(neurons / 32)`` uint32 per input.

    Example:
        >>> from workbench import models
        >>> model_patterns(models.create("lenet1", seed=0), np.zeros((3, 28, 28, 1), np.float32),
        ...                k=1, batch_size=2)
        1
    """
    conv = _preset(preset)
    options, channels, counts = _stream(model, images, conv)
    k = _check_k(k)
    state = patterns_init(counts, k=k, capacity=len(images))
    table, count, overflow = streaming.fold_model(
        model, images, _patterns_step(k, channels), (state.table, state.count, state.overflow),
        batch_size=batch_size, **options)
    return patterns_count(state._replace(table=table, count=count, overflow=overflow))
