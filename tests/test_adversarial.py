"""FGSM against a NumPy reference on a linear model, and on a real LeNet."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import adversarial, models, train


def _linear():
    net = models.Sequential(plan=(("dense", 3),), input_shape=(2, 2, 1),
                            rngs=nnx.Rngs(params=0, dropout=0))
    net.logits.kernel[...] = jnp.asarray(np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5)
    net.logits.bias[...] = jnp.asarray([0.1, -0.2, 0.3], jnp.float32)
    return net


def _numpy_fgsm(net, x, labels, epsilon):
    w = np.asarray(net.logits.kernel[...])
    b = np.asarray(net.logits.bias[...])
    flat = x.reshape(len(x), -1)
    z = flat @ w + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(x)), labels] -= 1.0  # d CE / d logits = softmax - onehot
    grad = (p @ w.T).reshape(x.shape)
    return np.clip(x + epsilon * np.sign(grad), 0, 1)


def test_fgsm_matches_numpy_on_a_linear_model():
    net = _linear()
    x = np.random.default_rng(0).uniform(size=(5, 2, 2, 1)).astype(np.float32)
    labels = np.array([0, 1, 2, 1, 0])
    adv = adversarial.fgsm(net, x, labels, epsilon=0.05)
    np.testing.assert_allclose(adv, _numpy_fgsm(net, x, labels, 0.05), atol=1e-6)
    unclipped = adversarial.fgsm(net, x, labels, epsilon=2.0, clip=False)
    np.testing.assert_allclose(np.abs(unclipped - x), 2.0, atol=1e-5)


def test_fgsm_batches_like_one_call():
    net = _linear()
    x = np.random.default_rng(1).uniform(size=(7, 2, 2, 1)).astype(np.float32)
    labels = np.arange(7) % 3
    np.testing.assert_array_equal(adversarial.fgsm(net, x, labels, batch_size=3),
                                  adversarial.fgsm(net, x, labels, batch_size=100))


def test_fgsm_rejects_bad_input():
    net = _linear()
    x = np.zeros((2, 2, 2, 1), np.float32)
    with pytest.raises(ValueError, match="labels"):
        adversarial.fgsm(net, x, np.array([0]))
    with pytest.raises(ValueError, match="NaN"):
        adversarial.fgsm(net, x * np.nan, np.array([0, 1]))
    with pytest.raises(ValueError, match="epsilon"):
        adversarial.fgsm(net, x, np.array([0, 1]), epsilon=-1.0)


def test_fgsm_lowers_a_real_lenets_accuracy(trained, data_root):
    from workbench import data

    net = trained("lenet1")
    test = data.load("mnist", "test", root=data_root)
    x, y = test.images[:500], test.labels[:500]
    clean = np.mean(train.predict(net, x) == y)
    adv = adversarial.fgsm(net, x, y, epsilon=0.2)
    assert np.abs(adv - x).max() <= 0.2 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert np.mean(train.predict(net, adv) == y) < clean - 0.3
