"""Tests of workbench.profiles: against NumPy, the running form against one shot, masks,
dead neurons, the profile check, recompiles and bad input."""

import chex
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import profiles


def random_acts(seed, batch=16, sizes=(5, 7, 3)):
    keys = jax.random.split(jax.random.key(seed), len(sizes))
    return {f"s{i}": jax.random.normal(key, (batch, n)) for i, (key, n) in
            enumerate(zip(keys, sizes))}


def np_profile(acts):
    """Minimum, maximum, mean and population standard deviation per neuron, in float64."""
    return {s: (a.min(0), a.max(0), a.mean(0), a.std(0)) for s, a in
            ((s, np.asarray(a, np.float64)) for s, a in acts.items())}


def assert_profiles_close(got, want, rtol=1e-5, atol=1e-5):
    for field in profiles.Profile._fields:
        assert list(getattr(got, field)) == list(getattr(want, field))
        for site, value in getattr(want, field).items():
            np.testing.assert_allclose(getattr(got, field)[site], value, rtol=rtol, atol=atol,
                                       err_msg=f"{field} {site}")


def test_profile_matches_numpy():
    acts = random_acts(1)
    prof = profiles.profile(acts)
    assert list(prof.low) == ["s0", "s1", "s2"]
    for site, (low, high, mean, std) in np_profile(acts).items():
        np.testing.assert_allclose(prof.low[site], low, rtol=1e-6)
        np.testing.assert_allclose(prof.high[site], high, rtol=1e-6)
        np.testing.assert_allclose(prof.mean[site], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(prof.std[site], std, rtol=1e-5, atol=1e-6)


def test_profile_by_hand():
    prof = profiles.profile({"fc": jnp.array([[0.0, 1.0], [4.0, 1.0]])})
    assert prof.low["fc"].tolist() == [0.0, 1.0]
    assert prof.high["fc"].tolist() == [4.0, 1.0]
    assert prof.mean["fc"].tolist() == [2.0, 1.0]
    assert prof.std["fc"].tolist() == [2.0, 0.0]


def test_mask_drops_rows():
    acts = random_acts(7)
    rows = jnp.arange(16) < 9
    kept = {s: a[:9] for s, a in acts.items()}
    assert_profiles_close(profiles.profile(acts, mask=rows), profiles.profile(kept))


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([1, 2, 3, 5]))
def test_running_form_equals_one_shot(seed, chunk):
    acts = random_acts(seed, batch=10, sizes=(4, 3))
    state = profiles.profile_init({"s0": 4, "s1": 3})
    for start in range(0, 10, chunk):
        state = profiles.profile_update(state, {s: a[start:start + chunk]
                                                for s, a in acts.items()})
    assert float(state.count) == 10.0
    assert_profiles_close(profiles.profile_value(state), profiles.profile(acts))


def test_running_form_keeps_the_site_order():
    state = profiles.profile_init({"b": 2, "a": 1})
    state = profiles.profile_update(state, {"a": jnp.ones((3, 1)), "b": jnp.zeros((3, 2))})
    assert list(state.low) == ["b", "a"]
    assert list(profiles.profile_value(state).std) == ["b", "a"]


def test_dead_neurons():
    prof = profiles.profile({"fc": jnp.array([[0.0, 1.0, -2.0], [0.0, 2.0, 0.5]])})
    assert profiles.dead_neurons(prof)["fc"].tolist() == [True, False, False]
    assert profiles.dead_neurons(prof, threshold=1.0)["fc"].tolist() == [True, False, True]


def test_check_selects_and_casts_the_sites():
    prof = profiles.profile({"a": jnp.zeros((2, 3)), "b": jnp.ones((2, 1))})
    checked = profiles.check(prof, {"b": 1})
    assert list(checked.high) == ["b"] and checked.high["b"].dtype == jnp.float32
    with pytest.raises(ValueError, match="no site 'c'"):
        profiles.check(prof, {"c": 2})
    with pytest.raises(ValueError, match="has shape"):
        profiles.check(prof, {"a": 4})


def test_new_batches_do_not_retrace():
    counted = jax.jit(chex.assert_max_traces(profiles.profile_update, n=1))
    state = profiles.profile_init({"s0": 5, "s1": 7, "s2": 3})
    for seed in range(3):
        state = counted(state, random_acts(seed), mask=jnp.arange(16) < 10 + seed)
    assert float(state.count) == 10 + 11 + 12


# Without the jaxtyping hook these raise ValueError; under it, the annotations may catch a
# wrong type first.
BAD_TYPE = (ValueError, jaxtyping.TypeCheckError)


def test_bad_input():
    with pytest.raises(ValueError, match="empty"):
        profiles.profile_value(profiles.profile_init({"a": 2}))
    with pytest.raises(ValueError, match="positive int"):
        profiles.profile_init({"a": 0})
    with pytest.raises(ValueError, match="differ"):
        profiles.profile_update(profiles.profile_init({"a": 2}), {"b": jnp.zeros((1, 2))})
    with pytest.raises(ValueError, match="neurons"):
        profiles.profile_update(profiles.profile_init({"a": 2}), {"a": jnp.zeros((1, 3))})
    with pytest.raises(BAD_TYPE):
        profiles.profile_update({"a": 2}, {"a": jnp.zeros((1, 2))})
    with pytest.raises(BAD_TYPE):
        profiles.dead_neurons({"a": 1})
