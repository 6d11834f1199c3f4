"""Tests of workbench.nlc: the NumPy covariance, running equals one-shot, and which of the
properties NLC's critics question hold."""

import jax
import numpy as np
import pytest

from workbench import nlc


def np_nlc(acts):
    """Yuan et al.'s NLC: per layer the mean absolute entry of the covariance (ddof 0)."""
    return sum(np.abs(np.cov(np.asarray(v, np.float64), rowvar=False, ddof=0)).mean()
               for v in acts.values())


def sample(seed, n=60):
    keys = jax.random.split(jax.random.key(seed), 2)
    return {"conv": jax.random.normal(keys[0], (n, 4)) * 2.0 + 1.0,
            "fc": jax.random.normal(keys[1], (n, 6)) @ jax.random.normal(keys[0], (6, 6))}


def test_one_shot_matches_numpy():
    acts = sample(0)
    assert float(nlc.neural_coverage(acts)) == pytest.approx(np_nlc(acts), rel=1e-5)


@pytest.mark.parametrize("batch", [1, 7, 60])
def test_running_equals_one_shot_for_any_batch_size_and_order(batch):
    acts = sample(1)
    order = np.random.default_rng(batch).permutation(60)
    state = nlc.init({"conv": 4, "fc": 6})
    for start in range(0, 60, batch):
        rows = order[start:start + batch]
        state = nlc.update(state, {s: v[rows] for s, v in acts.items()})
    assert float(nlc.value(state)) == pytest.approx(np_nlc(acts), rel=1e-4)
    assert float(state["fc"].count) == 60


def test_mask_skips_padding():
    acts = sample(2, n=10)
    padded = {s: np.concatenate([v, np.full((3, v.shape[1]), 99.0, np.float32)])
              for s, v in acts.items()}
    state = nlc.update(nlc.init({"conv": 4, "fc": 6}), padded,
                       mask=np.r_[np.ones(10, bool), np.zeros(3, bool)])
    assert float(nlc.value(state)) == pytest.approx(np_nlc(acts), rel=1e-5)


def test_not_monotone():
    """An input at the mean lowers every variance: NLC falls when it is added."""
    state = nlc.update(nlc.init({"fc": 1}), {"fc": np.array([[0.0], [2.0]], np.float32)})
    gain = float(nlc.increment(state, {"fc": np.array([[1.0]], np.float32)}))
    assert gain == pytest.approx(2 / 3 - 1, rel=1e-6) and gain < 0


def test_guided_selection_depends_on_order():
    """Keep a batch only if it raises NLC (the released fuzzer's rule): the batches kept, and
    the final NLC, depend on the order in which the same batches arrive."""
    batches = [np.array([[0.0], [2.0]], np.float32), np.array([[1.0]], np.float32),
               np.array([[1.0], [1.1]], np.float32), np.array([[10.0]], np.float32)]

    def guided(order):
        state, kept = nlc.init({"fc": 1}), []
        for i in order:
            if float(nlc.increment(state, {"fc": batches[i]})) > 0:
                state = nlc.update(state, {"fc": batches[i]})
                kept.append(i)
        return sorted(kept), float(nlc.value(state))

    first, second = guided([0, 1, 2, 3]), guided([2, 1, 0, 3])
    assert first != second
    assert first[0] == [0, 3] and second[0] == [0, 2, 3]


def test_bad_input():
    with pytest.raises(ValueError, match="sites"):
        nlc.update(nlc.init({"a": 2}), {"b": np.zeros((1, 2), np.float32)})
    with pytest.raises(ValueError, match="neurons"):
        nlc.update(nlc.init({"a": 2}), {"a": np.zeros((1, 3), np.float32)})
    with pytest.raises(ValueError, match="LayerMoments"):
        nlc.value({"a": np.zeros(3)})
