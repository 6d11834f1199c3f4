"""Neuron coverage: how much of a network a set of inputs exercises (DeepXplore, DeepGauge).

Every criterion is a pure function of ``acts: {site: (batch, neurons)}`` (as
:func:`workbench.activations.trace` returns them) and gives boolean masks ``{site: bool[...]}``:
which neurons (or neuron sections, or corners) at least one input covered. :func:`ratio` turns
masks into the covered fraction.
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

__all__ = ["neuron_coverage", "ratio", "site_ratios"]

Acts = Mapping[str, Float[ArrayLike, "batch _neurons"]]
Masks = Mapping[str, Bool[ArrayLike, "_neurons *_sections"]]


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
        if not isinstance(value, jax.core.Tracer) and not bool(jnp.isfinite(value).all()):
            raise ValueError(f"{name}[{site!r}] contains NaN or infinity")
        out[site] = value
    return out


def _rows(mask, batch: int) -> jax.Array:
    """The real rows of a batch, as ``bool[batch, 1]``; all rows when ``mask`` is None."""
    if mask is None:
        return jnp.ones((batch, 1), bool)
    mask = jnp.asarray(mask)
    if mask.shape != (batch,) or mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be bool[{batch}], got {mask.dtype}{list(mask.shape)}")
    return mask[:, None]


def _scale_rows(value: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Min-max scales each row to [0, 1]; also says which rows vary (a constant row is 0/0)."""
    low = value.min(axis=1, keepdims=True)
    high = value.max(axis=1, keepdims=True)
    span = high - low
    varies = span > 0
    return jnp.where(varies, (value - low) / jnp.where(varies, span, 1.0), 0.0), varies


def _nc_site(value, threshold, scaled: bool, rows) -> jax.Array:
    if scaled:
        value, varies = _scale_rows(value)
        rows = rows & varies
    return ((value > threshold) & rows).any(axis=0)


def neuron_coverage(acts: Acts, *, threshold: float | ArrayLike, scaled: bool = True,
                    mask: Bool[ArrayLike, "batch"] | None = None
                    ) -> dict[str, Bool[Array, "_neurons"]]:
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
        thresholds (0, 0.25, 0.5, 0.75), so a constant layer covers nothing there too. Unlike
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
        Pei et al., "DeepXplore: Automated Whitebox Testing of Deep Learning Systems", SOSP
        2017, section 4.1 (definition 1) and the released code (``utils.py``: ``scale``,
        ``update_coverage``).
    """
    acts = _check_acts(acts)
    batch = next(iter(acts.values())).shape[0]
    rows = _rows(mask, batch)
    threshold = jnp.asarray(threshold, jnp.float32)
    if threshold.ndim != 0 or not bool(_finite(threshold)):
        raise ValueError(f"threshold must be a finite scalar, got {threshold}")
    return {site: _nc_site(value, threshold, scaled, rows) for site, value in acts.items()}


def _finite(x) -> bool:
    return isinstance(x, jax.core.Tracer) or bool(jnp.isfinite(x).all())


def _host_masks(masks, name: str = "masks") -> dict[str, np.ndarray]:
    if not isinstance(masks, Mapping) or not masks:
        raise ValueError(f"{name} must be a non-empty dict {{site: bool[neurons, ...]}}")
    out = {}
    for site, mask in masks.items():
        if isinstance(mask, jax.core.Tracer):
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
