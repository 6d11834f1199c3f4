"""Tests of workbench.passes: hand-set tiny models with known answers, DeepXplore's released
coverage loop on real MNIST, every pass against the one-shot kernels, a user's own model,
recompiles, several devices and bad input."""

import json
import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from flax import nnx

from workbench import activations, coverage, models, passes, patterns, profiles, spectra

# train.py's checkpoints call the deprecated ``State.to_pure_dict`` (reported to the lead).
TRAIN_WARNING = pytest.mark.filterwarnings("ignore:.*nnx.State.*:DeprecationWarning")


def assert_masks_equal(got, want):
    assert list(got) == list(want)
    for site in want:
        np.testing.assert_array_equal(np.asarray(got[site]), np.asarray(want[site]),
                                      err_msg=site)


def assert_spectra_equal(got, want):
    for field in spectra.Spectrum._fields:
        assert_masks_equal(getattr(got, field), getattr(want, field))


def random_images(seed, n):
    return np.asarray(jax.random.uniform(jax.random.key(seed), (n, 28, 28, 1)))


# --------------------------------------------------------- hand-set tiny model, known answers


def tiny_model():
    """Two inputs -> fc1 (3 ReLU neurons: x1, x2, x1 + x2 - 10) -> logits (x1 - x2 + 1, ...)."""
    net = models.Sequential((("dense", 3), ("dense", 2)), (1, 1, 2), rngs=nnx.Rngs(0))
    net.fc1.kernel[...] = jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    net.fc1.bias[...] = jnp.array([0.0, 0.0, -10.0])
    net.logits.kernel[...] = jnp.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    net.logits.bias[...] = jnp.array([0.0, 1.0])
    return net


def tiny_inputs(rows):
    return np.asarray(rows, np.float32).reshape(-1, 1, 1, 2)


def test_tiny_model_post_convention():
    net = tiny_model()
    x = tiny_inputs([[1.0, 0.0], [0.0, 2.0], [0.5, 0.5]])
    prof = passes.model_profile(net, tiny_inputs([[0.0, 0.0], [2.0, 4.0]]))
    assert prof.low["fc1"].tolist() == [0.0, 0.0, 0.0]
    assert prof.high["fc1"].tolist() == [2.0, 4.0, 0.0]
    cov = passes.model_coverage(net, x, profile=prof, threshold=0.75, k_sections=2, k_top=1,
                                batch_size=2)
    assert cov["nc"]["fc1"].tolist() == [True, True, False]
    # fc1 values 1, 0, .5 / 0, 2, .5 / 0, 0, 0 against ranges [0, 2], [0, 4], [0, 0].
    assert cov["kmnc"]["fc1"].tolist() == [[True, True], [True, True], [False, False]]
    assert not np.asarray(cov["nbc"]["fc1"]).any() and not np.asarray(cov["snac"]["fc1"]).any()
    assert cov["tknc"]["fc1"].tolist() == [True, True, False]
    assert coverage.ratio(cov["nc"]) == 2 / 3
    assert coverage.ratio(cov["nc"], exclude=profiles.dead_neurons(prof)) == 1.0


def test_tiny_model_deepxplore_convention_constant_layer_covers_nothing():
    net = tiny_model()
    # Input (0, 0): fc1 is constant (0, 0, 0), the logits (0, 1) and softmax are not.
    x = tiny_inputs([[0.0, 0.0]])
    for threshold in (-0.5, 0.0, 0.5):
        cov = passes.model_coverage(net, x, criteria=("nc",), convention="deepxplore",
                                    threshold=threshold)["nc"]
        assert list(cov) == ["fc1", "logits", "softmax"]
        # The constant layer scales to 0: it covers nothing at any threshold >= 0 (all of
        # DeepXplore's); below 0 every scaled value exceeds the threshold (the released
        # code's 0 / 0 = NaN would cover nothing there).
        assert cov["fc1"].tolist() == [threshold < 0] * 3
        # Scaled logits and softmax are (0, 1): only the second exceeds a threshold >= 0.
        assert cov["logits"].tolist() == [threshold < 0, True]
        assert cov["softmax"].tolist() == [threshold < 0, True]
        assert_masks_equal(passes.deepxplore_coverage(net, x, threshold=threshold), cov)


@pytest.mark.parametrize(("name", "total"), [("lenet1", 52), ("lenet4", 148), ("lenet5", 268)])
def test_deepxplore_neuron_counts(name, total):
    counts = activations.neuron_counts(models.create(name, seed=0), (28, 28, 1),
                                       convention="deepxplore")
    assert sum(counts.values()) == total
    if name == "lenet5":
        cov = passes.model_coverage(models.create(name, seed=0),
                                    np.zeros((1, 28, 28, 1), np.float32), criteria=("nc",),
                                    convention="deepxplore", batch_size=16)
        assert {s: m.size for s, m in cov["nc"].items()} == counts
        # A black image: every layer's output is constant, so nothing is covered.
        assert coverage.ratio(cov["nc"]) == 0.0


# ---------------------------------------------------------------- DeepXplore's released loop

WHOLE_LAYERS = activations.Convention("deepxplore", "none", None)


def deepxplore_loop(net, images, threshold):
    """The released DeepXplore ``update_coverage``, one input at a time, in NumPy: whole layer
    output min-max scaled, then each channel's mean compared with the threshold."""
    counts = activations.neuron_counts(net, (28, 28, 1), convention="deepxplore")
    table = {site: np.zeros(n, bool) for site, n in counts.items()}
    for image in images:
        layers = activations.trace(net, jnp.asarray(image[None]), convention=WHOLE_LAYERS).acts
        for site, out in layers.items():
            out = np.asarray(out[0]).reshape(-1, counts[site])
            with np.errstate(invalid="ignore", divide="ignore"):
                scaled = (out - out.min()) / (out.max() - out.min())
            table[site] |= scaled.mean(axis=0) > threshold
    return table


@pytest.mark.real_data
@TRAIN_WARNING
def test_deepxplore_convention_matches_released_code_on_mnist(trained, data_root):
    from workbench import data
    net = trained("lenet5")
    images = data.load("mnist", "test", root=data_root).images[:40]
    wants = {t: deepxplore_loop(net, images, t) for t in (0.0, 0.25, 0.75)}
    for threshold, want in wants.items():
        got = passes.model_coverage(net, images, criteria=("nc",), convention="deepxplore",
                                    threshold=threshold, batch_size=16)["nc"]
        assert_masks_equal(got, want)
        assert_masks_equal(passes.deepxplore_coverage(net, images, threshold=threshold), want)
    assert 0.0 < coverage.ratio(got) < 1.0
    # The kernel on the convention's values, as the DeepXplore generator counts, says the same.
    acts = activations.trace(net, jnp.asarray(images), convention="deepxplore").acts
    assert_masks_equal(coverage.neuron_coverage(acts, threshold=0.25, minmax_per_input=False),
                       wants[0.25])


# ------------------------------------------------------------- passes against one shot


@pytest.mark.real_data
@TRAIN_WARNING
def test_model_level_equals_pure_functions_on_mnist(trained, data_root):
    from workbench import data
    net = trained("lenet5")
    train_images = data.load("mnist", "train", root=data_root).images[:300]
    test_images = data.load("mnist", "test", root=data_root).images[:100]
    prof = passes.model_profile(net, train_images, batch_size=128)
    acts = activations.activations(net, jnp.asarray(test_images))
    one_shot = profiles.profile(activations.activations(net, jnp.asarray(train_images)))
    for field in profiles.Profile._fields:
        assert list(getattr(prof, field)) == list(acts)
        for site in acts:
            np.testing.assert_allclose(getattr(prof, field)[site],
                                       getattr(one_shot, field)[site], rtol=1e-4, atol=1e-5)
    cov = passes.model_coverage(net, test_images, profile=prof, threshold=0.5, k_sections=5,
                                k_top=3, std_multiple=0.5, batch_size=32)
    want = {"nc": coverage.neuron_coverage(acts, threshold=0.5, minmax_per_input=False),
            "kmnc": coverage.k_multisection_coverage(acts, prof, k=5),
            "nbc": coverage.neuron_boundary_coverage(acts, prof, std_multiple=0.5),
            "snac": coverage.strong_neuron_activation_coverage(acts, prof, std_multiple=0.5),
            "tknc": coverage.top_k_neuron_coverage(acts, k=3)}
    for criterion, masks in want.items():
        assert_masks_equal(cov[criterion], masks)
    assert 0.0 < coverage.ratio(cov["kmnc"]) < 1.0


def test_model_coverage_batch_size_invariant():
    net = models.create("lenet1", seed=0)
    x = random_images(0, 23)
    prof = passes.model_profile(net, x[:17], batch_size=5)
    runs = [passes.model_coverage(net, x, profile=prof, threshold=0.1, k_sections=4,
                                  batch_size=b) for b in (4, 10, 23)]
    for run in runs[1:]:
        for criterion in coverage.CRITERIA:
            assert_masks_equal(run[criterion], runs[0][criterion])


def test_model_trace_equals_one_shot():
    net = models.create("lenet5", seed=1)
    x = random_images(3, 11)
    whole = activations.trace(net, jnp.asarray(x))
    for b in (4, 11, 100):
        got = passes.model_trace(net, x, batch_size=b)
        assert list(got.acts) == list(whole.acts) == ["conv1", "conv2", "fc1", "fc2"]
        np.testing.assert_allclose(got.logits, whole.logits, rtol=1e-5, atol=1e-6)
        for site, value in whole.acts.items():
            np.testing.assert_allclose(got.acts[site], value, rtol=1e-5, atol=1e-6)
    chosen = passes.model_trace(net, x, sites=("fc2", "conv1"), batch_size=4)
    assert list(chosen.acts) == ["conv1", "fc2"]  # layer order
    xp = passes.model_trace(net, x, convention="deepxplore", sites=("softmax",))
    np.testing.assert_allclose(xp.acts["softmax"].max(axis=1), 1.0)  # min-max scaled


def test_model_patterns_equals_one_shot():
    net = models.create("lenet1", seed=0)
    x = random_images(1, 23)
    acts = passes.model_trace(net, x).acts
    want = patterns.top_k_neuron_patterns(acts, k=2)
    assert 1 < want <= 23
    for b in (4, 23):
        assert passes.model_patterns(net, x, k=2, batch_size=b) == want
    with pytest.raises(ValueError, match="larger capacity"):
        passes.model_patterns(net, x, k=2, capacity=1)


def test_model_spectrum_equals_one_shot():
    net = models.create("lenet5", seed=1)
    x = jax.random.uniform(jax.random.key(0), (23, 28, 28, 1))
    labels = np.asarray(jax.random.randint(jax.random.key(1), (23,), 0, 10), np.int32)
    trace = activations.trace(net, x)
    passed = np.asarray(jnp.argmax(trace.logits, -1)) == labels
    one_shot = spectra.hit_spectrum(trace.acts, jnp.asarray(passed))
    streamed = passes.model_spectrum(net, np.asarray(x), labels, batch_size=8)
    assert_spectra_equal(streamed, one_shot)
    # One class, and all classes in one pass.
    c = int(labels[0])
    restricted = passes.model_spectrum(net, np.asarray(x), labels, label=c, batch_size=8)
    expected = spectra.hit_spectrum(trace.acts, jnp.asarray(passed),
                                    where=jnp.asarray(labels == c))
    assert_spectra_equal(restricted, expected)
    by_class = passes.model_spectrum(net, np.asarray(x), labels, by_class=True, batch_size=8)
    assert_spectra_equal(spectra.for_class(by_class, c), expected)
    assert by_class.a_s["conv1"].shape == (10, 6)


@pytest.mark.real_data
@TRAIN_WARNING
def test_real_mnist_class_spectrum(trained, data_root):
    from workbench import data

    net = trained("deepfault_3x50_relu")
    test = data.load("mnist", "test", root=data_root)
    s = passes.model_spectrum(net, test.images, test.labels, label=3)
    n3 = int((test.labels == 3).sum())
    for counts in spectra.total(s).values():
        assert set(np.asarray(counts).tolist()) == {n3}
    failing = int(s.a_f["fc1"][0] + s.n_f["fc1"][0])
    assert 0 < failing < n3 / 4  # a trained model misclassifies a few percent


# --------------------------------------------------------------------- a user's own model


class MyNet(nnx.Module):
    """The README's example without ``sites`` and without ``input_shape``: sorted site names
    (fc1, fc2) happen to be the layer order; the input shape comes from the data."""

    def __init__(self, rngs):
        self.fc1 = nnx.Linear(784, 64, rngs=rngs)
        self.fc2 = nnx.Linear(64, 32, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.fc1(x.reshape(x.shape[0], -1)))
        self.sow(nnx.Intermediate, "fc1", h)
        z = self.fc2(h)
        self.sow(activations.PreActivation, "fc2", z)
        h = nnx.relu(z)
        self.sow(nnx.Intermediate, "fc2", h)
        return self.out(h)


def test_a_users_own_model_goes_through_every_pass():
    net = MyNet(nnx.Rngs(0))
    assert not hasattr(net, "input_shape") and not hasattr(net, "sites")
    x = random_images(4, 9)
    labels = np.arange(9, dtype=np.int32) % 10
    acts = activations.activations(net, jnp.asarray(x))
    prof = passes.model_profile(net, x, batch_size=4)
    assert {s: v.shape for s, v in prof.high.items()} == {"fc1": (64,), "fc2": (32,)}
    cov = passes.model_coverage(net, x, profile=prof, threshold=0.1, batch_size=4)
    assert_masks_equal(cov["nc"], coverage.neuron_coverage(acts, threshold=0.1,
                                                           minmax_per_input=False))
    assert_masks_equal(cov["kmnc"], coverage.k_multisection_coverage(acts, prof, k=10))
    logits = np.asarray(activations.trace(net, jnp.asarray(x)).logits)
    spectrum = passes.model_spectrum(net, x, labels, batch_size=4)
    assert_spectra_equal(spectrum, spectra.hit_spectrum(
        acts, jnp.asarray(logits.argmax(axis=1) == labels)))
    pre = passes.model_trace(net, x, convention="pre", batch_size=4)
    assert list(pre.acts) == ["fc2"] and pre.acts["fc2"].shape == (9, 32)
    assert passes.model_patterns(net, x, k=3) == patterns.top_k_neuron_patterns(acts, k=3)


# ------------------------------------------------------------------------------ recompiles


def _count_active(state, trace, mask, params):
    hit = jnp.stack([(v > params).any(axis=1) for v in trace.acts.values()], axis=1)
    return state + jnp.sum(mask[:, None] & hit, axis=0, dtype=jnp.int32)


def test_fold_model_compiles_once_for_new_inputs_params_and_weights():
    counted = chex.assert_max_traces(_count_active, n=1)
    x = random_images(5, 10)
    first = passes.fold_model(models.create("lenet1", seed=0), x, counted, jnp.zeros(2, jnp.int32),
                              params=jnp.float32(0.1), batch_size=4)
    # New weights (same structure), new inputs of another length, a new threshold: one trace.
    other = models.create("lenet1", seed=1)
    second = passes.fold_model(other, x[:7] * 0.5, counted, jnp.zeros(2, jnp.int32),
                               params=jnp.float32(0.3), batch_size=4)
    acts = activations.activations(other, jnp.asarray(x[:7] * 0.5))
    assert second.tolist() == [int((v > 0.3).any(axis=1).sum()) for v in acts.values()]
    assert first.shape == (2,)


def _backend_compiles(fn) -> int:
    """How many programs XLA compiles while ``fn`` runs (JAX's public monitoring events)."""
    compiled = []

    def listen(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    return len(compiled)


def test_second_pass_compiles_nothing():
    net = models.create("lenet1", seed=0)
    x = random_images(6, 10)
    prof = passes.model_profile(net, x, batch_size=4)
    passes.model_coverage(net, x, profile=prof, threshold=0.1, batch_size=4)
    again = models.create("lenet1", seed=2)  # new weights, new inputs, new options' values
    assert _backend_compiles(lambda: passes.model_coverage(
        again, x[:7] * 0.5, profile=prof, threshold=0.3, std_multiple=0.5, batch_size=4)) == 0


# --------------------------------------------------------------------------- devices

def device_results():
    """Profile, all criteria, the DeepXplore convention and TKNP on 37 random images in
    batches of 8 (rounded up to the device count)."""
    from workbench import streaming
    net = models.create("lenet1", seed=0)
    x = random_images(2, 37)
    prof = passes.model_profile(net, x[:29], batch_size=8)
    cov = passes.model_coverage(net, x, profile=prof, threshold=0.2, k_sections=3,
                                batch_size=8)
    xp = passes.model_coverage(net, x, criteria=("nc",), convention="deepxplore",
                               threshold=0.25, batch_size=8)
    return {"devices": jax.device_count(), "rows": streaming.batch_rows(37, 9),
            "patterns": passes.model_patterns(net, x, k=2, batch_size=8),
            "profile": {f: {s: np.asarray(v).tolist() for s, v in getattr(prof, f).items()}
                        for f in profiles.Profile._fields},
            "coverage": {c: {s: np.asarray(m).tolist() for s, m in masks.items()}
                         for c, masks in {**cov, "xp": xp["nc"]}.items()}}


_DEVICE_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from test_passes import device_results
print(json.dumps(device_results()))
"""


@pytest.mark.slow
def test_four_devices_equal_one():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    script = _DEVICE_SCRIPT.format(tests=os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    four = json.loads(done.stdout.strip().splitlines()[-1])
    one = device_results()
    assert (four["devices"], one["devices"]) == (4, 1)
    assert (four["rows"], one["rows"]) == (12, 9)  # batches rounded up to the device count
    assert four["coverage"] == one["coverage"]
    assert four["patterns"] == one["patterns"]
    for field, table in one["profile"].items():
        for site, values in table.items():
            np.testing.assert_allclose(four["profile"][field][site], values, rtol=1e-5,
                                       atol=1e-6, err_msg=f"{field} {site}")


# ------------------------------------------------------------------------- bad input

BAD_TYPE = (ValueError, jaxtyping.TypeCheckError)


def test_bad_input_raises_clear_errors():
    net = models.create("lenet1")
    x = np.zeros((2, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match="unknown convention"):
        passes.model_coverage(net, x, criteria=("nc",), convention="nope")
    with pytest.raises(ValueError, match="training profile"):
        passes.model_coverage(net, x)
    with pytest.raises(ValueError, match="criteria must be"):
        passes.model_coverage(net, x, criteria="nc")
    with pytest.raises(ValueError, match="unknown criterion"):
        passes.model_coverage(net, x, criteria=("nc", "xyz"))
    with pytest.raises(ValueError, match="do not fit the model"):
        passes.model_coverage(net, np.zeros((2, 32, 32, 3), np.float32), criteria=("nc",))
    with pytest.raises(ValueError, match="NaN"):
        passes.model_profile(net, np.full((2, 28, 28, 1), np.nan, np.float32))
    with pytest.raises(ValueError, match="floating point"):
        passes.model_trace(net, np.zeros((2, 28, 28, 1), np.uint8))
    with pytest.raises(ValueError, match="empty batch"):
        passes.model_patterns(net, np.zeros((0, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match="unknown sites"):
        passes.model_trace(net, x, sites=("fc9",))
    with pytest.raises(ValueError, match="no site"):
        other = passes.model_profile(MyNet(nnx.Rngs(0)), x)
        passes.model_coverage(net, x, criteria=("kmnc",), profile=other)
    with pytest.raises(ValueError, match="labels"):
        passes.model_spectrum(net, x, np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="either"):
        passes.model_spectrum(net, x, np.zeros(2, np.int32), label=1, by_class=True)
    with pytest.raises(ValueError, match="batch_size"):
        passes.model_trace(net, x, batch_size=0)
