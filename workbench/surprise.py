"""Surprise adequacy (Kim et al., ICSE 2019): how far an input's activation trace lies from
the training data's, and surprise coverage over buckets of that value.

An activation trace ``alpha(x)`` is the vector of chosen neurons for input ``x``: an array
``(n, features)`` or a dict ``{site: (n, neurons)}``, concatenated in its order (Kim et al. use
one or a few layers, conv maps averaged per channel, as the ``"post"`` convention gives them:
``passes.model_trace(model, images, sites=("fc2",)).acts`` streams a dataset's traces).

- :func:`likelihood_surprise` (LSA): ``-log f(x)``, ``f`` the Gaussian kernel density of the
  training traces of ``x``'s class.
- :func:`distance_surprise` (DSA): the distance to the nearest training trace of the same class,
  over that trace's distance to the nearest training trace of another class.
- :func:`mahalanobis_surprise` (MDSA): the Mahalanobis distance to the training traces of the
  same class (Kim et al., 2020).
- :func:`multimodal_likelihood_surprise` (multimodal LSA): LSA with each class split into
  k-means modes, one density per mode.
- :func:`surprise_coverage`: which of ``k`` equal buckets of ``[lower, upper]`` the test set's
  surprise values (of any of the measures) fall in; :func:`surprise_buckets` per input.

DSA and LSA compare every test trace with every training trace; they do so in fixed-size
chunks of test inputs (``lax.map`` over chunks, one ``(chunk, n_train)`` distance block at a
time; for LSA and MDSA each chunk holds one class and meets only that class's traces), so
10,000 test traces against 60,000 training traces fit in memory. LSA and MDSA compute in
float64 (``jax.enable_x64`` for the call only; inputs and results stay float32): an LSA near 0
is a difference of terms in the hundreds, which float32 rounds to ~1e-5.

References:
    Kim, Feldt and Yoo, "Guiding Deep Learning System Testing using Surprise Adequacy", ICSE
    2019, section 3 (3.1 LSA, 3.2 DSA, 3.3 surprise coverage) and the released code
    (``sa.py``: ``_get_kdes`` drops columns whose variance is below ``var_threshold`` in any
    class; training classes are the ground truth, test classes the predictions).
    Kim, Ju, Feldt and Yoo, "Reducing DNN Labelling Cost by Surprise Adequacy: An Industrial
    Case Study for Autonomous Driving", ESEC/FSE 2020 (industry), section 3 (MDSA, and LSA
    over multimodal classes).
    Weiss, Chakraborty and Tonella, "A Review and Refinement of Surprise Adequacy", DeepTest
    2021, and their ``dnn-tip`` package (``surprise.MDSA``, ``MultiModalSA``).
"""

import warnings
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Shaped
from scipy import linalg

from workbench import clustering, validation

__all__ = [
    "distance_surprise",
    "likelihood_surprise",
    "mahalanobis_surprise",
    "multimodal_likelihood_surprise",
    "surprise_buckets",
    "surprise_coverage",
]

Traces = Shaped[ArrayLike, "_n _features"] | Mapping[str, Shaped[ArrayLike, "_n _neurons"]]
Classes = Shaped[ArrayLike, " _n"]


def _as_matrix(acts, name: str) -> np.ndarray:
    if isinstance(acts, Mapping):
        if not acts:
            raise ValueError(f"{name} is an empty dict")
        parts = [np.asarray(v) for v in acts.values()]
        if any(p.ndim != 2 for p in parts) or len({len(p) for p in parts}) != 1:
            raise ValueError(f"{name} must be {{site: (n, neurons)}} with one n, got shapes "
                             f"{[p.shape for p in parts]}")
        matrix = np.concatenate(parts, axis=1)
    else:
        matrix = np.asarray(acts)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be (n, features), got shape {matrix.shape}")
    if 0 in matrix.shape:
        raise ValueError(f"{name} is empty (shape {matrix.shape}): give at least one trace of "
                         f"at least one feature")
    if not np.issubdtype(matrix.dtype, np.floating):
        raise ValueError(f"{name} must be floating point, got {matrix.dtype}")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return matrix.astype(np.float32, copy=False)


def _as_classes(classes, n: int, name: str) -> np.ndarray:
    return validation.labels(classes, n, name).astype(np.int32)


def _check(train_acts, train_classes, test_acts, test_classes):
    train = _as_matrix(train_acts, "train_acts")
    test = _as_matrix(test_acts, "test_acts")
    if train.shape[1] != test.shape[1]:
        raise ValueError(f"train traces have {train.shape[1]} features, test traces "
                         f"{test.shape[1]}")
    train_c = _as_classes(train_classes, len(train), "train_classes")
    test_c = _as_classes(test_classes, len(test), "test_classes")
    missing = sorted(set(np.unique(test_c).tolist()) - set(np.unique(train_c).tolist()))
    if missing:
        raise ValueError(f"test classes {missing} have no training traces")
    return train, train_c, test, test_c


def _chunked(test: np.ndarray, chunk: int) -> tuple[np.ndarray, int]:
    """Pads the rows to a multiple of ``chunk`` and reshapes to ``(chunks, chunk, ...)``."""
    n = len(test)
    pad = -n % chunk
    padded = np.concatenate([test, np.zeros((pad, *test.shape[1:]), test.dtype)])
    return padded.reshape(-1, chunk, *test.shape[1:]), n


def _sq_distances(x, y, y_sq):
    """Squared Euclidean distances ``(len(x), len(y))`` by ``|x|^2 + |y|^2 - 2 x.y``."""
    d = (x * x).sum(axis=1)[:, None] + y_sq[None, :] - 2.0 * x @ y.T
    return jnp.maximum(d, 0.0)


# ------------------------------------------------------------------------------------ DSA


@jax.jit
def _dsa_jit(train, train_c, chunks, chunk_c):
    train_sq = (train * train).sum(axis=1)

    def one(args):
        x, c = args
        same = train_c[None, :] == c[:, None]
        d_same = jnp.where(same, _sq_distances(x, train, train_sq), jnp.inf)
        nearest = jnp.argmin(d_same, axis=1)
        anchor = train[nearest]
        dist_a = jnp.sqrt(((x - anchor) ** 2).sum(axis=1))
        d_other = jnp.where(~same, _sq_distances(anchor, train, train_sq), jnp.inf)
        other = jnp.argmin(d_other, axis=1)
        dist_b = jnp.sqrt(((anchor - train[other]) ** 2).sum(axis=1))
        return dist_a, dist_b

    return jax.lax.map(one, (chunks, chunk_c))


def distance_surprise(train_acts: Traces, train_classes: Classes, test_acts: Traces,
                      test_classes: Classes, *, chunk_size: validation.Int = 256
                      ) -> Float[Array, " n_test"]:
    """Distance-based surprise adequacy (DSA) of each test input.

    With ``x_a`` the training trace of the test input's class nearest to it and ``x_b`` the
    training trace of any other class nearest to ``x_a``:
    ``DSA(x) = |alpha(x) - alpha(x_a)| / |alpha(x_a) - alpha(x_b)|`` (Euclidean). Near-duplicate
    neighbours are found from ``|a|^2 + |b|^2 - 2 a.b`` in float32; the two distances are then
    recomputed directly. Ties go to the lower training index.

    Args:
        train_acts: training traces, ``(n_train, features)`` or ``{site: (n_train, neurons)}``.
        train_classes: ``int[n_train]``, the training labels.
        test_acts: test traces, same features.
        test_classes: ``int[n_test]``, usually the model's predictions.
        chunk_size: test inputs per distance block (memory: ``chunk_size * n_train`` floats).

    Returns:
        ``float[n_test]``; ``inf`` where ``x_a`` coincides with a trace of another class.

    Example:
        >>> train = np.array([[0.0], [1.0], [4.0]], np.float32)
        >>> dsa = distance_surprise(train, np.array([0, 0, 1]),
        ...                         np.array([[0.5], [3.0]], np.float32), np.array([0, 1]))
        >>> np.round(np.asarray(dsa, np.float64), 4).tolist()  # 0.5 / 4 and 1 / 3
        [0.125, 0.3333]

    References:
        Kim, Feldt and Yoo, ICSE 2019, section 3.2 (distance-based surprise adequacy).
    """
    chunk_size = validation.positive_int(chunk_size, "chunk_size")
    train, train_c, test, test_c = _check(train_acts, train_classes, test_acts, test_classes)
    if len(np.unique(train_c)) < 2:
        raise ValueError("DSA needs training traces of at least two classes")
    chunk = _chunk_size(chunk_size, len(test))
    chunks, n = _chunked(test, chunk)
    chunk_c, _ = _chunked(test_c, chunk)
    dist_a, dist_b = _dsa_jit(jnp.asarray(train), jnp.asarray(train_c), jnp.asarray(chunks),
                              jnp.asarray(chunk_c))
    dist_a, dist_b = dist_a.reshape(-1)[:n], dist_b.reshape(-1)[:n]
    return jnp.where(dist_b > 0, dist_a / jnp.where(dist_b > 0, dist_b, 1.0), jnp.inf)


def _chunk_size(chunk_size, n: int) -> int:
    return min(validation.positive_int(chunk_size, "chunk_size"), n)


# ------------------------------------------------------------- grouping and class moments


def _by_class(classes: np.ndarray, n_classes: int, block: int):
    """Where each row goes when the rows are grouped by class into blocks of ``block`` rows,
    each block holding one class: ``(block_of_row, slot_of_row, class_of_block)``. A class of
    ``n_c`` rows fills ``ceil(n_c / block)`` blocks; the last is padded."""
    order = np.argsort(classes, kind="stable")
    counts = np.bincount(classes, minlength=n_classes)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(classes), np.int64)
    rank[order] = np.arange(len(classes)) - np.repeat(starts, counts)
    blocks = -(-counts // block)
    first = np.concatenate([[0], np.cumsum(blocks)[:-1]])
    return first[classes] + rank // block, rank % block, np.repeat(np.arange(n_classes), blocks)


def _prepare(train_acts, train_classes, test_acts, test_classes, chunk_size):
    """Checked traces, with classes as positions ``0..classes-1`` (any int labels index the
    tables): the training traces grouped by class, ``(classes, most, d)`` zero-padded to the
    largest class, ``valid (classes, most)`` marking real rows, the class sizes, and the test
    rows' layout in ``(chunks, chunk, d)`` blocks of one class each (:func:`_blocks`). As many
    chunks as any class balance of these test inputs needs, so a new balance does not
    recompile."""
    chunk_size = validation.positive_int(chunk_size, "chunk_size")
    train, train_c, test, test_c = _check(train_acts, train_classes, test_acts, test_classes)
    classes, train_c = np.unique(train_c, return_inverse=True)
    test_c = np.searchsorted(classes, test_c)
    counts = np.bincount(train_c, minlength=len(classes))
    ordered = train[np.argsort(train_c, kind="stable")]
    grouped = np.zeros((len(classes), counts.max(), train.shape[1]), np.float32)
    for c, (start, n) in enumerate(zip(np.cumsum(counts) - counts, counts)):  # a copy per class
        grouped[c, :n] = ordered[start:start + n]
    valid = np.arange(counts.max())[None, :] < counts[:, None]
    chunk = min(chunk_size, len(test))
    block, slot, chunk_c = _by_class(test_c, len(classes), chunk)
    chunk_c = np.pad(chunk_c, (0, -(-len(test) // chunk) + len(classes) - 1 - len(chunk_c)))
    return (classes, counts, (grouped, valid), test,
            (block, slot, chunk_c.astype(np.int32), chunk))


def _blocks(test: np.ndarray, layout) -> np.ndarray:
    block, slot, chunk_c, chunk = layout
    chunks = np.zeros((len(chunk_c), chunk, test.shape[1]), np.float32)
    chunks[block, slot] = test
    return chunks


def _moments(grouped: np.ndarray, counts: np.ndarray):
    """Each class's mean ``(classes, d)`` and scatter matrix ``sum (x - mu)(x - mu)^T``
    ``(classes, d, d)`` in float64, centred before the product (as ``np.cov``); one BLAS
    product per class, in the ``(d, n)`` layout that is ~2.5x faster here than a jitted
    batched product."""
    means = np.zeros((len(counts), grouped.shape[2]))
    scatter = np.zeros((len(counts), grouped.shape[2], grouped.shape[2]))
    for c, n in enumerate(counts):
        rows = np.array(grouped[c, :n].T, dtype=np.float64)
        means[c] = rows.mean(axis=1)
        rows -= means[c][:, None]
        scatter[c] = rows @ rows.T
    return means, scatter


# ------------------------------------------------------------------------------------ LSA


def _kde_whitening(cov: np.ndarray, counts: np.ndarray):
    """SciPy ``gaussian_kde``'s kernel per class from the data covariances ``(classes, d, d)``
    (ddof 1): Scott's factor ``n^(-1 / (d + 4))``, the whitening matrices ``L^-1`` of the
    kernel covariances ``L L^T``, ``log det(2 pi L L^T)`` and the jitter added to a (nearly)
    singular kernel covariance (eigenvalues below 1e-8 times the largest get that much on the
    diagonal), where SciPy would fail; float64."""
    d = cov.shape[-1]
    whiten, logdet, jitter = np.zeros_like(cov), np.zeros(len(cov)), np.zeros(len(cov))
    for c, n in enumerate(counts):  # ten 60 x 60 factorisations cost ~1 ms
        kernel = cov[c] * float(n) ** (-2.0 / (d + 4))
        eigenvalues = linalg.eigvalsh(kernel)
        floor = 1e-8 * max(eigenvalues.max(), 1e-30)
        jitter[c] = floor if eigenvalues.min() < floor else 0.0
        chol = linalg.cholesky(kernel + jitter[c] * np.eye(d), lower=True)
        whiten[c] = linalg.solve_triangular(chol, np.eye(d), lower=True)
        logdet[c] = 2 * np.log(np.diag(chol)).sum() + d * np.log(2 * np.pi)
    return whiten, logdet, jitter


@jax.jit
def _lsa_jit(grouped, valid, means, whiten, norm, chunks, chunk_c):
    """``grouped``: ``(classes, most, d)`` training traces by class (``valid`` marks the real
    rows); ``chunks``: ``(chunks, chunk, d)`` test traces, each chunk one class ``chunk_c``.
    All centred on their class mean and whitened, then met in the dtype of ``means``; each
    chunk meets only its own class's training traces:
    ``log f = logsumexp_j(z.y_j - |y_j|^2 / 2) - |z|^2 / 2 + norm``, the log-sum-exp shifted
    by its largest term."""
    dtype = means.dtype
    train_w = jnp.einsum("cmd,ced->cme", grouped.astype(dtype) - means[:, None, :], whiten)
    half_sq = jnp.where(valid, 0.5 * (train_w * train_w).sum(axis=2), jnp.inf)

    def one(args):
        x, c = args
        z = (x.astype(dtype) - means[c][None, :]) @ whiten[c].T
        g = z @ train_w[c].T - half_sq[c][None, :]
        top = g.max(axis=1)
        log_f = (jnp.log(jnp.exp(g - top[:, None]).sum(axis=1)) + top
                 - 0.5 * (z * z).sum(axis=1) + norm[c])
        return (-log_f).astype(jnp.float32)

    return jax.lax.map(one, (chunks, chunk_c))


def likelihood_surprise(train_acts: Traces, train_classes: Classes, test_acts: Traces,
                        test_classes: Classes, *, var_threshold: validation.Float = 1e-5,
                        chunk_size: validation.Int = 256, float64: bool = True
                        ) -> Float[Array, " n_test"]:
    """Likelihood-based surprise adequacy (LSA) of each test input: ``-log f_c(alpha(x))``.

    ``f_c`` is the Gaussian kernel density estimate of the training traces of class ``c``
    (the test input's class), with SciPy ``gaussian_kde``'s kernel: covariance the sample
    covariance times Scott's factor ``n_c^(-2 / (d + 4))``. Columns whose variance (ddof 0)
    is below ``var_threshold`` in any class are dropped first, with a warning, as in the
    released code. Traces are centred on their class mean and whitened by the kernel's
    Cholesky factor; the density is computed in log space (``logsumexp`` of the whitened
    squared distances), so a far input gets a large finite LSA rather than ``-log 0``. A
    (nearly) singular kernel covariance gets a small diagonal jitter, with a warning.

    Args:
        train_acts: training traces, ``(n_train, features)`` or ``{site: (n_train, neurons)}``.
        train_classes: ``int[n_train]``, the training labels.
        test_acts: test traces, same features.
        test_classes: ``int[n_test]``, usually the model's predictions.
        var_threshold: minimum per-class variance of a kept column.
        chunk_size: test inputs per distance block.
        float64: the distances and the log-sum-exp in float64: SciPy's values to ~1e-7
            relative, values near 0 included. False: in float32, about twice as fast on a
            CPU, with absolute errors up to ~1e-4 (the rounding of whitened squared distances
            in the hundreds), so a value near 0 loses its relative precision. Class moments
            and kernels are float64 either way.

    Returns:
        ``float32[n_test]``.

    Example:
        >>> train = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [13.0]], np.float32)
        >>> lsa = likelihood_surprise(train, np.array([0, 0, 0, 1, 1, 1]),
        ...                           np.array([[1.0], [30.0]], np.float32), np.array([0, 1]))
        >>> bool(lsa[1] > lsa[0])
        True

    References:
        Kim, Feldt and Yoo, ICSE 2019, section 3.1 (likelihood-based surprise adequacy);
        SciPy ``stats.gaussian_kde`` (Scott's rule, ``logpdf``).
    """
    var_threshold = float(validation.scalar(var_threshold, "var_threshold", minimum=0.0))
    float64 = validation.instance(float64, bool, "float64")
    classes, counts, (grouped, valid), test, layout = _prepare(
        train_acts, train_classes, test_acts, test_classes, chunk_size)
    if counts.min() < 2:
        raise ValueError(f"class {classes[counts.argmin()]} has {counts.min()} training trace;"
                         " LSA needs 2 or more")
    means, scatter = _moments(grouped, counts)
    low_var = (np.diagonal(scatter, axis1=1, axis2=2) / counts[:, None] < var_threshold
               ).any(axis=0)
    if low_var.all():
        raise ValueError(f"every column has variance below var_threshold={var_threshold}")
    if low_var.any():
        warnings.warn(f"LSA: dropped {int(low_var.sum())} of {len(low_var)} columns with "
                      f"variance below {var_threshold} in some class", RuntimeWarning,
                      stacklevel=2)
    keep = ~low_var
    whiten, logdet, jitter = _kde_whitening(
        scatter[:, keep][:, :, keep] / (counts - 1)[:, None, None], counts)
    if jitter.any():
        warnings.warn(f"LSA: (nearly) singular kernel covariance; added {jitter.max():.3g} to "
                      "its diagonal", RuntimeWarning, stacklevel=2)
    dtype = jnp.float64 if float64 else jnp.float32
    with jax.enable_x64(float64):
        lsa = _lsa_jit(jnp.asarray(grouped if keep.all() else grouped[:, :, keep]),
                       jnp.asarray(valid), jnp.asarray(means[:, keep], dtype),
                       jnp.asarray(whiten, dtype), jnp.asarray(-np.log(counts) - 0.5 * logdet,
                                                               dtype),
                       jnp.asarray(_blocks(test[:, keep], layout)), jnp.asarray(layout[2]))
    return jnp.asarray(np.asarray(lsa)[layout[0], layout[1]])  # one host gather, no dispatches


# ----------------------------------------------------------------------------------- MDSA


@jax.jit
def _mdsa_jit(whiten, means, chunks, chunk_c):
    """Squared norms of ``whiten[c] (x - means[c])`` for chunks of test traces of one class
    ``c`` each, in the dtype of ``means``."""
    def one(args):
        x, c = args
        z = (x.astype(means.dtype) - means[c][None, :]) @ whiten[c].T
        return (z * z).sum(axis=1).astype(jnp.float32)

    return jax.lax.map(one, (chunks, chunk_c))


def mahalanobis_surprise(train_acts: Traces, train_classes: Classes, test_acts: Traces,
                         test_classes: Classes, *, shrinkage: validation.Float = 0.0,
                         squared: bool = False, rtol: validation.Float | None = None,
                         chunk_size: validation.Int = 256) -> Float[Array, " n_test"]:
    """Mahalanobis distance-based surprise adequacy (MDSA) of each test input, per class:
    ``sqrt((alpha(x) - mu_c)^T S_c^+ (alpha(x) - mu_c))``, ``mu_c`` and ``S_c`` the mean and
    covariance of the training traces of ``x``'s class.

    ``S_c`` is the maximum-likelihood covariance (dividing by ``n_c``, as scikit-learn's
    ``EmpiricalCovariance`` that ``dnn-tip`` uses), optionally shrunk towards a scaled identity,
    ``(1 - shrinkage) S_c + shrinkage tr(S_c) / d I``. Moments, eigenvectors and distances are
    in float64. A near-singular ``S_c`` (a dead neuron, two equal ones) is inverted by the
    pseudo-inverse: eigenvalues at most ``rtol`` times the largest count as 0, so a direction
    the class never varies in adds nothing.

    Args:
        train_acts, train_classes, test_acts, test_classes: as :func:`distance_surprise`.
        shrinkage: in [0, 1]; 0 is the plain covariance.
        squared: return the squared distance, as ``dnn-tip``'s ``MDSA`` does (scikit-learn's
            ``mahalanobis``); the paper's MDSA is the distance.
        rtol: the pseudo-inverse's cut-off. ``None``: float32's eps (1.2e-7): the variance
            that float32 rounding of the traces fakes is of order eps^2 times the largest,
            so a kept direction is real. ``dnn-tip`` (``scipy.linalg.pinvh`` on a float64
            covariance) cuts at ``d * 2.2e-16`` and can keep the rounding noise of a neuron
            that is a float32 sum of others; ``d * 1.2e-7`` is ``pinvh``'s float32 default.
        chunk_size: test inputs per block.

    Returns:
        ``float32[n_test]``.

    Example:
        >>> train = np.array([[0.0], [2.0], [10.0], [14.0]], np.float32)  # sd 1 and 2
        >>> mdsa = mahalanobis_surprise(train, np.array([0, 0, 1, 1]),
        ...                             np.array([[3.0], [12.0]], np.float32), np.array([0, 1]))
        >>> np.round(np.asarray(mdsa, np.float64), 4).tolist()
        [2.0, 0.0]

    References:
        Kim, Ju, Feldt and Yoo, ESEC/FSE 2020, section 3 (MDSA); ``dnn-tip`` ``surprise.MDSA``.
    """
    shrinkage = float(validation.scalar(shrinkage, "shrinkage", minimum=0.0))
    if shrinkage > 1:
        raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
    squared = validation.instance(squared, bool, "squared")
    rtol = float(np.finfo(np.float32).eps if rtol is None
                 else validation.scalar(rtol, "rtol", minimum=0.0))
    _, counts, (grouped, _), test, layout = _prepare(train_acts, train_classes, test_acts,
                                                     test_classes, chunk_size)
    means, scatter = _moments(grouped, counts)
    d = means.shape[1]
    cov = scatter / counts[:, None, None]
    target = np.trace(cov, axis1=1, axis2=2)[:, None, None] / d * np.eye(d)
    whiten = np.zeros_like(cov)
    for c, matrix in enumerate((1 - shrinkage) * cov + shrinkage * target):
        values, vectors = linalg.eigh(matrix)  # ~0.4 ms each (numpy's: erratic, to 50 ms)
        keep = values > rtol * max(values.max(), 0.0)
        whiten[c] = (vectors * np.where(keep, 1 / np.sqrt(np.where(keep, values, 1.0)), 0.0)).T
    with jax.enable_x64(True):
        out = _mdsa_jit(jnp.asarray(whiten), jnp.asarray(means),
                        jnp.asarray(_blocks(test, layout)), jnp.asarray(layout[2]))
    out = np.asarray(out)[layout[0], layout[1]]
    return jnp.asarray(out if squared else np.sqrt(out))


# ------------------------------------------------------------------------ multimodal LSA


def multimodal_likelihood_surprise(train_acts: Traces, train_classes: Classes,
                                   test_acts: Traces, test_classes: Classes, *,
                                   modes: validation.Int = 2, key: ArrayLike,
                                   var_threshold: validation.Float = 1e-5,
                                   chunk_size: validation.Int = 256
                                   ) -> Float[Array, " n_test"]:
    """Multimodal LSA: each class's training traces split into ``modes`` k-means clusters
    (:func:`workbench.clustering.kmeans`), and a test input's LSA taken against the KDE of the
    mode of its class whose centre is nearest, ``-log f_(c, m)(alpha(x))``.

    A class whose traces form several blobs (a digit written two ways) gets one density per
    blob instead of one kernel bandwidth stretched over all. With ``modes=1`` this is
    :func:`likelihood_surprise`. ``dnn-tip`` builds the same from ``MultiModalSA`` with a
    k-means discriminator and ``LSA`` per mode (its k-means runs over all classes together;
    here within each class); its ``MLSA`` fits a Gaussian mixture instead (not offered here).
    Columns are dropped if their variance is below ``var_threshold`` in any mode. A class
    whose k-means leaves a mode of fewer than 2 traces keeps one mode (with a warning).

    Args:
        train_acts, train_classes, test_acts, test_classes: as :func:`likelihood_surprise`.
        modes: k-means clusters per class (each needs 2 or more traces).
        key: a JAX random key for the k-means seeds.
        var_threshold, chunk_size: as :func:`likelihood_surprise`.

    Returns:
        ``float[n_test]``.

    Example:
        >>> train = np.array([[0.0], [0.5], [1.0], [20.0], [20.5], [21.0]], np.float32)
        >>> lsa = multimodal_likelihood_surprise(train, np.zeros(6, np.int32),
        ...         np.array([[0.5], [10.0]], np.float32), np.zeros(2, np.int32), modes=2,
        ...         key=jax.random.key(0))
        >>> bool(lsa[1] > lsa[0] + 10)  # between the modes is far from both
        True

    References:
        Kim, Ju, Feldt and Yoo, ESEC/FSE 2020, section 3 (multimodal LSA); ``dnn-tip``
        ``surprise.MultiModalSA.build_with_kmeans``.
    """
    modes = validation.positive_int(modes, "modes")
    key = validation.key(key)
    train, train_c, test, test_c = _check(train_acts, train_classes, test_acts, test_classes)
    classes, train_pos = np.unique(train_c, return_inverse=True)
    test_pos = np.searchsorted(classes, test_c)
    counts = np.bincount(train_pos)
    if counts.min() < 2 * modes:
        raise ValueError(f"class {classes[counts.argmin()]} has {counts.min()} training traces;"
                         f" {modes} modes need at least {2 * modes}")
    # Each class's traces padded to the largest class (weight 0), so one k-means compiles.
    train_mode = np.zeros(len(train), np.int64)
    test_mode = np.zeros(len(test), np.int64)
    for c, sub in zip(range(len(classes)), jax.random.split(key, len(classes))):
        members = train_pos == c
        padded = np.zeros((counts.max(), train.shape[1]), np.float32)
        padded[:counts[c]] = train[members]
        fit = clustering.kmeans(padded, k=modes, key=sub,
                                weight=np.arange(counts.max()) < counts[c])
        labels = np.asarray(fit.labels)[:counts[c]]
        if np.bincount(labels, minlength=modes).min() < 2:  # a mode too small for a KDE
            warnings.warn(f"multimodal LSA: class {classes[c]} has a mode of fewer than 2 "
                          "traces; that class keeps one mode", RuntimeWarning, stacklevel=2)
            continue
        train_mode[members] = labels
        if (test_pos == c).any():
            test_mode[test_pos == c] = np.asarray(clustering.assign(test[test_pos == c],
                                                                    fit.centres))
    return likelihood_surprise(train, (train_pos * modes + train_mode).astype(np.int32), test,
                               (test_pos * modes + test_mode).astype(np.int32),
                               var_threshold=var_threshold, chunk_size=chunk_size)


# ------------------------------------------------------------------------ surprise coverage


def surprise_coverage(surprise: Shaped[ArrayLike, "..."], *, upper: validation.Float,
                      k: validation.Int, lower: validation.Float = 0.0) -> Bool[Array, " k"]:
    """Surprise coverage (SC): which of ``k`` equal buckets of ``[lower, upper]`` some input's
    surprise value falls in (the last bucket closed); values outside cover nothing. SC is the
    covered fraction, ``mask.mean()`` or ``coverage.ratio({"sc": mask})``.

    Example:
        >>> surprise_coverage(np.array([0.1, 0.15, 0.9, 2.0]), upper=1.0, k=4).tolist()
        [True, False, False, True]

    References:
        Kim, Feldt and Yoo, ICSE 2019, section 3.3 (surprise coverage).
    """
    return surprise_buckets(surprise, upper=upper, k=k, lower=lower).any(axis=0)


def surprise_buckets(surprise: Shaped[ArrayLike, " n"], *, upper: validation.Float,
                     k: validation.Int, lower: validation.Float = 0.0) -> Bool[Array, "n k"]:
    """Which bucket of :func:`surprise_coverage` each input's surprise falls in: ``bool[n, k]``,
    one-hot, or all false outside ``[lower, upper]`` (``surprise_coverage`` is the rows'
    ``any``). Coverage-additional prioritisation over surprise coverage takes these.

    Example:
        >>> surprise_buckets(np.array([0.1, 0.9, 2.0]), upper=1.0, k=2).tolist()
        [[True, False], [False, True], [False, False]]

    References:
        Kim, Feldt and Yoo, ICSE 2019, section 3.3 (surprise coverage).
    """
    values = np.asarray(surprise, np.float64)
    if values.ndim != 1:
        raise ValueError(f"surprise must be a vector, got shape {values.shape}")
    k = validation.positive_int(k, "k")
    if not np.isfinite([lower, upper]).all() or not upper > lower:
        raise ValueError(f"need finite lower < upper, got [{lower}, {upper}]")
    inside = np.isfinite(values) & (values >= lower) & (values <= upper)
    bucket = np.minimum(((np.where(inside, values, lower) - lower) / (upper - lower) * k
                         ).astype(np.int64), k - 1)
    return jnp.asarray((bucket[:, None] == np.arange(k)[None]) & inside[:, None])
