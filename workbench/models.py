"""The model zoo: Flax NNX networks of the DeepXplore and DeepFault papers, created by name.

Every model takes NHWC images in [0, 1] and returns logits. It sows each hidden layer's
post-activation value as ``nnx.Intermediate``, its pre-activation value as
:class:`~workbench.activations.PreActivation` and each pooling output as
:class:`~workbench.activations.Pooling`, under one site name (``conv1``, ``pool1``, ``fc1``...),
so :func:`workbench.activations.trace` reads any of them. ``model.sites`` lists the sites in
layer order.

Zoo (``names()``):

- ``lenet1``, ``lenet4``, ``lenet5``: DeepXplore's MNIST trio (Pei et al., SOSP 2017, section
  7.1, Table 1; released code ``MNIST/Model1.py``-``Model3.py``): 5x5 ``same`` convolutions
  with ReLU, 2x2 max pooling, dense ReLU layers, a dense logit layer.
- ``deepfault_{3x50,5x30,6x25,8x20}_{relu,leaky}``: DeepFault's eight fully connected MNIST
  networks (Eniser et al., FASE 2019, section 5.1, Table 1): hidden dense layers without bias,
  ReLU or LeakyReLU(0.01), trained with Adam, batch 32, 10 epochs.
- ``deepfault_cifar_{1x512,2x256,4x128}``: DeepFault's CIFAR-10 networks: Conv32-Conv32-MaxPool-
  Conv64-Conv64-MaxPool with ReLU and dropout 0.25, then a LeakyReLU(0.01) dense head with
  dropout 0.5. Inputs are in [0, 1] in training and testing alike (the released code trains on
  [0, 1] but tests on [0, 255]).
- ``cifar_lenet``, ``cifar_vgg``, ``cifar_gap``: three CIFAR-10 convolutional networks of
  different shape for differential testing: a wide LeNet (5x5 convolutions), a small VGG
  (three blocks of two 3x3 convolutions), and an all-convolutional net ending in global
  average pooling (Springenberg et al., ICLR 2015 workshop, in spirit).
- ``resnet20``: the CIFAR-10 ResNet-20 of He et al., "Deep Residual Learning for Image
  Recognition", CVPR 2016, section 4.2 (0.27M parameters, Table 6): a 3x3 conv of 16 filters
  with batch norm and ReLU, three stages of three :class:`BasicBlock` (16, 32, 64 filters; the
  first block of stages 2 and 3 has stride 2), global average pooling, dense 10. Sites: the
  stem ``conv1``, each block's inner ``block<k>_conv1`` and its output ``block<k>``.
"""

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Float

from workbench import keras, validation
from workbench.activations import Pooling, PreActivation

__all__ = [
    "BasicBlock",
    "Sequential",
    "create",
    "dataset_of",
    "from_keras",
    "names",
    "option_a_shortcut",
    "released",
    "released_names",
    "spec",
    "to_keras",
]


def _leaky_relu(x):
    return jax.nn.leaky_relu(x, negative_slope=0.01)


_ACTIVATIONS = {"relu": jax.nn.relu, "leaky": _leaky_relu, "linear": lambda x: x,
                "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}


def _check_activation(spec) -> None:
    if spec in _ACTIVATIONS or (isinstance(spec, tuple) and len(spec) == 2
                                and spec[0] == "leaky" and isinstance(spec[1], float)):
        return
    raise ValueError(f"unknown activation {spec!r}; choose one of {tuple(_ACTIVATIONS)} or "
                     f"('leaky', alpha)")


def _activate(spec, z):
    if isinstance(spec, tuple):  # ("leaky", alpha)
        return jax.nn.leaky_relu(z, negative_slope=spec[1])
    return _ACTIVATIONS[spec](z)


def _sow(module: nnx.Module, kind, name: str, value) -> None:
    # Record only under ``nnx.capture``: outside it, Flax's ``sow`` would store the value as a
    # new attribute of the model (deprecated), changing its state on every plain call.
    if hasattr(module, "__captures__"):
        module.sow(kind, name, value)


def _pool_by_reshape(h):
    n, height, width, channels = h.shape
    h = h[:, : height // 2 * 2, : width // 2 * 2]
    return h.reshape(n, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))


@jax.custom_jvp
def _max_pool_2x2(h):
    """2x2 max pooling, stride 2, odd edges dropped (Keras' and Flax's ``VALID`` pooling).

    Values: the maximum of four strided slices, elementwise, so XLA's CPU backend fuses it
    with the convolution and ReLU before it (as a reduction, XLA's CPU fusion materialised the
    shifted convolution's partial sums: LeNet-5's first block ran 3-5x slower). Derivatives:
    those of a reshape and a max, not ``reduce_window``, which XLA's CPU backend differentiates
    through ``select_and_scatter`` (~1.5x slower for the LeNets' input and weight gradients);
    at tied maxima the gradient is shared among the ties.
    """
    height, width = h.shape[1] // 2 * 2, h.shape[2] // 2 * 2
    h = h[:, :height, :width]
    return jnp.maximum(jnp.maximum(h[:, 0::2, 0::2], h[:, 0::2, 1::2]),
                       jnp.maximum(h[:, 1::2, 0::2], h[:, 1::2, 1::2]))


@_max_pool_2x2.defjvp
def _max_pool_2x2_jvp(primals, tangents):
    _, tangent = jax.jvp(_pool_by_reshape, primals, tangents)
    return _max_pool_2x2(*primals), tangent


# A convolution reads at most this many input values per output value (kernel taps times input
# channels) when it is written as shifted multiply-adds: see ``shifted_conv``.
SHIFTED_CONV_MAX_TAPS = 27


def _shifted(x, kernel, padding):
    """``kernel`` slid over ``x`` as ``taps * channels`` shifted, broadcast multiply-adds."""
    kh, kw, cin, _ = kernel.shape
    if padding == "SAME":  # XLA's SAME at stride 1: the odd pixel of padding goes last
        x = jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    kernel = kernel.reshape(kh, kw, cin, 1, 1, 1, -1)  # each tap's row broadcasts over NHW
    out = None
    for i in range(kh):
        for j in range(kw):
            for c in range(cin):
                term = x[:, i:i + oh, j:j + ow, c:c + 1] * kernel[i, j, c]
                out = term if out is None else out + term
    # Without the barrier XLA fuses the sum into the consumer (bias, ReLU, max pooling) and
    # splits it into several loops with materialised partial sums: 15x slower.
    return jax.lax.optimization_barrier(out)


def _xla_conv(x, kernel, padding):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _few_channel_conv(x, kernel, padding):
    return _shifted(x, kernel, padding)


def _few_channel_conv_jvp(padding, primals, tangents):
    # Values by shifted multiply-adds; derivatives by XLA's convolution, which is linear in the
    # tangents, so reverse mode transposes it into XLA's own input and kernel gradients (the
    # transpose of the shifted sum, 25+ padded slices, was 4-10x slower).
    (x, kernel), (dx, dkernel) = primals, tangents
    out = _shifted(x, kernel, padding)
    terms = []
    if not isinstance(dx, jax.custom_derivatives.SymbolicZero):
        terms.append(_xla_conv(dx, kernel, padding))
    if not isinstance(dkernel, jax.custom_derivatives.SymbolicZero):
        terms.append(_xla_conv(x, dkernel, padding))
    tangent = functools.reduce(jnp.add, terms) if terms else jnp.zeros_like(out)
    return out, tangent


_few_channel_conv.defjvp(_few_channel_conv_jvp, symbolic_zeros=True)


def shifted_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                 dimension_numbers=None, feature_group_count=1, precision=None, **kwargs):
    """``jax.lax.conv_general_dilated`` for the zoo's convolutions, faster on few input channels.

    XLA's CPU convolution is slow when a layer has few input channels: a LeNet's first layer
    (1 to 6 channels, 5x5, 28x28) took 0.80 s over the 10,000 MNIST test images on one core
    against PyTorch's 0.12 s (issue 19). A convolution that reads at most
    :data:`SHIFTED_CONV_MAX_TAPS` values per output (``kh * kw * in_channels``; an MNIST 5x5
    layer reads 25, a CIFAR 3x3 layer 27) with unit strides and dilations, no groups and NHWC
    layout is therefore computed as that many shifted, broadcast multiply-adds, which XLA fuses
    into one loop (the same values to float rounding; ``tests/test_models.py`` checks them
    against XLA's convolution). Its derivatives (forward and reverse mode) are XLA's
    convolution's. Every other convolution is ``jax.lax.conv_general_dilated`` itself. Passed to
    ``flax.nnx.Conv(conv_general_dilated=...)`` by :class:`Sequential`.
    """
    kh, kw, cin, _ = rhs.shape
    plain = (tuple(window_strides) == (1, 1) and lhs_dilation in (None, (1, 1))
             and rhs_dilation in (None, (1, 1)) and feature_group_count == 1
             and not kwargs.get("preferred_element_type") and padding in ("SAME", "VALID")
             and _is_nhwc(dimension_numbers))
    if plain and kh * kw * cin <= SHIFTED_CONV_MAX_TAPS:
        return _few_channel_conv(lhs, rhs, padding)
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
        precision=precision, **kwargs)


def _is_nhwc(numbers) -> bool:
    if numbers is None:
        return False
    if isinstance(numbers, tuple) and all(isinstance(n, str) for n in numbers):
        return tuple(numbers) == ("NHWC", "HWIO", "NHWC")
    lhs, rhs, out = numbers  # jax.lax.ConvDimensionNumbers: axis indices
    return tuple(lhs) == (0, 3, 1, 2) and tuple(rhs) == (3, 2, 0, 1) and tuple(out) == (0, 3, 1, 2)


def option_a_shortcut(x: Float[ArrayLike, "batch h w c"], filters: int, stride: int
                      ) -> Float[Array, "batch h2 w2 filters"]:
    """ResNet's parameter-free shortcut, option A: the identity, subsampled and zero-padded.

    Where a block changes the shape, the input is subsampled by ``stride`` (rows and columns
    ``0, stride, 2 * stride, ...``, the centres of the block's strided convolution) and its
    channels are padded with zeros up to ``filters``: the identity fills the first channels
    (the paper only says "extra zero entries padded"; some reimplementations pad both ends).

    References:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, sections 3.3
        (option A) and 4.2 (CIFAR-10: "we use identity shortcuts in all cases").
    """
    x = jnp.asarray(x)[:, ::stride, ::stride]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (0, filters - x.shape[-1])))


# He et al.'s initialisation (ICCV 2015, section 2.2, the forward case: variance 2 / fan-in),
# which the ResNet paper uses (section 3.4).
_HE_NORMAL = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")


def _he_conv(channels, filters, stride, rngs):
    # 3x3 without bias (batch norm follows), padded by 1 on every side: at stride 2, output i
    # is centred on input 2i, where the option-A shortcut samples (XLA's SAME would pad only
    # the far side and centre it on 2i + 1).
    return nnx.Conv(channels, filters, (3, 3), strides=stride, padding=((1, 1), (1, 1)),
                    use_bias=False, kernel_init=_HE_NORMAL, rngs=rngs,
                    conv_general_dilated=shifted_conv)


def _batch_norm(features, rngs):
    # Momentum 0.9 (Flax's convention: running = 0.9 running + 0.1 batch), as Torch's, in
    # which the paper's models were trained; the paper does not state one. Built in evaluation
    # mode (running averages), so calling a fresh model never changes its statistics;
    # ``train.train`` switches to batch statistics.
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, use_running_average=True,
                         rngs=rngs)


class BasicBlock(nnx.Module):
    """ResNet's basic block: conv3x3-BN-ReLU-conv3x3-BN, plus the option-A shortcut, then ReLU.

    Calling it returns the four values :class:`Sequential` sows: the first convolution's
    batch-normalised output and its ReLU (site ``block<k>_conv1``), the sum of the second
    convolution's batch-normalised output and the shortcut, and its ReLU (site ``block<k>``).

    References:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Figure 2 and
        section 4.2.
    """

    def __init__(self, channels: int, filters: int, stride: int, *, rngs: nnx.Rngs):
        self.filters, self.stride = filters, stride
        self.conv1 = _he_conv(channels, filters, stride, rngs)
        self.bn1 = _batch_norm(filters, rngs)
        self.conv2 = _he_conv(filters, filters, 1, rngs)
        self.bn2 = _batch_norm(filters, rngs)

    def __call__(self, x):
        z1 = self.bn1(self.conv1(x))
        h1 = jax.nn.relu(z1)
        z2 = self.bn2(self.conv2(h1)) + option_a_shortcut(x, self.filters, self.stride)
        return z1, h1, z2, jax.nn.relu(z2)


class Sequential(nnx.Module):
    """A feed-forward network built from a plan of layers, sowing every site.

    The plan is a tuple of tuples:
    ``("conv", filters, kernel, padding)``, ``("pool",)`` (2x2 max), ``("gap",)`` (global
    average pooling), ``("dropout", rate)``, ``("dense", units)``, ``("block", filters,
    stride)`` (a ResNet :class:`BasicBlock`, sowing sites ``block<k>_conv1`` and ``block<k>``);
    the last dense layer is the logit layer and is not sown. ``("conv", filters, kernel,
    padding, act, "bn")`` is a convolution without bias followed by batch norm (its
    pre-activation value is the normalised one). Hidden layers use ``activation``
    (``"relu"`` or ``"leaky"``), conv and dense layers can be told ``dense_activation``
    separately. A conv or hidden dense
    layer may name its own activation last, ``("conv", filters, kernel, padding, act)`` or
    ``("dense", units, act)``, with ``act`` one of ``"relu"``, ``"leaky"`` (slope 0.01),
    ``"linear"``, ``"tanh"``, ``"sigmoid"`` or ``("leaky", slope)`` (what
    :func:`from_keras` builds).

    Args:
        plan: the layers, in order.
        input_shape: ``(height, width, channels)``.
        activation: nonlinearity of the conv layers and, unless ``dense_activation`` is set, of
            the hidden dense layers.
        dense_activation: nonlinearity of the hidden dense layers.
        use_bias: whether dense layers have a bias (convolutions always do).
        rngs: parameter and dropout keys.
    """

    def __init__(self, plan, input_shape, *, activation="relu", dense_activation=None,
                 use_bias=True, rngs: nnx.Rngs):
        self.plan = tuple(tuple(layer) for layer in plan)
        self.input_shape = tuple(input_shape)
        self.activation = activation
        self.dense_activation = dense_activation or activation
        names, sites, counter, acts = [], [], {}, []
        height, width, channels = input_shape
        features = None
        dense_layers = [i for i, layer in enumerate(self.plan) if layer[0] == "dense"]
        for i, layer in enumerate(self.plan):
            op = layer[0]
            prefix = {"conv": "conv", "pool": "pool", "gap": "gap", "dropout": "dropout",
                      "dense": "fc", "block": "block"}.get(op)
            if prefix is None:
                raise ValueError(f"unknown layer {op!r}")
            counter[prefix] = counter.get(prefix, 0) + 1
            name = f"{prefix}{counter[prefix]}"
            if op == "dense" and i == dense_layers[-1]:
                name = "logits"
            names.append(name)
            acts.append(None)
            if op == "conv":
                _, filters, kernel, padding = layer[:4]
                acts[-1] = layer[4] if len(layer) > 4 else self.activation
                normed = layer[5:] == ("bn",)
                init = {"use_bias": False, "kernel_init": _HE_NORMAL} if normed else {}
                setattr(self, name, nnx.Conv(channels, filters, (kernel, kernel),
                                             padding=padding, rngs=rngs,
                                             conv_general_dilated=shifted_conv, **init))
                if normed:
                    setattr(self, f"{name}_bn", _batch_norm(filters, rngs))
                if padding == "VALID":
                    height, width = height - kernel + 1, width - kernel + 1
                channels = filters
                sites.append(name)
            elif op == "block":
                _, filters, stride = layer
                setattr(self, name, BasicBlock(channels, filters, stride, rngs=rngs))
                height, width, channels = -(-height // stride), -(-width // stride), filters
                sites += [f"{name}_conv1", name]
            elif op == "pool":
                height, width = height // 2, width // 2
                sites.append(name)
            elif op == "gap":
                height = width = 1
                sites.append(name)
            elif op == "dropout":
                setattr(self, name, nnx.Dropout(layer[1], rngs=rngs))
            elif op == "dense":
                if features is None:
                    features = height * width * channels
                setattr(self, name, nnx.Linear(features, layer[1], use_bias=use_bias, rngs=rngs))
                features = layer[1]
                if name != "logits":
                    sites.append(name)
                    acts[-1] = layer[2] if len(layer) > 2 else self.dense_activation
        for spec in acts:
            if spec is not None:
                _check_activation(spec)
        self.names = tuple(names)
        self.sites = tuple(sites)
        self.layer_activations = tuple(acts)  # per layer: its nonlinearity, None for others

    def __call__(self, x):
        h = x
        for layer, name, act in zip(self.plan, self.names, self.layer_activations):
            op = layer[0]
            if op in ("conv", "dense"):
                if op == "dense" and h.ndim > 2:
                    h = h.reshape(h.shape[0], -1)
                z = getattr(self, name)(h)
                if name == "logits":
                    return z
                if layer[5:] == ("bn",):
                    z = getattr(self, f"{name}_bn")(z)
                _sow(self, PreActivation, name, z)
                h = _activate(act, z)
                _sow(self, nnx.Intermediate, name, h)
            elif op == "block":
                z1, h1, z, h = getattr(self, name)(h)
                for site, pre, post in ((f"{name}_conv1", z1, h1), (name, z, h)):
                    _sow(self, PreActivation, site, pre)
                    _sow(self, nnx.Intermediate, site, post)
            elif op == "pool":
                h = _max_pool_2x2(h)
                _sow(self, Pooling, name, h)
            elif op == "gap":
                h = h.mean(axis=(1, 2), keepdims=True)
                _sow(self, Pooling, name, h)
            else:
                h = getattr(self, name)(h)
        raise ValueError("a plan must end with a dense logit layer")


_MNIST = (28, 28, 1)
_CIFAR = (32, 32, 3)


def _same(filters, kernel=5):
    return ("conv", filters, kernel, "SAME")


_SPECS: dict[str, tuple[str, dict]] = {
    "lenet1": ("mnist", {"plan": (_same(4), ("pool",), _same(12), ("pool",), ("dense", 10))}),
    "lenet4": ("mnist", {"plan": (_same(6), ("pool",), _same(16), ("pool",), ("dense", 84),
                                   ("dense", 10))}),
    "lenet5": ("mnist", {"plan": (_same(6), ("pool",), _same(16), ("pool",), ("dense", 120),
                                   ("dense", 84), ("dense", 10))}),
}
for _layers, _units in ((3, 50), (5, 30), (6, 25), (8, 20)):
    for _act in ("relu", "leaky"):
        _SPECS[f"deepfault_{_layers}x{_units}_{_act}"] = ("mnist", {
            "plan": tuple(("dense", _units) for _ in range(_layers)) + (("dense", 10),),
            "activation": _act, "use_bias": False})

_DEEPFAULT_TRUNK = (("conv", 32, 3, "SAME"), ("conv", 32, 3, "VALID"), ("pool",),
                    ("dropout", 0.25), ("conv", 64, 3, "SAME"), ("conv", 64, 3, "VALID"),
                    ("pool",), ("dropout", 0.25))
for _layers, _units in ((1, 512), (2, 256), (4, 128)):
    _head = sum((((("dense", _units), ("dropout", 0.5))) for _ in range(_layers)), ())
    _SPECS[f"deepfault_cifar_{_layers}x{_units}"] = ("cifar10", {
        "plan": _DEEPFAULT_TRUNK + _head + (("dense", 10),), "dense_activation": "leaky"})

_SPECS["cifar_lenet"] = ("cifar10", {"plan": (
    _same(32), ("pool",), _same(64), ("pool",), ("dropout", 0.25),
    ("dense", 256), ("dropout", 0.5), ("dense", 10))})
_SPECS["cifar_vgg"] = ("cifar10", {"plan": (
    ("conv", 32, 3, "SAME"), ("conv", 32, 3, "SAME"), ("pool",), ("dropout", 0.2),
    ("conv", 64, 3, "SAME"), ("conv", 64, 3, "SAME"), ("pool",), ("dropout", 0.3),
    ("conv", 128, 3, "SAME"), ("conv", 128, 3, "SAME"), ("pool",), ("dropout", 0.4),
    ("dense", 128), ("dropout", 0.5), ("dense", 10))})
_SPECS["cifar_gap"] = ("cifar10", {"plan": (
    ("conv", 48, 3, "SAME"), ("conv", 48, 3, "SAME"), ("pool",), ("dropout", 0.2),
    ("conv", 96, 3, "SAME"), ("conv", 96, 3, "SAME"), ("pool",), ("dropout", 0.3),
    ("conv", 192, 3, "SAME"), ("conv", 192, 1, "SAME"), ("gap",), ("dense", 10))})
_SPECS["resnet20"] = ("cifar10", {"plan": (
    ("conv", 16, 3, "SAME", "relu", "bn"),
    *(("block", filters, 2 if filters > 16 and i == 0 else 1)
      for filters in (16, 32, 64) for i in range(3)),
    ("gap",), ("dense", 10))})


def names() -> tuple[str, ...]:
    """The names of the zoo's models."""
    return tuple(_SPECS)


def dataset_of(name: str) -> str:
    """The dataset a zoo model is built for: ``"mnist"`` or ``"cifar10"``."""
    return spec(name)[0]


def spec(name: str) -> tuple[str, dict]:
    """The dataset and constructor arguments of a zoo model."""
    if name not in _SPECS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(_SPECS)}")
    return _SPECS[name]


def create(name: str, *, seed: validation.Int = 0) -> Sequential:
    """Creates a zoo model with fresh weights drawn from ``seed``.

    Example:
        >>> net = create("lenet5", seed=0)
        >>> net.sites
        ('conv1', 'pool1', 'conv2', 'pool2', 'fc1', 'fc2')
        >>> net(jnp.zeros((1, 28, 28, 1))).shape
        (1, 10)
    """
    spec(name)
    seed = validation.seed(seed)
    return _build(name, jax.random.key(seed), jax.random.key(seed + 1))


@functools.partial(nnx.jit, static_argnums=0)
def _build(name: str, params_key: jax.Array, dropout_key: jax.Array) -> Sequential:
    # Initialising under one jit compiles one program; eagerly, every initializer of every
    # layer shape is compiled on its own, which takes seconds per architecture.
    dataset, kwargs = _SPECS[name]
    shape = _MNIST if dataset == "mnist" else _CIFAR
    return Sequential(input_shape=shape, rngs=nnx.Rngs(params=params_key, dropout=dropout_key),
                      **kwargs)


# ------------------------------------------------------------------------ Keras models
@functools.partial(nnx.jit, static_argnums=(0, 1, 2))
def _build_plan(plan: tuple, input_shape: tuple, use_bias: bool, key: jax.Array) -> Sequential:
    return Sequential(plan, input_shape, use_bias=use_bias, rngs=nnx.Rngs(params=key, dropout=key))


def _resolved(model: Sequential) -> tuple[tuple, ...]:
    """The plan with every conv and hidden dense layer's activation written out."""
    layers = []
    for layer, act in zip(model.plan, model.layer_activations):
        base = layer[:4] if layer[0] == "conv" else layer[:2] if layer[0] == "dense" else layer
        layers.append(base if act is None else (*base, act))
    return tuple(layers)


def _check_keras_layers(plan: tuple, source: str) -> None:
    """Refuses a plan with a layer a Keras ``Sequential`` file cannot hold, naming it."""
    for index, layer in enumerate(plan):
        if layer[0] == "block" or layer[5:] == ("bn",):
            raise keras.KerasError(
                f"{source}: layer {index} {layer} (a residual block or batch norm) has no "
                f"Keras Sequential form; only conv, pool, gap, dropout and dense layers are "
                f"read and written")


def _assign(model: Sequential, arrays: list, file: str) -> None:
    """Puts ``(keras_name, kernel, bias or None)`` into the model's conv and dense layers, in
    order; a missing bias becomes zeros. Refuses arrays that do not fit, naming the layer."""
    targets = [n for n, layer in zip(model.names, model.plan) if layer[0] in ("conv", "dense")]
    if len(arrays) != len(targets):
        raise keras.KerasError(
            f"{file}: holds weights for {len(arrays)} layers ({', '.join(a[0] for a in arrays)})"
            f", the model has {len(targets)} ({', '.join(targets)}): the weights belong to "
            f"another architecture")
    state = nnx.state(model, nnx.Param)
    params = nnx.to_pure_dict(state)
    for target, (source, kernel, bias) in zip(targets, arrays):
        layer = params[target]
        if bias is None and "bias" in layer:
            bias = np.zeros(layer["bias"].shape, np.float32)
        for field, value in (("kernel", kernel), ("bias", bias)):
            if field in layer and tuple(layer[field].shape) != value.shape:
                raise keras.KerasError(
                    f"{file}: layer {source!r} holds a {field} of shape {value.shape}; the "
                    f"model's {target} needs {tuple(layer[field].shape)}: the weights belong "
                    f"to another architecture")
            if field in layer:
                layer[field] = jnp.asarray(value)
        if "bias" not in layer and bias is not None and np.any(bias):
            raise keras.KerasError(f"{file}: layer {source!r} has a bias; the model's "
                                   f"{target} has none: the weights belong to another "
                                   f"architecture")
    nnx.replace_by_pure_dict(state, params)
    nnx.update(model, state)


def from_keras(architecture: str | os.PathLike | None, weights: str | os.PathLike, *,
               zoo: str | None = None, input_shape: tuple[int, int, int] | None = None,
               data_format: str | None = None) -> Sequential:
    """A :class:`Sequential` with the weights of a Keras 2 model, read as data (no Keras).

    The files are read by :mod:`workbench.keras` (its docstring lists the layers read and the
    conventions): the model returns the logits, the last Dense layer's output before a softmax;
    it takes NHWC images, channel-first Keras inputs included.

    Args:
        architecture: the architecture JSON (``model.to_json()``), or None for a file of
            ``model.save()`` (it carries its architecture) or when ``zoo`` is given.
        weights: the HDF5 file of ``model.save_weights()`` or ``model.save()``.
        zoo: a zoo model the weights belong to (e.g. DeepXplore's weights-only files): the
            weights are checked against it, and so is the architecture if one is given.
        input_shape: ``(height, width, channels)`` for a model with a flat or undeclared input.
        data_format: the layout of a 3-D input no layer declares (see :func:`keras.read`).

    Returns:
        The model, in evaluation mode.

    Raises:
        workbench.keras.KerasError: an unreadable file, an unsupported layer, or weights (or an
            architecture) that do not fit; the message names the file and the layer.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     to_keras(create("lenet1"), f"{folder}/w.h5", f"{folder}/m.json")
        ...     net = from_keras(f"{folder}/m.json", f"{folder}/w.h5")
        >>> net.sites, net(jnp.zeros((1, 28, 28, 1))).shape
        (('conv1', 'pool1', 'conv2', 'pool2'), (1, 10))
    """
    if zoo is None:
        plan = keras.read(architecture, weights, input_shape=input_shape,
                          data_format=data_format)
        model = _build_plan(plan.layers, plan.input_shape, plan.use_bias, jax.random.key(0))
    else:
        _check_keras_layers(spec(zoo)[1]["plan"], f"from_keras(zoo={zoo!r})")
        model = create(zoo)
        stored = keras.read_weights(weights)
        if architecture is None and stored.model_config is None:
            arrays = [(name, values[0], values[1] if len(values) > 1 else None)
                      for name, values in keras.weighted_layers(stored)]
            _assign(model, arrays, str(weights))
            model.eval()
            return model
        plan = keras.read(architecture, weights, input_shape=input_shape,
                          data_format=data_format)
        expected = (_resolved(model), tuple(model.input_shape))
        if (tuple(tuple(layer) for layer in plan.layers), plan.input_shape) != expected:
            raise keras.KerasError(
                f"{architecture or weights}: the architecture {plan.layers} on "
                f"{plan.input_shape} images is not {zoo!r}, {expected[0]} on {expected[1]}")
    arrays = [(name, *values) for name, values in zip(plan.names, plan.weights) if values]
    _assign(model, arrays, str(weights))
    model.eval()
    return model


def to_keras(model: Sequential, weights: str | os.PathLike,
             architecture: str | os.PathLike | None = None) -> None:
    """Writes a :class:`Sequential` as Keras 2 files, each atomically: its weights in the
    ``save_weights`` HDF5 layout and, if a path is given, its architecture JSON (a channel-last
    ``Sequential`` whose last Dense layer has a softmax). :func:`from_keras` reads them back.
    """
    if not isinstance(model, Sequential):
        raise ValueError(
            f"model must be a workbench Sequential, got {type(model).__name__}")
    _check_keras_layers(model.plan, "to_keras")
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    values = []
    for name, layer in zip(model.names, model.plan):
        if layer[0] in ("conv", "dense"):
            found = params[name]
            values.append((np.asarray(found["kernel"]),
                           np.asarray(found["bias"]) if "bias" in found else None))
        else:
            values.append(())
    plan = keras.KerasPlan(_resolved(model), tuple(model.input_shape), tuple(values),
                           tuple(model.names), model.logits.bias is not None)
    keras.write(plan, weights, architecture)


# The authors' released models (``workbench data download released``): zoo name -> files under
# <data root>/released/ (weights, architecture or None).
_RELEASED = {
    "lenet1": ("deepxplore/Model1.h5", None),
    "lenet4": ("deepxplore/Model2.h5", None),
    "lenet5": ("deepxplore/Model3.h5", None),
}
for _layers, _units in ((3, 50), (5, 30), (6, 25), (8, 20)):
    for _act, _file_act in (("relu", "relu"), ("leaky", "leaky_relu")):
        _stem = f"deepfault/mnist_test_model_{_layers}_{_units}_{_file_act}"
        _RELEASED[f"deepfault_{_layers}x{_units}_{_act}"] = (f"{_stem}.h5", f"{_stem}.json")
_UNPUBLISHED = ("deepfault_6x25_relu",)


def released_names() -> tuple[str, ...]:
    """The zoo models whose authors published trained weights (see :func:`released`)."""
    return tuple(name for name in _RELEASED if name not in _UNPUBLISHED)


def released(name: str, *, root: str | os.PathLike | None = None) -> Sequential:
    """A zoo model with the weights its paper's authors published, read as data.

    ``lenet1``, ``lenet4``, ``lenet5``: DeepXplore's ``MNIST/Model1.h5``-``Model3.h5`` (Pei et
    al., SOSP 2017; Keras 2 ``save_weights``, TensorFlow backend). ``deepfault_<L>x<N>_<act>``:
    DeepFault's ``neural_networks/mnist_test_model_<L>_<N>_<act>.json`` + ``.h5`` (Eniser et al.,
    FASE 2019), channel-first ``1x28x28`` inputs, read as our NHWC ``28x28x1`` (one channel: the
    same flattening order). Files are read from ``<root or $WORKBENCH_DATA>/released/`` and
    checked against their published SHA-256 (``workbench data download released`` fetches them).
    The model returns logits: the last Dense layer's output before the softmax.

    Raises:
        ValueError: ``name`` has no released weights; the 6x25 ReLU DeepFault model was never
            published.
        workbench.data.DataError: a file is missing (the message says how to get it) or is not
            the published one.

    Example:
        >>> net = released("lenet5")  # doctest: +SKIP
    """
    from workbench import data

    if name in _UNPUBLISHED:
        raise ValueError(f"{name!r} has no released weights: the DeepFault authors did not publish "
                         f"their 6x25 ReLU model (only the 6x25 LeakyReLU one). Train it with "
                         f"train.load_or_train({name!r}), or choose one of "
                         f"{', '.join(released_names())}")
    if name not in _RELEASED:
        spec(name)
        raise ValueError(f"{name!r} has no released weights; released models: "
                         f"{', '.join(released_names())}")
    weights, architecture = _RELEASED[name]
    weights_path = data.released_file(weights, root=root)
    architecture_path = None if architecture is None else data.released_file(architecture,
                                                                             root=root)
    data_format = None if architecture is None else "channels_first"  # DeepFault's load_MNIST
    return from_keras(architecture_path, weights_path, zoo=name, data_format=data_format)
