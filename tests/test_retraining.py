"""Retraining: majority votes on hand-made predictions; fine-tuning a tiny model for real."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import data, retraining, train


def test_majority_vote_on_hand_made_predictions():
    predictions = np.array([[0, 1, 2, 3],
                            [0, 2, 1, 3],
                            [1, 2, 0, 4]])
    labels, majority = retraining.majority_vote(predictions)
    # 0,0,1 -> 0; 1,2,2 -> 2; 2,1,0 a three-way tie -> smallest, 0; 3,3,4 -> 3.
    assert labels.tolist() == [0, 2, 0, 3]
    assert majority.tolist() == [True, True, False, True]
    assert labels.dtype == np.int32 and majority.dtype == bool


def test_majority_vote_two_against_two_is_no_majority():
    labels, majority = retraining.majority_vote(np.array([[5, 7], [5, 7], [2, 7], [2, 1]]))
    assert labels.tolist() == [2, 7] and majority.tolist() == [False, True]


def test_majority_vote_of_one_model_and_of_no_inputs():
    labels, majority = retraining.majority_vote(jnp.array([[4, 0, 9]]))
    assert labels.tolist() == [4, 0, 9] and majority.all()
    labels, majority = retraining.majority_vote(np.zeros((3, 0), np.int32))
    assert labels.shape == majority.shape == (0,)


@pytest.mark.parametrize("bad, message", [
    (np.array([1, 2, 3]), r"int\[models, n\], got int64\[3\]"),
    (np.array([[0.0, 1.0]]), r"int\[models, n\], got float64\[1, 2\]"),
    (np.array([[0, -1]]), "non-negative class indices, got -1"),
])
def test_majority_vote_rejects_bad_predictions(bad, message):
    with pytest.raises(ValueError, match=message):
        retraining.majority_vote(bad)


class Tiny(nnx.Module):
    """A linear classifier of 2x2 images into two classes, all weights zero: it predicts class 0
    for every input until trained."""

    def __init__(self):
        self.out = nnx.Linear(4, 2, kernel_init=nnx.initializers.zeros, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.out(x.reshape(x.shape[0], -1))


def blobs(n, seed, *, flip=False):
    """Class 1 is bright on the left column, class 0 on the right."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int32) % 2
    images = rng.uniform(0.0, 0.3, (n, 2, 2, 1)).astype(np.float32)
    images[labels == 1, :, 0] += 0.7
    images[labels == 0, :, 1] += 0.7
    return data.Dataset(images, (1 - labels) if flip else labels, ("0", "1"))


def test_finetune_accuracy_learns_from_the_extra_inputs_deterministically():
    model, base, extra, test = Tiny(), blobs(8, 0), blobs(256, 1), blobs(200, 2)
    weights = np.asarray(model.out.kernel.get_value()).copy()
    assert train.accuracy(model, test) == 0.5  # all zero: class 0 everywhere
    options = {"epochs": 3, "batch_size": 8, "learning_rate": 0.1, "seed": 0}
    helped = retraining.finetune_accuracy(model, base, extra.images, extra.labels, test,
                                          **options)
    assert helped > 0.95
    assert retraining.finetune_accuracy(model, base, extra.images, extra.labels, test,
                                        **options) == helped
    wrong = blobs(256, 1, flip=True)  # the same inputs, every label wrong
    assert retraining.finetune_accuracy(model, base, wrong.images, wrong.labels, test,
                                        **options) < 0.1
    np.testing.assert_array_equal(np.asarray(model.out.kernel.get_value()), weights)
    assert train.accuracy(model, test) == 0.5


def test_finetune_accuracy_with_nothing_added_trains_on_the_base_only():
    model, base, test = Tiny(), blobs(64, 0), blobs(200, 2)
    gained = retraining.finetune_accuracy(model, base, np.zeros((0, 2, 2, 1)), [], test,
                                          epochs=2, batch_size=8, learning_rate=0.1)
    assert gained > 0.95


def test_finetune_accuracy_rejects_mismatched_extras():
    model, base = Tiny(), blobs(8, 0)
    with pytest.raises(ValueError, match=r"extra_images must be \(extra, \*\(2, 2, 1\)\)"):
        retraining.finetune_accuracy(model, base, np.zeros((3, 4)), np.zeros(3, int), base)
    with pytest.raises(ValueError, match=r"extra_labels must be int\[3\]"):
        retraining.finetune_accuracy(model, base, np.zeros((3, 2, 2, 1)), np.zeros(2, int),
                                     base)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        retraining.finetune_accuracy(model, base, np.zeros((0, 2, 2, 1)), [], base, epochs=0)
    with pytest.raises(ValueError, match="extra_images contain NaN"):
        retraining.finetune_accuracy(model, base, np.full((1, 2, 2, 1), np.nan), [0], base)


def test_finetune_accuracy_takes_jax_arrays():
    model, base, extra, test = Tiny(), blobs(8, 0), blobs(64, 1), blobs(50, 2)
    from_numpy = retraining.finetune_accuracy(model, base, extra.images, extra.labels, test,
                                              batch_size=8, learning_rate=0.1)
    from_jax = retraining.finetune_accuracy(model, base, jnp.asarray(extra.images),
                                            jax.device_put(extra.labels), test, batch_size=8,
                                            learning_rate=0.1)
    assert from_numpy == from_jax
