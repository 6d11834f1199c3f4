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
"""

import functools

import jax
import jax.numpy as jnp  # noqa: F401  (used by the doctests)
from flax import nnx

from workbench.activations import Pooling, PreActivation

__all__ = ["Sequential", "create", "names", "spec", "dataset_of"]


def _leaky_relu(x):
    return jax.nn.leaky_relu(x, negative_slope=0.01)


_ACTIVATIONS = {"relu": jax.nn.relu, "leaky": _leaky_relu}


def _sow(module: nnx.Module, kind, name: str, value) -> None:
    # Record only under ``nnx.capture``: outside it, Flax's ``sow`` would store the value as a
    # new attribute of the model (deprecated), changing its state on every plain call.
    if hasattr(module, "__captures__"):
        module.sow(kind, name, value)


def _max_pool_2x2(h):
    """2x2 max pooling, stride 2, odd edges dropped (Keras' and Flax's ``VALID`` pooling).

    Written as a reshape and a max rather than ``reduce_window``: XLA's CPU backend
    differentiates ``reduce_window`` through ``select_and_scatter``, which made input and weight
    gradients of the LeNets ~1.5x slower. Values are identical; at tied maxima the gradient is
    shared among the ties instead of going to the first one.
    """
    n, height, width, channels = h.shape
    h = h[:, : height // 2 * 2, : width // 2 * 2]
    return h.reshape(n, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))


class Sequential(nnx.Module):
    """A feed-forward network built from a plan of layers, sowing every site.

    The plan is a tuple of tuples:
    ``("conv", filters, kernel, padding)``, ``("pool",)`` (2x2 max), ``("gap",)`` (global
    average pooling), ``("dropout", rate)``, ``("dense", units)``; the last dense layer is the
    logit layer and is not sown. Hidden layers use ``activation`` (``"relu"`` or ``"leaky"``),
    conv and dense layers can be told ``dense_activation`` separately.

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
        names, sites, counter = [], [], {}
        height, width, channels = input_shape
        features = None
        dense_layers = [i for i, layer in enumerate(self.plan) if layer[0] == "dense"]
        for i, layer in enumerate(self.plan):
            op = layer[0]
            prefix = {"conv": "conv", "pool": "pool", "gap": "gap", "dropout": "dropout",
                      "dense": "fc"}[op]
            counter[prefix] = counter.get(prefix, 0) + 1
            name = f"{prefix}{counter[prefix]}"
            if op == "dense" and i == dense_layers[-1]:
                name = "logits"
            names.append(name)
            if op == "conv":
                _, filters, kernel, padding = layer
                setattr(self, name, nnx.Conv(channels, filters, (kernel, kernel),
                                             padding=padding, rngs=rngs))
                if padding == "VALID":
                    height, width = height - kernel + 1, width - kernel + 1
                channels = filters
                sites.append(name)
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
            else:
                raise ValueError(f"unknown layer {op!r}")
        self.names = tuple(names)
        self.sites = tuple(sites)

    def __call__(self, x):
        conv_act = _ACTIVATIONS[self.activation]
        dense_act = _ACTIVATIONS[self.dense_activation]
        h = x
        for layer, name in zip(self.plan, self.names):
            op = layer[0]
            if op in ("conv", "dense"):
                if op == "dense" and h.ndim > 2:
                    h = h.reshape(h.shape[0], -1)
                z = getattr(self, name)(h)
                if name == "logits":
                    return z
                _sow(self, PreActivation, name, z)
                h = (conv_act if op == "conv" else dense_act)(z)
                _sow(self, nnx.Intermediate, name, h)
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
    "lenet1": ("mnist", dict(plan=(_same(4), ("pool",), _same(12), ("pool",), ("dense", 10)))),
    "lenet4": ("mnist", dict(plan=(_same(6), ("pool",), _same(16), ("pool",), ("dense", 84),
                                   ("dense", 10)))),
    "lenet5": ("mnist", dict(plan=(_same(6), ("pool",), _same(16), ("pool",), ("dense", 120),
                                   ("dense", 84), ("dense", 10)))),
}
for _layers, _units in ((3, 50), (5, 30), (6, 25), (8, 20)):
    for _act in ("relu", "leaky"):
        _SPECS[f"deepfault_{_layers}x{_units}_{_act}"] = ("mnist", dict(
            plan=tuple(("dense", _units) for _ in range(_layers)) + (("dense", 10),),
            activation=_act, use_bias=False))

_DEEPFAULT_TRUNK = (("conv", 32, 3, "SAME"), ("conv", 32, 3, "VALID"), ("pool",),
                    ("dropout", 0.25), ("conv", 64, 3, "SAME"), ("conv", 64, 3, "VALID"),
                    ("pool",), ("dropout", 0.25))
for _layers, _units in ((1, 512), (2, 256), (4, 128)):
    _head = sum((((("dense", _units), ("dropout", 0.5))) for _ in range(_layers)), ())
    _SPECS[f"deepfault_cifar_{_layers}x{_units}"] = ("cifar10", dict(
        plan=_DEEPFAULT_TRUNK + _head + (("dense", 10),), dense_activation="leaky"))

_SPECS["cifar_lenet"] = ("cifar10", dict(plan=(
    _same(32), ("pool",), _same(64), ("pool",), ("dropout", 0.25),
    ("dense", 256), ("dropout", 0.5), ("dense", 10))))
_SPECS["cifar_vgg"] = ("cifar10", dict(plan=(
    ("conv", 32, 3, "SAME"), ("conv", 32, 3, "SAME"), ("pool",), ("dropout", 0.2),
    ("conv", 64, 3, "SAME"), ("conv", 64, 3, "SAME"), ("pool",), ("dropout", 0.3),
    ("conv", 128, 3, "SAME"), ("conv", 128, 3, "SAME"), ("pool",), ("dropout", 0.4),
    ("dense", 128), ("dropout", 0.5), ("dense", 10))))
_SPECS["cifar_gap"] = ("cifar10", dict(plan=(
    ("conv", 48, 3, "SAME"), ("conv", 48, 3, "SAME"), ("pool",), ("dropout", 0.2),
    ("conv", 96, 3, "SAME"), ("conv", 96, 3, "SAME"), ("pool",), ("dropout", 0.3),
    ("conv", 192, 3, "SAME"), ("conv", 192, 1, "SAME"), ("gap",), ("dense", 10))))


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


def create(name: str, *, seed: int = 0) -> Sequential:
    """Creates a zoo model with fresh weights drawn from ``seed``.

    Example:
        >>> net = create("lenet5", seed=0)
        >>> net.sites
        ('conv1', 'pool1', 'conv2', 'pool2', 'fc1', 'fc2')
        >>> net(jnp.zeros((1, 28, 28, 1))).shape
        (1, 10)
    """
    spec(name)
    return _build(name, jax.random.key(seed), jax.random.key(seed + 1))


@functools.partial(nnx.jit, static_argnums=0)
def _build(name: str, params_key: jax.Array, dropout_key: jax.Array) -> Sequential:
    # Initialising under one jit compiles one program; eagerly, every initializer of every
    # layer shape is compiled on its own, which takes seconds per architecture.
    dataset, kwargs = _SPECS[name]
    shape = _MNIST if dataset == "mnist" else _CIFAR
    return Sequential(input_shape=shape, rngs=nnx.Rngs(params=params_key, dropout=dropout_key),
                      **kwargs)
