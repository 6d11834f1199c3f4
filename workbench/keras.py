"""Keras 2 models read as data: the architecture JSON with ``json``, the weights with ``h5py``.

Nothing from Keras is imported, evaluated or unpickled: an architecture is a tree of plain
values and a weights file is groups of arrays. :func:`read` turns the pair into a
:class:`KerasPlan`, a layer plan in the format of :class:`workbench.models.Sequential` plus NumPy
weights already in Flax's layout; :func:`workbench.models.from_keras` builds the model and
:func:`write` is the inverse (what :func:`workbench.models.to_keras` calls).

Files read:

- weights: a Keras 2 ``save_weights`` HDF5 file (attribute ``layer_names``, one group per layer
  with attribute ``weight_names``), or a whole-model ``save`` file (the same under
  ``model_weights``, the architecture in the attribute ``model_config``). Weights are matched to
  the architecture's Conv2D and Dense layers in order, as Keras' ``load_weights`` does.
- architecture: a ``Sequential`` config (Keras 2.1's list of layers or the later
  ``{"layers": [...]}``), or a functional ``Model`` whose layers form a single chain.

Layers: ``InputLayer``, ``Conv2D`` (stride 1, square kernel, ``same`` or ``valid``),
``MaxPooling2D`` (2x2, stride 2), ``GlobalAveragePooling2D``, ``Flatten``, ``Dense``,
``Activation``, ``LeakyReLU``, ``Dropout``; activations ``relu``, ``linear``, ``tanh``,
``sigmoid``, and ``softmax`` on the output. Anything else is refused with a :class:`KerasError`
that names the file and the layer.

Conventions, made explicit:

- Logits: our models return logits. A softmax output (``Dense(activation="softmax")`` or a last
  ``Activation("softmax")``) is dropped: the logits are the last Dense layer's output before it.
- Channel order: our models take NHWC images. A channel-first input ``(C, H, W)`` becomes the
  image shape ``(H, W, C)``. Keras' ``Flatten`` flattens a tensor in memory order, ``(c, h, w)``
  for a channel-first one (unless the layer says ``data_format="channels_first"``: then it moves
  the channels last first); our models flatten ``(h, w, c)``, so the rows of the Dense kernel
  after such a Flatten are permuted. With one channel the two orders coincide.
- Kernels: Keras 2 stores ``Conv2D`` kernels as ``(kh, kw, in, out)`` whatever the backend,
  which is Flax's layout. TensorFlow correlates and Theano convolves (flips the kernel), so the
  kernels of a file saved by the Theano backend (its ``backend`` attribute) are flipped, as
  Keras 2's own ``preprocess_weights_for_loading`` does when the backends differ.

References:
    Chollet et al., Keras 2 (``keras/engine/saving.py``: the HDF5 layout;
    ``keras/layers/core.py``: ``Flatten``); the files of DeepXplore (Pei et al., SOSP 2017) and
    DeepFault (Eniser et al., FASE 2019), which this module reads as published.
"""

import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np

__all__ = ["SUPPORTED_LAYERS", "KerasError", "KerasPlan", "KerasWeights", "read",
           "read_architecture", "read_weights", "weighted_layers", "write"]

SUPPORTED_LAYERS = ("InputLayer", "Conv2D", "MaxPooling2D", "GlobalAveragePooling2D", "Flatten",
                    "Dense", "Activation", "LeakyReLU", "Dropout")
_ACTIVATIONS = ("relu", "linear", "tanh", "sigmoid")
_KERAS_VERSION = "2.2.4"  # the Keras 2 file format that write produces


class KerasError(ValueError):
    """A Keras file is missing, truncated or corrupt, or describes a model that is not read."""


class KerasPlan(NamedTuple):
    """A Keras model as a :class:`workbench.models.Sequential` plan plus its weights."""

    layers: tuple[tuple, ...]  # plan: ("conv", filters, kernel, padding, act), ("dense", n, act)..
    input_shape: tuple[int, int, int]  # (height, width, channels) of the NHWC images taken
    weights: tuple[tuple, ...]  # per layer: () or (kernel, bias or None), in Flax's layout
    names: tuple[str, ...]  # the Keras layer each plan layer comes from
    use_bias: bool  # whether any Dense layer has a bias (the others get zeros)


class KerasWeights(NamedTuple):
    """The contents of a Keras 2 weights file."""

    layers: dict[str, tuple[np.ndarray, ...]]  # layer name -> its arrays, in the file's order
    backend: str | None  # "tensorflow", "theano", ... as recorded by Keras
    model_config: dict | None  # the architecture of a whole-model file, else None


def _strings(values) -> list[str]:
    if values is None:
        return []
    array = np.atleast_1d(np.asarray(values))
    if array.size == 0:
        return []
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array]


def _attr_text(value) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_weights(path: str | os.PathLike) -> KerasWeights:
    """Reads a Keras 2 HDF5 weights (or whole-model) file with h5py.

    Raises:
        KerasError: the file is missing, not HDF5, truncated or corrupt, or not laid out as
            Keras 2 saves weights; the message names the file and the problem.
    """
    path = Path(path)
    if path.is_dir():
        raise KerasError(f"{path} is a directory, not an HDF5 weights file")
    if not path.is_file():
        raise KerasError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as file:
            root = file.get("model_weights", file)
            if "layer_names" not in root.attrs:
                raise KerasError(f"{path}: not a Keras 2 weights file (no 'layer_names' "
                                 f"attribute; Keras 3 '.weights.h5' files are not read)")
            layers = {}
            for name in _strings(root.attrs["layer_names"]):
                if name not in root:
                    raise KerasError(f"{path}: layer {name!r} is listed but has no group "
                                     f"(truncated or corrupt file)")
                group = root[name]
                arrays = []
                for weight in _strings(group.attrs.get("weight_names")):
                    if weight not in group:
                        raise KerasError(f"{path}: layer {name!r} lists weight {weight!r} but "
                                         f"holds none (truncated or corrupt file)")
                    arrays.append(np.asarray(group[weight][()]))
                layers[name] = tuple(arrays)
            backend = _attr_text(root.attrs.get("backend", file.attrs.get("backend")))
            config_text = _attr_text(file.attrs.get("model_config"))
    except KerasError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as error:
        raise KerasError(f"{path}: not a readable HDF5 file, truncated or corrupt "
                         f"({type(error).__name__}: {error})") from None
    for name, arrays in layers.items():
        for array in arrays:
            if not np.issubdtype(array.dtype, np.floating):
                raise KerasError(f"{path}: layer {name!r} holds {array.dtype} weights, not "
                                 f"floating point")
            if not np.isfinite(array).all():
                raise KerasError(f"{path}: layer {name!r} holds NaN or infinite weights "
                                 f"(a diverged training run, or a corrupt file)")
    model_config = None
    if config_text is not None:
        model_config = _parse_json(config_text, f"{path} (attribute model_config)")
    return KerasWeights(layers, backend, model_config)


def _parse_json(text: str, source: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise KerasError(f"{source}: not valid JSON ({error})") from None


def read_architecture(path: str | os.PathLike) -> list[tuple[str, dict]]:
    """Reads a Keras 2 architecture JSON (``model.to_json()``) as data.

    Returns:
        The layers in order, as ``(class_name, config)`` pairs.

    Raises:
        KerasError: the file is missing, not JSON, or not a Sequential config or a single-chain
            functional one.
    """
    path = Path(path)
    if path.is_dir():
        raise KerasError(f"{path} is a directory, not an architecture JSON file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise KerasError(f"{path}: cannot read ({error})") from None
    return _layers_of(_parse_json(text, str(path)), str(path))


def _layers_of(config, source: str) -> list[tuple[str, dict]]:
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise KerasError(f"{source}: not a Keras model config (no 'class_name' and 'config')")
    kind, body = config["class_name"], config["config"]
    if kind == "Sequential":
        layers = body if isinstance(body, list) else body.get("layers") if isinstance(
            body, dict) else None
    elif kind in ("Model", "Functional"):
        layers = body.get("layers") if isinstance(body, dict) else None
    else:
        raise KerasError(f"{source}: a {kind!r} model is not read; only Sequential models and "
                         f"functional models that are a single chain of layers")
    if not isinstance(layers, list) or not layers:
        raise KerasError(f"{source}: the {kind} config lists no layers")
    result = []
    for index, layer in enumerate(layers):
        if not (isinstance(layer, dict) and isinstance(layer.get("class_name"), str)
                and isinstance(layer.get("config"), dict)):
            raise KerasError(f"{source}: layer {index} is not a {{class_name, config}} entry")
        result.append((layer["class_name"], layer["config"]))
    if kind != "Sequential":
        _check_chain(layers, source)
    return result


def _check_chain(layers: list[dict], source: str) -> None:
    previous = None
    for layer in layers:
        name = layer["config"].get("name")
        nodes = layer.get("inbound_nodes") or []
        try:
            inbound = [entry[0] for node in nodes for entry in node]
        except (TypeError, IndexError, KeyError):
            raise KerasError(f"{source}: layer {name!r}: inbound nodes not in the Keras 2 "
                             f"format") from None
        expected = [] if previous is None else [previous]
        if inbound != expected:
            raise KerasError(f"{source}: layer {name!r} takes {inbound or 'no input'}, not "
                             f"{expected or 'the model input'}: only single-chain models are "
                             f"read")
        previous = name


def weighted_layers(weights: KerasWeights) -> list[tuple[str, tuple[np.ndarray, ...]]]:
    """The layers of a weights file that hold weights, in order, as float32 arrays in Flax's
    layout: convolution kernels of a Theano-saved file flipped (see the module docstring)."""
    result = []
    for name, arrays in weights.layers.items():
        if not arrays:
            continue
        arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
        if weights.backend == "theano" and arrays[0].ndim == 4:
            arrays[0] = np.ascontiguousarray(arrays[0][::-1, ::-1])
        result.append((name, tuple(arrays)))
    return result


def _activation(value, name: str, source: str):
    if value in _ACTIVATIONS or value == "softmax":
        return value
    raise KerasError(f"{source}: layer {name!r}: activation {value!r} is not supported; "
                     f"supported: {', '.join(_ACTIVATIONS)}, and softmax on the output")


def _leaky(config: dict):
    alpha = float(config.get("alpha", config.get("negative_slope", 0.3)))  # Keras' default
    return "leaky" if abs(alpha - 0.01) <= 1e-6 else ("leaky", alpha)


def _pair(value, default):
    value = default if value is None else value
    return tuple(value) if isinstance(value, list | tuple) else (value, value)


def _input_shape(layers, input_shape, data_format, source):
    """The Keras input shape and its layout, resolved to our NHWC image shape."""
    declared = None
    for key in ("batch_input_shape", "batch_shape"):
        if key in layers[0][1]:
            declared = tuple(layers[0][1][key][1:])
    formats = {cfg["data_format"] for cls, cfg in layers
               if cls in ("Conv2D", "MaxPooling2D", "GlobalAveragePooling2D")
               and cfg.get("data_format")}
    if len(formats) > 1:
        raise KerasError(f"{source}: layers mix data formats {sorted(formats)}")
    if data_format is not None and formats and data_format not in formats:
        raise KerasError(f"{source}: data_format={data_format!r} given, but the layers say "
                         f"{formats.pop()!r}")
    data_format = data_format or (formats.pop() if formats else None)
    if declared is None:
        if input_shape is None:
            raise KerasError(f"{source}: the architecture declares no input shape; pass "
                             f"input_shape=(height, width, channels)")
        declared = tuple(input_shape)
        if data_format == "channels_first":
            declared = (declared[2], declared[0], declared[1])
    if any(not isinstance(d, int) or d < 1 for d in declared):
        raise KerasError(f"{source}: input shape {declared} is not fixed; pass input_shape")
    if len(declared) == 1:
        if input_shape is None or int(np.prod(input_shape)) != declared[0]:
            raise KerasError(f"{source}: the input is a flat vector of {declared[0]} values; pass "
                             f"input_shape=(height, width, channels) with that many values (the "
                             f"vector is taken to be the NHWC image flattened row-major)")
        return tuple(input_shape), False, None
    if len(declared) == 2:
        shape, first = (*declared, 1), False
    elif len(declared) == 3:
        if data_format is None:
            data_format = _guess_format(declared, source)
        first = data_format == "channels_first"
        shape = (declared[1], declared[2], declared[0]) if first else declared
    else:
        raise KerasError(f"{source}: input shape {declared} is not an image or a vector")
    if input_shape is not None and tuple(input_shape) != shape:
        raise KerasError(f"{source}: input_shape={tuple(input_shape)} given, but the "
                         f"architecture takes images of shape {shape} (NHWC)")
    return shape, first, shape


def _guess_format(shape, source) -> str:
    # The channel axis is the short one at either end: (1, 28, 28) or (28, 28, 1).
    first_small = shape[0] <= 4 and shape[0] < min(shape[1], shape[2])
    last_small = shape[2] <= 4 and shape[2] < min(shape[0], shape[1])
    if first_small != last_small:
        return "channels_first" if first_small else "channels_last"
    raise KerasError(f"{source}: cannot tell whether input shape {shape} is channel-first or "
                     f"channel-last; pass data_format='channels_first' or 'channels_last'")


def read(architecture: str | os.PathLike | None, weights: str | os.PathLike, *,
         input_shape: tuple[int, int, int] | None = None,
         data_format: str | None = None) -> KerasPlan:
    """Reads a Keras 2 model (architecture JSON + HDF5 weights) into a :class:`KerasPlan`.

    Args:
        architecture: the JSON of ``model.to_json()``, or None for a whole-model HDF5 file that
            carries its own (``model_config``).
        weights: the HDF5 file of ``model.save_weights()`` or ``model.save()``.
        input_shape: ``(height, width, channels)``: needed only for a model whose input is a flat
            vector or undeclared; otherwise checked against the architecture.
        data_format: ``"channels_first"`` or ``"channels_last"``: the layout of a 3-D input, when
            no layer declares it (a Flatten-first model). Left out, the short axis at either end
            is the channel axis, and an ambiguous shape is refused.

    Raises:
        KerasError: an unreadable or corrupt file, an unsupported layer or setting, or weights
            whose count or shapes do not fit the architecture; the message names the file and
            the layer.
    """
    if data_format not in (None, "channels_first", "channels_last"):
        raise ValueError(f"data_format must be 'channels_first', 'channels_last' or None, got "
                         f"{data_format!r}")
    stored = read_weights(weights)
    if architecture is None:
        if stored.model_config is None:
            raise KerasError(f"{weights}: holds weights only (no 'model_config'); give the "
                             f"architecture JSON too, or the zoo model they belong to")
        source = f"{weights} (model_config)"
        layers = _layers_of(stored.model_config, source)
    else:
        source = str(architecture)
        layers = read_architecture(architecture)
    for class_name, config in layers:
        if class_name not in SUPPORTED_LAYERS:
            raise KerasError(f"{source}: layer {config.get('name')!r} ({class_name}) is not "
                             f"supported; supported layers: {', '.join(SUPPORTED_LAYERS)}")
    arrays = weighted_layers(stored)
    wanted = [cfg.get("name") for cls, cfg in layers if cls in ("Conv2D", "Dense")]
    if len(arrays) != len(wanted):
        raise KerasError(
            f"{weights}: holds weights for {len(arrays)} layers "
            f"({', '.join(n for n, _ in arrays) or 'none'}), but {source} has {len(wanted)} "
            f"Conv2D/Dense layers ({', '.join(map(str, wanted))}): the weights belong to "
            f"another architecture")
    shape, first, image = _input_shape(layers, input_shape, data_format, source)
    return _walk(layers, iter(arrays), shape, first, image, source, str(weights))


def _take(arrays, name, kernel_shape, use_bias, source, weights_source):
    stored_name, values = next(arrays)
    expected = [kernel_shape] + ([(kernel_shape[-1],)] if use_bias else [])
    found = [v.shape for v in values]
    if found != [tuple(e) for e in expected]:
        raise KerasError(f"{weights_source}: layer {stored_name!r} holds arrays of shapes "
                         f"{found}, but layer {name!r} of {source} needs {expected}: the "
                         f"weights belong to another architecture")
    return values[0], (values[1] if use_bias else None)


def _walk(layers, arrays, shape, first, image, source, weights_source) -> KerasPlan:
    plan, weights, names = [], [], []
    height, width, channels = shape
    spatial = image is not None  # False: a flat vector of ``features`` values
    features = int(np.prod(shape))
    permutation = None  # rows of the next Dense kernel, after a channel-first Flatten
    open_layer = None  # the plan index a following Activation/LeakyReLU applies to
    any_bias = False

    def add(entry, values, name):
        plan.append(list(entry))
        weights.append(values)
        names.append(name)
        return len(plan) - 1

    def refuse(name, problem):
        raise KerasError(f"{source}: layer {name!r}: {problem}")

    for index, (class_name, config) in enumerate(layers):
        name = config.get("name", f"#{index}")
        after, open_layer = open_layer, None
        try:
            if class_name == "InputLayer":
                if index:
                    refuse(name, "an InputLayer inside the model")
            elif class_name == "Conv2D":
                if not spatial:
                    refuse(name, "Conv2D on a flat tensor")
                kernel = _pair(config["kernel_size"], None)
                if kernel[0] != kernel[1]:
                    refuse(name, f"kernel {kernel} is not square")
                if _pair(config.get("strides"), 1) != (1, 1):
                    refuse(name, f"strides {config.get('strides')} (only 1 is supported)")
                if (_pair(config.get("dilation_rate"), 1) != (1, 1)
                        or config.get("groups", 1) != 1):
                    refuse(name, "dilated or grouped convolutions are not supported")
                padding = str(config.get("padding", "valid")).upper()
                if padding not in ("SAME", "VALID"):
                    refuse(name, f"padding {config.get('padding')!r}")
                size, filters = int(kernel[0]), int(config["filters"])
                use_bias = bool(config.get("use_bias", True))
                k, b = _take(arrays, name, (size, size, channels, filters), use_bias, source,
                             weights_source)
                if padding == "VALID":
                    height, width = height - size + 1, width - size + 1
                    if height < 1 or width < 1:
                        refuse(name, "the kernel is larger than its input")
                channels = filters
                act = _activation(config.get("activation", "linear"), name, source)
                bias = b if b is not None else np.zeros(filters, np.float32)
                open_layer = add(("conv", filters, size, padding, act), (k, bias), name)
            elif class_name == "MaxPooling2D":
                if not spatial:
                    refuse(name, "pooling a flat tensor")
                pool = _pair(config.get("pool_size"), 2)
                strides = _pair(config.get("strides"), None)
                same = str(config.get("padding", "valid")).lower() == "same"
                if pool != (2, 2) or strides not in ((None, None), (2, 2)) or (
                        same and (height % 2 or width % 2)):
                    refuse(name, f"pool_size {pool}, strides {config.get('strides')}, padding "
                                 f"{config.get('padding')!r} (only 2x2, stride 2, valid)")
                height, width = height // 2, width // 2
                add(("pool",), (), name)
            elif class_name == "GlobalAveragePooling2D":
                if not spatial or config.get("keepdims"):
                    refuse(name, "global pooling of a flat tensor, or with keepdims")
                add(("gap",), (), name)
                spatial, features, permutation = False, channels, None
            elif class_name == "Flatten":
                if not spatial:
                    refuse(name, "Flatten of a flat tensor")
                moves_channels = config.get("data_format") == "channels_first"
                if moves_channels and not first:
                    refuse(name, "data_format='channels_first' on a channel-last tensor")
                if first and not moves_channels:
                    permutation = np.arange(channels * height * width).reshape(
                        channels, height, width).transpose(1, 2, 0).reshape(-1)
                spatial, features = False, channels * height * width
            elif class_name == "Dense":
                if spatial:
                    refuse(name, "Dense on an image tensor (add a Flatten before it)")
                units = int(config["units"])
                use_bias = bool(config.get("use_bias", True))
                any_bias |= use_bias
                k, b = _take(arrays, name, (features, units), use_bias, source,
                             weights_source)
                if permutation is not None:
                    k, permutation = np.ascontiguousarray(k[permutation]), None
                act = _activation(config.get("activation", "linear"), name, source)
                open_layer = add(("dense", units, act), (k, b), name)
                features = units
            elif class_name in ("Activation", "LeakyReLU"):
                act = (_leaky(config) if class_name == "LeakyReLU"
                       else _activation(config.get("activation"), name, source))
                if act == "linear":
                    open_layer = after
                elif after is None:
                    refuse(name, "an activation must follow a Conv2D or Dense layer directly")
                elif plan[after][-1] != "linear":
                    refuse(name, f"a second activation after {names[after]!r}")
                else:
                    plan[after][-1] = act
                    names[after] = f"{names[after]}+{name}"
            elif class_name == "Dropout":
                add(("dropout", float(config.get("rate", 0.0))), (), name)
        except KerasError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            refuse(name, f"malformed {class_name} config ({error!r})")
    return _finish(plan, weights, names, shape, any_bias, source)


def _finish(plan, weights, names, shape, any_bias, source) -> KerasPlan:
    dense = [i for i, layer in enumerate(plan) if layer[0] == "dense"]
    if not dense:
        raise KerasError(f"{source}: no Dense layer: the model must end in one (the logits)")
    last = dense[-1]
    if any(layer[0] != "dropout" for layer in plan[last + 1:]):
        raise KerasError(f"{source}: layers after the last Dense layer {names[last]!r}")
    if plan[last][-1] not in ("linear", "softmax"):
        raise KerasError(f"{source}: the last Dense layer {names[last]!r} has activation "
                         f"{plan[last][-1]!r}; logits need 'linear' or 'softmax'")
    for i in range(last):
        if plan[i][-1] == "softmax":
            raise KerasError(f"{source}: layer {names[i]!r}: softmax on a hidden layer")
    plan[last] = plan[last][:2]
    keep = slice(0, last + 1)
    layers = tuple(tuple(layer) for layer in plan[keep])
    return KerasPlan(layers, tuple(shape), tuple(weights[keep]), tuple(names[keep]), any_bias)


# -------------------------------------------------------------------------------------- export
def _keras_config(plan: KerasPlan) -> tuple[list[dict], list[tuple[str, list]]]:
    """The Keras 2 layer configs of a plan, and the weighted layers' names and arrays."""
    counter: dict[str, int] = {}

    def name_for(kind):
        counter[kind] = counter.get(kind, 0) + 1
        return f"{kind}_{counter[kind]}"

    configs, stored, spatial = [], [], True
    last = len(plan.layers) - 1
    for index, (layer, arrays) in enumerate(zip(plan.layers, plan.weights)):
        op = layer[0]
        if op == "dense" and spatial:
            configs.append({"class_name": "Flatten", "config": {"name": name_for("flatten")}})
            spatial = False
        act = "softmax" if index == last else layer[-1]
        leaky = act == "leaky" or isinstance(act, tuple)
        if op in ("conv", "dense"):
            kind = "conv2d" if op == "conv" else "dense"
            name = name_for(kind)
            config = {"name": name, "activation": "linear" if leaky else act,
                      "use_bias": arrays[1] is not None}
            if op == "conv":
                config.update(filters=layer[1], kernel_size=[layer[2]] * 2, strides=[1, 1],
                              padding=layer[3].lower(), data_format="channels_last",
                              dilation_rate=[1, 1])
            else:
                config.update(units=layer[1])
            configs.append({"class_name": "Conv2D" if op == "conv" else "Dense",
                            "config": config})
            stored.append((name, [a for a in arrays if a is not None]))
            if leaky:
                alpha = 0.01 if act == "leaky" else act[1]
                configs.append({"class_name": "LeakyReLU",
                                "config": {"name": name_for("leaky_re_lu"), "alpha": alpha}})
        elif op == "pool":
            configs.append({"class_name": "MaxPooling2D", "config": {
                "name": name_for("max_pooling2d"), "pool_size": [2, 2], "strides": [2, 2],
                "padding": "valid", "data_format": "channels_last"}})
        elif op == "gap":
            configs.append({"class_name": "GlobalAveragePooling2D", "config": {
                "name": name_for("global_average_pooling2d"), "data_format": "channels_last"}})
            spatial = False
        elif op == "dropout":
            configs.append({"class_name": "Dropout",
                            "config": {"name": name_for("dropout"), "rate": layer[1]}})
        else:
            raise ValueError(f"plan layer {layer!r} has no Keras equivalent")
    configs[0]["config"]["batch_input_shape"] = [None, *plan.input_shape]
    configs[0]["config"]["dtype"] = "float32"
    return configs, stored


def _atomic(path: Path, write_to) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(handle)
    try:
        write_to(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write(plan: KerasPlan, weights: str | os.PathLike,
          architecture: str | os.PathLike | None = None) -> None:
    """Writes a plan as Keras 2 files: ``save_weights`` HDF5 and, if asked, the architecture
    JSON (a channel-last ``Sequential`` ending in softmax), each atomically.

    :func:`read` of the two files gives the same plan and weights back.
    """
    configs, stored = _keras_config(plan)
    names = [c["config"]["name"] for c in configs]
    weighted = dict(stored)

    def write_h5(target):
        with h5py.File(target, "w") as file:
            file.attrs["layer_names"] = np.array([n.encode() for n in names])
            file.attrs["backend"] = b"tensorflow"
            file.attrs["keras_version"] = _KERAS_VERSION.encode()
            for name in names:
                group = file.create_group(name)
                arrays = weighted.get(name, [])
                labels = [f"{name}/{w}:0" for w in ("kernel", "bias")[:len(arrays)]]
                group.attrs["weight_names"] = np.array([x.encode() for x in labels], dtype="S")
                for label, array in zip(labels, arrays):
                    group.create_dataset(label, data=np.asarray(array, np.float32))

    _atomic(Path(weights), write_h5)
    if architecture is not None:
        text = json.dumps({"class_name": "Sequential", "keras_version": _KERAS_VERSION,
                           "backend": "tensorflow",
                           "config": {"name": "sequential_1", "layers": configs}})
        _atomic(Path(architecture), lambda target: Path(target).write_text(text))
