"""Checks of public arguments, written once: each error names the argument, what was given and
what is expected, and is raised before any work starts.

Every public entry point of the package checks its arguments with these functions; none of
them imports Flax or touches a model (the model's own input check is
:func:`workbench.activations.check_model_input`).
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "acts",
    "choice",
    "counts",
    "images",
    "instance",
    "is_traced",
    "key",
    "positive_int",
    "row_mask",
    "scalar",
]


def is_traced(x) -> bool:
    """Whether ``x`` is an abstract value inside a ``jax`` transformation (no data to check)."""
    return isinstance(x, jax.core.Tracer)


def _finite(x) -> bool:
    if is_traced(x):
        return True
    if isinstance(x, np.ndarray):
        return bool(np.isfinite(x).all())
    # Eagerly even inside a trace (a concrete array closed over by a jitted function).
    with jax.ensure_compile_time_eval():
        return bool(jnp.isfinite(x).all())


def images(x, name: str = "inputs", *, min_ndim: int = 2):
    """A batch of floating-point, finite inputs ``(batch, ...)``; returned unchanged.

    Example:
        >>> images(np.zeros((2, 3), np.float32)).shape
        (2, 3)
        >>> images(np.zeros(3, np.float32))
        Traceback (most recent call last):
        ...
        ValueError: inputs must be a batched array (batch, ...), got ndarray of shape (3,)
    """
    if not hasattr(x, "ndim") or x.ndim < min_ndim:
        raise ValueError(f"{name} must be a batched array (batch, ...), got "
                         f"{type(x).__name__} of shape {getattr(x, 'shape', None)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be floating point in the model's range, got {x.dtype}")
    if not _finite(x):
        raise ValueError(f"{name} contain NaN or infinity")
    return x


def acts(values, name: str = "acts") -> dict[str, jax.Array]:
    """``{site: (batch, neurons)}`` of floating, finite values with one batch size, as arrays.

    Example:
        >>> acts({"fc1": np.zeros((2, 3), np.float32)})["fc1"].shape
        (2, 3)
    """
    if not isinstance(values, Mapping) or not values:
        raise ValueError(f"{name} must be a non-empty dict {{site: (batch, neurons)}}, "
                         f"got {type(values).__name__}")
    out, batch = {}, None
    for site, value in values.items():
        value = jnp.asarray(value)
        if value.ndim != 2:
            raise ValueError(f"{name}[{site!r}] must be (batch, neurons), got shape {value.shape}")
        if not jnp.issubdtype(value.dtype, jnp.floating):
            raise ValueError(f"{name}[{site!r}] must be floating point, got {value.dtype}")
        if batch is not None and value.shape[0] != batch:
            raise ValueError(f"{name}: sites have different batch sizes "
                             f"({batch} and {value.shape[0]} at {site!r})")
        batch = value.shape[0]
        if not _finite(value):
            raise ValueError(f"{name}[{site!r}] contains NaN or infinity")
        out[site] = value
    return out


def row_mask(mask, batch: int, name: str = "mask") -> jax.Array:
    """``bool[batch]`` (true on the rows to count); all true when ``mask`` is ``None``."""
    if mask is None:
        return jnp.ones(batch, bool)
    mask = jnp.asarray(mask)
    if mask.shape != (batch,) or mask.dtype != jnp.bool_:
        raise ValueError(f"{name} must be bool[{batch}], got {mask.dtype}{list(mask.shape)}")
    return mask


def scalar(x, name: str, *, minimum: float | None = None) -> jax.Array:
    """A finite float32 scalar (``>= minimum`` when given); traced values pass unchecked.

    Example:
        >>> scalar(float("nan"), "threshold")
        Traceback (most recent call last):
        ...
        ValueError: threshold must be finite, got nan
    """
    value = jnp.asarray(x, jnp.float32)
    if value.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {value.shape}")
    if is_traced(value):
        return value
    if not bool(jnp.isfinite(value)):
        raise ValueError(f"{name} must be finite, got {x}")
    if minimum is not None and float(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")
    return value


def positive_int(k, name: str = "k") -> int:
    """A positive Python or NumPy integer (not a bool, not a float), as ``int``.

    Example:
        >>> positive_int(2.5, "batch_size")
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be a positive int, got 2.5
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    return int(k)


def counts(values, name: str = "counts") -> dict[str, int]:
    """``{site: neurons}``, non-empty, each a positive int, as a new dict in the same order.

    Example:
        >>> counts({"fc1": 3, "fc2": 0})
        Traceback (most recent call last):
        ...
        ValueError: counts['fc2'] must be a positive int, got 0
    """
    if not isinstance(values, Mapping) or not values:
        raise ValueError(f"{name} must be a non-empty dict {{site: neurons}}, "
                         f"got {type(values).__name__}")
    return {site: positive_int(n, f"{name}[{site!r}]") for site, n in values.items()}


def key(value, name: str = "key") -> jax.Array:
    """A single JAX random key; a legacy ``jax.random.PRNGKey`` (``uint32[2]``) is wrapped.

    Example:
        >>> key(jax.random.PRNGKey(0)).shape
        ()
    """
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        if value.shape != ():
            raise ValueError(f"{name} must be a single random key, got shape {value.shape}")
        return value
    if isinstance(value, (jax.Array, np.ndarray)) and value.shape == (2,) \
            and value.dtype == np.uint32:
        return jax.random.wrap_key_data(jnp.asarray(value))
    raise ValueError(f"{name} must be a JAX random key such as jax.random.key(0), "
                     f"got {type(value).__name__}")


def instance(value, kind: type, name: str):
    """``value`` if it is a ``kind``, else a ``ValueError`` naming the argument (bad input is a
    ``ValueError`` in this package, whatever its cause).

    Example:
        >>> instance(3, str, "site")
        Traceback (most recent call last):
        ...
        ValueError: site must be a builtins.str, got int
    """
    if not isinstance(value, kind):
        raise ValueError(f"{name} must be a {kind.__module__}.{kind.__qualname__}, "
                         f"got {type(value).__name__}")
    return value


def choice(value, name: str, options):
    """``value`` if it is one of ``options``, else an error listing them.

    Example:
        >>> choice("max", "reduce", ("mean", "max", "none"))
        'max'
    """
    if value not in tuple(options):
        raise ValueError(f"unknown {name} {value!r}; choose one of {tuple(options)}")
    return value
