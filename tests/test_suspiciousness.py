"""Suspiciousness measures against hand-computed values and NumPy formulas; neuron selection."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import suspiciousness as sus
from workbench.spectra import Spectrum


def spec(ef, ep, nf, np_):
    """A spectrum from (ef, ep, nf, np) lists."""
    return Spectrum(a_s=jnp.array(ep, jnp.int32), a_f=jnp.array(ef, jnp.int32),
                    n_s=jnp.array(np_, jnp.int32), n_f=jnp.array(nf, jnp.int32))


# One neuron with ef=2, ep=1, nf=1, np=3: F = 3 failing, P = 4 passing inputs.
HAND = spec([2], [1], [1], [3])
HAND_VALUES = {
    "tarantula": (2 / 3) / (2 / 3 + 1 / 4),
    "ochiai": 2 / math.sqrt(3 * 3),
    "dstar": 8 / 2,
    "jaccard": 2 / 4,
    "sorensen_dice": 4 / 6,
    "kulczynski2": 0.5 * (2 / 3 + 2 / 3),
    "op2": 2 - 1 / 5,
    "barinel": 1 - 1 / 3,
    "russell_rao": 2 / 7,
    "zoltar": 2 / (2 + 1 + 1 + 10000 * 1 * 1 / 2),
    "wong2": 1.0,
    "ample": abs(2 / 3 - 1 / 4),
}


def test_every_measure_has_a_hand_value():
    assert set(HAND_VALUES) == set(sus.MEASURES)
    assert len(sus.MEASURES) >= 9


@pytest.mark.parametrize("name", sorted(HAND_VALUES))
def test_hand_computed(name):
    value = sus.measure(name)(HAND)
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(value), [HAND_VALUES[name]], rtol=1e-6)


# Zero denominators: all-zero spectrum, only passing inputs, only failing inputs, a neuron
# activated by every failing and no passing input.
EDGE = spec([0, 0, 0, 3, 0], [0, 2, 0, 0, 2], [0, 0, 3, 0, 1], [0, 2, 0, 4, 0])
EDGE_VALUES = {
    "tarantula": [0, 0, 0, 1, 0],
    "ochiai": [0, 0, 0, 1, 0],
    "dstar": [0, 0, 0, 28, 0],  # 3**3 / 0 ranks first: 3**3 + 1
    "jaccard": [0, 0, 0, 1, 0],
    "sorensen_dice": [0, 0, 0, 1, 0],
    "kulczynski2": [0, 0, 0, 1, 0],
    "op2": [0, -2 / 5, 0, 3, -2 / 3],
    "barinel": [0, 0, 0, 1, 0],
    "russell_rao": [0, 0, 0, 3 / 7, 0],
    "zoltar": [0, 0, 0, 1, 0],
    "wong2": [0, -2, 0, 3, -2],
    "ample": [0, 1 / 2, 0, 1, 1],
}


@pytest.mark.parametrize("name", sorted(EDGE_VALUES))
def test_zero_denominators_are_finite(name):
    value = np.asarray(sus.measure(name)(EDGE))
    assert np.isfinite(value).all()
    np.testing.assert_allclose(value, EDGE_VALUES[name], rtol=1e-6, atol=1e-7)


def _numpy(name, ef, ep, nf, np_):
    F, P = ef + nf, ep + np_
    return {
        "tarantula": (ef / F) / (ef / F + ep / P),
        "ochiai": ef / np.sqrt(F * (ef + ep)),
        "dstar": ef ** 3 / (ep + nf),
        "jaccard": ef / (ef + nf + ep),
        "sorensen_dice": 2 * ef / (2 * ef + nf + ep),
        "kulczynski2": (ef / F + ef / (ef + ep)) / 2,
        "op2": ef - ep / (P + 1),
        "barinel": 1 - ep / (ep + ef),
        "russell_rao": ef / (F + P),
        "zoltar": ef / (ef + nf + ep + 10000 * nf * ep / ef),
        "wong2": ef - ep,
        "ample": np.abs(ef / F - ep / P),
    }[name]


@pytest.mark.parametrize("name", sorted(EDGE_VALUES))
def test_against_numpy_formula(name):
    rng = np.random.default_rng(1)
    ef, ep, nf, np_ = (rng.integers(1, 50, size=(4, 7)).astype(np.float64) for _ in range(4))
    got = sus.measure(name)(spec(ef, ep, nf, np_))
    assert got.shape == (4, 7)
    np.testing.assert_allclose(np.asarray(got), _numpy(name, ef, ep, nf, np_), rtol=2e-5)


def test_dstar_star():
    np.testing.assert_allclose(np.asarray(sus.dstar(HAND, star=2)), [4 / 2])


def test_dstar_under_jit_with_a_traced_star():
    scores = jax.jit(lambda s, star: sus.dstar(s, star=star))
    np.testing.assert_allclose(np.asarray(scores(HAND, 2.0)), [4 / 2])
    np.testing.assert_allclose(np.asarray(scores(HAND, 3.0)), np.asarray(sus.dstar(HAND)))
    np.testing.assert_allclose(np.asarray(jax.jit(sus.dstar)(HAND)), np.asarray(sus.dstar(HAND)))


def test_dict_spectra_and_jit():
    s = Spectrum(*({"fc1": getattr(HAND, f), "fc2": getattr(EDGE, f)} for f in Spectrum._fields))
    scores = jax.jit(sus.ochiai)(s)
    assert list(scores) == ["fc1", "fc2"]
    np.testing.assert_allclose(np.asarray(scores["fc1"]), [HAND_VALUES["ochiai"]], rtol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="unknown suspiciousness measure 'nope'"):
        sus.measure("nope")
    with pytest.raises(ValueError, match="non-negative"):
        sus.tarantula(spec([-1], [0], [0], [0]))
    with pytest.raises(ValueError, match="shapes"):
        sus.tarantula(spec([1, 2], [0], [0], [0]))
    with pytest.raises(ValueError, match="NaN"):
        sus.top_k(jnp.array([0.1, jnp.nan]), 1)


def test_top_k_ties_deterministic():
    scores = {"fc1": jnp.array([0.5, 0.9, 0.2]), "fc2": jnp.array([0.9, 0.9, 0.1])}
    assert sus.top_k(scores, 3) == [("fc1", 1), ("fc2", 0), ("fc2", 1)]
    assert sus.top_k(scores, 4) == [("fc1", 1), ("fc2", 0), ("fc2", 1), ("fc1", 0)]
    assert sus.top_k(jnp.array([1.0, 3.0, 3.0]), 2) == [1, 2]
    assert sus.top_k(scores, 0) == []
    with pytest.raises(ValueError, match="k=7"):
        sus.top_k(scores, 7)


def test_top_k_per_site():
    scores = {"fc1": jnp.array([0.5, 0.9, 0.9]), "fc2": jnp.array([0.3, 0.8])}
    assert sus.top_k_per_site(scores, 2) == {"fc1": [1, 2], "fc2": [1, 0]}


def test_random_neurons():
    sizes = {"fc1": 5, "fc2": 3}
    key = jax.random.key(3)
    a = sus.random_neurons(sizes, 4, key=key)
    assert a == sus.random_neurons(sizes, 4, key=key)  # deterministic under a key
    assert len(set(a)) == 4 and all(0 <= i < sizes[s] for s, i in a)
    exclude = [("fc1", 0), ("fc1", 1), ("fc1", 2), ("fc2", 0)]
    for seed in range(5):
        b = sus.random_neurons(sizes, 4, key=jax.random.key(seed), exclude=exclude)
        assert sorted(b) == [("fc1", 3), ("fc1", 4), ("fc2", 1), ("fc2", 2)]
    with pytest.raises(ValueError, match="cannot draw 5"):
        sus.random_neurons(sizes, 5, key=key, exclude=exclude)


def test_random_neurons_uniform():
    counts = np.zeros(6)
    for seed in range(300):
        for _, i in sus.random_neurons({"fc1": 6}, 2, key=jax.random.key(seed)):
            counts[i] += 1
    assert counts.min() > 60 and counts.max() < 140  # expected 100 each
