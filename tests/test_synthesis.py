"""DeepFault synthesis: a hand-set model with a known ascent direction, the released
algorithm's per-neuron loop as reference, the projections, and real MNIST seeds."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import activations, models, synthesis

TRAIN_WARNING = "ignore:.*nnx.State.*:DeprecationWarning"  # train.save, reported to the lead


def hand_model():
    """Input (1, 2, 1) -> fc1 (2 neurons, no bias) -> logits; fc1's kernel columns are the
    input gradients of its two neurons: [2, -1] and [0, 4]."""
    net = models.Sequential(plan=(("dense", 2), ("dense", 2)), input_shape=(1, 2, 1),
                            use_bias=False, rngs=nnx.Rngs(0))
    net.fc1.kernel[...] = jnp.array([[2.0, 0.0], [-1.0, 4.0]])
    net.logits.kernel[...] = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    return net


def x2(a, b):
    return jnp.array([[a, b]], jnp.float32).reshape(1, 1, 2, 1)


def test_hand_set_single_neuron():
    out = synthesis.synthesize(hand_model(), x2(0.5, 0.05), [("fc1", 0)], step_size=0.1, d=0.15)
    # delta = clip(0.1 * [2, -1], -0.15, 0.15) = [0.15, -0.1]; then clip to [0, 1].
    np.testing.assert_allclose(np.asarray(out.inputs).reshape(-1), [0.65, 0.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.before), [[0.5 * 2 - 0.05]], atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.after), [[0.65 * 2]], atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.l1), [0.2], atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.l2), [np.hypot(0.15, 0.05)], atol=1e-6)
    np.testing.assert_allclose(np.asarray(out.linf), [0.15], atol=1e-6)


@pytest.mark.parametrize("normalize, expected", [
    # mean([2, -1], [0, 4]) = [1, 1.5]; * 0.1 -> [0.1, 0.15] -> clip 0.12.
    ("none", [0.1, 0.12]),
    # each gradient over its RMS (sqrt(2.5), sqrt(8)) first.
    ("rms", list(np.clip(0.1 * np.mean([np.array([2, -1]) / (np.sqrt(2.5) + 1e-5),
                                        np.array([0, 4]) / (np.sqrt(8.0) + 1e-5)], axis=0),
                         -0.12, 0.12))),
    ("sign", [0.1, 0.1]),
    ("l2", list(0.1 * np.array([1.0, 1.5]) / np.hypot(1.0, 1.5))),
])
def test_hand_set_two_neurons(normalize, expected):
    out = synthesis.synthesize(hand_model(), x2(0.3, 0.3), [("fc1", 0), ("fc1", 1)],
                               step_size=0.1, d=0.12, normalize=normalize)
    np.testing.assert_allclose(np.asarray(out.inputs).reshape(-1) - 0.3, expected, atol=1e-6)


def released_loop(model, seeds, flat_targets, step, d, normalize_rms, convention="pre"):
    """The released ``input_synthesis.py`` structure: per seed, one gradient per neuron, then
    a per-pixel loop that averages, scales, clips to [-d, d] and to [0, 1]."""
    def neuron(x, j):
        acts = activations.trace(model, x[None], convention=convention).acts
        return activations.flatten(acts)[0, j]

    gradient = jax.jit(jax.grad(neuron), static_argnums=1)
    out = []
    for x in np.asarray(seeds):
        grads = []
        for j in flat_targets:
            g = np.asarray(gradient(jnp.asarray(x), int(j)))
            if normalize_rms:
                g = g / (np.sqrt(np.mean(g ** 2)) + 1e-5)
            grads.append(g)
        new = np.empty_like(x)
        for p in np.ndindex(x.shape):
            avg = sum(g[p] for g in grads) / len(grads) * step
            new[p] = max(min(x[p] + min(max(avg, -d), d), 1.0), 0.0)
        out.append(new)
    return np.stack(out)


@pytest.mark.parametrize("normalize", ["none", "rms"])
def test_matches_released_loop(normalize):
    net = models.create("deepfault_3x50_leaky", seed=2)
    seeds = jax.random.uniform(jax.random.key(0), (2, 28, 28, 1))
    targets = [("fc1", 4), ("fc2", 10), ("fc3", 49)]
    flat = np.asarray(synthesis.target_indices(net, (28, 28, 1), targets))
    assert flat.tolist() == [4, 60, 149]
    out = synthesis.synthesize(net, seeds, targets, step_size=0.1, d=0.1, normalize=normalize)
    reference = released_loop(net, seeds, flat, 0.1, 0.1, normalize == "rms")
    np.testing.assert_allclose(np.asarray(out.inputs), reference, atol=1e-5)


@pytest.mark.parametrize("normalize", ["none", "sign", "l2"])
def test_one_backward_pass_equals_the_mean_of_per_neuron_gradients(normalize):
    # The gradient of the targets' mean activation (one backward pass) against the mean of
    # every target's own input gradient (the released code's k passes), on a tiny model.
    net = models.Sequential(plan=(("dense", 6), ("dense", 5), ("dense", 3)), input_shape=(2, 3, 1),
                            activation="leaky", rngs=nnx.Rngs(7))
    seeds = jax.random.uniform(jax.random.key(8), (4, 2, 3, 1))
    targets = [("fc1", 0), ("fc1", 5), ("fc2", 2), ("fc2", 4)]
    flat = np.asarray(synthesis.target_indices(net, (2, 3, 1), targets))

    def values(x):
        return activations.flatten(activations.trace(net, x[None], convention="pre").acts)[0]

    expected = []
    for x in np.asarray(seeds):
        mean = np.asarray(jax.jacrev(values)(jnp.asarray(x)))[flat].mean(axis=0)
        if normalize == "sign":
            mean = np.sign(mean)
        elif normalize == "l2":
            mean = mean / np.sqrt((mean ** 2).sum())
        expected.append(np.clip(x + np.clip(0.3 * mean, -0.2, 0.2), 0.0, 1.0))
    out = synthesis.synthesize(net, seeds, targets, step_size=0.3, d=0.2, normalize=normalize)
    np.testing.assert_allclose(np.asarray(out.inputs), np.stack(expected), atol=1e-6)
    before = np.stack([values(jnp.asarray(x))[flat] for x in np.asarray(seeds)])
    np.testing.assert_allclose(np.asarray(out.before), before, atol=1e-6)


@pytest.mark.parametrize("n_steps, normalize", [(1, "none"), (1, "sign"), (6, "rms")])
def test_inside_ball_and_box(n_steps, normalize):
    net = models.create("deepfault_5x30_relu", seed=0)
    seeds = jax.random.uniform(jax.random.key(1), (5, 28, 28, 1))
    out = synthesis.synthesize(net, seeds, [("fc2", 3), ("fc5", 1)], step_size=10.0, d=0.05,
                               n_steps=n_steps, normalize=normalize)
    x = np.asarray(out.inputs)
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert np.abs(x - np.asarray(seeds)).max() <= 0.05 + 1e-6
    np.testing.assert_allclose(np.asarray(out.linf), np.abs(x - np.asarray(seeds)).reshape(5, -1)
                               .max(1), atol=1e-6)
    assert out.predictions.shape == (5,) and out.predictions.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(out.predictions), np.argmax(out.logits, -1))


def test_iterative_rises_further():
    net = models.create("deepfault_3x50_leaky", seed=1)
    seeds = jax.random.uniform(jax.random.key(2), (4, 28, 28, 1), maxval=0.5)
    one = synthesis.synthesize(net, seeds, [("fc2", 0)], step_size=0.01, d=0.2, normalize="sign")
    many = synthesis.synthesize(net, seeds, [("fc2", 0)], step_size=0.01, d=0.2,
                                normalize="sign", n_steps=10)
    assert float(many.after.mean()) > float(one.after.mean()) > float(one.before.mean())


def test_no_recompile_for_new_step_or_d(monkeypatch):
    chex.clear_trace_counter()
    counted = jax.jit(chex.assert_max_traces(synthesis._synthesize_impl, n=1),
                      static_argnames=("graphdef", "normalize", "n_steps", "conv"))
    monkeypatch.setattr(synthesis, "_synthesize", counted)
    net = models.create("deepfault_3x50_relu", seed=0)
    seeds = jnp.full((2, 28, 28, 1), 0.5)
    synthesis.synthesize(net, seeds, [("fc1", 0)], step_size=1.0, d=0.1)
    synthesis.synthesize(net, seeds, [("fc1", 7)], step_size=3.0, d=0.2)


def test_bad_input():
    net = models.create("deepfault_3x50_relu")
    seeds = jnp.zeros((2, 28, 28, 1))
    with pytest.raises(ValueError, match="normalize"):
        synthesis.synthesize(net, seeds, [("fc1", 0)], normalize="l3")
    with pytest.raises(ValueError, match="unknown site"):
        synthesis.synthesize(net, seeds, [("fc9", 0)])
    with pytest.raises(ValueError, match="outside site"):
        synthesis.synthesize(net, seeds, [("fc1", 50)])
    with pytest.raises(ValueError, match="shape"):
        synthesis.synthesize(net, jnp.zeros((2, 28, 28, 3)), [("fc1", 0)])
    with pytest.raises(ValueError, match="NaN"):
        synthesis.synthesize(net, jnp.full((2, 28, 28, 1), jnp.nan), [("fc1", 0)])
    with pytest.raises(ValueError, match="n_steps"):
        synthesis.synthesize(net, seeds, [("fc1", 0)], n_steps=0)
    with pytest.raises(ValueError, match="no target"):
        synthesis.synthesize(net, seeds, [])
    with pytest.raises(ValueError, match="convention"):
        synthesis.synthesize(net, seeds, [("fc1", 0)], convention="preactivation")
    with pytest.raises(ValueError, match="d must be >= 0"):
        synthesis.synthesize(net, seeds, [("fc1", 0)], d=-0.1)
    with pytest.raises(ValueError, match="empty"):
        synthesis.synthesize(net, seeds[:0], [("fc1", 0)])


def test_post_activation_convention_and_target_indices():
    net = models.create("deepfault_3x50_leaky", seed=3)
    assert synthesis.target_indices(net, (28, 28, 1), [("fc3", 1), 7],
                                    convention="post").tolist() == [101, 7]
    seeds = jax.random.uniform(jax.random.key(4), (2, 28, 28, 1))
    targets = [("fc1", 4), ("fc3", 49)]
    out = synthesis.synthesize(net, seeds, targets, step_size=0.1, d=0.1, convention="post")
    flat = np.asarray(synthesis.target_indices(net, (28, 28, 1), targets, convention="post"))
    reference = released_loop(net, seeds, flat, 0.1, 0.1, False, convention="post")
    np.testing.assert_allclose(np.asarray(out.inputs), reference, atol=1e-5)


def test_choose_seeds():
    labels = np.array([1, 1, 2, 1, 1, 0, 1])
    predictions = np.array([1, 0, 2, 1, 1, 0, 1])
    drawn = synthesis.choose_seeds(labels, predictions, 1, 4, key=jax.random.key(0))
    assert sorted(drawn.tolist()) == [0, 3, 4, 6]
    again = synthesis.choose_seeds(labels, predictions, 1, 4, key=jax.random.key(0))
    assert drawn.tolist() == again.tolist()
    legacy = synthesis.choose_seeds(labels, predictions, 1, 4, key=jax.random.PRNGKey(0))
    assert legacy.tolist() == drawn.tolist()
    with pytest.raises(ValueError, match="only 4"):
        synthesis.choose_seeds(labels, predictions, 1, 5, key=jax.random.key(0))


def test_cross_entropy():
    loss = synthesis.cross_entropy(jnp.array([[0.0, 0.0], [10.0, 0.0]]), jnp.array([0, 0]))
    np.testing.assert_allclose(np.asarray(loss), [np.log(2), np.log1p(np.exp(-10))], atol=1e-6)


class MyNet(nnx.Module):
    """The README's example model, without ``sites`` and without ``input_shape``."""

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


@pytest.mark.parametrize("convention, targets, flat", [
    ("pre", [("fc2", 3), ("fc2", 30)], [3, 30]),      # only fc2 sows a pre-activation
    ("post", [("fc1", 5), ("fc2", 3)], [5, 67]),
])
def test_a_users_own_model_goes_through_synthesize(convention, targets, flat):
    net = MyNet(nnx.Rngs(0))
    assert not hasattr(net, "input_shape") and not hasattr(net, "sites")
    seeds = jax.random.uniform(jax.random.key(5), (3, 28, 28, 1))
    assert synthesis.target_indices(net, (28, 28, 1), targets,
                                    convention=convention).tolist() == flat
    out = synthesis.synthesize(net, seeds, targets, step_size=0.1, d=0.05, convention=convention)
    reference = released_loop(net, seeds, flat, 0.1, 0.05, False, convention=convention)
    np.testing.assert_allclose(np.asarray(out.inputs), reference, atol=1e-5)
    assert np.abs(np.asarray(out.inputs) - np.asarray(seeds)).max() <= 0.05 + 1e-6
    logits = activations.trace(net, out.inputs).logits
    np.testing.assert_allclose(np.asarray(out.logits), np.asarray(logits), atol=1e-5)
    if convention == "pre":  # linear in the input: one step raises it
        assert (np.asarray(out.after) > np.asarray(out.before)).all()


@pytest.mark.real_data
@pytest.mark.filterwarnings(TRAIN_WARNING)
def test_real_mnist_targets_rise(trained, data_root):
    from workbench import data, passes, spectra, suspiciousness, train
    from workbench.experiments import deepfault

    net = trained("deepfault_3x50_relu")  # the checkpoint test_passes trains too
    test = data.load("mnist", "test", root=data_root)
    images, labels = test.images[:2000], test.labels[:2000]
    predictions = train.predict(net, images)
    # One pass for the per-class spectra; class 7's is the one run_grid ranks too. Five seeds
    # and two targets, as the grid below: its synthesis reuses this compilation.
    by_class = passes.model_spectrum(net, images, labels, by_class=True)
    targets = suspiciousness.top_k(suspiciousness.dstar(spectra.for_class(by_class, 7)), 2)
    index = synthesis.choose_seeds(labels, predictions, 7, 5, key=jax.random.key(0))
    assert (labels[index] == 7).all() and (predictions[index] == 7).all()
    out = synthesis.synthesize(net, images[index], targets, step_size=1.0, d=0.1)
    assert float(out.after.mean()) > float(out.before.mean())
    assert float(out.linf.max()) <= 0.1 + 1e-6
    rows = deepfault.run_grid(net, images, labels, classes=[7], measures=["dstar"],
                              k_values=[2], step_sizes=[1.0], d=0.1, n_seeds=5, n_random=2,
                              key=jax.random.key(1), spectrum=by_class, predictions=predictions)
    assert [r["approach"] for r in rows] == ["dstar", "random", "random"]
    dstar_neurons = set(rows[0]["neurons"].split())
    assert all(not dstar_neurons & set(r["neurons"].split()) for r in rows[1:])
    assert all(0.0 <= r["accuracy"] <= 1.0 and r["linf"] <= 0.1 + 1e-6 for r in rows)
