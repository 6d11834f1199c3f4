"""Hit spectra: against a plain NumPy count and hand counts, inside jit and vmap, bad input.
The streamed pass over a model (passes.model_spectrum) is tested in test_passes.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import spectra


def _numpy_spectrum(acts, passed, threshold, where):
    out = {f: {} for f in ("a_s", "a_f", "n_s", "n_f")}
    for name, value in acts.items():
        hit = np.asarray(value) > threshold
        ok = passed & where
        bad = ~passed & where
        out["a_s"][name] = (hit & ok[:, None]).sum(0)
        out["a_f"][name] = (hit & bad[:, None]).sum(0)
        out["n_s"][name] = (~hit & ok[:, None]).sum(0)
        out["n_f"][name] = (~hit & bad[:, None]).sum(0)
    return out


def _assert_equal(spectrum, expected):
    for field in ("a_s", "a_f", "n_s", "n_f"):
        got = getattr(spectrum, field)
        assert list(got) == list(expected[field])
        for name in got:
            np.testing.assert_array_equal(np.asarray(got[name]), expected[field][name])


def test_hand_counted():
    acts = {"fc1": jnp.array([[1.0, -1.0, 0.0], [2.0, 0.0, 0.5], [0.5, 3.0, 0.0]])}
    s = spectra.hit_spectrum(acts, jnp.array([True, False, True]))
    assert s.a_s["fc1"].tolist() == [2, 1, 0]
    assert s.a_f["fc1"].tolist() == [1, 0, 1]
    assert s.n_s["fc1"].tolist() == [0, 1, 2]
    assert s.n_f["fc1"].tolist() == [0, 1, 0]
    assert s.a_s["fc1"].dtype == jnp.int32


@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_matches_numpy(threshold):
    rng = np.random.default_rng(0)
    acts = {"conv1": rng.normal(size=(37, 5)).astype(np.float32),
            "fc1": np.maximum(rng.normal(size=(37, 11)), 0).astype(np.float32)}
    passed = rng.random(37) < 0.7
    where = rng.random(37) < 0.6
    got = spectra.hit_spectrum({k: jnp.asarray(v) for k, v in acts.items()}, jnp.asarray(passed),
                               threshold=threshold, where=jnp.asarray(where))
    _assert_equal(got, _numpy_spectrum(acts, passed, threshold, where))
    total = spectra.total(got)
    assert all(int(v.min()) == int(v.max()) == where.sum() for v in total.values())


@pytest.mark.parametrize("threshold", [0.0, 0.3])
def test_by_class_is_hit_spectrum_per_class(threshold):
    rng = np.random.default_rng(1)
    acts = {"conv1": rng.normal(size=(41, 5)).astype(np.float32),
            "fc1": np.maximum(rng.normal(size=(41, 7)), 0).astype(np.float32)}
    passed, where = rng.random(41) < 0.7, rng.random(41) < 0.8
    labels = rng.integers(0, 4, 41).astype(np.int32)
    got = spectra.hit_spectrum_by_class({k: jnp.asarray(v) for k, v in acts.items()},
                                        jnp.asarray(passed), jnp.asarray(labels), 4,
                                        threshold=threshold, where=jnp.asarray(where))
    for c in range(4):
        _assert_equal(spectra.for_class(got, c),
                      _numpy_spectrum(acts, passed, threshold, where & (labels == c)))
    with pytest.raises(ValueError, match=r"labels must be int\[41\], got int32\[3\]"):
        spectra.hit_spectrum_by_class(acts, jnp.asarray(passed), labels[:3], 4)


def test_bad_inputs():
    acts = {"fc1": jnp.zeros((3, 2))}
    with pytest.raises(ValueError, match="passed"):
        spectra.hit_spectrum(acts, jnp.array([1, 0, 1]))
    with pytest.raises(ValueError, match="passed"):
        spectra.hit_spectrum(acts, jnp.array([True, False]))
    with pytest.raises(ValueError, match="NaN"):
        spectra.hit_spectrum({"fc1": jnp.full((3, 2), jnp.nan)}, jnp.ones(3, bool))
    with pytest.raises(ValueError, match="batch"):
        spectra.hit_spectrum({"fc1": jnp.zeros((3, 2)), "fc2": jnp.zeros((4, 2))},
                             jnp.ones(3, bool))
    with pytest.raises(ValueError, match="non-empty"):
        spectra.hit_spectrum({}, jnp.ones(3, bool))


def test_inside_jit_and_vmap():
    acts = {"b": jnp.array([[1.0, -1.0], [2.0, 0.5]]), "a": jnp.array([[0.0], [3.0]])}
    passed = jnp.array([True, False])
    wheres = jnp.array([[True, False], [False, True]])
    per_row = jax.jit(jax.vmap(lambda w: spectra.hit_spectrum(acts, passed, where=w)))(wheres)
    assert sorted(per_row.a_s) == ["a", "b"]  # leaving jax.jit, a dict's keys are sorted
    assert per_row.a_s["b"].tolist() == [[1, 0], [0, 0]]
    assert per_row.a_f["a"].tolist() == [[0], [1]]
    assert per_row.n_f["b"].tolist() == [[0, 0], [0, 0]]


def test_concatenate_layer_order():
    s = spectra.Spectrum(*({"b": jnp.array([1]), "a": jnp.array([2, 3])} for _ in range(4)))
    assert spectra.concatenate(s).a_s.tolist() == [1, 2, 3]
