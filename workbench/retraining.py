"""Retraining with generated inputs: majority-vote labels, fine-tuning, and finding polluted
training data by structural similarity.

DeepXplore adds its difference-inducing inputs, labelled by the tested models' majority vote, to
the training data and compares the accuracy after each epoch with adding as many random or
adversarial inputs (section 7.3, Figure 10). To detect polluted training data it compares the
inputs on which a clean and a polluted model disagree with the training images by SSIM
(:func:`ssim`, :func:`most_similar`). Intervals over runs: :func:`workbench.stats.mean_interval`.

References:
    Pei et al., DeepXplore, SOSP 2017, section 7.3 ("Improving DNNs with DeepXplore").
    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 13(4), 2004, equations (13), (16) and section III-C.
"""

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Shaped

from workbench import activations, data, train, validation

__all__ = ["finetune_accuracy", "finetune_curve", "majority_vote", "most_similar", "ssim"]


def majority_vote(predictions: Shaped[ArrayLike, "..."]
                  ) -> tuple[Int[np.ndarray, " n"], Bool[np.ndarray, " n"]]:
    """The class most models predict for each input, and whether it is a strict majority.

    Args:
        predictions: ``int[models, n]``, as :attr:`workbench.differential.Result.predictions`.

    Returns:
        ``(labels int32[n], majority bool[n])``: ``majority`` is true where one class has more
        than half the votes. Otherwise (three models, three classes; two against two) the label
        is the smallest most-voted class and ``majority`` is false, so the caller can drop it.

    Example:
        >>> labels, ok = majority_vote(np.array([[1, 2, 3], [1, 5, 4], [7, 5, 5]]))
        >>> labels.tolist(), ok.tolist()
        ([1, 5, 3], [True, True, False])
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or not np.issubdtype(predictions.dtype, np.integer):
        raise ValueError(f"predictions must be int[models, n], got {predictions.dtype}"
                         f"{list(predictions.shape)}")
    if predictions.size and predictions.min() < 0:
        raise ValueError(f"predictions must be non-negative class indices, got "
                         f"{int(predictions.min())}")
    models, n = predictions.shape
    classes = int(predictions.max()) + 1 if predictions.size else 1
    votes = np.zeros((n, classes), np.int64)
    np.add.at(votes, (np.broadcast_to(np.arange(n), predictions.shape), predictions), 1)
    labels = votes.argmax(axis=1).astype(np.int32)  # argmax: the first (smallest) of a tie
    return labels, votes.max(axis=1) * 2 > models


def finetune_accuracy(model: Any, base: data.Dataset,
                      extra_images: Shaped[ArrayLike, "extra ..."],
                      extra_labels: Shaped[ArrayLike, "..."] | Sequence[int],
                      test: data.Dataset, *,
                      epochs: int = 1, batch_size: int = 128, learning_rate: float = 1e-3,
                      seed: int = 0) -> float:
    """Test accuracy of a copy of ``model`` trained further on ``base`` plus the extra inputs.

    ``model`` itself is untouched. Adam restarts from fresh moments, as when one retrains a
    released model on augmented data.

    Args:
        model: a trained Flax NNX model.
        base: the original training data (or the part of it to reuse).
        extra_images: the inputs to add, shaped like ``base.images`` (may be empty).
        extra_labels: their labels, ``int[extra]``.
        test: where the accuracy is measured.
        epochs, batch_size, learning_rate, seed: the training run (see
            :func:`workbench.train.train`).

    Returns:
        The retrained copy's accuracy on ``test``.
    """
    augmented = _augmented(base, extra_images, extra_labels, epochs, batch_size)
    copy = _copy(model)
    train.train(copy, augmented, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, seed=seed)
    return train.accuracy(copy, test)


def finetune_curve(model: Any, base: data.Dataset, extra_images: Shaped[ArrayLike, "extra ..."],
                   extra_labels: Shaped[ArrayLike, "..."] | Sequence[int], test: data.Dataset,
                   *, epochs: int = 5, batch_size: int = 128, learning_rate: float = 1e-3,
                   seed: int = 0) -> list[float]:
    """Test accuracy of a copy of ``model`` after each epoch of training on ``base`` plus the
    extra inputs (DeepXplore's Figure 10: accuracy against retraining epochs).

    Each epoch is one :func:`workbench.train.train` call under seed ``seed + epoch``, so Adam's
    moments restart every epoch; ``model`` itself is untouched. Arguments as
    :func:`finetune_accuracy`.

    Returns:
        ``epochs`` accuracies on ``test``: after epoch 1, 2, ...

    References:
        DeepXplore, section 7.3 and Figure 10 (5 epochs, 100 extra inputs).
    """
    augmented = _augmented(base, extra_images, extra_labels, epochs, batch_size)
    copy = _copy(model)
    curve = []
    for epoch in range(epochs):
        train.train(copy, augmented, epochs=1, batch_size=batch_size,
                    learning_rate=learning_rate, seed=seed + epoch)
        curve.append(train.accuracy(copy, test))
    return curve


def _copy(model):
    # A separate model: merged back from a split, it would share the original's variables.
    graphdef, state = activations.split(model)
    return activations.merge(graphdef, jax.tree.map(jnp.copy, state))


def _augmented(base, extra_images, extra_labels, epochs, batch_size) -> data.Dataset:
    """``base`` plus the extra inputs, every argument checked before any work."""
    validation.positive_int(epochs, "epochs")
    validation.positive_int(batch_size, "batch_size")
    extra_images = np.asarray(extra_images, np.float32)
    if extra_images.size == 0:
        extra_images = extra_images.reshape(0, *base.images.shape[1:])
    if extra_images.ndim < 2 or extra_images.shape[1:] != base.images.shape[1:]:
        raise ValueError(f"extra_images must be (extra, *{base.images.shape[1:]}) like "
                         f"base.images, got shape {extra_images.shape}")
    validation.images(extra_images, "extra_images")
    extra_labels = np.asarray(extra_labels)
    if extra_labels.shape == (0,) == (len(extra_images),):
        extra_labels = extra_labels.astype(np.int32)  # no labels: ``[]`` is float64 in NumPy
    extra_labels = validation.labels(extra_labels, len(extra_images), "extra_labels",
                                     hint=", one per extra image")
    return data.Dataset(np.concatenate([base.images, extra_images]),
                        np.concatenate([base.labels, extra_labels.astype(np.int32)]),
                        base.class_names)


# --------------------------------------------------------------------------- SSIM


def _blur(x, window):
    """Separable Gaussian filter of ``(h, w, c)`` images, keeping only full windows ("valid")."""
    size = len(window)
    rows = sum(window[i] * x[i:x.shape[0] - size + 1 + i] for i in range(size))
    return sum(window[i] * rows[:, i:x.shape[1] - size + 1 + i] for i in range(size))


def _ssim_one(x, y, window, c1, c2):
    mx, my = _blur(x, window), _blur(y, window)
    sxx = _blur(x * x, window) - mx * mx
    syy = _blur(y * y, window) - my * my
    sxy = _blur(x * y, window) - mx * my
    index = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return index.mean()


def _constants(sigma, data_range, size):
    """The normalised Gaussian window and Wang et al.'s ``C1``, ``C2``."""
    offsets = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    window = jnp.exp(-offsets ** 2 / (2 * sigma ** 2))
    return window / window.sum(), (0.01 * data_range) ** 2, (0.03 * data_range) ** 2


@functools.partial(jax.jit, static_argnames=("size",))
def _ssim_pairs(x, y, sigma, data_range, *, size):
    window, c1, c2 = _constants(sigma, data_range, size)
    return jax.vmap(_ssim_one, in_axes=(0, 0, None, None, None))(x, y, window, c1, c2)


@jax.jit
def _best_match(queries, images):
    """``(n,)``: each image's highest SSIM with any query (window 11, sigma 1.5, range 1)."""
    window, c1, c2 = _constants(1.5, 1.0, 11)
    per_query = jax.vmap(_ssim_one, in_axes=(None, 0, None, None, None))
    return jax.lax.map(lambda q: per_query(q, images, window, c1, c2), queries).max(axis=0)


def ssim(x: Shaped[ArrayLike, "n h w c"], y: Shaped[ArrayLike, "n h w c"], *,
         data_range: float = 1.0, sigma: float = 1.5, size: int = 11) -> Float[Array, " n"]:
    """The structural similarity index of each pair ``(x[i], y[i])`` of images.

    Wang et al.'s mean SSIM: local means, variances and covariance under an ``size x size``
    Gaussian window of standard deviation ``sigma`` (11 and 1.5, as published), ``C1 = (0.01
    L)^2`` and ``C2 = (0.03 L)^2`` with ``L = data_range``, averaged over every position where
    the window fits and over channels. 1 for identical images.

    Example:
        >>> x = np.random.default_rng(0).uniform(size=(2, 16, 16, 1)).astype(np.float32)
        >>> np.round(np.asarray(ssim(x, x)), 4).tolist()
        [1.0, 1.0]

    References:
        Wang et al. 2004, equations (13) and (16), section III-C (the 11x11 Gaussian window).
    """
    x = np.asarray(validation.images(x, "x"), np.float32)
    y = np.asarray(validation.images(y, "y"), np.float32)
    size = validation.positive_int(size, "size")
    if x.ndim != 4 or x.shape != y.shape or min(x.shape[1:3]) < size:
        raise ValueError(f"x and y must be images (n, h, w, c) of one shape, at least {size} "
                         f"pixels high and wide, got {x.shape} and {y.shape}")
    return _ssim_pairs(jnp.asarray(x), jnp.asarray(y),
                       validation.scalar(sigma, "sigma", minimum=1e-6),
                       validation.scalar(data_range, "data_range", minimum=1e-6), size=size)


def most_similar(queries: Shaped[ArrayLike, "q h w c"], images: Shaped[ArrayLike, "n h w c"],
                 *, batch_size: int = 256) -> Float[np.ndarray, " n"]:
    """For each of ``images``, its highest :func:`ssim` (the published window and constants,
    data range 1) with any of ``queries``: how closely some query resembles it. DeepXplore's
    pollution detection ranks training images by it.

    Example:
        >>> x = np.random.default_rng(1).uniform(size=(3, 12, 12, 1)).astype(np.float32)
        >>> np.round(most_similar(x[:1], x), 4)[0]
        np.float32(1.0)
    """
    queries = np.asarray(validation.images(queries, "queries"), np.float32)
    images = np.asarray(validation.images(images, "images"), np.float32)
    batch_size = validation.positive_int(batch_size, "batch_size")
    if len(queries) == 0:
        raise ValueError("queries is empty: nothing to compare the images with")
    if min(images.shape[1:3]) < 11 or queries.shape[1:] != images.shape[1:]:
        raise ValueError(f"queries and images must be images of one shape, at least 11 pixels "
                         f"high and wide, got {queries.shape[1:]} and {images.shape[1:]}")
    best = []
    for start in range(0, len(images), batch_size):  # fixed-size chunks: one compilation
        chunk = images[start:start + batch_size]
        padded = np.concatenate([chunk, np.zeros((batch_size - len(chunk), *chunk.shape[1:]),
                                                 np.float32)])
        best.append(np.asarray(_best_match(jnp.asarray(queries), jnp.asarray(padded)))
                    [:len(chunk)])
    return np.concatenate(best) if best else np.zeros(0, np.float32)
