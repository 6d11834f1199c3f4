"""workbench.mutations: each mutation against NumPy / SciPy at toy size, DeepHunter's validity
rule against a NumPy version of Equations 1-2, replay."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import mutations as mu

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).random((7, 9, 2)).astype(np.float32)


def _params(a, b=0.0):
    return jnp.array([a, b], jnp.float32)


def _pull(image, matrix, shift):
    """SciPy's affine_transform about the centre, zero outside (grid-constant), per channel."""
    centre = (np.array(image.shape[:2]) - 1) / 2
    offset = centre - matrix @ centre - np.asarray(shift)
    return np.stack([ndi.affine_transform(image[..., c].astype(np.float64), matrix,
                                          offset=offset, order=1, mode="grid-constant")
                     for c in range(image.shape[-1])], axis=-1)


def test_pixel_values_against_numpy(image):
    np.testing.assert_allclose(mu.brightness(image, _params(0.1)), image + 0.1, atol=1e-7)
    mean = image.mean(axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(mu.contrast(image, _params(1.3)), (image - mean) * 1.3 + mean,
                               atol=1e-6)
    drawn = np.asarray(jax.random.normal(KEY, image.shape))
    np.testing.assert_allclose(mu.noise(image, _params(0.05), KEY), image + 0.05 * drawn,
                               atol=1e-6)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5])
def test_blur_against_scipy(image, sigma):
    expected = ndi.gaussian_filter(image.astype(np.float64), sigma, mode="constant", cval=0.0,
                                   truncate=mu.BLUR_RADIUS / sigma, axes=(0, 1))
    np.testing.assert_allclose(mu.blur(image, _params(sigma)), expected, atol=1e-6)


def test_affine_against_scipy(image):
    angle = np.deg2rad(30.0)
    rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    cases = [(mu.translation, _params(1.5, -2.25), np.eye(2), (1.5, -2.25)),
             (mu.scaling, _params(1.25), np.eye(2) / 1.25, (0, 0)),
             (mu.shearing, _params(0.4), np.array([[1.0, 0.0], [0.4, 1.0]]), (0, 0)),
             (mu.rotation, _params(30.0), rotation, (0, 0))]
    for fn, params, matrix, shift in cases:
        np.testing.assert_allclose(fn(image, params), _pull(image, matrix, shift), atol=2e-6,
                                   err_msg=fn.__name__)


def test_affine_by_hand(image):
    moved = np.zeros_like(image)
    moved[1:, 2:] = image[:-1, :-2]  # one row down, two columns right, zeros coming in
    np.testing.assert_allclose(mu.translation(image, _params(1.0, 2.0)), moved, atol=1e-6)
    square = image[:7, :7]
    np.testing.assert_allclose(mu.rotation(square, _params(90.0)), np.rot90(square), atol=1e-5)
    for fn, identity in ((mu.scaling, 1.0), (mu.shearing, 0.0), (mu.rotation, 0.0)):
        np.testing.assert_allclose(fn(image, _params(identity)), image, atol=1e-6)


def test_mutate_dispatches_and_clips(image):
    batch = jax.vmap(mu.mutate)
    ops = jnp.arange(len(mu.MUTATIONS))
    params = jnp.array([[0.3, 0.0], [1.5, 1.0], [1.0, 0.0], [0.2, 0.0], [1.0, -1.0],
                        [0.8, 1.0], [0.3, 0.0], [-40.0, 0.0]], jnp.float32)
    keys = jax.random.split(KEY, len(ops))
    out = batch(jnp.broadcast_to(image, (len(ops), *image.shape)), ops, params, keys)
    fns = (mu.brightness, mu.contrast, mu.blur, mu.noise, mu.translation, mu.scaling,
           mu.shearing, mu.rotation)
    for i, fn in enumerate(fns):
        np.testing.assert_allclose(out[i], np.clip(fn(image, params[i], keys[i]), 0, 1),
                                   atol=1e-6, err_msg=fn.__name__)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    # warp: affine mutations only; the others leave the image unchanged.
    np.testing.assert_array_equal(mu.warp(image, 0, params[0]), image)
    np.testing.assert_allclose(mu.warp(image, 7, params[7]), out[7], atol=1e-6)


def _validity_numpy(reference, mutant, l0_before, linf_before, alpha, beta):
    """DeepHunter's Equations 1-2 written out: L0 (pixel values changed) < alpha * size, or
    L_inf < beta (pixel range [0, 1]), compared in float32 as the device does."""
    l0 = l0_before + int(np.sum(mutant != reference))
    linf = max(np.float32(linf_before), np.max(np.abs(mutant - reference)))
    valid = (l0 < np.float32(alpha) * np.float32(reference.size)) or (linf < np.float32(beta))
    return bool(valid), l0, float(linf)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 30), st.floats(0.0, 0.5),
       st.floats(0.001, 0.2), st.floats(0.01, 0.5), st.integers(0, 8))
def test_validity_against_numpy(seed, changed, amount, alpha, beta, l0_before):
    rng = np.random.default_rng(seed)
    reference = rng.random((6, 6, 1)).astype(np.float32)
    mutant = reference.copy().reshape(-1)
    where = rng.choice(mutant.size, size=changed, replace=False)
    mutant[where] = np.clip(mutant[where] + amount * rng.choice([-1, 1], changed), 0, 1)
    mutant = mutant.reshape(reference.shape)
    valid, l0, linf = mu.validity(reference, mutant, l0_before, 0.05, alpha=alpha, beta=beta)
    expected = _validity_numpy(reference, mutant, l0_before, 0.05, alpha, beta)
    assert (bool(valid), int(l0)) == expected[:2]
    assert float(linf) == pytest.approx(expected[2], abs=1e-6)


def test_validity_by_hand():
    x = jnp.zeros((10, 10, 1))  # size 100: alpha = 0.02 allows L0 < 2
    few_large = x.at[0, 0, 0].set(1.0)
    many_small = x + 0.19
    many_large = x.at[:3, 0, 0].set(0.5)
    assert [bool(mu.validity(x, m)[0]) for m in (few_large, many_small, many_large)] == \
        [True, True, False]
    # Equation 2: the distances before the affine change count too.
    assert not bool(mu.validity(x, few_large, 1, 0.0)[0])  # L0 = 2, L_inf = 1
    assert not bool(mu.validity(x, many_small, 0, 0.3)[0])  # L_inf = max(0.3, 0.19)


def test_ranges_and_replay():
    table = mu.ranges_table({"blur": ((1.0, 2.0), (0.0, 0.0))})
    assert table.shape == (8, 2, 2) and table[2, 0].tolist() == [1.0, 2.0]
    assert table[0, 0].tolist() == pytest.approx([-20 / 255, 20 / 255])
    with pytest.raises(ValueError, match="low <= high"):
        mu.ranges_table({"blur": ((2.0, 1.0), (0.0, 0.0))})
    with pytest.raises(ValueError, match="unknown ranges key"):
        mu.ranges_table({"fog": ((0.0, 1.0), (0.0, 0.0))})
    image = np.full((5, 5, 1), 0.5, np.float32)
    steps = [mu.Mutation("brightness", (0.1, 0.0), np.zeros(2, np.uint32)),
             mu.Mutation("translation", (1.0, 0.0), np.zeros(2, np.uint32))]
    expected = np.zeros_like(image)
    expected[1:] = 0.6
    np.testing.assert_allclose(mu.replay(image, steps), expected, atol=1e-6)
    with pytest.raises(ValueError, match="unknown mutation"):
        mu.replay(image, [mu.Mutation("fog", (0.0, 0.0), np.zeros(2, np.uint32))])
