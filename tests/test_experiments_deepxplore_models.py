"""DeepXplore's experiments that train models, at toy size (a few hundred MNIST images, one
epoch), each row checked against a direct computation."""

import jax
import numpy as np
import pytest

from workbench import activations, differential, retraining, train
from workbench.experiments import common, deepxplore
from workbench.experiments import deepxplore_models as dm

SETTINGS = deepxplore.settings("paper", iterations=5, batch_size=8)


@pytest.fixture()
def cache(model_cache, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(model_cache))
    return model_cache


@pytest.fixture(scope="module")
def small(data_root):
    return (common.load_data("mnist", "train", n=512, root=data_root),
            common.load_data("mnist", "test", n=200, root=data_root))


def test_wider_lenet1_has_the_extra_filters():
    net = dm.wider_lenet1(2, seed=0)
    counts = activations.neuron_counts(net, (28, 28, 1), convention="deepxplore")
    assert counts == {"conv1": 6, "pool1": 6, "conv2": 14, "pool2": 14, "logits": 10,
                      "softmax": 10}
    again = dm.wider_lenet1(2, seed=0)
    x = np.random.default_rng(0).uniform(size=(2, 28, 28, 1)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(net(x)), np.asarray(again(x)))
    with pytest.raises(ValueError, match="extra"):
        dm.wider_lenet1(-1)


@pytest.mark.real_data
@pytest.mark.slow
def test_variants_and_their_differences(small, cache):
    training, test = small
    base, variants = dm.lenet1_variants(training, base_epochs=1, samples=[100], neurons=[1],
                                        epochs=[1, 2])
    assert sorted(variants) == [("neurons per layer", 1), ("training epochs", 1),
                                ("training epochs", 2), ("training samples", 100)]
    # Cached: a second call loads the same weights.
    again, variants2 = dm.lenet1_variants(training, base_epochs=1, samples=[100], neurons=[1],
                                          epochs=[1, 2])
    x = test.images[:4]
    np.testing.assert_array_equal(np.asarray(base(x)), np.asarray(again(x)))
    np.testing.assert_array_equal(np.asarray(variants["training epochs", 2](x)),
                                  np.asarray(variants2["training epochs", 2](x)))
    assert len(list(cache.glob("lenet1-table12-e1-s0-n512*.msgpack"))) == 5
    with pytest.raises(ValueError, match="must stay below the 512 training images"):
        dm.lenet1_variants(training, base_epochs=1, samples=[512])
    rows = dm.variant_differences(base, {k: variants[k] for k in [("training samples", 100)]},
                                  test.images, n_runs=2, n_seeds=6, seed=0, settings=SETTINGS,
                                  iterations=20)
    zero = [r for r in rows if r["difference"] == 0]
    assert [r["factor"] for r in zero] == ["training samples"] * 2
    assert all(r["found"] == 0 and r["mean_iterations"] is None for r in zero)  # the same model
    index = deepxplore.draw_seeds(200, 6, seed=701)
    direct = differential.generate([base, variants["training samples", 100]], test.images[index],
                                   transformation="light", key=jax.random.key(701),
                                   **{**SETTINGS, "iterations": 20})
    (row,) = [r for r in rows if r["difference"] == 100 and r["run"] == 1]
    assert row["found"] == int((direct.iterations > 0).sum())


@pytest.mark.real_data
@pytest.mark.slow
def test_retraining_curves(small, trained):
    training, test = small
    nets = {name: trained(name) for name in ("lenet1", "lenet4")}
    rows = dm.retraining_curves(nets, training, test, n_runs=1, n_seeds=16, seed=0,
                                settings=SETTINGS, n_retrain=4, epochs=2)
    assert {(r["model"], r["source"]) for r in rows} == {
        (m, s) for m in nets for s in dm.SOURCES}
    judge, _ = deepxplore.held_out_halves(test)
    for row in rows:
        assert row["epoch"] in (0, 1, 2) and row["added"] <= 4
        if row["epoch"] == 0:
            assert row["accuracy"] == pytest.approx(train.accuracy(nets[row["model"]], judge))
    added = {r["source"]: r["added"] for r in rows}
    assert added["random"] == added["adversarial"] == added["deepxplore"]


@pytest.mark.real_data
@pytest.mark.slow
def test_matching_models_pick_the_closest_accuracy(cache):
    chosen, rows = dm.matching_models(["lenet1"], {"lenet1": 0.5}, n_train_grid=[256, 512])
    accuracies = {r["n_train"]: r["accuracy"] for r in rows}
    best = min(accuracies, key=lambda n: abs(accuracies[n] - 0.5))
    assert [r["n_train"] for r in rows if r["chosen"]] == [best]
    assert chosen["lenet1"].test_accuracy == accuracies[best]


@pytest.mark.real_data
@pytest.mark.slow
def test_pollution_detection(small, cache):
    training, test = small
    rows = dm.pollution_detection(training, test, epochs=1, n_runs=1, n_seeds=8, seed=0,
                                  settings=SETTINGS, n_queries=4)
    (row,) = rows
    nines = int((training.labels == 9).sum())
    assert row["polluted"] == round(0.3 * nines) and row["seeds"] <= 8
    if row["queries"]:
        assert row["flagged"] == row["polluted"] and 0 <= row["identified"] <= row["polluted"]
        assert row["identified_share"] == pytest.approx(row["identified"] / row["polluted"])
    assert retraining.most_similar(test.images[:1], test.images[:3])[0] == pytest.approx(1.0)
