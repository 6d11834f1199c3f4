"""The quickstart tour's measurements on a tiny untrained MLP and hand-made results."""

import jax
import numpy as np
import pytest

from workbench import differential, models, synthesis
from workbench.experiments import quickstart


def test_coverage_ratios_with_and_without_dead_neurons():
    masks = {"nc": {"fc1": np.array([True, False, True]), "fc2": np.array([False, True])},
             "kmnc": {"fc1": np.array([[True, False]] * 3), "fc2": np.array([[True, True]] * 2)}}
    dead = {"fc1": np.array([False, True, False]), "fc2": np.array([True, False])}
    assert quickstart.coverage_ratios(masks, dead) == {"nc": 0.6, "kmnc": 0.7,
                                                       "nc (live neurons)": 1.0}
    assert "nc (live neurons)" not in quickstart.coverage_ratios({"kmnc": masks["kmnc"]}, dead)


def test_synthesise_is_synthesize_per_target_set():
    net = models.create("deepfault_3x50_relu", seed=0)
    seeds = np.asarray(jax.random.uniform(jax.random.key(0), (3, 28, 28, 1)))
    targets = {"suspicious": [("fc1", 0), ("fc3", 7)], "random": [("fc2", 1), ("fc2", 4)]}
    made = quickstart.synthesise(net, seeds, targets, step_size=1.0, d=0.1)
    assert list(made) == ["suspicious", "random"]
    for name, chosen in targets.items():
        direct = synthesis.synthesize(net, seeds, chosen, step_size=1.0, d=0.1)
        np.testing.assert_array_equal(np.asarray(made[name].inputs), np.asarray(direct.inputs))
        label = int(np.asarray(direct.predictions)[0])
        assert quickstart.synthesis_accuracy(made[name], label) == pytest.approx(
            np.mean(np.asarray(direct.predictions) == label))


def test_results_table():
    made = {"suspicious": synthesis.Synthesis(*([None] * 5), predictions=np.array([3, 3, 1, 3]),
                                              l1=None, l2=None, linf=None)}
    found = differential.Result(
        inputs=np.zeros((2, 28, 28, 1), np.float32), seed_index=np.array([0, 3]),
        predictions=np.array([[1, 2], [3, 2], [3, 4]]), iterations=np.array([0, 4]),
        coverage_before=np.array([0.1, 0.2, 0.3]), coverage_after=np.array([0.4, 0.5, 0.6]),
        covered=(), seeds_climbed=3, survives_quantisation=np.array([True, False]),
        targets=np.array([0, 1]), seed_targets=np.array([0, 2, 1, 1]))
    rows = quickstart.results(test_accuracy=0.97, ratios={"nc": 0.5}, made=made, label=3,
                              found=found, n_seeds=4, trio=["lenet1", "lenet4", "lenet5"])
    assert rows == [
        {"quantity": "test accuracy", "value": 0.97},
        {"quantity": "coverage: nc", "value": 0.5},
        {"quantity": "accuracy on inputs synthesised for suspicious neurons", "value": 0.75},
        {"quantity": "difference-inducing inputs per seed", "value": 0.5},
        {"quantity": "NC of lenet1 after DeepXplore", "value": 0.4},
        {"quantity": "NC of lenet4 after DeepXplore", "value": 0.5},
        {"quantity": "NC of lenet5 after DeepXplore", "value": 0.6}]
