"""experiments.fuzzing at tiny sizes on a model made here: the paired runs, the tables against
hand computations from the rows, the curves and the gallery."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from workbench import activations, fuzzing, stats
from workbench.experiments import fuzzing as fx


class Mlp(nnx.Module):
    sites = ("h1", "h2")

    def __init__(self):
        rngs = nnx.Rngs(0)
        self.a = nnx.Linear(36, 10, rngs=rngs)
        self.b = nnx.Linear(10, 8, rngs=rngs)
        self.out = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.a(x.reshape(x.shape[0], -1)))
        self.sow(nnx.Intermediate, "h1", h)
        h = nnx.relu(self.b(h))
        self.sow(nnx.Intermediate, "h2", h)
        return self.out(h)


SETTINGS = {"budget": 64, "batch_size": 4, "mutants_per_seed": 8, "threshold": 0.5}


@pytest.fixture(scope="module")
def setup():
    model = Mlp()
    images = np.random.default_rng(0).random((20, 6, 6, 1)).astype(np.float32)
    labels = np.asarray(jnp.argmax(activations.trace(model, images).logits, axis=-1), np.int32)
    return model, images, labels


@pytest.fixture(scope="module")
def compared(setup):
    model, images, labels = setup
    return fx.compare(model, images, labels, criteria=["nc", "tknp"], n_runs=2, n_seeds=6,
                      seed=3, settings=SETTINGS)


def test_compare_pairs_the_modes(compared):
    rows = compared.rows
    assert [(r["criterion"], r["mode"], r["run"]) for r in rows] == [
        (c, m, run) for run in (0, 1) for c in ("nc", "tknp") for m in fx.MODES]
    for (criterion, mode, run), (result, index) in compared.results.items():
        other, other_index = compared.results[criterion, "random" if mode == "guided"
                                              else "guided", run]
        np.testing.assert_array_equal(index, other_index)  # the same seeds
        assert result.coverage_before == other.coverage_before
        assert result.mutants == 64
    for r in rows:
        assert r["coverage"] >= r["coverage_before"] and r["seeds_used"] == 6
        assert r["coverage_gain"] == pytest.approx(r["coverage"] - r["coverage_before"])
        assert r["distinct_seeds"] <= min(r["failures"], 6)
        assert r["distinct_classes"] <= r["distinct_pairs"] <= r["failures"]


def test_tables_from_the_rows(compared):
    rows = compared.rows
    summary = fx.summary_table(rows)
    assert [(s["criterion"], s["mode"], s["runs"]) for s in summary] == [
        ("nc", "guided", 2), ("nc", "random", 2), ("tknp", "guided", 2), ("tknp", "random", 2)]
    first = [r["failures"] for r in rows if r["criterion"] == "nc" and r["mode"] == "guided"]
    mean, half = stats.mean_interval(first)
    assert summary[0]["failures"] == mean and summary[0]["failures ci95"] == pytest.approx(half)
    differences = fx.difference_table(rows)
    assert len(differences) == 2 * 4
    d = differences[0]
    guided = [r["coverage_gain"] for r in rows if r["criterion"] == "nc" and r["mode"] == "guided"]
    random = [r["coverage_gain"] for r in rows if r["criterion"] == "nc" and r["mode"] == "random"]
    assert d["difference"] == pytest.approx(np.mean(np.subtract(guided, random)))
    assert d["finding"] in ("guided higher", "random higher", "no clear difference")
    assert [c["ours"] for c in fx.claims(differences)] == [
        d["difference"] for d in differences if d["metric"] in ("coverage_gain", "failures")]


def test_curves_and_gallery(compared, setup):
    _, images, _ = setup
    curves = fx.curves(compared.results, "nc")
    assert set(curves) == set(fx.MODES)
    mutants, coverage = curves["guided"]
    assert mutants.tolist() == [32.0, 64.0] and coverage.shape == (2,)
    result, index = next((r, i) for r, i in compared.results.values() if len(r.failures))
    seeds, failures, titles = fx.gallery(result, images[index], n=3)
    assert len(seeds) == len(failures) == len(titles) <= 3
    first = titles[0]
    i = int(np.flatnonzero(result.seed_index == result.seed_index.min())[0])
    assert first.startswith(f"{result.labels[i]}>{result.predictions[0, i]}: ")
    np.testing.assert_array_equal(seeds[0], images[index][result.seed_index[i]])
    assert len(fuzzing.chain(result, i)) == len(first.split(": ")[1].split(","))


def test_oracles(setup):
    model, images, labels = setup
    rows = fx.oracles(model, images, labels, precisions=["bfloat16"], n_seeds=6, seed=0,
                      settings=SETTINGS)
    assert [r["oracle"] for r in rows] == ["misclassification", "quantization (bfloat16)"]
    assert rows[0]["seeds_used"] == 6 and 0 < rows[1]["seeds_used"] <= 6
