"""Tests of workbench.sign_coverage against Sun et al.'s definition over all input pairs."""

import itertools

import jax
import numpy as np
import pytest

from workbench import sign_coverage


def np_ss(lower, upper):
    s, t = lower > 0, upper > 0
    covered = np.zeros((s.shape[1], t.shape[1]), bool)
    for a, b in itertools.combinations(range(len(s)), 2):
        flips = s[a] != s[b]
        if flips.sum() == 1:
            covered[np.argmax(flips)] |= t[a] != t[b]
    return covered


def test_matches_numpy_over_all_pairs():
    keys = jax.random.split(jax.random.key(0), 3)
    acts = {"fc1": np.asarray(jax.random.normal(keys[0], (25, 4))),
            "fc2": np.asarray(jax.random.normal(keys[1], (25, 3))),
            "fc3": np.asarray(jax.random.normal(keys[2], (25, 2)))}
    got = sign_coverage.sign_sign_coverage(acts)
    assert list(got) == ["fc1->fc2", "fc2->fc3"]
    np.testing.assert_array_equal(got["fc1->fc2"], np_ss(acts["fc1"], acts["fc2"]))
    np.testing.assert_array_equal(got["fc2->fc3"], np_ss(acts["fc2"], acts["fc3"]))
    assert got["fc1->fc2"].any()


def test_hand_set_relu_network():
    """fc2 = relu(fc1[0] - fc1[1]): flipping fc1[0] alone (from inputs 0 to 1) flips fc2."""
    x = np.array([[1.0, -1.0], [-1.0, -1.0], [1.0, 1.0]], np.float32)
    fc2 = np.maximum(x[:, :1] - x[:, 1:], 0.0)
    got = sign_coverage.sign_sign_coverage({"fc1": x, "fc2": fc2})["fc1->fc2"]
    # Pairs (0, 1): only fc1[0] flips, fc2 2 -> 0 flips; (0, 2): only fc1[1] flips, fc2
    # 2 -> 0 flips; (1, 2): both flip.
    assert got.tolist() == [[True], [True]]


def test_needs_two_sites():
    with pytest.raises(ValueError, match="two sites"):
        sign_coverage.sign_sign_coverage({"fc1": np.zeros((2, 2), np.float32)})
