"""Every zoo model: output shape, sites and neuron counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import activations, models

# Hidden sites and post-activation neurons per site, from each paper's architecture.
EXPECTED = {
    "lenet1": {"conv1": 4, "conv2": 12},
    "lenet4": {"conv1": 6, "conv2": 16, "fc1": 84},
    "lenet5": {"conv1": 6, "conv2": 16, "fc1": 120, "fc2": 84},
    "deepfault_3x50_relu": {f"fc{i}": 50 for i in range(1, 4)},
    "deepfault_5x30_leaky": {f"fc{i}": 30 for i in range(1, 6)},
    "deepfault_6x25_relu": {f"fc{i}": 25 for i in range(1, 7)},
    "deepfault_8x20_leaky": {f"fc{i}": 20 for i in range(1, 9)},
    "deepfault_cifar_1x512": {"conv1": 32, "conv2": 32, "conv3": 64, "conv4": 64, "fc1": 512},
    "deepfault_cifar_2x256": {"conv1": 32, "conv2": 32, "conv3": 64, "conv4": 64,
                              "fc1": 256, "fc2": 256},
    "deepfault_cifar_4x128": {"conv1": 32, "conv2": 32, "conv3": 64, "conv4": 64,
                              **{f"fc{i}": 128 for i in range(1, 5)}},
    "cifar_lenet": {"conv1": 32, "conv2": 64, "fc1": 256},
    "cifar_vgg": {"conv1": 32, "conv2": 32, "conv3": 64, "conv4": 64, "conv5": 128,
                  "conv6": 128, "fc1": 128},
    "cifar_gap": {"conv1": 48, "conv2": 48, "conv3": 96, "conv4": 96, "conv5": 192,
                  "conv6": 192},
    # He et al. 2016, section 4.2: the stem, then per block its first conv and its output.
    "resnet20": {"conv1": 16, **{f"block{k}{part}": filters for k, filters in zip(
        range(1, 10), (16,) * 3 + (32,) * 3 + (64,) * 3) for part in ("_conv1", "")}},
}


def test_zoo_lists_every_family():
    names = models.names()
    assert {"lenet1", "lenet4", "lenet5", "cifar_lenet", "cifar_vgg", "cifar_gap"} <= set(names)
    assert sum(n.startswith("deepfault_") and "cifar" not in n for n in names) == 8
    assert sum(n.startswith("deepfault_cifar") for n in names) == 3


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_outputs_sites_and_counts(name):
    # An abstract model (shapes only): creating the real one compiles its initialisers, which
    # took 30-150 s per architecture on a shared 2-core machine; ``create`` is tested below.
    dataset, kwargs = models.spec(name)
    shape = (28, 28, 1) if dataset == "mnist" else (32, 32, 3)
    net = nnx.eval_shape(lambda: models.Sequential(input_shape=shape, rngs=nnx.Rngs(0),
                                                   **kwargs))
    graphdef, state = nnx.split(net)
    x = jax.ShapeDtypeStruct((2, *net.input_shape), jnp.float32)
    assert jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, x).shape == (2, 10)
    assert activations.neuron_counts(net, net.input_shape) == EXPECTED[name]
    assert activations.neuron_counts(net, net.input_shape, convention="pre") == EXPECTED[name]


@pytest.mark.parametrize("name, total", [("lenet1", 52), ("lenet4", 148), ("lenet5", 268)])
def test_deepxplore_counts_match_the_released_code(name, total):
    net = models.create(name, seed=0)
    counts = activations.neuron_counts(net, net.input_shape, convention="deepxplore")
    assert sum(counts.values()) == total
    assert list(counts)[-2:] == ["logits", "softmax"]


def test_deepfault_mnist_dense_layers_have_no_bias():
    net = models.create("deepfault_3x50_relu", seed=0)
    assert net.fc1.bias is None and net.logits.bias is None


def test_leaky_models_use_slope_001():
    net = models.create("deepfault_3x50_leaky", seed=0)
    pre = activations.activations(net, jnp.ones((4, 28, 28, 1)), convention="pre")["fc1"]
    post = activations.activations(net, jnp.ones((4, 28, 28, 1)))["fc1"]
    assert bool((pre < 0).any())
    assert jnp.allclose(post, jnp.where(pre > 0, pre, 0.01 * pre), atol=1e-6)


def test_seeds_give_different_and_repeatable_weights():
    a, b, c = (models.create("lenet1", seed=s) for s in (0, 0, 1))
    assert jnp.array_equal(a.conv1.kernel[...], b.conv1.kernel[...])
    assert not jnp.array_equal(a.conv1.kernel[...], c.conv1.kernel[...])


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        models.create("resnet50")


def _numpy_conv(x, kernel, padding):
    """Cross-correlation as Keras and XLA compute it, NHWC / HWIO, unit strides."""
    kh, kw = kernel.shape[:2]
    if padding == "SAME":
        x = np.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            out += x[:, i:i + oh, j:j + ow, :] @ kernel[i, j]
    return out


@pytest.mark.parametrize(("shape", "padding"), [((5, 5, 1, 6), "SAME"), ((3, 3, 3, 4), "SAME"),
                                                ((4, 4, 1, 2), "VALID"), ((5, 5, 6, 4), "SAME")])
def test_shifted_conv_matches_the_plain_convolution_and_its_derivatives(shape, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 8, shape[2])).astype(np.float32)
    kernel = rng.standard_normal(shape).astype(np.float32)
    numbers = jax.lax.conv_dimension_numbers(x.shape, kernel.shape, ("NHWC", "HWIO", "NHWC"))

    def ours(x, kernel):
        return models.shifted_conv(x, kernel, (1, 1), padding, dimension_numbers=numbers)

    def plain(x, kernel):
        return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                            dimension_numbers=numbers)

    np.testing.assert_allclose(jax.jit(ours)(x, kernel), _numpy_conv(x, kernel, padding),
                               rtol=1e-5, atol=1e-5)
    loss = [lambda x, k, f=f: jnp.sum(jnp.sin(f(x, k))) for f in (ours, plain)]
    for a, b in zip(jax.grad(loss[0], argnums=(0, 1))(x, kernel),
                    jax.grad(loss[1], argnums=(0, 1))(x, kernel)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    tangents = (np.ones_like(x), np.ones_like(kernel))
    np.testing.assert_allclose(jax.jvp(ours, (x, kernel), tangents)[1],
                               jax.jvp(plain, (x, kernel), tangents)[1], rtol=1e-4, atol=1e-4)


def test_shifted_conv_rule_picks_few_channel_layers():
    assert models.SHIFTED_CONV_MAX_TAPS == 27
    x = jnp.zeros((1, 8, 8, 1))
    numbers = jax.lax.conv_dimension_numbers(x.shape, (5, 5, 1, 6), ("NHWC", "HWIO", "NHWC"))
    hlo = jax.jit(lambda x, k: models.shifted_conv(x, k, (1, 1), "SAME",
                                                   dimension_numbers=numbers)).lower(
        x, jnp.zeros((5, 5, 1, 6))).as_text()
    assert "convolution" not in hlo
    numbers = jax.lax.conv_dimension_numbers((1, 8, 8, 2), (5, 5, 2, 6), ("NHWC", "HWIO", "NHWC"))
    hlo = jax.jit(lambda x, k: models.shifted_conv(x, k, (1, 1), "SAME",
                                                   dimension_numbers=numbers)).lower(
        jnp.zeros((1, 8, 8, 2)), jnp.zeros((5, 5, 2, 6))).as_text()
    assert "convolution" in hlo  # 50 taps: XLA's own convolution


def test_max_pool_values_and_gradient_match_a_reshape_and_max():
    h = jnp.asarray(np.random.default_rng(1).standard_normal((2, 7, 6, 3)), jnp.float32)
    expected = np.asarray(h)[:, :6, :6].reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(models._max_pool_2x2(h), expected)
    weights = jnp.arange(2 * 3 * 3 * 3, dtype=jnp.float32).reshape(2, 3, 3, 3)
    grad = jax.grad(lambda h: jnp.sum(models._max_pool_2x2(h) * weights))(h)
    mask = np.asarray(h)[:, :6, :6] == np.repeat(np.repeat(expected, 2, 1), 2, 2)
    np.testing.assert_array_equal(np.asarray(grad)[:, :6, :6],
                                  mask * np.repeat(np.repeat(weights, 2, 1), 2, 2))
    assert not np.asarray(grad)[:, 6:].any()


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "--xla_cpu_enable_fast_math=true"),
    ({"XLA_FLAGS": "--xla_cpu_enable_fast_math=false"}, "--xla_cpu_enable_fast_math=false"),
    ({"XLA_FLAGS": "--xla_cpu_multi_thread_eigen=true"},
     "--xla_cpu_multi_thread_eigen=true --xla_cpu_enable_fast_math=true"),
    ({"WORKBENCH_XLA_DEFAULTS": "0"}, ""),
])
def test_package_turns_on_fast_math_unless_told_otherwise(env, expected):
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items()
            if k not in ("XLA_FLAGS", "WORKBENCH_XLA_DEFAULTS")}
    code = "import os, workbench; print(os.environ.get('XLA_FLAGS', ''))"
    out = subprocess.run([sys.executable, "-c", code],
                         env={**base, **env}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected


# ------------------------------------------------------------------------ ResNet-20
_TINY_RESNET = (("conv", 4, 3, "SAME", "relu", "bn"), ("block", 4, 1), ("block", 8, 2),
                ("gap",), ("dense", 10))


def _filled(make, seed=0):
    """The module ``make()`` builds, with random weights and batch statistics but without
    compiling its initialisers (``nnx.eval_shape``, then NumPy values)."""
    graphdef, state = nnx.split(nnx.eval_shape(make))
    rng = np.random.default_rng(seed)
    values = {"kernel": lambda s: rng.standard_normal(s) * np.sqrt(2 / np.prod(s[:-1])),
              "var": lambda s: rng.uniform(0.5, 2.0, s), "scale": lambda s: rng.uniform(0.5, 2, s)}
    pure = jax.tree_util.tree_map_with_path(
        lambda path, leaf: jnp.asarray(values.get(path[-1].key, lambda s: rng.standard_normal(s)
                                                   * 0.1)(leaf.shape), jnp.float32),
        nnx.to_pure_dict(state))
    nnx.replace_by_pure_dict(state, pure)
    return nnx.merge(graphdef, state)


def _resnet20(seed=0):
    return _filled(lambda: models.Sequential(input_shape=(32, 32, 3), rngs=nnx.Rngs(0),
                                             **models.spec("resnet20")[1]), seed)


def test_resnet20_has_the_papers_parameter_count():
    net = nnx.eval_shape(lambda: models.Sequential(input_shape=(32, 32, 3), rngs=nnx.Rngs(0),
                                                   **models.spec("resnet20")[1]))
    count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(nnx.state(net, nnx.Param)))
    bn = 2  # scale and bias per channel
    stem = 3 * 3 * 3 * 16 + bn * 16
    stage1 = 3 * (2 * 3 * 3 * 16 * 16 + 2 * bn * 16)
    stage2 = 3 * 3 * 16 * 32 + 5 * 3 * 3 * 32 * 32 + 6 * bn * 32
    stage3 = 3 * 3 * 32 * 64 + 5 * 3 * 3 * 64 * 64 + 6 * bn * 64
    assert count == stem + stage1 + stage2 + stage3 + 64 * 10 + 10 == 269_722  # "0.27M"
    stats = jax.tree.leaves(nnx.state(net, nnx.BatchStat))
    assert sum(int(np.prod(p.shape)) for p in stats) == 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64)


def test_option_a_shortcut_subsamples_and_pads_with_zeros():
    x = jnp.arange(2 * 4 * 4 * 2, dtype=jnp.float32).reshape(2, 4, 4, 2)
    out = np.asarray(models.option_a_shortcut(x, 4, 2))
    assert out.shape == (2, 2, 2, 4)
    np.testing.assert_array_equal(out[..., :2], np.asarray(x)[:, [0, 2]][:, :, [0, 2]])
    assert not out[..., 2:].any()
    np.testing.assert_array_equal(models.option_a_shortcut(x, 2, 1), x)


def _numpy_bn(z, bn):
    return ((z - np.asarray(bn.mean[...])) / np.sqrt(np.asarray(bn.var[...]) + 1e-5)
            * np.asarray(bn.scale[...]) + np.asarray(bn.bias[...]))


def test_basic_block_matches_numpy_at_stride_two():
    block = _filled(lambda: models.BasicBlock(2, 4, 2, rngs=nnx.Rngs(0)))
    x = np.random.default_rng(1).standard_normal((2, 6, 6, 2)).astype(np.float32)
    z1, h1, z2, h2 = (np.asarray(v) for v in block(x))
    # A stride-2 conv padded by 1 is the stride-1 SAME conv at even positions: aligned with
    # the shortcut's subsampling.
    conv1 = _numpy_conv(x, np.asarray(block.conv1.kernel[...]), "SAME")[:, ::2, ::2]
    np.testing.assert_allclose(z1, _numpy_bn(conv1, block.bn1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(h1, np.maximum(z1, 0))
    conv2 = _numpy_conv(h1, np.asarray(block.conv2.kernel[...]), "SAME")
    shortcut = np.pad(x[:, ::2, ::2], ((0, 0), (0, 0), (0, 0), (0, 2)))
    np.testing.assert_allclose(z2, _numpy_bn(conv2, block.bn2) + shortcut, rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(h2, np.maximum(z2, 0))


def test_batch_norm_trains_on_batch_statistics_and_evaluates_on_running_ones():
    net = _filled(lambda: models.Sequential(_TINY_RESNET, (8, 8, 3), rngs=nnx.Rngs(0)))
    x = np.random.default_rng(2).uniform(size=(4, 8, 8, 3)).astype(np.float32)
    conv = _numpy_conv(x, np.asarray(net.conv1.kernel[...]), "SAME")
    convention = activations.Convention("pre", "none")

    def stem():
        return np.asarray(activations.activations(net, x, convention=convention)["conv1"])

    np.testing.assert_allclose(stem(), _numpy_bn(conv, net.conv1_bn).reshape(4, -1),
                               rtol=1e-4, atol=1e-4)
    mean, var = np.asarray(net.conv1_bn.mean[...]), np.asarray(net.conv1_bn.var[...])
    net.train()  # batch statistics, running averages updated (Flax momentum 0.9)
    net(x)
    np.testing.assert_allclose(net.conv1_bn.mean[...], 0.9 * mean + 0.1 * conv.mean((0, 1, 2)),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(net.conv1_bn.var[...], 0.9 * var + 0.1 * conv.var((0, 1, 2)),
                               rtol=1e-4, atol=1e-5)
    # Every pass merges in evaluation mode: the new running averages, whatever the model's mode.
    assert activations.merge(*activations.split(net)).conv1_bn.use_running_average
    np.testing.assert_allclose(stem(), _numpy_bn(conv, net.conv1_bn).reshape(4, -1),
                               rtol=1e-4, atol=1e-4)


def test_resnet20_coverage_and_a_differential_step():
    from workbench import coverage, differential, passes

    net = _resnet20()
    images = np.random.default_rng(3).uniform(size=(4, 32, 32, 3)).astype(np.float32)
    cov = passes.model_coverage(net, images, criteria=("nc", "tknc"), batch_size=4)
    assert list(cov["nc"]) == list(EXPECTED["resnet20"])
    assert 0 < coverage.ratio(cov["tknc"]) < 1
    # Against a one-conv network: the gradient through resnet20 is what is tested, and a
    # second resnet20 would double the compilation.
    other = _filled(lambda: models.Sequential((("conv", 4, 3, "SAME"), ("gap",), ("dense", 10)),
                                              (32, 32, 3), rngs=nnx.Rngs(0)))
    result = differential.generate([net, other], images, key=jax.random.key(0), iterations=1,
                                   batch_size=4)
    assert result.predictions.shape == (2, len(result.inputs))
    assert len(result.inputs) == len(result.iterations) == len(result.seed_index)
    assert {site for site in result.covered[0]} >= set(EXPECTED["resnet20"])


def test_keras_export_refuses_blocks_and_batch_norm_by_layer():
    from workbench import keras

    net = nnx.eval_shape(lambda: models.Sequential(_TINY_RESNET, (8, 8, 3), rngs=nnx.Rngs(0)))
    with pytest.raises(keras.KerasError, match=r"to_keras: layer 0 \('conv', 4, 3, 'SAME', "
                                               r"'relu', 'bn'\)"):
        models.to_keras(net, "unused.h5")
    with pytest.raises(keras.KerasError, match=r"zoo='resnet20'.*residual block or batch norm"):
        models.from_keras(None, "unused.h5", zoo="resnet20")


def test_package_keeps_compilations_in_the_users_cache_unless_told_otherwise(tmp_path,
                                                                              monkeypatch):
    import os
    import subprocess
    import sys

    from workbench import files

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    base = {k: v for k, v in os.environ.items()
            if k not in ("JAX_COMPILATION_CACHE_DIR", "WORKBENCH_XLA_DEFAULTS")}
    code = "import workbench, jax; print(jax.config.jax_compilation_cache_dir)"
    for env, expected in (({}, str(files.cache_folder() / "jax")),
                          ({"JAX_COMPILATION_CACHE_DIR": "/elsewhere"}, "/elsewhere"),
                          ({"WORKBENCH_XLA_DEFAULTS": "0"}, "None")):
        out = subprocess.run([sys.executable, "-c", code], env={**base, **env},
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected
