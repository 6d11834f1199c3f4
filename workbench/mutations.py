"""DeepHunter's metamorphic mutations of images, and its rule for which mutants stay valid.

A mutation is a pure function ``fn(image, params, key) -> image`` of one image ``(h, w, c)`` in
[0, 1], two parameters ``params: float32[2]`` (only translation reads both) and a random key
(only noise uses it), so it runs inside ``jax.jit`` and ``jax.vmap``. There are two classes
(DeepHunter, section 3):

- pixel-value changes (``PIXEL``): :func:`brightness`, :func:`contrast`, :func:`blur`,
  :func:`noise`;
- affine changes (``AFFINE``): :func:`translation`, :func:`scaling`, :func:`shearing`,
  :func:`rotation`, each about the image centre, bilinear, zero outside the image
  (``jax.scipy.ndimage.map_coordinates``, ``order=1``, ``mode="constant"``: SciPy's
  ``affine_transform`` with ``mode="grid-constant"``).

:func:`mutate` applies the mutation numbered ``op`` (its index in ``MUTATIONS``) and clips to
[0, 1]; it is what :func:`workbench.fuzzing.fuzz` vmaps over thousands of mutants, and
:func:`replay` runs a recorded chain again. :func:`validity` is DeepHunter's Equations 1-2: a
mutant stays valid when it changes few pixels (``L0 < alpha * size``) or changes them little
(``L_inf < beta``) against its reference, the original seed, or the seed after the one affine
change its lineage may take. ``RANGES`` are the parameters drawn by default, from the released
DeepHunter code (``deephunter/mutators.py``, rescaled from 0-255 to [0, 1] and made symmetric).

Why not dm-pix: it works with this JAX, but with a parameter per image under ``vmap`` (every
mutant has its own) its ``affine_transform`` (it interpolates over the channel axis too) and
``gaussian_blur`` (a depthwise convolution per kernel) were 40x and 10x slower on the CPU than
``map_coordinates`` and the two small matrix products of :func:`blur`; brightness and contrast
are one line each. Each kernel here is tested against SciPy or NumPy.

Where the released code differs: it counts brightness, contrast and blur with the affine
changes (so they too happen at most once per lineage, unchecked) and only pixel flips and noise
as pixel-value changes; here the paper's two classes are used. Its contrast is a gain
(``cv2.multiply(img, alpha)``); here it is TensorFlow's ``adjust_contrast``, about each
channel's mean. Its blur picks one of nine OpenCV filters; here it is a Gaussian of drawn
width. Its shear is about the top-left corner; here about the centre.

References:
    Xie et al., "DeepHunter: A Coverage-Guided Fuzz Testing Framework for Deep Neural
    Networks", ISSTA 2019, section 3 (metamorphic mutation: Algorithm 2, Equations 1-2;
    alpha = 0.02, beta = 0.2 in the released code, ``deephunter/mutators.py``).
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import ndimage
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Key, Shaped

from workbench import validation

__all__ = [
    "AFFINE",
    "ALPHA",
    "BETA",
    "MUTATIONS",
    "PIXEL",
    "RANGES",
    "Mutation",
    "blur",
    "brightness",
    "contrast",
    "mutate",
    "noise",
    "ranges_table",
    "replay",
    "rotation",
    "scaling",
    "shearing",
    "translation",
    "validity",
    "warp",
]

PIXEL = ("brightness", "contrast", "blur", "noise")
AFFINE = ("translation", "scaling", "shearing", "rotation")
MUTATIONS = PIXEL + AFFINE  # ``op`` is the index in this tuple
ALPHA = 0.02  # DeepHunter's alpha: an L0 budget of 2% of the pixel values
BETA = 0.2  # DeepHunter's beta: an L-infinity budget of 20% of the pixel range
BLUR_RADIUS = 3  # the Gaussian blur reaches 3 pixels (2 standard deviations at sigma 1.5)

# The default parameter ranges ``((low0, high0), (low1, high1))``, drawn uniformly; from the
# released DeepHunter code, 0-255 values divided by 255.
RANGES = {
    "brightness": ((-20 / 255, 20 / 255), (0.0, 0.0)),  # added to every pixel value
    "contrast": ((0.5, 1.2), (1.0, 1.0)),  # factor about the channel mean
    "blur": ((0.5, 1.5), (0.0, 0.0)),  # Gaussian sigma in pixels
    "noise": ((0.0, 0.05), (0.0, 0.0)),  # standard deviation of additive Gaussian noise
    "translation": ((-3.0, 3.0), (-3.0, 3.0)),  # (rows, columns) in pixels
    "scaling": ((0.7, 1.2), (1.0, 1.0)),  # zoom factor
    "shearing": ((-0.6, 0.6), (0.0, 0.0)),  # horizontal shear factor
    "rotation": ((-50.0, 50.0), (0.0, 0.0)),  # degrees, counter-clockwise
}

Image = Float[ArrayLike, "h w c"]  # one image, channels last, in [0, 1]
Mutant = Float[Array, "h w c"]
Params = Float[ArrayLike, " 2"]


class Mutation(NamedTuple):
    """One recorded mutation: enough to run it again (:func:`replay`)."""

    name: str  # a name in ``MUTATIONS``
    params: tuple[float, float]
    key: np.ndarray  # shape=(2,), dtype=uint32: the key's data (jax.random.key_data)


# ------------------------------------------------------------------------ pixel values


def brightness(image: Image, params: Params, key: Key[Array, ""] | None = None) -> Mutant:
    """Adds ``params[0]`` to every pixel value.

    Example:
        >>> brightness(jnp.full((1, 1, 1), 0.5), jnp.array([0.25, 0.0])).ravel().tolist()
        [0.75]
    """
    del key
    return image + params[0]


def contrast(image: Image, params: Params, key: Key[Array, ""] | None = None) -> Mutant:
    """Scales each channel's deviation from its spatial mean by ``params[0]`` (TensorFlow's
    ``adjust_contrast``).

    Example:
        >>> contrast(jnp.array([[[0.0]], [[1.0]]]), jnp.array([0.5, 1.0])).ravel().tolist()
        [0.25, 0.75]
    """
    del key
    mean = image.mean(axis=(0, 1), keepdims=True)
    return (image - mean) * params[0] + mean


def _gaussian_band(n: int, sigma):
    """The ``(n, n)`` matrix of a normalised Gaussian of ``2 * BLUR_RADIUS + 1`` taps, zero
    beyond the edges: ``band @ column`` blurs a column."""
    taps = jnp.exp(-jnp.arange(-BLUR_RADIUS, BLUR_RADIUS + 1, dtype=jnp.float32) ** 2
                   / (2.0 * sigma**2))
    taps = taps / taps.sum()
    offset = jnp.arange(n)[None, :] - jnp.arange(n)[:, None]
    inside = jnp.abs(offset) <= BLUR_RADIUS
    return jnp.where(inside, taps[jnp.clip(offset + BLUR_RADIUS, 0, 2 * BLUR_RADIUS)], 0.0)


def blur(image: Image, params: Params, key: Key[Array, ""] | None = None) -> Mutant:
    """A Gaussian blur of standard deviation ``params[0]`` pixels, ``BLUR_RADIUS`` pixels each
    way, zero beyond the edges: SciPy's ``gaussian_filter(image, sigma, mode="constant",
    truncate=BLUR_RADIUS / sigma)`` over the two spatial axes, as two small matrix products.

    Example:
        >>> out = blur(jnp.zeros((9, 9, 1)).at[4, 4, 0].set(1.0), jnp.array([1.0, 0.0]))
        >>> round(float(out.sum()), 4), bool(out[4, 4, 0] < 1)
        (1.0, True)
    """
    del key
    rows = _gaussian_band(image.shape[0], params[0])
    cols = _gaussian_band(image.shape[1], params[0])
    return jnp.einsum("ij,jkc,lk->ilc", rows, image, cols)


def noise(image: Image, params: Params, key: Key[Array, ""]) -> Mutant:
    """Adds Gaussian noise of standard deviation ``params[0]``, drawn from ``key``.

    Example:
        >>> out = noise(jnp.zeros((4, 4, 1)), jnp.array([0.0, 0.0]), jax.random.key(0))
        >>> float(jnp.abs(out).max())
        0.0
    """
    return image + params[0] * jax.random.normal(key, image.shape, image.dtype)


# ------------------------------------------------------------------------------ affine
# Each affine mutation is a "pull" map: output pixel ``o`` (row, column) reads the input at
# ``A @ (o - centre) + centre - shift``, bilinear, 0 outside the image.


def _translation(params, shape):
    return jnp.eye(2), params


def _scaling(params, shape):
    return jnp.eye(2) / params[0], jnp.zeros(2)


def _shearing(params, shape):
    return jnp.array([[1.0, 0.0], [params[0], 1.0]]), jnp.zeros(2)


def _rotation(params, shape):
    angle = jnp.deg2rad(params[0])
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    return jnp.array([[cos, sin], [-sin, cos]]), jnp.zeros(2)


_MATRICES = (_translation, _scaling, _shearing, _rotation)


def _warp(image, matrix, shift):
    centre = (jnp.asarray(image.shape[:2], jnp.float32) - 1.0) / 2.0
    grid = jnp.stack(jnp.meshgrid(jnp.arange(image.shape[0], dtype=jnp.float32),
                                  jnp.arange(image.shape[1], dtype=jnp.float32), indexing="ij"))
    at = jnp.einsum("ij,jhw->ihw", matrix, grid - centre[:, None, None])
    at = at + (centre - shift)[:, None, None]
    channel = lambda plane: ndimage.map_coordinates(plane, [at[0], at[1]], order=1,
                                                    mode="constant", cval=0.0)
    return jax.vmap(channel, in_axes=2, out_axes=2)(image)


def translation(image: Image, params: Params, key: Key[Array, ""] | None = None) -> Mutant:
    """Moves the content by ``params[0]`` rows and ``params[1]`` columns (down, right).

    Example:
        >>> x = jnp.zeros((3, 3, 1)).at[0, 0, 0].set(1.0)
        >>> translation(x, jnp.array([1.0, 2.0]))[:, :, 0].tolist()
        [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    del key
    return _warp(image, *_translation(params, image.shape))


def scaling(image: Image, params: Params, key: Key[Array, ""] | None = None) -> Mutant:
    """Zooms by ``params[0]`` about the centre (above 1 enlarges, below 1 shrinks)."""
    del key
    return _warp(image, *_scaling(params, image.shape))


def shearing(image: Image, params: Params, key: Key[Array, ""] | None = None) -> Mutant:
    """Shears horizontally about the centre: the row ``r`` rows below it moves
    ``-params[0] * r`` columns."""
    del key
    return _warp(image, *_shearing(params, image.shape))


def rotation(image: Image, params: Params, key: Key[Array, ""] | None = None) -> Mutant:
    """Rotates by ``params[0]`` degrees counter-clockwise about the centre.

    Example:
        >>> x = jnp.zeros((3, 3, 1)).at[0, 1, 0].set(1.0)  # top middle
        >>> rotation(x, jnp.array([90.0, 0.0]))[:, :, 0].round(4).tolist()
        [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    """
    del key
    return _warp(image, *_rotation(params, image.shape))


_PIXEL_FNS = (brightness, contrast, blur, noise)


def warp(image: Image, op: Int[ArrayLike, ""], params: Params) -> Mutant:
    """The affine part of :func:`mutate`: the affine mutation numbered ``op`` (a pixel-value
    ``op`` leaves the image as it is), clipped to [0, 1]. What an affine change does to the
    lineage's reference image (:func:`validity`).

    Example:
        >>> x = jnp.zeros((3, 3, 1)).at[0, 0, 0].set(1.0)
        >>> warp(x, MUTATIONS.index("translation"), jnp.array([2.0, 2.0]))[2, 2, 0].tolist()
        1.0
    """
    op = jnp.asarray(op, jnp.int32)
    matrix, shift = jax.lax.switch(jnp.clip(op - len(PIXEL), 0, len(AFFINE) - 1), _MATRICES,
                                   params, image.shape)
    return jnp.where(op >= len(PIXEL), jnp.clip(_warp(image, matrix, shift), 0.0, 1.0), image)


def mutate(image: Image, op: Int[ArrayLike, ""], params: Params, key: Key[Array, ""]
           ) -> Mutant:
    """Applies the mutation numbered ``op`` (its index in ``MUTATIONS``) and clips to [0, 1].

    Pure and unchecked, for use inside ``jax.jit`` / ``jax.vmap`` (``op`` may be traced). Under
    ``vmap`` every pixel-value branch runs for every image and one warp serves the four affine
    ones (its matrix is chosen per image), so a batch mixing all eight costs about one blur,
    one noise draw and one warp per image.

    Example:
        >>> x = jnp.full((2, 2, 1), 0.9)
        >>> mutate(x, MUTATIONS.index("brightness"), jnp.array([0.5, 0.0]), jax.random.key(0)
        ...        ).ravel().tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    op = jnp.asarray(op, jnp.int32)
    changed = jax.lax.switch(jnp.clip(op, 0, len(PIXEL) - 1), _PIXEL_FNS, image, params, key)
    return jnp.where(op >= len(PIXEL), warp(image, op, params), jnp.clip(changed, 0.0, 1.0))


# ---------------------------------------------------------------------------- validity


def validity(reference: Image, mutant: Image, l0_before: Int[ArrayLike, ""] = 0,
             linf_before: Float[ArrayLike, ""] = 0.0, *, alpha: float | ArrayLike = ALPHA,
             beta: float | ArrayLike = BETA
             ) -> tuple[Bool[Array, ""], Int[Array, ""], Float[Array, ""]]:
    """DeepHunter's validity of a mutant against its reference (Equations 1-2).

    ``L0`` counts the pixel values that differ, ``L_inf`` is the largest difference. Equation 1
    keeps a mutant of seed ``s0`` when ``L0(s0, s') < alpha * size(s0)`` (any change of a few
    pixel values) or ``L_inf(s0, s') < beta`` (small changes anywhere; pixel values in [0, 1],
    so ``beta`` is DeepHunter's ``beta * 255``). After the lineage's one affine change ``G`` the
    reference becomes ``G(s0)``, and Equation 2 adds the distances the seed had travelled
    before it: ``L0 = l0_before + L0(G(s0), s')``, ``L_inf = max(linf_before, L_inf(G(s0),
    s'))``, as the released code does (``mutators.py``, ``mutate_one``).

    Args:
        reference: the original seed, or ``G(s0)``, ``(h, w, c)``.
        mutant: the mutant, same shape.
        l0_before, linf_before: the distances before the affine change (0 without one).
        alpha, beta: the budgets (the released code's 0.02 and 0.2 by default).

    Returns:
        ``(valid, l0, linf)``: whether the mutant is kept, and its distances.

    Example:
        >>> x = jnp.zeros((10, 10, 1))
        >>> [bool(validity(x, x.at[0, 0, 0].set(1.0))[0]),   # 1 value changed: L0 < 2
        ...  bool(validity(x, x + 0.1)[0]),                   # all changed a little
        ...  bool(validity(x, x.at[:3, 0, 0].set(0.5))[0])]   # 3 changed a lot
        [True, True, False]

    References:
        DeepHunter, ISSTA 2019, section 3 (metamorphic mutation), Equations 1 and 2.
    """
    differ = mutant != reference
    l0 = jnp.asarray(l0_before, jnp.int32) + differ.sum(dtype=jnp.int32)
    linf = jnp.maximum(jnp.asarray(linf_before, jnp.float32),
                       jnp.abs(mutant - reference).max().astype(jnp.float32))
    valid = (l0 < alpha * reference.size) | (linf < beta)
    return valid, l0, linf


# ---------------------------------------------------------------------------- helpers


def ranges_table(ranges: dict | None = None) -> Float[np.ndarray, "8 2 2"]:
    """``RANGES`` with the entries of ``ranges`` replaced, as ``float32[8, 2, 2]`` in
    ``MUTATIONS`` order (``[op, parameter, (low, high)]``), checked.

    Example:
        >>> ranges_table({"rotation": ((-10.0, 10.0), (0.0, 0.0))})[7, 0].tolist()
        [-10.0, 10.0]
    """
    chosen = dict(RANGES)
    for name, value in (ranges or {}).items():
        validation.choice(name, "ranges key", MUTATIONS)
        chosen[name] = value
    table = np.zeros((len(MUTATIONS), 2, 2), np.float32)
    for i, name in enumerate(MUTATIONS):
        value = np.asarray(chosen[name], np.float64)
        if value.shape != (2, 2) or not np.isfinite(value).all() \
                or (value[:, 0] > value[:, 1]).any():
            raise ValueError(f"ranges[{name!r}] must be ((low0, high0), (low1, high1)) with "
                             f"low <= high, got {chosen[name]!r}")
        table[i] = value
    if table[MUTATIONS.index("scaling"), 0, 0] <= 0:
        raise ValueError("ranges['scaling'] must be positive factors")
    return table


@jax.jit
def _mutate_one(image, op, params, key_data):
    return mutate(image, op, params, jax.random.wrap_key_data(key_data))


def replay(seed: Shaped[ArrayLike, "..."], chain: Sequence[Mutation]
           ) -> Float[np.ndarray, "h w c"]:
    """Runs a recorded chain of mutations on its seed again: the mutant the fuzzer made.

    Example:
        >>> step = Mutation("brightness", (0.25, 0.0), np.zeros(2, np.uint32))
        >>> replay(np.full((1, 1, 1), 0.5, np.float32), [step, step]).ravel().tolist()
        [1.0]
    """
    seed = np.asarray(seed)
    if seed.ndim != 3:
        raise ValueError(f"seed must be one image (height, width, channels), got shape "
                         f"{seed.shape}")
    image = jnp.asarray(validation.images(seed[None], "seed")[0], jnp.float32)
    for step in chain:
        validation.instance(step, Mutation, "chain step")
        op = validation.choice(step.name, "mutation", MUTATIONS)
        image = _mutate_one(image, jnp.int32(MUTATIONS.index(op)),
                            jnp.asarray(step.params, jnp.float32),
                            jnp.asarray(step.key, jnp.uint32))
    return np.asarray(image)
