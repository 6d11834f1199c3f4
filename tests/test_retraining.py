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


def test_finetune_curve_is_one_accuracy_per_epoch_and_leaves_the_model():
    model, base, extra, test = Tiny(), blobs(8, 0), blobs(256, 1), blobs(200, 2)
    curve = retraining.finetune_curve(model, base, extra.images, extra.labels, test, epochs=3,
                                      batch_size=8, learning_rate=0.1, seed=0)
    assert len(curve) == 3 and curve[-1] > 0.95
    # Epoch by epoch: the first epoch of the curve is a one-epoch fine-tune under seed 0.
    assert curve[0] == retraining.finetune_accuracy(model, base, extra.images, extra.labels,
                                                    test, epochs=1, batch_size=8,
                                                    learning_rate=0.1, seed=0)
    assert train.accuracy(model, test) == 0.5
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        retraining.finetune_curve(model, base, extra.images, extra.labels, test, epochs=0)


def _numpy_ssim(x, y, sigma=1.5, size=11, data_range=1.0):
    """Wang et al. 2004 on one (h, w) pair, by a plain sliding window."""
    offsets = np.arange(size) - (size - 1) / 2
    g = np.exp(-offsets ** 2 / (2 * sigma ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            a, b = x[i:i + size, j:j + size], y[i:i + size, j:j + size]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cov = (w * (a - ma) * (b - mb)).sum()
            values.append(((2 * ma * mb + c1) * (2 * cov + c2))
                          / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_the_published_definition():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 16, 14, 1))
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
    y[2] = 1 - x[2]  # an inverted image: negative structure
    ours = np.asarray(retraining.ssim(x, y))
    expected = [_numpy_ssim(a[..., 0], b[..., 0]) for a, b in zip(x, y)]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    assert ours[2] < 0 < ours[1] < 1
    np.testing.assert_allclose(np.asarray(retraining.ssim(x, x)), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(retraining.ssim(y, x)), ours, atol=1e-6)  # symmetric


def test_most_similar_takes_the_best_query_per_image():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(5, 12, 12, 1)).astype(np.float32)
    queries = np.stack([images[3], rng.uniform(size=(12, 12, 1)).astype(np.float32)])
    best = retraining.most_similar(queries, images, batch_size=2)  # 3 chunks, the last padded
    expected = [max(_numpy_ssim(q[..., 0], im[..., 0]) for q in queries) for im in images]
    np.testing.assert_allclose(best, expected, rtol=1e-4, atol=1e-5)
    assert int(np.argmax(best)) == 3 and best[3] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="queries is empty"):
        retraining.most_similar(images[:0], images)
    with pytest.raises(ValueError, match="at least 11 pixels"):
        retraining.ssim(images[:, :8], images[:, :8])
