"""Tests of workbench.cluster_coverage against TensorFuzz's sequential rule in NumPy."""

import numpy as np
import pytest

from workbench import cluster_coverage


def np_cluster(vectors, threshold, capacity):
    stored, new = [], []
    for v in vectors.astype(np.float64):
        far = all(np.linalg.norm(v - s) > threshold for s in stored)
        new.append(far and len(stored) < capacity)
        if new[-1]:
            stored.append(v)
    return np.array(new), len(stored)


@pytest.mark.parametrize("batch", [1, 5, 40])
def test_matches_numpy_and_batches_equal_one_pass(batch):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 3)).astype(np.float32)
    want, count = np_cluster(vectors, 1.0, capacity=30)
    corpus, got = cluster_coverage.init(3, capacity=30), []
    for start in range(0, 40, batch):
        corpus, new = cluster_coverage.update(corpus, vectors[start:start + batch],
                                              threshold=1.0)
        got.append(np.asarray(new))
    np.testing.assert_array_equal(np.concatenate(got), want)
    assert int(corpus.count) == count


def test_capacity_mask_and_order_dependence():
    v = np.array([[0.0], [0.6], [1.2]], np.float32)
    corpus, new = cluster_coverage.update(cluster_coverage.init(1, capacity=1), v,
                                          threshold=0.5)
    assert new.tolist() == [True, False, False] and int(corpus.count) == 1
    _, new = cluster_coverage.update(cluster_coverage.init(1, capacity=5), v, threshold=1.0,
                                     mask=np.array([False, True, True]))
    assert new.tolist() == [False, True, False]
    # The same set in another order covers more: the rule is order-dependent by definition.
    first, _ = cluster_coverage.update(cluster_coverage.init(1, capacity=5), v, threshold=1.0)
    second, _ = cluster_coverage.update(cluster_coverage.init(1, capacity=5), v[[0, 2, 1]],
                                        threshold=1.0)
    assert int(first.count) == 2 and int(second.count) == 2
    mid, _ = cluster_coverage.update(cluster_coverage.init(1, capacity=5), v[[1, 0, 2]],
                                     threshold=1.0)
    assert int(mid.count) == 1


def test_bad_input():
    with pytest.raises(ValueError, match="features"):
        cluster_coverage.update(cluster_coverage.init(2, capacity=3),
                                np.zeros((1, 3), np.float32), threshold=1.0)
