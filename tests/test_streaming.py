"""Tests of workbench.streaming: the one padding policy, the batches it yields, and the fold
over them (against a NumPy sum, compiled once). Several devices: test_passes.py."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import streaming


def test_batch_rows_on_one_device():
    assert jax.device_count() == 1
    assert streaming.batch_rows(10, 4) == 4
    assert streaming.batch_rows(3, 1000) == 3  # a small dataset is one batch of its size
    assert streaming.batch_rows(10, 10) == 10
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        streaming.batch_rows(10, 0)


def test_batches_are_fixed_size_zero_padded_and_masked():
    x = np.arange(10.0).reshape(5, 2)
    labels = np.arange(5, dtype=np.int32)
    got = list(streaming.batches((x, labels), 2))
    assert [m.tolist() for m, _, _ in got] == [[True, True], [True, True], [True, False]]
    assert all(b.shape == (2, 2) and y.shape == (2,) for _, b, y in got)
    np.testing.assert_array_equal(got[-1][1], [[8.0, 9.0], [0.0, 0.0]])
    np.testing.assert_array_equal(got[-1][2], [4, 0])
    assert got[0][1].sharding == streaming.batch_sharding()
    with pytest.raises(ValueError, match="different lengths"):
        list(streaming.batches((x, labels[:4]), 2))


def _sum_above(state, mask, params, x):
    return state + jnp.sum(jnp.where(mask[:, None] & (x > params), x, 0.0))


@pytest.mark.parametrize("batch_size", [1, 3, 7, 100])
def test_fold_equals_numpy(batch_size):
    x = np.asarray(jax.random.normal(jax.random.key(0), (7, 3)))
    got = streaming.fold(_sum_above, jnp.float32(0), x, params=0.2, batch_size=batch_size)
    np.testing.assert_allclose(float(got), x[x > 0.2].sum(), rtol=1e-5)


def test_fold_state_pytree_and_extra_arrays():
    def step(state, mask, params, x, y):
        return {"n": state["n"] + mask.sum(dtype=jnp.int32),
                "hits": state["hits"] + jnp.sum(mask & (y == 1), dtype=jnp.int32)}

    labels = np.array([1, 0, 1, 1, 0], np.int32)
    got = streaming.fold(step, {"n": jnp.int32(0), "hits": jnp.int32(0)}, np.zeros((5, 2)),
                         labels, batch_size=2)
    assert (int(got["n"]), int(got["hits"])) == (5, 3)


def _sum_above_once(state, mask, params, x):
    return _sum_above(state, mask, params, x)


def test_fold_compiles_once_for_new_values():
    counted = chex.assert_max_traces(_sum_above_once, n=1)
    x = np.asarray(jax.random.normal(jax.random.key(1), (9, 3)))
    first = streaming.fold(counted, jnp.float32(0), x, params=0.0, batch_size=4)
    # New values, a new threshold and another length with the same batch rows: same trace.
    second = streaming.fold(counted, jnp.float32(1), x[:6] * 2, params=0.5, batch_size=4)
    np.testing.assert_allclose(float(first), x[x > 0].sum(), rtol=1e-5)
    y = x[:6] * 2
    np.testing.assert_allclose(float(second), 1 + y[y > 0.5].sum(), rtol=1e-5)


def test_fold_needs_data():
    with pytest.raises(ValueError, match="non-empty"):
        streaming.fold(_sum_above, jnp.float32(0), np.zeros((0, 3)), params=0.0)
