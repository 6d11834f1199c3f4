"""k-means clustering and the silhouette score, on the device, for the criteria that cluster
activations: importance-driven coverage (:mod:`workbench.idc`) and multimodal surprise
(:func:`workbench.surprise.multimodal_likelihood_surprise`).

- :func:`kmeans`: Lloyd's algorithm from k-means++ seeds, the best of ``n_init`` starts by
  inertia (the sum of squared distances to the nearest centre), as scikit-learn's ``KMeans``.
- :func:`silhouette`: the mean silhouette ``s(i) = (b_i - a_i) / max(a_i, b_i)``, ``a_i`` the
  mean distance to the other members of ``i``'s cluster, ``b_i`` the smallest mean distance to
  another cluster's members; 0 for a point alone in its cluster (scikit-learn's convention).
- :func:`best_kmeans`: the k of a candidate list with the largest silhouette.

References:
    Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 1982.
    Arthur and Vassilvitskii, "k-means++: the advantages of careful seeding", SODA 2007,
    section 2.2.
    Rousseeuw, "Silhouettes: a graphical aid to the interpretation and validation of cluster
    analysis", J. Comput. Appl. Math. 20, 1987, section 2.
"""

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Int, Shaped

from workbench import validation

__all__ = ["KMeans", "assign", "best_kmeans", "kmeans", "silhouette"]


class KMeans(NamedTuple):
    """A k-means fit."""

    centres: jax.Array  # shape=(k, features), dtype=float32
    labels: jax.Array  # shape=(n,), dtype=int32: each point's nearest centre
    inertia: jax.Array  # shape=(), dtype=float32: sum of squared distances to it


def _sq(x, c):
    return jnp.maximum((x * x).sum(1)[:, None] + (c * c).sum(1)[None] - 2 * x @ c.T, 0.0)


def _fit_one(x, weight, key, *, k, n_iter):
    """One k-means++ start and ``n_iter`` Lloyd steps on the points with ``weight`` 1."""
    keys = jax.random.split(key, k)
    first = jax.random.choice(keys[0], x.shape[0], p=weight / weight.sum())
    centres = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(x[first])
    d2 = _sq(x, x[first][None])[:, 0]

    def seed(i, carry):
        centres, d2 = carry
        p = d2 * weight
        p = jnp.where(p.sum() > 0, p / jnp.where(p.sum() > 0, p.sum(), 1.0),
                      weight / weight.sum())
        pick = jax.random.choice(keys[i], x.shape[0], p=p)
        return centres.at[i].set(x[pick]), jnp.minimum(d2, _sq(x, x[pick][None])[:, 0])

    centres, _ = jax.lax.fori_loop(1, k, seed, (centres, d2))

    def lloyd(_, centres):
        onehot = jax.nn.one_hot(jnp.argmin(_sq(x, centres), axis=1), k) * weight[:, None]
        count = onehot.sum(0)
        mean = (onehot.T @ x) / jnp.where(count > 0, count, 1.0)[:, None]
        return jnp.where(count[:, None] > 0, mean, centres)

    centres = jax.lax.fori_loop(0, n_iter, lloyd, centres)
    d2 = _sq(x, centres)
    return centres, jnp.argmin(d2, axis=1).astype(jnp.int32), (d2.min(1) * weight).sum()


@functools.partial(jax.jit, static_argnames=("k", "n_init", "n_iter"))
def _kmeans_jit(x, weight, key, *, k, n_init, n_iter):
    centres, labels, inertia = jax.vmap(
        lambda kk: _fit_one(x, weight, kk, k=k, n_iter=n_iter))(jax.random.split(key, n_init))
    best = jnp.argmin(inertia)
    return centres[best], labels[best], inertia[best]


def _points(x, name: str = "x") -> jax.Array:
    x = validation.array(x, name)
    if x.ndim != 2 or 0 in x.shape or not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"{name} must be floating (n, features), got {x.dtype}{list(x.shape)}")
    if not bool(jnp.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinity")
    return x.astype(jnp.float32)


def kmeans(x: Shaped[ArrayLike, "_n _features"], *, k: validation.Int, key: ArrayLike,
           n_init: validation.Int = 4, n_iter: validation.Int = 50,
           weight: Shaped[ArrayLike, " _n"] | None = None) -> KMeans:
    """k-means by Lloyd's algorithm from k-means++ seeds; the best of ``n_init`` starts.

    Args:
        x: ``(n, features)`` points.
        k: clusters (static), at most the number of points.
        key: a JAX random key (the seeds).
        n_init: starts (static); the one of least inertia is kept.
        n_iter: Lloyd steps per start (static; a fixed count, so it runs under ``jax.jit``).
        weight: optional ``float[n]`` of 0 / 1, the points that count (padding is 0).

    Returns:
        :class:`KMeans`: centres, labels, inertia.

    Example:
        >>> x = np.array([[0.0], [0.1], [5.0], [5.2]], np.float32)
        >>> fit = kmeans(x, k=2, key=jax.random.key(0))
        >>> fit.labels[0] == fit.labels[1], fit.labels[1] != fit.labels[2]
        (Array(True, dtype=bool), Array(True, dtype=bool))

    References:
        Lloyd 1982; Arthur and Vassilvitskii, SODA 2007, section 2.2 (k-means++ seeding).
    """
    x = _points(x)
    k = validation.integer(k, "k", minimum=1, maximum=x.shape[0])
    w = jnp.ones(x.shape[0]) if weight is None else jnp.asarray(weight, jnp.float32)
    if w.shape != (x.shape[0],):
        raise ValueError(f"weight must be float[{x.shape[0]}], got shape {w.shape}")
    return KMeans(*_kmeans_jit(x, w, validation.key(key), k=k,
                               n_init=validation.positive_int(n_init, "n_init"),
                               n_iter=validation.positive_int(n_iter, "n_iter")))


@jax.jit
def _assign_jit(x, centres):
    return jnp.argmin(_sq(x, centres), axis=1).astype(jnp.int32)


def assign(x: Shaped[ArrayLike, "_n _features"], centres: Shaped[ArrayLike, "_k _features"]
           ) -> Int[Array, " n"]:
    """Each point's nearest centre (ties to the lower index).

    Example:
        >>> assign(np.array([[0.0], [4.0]], np.float32), np.array([[1.0], [3.0]])).tolist()
        [0, 1]
    """
    x, centres = _points(x), _points(centres, "centres")
    if centres.shape[1] != x.shape[1]:
        raise ValueError(f"centres have {centres.shape[1]} features, x has {x.shape[1]}")
    return _assign_jit(x, centres)


@functools.partial(jax.jit, static_argnames=("k",))
def _silhouette_jit(x, labels, *, k):
    onehot = jax.nn.one_hot(labels, k)
    size = onehot.sum(0)

    def row(xi_li):
        xi, li = xi_li
        dist = jnp.sqrt(jnp.maximum(((x - xi[None]) ** 2).sum(1), 0.0))
        per = dist @ onehot  # summed distance to each cluster
        own = size[li] - 1
        a = per[li] / jnp.where(own > 0, own, 1)
        mean = jnp.where((jnp.arange(k) != li) & (size > 0), per / jnp.where(size > 0, size, 1),
                         jnp.inf)
        b = mean.min()
        s = (b - a) / jnp.maximum(jnp.maximum(a, b), 1e-30)
        return jnp.where(own > 0, s, 0.0)

    return jax.lax.map(row, (x, labels), batch_size=256).mean()


def silhouette(x: Shaped[ArrayLike, "_n _features"], labels: Shaped[ArrayLike, " _n"]) -> float:
    """The mean silhouette of a clustering (Euclidean), in [-1, 1]; higher is better.

    Needs at least two clusters. Memory is ``O(n)`` per point; time ``O(n^2)``: subsample a
    large set first.

    Example:
        >>> x = np.array([[0.0], [1.0], [10.0], [11.0]], np.float32)
        >>> round(silhouette(x, np.array([0, 0, 1, 1])), 4)  # (9.5 / 10.5 + 8.5 / 9.5) / 2
        0.8997

    References:
        Rousseeuw 1987, section 2.
    """
    x = _points(x)
    labels = validation.labels(labels, x.shape[0])
    _, labels = np.unique(labels, return_inverse=True)
    k = int(labels.max()) + 1
    if k < 2:
        raise ValueError("silhouette needs at least two clusters")
    return float(_silhouette_jit(x, jnp.asarray(labels, jnp.int32), k=k))


def best_kmeans(x: Shaped[ArrayLike, "_n _features"], ks: Sequence[int], *, key: ArrayLike,
                n_init: validation.Int = 4, n_iter: validation.Int = 50
                ) -> tuple[KMeans, dict[int, float]]:
    """k-means for each ``k`` in ``ks`` (each at least 2); the fit with the largest silhouette
    (ties to the smaller ``k``), and every ``k``'s silhouette.

    Example:
        >>> x = np.array([[0.0], [0.2], [5.0], [5.1], [10.0], [10.3]], np.float32)
        >>> fit, scores = best_kmeans(x, [2, 3], key=jax.random.key(0))
        >>> fit.centres.shape[0], max(scores, key=scores.get)
        (3, 3)
    """
    x = _points(x)
    if not ks or any(not validation.is_int(k) or k < 2 for k in ks):
        raise ValueError(f"ks must be a non-empty list of ints >= 2, got {ks}")
    fits, scores = {}, {}
    for k, sub in zip(ks, jax.random.split(validation.key(key), len(ks))):
        fits[k] = kmeans(x, k=k, key=sub, n_init=n_init, n_iter=n_iter)
        distinct = len(np.unique(np.asarray(fits[k].labels)))
        scores[k] = silhouette(x, np.asarray(fits[k].labels)) if distinct > 1 else -1.0
    best = max(ks, key=lambda k: (scores[k], -k))
    return fits[best], scores


