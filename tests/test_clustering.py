"""Tests of workbench.clustering against NumPy references."""

import jax
import numpy as np
import pytest

from workbench import clustering


def np_silhouette(x, labels):
    """Rousseeuw's silhouette, one point at a time (0 for a point alone in its cluster)."""
    dist = np.linalg.norm(x[:, None] - x[None], axis=2)
    out = []
    for i, li in enumerate(labels):
        own = (labels == li) & (np.arange(len(x)) != i)
        if not own.any():
            out.append(0.0)
            continue
        a = dist[i, own].mean()
        b = min(dist[i, labels == c].mean() for c in np.unique(labels) if c != li)
        out.append((b - a) / max(a, b))
    return float(np.mean(out))


def blobs(seed, n=90, k=3):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % k
    return (rng.normal(size=(n, 2)) * 0.3 + 6.0 * labels[:, None]).astype(np.float32), labels


def test_silhouette_matches_numpy():
    x, labels = blobs(0)
    rng = np.random.default_rng(1)
    for lab in (labels, rng.integers(0, 4, len(x)), np.r_[labels[:-1], 7]):
        assert clustering.silhouette(x, lab) == pytest.approx(np_silhouette(x, lab), rel=1e-4)


def test_kmeans_finds_the_blobs_and_weights_skip_padding():
    x, labels = blobs(2)
    fit = clustering.kmeans(x, k=3, key=jax.random.key(0))
    found = np.asarray(fit.labels)
    assert len({(a, b) for a, b in zip(labels, found)}) == 3  # a bijection of clusters
    centres = np.asarray(fit.centres)
    np.testing.assert_allclose(fit.inertia, ((x - centres[found]) ** 2).sum(), rtol=1e-4)
    padded = np.concatenate([x, np.full((10, 2), 100.0, np.float32)])
    weighted = clustering.kmeans(padded, k=3, key=jax.random.key(0),
                                 weight=np.r_[np.ones(90), np.zeros(10)])
    np.testing.assert_allclose(np.sort(np.asarray(weighted.centres), axis=0),
                               np.sort(centres, axis=0), rtol=1e-4)
    np.testing.assert_array_equal(clustering.assign(x, fit.centres), found)


def test_best_kmeans_picks_k_by_silhouette():
    x, _ = blobs(3, k=4)
    fit, scores = clustering.best_kmeans(x, [2, 3, 4, 5], key=jax.random.key(1))
    assert fit.centres.shape == (4, 2) and max(scores, key=scores.get) == 4
    assert scores[4] == pytest.approx(np_silhouette(x, np.asarray(fit.labels)), rel=1e-4)


def test_bad_input():
    x, _ = blobs(4)
    with pytest.raises(ValueError, match="k"):
        clustering.kmeans(x, k=1000, key=jax.random.key(0))
    with pytest.raises(ValueError, match="two clusters"):
        clustering.silhouette(x, np.zeros(len(x), np.int32))
    with pytest.raises(ValueError, match="ks"):
        clustering.best_kmeans(x, [1], key=jax.random.key(0))
