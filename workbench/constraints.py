"""DeepXplore's domain constraints on images, as Optax gradient transformations.

A DeepXplore step keeps only the part of the input gradient a realistic change of the image
allows: a uniform brightness change (:func:`light`), a change inside one rectangle
(:func:`occlusion`), or black patches (:func:`blackout`). Each is an Optax transformation over a
batch of images ``(n, h, w, c)``, so a step is the chain

    normalize_by_rms -> constraint -> optax.scale(step)

Write your own as a per-image function ``fn(gradient, key) -> gradient`` and wrap it with
:func:`constraint`; :func:`workbench.differential.generate` takes the result as its
``transformation``. ``key`` is fresh for every image and step, or, with
``constraint(fn, per_seed=True)``, the same for every step of one seed's climb (the occluding
rectangle stays where it was placed).

Where the paper and the released code differ, the paper is the default: occlusion places its
rectangle anywhere in the image (a position drawn per seed; the code's fixed corner is
``occlusion(start=(0, 0))``). The lighting constraint's single brightness change per image
(the paper) comes from :func:`workbench.differential.generate`, which clips the seed plus the
sum of all steps, not each step.

References:
    Pei, Cao, Yang, Jana, "DeepXplore: Automated Whitebox Testing of Deep Learning Systems",
    SOSP 2017 (arXiv:1705.06640), section 6 (domain-specific constraints), and the released
    code, github.com/peikexin9/deepxplore, ``MNIST/utils.py`` (``normalize``,
    ``constraint_light``, ``constraint_occl``, ``constraint_black``).
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Key

from workbench import validation

__all__ = [
    "TRANSFORMATIONS",
    "blackout",
    "check",
    "constraint",
    "light",
    "normalize_by_rms",
    "occlusion",
    "unconstrained",
]

# A per-image constraint: one image's gradient ``(h, w, c)`` and a fresh key -> the gradient kept.
Constraint = Callable[[Float[Array, "h w c"], Key[Array, ""]], Float[Array, "h w c"]]


@functools.cache
def normalize_by_rms(eps: float = 1e-5) -> optax.GradientTransformation:
    """Divides each image's gradient by its root mean square plus ``eps``.

    The released DeepXplore code calls this ``normalize`` ("by its L2 norm"), but computes
    ``g / (sqrt(mean(g ** 2)) + 1e-5)``: the RMS over the image, one image per step. Here the
    leading axis is the batch of seeds, and each is normalised on its own.

    Example:
        >>> g = jnp.array([[[[3.0]], [[-3.0]]]])               # one 2x1x1 image
        >>> normalize_by_rms().update(g, None)[0].ravel().round(4).tolist()
        [1.0, -1.0]

    References:
        DeepXplore released code, ``MNIST/utils.py``: ``normalize``.
    """

    def update(updates, state, params=None):
        del params
        axes = tuple(range(1, updates.ndim))
        rms = jnp.sqrt(jnp.mean(jnp.square(updates), axis=axes, keepdims=True))
        return updates / (rms + eps), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


@functools.cache
def constraint(fn: Constraint, *, per_seed: bool = False) -> optax.GradientTransformationExtraArgs:
    """Turns a per-image constraint ``fn(gradient, key) -> gradient`` into an Optax
    transformation over a batch of images.

    ``gradient`` is one image's (normalised) gradient, ``(h, w, c)``. The transformation's
    ``update`` takes the batch ``(n, h, w, c)`` and Optax's extra keyword arguments (passed
    through ``optax.chain``): ``key``, this step's key, split into a fresh key per image (or
    ``step_keys``, that fresh key of each image given directly); and ``seed_keys``, one key per
    image that stays the same over a seed's whole climb (:func:`workbench.differential.generate`
    passes all three: its step keys follow each seed and iteration, not the image's place in the
    batch). ``fn`` gets the fresh key, or with ``per_seed=True`` the image's seed key. Cached
    per ``(fn, per_seed)``, so building it twice does not recompile
    :func:`workbench.differential.generate`.

    Example:
        >>> def left_half(gradient, key):
        ...     return gradient.at[:, gradient.shape[1] // 2:].set(0.0)
        >>> tx = constraint(left_half)
        >>> out, _ = tx.update(jnp.ones((1, 2, 4, 1)), tx.init(None), key=jax.random.key(0))
        >>> out[0, :, :, 0].tolist()
        [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]]
    """
    def update(updates, state, params=None, *, key=None, seed_keys=None, step_keys=None,
               **extra):
        del params, extra
        if per_seed:
            if seed_keys is None:
                raise ValueError("a per-seed constraint's update needs seed_keys= (one key per "
                                 "image)")
            keys = seed_keys
        elif step_keys is not None:
            keys = step_keys
        elif key is None:
            raise ValueError("a constraint's update needs key=")
        else:
            keys = jax.random.split(key, updates.shape[0])
        return jax.vmap(fn)(updates, keys), state

    return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update)


def _unconstrained(gradient, key):
    del key
    return gradient


def _light(gradient, key):
    del key
    return jnp.full_like(gradient, jnp.mean(gradient))


def _rectangle(shape, start, size):
    """``bool[h, w, 1]``, true inside ``[start, start + size)`` (clipped to the image)."""
    rows = jnp.arange(shape[0])[:, None, None]
    cols = jnp.arange(shape[1])[None, :, None]
    return ((rows >= start[0]) & (rows < start[0] + size[0])
            & (cols >= start[1]) & (cols < start[1] + size[1]))


def _fits(shape, size, what: str, start=None) -> None:
    """Refuses, while tracing (an image's shape is static), a rectangle that covers no pixel or
    reaches outside the image, whose part outside would be clipped away silently."""
    height, width = shape[0], shape[1]
    if min(size) < 1:
        raise ValueError(f"{what} size={size} covers no pixel")
    corner = (0, 0) if start is None else start
    if corner[0] + size[0] > height or corner[1] + size[1] > width:
        where = "" if start is None else f"at start={start} "
        raise ValueError(f"{what} {where}of size={size} does not fit the {height}x{width} "
                         f"images: " + ("start + size" if start is not None else "size")
                         + f" must be at most ({height}, {width})")


def _occlusion(gradient, key, *, start, size):
    del key
    if isinstance(start, tuple):  # a fixed corner (a drawn one always fits)
        _fits(gradient.shape, size, "occlusion rectangle", start)
    return jnp.where(_rectangle(gradient.shape, start, size), gradient, 0.0)


def _corner(key, shape, size):
    """A top-left corner drawn uniformly among those where a ``size`` rectangle fits."""
    high = jnp.array([max(shape[0] - size[0], 0) + 1, max(shape[1] - size[1], 0) + 1])
    return jax.random.randint(key, (2,), 0, high)


def _occlusion_anywhere(gradient, key, *, size):
    _fits(gradient.shape, size, "occlusion rectangle")
    return _occlusion(gradient, None, start=_corner(key, gradient.shape, size), size=size)


def _blackout(gradient, key, *, size, count):
    _fits(gradient.shape, size, "blackout patch")
    starts = jax.vmap(lambda k: _corner(k, gradient.shape, size))(jax.random.split(key, count))

    def patch(start):
        inside = _rectangle(gradient.shape, start, size)
        mean = jnp.sum(jnp.where(inside, gradient, 0.0)) / (size[0] * size[1] * gradient.shape[2])
        return inside & (mean < 0)

    dark = jax.vmap(patch)(starts).any(axis=0)
    return jnp.where(dark, -1.0, 0.0) * jnp.ones_like(gradient)


@functools.cache
def unconstrained() -> optax.GradientTransformationExtraArgs:
    """No constraint: the plain (normalised) gradient.

    Example:
        >>> g = jnp.array([[[[1.0], [3.0]]]])
        >>> unconstrained().update(g, None, key=jax.random.key(0))[0].ravel().tolist()
        [1.0, 3.0]
    """
    return constraint(_unconstrained)


@functools.cache
def light() -> optax.GradientTransformationExtraArgs:
    """Lighting: every pixel moves by the image's mean gradient (a uniform brightness change).

    The paper changes every pixel by the same amount, in the direction of ``mean(G)``; the
    released code's amount is ``mean(G)`` itself, as here. Over a whole climb,
    :func:`workbench.differential.generate` keeps it one change per image: the input is the
    seed plus one constant, clipped to the pixel range.

    Example:
        >>> g = jnp.array([[[[1.0], [3.0]]]])
        >>> light().update(g, None, key=jax.random.key(0))[0].ravel().tolist()
        [2.0, 2.0]

    References:
        DeepXplore, section 6 ("lighting"); released code ``constraint_light``.
    """
    return constraint(_light)


@functools.cache
def occlusion(*, start: Sequence[int] | None = None, size: Sequence[int] = (10, 10)
              ) -> optax.GradientTransformationExtraArgs:
    """Occlusion by a single rectangle: only pixels inside it change.

    The paper places the rectangle anywhere in the image; here (``start=None``, the default)
    each seed gets a position drawn uniformly among those where it fits, from the seed's key,
    and keeps it for its whole climb. The released code fixes the corner (``-sp``, default
    ``(0, 0)``): pass ``start=(0, 0)`` for that.

    Args:
        start: the rectangle's top-left corner ``(row, column)``, or ``None`` for a position
            drawn per seed.
        size: its ``(height, width)``, default ``(10, 10)`` as released (the paper gives none).

    Example:
        >>> out = occlusion(start=(1, 0), size=(1, 2)).update(
        ...     jnp.ones((1, 3, 3, 1)), None, key=jax.random.key(0))[0]
        >>> out[0, :, :, 0].astype(int).tolist()
        [[0, 0, 0], [1, 1, 0], [0, 0, 0]]

    References:
        DeepXplore, section 6 ("occlusion by a single small rectangle"); released code
        ``constraint_occl`` and ``gen_diff.py`` (``-sp``, ``-occl_size``).
    """
    size = _pair(size, "size")
    if start is None:
        return constraint(functools.partial(_occlusion_anywhere, size=size), per_seed=True)
    return constraint(functools.partial(_occlusion, start=_pair(start, "start"), size=size))


@functools.cache
def blackout(*, size: Sequence[int] = (6, 6), count: int = 1
             ) -> optax.GradientTransformationExtraArgs:
    """Black patches: ``count`` random ``size`` patches per step, each darkened by a full step
    (gradient -1 inside it) when the mean gradient over it is negative, else left alone.

    A new position is drawn for every patch, image and step, from the key the transformation's
    ``update`` gets (:func:`workbench.differential.generate` passes one per step). The released
    MNIST code uses one 6x6 patch per step.

    Args:
        size: ``(height, width)`` of a patch.
        count: patches drawn per step.

    Example:
        >>> out = blackout(size=(1, 1)).update(-jnp.ones((1, 2, 2, 1)), None,
        ...                                    key=jax.random.key(0))[0]
        >>> int((out == -1).sum()), int((out == 0).sum())
        (1, 3)

    References:
        DeepXplore, section 6 ("occlusion by multiple tiny black rectangles"); released code
        ``constraint_black``.
    """
    size = _pair(size, "size")
    count = validation.positive_int(count, "count")
    return constraint(functools.partial(_blackout, size=size, count=count))


def _pair(value, name: str) -> tuple[int, int]:
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or min(pair) < 0:
        raise ValueError(f"{name} must be two non-negative integers, got {value!r}")
    return pair


def check(transformation: optax.GradientTransformation, image_shape: Sequence[int]) -> None:
    """Traces ``transformation`` once on an abstract batch of one image of ``image_shape``
    (``(h, w, c)``; no computation), so a constraint that cannot apply to such images fails
    before any work with its own ``ValueError``: an occlusion rectangle outside the image, a
    patch larger than it. :func:`workbench.differential.generate` calls it first.

    Example:
        >>> check(occlusion(start=(0, 0), size=(10, 10)), (28, 28, 1))
        >>> try:
        ...     check(occlusion(start=(25, 0), size=(10, 10)), (28, 28, 1))
        ... except ValueError as error:
        ...     print(error)
        occlusion rectangle at start=(25, 0) of size=(10, 10) does not fit the 28x28 images: start + size must be at most (28, 28)
    """
    tx = optax.chain(transformation)  # takes and passes on the extra arguments (key, seed_keys)
    key = jax.random.key(0)

    def update(gradient):
        return tx.update(gradient, tx.init(gradient), gradient, key=key,
                         seed_keys=jax.random.split(key, 1))[0]

    jax.eval_shape(update, jax.ShapeDtypeStruct((1, *tuple(image_shape)), jnp.float32))


TRANSFORMATIONS: dict[str, Callable[..., optax.GradientTransformationExtraArgs]] = {
    "light": light, "occlusion": occlusion, "blackout": blackout, "none": unconstrained,
}
