"""DeepXplore's experiments at toy size: the session's small LeNet-1 and LeNet-4 (one epoch on
5,000 MNIST images) on 200 test images; the tables on hand-made rows."""

import math

import jax
import numpy as np
import pytest

from workbench import data, differential, passes, stats, train
from workbench.experiments import common, deepxplore

SETTINGS = {"weight_diff": 1.0, "weight_nc": 0.1, "step": 10.0, "iterations": 5,
            "threshold": 0.0, "target": 0, "batch_size": 16}


@pytest.fixture(scope="module")
def setup(data_root, trained):
    nets = {name: trained(name) for name in ("lenet1", "lenet4")}
    return nets, common.load_data("mnist", "test", n=200, root=data_root)


@pytest.fixture(scope="module")
def found(setup):
    nets, test = setup
    return deepxplore.find(nets, test.images, transformations=["light"], n_runs=2, n_seeds=16,
                           seed=3, settings=SETTINGS)


def test_draw_seeds_and_halves():
    a = deepxplore.draw_seeds(10, 4, seed=1)
    assert a.tolist() == np.random.default_rng(1).choice(10, size=4, replace=False).tolist()
    assert sorted(deepxplore.draw_seeds(3, 9, seed=0).tolist()) == [0, 1, 2]
    test = data.Dataset(np.zeros((5, 2, 2, 1), np.float32), np.arange(5, dtype=np.int32), ("x",))
    judge, pool = deepxplore.held_out_halves(test)
    assert judge.labels.tolist() == [0, 1] and pool.labels.tolist() == [2, 3, 4]


def test_a_single_model_is_refused():
    with pytest.raises(ValueError, match="two or more models"):
        deepxplore.find({"one": None}, np.zeros((1, 28, 28, 1), np.float32),
                        transformations=["light"], n_runs=1, n_seeds=1, seed=0,
                        settings=SETTINGS)


@pytest.mark.real_data
@pytest.mark.slow
def test_find_counts_every_seed(setup, found):
    nets, test = setup
    assert [(r["transformation"], r["clip"], r["run"]) for r in found.rows] == [
        ("light", True, 0), ("light", True, 1), ("light", False, 0), ("light", False, 1)]
    for row in found.rows:
        result, index = found.results[row["transformation"], row["clip"], row["run"]]
        assert index.tolist() == deepxplore.draw_seeds(200, 16, seed=3 + row["run"]).tolist()
        assert row["seeds"] == 16 == row["climbed"] + row["already_differ"]
        assert row["found"] == int((result.iterations > 0).sum()) <= row["climbed"]
        assert row["found_fraction"] == pytest.approx(row["found"] / max(row["climbed"], 1))
        assert 0 <= row["survive_8bit"] <= row["found"]
        assert row["coverage"] == pytest.approx(float(np.mean(result.coverage_after)))
    # the same run's seeds and key: the clipped run is generate itself
    result, index = found.results["light", True, 1]
    direct = differential.generate(list(nets.values()), test.images[index], transformation="light",
                                   key=jax.random.key(4), **SETTINGS)
    np.testing.assert_array_equal(result.seed_index, direct.seed_index)
    table = deepxplore.found_table(found.rows)
    assert [(r["transformation"], r["clip"], r["n"]) for r in table] == [
        ("light", True, 2), ("light", False, 2)]
    assert table[0]["found"] == pytest.approx((found.rows[0]["found"] + found.rows[1]["found"]) / 2)


@pytest.mark.real_data
@pytest.mark.slow
def test_gallery(setup, found):
    _, test = setup
    result, index = found.results["light", True, 0]
    seeds, inputs, titles = deepxplore.gallery(result, test.images[index], n=3)
    climbed = np.flatnonzero(result.iterations > 0)[:3]
    assert seeds.shape == inputs.shape == (len(climbed), 28, 28, 1)
    np.testing.assert_array_equal(seeds, test.images[index][result.seed_index[climbed]])
    assert titles == [f"{result.predictions[0, i]}/{result.predictions[1, i]}" for i in climbed]


@pytest.mark.real_data
@pytest.mark.slow
def test_coverage_vs_baselines(setup, found):
    nets, test = setup
    ours = [found.results["light", True, run][0].inputs for run in range(2)]
    rows = deepxplore.coverage_vs_baselines(nets, test.images, test.labels, ours, fraction=0.05,
                                            fgsm_epsilon=0.1, threshold=0.0, seed=3)
    assert len(rows) == 2 * 2 * 3
    assert {(r["source"], r["inputs"]) for r in rows if r["source"] != "deepxplore"} \
        == {("random", 10), ("adversarial", 10)}
    pick = np.random.default_rng(1003).choice(200, size=10, replace=False)
    (random,) = [r for r in rows if (r["run"], r["model"], r["source"]) == (0, "lenet4", "random")]
    masks = passes.deepxplore_coverage(nets["lenet4"], test.images[pick])
    assert random["coverage"] == pytest.approx(sum(m.sum() for m in masks.values())
                                               / sum(m.size for m in masks.values()))
    table = deepxplore.coverage_table(rows)
    assert [(r["model"], r["source"], r["n"]) for r in table] == [
        (m, s, 2) for m in ("lenet1", "lenet4") for s in ("deepxplore", "random", "adversarial")]
    assert all(r["paper"] is None and 0.0 <= r["ours"] <= 1.0 for r in table)


@pytest.mark.real_data
@pytest.mark.slow
def test_sweep(setup):
    nets, test = setup
    seeds = test.images[:16]
    rows = deepxplore.sweep(nets, seeds, {"weight_nc": [0.0, 1.0], "step": [1.0]},
                            transformation="light", key=jax.random.key(0), settings=SETTINGS)
    assert [(r["parameter"], r["value"]) for r in rows] == [
        ("weight_nc", 0.0), ("weight_nc", 1.0), ("step", 1.0)]
    direct = differential.generate(list(nets.values()), seeds, transformation="light",
                                   key=jax.random.key(0), **{**SETTINGS, "step": 1.0})
    assert rows[2]["found"] == int((direct.iterations > 0).sum())
    assert rows[2]["coverage"] == pytest.approx(float(np.mean(direct.coverage_after)))
    with pytest.raises(ValueError, match="cannot sweep 'nope'"):
        deepxplore.sweep(nets, seeds, {"nope": [1.0]}, transformation="light",
                         key=jax.random.key(0), settings=SETTINGS)


@pytest.mark.real_data
@pytest.mark.slow
def test_retraining(setup, data_root):
    nets, test = setup
    base = common.load_data("mnist", "train", n=128, root=data_root)
    judge, pool = deepxplore.held_out_halves(test)
    rows = deepxplore.retraining(nets, base, pool, judge, n_runs=1, n_seeds=16, n_retrain=4,
                                 fgsm_epsilon=0.1, epochs=1, transformation="light", seed=0,
                                 settings=SETTINGS)
    assert [(r["model"], r["source"]) for r in rows] == [
        (m, s) for m in ("lenet1", "lenet4") for s in deepxplore.SOURCES]
    added = {r["source"]: r["added"] for r in rows}
    assert added["none"] == 0 and added["deepxplore"] <= 4
    assert added["random"] == added["adversarial"] == added["deepxplore"]
    for row in rows:
        assert row["before"] == pytest.approx(train.accuracy(nets[row["model"]], judge))
        assert row["gain"] == pytest.approx(row["after"] - row["before"])


def test_retraining_table_and_claims_by_hand():
    rows = [{"model": m, "source": s, "gain": g}
            for m, s, g in [("a", "none", 0.0), ("a", "none", 0.02), ("a", "deepxplore", 0.01),
                            ("a", "deepxplore", 0.03), ("a", "deepxplore", 0.05)]]
    none, ours = deepxplore.retraining_table(rows)
    assert (none["source"], none["runs"], none["paper"]) == ("none", 2, None)
    assert (ours["runs"], ours["paper"], ours["ours"]) == (3, 0.03, pytest.approx(0.03))
    assert ours["spread"] == pytest.approx(stats.mean_interval([0.01, 0.03, 0.05])[1])
    found = [{"transformation": "light", "clip": True, "found_fraction": 0.25,
              "inputs_per_second": 0.0},
             {"transformation": "light", "clip": False, "found": 0.0, "survive_8bit": 0.0}]
    claims = deepxplore.claims(found)
    assert [c["ours"] for c in claims] == [0.25, 0.0, None]
    assert claims[-1]["paper"] == deepxplore.PAPER["seconds_per_input"]
    coverage = deepxplore.coverage_table([{"model": "a", "source": "random", "run": 0,
                                           "inputs": 3, "coverage": 0.5}])
    assert coverage[0]["ours"] == 0.5 and math.isnan(coverage[0]["spread"])
