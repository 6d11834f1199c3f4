"""Optax training of the zoo, deterministic under a seed, with safe msgpack checkpoints.

Checkpoints hold the model's parameters and batch-norm statistics (``nnx.Param`` and
``nnx.BatchStat``) as a plain nested dict of arrays in Flax's msgpack serialisation
(``flax.serialization``), which stores data only: loading never runs code.
They are cached in one folder per user, :func:`default_cache` (``$WORKBENCH_CACHE``, else
``~/.cache/workbench/models`` or the platform's cache folder), keyed by model, dataset, epochs,
seed and training-set size, so a checkpoint trained from one folder is found from any other.

Recipes (``recipe(name)``) follow the papers: Adam with batch 32 for DeepFault's MNIST networks
(Eniser et al., FASE 2019, section 5.1), Adam with batch 128 for the LeNets (the DeepXplore
code used Adadelta, batch 256; Adam reaches the published accuracies in fewer epochs),
Adam with random flips and shifts for CIFAR-10, and for ``resnet20`` the ResNet paper's own
(He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, section 4.2): SGD with
momentum 0.9, weight decay 1e-4, batch 128, learning rate 0.1 divided by 10 at 32k and 48k
iterations, 64k iterations (164 epochs of 390 steps on the 50k training images), 4-pixel
padding, a random 32x32 crop and a random horizontal flip. The paper's per-pixel mean
subtraction is left out: every zoo model takes images in [0, 1].
"""

import functools
import hashlib
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization
from jaxtyping import Array, ArrayLike, Int, Shaped

from workbench import activations, data, files, models, validation

__all__ = [
    "TRAINING_VERSION",
    "Recipe",
    "TrainResult",
    "accuracy",
    "cache_path",
    "default_cache",
    "load",
    "load_or_train",
    "predict",
    "recipe",
    "save",
    "train",
    "training_digest",
]


class Recipe(NamedTuple):
    """How a zoo model is trained (the arguments of :func:`train`)."""

    epochs: int
    batch_size: int
    learning_rate: float
    augment: bool  # random horizontal flips and shifts of up to 4 pixels (CIFAR-10)
    optimizer: str = "adam"  # "adam" or "sgd"
    momentum: float = 0.0  # SGD's momentum
    weight_decay: float = 0.0  # L2 coefficient added to the gradient
    milestones: tuple[int, ...] = ()  # steps at which the learning rate is divided by 10


# He et al., CVPR 2016, section 4.2: 64k iterations of batch 128 are 164 epochs of 390 steps.
_RESNET = Recipe(epochs=164, batch_size=128, learning_rate=0.1, augment=True, optimizer="sgd",
                 momentum=0.9, weight_decay=1e-4, milestones=(32_000, 48_000))


class TrainResult(NamedTuple):
    """A trained model with what was measured while training it."""

    model: nnx.Module
    test_accuracy: float
    train_seconds: float
    cached: bool


def recipe(name: str) -> Recipe:
    """The training recipe of a zoo model (epochs, batch size, learning rate, augmentation).

    Example:
        >>> recipe("lenet5")[:4]
        (10, 128, 0.001, False)
        >>> recipe("resnet20").milestones
        (32000, 48000)
    """
    dataset = models.dataset_of(name)
    if name == "resnet20":
        return _RESNET
    if name.startswith("deepfault_") and dataset == "mnist":
        return Recipe(epochs=10, batch_size=32, learning_rate=1e-3, augment=False)
    if dataset == "mnist":
        return Recipe(epochs=10, batch_size=128, learning_rate=1e-3, augment=False)
    return Recipe(epochs=40, batch_size=128, learning_rate=1e-3, augment=True)


def _augment(key, images):
    """Random horizontal flip and a shift of up to 4 pixels (zero padded), per image."""
    flip_key, shift_key = jax.random.split(key)
    batch, height, width, _ = images.shape
    flip = jax.random.bernoulli(flip_key, 0.5, (batch, 1, 1, 1))
    images = jnp.where(flip, images[:, :, ::-1], images)
    padded = jnp.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    offsets = jax.random.randint(shift_key, (batch, 2), 0, 9)

    def crop(image, offset):
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0),
                                     (height, width, image.shape[-1]))

    return jax.vmap(crop)(padded, offsets)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _classes(graphdef, state, images) -> Int[Array, " batch"]:
    return jnp.argmax(activations.forward(graphdef, state, images), axis=-1).astype(jnp.int32)


def predict(model: nnx.Module, images: Shaped[ArrayLike, "batch ..."], *,
            batch_size: validation.Int = 1000) -> Int[np.ndarray, " batch"]:
    """Predicted classes of ``images`` in evaluation mode.

    Every batch has ``batch_size`` rows (the last one zero-padded and cut back), so one
    compilation per model structure serves every dataset.

    Args:
        model: an NNX model returning logits.
        images: ``(n, ...)`` floating-point inputs the model takes.
        batch_size: rows per forward pass.

    Returns:
        ``int32[n]``, the argmax of the logits.

    Example:
        >>> predict(models.create("lenet1", seed=0), np.zeros((3, 28, 28, 1), np.float32)).shape
        (3,)
    """
    batch_size = validation.positive_int(batch_size, "batch_size")
    graphdef, state = activations.split(model)
    activations.check_model_input((graphdef, state), images, "images")
    size = min(batch_size, len(images))
    parts = []
    for start in range(0, len(images), size):
        batch = np.asarray(images[start:start + size])
        real = len(batch)
        if real < size:
            batch = np.concatenate([batch, np.zeros((size - real, *batch.shape[1:]), batch.dtype)])
        parts.append(_classes(graphdef, state, batch)[:real])
    return np.concatenate([np.asarray(p) for p in parts])


def accuracy(model: nnx.Module, dataset: data.Dataset) -> float:
    """The fraction of ``dataset`` that ``model`` classifies correctly."""
    _check_dataset(dataset)
    return float(np.mean(predict(model, dataset.images) == dataset.labels))


def _check_dataset(dataset, name: str = "dataset") -> None:
    """A :class:`workbench.data.Dataset` (or a pair of fields ``images``, ``labels``) whose
    labels are ``int[n]`` for its ``n`` images."""
    if not (hasattr(dataset, "images") and hasattr(dataset, "labels")):
        raise ValueError(f"{name} must be a workbench.data.Dataset (images, labels, "
                         f"class_names), got {type(dataset).__name__}")
    n = len(dataset.images) if hasattr(dataset.images, "__len__") else None
    validation.labels(dataset.labels, n, f"{name}.labels", hint=" (one per image)")


def _check_labels(graphdef, state, dataset, shape) -> None:
    """Every label one of the model's outputs (cross-entropy would read past the logits)."""
    logits = jax.eval_shape(functools.partial(activations.forward, graphdef), state,
                            jax.ShapeDtypeStruct((1, *shape), jnp.float32))
    classes = int(logits.shape[-1])
    labels = np.asarray(dataset.labels)
    bad = (labels < 0) | (labels >= classes)
    if bad.any():
        index = int(np.argmax(bad))
        raise ValueError(f"dataset.labels[{index}] is {int(labels[index])}, not one of the "
                         f"model's {classes} classes (0..{classes - 1})")


@functools.cache
def _optimizer(name: str, learning_rate: float, momentum: float, weight_decay: float,
               milestones: tuple[int, ...]) -> optax.GradientTransformation:
    # One transformation object per setting: it is part of the optimizer's graphdef, so a
    # fresh one per call would make every call of ``train`` compile its step again.
    rate = (optax.piecewise_constant_schedule(learning_rate, dict.fromkeys(milestones, 0.1))
            if milestones else learning_rate)
    step = optax.adam(rate) if name == "adam" else optax.sgd(rate, momentum=momentum or None)
    # Coupled L2 decay, ``g + weight_decay * w`` before the momentum (Caffe's and Torch's SGD,
    # as the ResNet paper trained), on every parameter, batch-norm scales and biases included.
    return optax.chain(optax.add_decayed_weights(weight_decay), step) if weight_decay else step


def _loss(model, images, labels):
    logits = model(images)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


@functools.partial(jax.jit, static_argnames=("graphdef", "augment"), donate_argnums=(1,))
def _train_step(graphdef, state, key, images, labels, index, *, augment):
    """One optimizer step on the batch ``images[index]`` (batch norm on batch statistics,
    its running averages updated); returns the new state, key and loss."""
    model, optimizer = nnx.merge(graphdef, state)
    key, sub = jax.random.split(key)
    batch = images[index]
    if augment:
        batch = _augment(sub, batch)
    loss, grads = nnx.value_and_grad(_loss)(model, batch, labels[index])
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), key, loss


def train(model: nnx.Module, dataset: data.Dataset, *, epochs: validation.Int,
          batch_size: validation.Int,
          learning_rate: validation.Float = 1e-3, augment: bool = False, seed: validation.Int = 0,
          optimizer: str = "adam", momentum: validation.Float = 0.0,
          weight_decay: validation.Float = 0.0, milestones: tuple[int, ...] = (),
          progress: bool = False) -> nnx.Module:
    """Trains ``model`` in place on softmax cross-entropy and returns it.

    Deterministic under ``seed``: the shuffling, the dropout masks and the augmentation all
    derive from it. Each batch is one jitted step, compiled once per architecture and
    optimizer setting; the last incomplete batch of an epoch is dropped. Batch norm trains on
    batch statistics and updates its running averages; the model is returned in evaluation
    mode.

    Args:
        model: an NNX model returning logits.
        dataset: the training split.
        epochs, batch_size, learning_rate: the schedule.
        augment: random flips and shifts (for CIFAR-10).
        seed: the seed of everything random.
        optimizer: ``"adam"`` or ``"sgd"``.
        momentum: SGD's momentum (0: none).
        weight_decay: L2 coefficient added to every parameter's gradient (coupled, as in the
            ResNet paper's SGD).
        milestones: steps (counted over the whole run) at which the learning rate is divided
            by 10.
        progress: show a tqdm progress bar.
    """
    from tqdm.auto import tqdm

    epochs = validation.positive_int(epochs, "epochs")
    batch_size = validation.positive_int(batch_size, "batch_size")
    learning_rate = float(validation.scalar(learning_rate, "learning_rate", above=0.0))
    seed = validation.seed(seed)
    optimizer = validation.choice(optimizer, "optimizer", ("adam", "sgd"))
    momentum = float(validation.scalar(momentum, "momentum", minimum=0.0))
    if momentum >= 1.0:
        raise ValueError(f"momentum must be below 1, got {momentum}")
    weight_decay = float(validation.scalar(weight_decay, "weight_decay", minimum=0.0))
    if not isinstance(milestones, tuple) or not all(
            validation.is_int(m) and m > 0 for m in milestones) or list(milestones) != sorted(
            set(milestones)):
        raise ValueError(f"milestones must be a tuple of increasing positive ints (steps), got "
                         f"{milestones!r}")
    _check_dataset(dataset)
    parts = activations.split(model)
    shape = activations.check_model_input(parts, dataset.images, "dataset.images")
    _check_labels(*parts, dataset, shape)
    if len(dataset.images) < batch_size:
        raise ValueError(f"{len(dataset.images)} training examples is fewer than one batch "
                         f"of {batch_size}")
    model.train()
    transformation = _optimizer(optimizer, learning_rate, momentum, weight_decay,
                                tuple(int(m) for m in milestones))
    optimizer = nnx.Optimizer(model, transformation, wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    # Each step donates its state. Copy it first: the arrays may be shared with another model
    # (``nnx.clone`` shares them), whose buffers donation would otherwise delete.
    state = jax.tree.map(jnp.copy, state)

    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    steps = len(dataset.images) // batch_size
    images = jnp.asarray(dataset.images)
    labels = jnp.asarray(dataset.labels)
    # One jitted step per batch, not a ``lax.scan`` over batches: on XLA's CPU backend the
    # convolutions inside a loop body ran about 30 times slower than the same step on its own.
    with tqdm(total=epochs * steps, desc="train", unit="step", disable=not progress) as bar:
        for _ in range(epochs):
            order = rng.permutation(len(images))[: steps * batch_size]
            for index in order.reshape(steps, batch_size):
                state, key, loss = _train_step(graphdef, state, key, images, labels, index,
                                               augment=augment)
                bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.4f}")
    nnx.update((model, optimizer), state)
    model.eval()
    return model


def default_cache() -> Path:
    """The checkpoint folder used when none is given: ``$WORKBENCH_CACHE`` (a relative one
    under :func:`workbench.files.project_root`), else ``models/`` in this user's cache folder
    (:func:`workbench.files.cache_folder`, e.g. ``~/.cache/workbench/models`` on Linux), the
    same from every working directory."""
    given = os.environ.get("WORKBENCH_CACHE")
    if not given:
        return files.cache_folder() / "models"
    return Path(given) if Path(given).is_absolute() else files.project_root() / given


# Bumped whenever training gives other weights for the same model, recipe and seed (the loop,
# the data order, the initialisation): checkpoints of an older version are then not reused.
TRAINING_VERSION = 1


def training_digest(name: str) -> str:
    """Eight hex digits of SHA-256 over :data:`TRAINING_VERSION`, the zoo model's architecture
    (``models.spec``) and its :func:`recipe`: part of every checkpoint's name, so a changed
    model or recipe trains again instead of loading weights the code no longer makes.

    Example:
        >>> len(training_digest("lenet5")), training_digest("lenet5") == training_digest("lenet4")
        (8, False)
    """
    text = repr((TRAINING_VERSION, models.spec(name), tuple(recipe(name))))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def cache_path(name: str, dataset: str, *, epochs: validation.Int, seed: validation.Int,
               limit: validation.Int = None,
               cache: str | os.PathLike | None = None) -> Path:
    """Where the checkpoint of ``name`` trained on ``dataset`` for ``epochs`` under ``seed``
    (on the first ``limit`` training examples, if given) is; the name ends in the model's
    :func:`training_digest`."""
    epochs = validation.positive_int(epochs, "epochs")
    seed = validation.seed(seed)
    if limit is not None:
        limit = validation.positive_int(limit, "limit")
    folder = Path(cache) if cache else default_cache()
    subset = "" if limit is None else f"-n{limit}"
    return folder / f"{name}-{dataset}-e{epochs}-s{seed}{subset}-{training_digest(name)}.msgpack"


# What a checkpoint holds: the weights and batch norm's running averages.
_SAVED = nnx.Any(nnx.Param, nnx.BatchStat)


def save(model: nnx.Module, path: str | os.PathLike, *, metadata: dict | None = None) -> None:
    """Writes the model's parameters and batch statistics (and JSON-able ``metadata``) to
    ``path`` atomically (:func:`workbench.files.atomic_write`: a crash never leaves a truncated
    checkpoint)."""
    params = nnx.to_pure_dict(nnx.state(model, _SAVED))
    params = jax.tree.map(np.asarray, params)
    payload = serialization.msgpack_serialize(
        {"params": params, "metadata": json.dumps(metadata or {})})
    with files.atomic_write(path) as out:
        out.write(payload)


def load(model: nnx.Module, path: str | os.PathLike) -> tuple[nnx.Module, dict]:
    """Reads parameters and batch statistics saved by :func:`save` into ``model`` (same
    architecture).

    Returns:
        The model and the checkpoint's metadata.

    Raises:
        ValueError: the file is not a checkpoint, is truncated, or does not fit the model.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a checkpoint file")
    try:
        restored = serialization.msgpack_restore(path.read_bytes())
    except Exception as error:  # noqa: BLE001  (msgpack raises several unrelated types)
        raise ValueError(f"{path}: not a readable workbench checkpoint ({_reason(error)})"
                         ) from None
    if not isinstance(restored, dict) or not isinstance(restored.get("params"), dict):
        raise ValueError(f"{path}: not a workbench checkpoint (no 'params' table; it holds "
                         f"{type(restored).__name__})")
    params = restored["params"]
    try:
        metadata = json.loads(restored.get("metadata") or "{}")
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: the checkpoint's metadata is not JSON ({_reason(error)})"
                         ) from None
    state = nnx.state(model, _SAVED)
    model_params = nnx.to_pure_dict(state)
    expected = jax.tree.map(np.shape, model_params)
    found = jax.tree.map(np.shape, params)
    if expected != found:
        raise ValueError(f"{path}: checkpoint parameters do not fit this model")
    _check_values(params, model_params, path)
    nnx.replace_by_pure_dict(state, params)
    nnx.update(model, state)
    model.eval()
    return model, metadata


def _reason(error: BaseException) -> str:
    """An exception as text, never empty."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_values(params, model_params, path: Path) -> None:
    """Each stored array has the model's dtype and finite values (a diverged or foreign
    checkpoint loads otherwise, silently)."""
    stored = dict(jax.tree_util.tree_leaves_with_path(params))
    for key_path, wanted in jax.tree_util.tree_leaves_with_path(model_params):
        name = jax.tree_util.keystr(key_path)
        value = np.asarray(stored[key_path])
        if value.dtype != np.dtype(wanted.dtype):
            raise ValueError(f"{path}: parameter {name} is {value.dtype}, the model's is "
                             f"{np.dtype(wanted.dtype)}: not a checkpoint of this model")
        if not np.isfinite(value).all():
            bad = int(np.size(value) - np.isfinite(value).sum())
            raise ValueError(f"{path}: parameter {name} holds {bad} NaN or infinite values "
                             f"(a diverged training run?)")


_METADATA = ("test_accuracy", "train_seconds")


def load_or_train(name: str, dataset: str | None = None, *, epochs: validation.Int = None,
                  seed: validation.Int = 0, limit: validation.Int = None,
                  cache: str | os.PathLike | None = None,
                  root: str | os.PathLike | None = None, progress: bool = False) -> TrainResult:
    """A trained zoo model: loaded from the cache when there, else trained, tested and cached.

    Args:
        name: a zoo model (``models.names()``).
        dataset: defaults to the model's own dataset.
        epochs: defaults to the model's recipe.
        seed: initialisation and training seed.
        limit: train on the first ``limit`` training examples only (quick runs and tests).
        cache: checkpoint folder (default :func:`default_cache`: ``$WORKBENCH_CACHE``, else
            this user's cache folder).
        root: data folder (see :func:`workbench.data.load`).
        progress: show a progress bar while training.

    Returns:
        A :class:`TrainResult`: the model, its test accuracy, the training time in seconds
        (as recorded when it was trained) and whether it came from the cache.
    """
    dataset = dataset or models.dataset_of(name)
    if dataset != models.dataset_of(name):
        raise ValueError(f"model {name!r} is built for {models.dataset_of(name)}, not {dataset}")
    plan = recipe(name)
    epochs = plan.epochs if epochs is None else validation.positive_int(epochs, "epochs")
    path = cache_path(name, dataset, epochs=epochs, seed=seed, limit=limit, cache=cache)
    if path.exists() and not path.is_file():
        raise ValueError(f"{path} is a directory, not a checkpoint file: remove it")
    model = models.create(name, seed=seed)
    if path.is_file():
        model, meta = load(model, path)
        missing = [k for k in _METADATA if not isinstance(meta.get(k), (int, float))]
        if missing:
            raise ValueError(f"{path}: the checkpoint's metadata has no {', '.join(missing)} "
                             f"(not written by load_or_train?); delete it to train again")
        return TrainResult(model, meta["test_accuracy"], meta["train_seconds"], True)
    train_split = data.load(dataset, "train", root=root)
    if limit is not None:
        train_split = data.Dataset(train_split.images[:limit], train_split.labels[:limit],
                                   train_split.class_names)
    start = time.perf_counter()
    train(model, train_split, epochs=epochs, batch_size=plan.batch_size,
          learning_rate=plan.learning_rate, augment=plan.augment, seed=seed,
          optimizer=plan.optimizer, momentum=plan.momentum, weight_decay=plan.weight_decay,
          milestones=plan.milestones, progress=progress)
    seconds = time.perf_counter() - start
    test_accuracy = accuracy(model, data.load(dataset, "test", root=root))
    save(model, path, metadata={"model": name, "dataset": dataset, "epochs": epochs,
                                "seed": seed, "limit": limit, "test_accuracy": test_accuracy,
                                "train_seconds": seconds, "backend": jax.default_backend()})
    return TrainResult(model, test_accuracy, seconds, False)
