"""DeepXplore's image constraints as Optax transformations, against NumPy and hand counts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from workbench import constraints

KEY = jax.random.key(0)


def _update(tx, g, key=KEY):
    return np.asarray(tx.update(jnp.asarray(g), tx.init(None), key=key)[0])


def test_normalize_by_rms_matches_numpy():
    g = np.random.default_rng(0).normal(size=(3, 4, 5, 2)).astype(np.float32)
    out = np.asarray(constraints.normalize_by_rms().update(jnp.asarray(g), None)[0])
    rms = np.sqrt((g ** 2).mean(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(out, g / (rms + 1e-5), rtol=1e-5)


def test_unconstrained_keeps_the_gradient():
    g = np.random.default_rng(6).normal(size=(2, 3, 3, 1)).astype(np.float32)
    np.testing.assert_array_equal(_update(constraints.unconstrained(), g), g)


def test_light_is_the_same_change_everywhere():
    g = np.random.default_rng(1).normal(size=(2, 5, 5, 1)).astype(np.float32)
    out = _update(constraints.light(), g)
    for image, grad in zip(out, g):
        np.testing.assert_allclose(image, np.full_like(grad, grad.mean()), rtol=1e-5)


def test_occlusion_keeps_only_the_rectangle():
    g = np.random.default_rng(2).normal(size=(2, 8, 8, 1)).astype(np.float32)
    out = _update(constraints.occlusion(start=(2, 3), size=(4, 2)), g)
    expected = np.zeros_like(g)
    expected[:, 2:6, 3:5] = g[:, 2:6, 3:5]
    np.testing.assert_array_equal(out, expected)


def test_occlusion_at_the_released_corner():
    out = _update(constraints.occlusion(start=(0, 0)), np.ones((1, 28, 28, 1), np.float32))
    assert out[0, :10, :10].all() and out.sum() == 100


def _rectangle_of(image):
    rows, cols = np.nonzero(image[..., 0])
    return rows.min(), cols.min(), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_occlusion_anywhere_keeps_one_rectangle_per_seed():
    # The paper's default: a 10x10 rectangle wherever it fits, drawn from each seed's key and
    # kept for every step of that seed (a new step key does not move it).
    tx = constraints.TRANSFORMATIONS["occlusion"]()
    g = np.ones((64, 28, 28, 1), np.float32)
    seed_keys = jax.random.split(jax.random.key(1), 64)
    first = np.asarray(tx.update(jnp.asarray(g), None, key=KEY, seed_keys=seed_keys)[0])
    again = np.asarray(tx.update(jnp.asarray(g), None, key=jax.random.key(9),
                                 seed_keys=seed_keys)[0])
    np.testing.assert_array_equal(first, again)
    corners = set()
    for image in first:
        row, col, height, width = _rectangle_of(image)
        assert (height, width) == (10, 10) and image.sum() == 100
        assert 0 <= row <= 18 and 0 <= col <= 18
        corners.add((row, col))
    assert len(corners) > 40  # 361 possible corners, 64 draws
    rows = np.array([c[0] for c in corners])
    assert rows.min() <= 3 and rows.max() >= 15  # the whole range is used
    with pytest.raises(ValueError, match="seed_keys"):
        tx.update(jnp.asarray(g), None, key=KEY)


def test_blackout_darkens_one_patch_where_gradient_is_negative():
    down = _update(constraints.blackout(), -np.ones((4, 28, 28, 1), np.float32))
    for image in down:
        rows, cols = np.nonzero(image[..., 0])
        assert len(rows) == 36 and set(np.unique(image)) == {-1.0, 0.0}
        assert rows.max() - rows.min() == 5 and cols.max() - cols.min() == 5
    up = _update(constraints.blackout(), np.ones((4, 28, 28, 1), np.float32))
    assert not up.any()


def test_blackout_patch_follows_its_own_mean_gradient():
    g = np.random.default_rng(3).normal(size=(64, 12, 12, 1)).astype(np.float32)
    out = _update(constraints.blackout(size=(3, 3)), g)
    darkened = 0
    for image, grad in zip(out, g):
        rows, cols = np.nonzero(image[..., 0])
        if len(rows):
            darkened += 1
            patch = grad[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert patch.shape == (3, 3, 1) and patch.mean() < 0
            assert (image[rows.min():rows.max() + 1, cols.min():cols.max() + 1] == -1).all()
    assert 10 < darkened < 54  # about half the random patches have a negative mean


def test_blackout_count_draws_several_patches():
    out = _update(constraints.blackout(size=(2, 2), count=5),
                  -np.ones((1, 20, 20, 1), np.float32))
    assert 4 * 2 <= (out == -1).sum() <= 4 * 5


def test_user_constraint_is_cached_and_applied_per_image():
    def top_row(gradient, key):
        return jnp.zeros_like(gradient).at[0].set(gradient[0])

    tx = constraints.constraint(top_row)
    assert constraints.constraint(top_row) is tx
    assert constraints.constraint(top_row, per_seed=True) is not tx
    g = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 1)
    out = _update(tx, g)
    np.testing.assert_array_equal(out[:, 0], g[:, 0])
    assert not out[:, 1:].any()


def test_every_named_transformation_is_an_optax_transformation():
    assert sorted(constraints.TRANSFORMATIONS) == ["blackout", "light", "none", "occlusion"]
    for make in constraints.TRANSFORMATIONS.values():
        assert isinstance(make(), optax.GradientTransformation)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="count"):
        constraints.blackout(count=0)
    with pytest.raises(ValueError, match="size"):
        constraints.blackout(size=(2,))
    with pytest.raises(ValueError, match="start"):
        constraints.occlusion(start=(-1, 0))
    with pytest.raises(ValueError, match="needs key"):
        constraints.light().update(jnp.ones((1, 2, 2, 1)), None)
    with pytest.raises(ValueError, match="size"):
        constraints.occlusion(size=(3, -1))
