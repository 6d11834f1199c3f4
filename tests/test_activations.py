"""Reading neurons: hand-set weights, reductions, scaling, user models, flat indices."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import activations, models


class TinyConv(nnx.Module):
    """One 1x1 conv with identity weights (two channels), then a dense layer; sites known."""

    sites = ("conv", "dense")

    def __init__(self):
        self.conv = nnx.Conv(2, 2, (1, 1), rngs=nnx.Rngs(0))
        self.conv.kernel[...] = jnp.eye(2).reshape(1, 1, 2, 2)
        self.conv.bias[...] = jnp.array([0.0, -10.0])   # channel 1 stays off for small inputs
        self.dense = nnx.Linear(8, 3, rngs=nnx.Rngs(0))
        self.dense.kernel[...] = jnp.ones((8, 3))
        self.dense.bias[...] = jnp.zeros(3)
        self.out = nnx.Linear(3, 2, rngs=nnx.Rngs(0))

    def __call__(self, x):
        h = nnx.relu(self.conv(x))
        self.sow(nnx.Intermediate, "conv", h)
        z = self.dense(h.reshape(h.shape[0], -1))
        self.sow(activations.PreActivation, "dense", z)
        h = nnx.relu(z)
        self.sow(nnx.Intermediate, "dense", h)
        return self.out(h)


def _input():
    # One image of 2x2 pixels, 2 channels: channel 0 holds 1, 2, 3, 4; channel 1 holds -1.
    x = np.zeros((1, 2, 2, 2), np.float32)
    x[0, :, :, 0] = [[1, 2], [3, 4]]
    x[0, :, :, 1] = -1
    return jnp.asarray(x)


def test_hand_set_weights_give_known_values():
    acts = activations.activations(TinyConv(), _input())
    assert list(acts) == ["conv", "dense"]
    np.testing.assert_allclose(acts["conv"], [[2.5, 0.0]])       # channel means
    np.testing.assert_allclose(acts["dense"], [[10.0, 10.0, 10.0]])


def test_reductions_and_scaling():
    net, x = TinyConv(), _input()
    np.testing.assert_allclose(activations.activations(net, x, convention=activations.Convention(reduce="max"))["conv"], [[4, 0]])
    whole = activations.activations(net, x, convention=activations.Convention(reduce="none"))["conv"]
    np.testing.assert_allclose(whole, [[1, 0, 2, 0, 3, 0, 4, 0]])     # (h, w, c) row-major
    scaled = activations.activations(net, x, convention=activations.Convention(scale="minmax"))["conv"]
    # Scaled over all positions and channels together (min 0, max 4), then the channel mean.
    np.testing.assert_allclose(scaled, [[2.5 / 4, 0.0]])
    pre = activations.activations(net, x, convention="pre")
    assert list(pre) == ["dense"]


def test_constant_layer_scales_to_zero():
    net = TinyConv()
    scaled = activations.activations(net, jnp.zeros((1, 2, 2, 2)),
                                     convention=activations.Convention(scale="minmax"))
    np.testing.assert_array_equal(scaled["conv"], [[0.0, 0.0]])


def test_user_model_without_site_order_is_sorted():
    class Plain(nnx.Module):
        def __init__(self):
            self.a = nnx.Linear(4, 3, rngs=nnx.Rngs(0))

        def __call__(self, x):
            h = nnx.relu(self.a(x.reshape(x.shape[0], -1)))
            self.sow(nnx.Intermediate, "z_last", h)
            self.sow(nnx.Intermediate, "a_first", h * 2)
            return h

    acts = activations.activations(Plain(), jnp.ones((5, 2, 2, 1)))
    assert list(acts) == ["a_first", "z_last"]
    assert acts["a_first"].shape == (5, 3)


def test_trace_matches_plain_call_and_leaves_model_unchanged():
    net = models.create("lenet5", seed=0)
    x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1))
    before = nnx.state(net)
    result = activations.trace(net, x)
    np.testing.assert_allclose(result.logits, net(x), rtol=1e-5, atol=1e-5)
    assert jax.tree.structure(nnx.state(net)) == jax.tree.structure(before)
    deep = activations.trace(net, x, convention="deepxplore_raw")
    np.testing.assert_allclose(deep.acts["softmax"], jax.nn.softmax(result.logits), rtol=1e-5)


def test_new_inputs_do_not_recompile():
    net = models.create("lenet1", seed=0)
    x = jnp.zeros((4, 28, 28, 1))
    counted = chex.assert_max_traces(activations.neurons, n=1)
    step = jax.jit(counted, static_argnums=(0, 3))
    graphdef, state = activations.split(net)
    conv = activations.CONVENTIONS["post"]
    step(graphdef, state, x, conv)
    step(graphdef, state, x + 0.5, conv)
    _, other = activations.split(models.create("lenet1", seed=3))   # new weights, same structure
    step(graphdef, other, x, conv)


def test_neurons_is_pure_and_matches_trace():
    net = models.create("lenet5", seed=0)
    x = jax.random.uniform(jax.random.key(1), (2, 28, 28, 1))
    graphdef, state = activations.split(net)
    conv = activations.CONVENTIONS["deepxplore"]
    inside = jax.jit(activations.neurons, static_argnums=(0, 3))(graphdef, state, x, conv)
    outside = activations.trace(net, x, convention="deepxplore")
    counts = activations.neuron_counts(net, x.shape[1:], convention="deepxplore")
    assert list(activations.in_order(inside.acts, counts)) == list(outside.acts) == list(counts)
    for site in counts:
        np.testing.assert_allclose(inside.acts[site], outside.acts[site], rtol=1e-6)
    np.testing.assert_allclose(activations.forward(graphdef, state, x), outside.logits, rtol=1e-5)


def test_check_model_input_names_the_problem():
    net = models.create("lenet1", seed=0)
    assert activations.check_model_input(net, np.zeros((3, 28, 28, 1), np.float32)) == (28, 28, 1)
    with pytest.raises(ValueError, match=r"shape \(1, 32, 32, 3\) do not fit the model"):
        activations.trace(net, jnp.zeros((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="empty batch"):
        activations.trace(net, jnp.zeros((0, 28, 28, 1)))


def test_conventions_by_name_and_value():
    assert activations.as_convention("post") == activations.Convention()
    assert activations.as_convention("deepxplore").scale == "minmax"
    with pytest.raises(ValueError, match="unknown convention"):
        activations.as_convention("deepgauge2")


def test_bad_inputs_are_named():
    net = models.create("lenet1", seed=0)
    with pytest.raises(ValueError, match="NaN"):
        activations.trace(net, jnp.full((1, 28, 28, 1), jnp.nan))
    with pytest.raises(ValueError, match="floating point"):
        activations.trace(net, jnp.zeros((1, 28, 28, 1), jnp.int32))
    with pytest.raises(ValueError, match="unknown kind"):
        activations.trace(net, jnp.zeros((1, 28, 28, 1)), convention=activations.Convention(kind="middle"))
    with pytest.raises(ValueError, match="unknown reduce"):
        activations.trace(net, jnp.zeros((1, 28, 28, 1)),
                          convention=activations.Convention(reduce="median"))


def test_flat_index_round_trip():
    counts = activations.neuron_counts(models.create("lenet5", seed=0), (28, 28, 1))
    total = sum(counts.values())
    seen = []
    for flat in range(total):
        site, index = activations.site_index(counts, flat)
        assert activations.flat_index(counts, site, index) == flat
        seen.append((site, index))
    assert len(set(seen)) == total == 226
    with pytest.raises(ValueError, match="outside"):
        activations.site_index(counts, total)
    with pytest.raises(ValueError, match="unknown site"):
        activations.flat_index(counts, "conv9", 0)


def test_flatten_concatenates_in_order():
    acts = {"b": jnp.ones((2, 3)), "a": jnp.zeros((2, 1))}
    np.testing.assert_array_equal(activations.flatten(acts), [[1, 1, 1, 0]] * 2)
