"""The prioritisation experiment at tiny sizes: every prioritiser gets an APFD per set and
seed, and the summary has intervals."""

import numpy as np
import pytest

from workbench import models
from workbench.experiments import prioritisation as experiment


def test_every_prioritiser_on_a_tiny_untrained_model():
    rng = np.random.default_rng(0)
    net = models.create("lenet1", seed=0)
    train_x = rng.random((120, 28, 28, 1)).astype(np.float32)
    train_y = (np.arange(120) % 10).astype(np.int32)
    test_x = rng.random((40, 28, 28, 1)).astype(np.float32)
    test_y = rng.integers(0, 10, 40).astype(np.int32)
    rows = experiment.run(net, test_x, test_y, train_images=train_x, train_labels=train_y,
                          n_test=24, seeds=[0, 1], k_sections=3, sc_k=5)
    prioritisers = {r["prioritiser"] for r in rows}
    assert prioritisers == set(experiment.PRIORITISERS)
    assert {(r["set"], r["seed"]) for r in rows} == {("clean", 0), ("clean", 1), ("fgsm", 0),
                                                    ("fgsm", 1)}
    assert all(0.0 <= r["apfd"] <= 1.0 and r["inputs"] == 24 for r in rows)
    table = experiment.summary(rows)
    assert len(table) == 2 * len(experiment.PRIORITISERS)
    assert all(r["seeds"] == 2 and np.isfinite(r["apfd 95% half-width"]) for r in table)


@pytest.mark.real_data
@pytest.mark.filterwarnings("ignore:.*nnx.State.*:DeprecationWarning")
def test_softmax_prioritisers_beat_random_on_mnist(trained, data_root):
    from workbench import data
    net = trained("lenet1")
    mnist_train = data.load("mnist", "train", root=data_root)
    mnist_test = data.load("mnist", "test", root=data_root)
    rows = experiment.run(net, mnist_test.images[:2000], mnist_test.labels[:2000],
                          train_images=mnist_train.images[:2000],
                          train_labels=mnist_train.labels[:2000], n_test=400, seeds=[0])
    apfd = {(r["set"], r["prioritiser"]): r["apfd"] for r in rows}
    for name in ("clean", "fgsm"):
        assert apfd[(name, "deepgini")] > apfd[(name, "random")] + 0.1
