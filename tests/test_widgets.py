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
    explorer.reduce.value = "mean"
    explorer.layers.value = tuple(explorer.layers.options)
    explorer.label.value = "all"
    explorer.threshold.value = 0.0
    explorer.k.value = 2
    explorer.measure.value = "nc"


def test_initial_heatmap_is_neuron_coverage(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    assert list(explorer.values) == ["conv1", "conv2", "fc1", "fc2"]
    for site, value in acts.items():
        np.testing.assert_array_equal(explorer.values[site], (value > 0).any(axis=0))
    assert explorer.heatmap_png()[:4] == b"\x89PNG"
    # the class control shows "all classes", a real option, not a blank (None) selection
    assert explorer.label.value == "all" and explorer.label.label == "all classes"
    assert explorer.class_value is None


def test_threshold_changes_the_heatmap(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    before_png, before = explorer.heatmap_png(), explorer.values
    explorer.threshold.value = 0.5
    assert explorer.heatmap_png() != before_png
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


def _mouse(explorer, kind, site, index):
    """What ipympl's front end sends for a mouse event over the cell of ``(site, index)``
    (canvas pixels from the top left), handled by the real canvas."""
    row = list(explorer.values).index(site)
    x, y = explorer._axes.transData.transform((index, row))
    explorer.heatmap._handle_message(explorer.heatmap, {
        "type": kind, "x": float(x), "y": float(explorer.figure.bbox.height - y), "button": 0,
        "buttons": 1 if kind == "button_press" else 0, "modifiers": [], "guiEvent": {}}, [])


def test_hover_reads_a_cell_and_a_click_selects_it(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    explorer.measure.value = "mean"
    value = acts["fc1"][:, 7].mean()
    _mouse(explorer, "motion_notify", "fc1", 7)
    assert explorer.heatmap._message.startswith(f"fc1[7]  mean = {value:.4g}")
    panel = explorer.neuron_image.value
    _mouse(explorer, "button_press", "fc1", 7)
    _mouse(explorer, "button_release", "fc1", 7)
    assert (explorer.site.value, explorer.neuron.value) == ("fc1", 7)
    assert explorer.selection.value.startswith("<b>selected fc1[7]</b>: mean = ")
    assert explorer.neuron_image.value != panel  # the histogram and top inputs follow
    assert "fc1[7]" in explorer.synthesis_placeholder.value  # so does the synthesis
    _mouse(explorer, "button_press", "conv1", 3)
    assert (explorer.site.value, explorer.neuron.value) == ("conv1", 3)


def test_selected_marker_and_hidden_layer(explorer):
    _reset(explorer)
    explorer.select("fc2", 4)
    ax = explorer._axes
    outlines = [p for p in ax.patches if p.get_xy() == (3.5, 2.5)]
    assert max(p.get_linewidth() for p in outlines) >= 5.0  # more than a thin line
    size = tuple(explorer.figure.get_size_inches())
    explorer.layers.value = ("conv1", "fc1")
    assert "selected fc2[4] is in a hidden layer" in explorer._axes.get_title()
    explorer.layers.value = ("fc1",)
    assert tuple(explorer.figure.get_size_inches()) == size  # one row fills it, no thin strip
    assert "its layer is hidden" in explorer.selection.value
    with pytest.raises(ValueError, match="index must be in"):
        explorer.select("fc2", 84)


def test_select_highest_under_nc_says_how_many_tie(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    covered = {s: (v > 0).any(axis=0) for s, v in acts.items()}
    ties = sum(int(c.sum()) for c in covered.values())
    first = next((s, int(np.argmax(c))) for s, c in covered.items() if c.any())
    assert explorer.select_highest() == first
    assert f"of <b>{ties}</b> neurons tied at 1" in explorer.selection.value


def test_dead_neuron_is_called_dead(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    never = np.flatnonzero(acts["fc1"].max(axis=0) <= 0)
    assert len(never) > 0  # LeNet-5 after one epoch has dead fc1 units
    explorer.select("fc1", int(never[0]))
    assert f"<b>dead</b> on these test inputs: never above 0 on any of the {N_TEST}" in (
        explorer.selection.value)
    live = int(np.argmax(acts["fc1"].max(axis=0)))
    explorer.select("fc1", live)
    active = int((acts["fc1"][:, live] > 0).sum())
    assert f"active (&gt; 0) on {active} of {N_TEST} test inputs" in explorer.selection.value


def test_flat_conv_rows_are_explained_and_per_position_separates_them(explorer, reference):
    _reset(explorer)
    acts, _, _ = reference
    explorer.measure.value = "ochiai"
    flat = [s for s, v in acts.items() if (v > 0).all()]
    assert flat[:2] == ["conv1", "conv2"]  # every channel mean is above 0 on every input
    assert explorer.note.value.startswith(f"<b>{', '.join(flat)}: one flat colour.</b>")
    assert "per position" in explorer.note.value
    explorer.reduce.value = "none"
    per_position = activations.trace(
        explorer.data.model, jnp.asarray(explorer.data.images),
        convention=activations.Convention("post", "none")).acts
    for site in ("conv1", "conv2"):
        value = np.asarray(per_position[site])
        assert explorer.values[site].shape == (value.shape[1],)
        assert len(np.unique(explorer.values[site])) > 1  # no longer one flat colour
    assert "conv1" not in explorer.note.value
    _mouse(explorer, "motion_notify", "conv1", 13)
    assert explorer.heatmap._message.startswith("conv1[13]  ochiai = ")
    assert "(channel 1, position 2)" in explorer.heatmap._message  # 6 channels per position
    _reset(explorer)


def test_synthesis_placeholder_until_synthesise(explorer):
    _reset(explorer)
    explorer.select("fc2", 2)
    assert explorer.synthesis_box.children == (explorer.synthesis_placeholder,)
    assert "Press <b>synthesise</b> to raise fc2[2]" in explorer.synthesis_placeholder.value
    explorer.n_seeds.value = 2
    explorer.synthesize()
    assert explorer.synthesis_box.children == (explorer.synthesis_image,)
    explorer.select("fc2", 3)
    assert explorer.synthesis_box.children == (explorer.synthesis_placeholder,)


def test_display_first_then_load(data_root, model_cache, trained):
    trained("lenet5")
    later = widgets.Explorer("lenet5", model_names=["lenet5"], n_test=100, root=data_root,
                             cache=model_cache, load=False, label=None)
    assert later.status.value.startswith("<i>loading lenet5")
    assert later.neuron_image.layout.display == "none"  # no empty (broken) image
    later.load()
    assert later.status.value.startswith("<b>lenet5</b>") and later.label.value == "all"
    assert later.neuron_image.value[:4] == b"\x89PNG"
