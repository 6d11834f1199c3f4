"""The explorer's per-neuron numbers on hand-made activations, checked against NumPy."""

import jax.numpy as jnp
import numpy as np
import pytest

from workbench import profiles
from workbench.experiments import explorer

TRAIN = {"a": np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [1.0, 3.0, 1.0]], np.float32),
         "b": np.array([[0.0, -1.0], [0.0, -2.0], [0.0, -3.0]], np.float32)}
TEST = {"a": np.array([[0.5, 1.0, 3.0], [-1.0, 0.0, 0.5], [1.5, 2.0, 2.5], [0.5, 3.5, 0.0]],
                      np.float32),
        "b": np.array([[1.0, -0.5], [0.0, -4.0], [0.2, -1.0], [0.2, -1.0]], np.float32)}
LABELS = np.array([0, 1, 0, 1], np.int32)
PREDICTIONS = np.array([0, 1, 1, 1], np.int32)  # the third input fails


@pytest.fixture(scope="module")
def md():
    profile = profiles.profile(TRAIN)
    return explorer.ModelData("toy", None, 0.75, np.zeros((4, 2, 2, 1), np.float32), LABELS,
                              PREDICTIONS, {s: jnp.asarray(v) for s, v in TEST.items()}, profile,
                              profiles.dead_neurons(profile), ("zero", "one"))


def test_measure_names_lists_coverage_then_statistics_then_suspiciousness():
    names = list(explorer.measure_names())
    assert names[:7] == ["nc", "kmnc", "nbc", "snac", "tknc", "mean", "rate"]
    assert {"tarantula", "ochiai", "dstar"} <= set(names[7:])


def test_dead_neurons_come_from_the_training_profile(md):
    assert md.dead["a"].tolist() == [False, False, False]
    assert md.dead["b"].tolist() == [True, True]


@pytest.mark.parametrize("label", [None, 0, 1])
def test_nc_mean_rate_on_the_selected_rows(md, label):
    rows = np.ones(4, bool) if label is None else LABELS == label
    np.testing.assert_array_equal(explorer.selected_rows(md, label), rows)
    for site, value in TEST.items():
        nc = explorer.neuron_values(md, "nc", threshold=0.5, label=label)[site]
        np.testing.assert_array_equal(nc, (value[rows] > 0.5).any(axis=0))
        mean = explorer.neuron_values(md, "mean", label=label)[site]
        np.testing.assert_allclose(mean, value[rows].mean(axis=0), rtol=1e-6)
        rate = explorer.neuron_values(md, "rate", threshold=0.5, label=label)[site]
        np.testing.assert_allclose(rate, (value[rows] > 0.5).mean(axis=0), rtol=1e-6)


def test_boundary_criteria_against_the_training_range(md):
    nbc = explorer.neuron_values(md, "nbc", threshold=0.0)
    snac = explorer.neuron_values(md, "snac", threshold=0.0)
    for site, value in TEST.items():
        low, high = TRAIN[site].min(axis=0), TRAIN[site].max(axis=0)
        below, above = (value < low).any(axis=0), (value > high).any(axis=0)
        np.testing.assert_allclose(nbc[site], (below.astype(float) + above) / 2)
        np.testing.assert_array_equal(snac[site], above)


def test_kmnc_and_tknc(md):
    kmnc = explorer.neuron_values(md, "kmnc", k=2)
    tknc = explorer.neuron_values(md, "tknc", k=1)
    for site, value in TEST.items():
        low, high = TRAIN[site].min(axis=0), TRAIN[site].max(axis=0)
        inside = (value >= low) & (value <= high) & (high > low)
        width = np.where(high > low, high - low, 1.0)
        section = np.clip(np.floor((value - low) / width * 2), 0, 1)
        covered = [(inside & (section == j)).any(axis=0) for j in (0, 1)]
        np.testing.assert_allclose(kmnc[site], (covered[0].astype(float) + covered[1]) / 2)
        top = np.zeros(value.shape[1], bool)
        top[np.argmax(value, axis=1)] = True  # the top-1 neuron of each input, per site
        np.testing.assert_array_equal(tknc[site], top)


def test_ochiai_on_one_class(md):
    values = explorer.neuron_values(md, "ochiai", threshold=0.5, label=0)
    rows, passed = LABELS == 0, PREDICTIONS == LABELS
    for site, value in TEST.items():
        hit = value[rows] > 0.5
        a_f = (hit & ~passed[rows, None]).sum(0)
        a_s = (hit & passed[rows, None]).sum(0)
        n_f = (~hit & ~passed[rows, None]).sum(0)
        den = np.sqrt((a_f + n_f) * (a_f + a_s))
        expected = np.where(den > 0, a_f / np.where(den > 0, den, 1), 0.0)
        np.testing.assert_allclose(values[site], expected, rtol=1e-6)


@pytest.mark.parametrize("measure", list(explorer.measure_names()))
def test_every_measure_gives_one_finite_number_per_neuron(md, measure):
    values = explorer.neuron_values(md, measure, threshold=0.5)
    assert {s: v.shape for s, v in values.items()} == {"a": (3,), "b": (2,)}
    assert all(np.isfinite(v).all() for v in values.values())


def test_dstar_matches_numpy(md):
    values = explorer.neuron_values(md, "dstar", threshold=0.5)
    passed = PREDICTIONS == LABELS
    for site, value in TEST.items():
        hit = value > 0.5
        a_f, a_s = (hit & ~passed[:, None]).sum(0), (hit & passed[:, None]).sum(0)
        n_f = (~hit & ~passed[:, None]).sum(0)
        den = a_s + n_f
        expected = np.where(den > 0, a_f ** 3 / np.where(den > 0, den, 1),
                            np.where(a_f > 0, a_f ** 3 + 1.0, 0.0))
        np.testing.assert_allclose(values[site], expected, rtol=1e-6)


def test_top_activating_highest_first_ties_in_order(md):
    assert explorer.top_activating(md, "b", 0, n=3).tolist() == [0, 2, 3]
    assert explorer.top_activating(md, "a", 1, n=2, label=1).tolist() == [3, 1]
    assert explorer.top_activating(md, "a", 0, n=10).tolist() == [2, 0, 3, 1]


def test_highest_is_deterministic_and_counts_ties():
    values = {"a": np.array([1.0, 0.0, 1.0]), "b": np.array([0.5, 1.0])}
    assert explorer.highest(values) == explorer.Highest("a", 0, 1.0, 3)
    assert explorer.highest({"a": np.array([0.1, 0.3]), "b": np.array([0.2])}) == (
        explorer.Highest("a", 1, 0.3, 1))
    assert explorer.highest({"a": np.zeros(0), "b": np.array([0.2, 0.7])}).site == "b"


def test_neuron_activity(md):
    assert explorer.neuron_activity(md, "a", 0) == explorer.Activity(3, 4, 1.5, False)
    assert explorer.neuron_activity(md, "a", 1, label=1) == explorer.Activity(1, 2, 3.5, False)
    assert explorer.neuron_activity(md, "b", 1) == explorer.Activity(0, 4, -0.5, True)


def test_always_active_rows(md):
    assert explorer.always_active(md, threshold=-5.0) == ["a", "b"]
    assert explorer.always_active(md, threshold=-1.5) == ["a"]
    assert explorer.always_active(md) == []  # the second input has a[0] = -1, a[1] = 0
    assert explorer.always_active(md, threshold=0.0, label=0) == ["a"]


def test_bad_names_raise(md):
    with pytest.raises(ValueError, match="unknown measure 'nope'"):
        explorer.neuron_values(md, "nope")
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        explorer.load_model_data("nope")
    with pytest.raises(ValueError, match="reduce"):
        explorer.load_model_data("lenet5", reduce="sum")


@pytest.mark.real_data
@pytest.mark.slow
def test_load_model_data_with_the_released_weights(data_root):
    if not (data_root / "released" / "deepxplore" / "Model1.h5").is_file():
        pytest.skip("the released models are not in the data root")
    md = explorer.load_model_data("lenet1", weights="released", n_train=500, n_test=100,
                                  root=data_root)
    assert md.test_accuracy > 0.97  # measured on the whole test set
    assert {s: v.shape for s, v in md.acts.items()} == {"conv1": (100, 4), "conv2": (100, 12)}
    assert md.labels.tolist()[:3] == [7, 2, 1]
    assert float(np.mean(md.predictions == md.labels)) > 0.9
    for site, value in md.acts.items():  # the profile is the first 500 training images'
        assert md.profile.low[site].shape == (value.shape[1],)
