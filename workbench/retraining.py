"""Retraining with generated inputs: majority-vote labels, fine-tuning, confidence intervals.

DeepXplore adds its difference-inducing inputs, labelled by the tested models' majority vote, to
the training data and compares the accuracy gained with adding as many random or adversarial
inputs (section 7.3, Figure 9: up to 3% for the MNIST LeNets).

References:
    Pei et al., DeepXplore, SOSP 2017, section 7.3 ("Improving DNNs with DeepXplore").
"""

import numpy as np
from flax import nnx
from scipy import stats

from workbench import data, train

__all__ = ["majority_vote", "finetune_accuracy", "mean_interval"]


def majority_vote(predictions) -> tuple[np.ndarray, np.ndarray]:
    """The class most models predict for each input, and whether it is a strict majority.

    Args:
        predictions: ``int[models, n]``, as :attr:`workbench.differential.Result.predictions`.

    Returns:
        ``(labels int32[n], majority bool[n])``; where no class has more than half the votes
        (three models, three classes), the label is the smallest most-voted class and
        ``majority`` is false, so the caller can drop it.

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
        raise ValueError("predictions must be non-negative class indices")
    models, n = predictions.shape
    classes = int(predictions.max()) + 1 if predictions.size else 1
    votes = np.zeros((n, classes), np.int64)
    np.add.at(votes, (np.broadcast_to(np.arange(n), predictions.shape), predictions), 1)
    labels = votes.argmax(axis=1).astype(np.int32)
    return labels, votes.max(axis=1) * 2 > models


def finetune_accuracy(model: nnx.Module, base: data.Dataset, extra_images, extra_labels,
                      test: data.Dataset, *, epochs: int = 1, batch_size: int = 128,
                      learning_rate: float = 1e-3, seed: int = 0) -> float:
    """Test accuracy of a copy of ``model`` trained further on ``base`` plus the extra inputs.

    ``model`` itself is untouched. Adam restarts from fresh moments, as when one retrains a
    released model on augmented data.

    Args:
        model: a trained NNX model.
        base: the original training data (or the part of it to reuse).
        extra_images, extra_labels: the inputs to add and their labels (may be empty).
        test: where the accuracy is measured.
        epochs, batch_size, learning_rate, seed: the training run (see :func:`train.train`).

    Returns:
        The retrained copy's accuracy on ``test``.
    """
    extra_images = np.asarray(extra_images, np.float32).reshape(-1, *base.images.shape[1:])
    extra_labels = np.asarray(extra_labels, np.int32).reshape(-1)
    if len(extra_images) != len(extra_labels):
        raise ValueError(f"{len(extra_images)} extra images but {len(extra_labels)} labels")
    augmented = data.Dataset(np.concatenate([base.images, extra_images]),
                             np.concatenate([base.labels, extra_labels]), base.class_names)
    copy = nnx.clone(model)
    train.train(copy, augmented, epochs=epochs, batch_size=batch_size,
                learning_rate=learning_rate, seed=seed)
    return train.accuracy(copy, test)


def mean_interval(values, *, confidence: float = 0.95) -> tuple[float, float]:
    """The mean of ``values`` and the half-width of its Student-t confidence interval.

    Example:
        >>> mean, half = mean_interval([1.0, 2.0, 3.0])
        >>> round(mean, 3), round(half, 3)
        (2.0, 2.484)
    """
    values = np.asarray(values, np.float64).ravel()
    if len(values) == 0 or not np.isfinite(values).all():
        raise ValueError("values must be a non-empty array of finite numbers")
    if len(values) == 1:
        return float(values[0]), float("nan")
    sem = values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(sem * stats.t.ppf(0.5 + confidence / 2, len(values) - 1))
