"""Hit spectra: against a plain NumPy count, streaming against one-shot, on real MNIST."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import activations, models, spectra

# train.save calls nnx.State.to_pure_dict, deprecated in Flax 0.12.8 (reported to the lead).
TRAIN_WARNING = "ignore:.*nnx.State.*:DeprecationWarning"


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


def test_streaming_equals_one_shot():
    net = models.create("lenet5", seed=1)
    x = jax.random.uniform(jax.random.key(0), (23, 28, 28, 1))
    labels = np.asarray(jax.random.randint(jax.random.key(1), (23,), 0, 10), np.int32)
    trace = activations.trace(net, x)
    passed = np.asarray(jnp.argmax(trace.logits, -1)) == labels
    one_shot = spectra.hit_spectrum(trace.acts, jnp.asarray(passed))
    streamed = spectra.model_spectrum(net, np.asarray(x), labels, batch_size=8)
    _assert_equal(streamed, one_shot._asdict())
    # One class, and all classes in one pass.
    c = int(labels[0])
    restricted = spectra.model_spectrum(net, np.asarray(x), labels, label=c, batch_size=8)
    expected = spectra.hit_spectrum(trace.acts, jnp.asarray(passed),
                                    where=jnp.asarray(labels == c))
    _assert_equal(restricted, expected._asdict())
    by_class = spectra.model_spectrum(net, np.asarray(x), labels, by_class=True, batch_size=8)
    _assert_equal(spectra.for_class(by_class, c), expected._asdict())
    assert by_class.a_s["conv1"].shape == (10, 6)


def test_model_spectrum_rejects_bad_labels():
    net = models.create("deepfault_3x50_relu")
    with pytest.raises(ValueError, match="labels"):
        spectra.model_spectrum(net, np.zeros((4, 28, 28, 1), np.float32), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="either"):
        spectra.model_spectrum(net, np.zeros((4, 28, 28, 1), np.float32), np.zeros(4, np.int32),
                               label=1, by_class=True)


def test_concatenate_layer_order():
    s = spectra.Spectrum(*({"b": jnp.array([1]), "a": jnp.array([2, 3])} for _ in range(4)))
    assert spectra.concatenate(s).a_s.tolist() == [1, 2, 3]


@pytest.mark.real_data
@pytest.mark.filterwarnings(TRAIN_WARNING)
def test_real_mnist_class_spectrum(trained, data_root):
    from workbench import data

    net = trained("deepfault_3x50_relu")
    test = data.load("mnist", "test", root=data_root)
    s = spectra.model_spectrum(net, test.images, test.labels, label=3)
    n3 = int((test.labels == 3).sum())
    for counts in spectra.total(s).values():
        assert set(np.asarray(counts).tolist()) == {n3}
    failing = int(s.a_f["fc1"][0] + s.n_f["fc1"][0])
    assert 0 < failing < n3 / 4  # a trained model misclassifies a few percent
