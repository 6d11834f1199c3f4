"""Tests of workbench.surprise against SciPy's Gaussian KDE and a NumPy nearest-neighbour DSA."""

import jax
import jaxtyping
import numpy as np
import pytest
from scipy import stats

from workbench import coverage, passes, surprise


def clustered(seed, n, d=3, classes=3):
    """Traces in ``classes`` well separated Gaussian clusters, with their labels."""
    keys = jax.random.split(jax.random.key(seed), 2)
    labels = np.asarray(jax.random.randint(keys[0], (n,), 0, classes)).astype(np.int32)
    noise = np.asarray(jax.random.normal(keys[1], (n, d)))
    return (noise + 3.0 * labels[:, None]).astype(np.float32), labels


def np_dsa(train, train_c, test, test_c):
    """Kim et al.'s DSA, one test input at a time."""
    out = []
    for x, c in zip(test.astype(np.float64), test_c):
        same = np.where(train_c == c)[0]
        dist = np.linalg.norm(train[same] - x, axis=1)
        anchor = train[same[np.argmin(dist)]]
        other = train[train_c != c]
        out.append(dist.min() / np.linalg.norm(other - anchor, axis=1).min())
    return np.array(out)


def np_lsa(train, train_c, test, test_c):
    """Kim et al.'s LSA: ``-gaussian_kde(class traces).logpdf(x)``."""
    kdes = {c: stats.gaussian_kde(train[train_c == c].T.astype(np.float64))
            for c in np.unique(train_c)}
    return np.array([-kdes[c].logpdf(x.astype(np.float64))[0] for x, c in zip(test, test_c)])


@pytest.mark.parametrize("chunk_size", [7, 256])
def test_dsa_matches_numpy(chunk_size):
    train, train_c = clustered(0, 300)
    test, test_c = clustered(1, 40)
    got = surprise.distance_surprise(train, train_c, test, test_c, chunk_size=chunk_size)
    np.testing.assert_allclose(got, np_dsa(train, train_c, test, test_c), rtol=1e-4)


def test_dsa_by_hand_and_dict_traces():
    train = {"a": np.array([[0.0], [1.0], [4.0]], np.float32),
             "b": np.zeros((3, 1), np.float32)}
    dsa = surprise.distance_surprise(train, np.array([0, 0, 1]),
                                     {"a": np.array([[0.5], [3.0]], np.float32),
                                      "b": np.zeros((2, 1), np.float32)}, np.array([0, 1]))
    np.testing.assert_allclose(dsa, [0.5 / 4.0, 1.0 / 3.0], rtol=1e-6)


@pytest.mark.parametrize("chunk_size", [5, 256])
def test_lsa_matches_scipy_gaussian_kde(chunk_size):
    train, train_c = clustered(2, 240)
    test, test_c = clustered(3, 30)
    got = surprise.likelihood_surprise(train, train_c, test, test_c, chunk_size=chunk_size)
    np.testing.assert_allclose(got, np_lsa(train, train_c, test, test_c), rtol=1e-6, atol=1e-6)


def test_lsa_near_zero_keeps_its_relative_precision():
    """Where the density is about 1, LSA is about 0 while each term of it is not: float64
    distances keep SciPy's value to 1e-5 relative; float32 ones only to an absolute ~1e-5."""
    train, train_c = clustered(20, 300)
    train = train * 0.1  # densities above 1 near the class means: LSA crosses 0
    members = train[train_c == 0].astype(np.float64)
    kde = stats.gaussian_kde(members.T)
    lo, hi = 0.0, 1.0  # bisection along the first axis for LSA = 1e-3
    for _ in range(60):
        mid = (lo + hi) / 2
        point = members.mean(axis=0) + [mid, 0.0, 0.0]
        lo, hi = (mid, hi) if -kde.logpdf(point)[0] < 1e-3 else (lo, mid)
    test = point[None].astype(np.float32)
    want = -kde.logpdf(test.T.astype(np.float64))
    assert 5e-4 < abs(want[0]) < 2e-3
    got = surprise.likelihood_surprise(train, train_c, test, np.zeros(1, np.int32))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    rough = surprise.likelihood_surprise(train, train_c, test, np.zeros(1, np.int32),
                                         float64=False)
    np.testing.assert_allclose(rough, want, atol=1e-4)


def test_lsa_drops_low_variance_columns_with_a_warning():
    train, train_c = clustered(4, 200)
    test, test_c = clustered(5, 20)
    with_const = np.concatenate([train, np.full((200, 1), 2.0, np.float32)], axis=1)
    test_const = np.concatenate([test, np.full((20, 1), 2.0, np.float32)], axis=1)
    with pytest.warns(RuntimeWarning, match="dropped 1 of 4 columns"):
        got = surprise.likelihood_surprise(with_const, train_c, test_const, test_c)
    np.testing.assert_allclose(got, np_lsa(train, train_c, test, test_c), rtol=1e-6, atol=1e-6)


def test_lsa_survives_a_singular_covariance_and_far_inputs():
    train, train_c = clustered(6, 200, d=2)
    # A third column equal to the sum of the others: SciPy's KDE cannot invert this.
    train = np.concatenate([train, train.sum(axis=1, keepdims=True)], axis=1)
    test = np.array([[0.0, 0.0, 0.0], [1e3, 1e3, 2e3]], np.float32)
    with pytest.warns(RuntimeWarning, match="singular"):
        lsa = surprise.likelihood_surprise(train, train_c, test, np.array([0, 0]))
    assert np.isfinite(np.asarray(lsa)).all() and lsa[1] > lsa[0] + 100


def test_surprise_coverage_buckets():
    mask = surprise.surprise_coverage(np.array([0.0, 0.1, 0.5, 1.0, 1.5, -0.2, np.inf]),
                                      upper=1.0, k=4)
    assert mask.tolist() == [True, False, True, True]
    assert coverage.ratio({"sc": mask}) == 0.75
    assert surprise.surprise_coverage(np.array([2.5]), lower=2.0, upper=3.0, k=2
                                      ).tolist() == [False, True]


def test_more_surprise_for_out_of_distribution_inputs():
    train, train_c = clustered(7, 300)
    near, near_c = clustered(8, 20)
    far = near + 20.0
    for fn in (surprise.distance_surprise, surprise.likelihood_surprise):
        assert float(fn(train, train_c, far, near_c).mean()) > float(
            fn(train, train_c, near, near_c).mean())


@pytest.mark.real_data
@pytest.mark.filterwarnings("ignore:.*nnx.State.*:DeprecationWarning")  # train.py (reported)
@pytest.mark.filterwarnings("ignore:LSA. dropped:RuntimeWarning")
def test_surprise_on_mnist_traces(trained, data_root):
    from workbench import data, train
    net = trained("lenet1")
    mnist_train = data.load("mnist", "train", root=data_root)
    mnist_test = data.load("mnist", "test", root=data_root)
    train_x, train_y = mnist_train.images[:2000], mnist_train.labels[:2000]
    test_x = mnist_test.images[:200]
    train_t = passes.model_trace(net, train_x, sites=("conv2",), batch_size=500).acts["conv2"]
    test_t = passes.model_trace(net, test_x, sites=("conv2",), batch_size=500).acts["conv2"]
    assert train_t.shape == (2000, 12) and test_t.shape == (200, 12)
    pred = train.predict(net, test_x)
    dsa = np.asarray(surprise.distance_surprise(train_t, train_y, test_t, pred))
    np.testing.assert_allclose(dsa, np_dsa(train_t, train_y, test_t, pred), rtol=1e-3)
    lsa = np.asarray(surprise.likelihood_surprise(train_t, train_y, test_t, pred))
    assert np.isfinite(lsa).all()
    # Misclassified inputs are more surprising on average (Kim et al., RQ1).
    wrong = pred != mnist_test.labels[:200]
    if wrong.any():
        assert dsa[wrong].mean() > dsa[~wrong].mean()


def test_bad_input():
    train, train_c = clustered(9, 20)
    with pytest.raises((ValueError, jaxtyping.TypeCheckError)):
        surprise.distance_surprise(train, train_c.astype(np.float32), train, train_c)
    with pytest.raises(ValueError, match="features"):
        surprise.distance_surprise(train, train_c, train[:, :2], train_c)
    with pytest.raises(ValueError, match="no training traces"):
        surprise.distance_surprise(train, train_c, train[:2], np.array([7, 0], np.int32))
    bad = train.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        surprise.likelihood_surprise(bad, train_c, train, train_c)
    with pytest.raises(ValueError, match="lower < upper"):
        surprise.surprise_coverage(np.array([0.5]), lower=1.0, upper=1.0, k=3)


def test_lsa_grouped_by_class_with_unbalanced_odd_labels():
    """Classes of very different sizes and labels that are no positions (-3, 100): each test
    chunk meets only its own class, with the values SciPy gives."""
    train, train_c = clustered(10, 260, classes=2)
    train_c = np.where(np.arange(260) < 220, train_c, 2).astype(np.int32)  # a small class
    test, test_c = clustered(11, 45, classes=3)
    labels = np.array([-3, 100, 7], np.int32)
    got = surprise.likelihood_surprise(train, labels[train_c], test, labels[test_c], chunk_size=4)
    np.testing.assert_allclose(got, np_lsa(train, train_c, test, test_c), rtol=1e-6, atol=1e-6)
    only_one = surprise.likelihood_surprise(train, train_c, test[:3], np.full(3, 2, np.int32))
    np.testing.assert_allclose(only_one, np_lsa(train, train_c, test[:3], np.full(3, 2)),
                               rtol=1e-6, atol=1e-6)


F32_EPS = float(np.finfo(np.float32).eps)


def np_mdsa(train, train_c, test, test_c, shrinkage=0.0, rtol=F32_EPS):
    """Kim et al. 2020's MDSA with SciPy's pseudo-inverse, one test input at a time."""
    from scipy import linalg
    out = []
    for x, c in zip(test.astype(np.float64), test_c):
        members = train[train_c == c].astype(np.float64)
        cov = np.cov(members, rowvar=False, ddof=0)
        d = cov.shape[0]
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / d * np.eye(d)
        diff = x - members.mean(axis=0)
        out.append(np.sqrt(diff @ linalg.pinvh(cov, rtol=rtol) @ diff))
    return np.array(out)


@pytest.mark.parametrize("shrinkage", [0.0, 0.3])
def test_mdsa_matches_numpy(shrinkage):
    train, train_c = clustered(12, 300)
    test, test_c = clustered(13, 37)
    got = surprise.mahalanobis_surprise(train, train_c, test, test_c, shrinkage=shrinkage,
                                        chunk_size=8)
    np.testing.assert_allclose(got, np_mdsa(train, train_c, test, test_c, shrinkage),
                               rtol=1e-4)
    squared = surprise.mahalanobis_surprise(train, train_c, test, test_c, shrinkage=shrinkage,
                                            squared=True)
    np.testing.assert_allclose(squared, np.asarray(got) ** 2, rtol=1e-4)


def test_mdsa_pseudo_inverse_on_a_singular_covariance():
    train, train_c = clustered(14, 200, d=2)
    train = np.concatenate([train, train.sum(axis=1, keepdims=True),
                            np.zeros((200, 1), np.float32)], axis=1)  # dependent, dead
    test, test_c = clustered(15, 10, d=2)
    test = np.concatenate([test, test.sum(axis=1, keepdims=True), np.zeros((10, 1),
                                                                          np.float32)], axis=1)
    got = surprise.mahalanobis_surprise(train, train_c, test, test_c)
    np.testing.assert_allclose(got, np_mdsa(train, train_c, test, test_c), rtol=1e-3)
    # The pseudo-inverse sees only the directions the class varies in: the 2-d distance.
    np.testing.assert_allclose(got, np_mdsa(train[:, :2], train_c, test[:, :2], test_c),
                               rtol=1e-3)


def test_multimodal_lsa_is_lsa_per_mode():
    """Two far blobs per class: the k-means modes are the blobs, and the values are SciPy's
    KDE of each (class, blob)."""
    train, train_c = clustered(16, 400, d=2, classes=2)
    blob = (np.arange(400) % 2).astype(np.int32)
    train = train + 40.0 * blob[:, None]
    test, test_c = clustered(17, 30, d=2, classes=2)
    test_blob = (np.arange(30) % 2).astype(np.int32)
    test = test + 40.0 * test_blob[:, None]
    got = surprise.multimodal_likelihood_surprise(train, train_c, test, test_c, modes=2,
                                                  key=jax.random.key(0))
    want = np_lsa(train, train_c * 2 + blob, test, test_c * 2 + test_blob)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    one = surprise.multimodal_likelihood_surprise(train, train_c, test, test_c, modes=1,
                                                  key=jax.random.key(0))
    np.testing.assert_allclose(one, surprise.likelihood_surprise(train, train_c, test, test_c),
                               rtol=1e-6)


def test_surprise_buckets_per_input_and_coverage_over_each_measure():
    b = surprise.surprise_buckets(np.array([0.0, 0.6, 1.0, 3.0, np.inf]), upper=1.0, k=2)
    assert b.tolist() == [[True, False], [False, True], [False, True], [False, False],
                          [False, False]]
    train, train_c = clustered(18, 200)
    test, test_c = clustered(19, 20)
    for values in (surprise.mahalanobis_surprise(train, train_c, test, test_c),
                   surprise.multimodal_likelihood_surprise(train, train_c, test, test_c,
                                                           key=jax.random.key(1))):
        upper = float(np.max(values))
        mask = surprise.surprise_coverage(values, upper=upper, lower=float(np.min(values)),
                                          k=5)
        assert mask[0] and mask[-1]
        np.testing.assert_array_equal(mask, surprise.surprise_buckets(
            values, upper=upper, lower=float(np.min(values)), k=5).any(axis=0))


def test_mdsa_keeps_a_small_real_variance_and_cuts_where_told():
    """A direction of variance 2.5e-7 times the largest is real (float32 rounding fakes ~1e-14):
    the default cut-off keeps it, as the plain inverse; ``rtol=d * eps`` (pinvh's float32
    default) drops it, leaving the distance in the other two directions."""
    train, train_c = clustered(21, 300)
    test, test_c = clustered(22, 12)
    scale = np.array([1.0, 1.0, 5e-4], np.float32)
    train, test = train * scale, test * scale
    got = surprise.mahalanobis_surprise(train, train_c, test, test_c)
    np.testing.assert_allclose(got, np_mdsa(train, train_c, test, test_c, rtol=0.0), rtol=1e-4)
    cut = surprise.mahalanobis_surprise(train, train_c, test, test_c,
                                        rtol=3 * F32_EPS)
    np.testing.assert_allclose(cut, np_mdsa(train[:, :2], train_c, test[:, :2], test_c),
                               rtol=1e-4)
    with pytest.raises(ValueError, match="rtol"):
        surprise.mahalanobis_surprise(train, train_c, test, test_c, rtol=-1.0)
