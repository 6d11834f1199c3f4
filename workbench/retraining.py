"""Retraining with generated inputs: majority-vote labels and fine-tuning.

DeepXplore adds its difference-inducing inputs, labelled by the tested models' majority vote, to
the training data and compares the accuracy gained with adding as many random or adversarial
inputs (section 7.3, Figure 9: up to 3% for the MNIST LeNets). The confidence interval over
runs is :func:`workbench.stats.mean_interval`.

References:
    Pei et al., DeepXplore, SOSP 2017, section 7.3 ("Improving DNNs with DeepXplore").
"""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Bool, Int, Shaped

from workbench import activations, data, train, validation

__all__ = ["finetune_accuracy", "majority_vote"]


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
    if extra_labels.shape != (len(extra_images),) or (
            extra_labels.size and not np.issubdtype(extra_labels.dtype, np.integer)):
        raise ValueError(f"extra_labels must be int[{len(extra_images)}], one per extra image, "
                         f"got {extra_labels.dtype}{list(extra_labels.shape)}")
    augmented = data.Dataset(np.concatenate([base.images, extra_images]),
                             np.concatenate([base.labels, extra_labels.astype(np.int32)]),
                             base.class_names)
    # A separate model: merged back from a split, it would share the original's variables.
    graphdef, state = activations.split(model)
    copy = activations.merge(graphdef, jax.tree.map(jnp.copy, state))
    train.train(copy, augmented, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, seed=seed)
    return train.accuracy(copy, test)
