"""Neuron coverage: how much of a network a set of inputs exercises (DeepXplore, DeepGauge).

Every criterion is a pure function of ``acts: {site: (batch, neurons)}`` (as
:func:`workbench.activations.trace` returns them) and gives boolean masks ``{site: bool[...]}``:
which neurons (or a neuron's sections, or its corners) at least one input covered.
:func:`ratio` turns masks into the covered fraction, :func:`site_ratios` into one per site,
both optionally without some neurons (``exclude=``, say :func:`workbench.profiles.dead_neurons`).

Criteria (``CRITERIA``; each site's rule is in :func:`_rule`):

- ``"nc"``: :func:`neuron_coverage` (DeepXplore): value above a threshold.
- ``"kmnc"``: :func:`k_multisection_coverage` (DeepGauge): which of ``k`` equal sections of the
  training range ``[low, high]`` a value fell in.
- ``"nbc"``: :func:`neuron_boundary_coverage` (DeepGauge): below ``low`` or above ``high``.
- ``"snac"``: :func:`strong_neuron_activation_coverage` (DeepGauge): above ``high``.
- ``"tknc"``: :func:`top_k_neuron_coverage` (DeepGauge): among its layer's ``k`` largest.

The training ranges come from :mod:`workbench.profiles`; the distinct top-k patterns (TKNP)
from :mod:`workbench.patterns`. Running totals: :func:`init` / :func:`update` fold batches into
a state of boolean masks (the state is the covered masks), so a generator can fold new inputs
in and ask what they newly covered (:func:`newly_covered`). A whole dataset streams through a
model with :func:`workbench.passes.model_coverage`.

What a neuron is (post-activation or DeepXplore's layers, conv maps reduced how, scaled or not)
is the activations' :class:`~workbench.activations.Convention`, chosen where the values are
read; the criteria here take the values as they are. Where published tools differ: the released
DeepXplore code scales each layer per input but only looks at the first input of every batch and
keeps a dict of ``(layer, index) -> bool`` updated in Python loops; NeuraL-Coverage (Yuan et
al., ICSE 2023) averages conv maps but warns that scaling by a batch-wide min/max is wrong for
batches; DeepGauge's KMNC leaves a neuron with a zero-width training range undefined (here it
covers no section).

References:
    Pei et al., "DeepXplore: Automated Whitebox Testing of Deep Learning Systems", SOSP 2017,
    section 4.1 and the released code (``utils.py``).
    Ma et al., "DeepGauge: Multi-Granularity Testing Criteria for Deep Learning Systems", ASE
    2018, section 3.
"""

import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Shaped

from workbench import patterns, profiles, validation

__all__ = [
    "CRITERIA",
    "init",
    "input_masks",
    "k_multisection_coverage",
    "neuron_boundary_coverage",
    "neuron_coverage",
    "newly_covered",
    "ratio",
    "site_ratios",
    "strong_neuron_activation_coverage",
    "top_k_neuron_coverage",
    "update",
]

CRITERIA = ("nc", "kmnc", "nbc", "snac", "tknc")

Acts = validation.Acts  # {site: (batch, neurons)}
Masks = Mapping[str, Shaped[ArrayLike, "_neurons ..."]]
RowMask = validation.RowMask  # bool[batch] or None
Scalar = validation.Float


# ------------------------------------------------------------------ per-site definitions
# Each rule takes one site's values ``(batch, neurons)``, ``rows: bool[batch]`` (the inputs to
# count), the shared parameters (``threshold``, ``std_multiple``) and the site's profile
# tables (``low``, ``high``, ``std``), and says which of the site's targets some counted input
# covered.


def _minmax_rows(value):
    """Min-max scales each row to [0, 1]; also says which rows vary (a constant row is 0/0).

    The ends are set by comparison: under ``jax.jit`` XLA may fuse ``value - low`` into a
    multiply-add that leaves ~1e-9 where NumPy has 0, enough to flip NC at threshold 0.
    """
    low = value.min(axis=1, keepdims=True)
    high = value.max(axis=1, keepdims=True)
    span = high - low
    scaled = (value - low) / jnp.where(span > 0, span, 1.0)
    scaled = jnp.where(value <= low, 0.0, jnp.where(value >= high, 1.0, scaled))
    return scaled, (span > 0)[:, 0]


def _nc(value, rows, shared, site, *, minmax_per_input):
    if minmax_per_input:
        value, varies = _minmax_rows(value)
        rows = rows & varies
    return ((value > shared["threshold"]) & rows[:, None]).any(axis=0)


def _kmnc(value, rows, site, *, k):
    low, high = site["low"][None], site["high"][None]
    width = high - low
    valid = (width > 0) & (value >= low) & (value <= high) & rows[:, None]
    position = (value - low) / jnp.where(width > 0, width, 1.0) * k
    section = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, k - 1)
    # Each input sets its section's bit in 32-bit words, OR-ed over the batch: ceil(k / 32)
    # reductions of the batch instead of k comparisons per value (k = 1000 in DeepGauge). The
    # OR runs within each device's share of the batch (XLA's CPU collectives cannot OR
    # integers across devices); the shares' unpacked masks are then combined with ``any``.
    shares = jax.device_count() if value.shape[0] % jax.device_count() == 0 else 1
    bit = jnp.left_shift(jnp.uint32(1), (section % 32).astype(jnp.uint32))
    bit = jnp.where(valid, bit, jnp.uint32(0)).reshape(shares, -1, value.shape[1])
    word = (section // 32).reshape(bit.shape)
    words = jnp.stack([jax.lax.reduce(jnp.where(word == w, bit, jnp.uint32(0)), jnp.uint32(0),
                                      jax.lax.bitwise_or, (1,))
                       for w in range(-(-k // 32))], axis=-1)  # (shares, neurons, words)
    sections = jnp.arange(k)
    hits = jnp.right_shift(words[:, :, sections // 32],
                           (sections % 32).astype(jnp.uint32)[None, None]) & 1
    return hits.astype(bool).any(axis=0)


def _corners(value, rows, shared, site):
    margin = shared["std_multiple"] * site["std"][None]
    lower = ((value < site["low"][None] - margin) & rows[:, None]).any(axis=0)
    upper = ((value > site["high"][None] + margin) & rows[:, None]).any(axis=0)
    return jnp.stack([lower, upper], axis=-1)


def _rule(criterion: str, value, rows, shared, site, *, k, minmax_per_input):
    if criterion == "nc":
        return _nc(value, rows, shared, site, minmax_per_input=minmax_per_input)
    if criterion == "kmnc":
        return _kmnc(value, rows, site, k=k)
    if criterion == "tknc":
        return (patterns.top_k_mask(value, k=k) & rows[:, None]).any(axis=0)
    corners = _corners(value, rows, shared, site)
    return corners if criterion == "nbc" else corners[:, 1]


def _top_k_covered(values: tuple, rows, k: int) -> tuple:
    """TKNC's masks of every site; the sites of one width share one batched ``lax.top_k``
    (an 8x20 MLP's eight layers: one call instead of eight, whose fixed costs dominated)."""
    widths: dict[int, list[int]] = {}
    for i, value in enumerate(values):
        widths.setdefault(value.shape[1], []).append(i)
    out = [None] * len(values)
    for same in widths.values():
        top = patterns.top_k_mask(jnp.stack([values[i] for i in same]), k=k)  # (sites, n, w)
        covered = (top & rows[None, :, None]).any(axis=1)
        for j, i in enumerate(same):
            out[i] = covered[j]
    return tuple(out)


@functools.partial(jax.jit, static_argnames=("criterion", "k", "minmax_per_input"))
def _masks_jit(values: tuple, rows, shared, sites: tuple, *, criterion, k, minmax_per_input):
    """Tuples in, tuples out (a dict leaving ``jax.jit`` would come back key-sorted)."""
    if criterion == "tknc":
        return _top_k_covered(values, rows, k)
    return tuple(_rule(criterion, value, rows, shared, site, k=k,
                       minmax_per_input=minmax_per_input) for value, site in zip(values, sites))


@functools.partial(jax.jit, static_argnames=("criterion", "k", "minmax_per_input"))
def _update_jit(state: tuple, values: tuple, rows, shared, sites: tuple, *, criterion, k,
                minmax_per_input):
    new = _masks_jit(values, rows, shared, sites, criterion=criterion, k=k,
                     minmax_per_input=minmax_per_input)
    return tuple(old | covered for old, covered in zip(state, new))


def _arguments(criterion: str, acts, mask, *, threshold=0.0, std_multiple=0.0, profile=None,
               k=None):
    """Checks one criterion's arguments; returns the jit's ``values, rows, shared, sites, k``."""
    validation.choice(criterion, "criterion", CRITERIA)
    acts = validation.acts(acts)
    rows = validation.row_mask(mask, next(iter(acts.values())).shape[0])
    shared = {}
    if criterion == "nc":
        shared["threshold"] = validation.scalar(threshold, "threshold")
    if criterion in ("nbc", "snac"):
        shared["std_multiple"] = validation.scalar(std_multiple, "std_multiple", minimum=0.0)
    sites = tuple({} for _ in acts)
    if criterion in ("kmnc", "nbc", "snac"):
        if profile is None:
            raise ValueError(f"criterion {criterion!r} needs a training profile "
                             "(profiles.profile or passes.model_profile)")
        prof = profiles.check(profile, {s: int(v.shape[1]) for s, v in acts.items()})
        sites = tuple({"low": prof.low[s], "high": prof.high[s], "std": prof.std[s]}
                      for s in acts)
    k = validation.positive_int(k, "k") if criterion in ("kmnc", "tknc") else None
    return acts, rows, shared, sites, k


def _masks(criterion, acts, mask, *, minmax_per_input=False, **options):
    acts, rows, shared, sites, k = _arguments(criterion, acts, mask, **options)
    out = _masks_jit(tuple(acts.values()), rows, shared, sites, criterion=criterion, k=k,
                     minmax_per_input=minmax_per_input)
    return dict(zip(acts, out))


# ----------------------------------------------------------------------------- criteria


def neuron_coverage(acts: Acts, *, threshold: Scalar, minmax_per_input: bool = True,
                    mask: RowMask = None) -> dict[str, Bool[Array, " _neurons"]]:
    """DeepXplore's neuron coverage (NC): which neurons exceed ``threshold`` on some input.

    A neuron is covered when its value is strictly greater than ``threshold`` for at least one
    input. With ``minmax_per_input=True`` each input's values at each site are first min-max
    scaled to [0, 1], as the released DeepXplore code does per layer and input
    (``utils.scale``); an input whose values at a site are all equal covers nothing there
    (DeepXplore divides 0 by 0 and a NaN exceeds no threshold).

    Note:
        The released DeepXplore code scales a conv layer's whole output (all positions and
        channels) *before* taking each channel's mean. ``acts`` here are already one value per
        neuron, so to reproduce DeepXplore exactly read them under the ``"deepxplore"``
        convention (``activations.trace(model, x, convention="deepxplore")``, which scales
        first) and pass ``minmax_per_input=False``; :func:`workbench.passes.model_coverage`
        with ``convention="deepxplore"`` and :func:`workbench.passes.deepxplore_coverage` do
        exactly that. That convention scales a constant layer output to 0, which exceeds none
        of DeepXplore's thresholds (0, 0.25, 0.5, 0.75), so a constant layer covers nothing
        there either; below 0 (a threshold DeepXplore never uses) every scaled value exceeds
        it, where the released code's NaN covers nothing. Unlike DeepXplore, every input of a
        batch is counted, not only the first.

    Args:
        acts: ``{site: (batch, neurons)}``, floating point, finite.
        threshold: the activation threshold (a traced value: changing it does not recompile).
        minmax_per_input: min-max scale each input's values per site first (static).
        mask: ``bool[batch]``, the rows to count (padding excluded); all rows when ``None``.

    Returns:
        ``{site: bool[neurons]}``, true where covered, in the order of ``acts``.

    Example:
        >>> acts = {"fc": jnp.array([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]])}
        >>> neuron_coverage(acts, threshold=0.5)["fc"].tolist()
        [False, False, True]
        >>> neuron_coverage(acts, threshold=1.5, minmax_per_input=False)["fc"].tolist()
        [True, True, True]

    References:
        Pei et al., "DeepXplore", SOSP 2017, section 4.1 (definition of neuron coverage) and
        the released code (``utils.py``: ``scale``, ``update_coverage``).
    """
    return _masks("nc", acts, mask, threshold=threshold, minmax_per_input=bool(minmax_per_input))


def k_multisection_coverage(acts: Acts, profile: profiles.Profile, *, k: validation.Int,
                            mask: RowMask = None) -> dict[str, Bool[Array, "_neurons _k"]]:
    """DeepGauge's k-multisection neuron coverage (KMNC): which sections of the training range
    some input's value fell in.

    Neuron ``n``'s range ``[low_n, high_n]`` (from :func:`workbench.profiles.profile` of
    training data) is cut into ``k`` equal sections ``[low_n + i d, low_n + (i + 1) d)``,
    ``d = (high_n - low_n) / k``, the last one closed at ``high_n``. Values outside the range
    cover no section; a neuron with ``high_n == low_n`` has no sections to cover (DeepGauge
    leaves it undefined). KMNC is ``ratio(masks)``: covered sections over ``k`` times the
    neurons.

    Args:
        acts: ``{site: (batch, neurons)}``.
        profile: the training profile; only ``low`` and ``high`` are used.
        k: sections per neuron (static: a new ``k`` compiles anew).
        mask: ``bool[batch]``, the rows to count.

    Returns:
        ``{site: bool[neurons, k]}``.

    Example:
        >>> prof = profiles.profile({"fc": jnp.array([[0.0, 1.0], [4.0, 1.0]])})
        >>> k_multisection_coverage({"fc": jnp.array([[1.5, 1.0], [4.0, 0.0]])}, prof, k=4
        ...                         )["fc"].tolist()
        [[False, True, False, True], [False, False, False, False]]

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.1 (k-multisection neuron coverage).
    """
    return _masks("kmnc", acts, mask, profile=profile, k=k)


def neuron_boundary_coverage(acts: Acts, profile: profiles.Profile, *,
                             std_multiple: Scalar = 0.0, mask: RowMask = None
                             ) -> dict[str, Bool[Array, "_neurons 2"]]:
    """DeepGauge's neuron boundary coverage (NBC): which corner regions some input reached.

    Column 0 is the lower corner, covered by a value below ``low_n - std_multiple * std_n``;
    column 1 the upper corner, a value above ``high_n + std_multiple * std_n`` (``std_n`` over
    the training data; DeepGauge's experiments use 0, 0.5 and 1 standard deviations). NBC is
    ``ratio(masks)``: covered corners over twice the neurons.

    Args:
        acts: ``{site: (batch, neurons)}``.
        profile: the training profile.
        std_multiple: how many standard deviations beyond the training range a corner starts,
            ``>= 0`` (traced: changing it does not recompile).
        mask: ``bool[batch]``, the rows to count.

    Returns:
        ``{site: bool[neurons, 2]}`` (lower, upper).

    Example:
        >>> prof = profiles.profile({"fc": jnp.array([[0.0, 1.0], [4.0, 1.0]])})
        >>> neuron_boundary_coverage({"fc": jnp.array([[-1.0, 2.0]])}, prof)["fc"].tolist()
        [[True, False], [False, True]]

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.1 (neuron boundary coverage).
    """
    return _masks("nbc", acts, mask, profile=profile, std_multiple=std_multiple)


def strong_neuron_activation_coverage(acts: Acts, profile: profiles.Profile, *,
                                      std_multiple: Scalar = 0.0, mask: RowMask = None
                                      ) -> dict[str, Bool[Array, " _neurons"]]:
    """DeepGauge's strong neuron activation coverage (SNAC): the upper corners of
    :func:`neuron_boundary_coverage`, values above ``high_n + std_multiple * std_n``.

    Example:
        >>> prof = profiles.profile({"fc": jnp.array([[0.0, 1.0], [4.0, 1.0]])})
        >>> strong_neuron_activation_coverage({"fc": jnp.array([[-1.0, 2.0]])}, prof
        ...                                   )["fc"].tolist()
        [False, True]

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.1 (strong neuron activation coverage).
    """
    return _masks("snac", acts, mask, profile=profile, std_multiple=std_multiple)


def top_k_neuron_coverage(acts: Acts, *, k: validation.Int, mask: RowMask = None
                          ) -> dict[str, Bool[Array, " _neurons"]]:
    """DeepGauge's top-k neuron coverage (TKNC): neurons among their layer's ``k`` most active
    for some input.

    Each site is a layer; a site with at most ``k`` neurons has all of them in every top-k.
    Ties go to the lower index (:func:`workbench.patterns.top_k_mask`).

    Example:
        >>> acts = {"fc": jnp.array([[3.0, 1.0, 2.0], [0.0, 1.0, 5.0]])}
        >>> top_k_neuron_coverage(acts, k=1)["fc"].tolist()
        [True, False, True]

    References:
        Ma et al., "DeepGauge", ASE 2018, section 3.2 (top-k neuron coverage).
    """
    return _masks("tknc", acts, mask, k=k)


@functools.partial(jax.jit, static_argnames=("criterion", "k", "minmax_per_input"))
def _input_masks_jit(values: tuple, shared, sites: tuple, *, criterion, k, minmax_per_input):
    one = jnp.ones(1, bool)
    return tuple(jax.vmap(lambda row, site=site: _rule(
        criterion, row[None], one, shared, site, k=k, minmax_per_input=minmax_per_input))(value)
        for value, site in zip(values, sites))


def input_masks(acts: Acts, *, criterion: str, threshold: Scalar = 0.0,
                minmax_per_input: bool = True, profile: profiles.Profile | None = None,
                k: validation.Int = None, std_multiple: Scalar = 0.0
                ) -> dict[str, Bool[Array, "batch _neurons ..."]]:
    """What each input covers on its own: ``{site: bool[batch, ...]}``, row ``i`` the masks of
    ``criterion`` for input ``i`` alone (the criterion's masks are the rows' ``any``). The
    options are the criterion's, as in :func:`update`. Coverage-based prioritisation
    (:mod:`workbench.prioritisation`) ranks inputs by these.

    Example:
        >>> input_masks({"fc": jnp.array([[0.0, 1.0], [2.0, 0.0]])}, criterion="nc",
        ...             threshold=0.5, minmax_per_input=False)["fc"].tolist()
        [[False, True], [True, False]]
    """
    acts, _, shared, sites, k = _arguments(criterion, acts, None, threshold=threshold,
                                           std_multiple=std_multiple, profile=profile, k=k)
    out = _input_masks_jit(tuple(acts.values()), shared, sites, criterion=criterion, k=k,
                           minmax_per_input=criterion == "nc" and bool(minmax_per_input))
    return dict(zip(acts, out))


# ------------------------------------------------------------------------------- ratios


def _host_masks(masks, name: str = "masks") -> dict[str, np.ndarray]:
    if not isinstance(masks, Mapping) or not masks:
        raise ValueError(f"{name} must be a non-empty dict {{site: bool[neurons, ...]}}")
    out = {}
    for site, mask in masks.items():
        if validation.is_traced(mask):
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
            denominator alike (say, :func:`workbench.profiles.dead_neurons`).

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
        return (n, validation.positive_int(k, "k"))
    if criterion == "nbc":
        return (n, 2)
    return (n,)


def init(counts: Mapping[str, int], *, criterion: str, k: validation.Int = None
         ) -> dict[str, Bool[Array, "_neurons ..."]]:
    """An empty running coverage: ``{site: bool[...]}`` all false, shaped for ``criterion``.

    Args:
        counts: ``{site: neurons}``, e.g. :func:`workbench.activations.neuron_counts`.
        criterion: one of ``CRITERIA``.
        k: KMNC's sections (needed for ``"kmnc"`` only).

    Example:
        >>> {s: m.shape for s, m in init({"fc": 3}, criterion="kmnc", k=4).items()}
        {'fc': (3, 4)}
    """
    validation.choice(criterion, "criterion", CRITERIA)
    return {s: jnp.zeros(_shape(criterion, n, k), bool)
            for s, n in validation.counts(counts).items()}


def update(state: Masks, acts: Acts, *, criterion: str, mask: RowMask = None,
           threshold: Scalar = 0.0, minmax_per_input: bool = True,
           profile: profiles.Profile | None = None, k: validation.Int = None,
           std_multiple: Scalar = 0.0) -> dict[str, Bool[Array, "_neurons ..."]]:
    """Folds a batch into a running coverage: ``state | criterion(acts)``, in one jitted call.

    Pure: it can also run inside your own ``jax.jit`` (the streamed passes do). The state is
    the masks themselves: pass it to :func:`ratio` or :func:`newly_covered`.

    Args:
        state: from :func:`init` or a previous :func:`update`.
        acts: ``{site: (batch, neurons)}`` with the sites of ``state``.
        criterion: one of ``CRITERIA``; the other options are that criterion's arguments
            (``threshold`` and ``minmax_per_input`` for NC, ``profile`` and ``k`` for KMNC,
            ``profile`` and ``std_multiple`` for NBC and SNAC, ``k`` for TKNC).
        mask: ``bool[batch]``, the rows to count.

    Returns:
        The new state, in the order of ``state``.

    Example:
        >>> state = init({"fc": 3}, criterion="nc")
        >>> state = update(state, {"fc": jnp.array([[0.0, 1.0, 0.2]])}, criterion="nc",
        ...                threshold=0.5, minmax_per_input=False)
        >>> state["fc"].tolist()
        [False, True, False]
    """
    acts, rows, shared, sites, k = _arguments(criterion, acts, mask, threshold=threshold,
                                              std_multiple=std_multiple, profile=profile, k=k)
    if not isinstance(state, Mapping) or set(state) != set(acts):
        raise ValueError(f"state sites {list(state) if isinstance(state, Mapping) else state} "
                         f"differ from the acts sites {list(acts)}")
    for site, value in acts.items():
        expected = _shape(criterion, value.shape[1], k)
        got = jnp.asarray(state[site])
        if got.shape != expected or got.dtype != jnp.bool_:
            raise ValueError(f"state[{site!r}] must be bool{list(expected)} for {criterion}, "
                             f"got {got.dtype}{list(got.shape)}")
    new = _update_jit(tuple(jnp.asarray(state[s]) for s in acts), tuple(acts.values()), rows,
                      shared, sites, criterion=criterion, k=k,
                      minmax_per_input=criterion == "nc" and bool(minmax_per_input))
    covered = dict(zip(acts, new))
    return {site: covered[site] for site in state}


def newly_covered(before: Masks, after: Masks) -> dict[str, Bool[Array, "_neurons ..."]]:
    """What ``after`` covers that ``before`` did not: ``after & ~before`` per site.

    Example:
        >>> newly_covered({"fc": jnp.array([True, False])}, {"fc": jnp.array([True, True])}
        ...               )["fc"].tolist()
        [False, True]
    """
    if not isinstance(before, Mapping) or not isinstance(after, Mapping) \
            or set(before) != set(after):
        raise ValueError(f"before and after must be masks of the same sites, got "
                         f"{list(before) if isinstance(before, Mapping) else before} and "
                         f"{list(after) if isinstance(after, Mapping) else after}")
    return {site: jnp.asarray(after[site]) & ~jnp.asarray(before[site]) for site in after}
