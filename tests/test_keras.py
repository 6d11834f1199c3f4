"""The Keras 2 importer on tiny HDF5 / JSON files the tests write with h5py, checked against
NumPy versions of the Keras layers; the export round trip; every refusal."""

import json

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import keras, models

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------- files written by hand
def _weights(path, layers, *, backend="tensorflow", model_config=None):
    """A Keras 2 ``save_weights`` file: ``layers`` is ``[(name, [kernel, bias?]), ...]``."""
    with h5py.File(path, "w") as file:
        root = file.create_group("model_weights") if model_config else file
        root.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
        root.attrs["backend"] = backend.encode()
        root.attrs["keras_version"] = b"2.1.3"
        if model_config:
            file.attrs["model_config"] = json.dumps(model_config).encode()
        for name, arrays in layers:
            group = root.create_group(name)
            labels = [f"{name}/{w}:0" for w in ("kernel", "bias")[:len(arrays)]]
            group.attrs["weight_names"] = (np.array([x.encode() for x in labels]) if labels
                                           else np.array([], np.float64))  # as Keras writes it
            for label, array in zip(labels, arrays):
                group.create_dataset(label, data=np.asarray(array, np.float32))
    return path


def _config(layers, *, functional=False):
    entries = [{"class_name": cls, "config": cfg} for cls, cfg in layers]
    if not functional:
        return {"class_name": "Sequential", "keras_version": "2.1.3", "config": entries}
    for i, entry in enumerate(entries):
        entry["inbound_nodes"] = [] if i == 0 else [[[entries[i - 1]["config"]["name"], 0, 0,
                                                      {}]]]
    return {"class_name": "Model", "config": {"name": "model_1", "layers": entries}}


def _json(path, layers, **kwargs):
    path.write_text(json.dumps(_config(layers, **kwargs)))
    return path


def dense(name, units, activation="linear", use_bias=True, **extra):
    return "Dense", {"name": name, "units": units, "activation": activation,
                     "use_bias": use_bias, **extra}


def conv(name, filters, kernel, padding="valid", activation="linear", **extra):
    return "Conv2D", {"name": name, "filters": filters, "kernel_size": [kernel, kernel],
                      "strides": [1, 1], "padding": padding, "activation": activation,
                      "dilation_rate": [1, 1], "use_bias": True, **extra}


def flatten(name="flatten_1", **extra):
    return "Flatten", {"name": name, **extra}


def pool(name, **extra):
    return "MaxPooling2D", {"name": name, "pool_size": [2, 2], "strides": [2, 2],
                            "padding": "valid", **extra}


def act(name, activation):
    return "Activation", {"name": name, "activation": activation}


def _w(*shape):
    return RNG.normal(size=shape).astype(np.float32)


# ----------------------------------------------------------------- NumPy versions of Keras
def _conv(x, kernel, bias, padding):
    """Keras/TensorFlow Conv2D on NHWC: cross-correlation, stride 1 ('same': TF's padding)."""
    k = kernel.shape[0]
    if padding == "same":
        x = np.pad(x, ((0, 0), ((k - 1) // 2, k // 2), ((k - 1) // 2, k // 2), (0, 0)))
    n, h, w, _ = x.shape
    out = np.zeros((n, h - k + 1, w - k + 1, kernel.shape[-1]), np.float64)
    for i in range(k):
        for j in range(k):
            out += x[:, i:i + h - k + 1, j:j + w - k + 1] @ kernel[i, j]
    return out + bias


def _pool(x):
    n, h, w, c = x.shape
    x = x[:, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _leaky(z, alpha=0.01):
    return np.where(z > 0, z, alpha * z)


def _logits(model, x):
    return np.asarray(model(jnp.asarray(x)))


# --------------------------------------------------------------------------- correct reading
@pytest.mark.parametrize("data_format", [None, "channels_first"])
def test_channel_first_flatten_permutes_the_dense_rows(tmp_path, data_format):
    # A DeepFault-style model on a channel-first 2x3x4 input (C=2, H=3, W=4): Keras flattens
    # (c, h, w); our NHWC images flatten (h, w, c).
    k1, k2, b2 = _w(24, 5), _w(5, 3), _w(3)
    layers = [flatten(batch_input_shape=[None, 2, 3, 4]), dense("dense_1", 5, use_bias=False),
              ("LeakyReLU", {"name": "leaky_re_lu_1", "alpha": 0.009999999776482582}),
              dense("dense_2", 3, "softmax")]
    arch = _json(tmp_path / "m.json", layers)
    weights = _weights(tmp_path / "m.h5", [("flatten_1", []), ("dense_1", [k1]),
                                           ("leaky_re_lu_1", []), ("dense_2", [k2, b2])])
    net = models.from_keras(arch, weights, data_format=data_format)
    assert net.input_shape == (3, 4, 2)
    assert net.plan == (("dense", 5, "leaky"), ("dense", 3))
    x = RNG.uniform(size=(4, 3, 4, 2)).astype(np.float32)
    keras_input = x.transpose(0, 3, 1, 2).reshape(4, -1)  # what the Keras model was fed
    expected = _leaky(keras_input @ k1) @ k2 + b2  # logits: before the softmax
    np.testing.assert_allclose(_logits(net, x), expected, rtol=1e-5, atol=1e-5)
    unpermuted = _leaky(x.reshape(4, -1) @ k1) @ k2 + b2
    assert not np.allclose(unpermuted, expected, atol=1e-3)  # the permutation matters


@pytest.mark.parametrize("flatten_format", [None, "channels_first", "channels_last"])
def test_channel_first_convolutions(tmp_path, flatten_format):
    kc, bc, kd, bd = _w(3, 3, 2, 3), _w(3), _w(3 * 3 * 3, 4), _w(4)
    extra = {} if flatten_format is None else {"data_format": flatten_format}
    layers = [conv("c", 3, 3, "same", "relu", data_format="channels_first",
                   batch_input_shape=[None, 2, 6, 6]),
              pool("p", data_format="channels_first"), flatten("f", **extra),
              dense("d", 4)]
    net = models.from_keras(_json(tmp_path / "m.json", layers),
                            _weights(tmp_path / "m.h5", [("c", [kc, bc]), ("d", [kd, bd])]))
    x = RNG.uniform(size=(2, 6, 6, 2)).astype(np.float32)
    h = _pool(np.maximum(_conv(x, kc, bc, "same"), 0))  # NHWC
    # Flatten(data_format="channels_first") moves channels last first; otherwise Keras
    # flattens the channel-first tensor as it lies in memory.
    order = (0, 1, 2, 3) if flatten_format == "channels_first" else (0, 3, 1, 2)
    expected = h.transpose(order).reshape(2, -1) @ kd + bd
    np.testing.assert_allclose(_logits(net, x), expected, rtol=1e-5, atol=1e-5)


def test_convolutional_model_matches_numpy_keras(tmp_path):
    k1, b1, k2, b2 = _w(3, 3, 1, 4), _w(4), _w(5, 5, 4, 2), _w(2)
    k3, b3, k4, b4 = _w(18, 6), _w(6), _w(6, 3), _w(3)
    layers = [conv("c1", 4, 3, "valid", "relu", batch_input_shape=[None, 9, 9, 1]),
              conv("c2", 2, 5, "same"), act("a2", "tanh"), pool("p"),
              ("Dropout", {"name": "drop", "rate": 0.5}), flatten(), dense("d1", 6, "sigmoid"),
              dense("d2", 3), act("out", "softmax")]
    net = models.from_keras(
        _json(tmp_path / "m.json", layers),
        _weights(tmp_path / "m.h5", [("c1", [k1, b1]), ("c2", [k2, b2]), ("p", []),
                                     ("d1", [k3, b3]), ("d2", [k4, b4])]))
    assert net.plan == (("conv", 4, 3, "VALID", "relu"), ("conv", 2, 5, "SAME", "tanh"),
                        ("pool",), ("dropout", 0.5), ("dense", 6, "sigmoid"), ("dense", 3))
    assert net.sites == ("conv1", "conv2", "pool1", "fc1")
    x = RNG.uniform(size=(3, 9, 9, 1)).astype(np.float32)
    h = np.tanh(_conv(np.maximum(_conv(x, k1, b1, "valid"), 0), k2, b2, "same"))
    h = 1 / (1 + np.exp(-(_pool(h).reshape(3, -1) @ k3 + b3)))
    np.testing.assert_allclose(_logits(net, x), h @ k4 + b4, rtol=1e-5, atol=1e-5)


def test_theano_kernels_are_flipped(tmp_path):
    # Theano convolves (a flipped kernel), TensorFlow correlates: the same trained network
    # saved by the two backends holds kernels flipped in both spatial axes.
    kernel, bias, kd = _w(3, 3, 1, 2), _w(2), _w(2 * 4 * 4, 3)
    layers = [conv("c", 2, 3, "same", "relu", batch_input_shape=[None, 4, 4, 1]), flatten(),
              dense("d", 3, use_bias=False)]
    arch = _json(tmp_path / "m.json", layers)
    tf = _weights(tmp_path / "tf.h5", [("c", [kernel, bias]), ("d", [kd])])
    theano = _weights(tmp_path / "th.h5", [("c", [kernel[::-1, ::-1], bias]), ("d", [kd])],
                      backend="theano")
    x = RNG.uniform(size=(2, 4, 4, 1)).astype(np.float32)
    np.testing.assert_array_equal(_logits(models.from_keras(arch, tf), x),
                                  _logits(models.from_keras(arch, theano), x))


def test_whole_model_file_and_functional_chain(tmp_path):
    k1, b1, k2, b2 = _w(4, 3), _w(3), _w(3, 2), _w(2)
    layers = [("InputLayer", {"name": "input_1", "batch_input_shape": [None, 2, 2, 1]}),
              flatten("flatten"), dense("fc1", 3, "relu"), dense("before_softmax", 2),
              act("predictions", "softmax")]
    arrays = [("input_1", []), ("flatten", []), ("fc1", [k1, b1]), ("before_softmax", [k2, b2]),
              ("predictions", [])]
    whole = _weights(tmp_path / "whole.h5", arrays,
                     model_config=_config(layers, functional=True))
    net = models.from_keras(None, whole)
    x = RNG.uniform(size=(2, 2, 2, 1)).astype(np.float32)
    expected = np.maximum(x.reshape(2, -1) @ k1 + b1, 0) @ k2 + b2
    np.testing.assert_allclose(_logits(net, x), expected, rtol=1e-5, atol=1e-5)
    branch = _config(layers, functional=True)
    branch["config"]["layers"][3]["inbound_nodes"] = [[["flatten", 0, 0, {}]]]
    (tmp_path / "branch.json").write_text(json.dumps(branch))
    with pytest.raises(keras.KerasError, match="branch.json: layer 'before_softmax'.*single"):
        models.from_keras(tmp_path / "branch.json", whole)


def test_flat_input_needs_an_image_shape(tmp_path):
    k = _w(6, 2)
    arch = _json(tmp_path / "m.json", [dense("d", 2, batch_input_shape=[None, 6])])
    weights = _weights(tmp_path / "m.h5", [("d", [k, np.zeros(2)])])
    with pytest.raises(keras.KerasError, match="flat vector of 6 values; pass input_shape"):
        models.from_keras(arch, weights)
    net = models.from_keras(arch, weights, input_shape=(2, 3, 1))
    x = RNG.uniform(size=(1, 2, 3, 1)).astype(np.float32)
    np.testing.assert_allclose(_logits(net, x), x.reshape(1, -1) @ k, rtol=1e-5, atol=1e-6)


def test_sequential_layer_activations():
    net = models.Sequential((("dense", 2, "tanh"), ("dense", 1, ("leaky", 0.5)), ("dense", 1)),
                            (1, 1, 2), use_bias=False, rngs=nnx.Rngs(0))
    for layer, kernel in ((net.fc1, [[1.0, 0.0], [0.0, -1.0]]), (net.fc2, [[1.0], [1.0]]),
                          (net.logits, [[2.0]])):
        layer.kernel[...] = jnp.asarray(kernel)
    # tanh(1) - tanh(2) = -0.2024 < 0, leaky slope 0.5 -> -0.1012, times 2 -> -0.2024.
    value = float(net(jnp.asarray([[[[1.0, 2.0]]]]))[0, 0])
    assert value == pytest.approx(np.tanh(1.0) - np.tanh(2.0), rel=1e-5)
    with pytest.raises(ValueError, match="unknown activation 'elu'"):
        models.Sequential((("dense", 2, "elu"), ("dense", 1)), (1, 1, 2), rngs=nnx.Rngs(0))


# ----------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", ["lenet1", "deepfault_3x50_leaky", "cifar_gap"])
def test_zoo_model_round_trip(tmp_path, name):
    net = models.create(name, seed=3)
    net.eval()
    models.to_keras(net, tmp_path / "w.h5", tmp_path / "m.json")
    assert not list(tmp_path.glob(".*.part"))
    shape = net.input_shape
    x = RNG.uniform(size=(2, *shape)).astype(np.float32)
    again = models.from_keras(tmp_path / "m.json", tmp_path / "w.h5")
    np.testing.assert_array_equal(_logits(again, x), _logits(net, x))
    assert again.sites == net.sites
    zoo = models.from_keras(None, tmp_path / "w.h5", zoo=name)  # weights only, zoo layout
    np.testing.assert_array_equal(_logits(zoo, x), _logits(net, x))
    checked = models.from_keras(tmp_path / "m.json", tmp_path / "w.h5", zoo=name)
    np.testing.assert_array_equal(_logits(checked, x), _logits(net, x))


def test_read_write_round_trip_keeps_the_plan(tmp_path):
    plan = keras.KerasPlan((("conv", 2, 3, "VALID", ("leaky", 0.2)), ("pool",),
                            ("dense", 3, "linear"), ("dense", 2)), (6, 6, 1),
                           ((_w(3, 3, 1, 2), _w(2)), (), (_w(8, 3), None), (_w(3, 2), _w(2))),
                           ("a", "b", "c", "d"), True)
    keras.write(plan, tmp_path / "w.h5", tmp_path / "m.json")
    again = keras.read(tmp_path / "m.json", tmp_path / "w.h5")
    assert again.layers == plan.layers and again.input_shape == plan.input_shape
    for ours, theirs in zip(again.weights, plan.weights):
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a, b)


# -------------------------------------------------------------------------------- refusals
def _mlp(tmp_path, units=(5, 3), name="m"):
    layers = [flatten(batch_input_shape=[None, 1, 2, 2])]
    arrays, features = [], 4
    for i, n in enumerate(units):
        layers.append(dense(f"dense_{i}", n, use_bias=False))
        arrays.append((f"dense_{i}", [_w(features, n)]))
        features = n
    return (_json(tmp_path / f"{name}.json", layers), _weights(tmp_path / f"{name}.h5", arrays))


def test_truncated_or_corrupt_weights_are_refused(tmp_path):
    arch, weights = _mlp(tmp_path)
    raw = weights.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(keras.KerasError, match="truncated.h5: not a readable HDF5 file"):
        models.from_keras(arch, truncated)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"\x00" * 64 + raw[64:])
    with pytest.raises(keras.KerasError, match="corrupt.h5: not a readable HDF5 file"):
        models.from_keras(arch, corrupt)
    with pytest.raises(keras.KerasError, match="missing.h5: no such file"):
        models.from_keras(arch, tmp_path / "missing.h5")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as file:
        file.create_dataset("x", data=np.zeros(3))
    with pytest.raises(keras.KerasError, match="plain.h5: not a Keras 2 weights file"):
        models.from_keras(arch, plain)


def test_bad_json_is_refused(tmp_path):
    _, weights = _mlp(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text('{"class_name": "Sequential", "config": [')
    with pytest.raises(keras.KerasError, match="bad.json: not valid JSON"):
        models.from_keras(bad, weights)
    unknown = _json(tmp_path / "unknown.json", [
        flatten(batch_input_shape=[None, 1, 2, 2]), dense("dense_0", 5, use_bias=False),
        ("BatchNormalization", {"name": "bn_1"}), dense("dense_1", 3, use_bias=False)])
    with pytest.raises(keras.KerasError,
                       match=r"unknown.json: layer 'bn_1' \(BatchNormalization\) is not supp"):
        models.from_keras(unknown, weights)
    with pytest.raises(keras.KerasError, match="only Sequential models"):
        models.from_keras(_json_raw(tmp_path, {"class_name": "Subclassed", "config": {}}),
                          weights)


def _json_raw(tmp_path, value):
    path = tmp_path / "raw.json"
    path.write_text(json.dumps(value))
    return path


def test_weights_of_another_architecture_are_refused(tmp_path):
    arch, _ = _mlp(tmp_path, (5, 3), "a")
    _, other = _mlp(tmp_path, (4, 3), "b")
    with pytest.raises(keras.KerasError, match=r"b.h5: layer 'dense_0' holds arrays of shapes "
                                               r"\[\(4, 4\)\], but layer 'dense_0' of .*a.json"):
        models.from_keras(arch, other)
    _, deeper = _mlp(tmp_path, (5, 5, 3), "c")
    with pytest.raises(keras.KerasError, match="c.h5: holds weights for 3 layers"):
        models.from_keras(arch, deeper)
    net = models.create("lenet4", seed=0)
    models.to_keras(net, tmp_path / "lenet4.h5")
    with pytest.raises(keras.KerasError, match="lenet4.h5: holds weights for 4 layers"):
        models.from_keras(None, tmp_path / "lenet4.h5", zoo="lenet1")
    with pytest.raises(keras.KerasError, match=r"lenet4.h5: layer 'conv2d_1' holds a kernel of "
                                               r"shape \(5, 5, 1, 6\); the model's fc1 needs "
                                               r"\(784, 50\): the weights belong to another"):
        models.from_keras(None, tmp_path / "lenet4.h5", zoo="deepfault_3x50_relu")


@pytest.mark.parametrize("layer, message", [
    (conv("c", 2, 3, strides=[2, 2]), r"layer 'c': strides \[2, 2\]"),
    (conv("c", 2, 3, activation="elu"), "activation 'elu' is not supported"),
    (pool("p", pool_size=[3, 3]), "only 2x2, stride 2, valid"),
    (act("a", "relu"), "an activation must follow a Conv2D or Dense layer directly"),
    (dense("d", 2), r"Dense on an image tensor \(add a Flatten"),
])
def test_unsupported_layers_are_refused(tmp_path, layer, message):
    layers = [("InputLayer", {"name": "in", "batch_input_shape": [None, 4, 4, 1]}), layer,
              flatten(), dense("out", 2)]
    arrays = [(cfg["name"], [_w(3, 3, 1, 2), _w(2)] if cls == "Conv2D" else [_w(32, 2), _w(2)])
              for cls, cfg in layers if cls in ("Conv2D", "Dense")]
    with pytest.raises(keras.KerasError, match=message):
        models.from_keras(_json(tmp_path / "m.json", layers), _weights(tmp_path / "m.h5", arrays))


def test_softmax_on_a_hidden_layer_and_ambiguous_layouts_are_refused(tmp_path):
    arch = _json(tmp_path / "m.json", [flatten(batch_input_shape=[None, 1, 2, 2]),
                                      dense("d0", 3, "softmax"), dense("d1", 2)])
    weights = _weights(tmp_path / "m.h5", [("d0", [_w(4, 3), _w(3)]), ("d1", [_w(3, 2), _w(2)])])
    with pytest.raises(keras.KerasError, match="layer 'd0': softmax on a hidden layer"):
        models.from_keras(arch, weights)
    cube = _json(tmp_path / "cube.json", [flatten(batch_input_shape=[None, 3, 3, 3]),
                                         dense("d", 2)])
    cube_weights = _weights(tmp_path / "cube.h5", [("d", [_w(27, 2), _w(2)])])
    with pytest.raises(keras.KerasError, match="cannot tell whether input shape"):
        models.from_keras(cube, cube_weights)
    assert models.from_keras(cube, cube_weights, data_format="channels_last").input_shape == (
        3, 3, 3)
    with pytest.raises(ValueError, match="data_format must be"):
        models.from_keras(cube, cube_weights, data_format="NCHW")
