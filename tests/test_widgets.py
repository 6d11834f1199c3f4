"""The explorer driven from Python: each control changes the heatmap's numbers as it should."""

import jax.numpy as jnp
import numpy as np
import pytest

from workbench import activations, data, widgets
from workbench.experiments import explorer as explorer_data

N_TEST = 400


@pytest.fixture(scope="module")
def explorer(data_root, model_cache, trained):
    trained("lenet5")  # the session's small LeNet-5: the explorer loads the same checkpoint
    return widgets.Explorer("lenet5", model_names=["lenet5"], epochs=1, n_train=5000,
                            n_test=N_TEST, root=data_root, cache=model_cache)


@pytest.fixture(scope="module")
def reference(explorer, data_root):
    """Activations, labels and predictions recomputed independently of the explorer."""
    test = data.load("mnist", "test", root=data_root)
    result = activations.trace(explorer.data.model, jnp.asarray(test.images[:N_TEST]))
    acts = {s: np.asarray(v, np.float64) for s, v in result.acts.items()}
    predictions = np.asarray(result.logits).argmax(axis=1)
    return acts, test.labels[:N_TEST], predictions


def _reset(explorer):
    explorer.layers.value = tuple(explorer.layers.options)
    explorer.label.value = None
    explorer.threshold.value = 0.0
    explorer.k.value = 2
    explorer.measure.value = "nc"


def test_initial_heatmap_is_neuron_coverage(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    assert list(explorer.values) == ["conv1", "conv2", "fc1", "fc2"]
    for site, value in acts.items():
        np.testing.assert_array_equal(explorer.values[site], (value > 0).any(axis=0))
    assert explorer.heatmap_image.value[:4] == b"\x89PNG"


def test_threshold_changes_the_heatmap(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    before_png, before = explorer.heatmap_image.value, explorer.values
    explorer.threshold.value = 0.5
    assert explorer.heatmap_image.value != before_png
    for site, value in acts.items():
        np.testing.assert_array_equal(explorer.values[site], (value > 0.5).any(axis=0))
        assert (explorer.values[site] <= before[site]).all()
    assert sum(v.sum() for v in explorer.values.values()) < sum(v.sum() for v in before.values())


def test_class_and_statistic(explorer, reference):
    _reset(explorer)
    acts, labels, _ = reference
    explorer.measure.value = "mean"
    explorer.label.value = 3
    for site, value in acts.items():
        np.testing.assert_allclose(explorer.values[site], value[labels == 3].mean(axis=0),
                                   rtol=1e-5, atol=1e-6)
    explorer.measure.value = "rate"
    explorer.threshold.value = 0.25
    for site, value in acts.items():
        np.testing.assert_allclose(explorer.values[site],
                                   (value[labels == 3] > 0.25).mean(axis=0), rtol=1e-6)


def test_ochiai_on_one_class_matches_numpy(explorer, reference):
    _reset(explorer)
    acts, labels, predictions = reference
    explorer.measure.value = "ochiai"
    explorer.label.value = 7
    rows, passed = labels == 7, predictions == labels
    for site, value in acts.items():
        hit = value[rows] > 0
        a_f = (hit & ~passed[rows, None]).sum(0)
        a_s = (hit & passed[rows, None]).sum(0)
        n_f = (~hit & ~passed[rows, None]).sum(0)
        den = np.sqrt((a_f + n_f) * (a_f + a_s))
        expected = np.where(den > 0, a_f / np.where(den > 0, den, 1), 0.0)
        np.testing.assert_allclose(explorer.values[site], expected, rtol=1e-5, atol=1e-7)


def test_kmnc_uses_the_training_profile_and_k(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    explorer.measure.value = "kmnc"
    explorer.k.value = 4
    assert explorer.threshold.disabled and not explorer.k.disabled
    profile = explorer.data.profile
    for site, value in acts.items():
        low, high = np.asarray(profile.low[site]), np.asarray(profile.high[site])
        width = np.where(high > low, high - low, 1.0)
        inside = (value >= low) & (value <= high) & (high > low)
        section = np.clip(np.floor((value - low) / width * 4), 0, 3).astype(int)
        covered = np.zeros((value.shape[1], 4), bool)
        for j in range(4):
            covered[:, j] = (inside & (section == j)).any(axis=0)
        np.testing.assert_allclose(explorer.values[site], covered.mean(axis=1), atol=1e-6)


def test_layer_filter_and_neuron_selection(explorer, reference):
    _reset(explorer)
    acts, labels, _ = reference
    explorer.measure.value = "mean"
    explorer.layers.value = ("fc1",)
    assert list(explorer.values) == ["fc1"]
    neuron_png = explorer.neuron_image.value
    site, index = explorer.select_highest()
    assert (site, index) == ("fc1", int(np.argmax(acts["fc1"].mean(axis=0))))
    assert (explorer.site.value, explorer.neuron.value) == (site, index)
    assert explorer.neuron_image.value != neuron_png
    top = explorer_data.top_activating(explorer.data, "fc1", index, n=5)
    np.testing.assert_array_equal(top, np.argsort(-acts["fc1"][:, index], kind="stable")[:5])
    top3 = explorer_data.top_activating(explorer.data, "fc1", index, n=5, label=3)
    assert (labels[top3] == 3).all()


def test_dead_neurons_are_never_active_on_training_data(explorer, data_root):
    train_images = data.load("mnist", "train", root=data_root).images[:5000]
    acts = activations.activations(explorer.data.model, jnp.asarray(train_images))
    for site, value in acts.items():
        np.testing.assert_array_equal(explorer.data.dead[site],
                                      np.asarray(value).max(axis=0) <= 0)


def test_synthesis_on_demand(explorer):
    _reset(explorer)
    explorer.site.value, explorer.neuron.value = "fc2", 5
    explorer.n_seeds.value, explorer.d.value, explorer.step_size.value = 4, 0.1, 1.0
    result = explorer.synthesize()
    assert result.inputs.shape == (4, 28, 28, 1) and result.predictions.shape == (4,)
    assert float(np.abs(np.asarray(result.inputs - result.seeds)).max()) <= 0.1 + 1e-6
    assert float(result.after.mean()) > float(result.before.mean())
    assert explorer.synthesis_image.value[:4] == b"\x89PNG"


def test_bad_names_raise(explorer):
    with pytest.raises(ValueError, match="unknown measure 'nope'"):
        explorer_data.neuron_values(explorer.data, "nope")
    with pytest.raises(ValueError, match="unknown model"):
        widgets.Explorer("nope")
