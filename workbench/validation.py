"""Checks of public arguments, written once: each error names the argument, what was given and
what is expected, and is raised before any work starts.

Every public entry point of the package checks its arguments with these functions; none of
them imports Flax or touches a model (the model's own input check is
:func:`workbench.activations.check_model_input`).
"""

import warnings
import weakref
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Shaped

__all__ = [
    "PIXEL_LIMIT",
    "Acts",
    "Float",
    "InputRangeWarning",
    "Int",
    "RowMask",
    "acts",
    "array",
    "choice",
    "counts",
    "extremes",
    "images",
    "input_range",
    "instance",
    "integer",
    "is_int",
    "is_traced",
    "key",
    "labels",
    "positive_int",
    "row_mask",
    "scalar",
    "seed",
]

# Annotations of the arguments these functions check: loose on purpose, so that a wrong value
# gets the ValueError naming the argument and what is expected (the name of the alias says it),
# not a type checker's report (pytest runs with jaxtyping and beartype).
Int = Any  # an int: integer, positive_int, seed
Float = Any  # a real number: scalar
Acts = Mapping[str, Shaped[ArrayLike, "..."]]  # {site: (batch, neurons)}: acts
RowMask = Shaped[ArrayLike, "..."] | None  # bool[batch] or None: row_mask

# Inputs whose largest magnitude exceeds this are almost surely raw 0-255 pixels given to a
# model that takes [0, 1] (every model of the zoo and the papers' released ones): a z-scored
# image stays within a few units.
PIXEL_LIMIT = 10.0


class InputRangeWarning(UserWarning):
    """Inputs far outside the range the models take ([0, 1]); silence it for a model of your own
    that takes such values: ``warnings.simplefilter("ignore", validation.InputRangeWarning)``."""


def is_traced(x) -> bool:
    """Whether ``x`` is an abstract value inside a ``jax`` transformation (no data to check)."""
    return isinstance(x, jax.core.Tracer)


@jax.jit
def _min_max(x):
    return jnp.min(x), jnp.max(x)


_last_extremes: tuple = (None, None)  # (weak reference to a JAX array, its (min, max))


def extremes(x) -> tuple[float, float]:
    """``(min, max)`` of a concrete, non-empty array as floats (NaN if it holds a NaN).

    A JAX array is reduced in one call and one transfer, and the answer is remembered for the
    last JAX array asked about (JAX arrays are immutable), so the checks one public call runs
    on its input (finite, pixel range, unit range) reduce it once: three reductions and
    transfers cost a DeepFault synthesis step ~1 ms.

    Example:
        >>> extremes(np.array([[0.5, -1.0], [2.0, 0.0]], np.float32))
        (-1.0, 2.0)
    """
    global _last_extremes
    if isinstance(x, np.ndarray):
        return float(x.min()), float(x.max())
    ref, answer = _last_extremes
    if ref is not None and ref() is x:
        return answer
    # Eagerly even inside a trace (a concrete array closed over by a jitted function).
    with jax.ensure_compile_time_eval():
        low, high = jax.device_get(_min_max(x))
    answer = (float(low), float(high))
    if isinstance(x, jax.Array):
        _last_extremes = (weakref.ref(x), answer)
    return answer


def _finite(x) -> bool:
    if is_traced(x) or np.size(x) == 0:
        return True
    # NaN carries through min and max, so two scalars answer without an n-byte mask.
    return all(np.isfinite(extremes(x)))


def images(x, name: str = "inputs", *, min_ndim: int = 2, pixel_range: bool = False):
    """A batch of floating-point, finite inputs ``(batch, ...)``; returned unchanged. With
    ``pixel_range=True`` it also warns as :func:`input_range` does, from the same minimum and
    maximum (a NumPy array is reduced once, not twice).

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
        hint = (" (raw pixels? use x.astype(np.float32) / 255)"
                if jnp.issubdtype(x.dtype, jnp.integer) else "")
        raise ValueError(f"{name} must be floating point in the model's range [0, 1], got "
                         f"{x.dtype}{hint}")
    if is_traced(x) or np.size(x) == 0:
        return x
    low, high = extremes(x)  # NaN carries through min and max: two scalars answer
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{name} contain NaN or infinity")
    if pixel_range:
        _warn_pixels(low, high, name)
    return x


def input_range(x, name: str = "inputs") -> None:
    """Warns (:class:`InputRangeWarning`) when ``x`` reaches beyond ``PIXEL_LIMIT`` in
    magnitude: raw 0-255 pixels given to a model that takes [0, 1], the bug of the released
    DeepFault CIFAR-10 code, which tests on [0, 255]. Traced values pass unchecked.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     input_range(np.full((1, 2), 255.0, np.float32))
        >>> caught[0].category.__name__, str(caught[0].message)[:48]
        ('InputRangeWarning', 'inputs range over [255, 255], far outside [0, 1]')
    """
    if is_traced(x) or np.size(x) == 0:
        return
    _warn_pixels(*extremes(x), name)


def _warn_pixels(low: float, high: float, name: str) -> None:
    if max(abs(low), abs(high)) > PIXEL_LIMIT:
        warnings.warn(f"{name} range over [{low:g}, {high:g}], far outside [0, 1], the range "
                      f"the zoo's and the papers' models take: raw 0-255 pixels? Divide them by "
                      f"255 (a model of your own that takes such values: silence "
                      f"validation.InputRangeWarning)", InputRangeWarning, stacklevel=4)


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
        value = array(value, f"{name}[{site!r}]")
        if value.ndim != 2:
            raise ValueError(f"{name}[{site!r}] must be (batch, neurons), got shape {value.shape}")
        if value.shape[1] == 0:
            raise ValueError(f"{name}[{site!r}] has no neurons (shape {value.shape})")
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


def array(value, name: str) -> jax.Array:
    """``jnp.asarray(value)``, or a ``ValueError`` naming the argument (strings, objects,
    ragged lists)."""
    try:
        return jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be an array, got {type(value).__name__} "
                         f"({error})") from None


def row_mask(mask, batch: int, name: str = "mask") -> jax.Array:
    """``bool[batch]`` (true on the rows to count); all true when ``mask`` is ``None``."""
    if mask is None:
        return jnp.ones(batch, bool)
    mask = array(mask, name)
    if mask.shape != (batch,) or mask.dtype != jnp.bool_:
        raise ValueError(f"{name} must be bool[{batch}], got {mask.dtype}{list(mask.shape)}")
    return mask


def labels(values, n: int, name: str = "labels", *, classes: int | None = None,
           hint: str = "") -> np.ndarray | jax.Array:
    """``int[n]`` class labels (any integer dtype, kept) as a NumPy array; with ``classes``,
    each in ``0..classes - 1``. ``hint`` is added to the error after ``int[n]`` (e.g. ``", one
    per extra image"``). A traced value (inside a ``jax`` transformation) is checked by shape
    and dtype only and returned unchanged.

    Example:
        >>> labels([3, 7], 2).tolist()
        [3, 7]
        >>> labels(np.zeros(3), 3)
        Traceback (most recent call last):
        ...
        ValueError: labels must be int[3], got float64[3]
        >>> labels([3, 12, -1], 3, classes=10)
        Traceback (most recent call last):
        ...
        ValueError: labels must lie in 0..9, got [-1, 12]
    """
    if not is_traced(values):
        values = np.asarray(values)
    if values.shape != (n,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must be int[{n}]{hint}, got {values.dtype}"
                         f"{list(values.shape)}")
    if classes is not None and not is_traced(values):
        bad = (values < 0) | (values >= classes)
        if bad.any():
            shown = np.unique(values[bad])
            raise ValueError(f"{name} must lie in 0..{classes - 1}, got {shown[:10].tolist()}"
                             + (f" and {len(shown) - 10} more" if len(shown) > 10 else ""))
    return values


def scalar(x, name: str, *, minimum: float | None = None, above: float | None = None
           ) -> jax.Array:
    """A finite float32 scalar (``>= minimum``, ``> above`` when given); traced values pass
    unchecked.

    Example:
        >>> scalar(float("nan"), "threshold")
        Traceback (most recent call last):
        ...
        ValueError: threshold must be finite, got nan
    """
    if isinstance(x, (str, bytes)) or x is None:
        raise ValueError(f"{name} must be a number, got {x!r}")
    try:
        value = jnp.asarray(x, jnp.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {type(x).__name__}") from None
    if value.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {value.shape}")
    if is_traced(value):
        return value
    if not bool(jnp.isfinite(value)):
        raise ValueError(f"{name} must be finite, got {x}")
    if minimum is not None and float(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")
    if above is not None and not float(value) > above:
        raise ValueError(f"{name} must be > {above}, got {x}")
    return value


def is_int(k) -> bool:
    """Whether ``k`` is an integer value: a Python or NumPy int, or a concrete 0-d integer
    array; not a bool, not a float."""
    if isinstance(k, (jax.Array, np.ndarray)) and not is_traced(k) and k.shape == () \
            and jnp.issubdtype(k.dtype, jnp.integer):
        return True
    return not isinstance(k, bool) and isinstance(k, (int, np.integer))


def positive_int(k, name: str = "k") -> int:
    """A positive Python or NumPy integer (not a bool, not a float), as ``int``.

    Example:
        >>> positive_int(2.5, "batch_size")
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be a positive int, got 2.5
    """
    if not is_int(k) or k < 1:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    return int(k)


def integer(k, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A Python or NumPy integer (or a concrete integer scalar array; not a bool, not a float)
    in ``[minimum, maximum]``, as ``int``.

    Example:
        >>> integer(12, "label", minimum=0, maximum=9)
        Traceback (most recent call last):
        ...
        ValueError: label must be an int in [0, 9], got 12
    """
    bounds = (f" in [{minimum}, {maximum}]" if minimum is not None and maximum is not None
              else f" >= {minimum}" if minimum is not None
              else f" <= {maximum}" if maximum is not None else "")
    if not is_int(k) or (minimum is not None and k < minimum) \
            or (maximum is not None and k > maximum):
        raise ValueError(f"{name} must be an int{bounds}, got {k!r}")
    return int(k)


def seed(value, name: str = "seed") -> int:
    """A random seed: an int in ``[0, 2**31 - 1]`` (NumPy refuses negative seeds, and JAX folds
    larger ones onto smaller ones).

    Example:
        >>> seed(-1)
        Traceback (most recent call last):
        ...
        ValueError: seed must be an int in [0, 2147483647], got -1
    """
    return integer(value, name, minimum=0, maximum=2**31 - 1)


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
