"""DeepXplore's experiments at toy size: the session's small LeNet-1 and LeNet-4 (one epoch on
5,000 MNIST images) on 200 test images, each row checked against a direct computation."""

import jax
import numpy as np
import pytest

from workbench import activations, data, differential, passes
from workbench.experiments import common, deepxplore

SETTINGS = deepxplore.settings("paper", weight_diff=1.0, weight_nc=0.1, step=10.0, iterations=5,
                               threshold=0.0, batch_size=16)


@pytest.fixture(scope="module")
def setup(data_root, trained):
    nets = {name: trained(name) for name in ("lenet1", "lenet4")}
    return nets, common.load_data("mnist", "test", n=200, root=data_root)


@pytest.fixture(scope="module")
def found(setup):
    nets, test = setup
    return deepxplore.difference_inducing(nets, test.images, transformations=["light"], n_runs=2,
                                          n_seeds=16, seed=3, settings=SETTINGS)


def _nc(net, inputs, t):
    masks = passes.deepxplore_coverage(net, inputs, threshold=t)
    return sum(m.sum() for m in masks.values()) / sum(m.size for m in masks.values())


def test_settings_variants_and_helpers():
    assert SETTINGS["target"] is None and SETTINGS["clip"] and SETTINGS["scores"] == "probabilities"
    code = deepxplore.settings("code")
    assert (code["target"], code["neuron_choice"], code["stop"], code["clip"]) == (0, "seed", "any",
                                                                                   False)
    assert deepxplore.transformation("occlusion", "paper") == "occlusion"
    assert deepxplore.transformation("occlusion", "code") is not None
    with pytest.raises(ValueError, match="unknown variant"):
        deepxplore.settings("keras")
    a = deepxplore.draw_seeds(10, 4, seed=1)
    assert a.tolist() == np.random.default_rng(1).choice(10, size=4, replace=False).tolist()
    assert sorted(deepxplore.draw_seeds(3, 9, seed=0).tolist()) == [0, 1, 2]
    test = data.Dataset(np.zeros((5, 2, 2, 1), np.float32), np.arange(5, dtype=np.int32), ("x",))
    judge, pool = deepxplore.held_out_halves(test)
    assert judge.labels.tolist() == [0, 1] and pool.labels.tolist() == [2, 3, 4]
    rows = deepxplore.environment(seconds=1.25)
    assert {r["item"] for r in rows} >= {"processor", "cores", "backend", "jax", "wall seconds"}
    with pytest.raises(ValueError, match="two or more models"):
        deepxplore.difference_inducing({"one": None}, np.zeros((1, 28, 28, 1), np.float32),
                                       transformations=["light"], n_runs=1, n_seeds=1, seed=0,
                                       settings=SETTINGS)


@pytest.mark.real_data
@pytest.mark.slow
def test_difference_inducing_counts_every_seed_per_target(setup, found):
    nets, test = setup
    assert {(r["clip"], r["run"]) for r in found.rows} == {(c, r) for c in (True, False)
                                                           for r in (0, 1)}
    for key, (result, index) in found.results.items():
        mine = [r for r in found.rows if (r["transformation"], r["clip"], r["run"]) == key]
        assert [r["target"] for r in mine] == ["lenet1", "lenet4", "all"]
        assert index.tolist() == deepxplore.draw_seeds(200, 16, seed=3 + key[2]).tolist()
        climbed = result.iterations > 0
        total = mine[-1]
        assert total["seeds"] == 16 == total["climbed"] + total["already_differ"]
        assert total["found"] == int(climbed.sum()) == mine[0]["found"] + mine[1]["found"]
        for k, row in enumerate(mine[:2]):
            assert row["seeds"] == int((result.seed_targets == k).sum())
            assert row["found"] == int((climbed & (result.targets == k)).sum())
            assert row["found_per_2000"] == pytest.approx(row["found"] / row["seeds"] * 2000)
            assert 0 <= row["survive_8bit"] <= row["found"]
        assert total["coverage"] == pytest.approx(float(np.mean(result.coverage_after)))
    # The clipped run of run 1 is generate itself on the same seeds and key.
    result, index = found.results["light", True, 1]
    direct = differential.generate(list(nets.values()), test.images[index],
                                   transformation="light", key=jax.random.key(4), **SETTINGS)
    np.testing.assert_array_equal(result.seed_index, direct.seed_index)
    shown = deepxplore.gallery(result, test.images[index], n=3)
    climbed = np.flatnonzero(result.iterations > 0)[:3]
    np.testing.assert_array_equal(shown["seeds"], test.images[index][result.seed_index[climbed]])
    assert shown["titles"] == [f"{result.predictions[0, i]}/{result.predictions[1, i]}"
                               for i in climbed]


@pytest.mark.real_data
@pytest.mark.slow
def test_coverage_experiments_match_a_direct_count(setup):
    nets, test = setup
    rows = deepxplore.coverage_vs_baselines(nets, test, thresholds=[0.0, 0.5], n_runs=1,
                                            n_seeds=16, seed=3, settings=SETTINGS, fraction=0.05)
    assert len(rows) == 2 * 2 * 3 and {r["inputs"] for r in rows if r["source"] != "deepxplore"} \
        == {10}
    pick = deepxplore.draw_seeds(200, 10, seed=3 + 100 + 1000)
    (random,) = [r for r in rows if (r["threshold"], r["model"], r["source"])
                 == (0.5, "lenet4", "random")]
    assert random["coverage"] == pytest.approx(_nc(nets["lenet4"], test.images[pick], 0.5))
    table6 = deepxplore.coverage_of_test_inputs(nets, test, n_runs=2, seed=0)
    assert [(r["inputs"], r["run"]) for r in table6 if r["model"] == "lenet1"] == [
        ("10 random", 0), ("10 random", 1), ("test set", 0)]
    whole = next(r for r in table6 if r["inputs"] == "test set" and r["model"] == "lenet4")
    assert whole["coverage"] == pytest.approx(_nc(nets["lenet4"], test.images, 0.75))


@pytest.mark.real_data
def test_activation_overlap_by_hand(setup):
    nets, test = setup
    rows = deepxplore.activation_overlap(nets, test, model="lenet1", n_runs=1, seed=0,
                                         thresholds=[0.0, 0.5], n_pairs=5)
    rng = np.random.default_rng(600)
    labels = np.asarray(test.labels)
    for kind, same in (("same class", True), ("different class", False)):
        pairs = []
        while len(pairs) < 5:
            a, b = rng.choice(200, size=2, replace=False)
            if (labels[a] == labels[b]) == same:
                pairs.append((a, b))
        acts = activations.trace(nets["lenet1"], test.images[np.ravel(pairs)],
                                 convention="deepxplore").acts
        values = np.concatenate([np.asarray(v) for v in acts.values()], axis=1)
        for t in (0.0, 0.5):
            (row,) = [r for r in rows if (r["pairs"], r["threshold"]) == (kind, t)]
            on = values.reshape(5, 2, -1) > t
            assert row["neurons"] == 52
            assert row["activated"] == pytest.approx(on.sum(2).mean())
            assert row["overlap"] == pytest.approx((on[:, 0] & on[:, 1]).sum(1).mean())
    with pytest.raises(ValueError, match="unknown model"):
        deepxplore.activation_overlap(nets, test, model="lenet5", n_runs=1, seed=0,
                                      thresholds=[0.0])


@pytest.mark.real_data
@pytest.mark.slow
def test_coverage_term_and_timings(setup):
    nets, test = setup
    rows = deepxplore.coverage_term(nets, test.images, n_runs=1, n_seeds=16, seed=0,
                                    settings=SETTINGS)
    assert [r["weight_nc"] for r in rows] == [0.0, 1.0]
    index = deepxplore.draw_seeds(200, 16, seed=200)
    direct = differential.generate(list(nets.values()), test.images[index], transformation="light",
                                   key=jax.random.key(200),
                                   **{**SETTINGS, "weight_nc": 1.0, "threshold": 0.25})
    climbed = direct.iterations > 0
    assert rows[1]["found"] == int(climbed.sum())
    change = np.abs(direct.inputs[climbed] - test.images[index][direct.seed_index[climbed]])
    assert rows[1]["diversity_l1"] == pytest.approx(change.reshape(climbed.sum(), -1).sum(1).mean())
    full = deepxplore.time_to_full_coverage(nets, test.images, n_runs=1, seed=0,
                                            settings=SETTINGS, max_seeds=6)
    assert [r["model"] for r in full] == ["lenet1", "lenet4"]
    for row in full:
        assert row["reached"] == (row["seeds"] is not None)
        if row["reached"]:
            assert 1 <= row["seeds"] <= 6 and row["seconds"] > 0 and row["iterations"] >= 0
    first = deepxplore.time_to_first_difference(nets, test.images, values={"step": [1.0, 10.0]},
                                                n_runs=2, seed=0, settings=SETTINGS, max_seeds=5)
    assert [(r["parameter"], r["value"], r["run"]) for r in first] == [
        ("step", v, r) for v in (1.0, 10.0) for r in (0, 1)]
    for row in first:
        assert 1 <= row["seeds"] <= 5 and (row["iterations"] >= 1 or not row["found"])
    with pytest.raises(ValueError, match="cannot vary 'threshold'"):
        deepxplore.time_to_first_difference(nets, test.images, values={"threshold": [0.5]},
                                            n_runs=1, seed=0, settings=SETTINGS)
