"""Tests of workbench.idc: hand-set clusters and combinations, a NumPy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import idc


def test_fit_picks_relevant_neurons_and_their_modes():
    rng = np.random.default_rng(0)
    n = 300
    acts = np.stack([rng.normal(size=n),                                   # unimodal
                     np.where(np.arange(n) % 2, 5.0, 0.0) + 0.1 * rng.normal(size=n),
                     np.where(np.arange(n) % 3 == 0, 10.0, np.where(np.arange(n) % 3 == 1,
                                                                    5.0, 0.0))
                     + 0.1 * rng.normal(size=n)], axis=1).astype(np.float32)
    clusters = idc.fit(acts, np.array([0.1, 2.0, 3.0]), m=2, key=jax.random.key(0))
    assert clusters.neurons.tolist() == [2, 1] and clusters.ks == (3, 2)
    np.testing.assert_allclose(clusters.centres[0, :3], [0.0, 5.0, 10.0], atol=0.05)
    np.testing.assert_allclose(clusters.centres[1, :2], [0.0, 5.0], atol=0.05)
    # Every training input reaches one of the 3 x 2 combinations; all six are reached.
    state = idc.update(idc.init(clusters), clusters, acts)
    assert state.shape == (6,) and bool(state.all())
    combo = np.asarray(idc.combinations(clusters, acts))
    want = (np.round(acts[:, 2] / 5) * 2 + np.round(acts[:, 1] / 5)).astype(int)
    np.testing.assert_array_equal(combo, want)
    np.testing.assert_array_equal(idc.input_masks(clusters, acts).any(axis=0), state)


def test_running_equals_one_shot_and_mask():
    clusters = idc.ImportantClusters(jnp.array([0, 1]), jnp.array([[0.0, 1.0], [0.0, 1.0]]),
                                     (2, 2))
    acts = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]], np.float32)
    once = idc.update(idc.init(clusters), clusters, acts)
    assert once.tolist() == [True, False, True, True]
    step = idc.init(clusters)
    for row in acts:
        step = idc.update(step, clusters, row[None])
    np.testing.assert_array_equal(step, once)
    masked = idc.update(idc.init(clusters), clusters, acts, mask=np.array([True, False, False]))
    assert masked.tolist() == [True, False, False, False]


def test_gradient_x_activation_is_the_last_layers_lrp_numerator():
    a = np.array([[1.0, 2.0], [3.0, 0.0]], np.float32)
    w = np.array([[1.0, -1.0], [2.0, 0.5]], np.float32)
    c = np.array([0, 1])
    grad = jax.vmap(jax.grad(lambda x, k: (x @ w)[k]))(jnp.asarray(a), jnp.asarray(c))
    np.testing.assert_allclose(idc.gradient_x_activation(a, w, c), (grad * a).mean(axis=0))


def test_bad_input():
    with pytest.raises(ValueError, match="relevance"):
        idc.fit(np.zeros((10, 3), np.float32), np.zeros(2), m=1, key=jax.random.key(0))
