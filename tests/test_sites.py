"""Site and neuron bookkeeping: flat positions, layer order, flatten / unflatten."""

import jax.numpy as jnp
import numpy as np
import pytest

from workbench import sites

COUNTS = {"conv1": 6, "pool1": 6, "fc1": 3}


def test_flat_index_and_site_index_are_inverse():
    seen = [sites.site_index(COUNTS, flat) for flat in range(15)]
    assert seen[:7] == [("conv1", i) for i in range(6)] + [("pool1", 0)]
    assert seen[-1] == ("fc1", 2)
    assert [sites.flat_index(COUNTS, s, i) for s, i in seen] == list(range(15))


def test_flat_index_takes_arrays():
    np.testing.assert_array_equal(sites.flat_index(COUNTS, "fc1", np.array([0, 2])), [12, 14])


def test_bad_indices_are_named():
    with pytest.raises(ValueError, match="outside"):
        sites.site_index(COUNTS, 15)
    with pytest.raises(ValueError, match="unknown site"):
        sites.flat_index(COUNTS, "conv9", 0)
    with pytest.raises(ValueError, match="outside site 'fc1'"):
        sites.flat_index(COUNTS, "fc1", 3)
    with pytest.raises(ValueError, match="integer"):
        sites.flat_index(COUNTS, "fc1", 1.5)
    with pytest.raises(ValueError, match="integer"):
        sites.site_index(COUNTS, 2.0)


def test_flatten_unflatten_round_trip_in_order():
    acts = {"b": jnp.arange(6.0).reshape(2, 3), "a": jnp.ones((2, 1))}
    flat = sites.flatten(acts)
    np.testing.assert_array_equal(flat, [[0, 1, 2, 1], [3, 4, 5, 1]])
    back = sites.unflatten({"b": 3, "a": 1}, flat)
    assert list(back) == ["b", "a"]
    np.testing.assert_array_equal(back["b"], acts["b"])
    with pytest.raises(ValueError, match=r"expected 3 neurons on the last axis, got \(2, 4\)"):
        sites.unflatten({"b": 3}, flat)


def test_in_order_restores_layer_order():
    sorted_by_jit = {"conv1": 1, "fc1": 3, "pool1": 2}
    assert list(sites.in_order(sorted_by_jit, COUNTS)) == ["conv1", "pool1", "fc1"]
