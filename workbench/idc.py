"""Importance-driven coverage (IDC; Gerasimou et al., ICSE 2020): the combinations of
activation clusters of a layer's most relevant neurons that the inputs reach.

1. Relevance: the ``m`` neurons of one layer with the largest mean relevance over the
   training inputs. The paper uses layer-wise relevance propagation (LRP); here the caller
   gives the relevance, and :func:`gradient_x_activation` computes it for the layer feeding
   the logits through a dense layer: ``a_i W_(i, c)``, the activation times the gradient of
   the predicted class's logit, which for that last layer is LRP's z-rule up to the
   per-input normalisation (and the bias share).
2. Clusters: each relevant neuron's training activations are clustered by k-means, ``k``
   chosen by the silhouette among ``ks`` (:func:`workbench.clustering.best_kmeans`; the
   silhouette on at most ``silhouette_points`` of them).
3. Coverage: an input reaches the combination of its nearest cluster centre per relevant
   neuron; IDC is the covered fraction of all ``prod_i k_i`` combinations.

References:
    Gerasimou, Eniser, Sen and Cakan, "Importance-Driven Deep Learning System Testing", ICSE
    2020, section 3 (3.1 importance by LRP, 3.2 important neurons clustering with
    silhouette-chosen k, 3.3 IDC as covered combinations over all).
    Bach et al., "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by
    Layer-Wise Relevance Propagation", PLoS ONE 2015 (LRP).
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Shaped

from workbench import clustering, validation

__all__ = ["ImportantClusters", "combinations", "fit", "gradient_x_activation", "init",
           "input_masks", "update"]


class ImportantClusters(NamedTuple):
    """The relevant neurons of a layer and their activation clusters."""

    neurons: jax.Array  # shape=(m,), dtype=int32: indices of the relevant neurons
    centres: jax.Array  # shape=(m, k_max), dtype=float32; unused slots +inf
    ks: tuple  # (m,) ints: clusters per neuron (static: it sets the combinations)


def gradient_x_activation(acts: Shaped[ArrayLike, "_n _neurons"],
                          kernel: Shaped[ArrayLike, "_neurons _classes"],
                          classes: Shaped[ArrayLike, " _n"]) -> Float[Array, " neurons"]:
    """Mean relevance of the neurons of the layer that feeds the logits
    (``logits = acts @ kernel + bias``): ``mean_x a_i(x) W_(i, c(x))``, gradient of the class
    ``c(x)`` logit times activation.

    Example:
        >>> gradient_x_activation(np.array([[1.0, 2.0]]), np.array([[3.0, 0.0], [-1.0, 5.0]]),
        ...                       np.array([0])).tolist()
        [3.0, -2.0]

    References:
        Gerasimou et al., ICSE 2020, section 3.1 (LRP; gradient x activation stated here).
    """
    a = validation.acts({"acts": acts})["acts"]
    w = validation.array(kernel, "kernel")
    if w.ndim != 2 or w.shape[0] != a.shape[1]:
        raise ValueError(f"kernel must be (neurons={a.shape[1]}, classes), got {w.shape}")
    c = validation.labels(classes, a.shape[0], "classes")
    return (a * w.T[jnp.asarray(c)]).mean(axis=0)


def fit(train_acts: Shaped[ArrayLike, "_n _neurons"], relevance: Shaped[ArrayLike, " _neurons"],
        *, m: validation.Int, key: ArrayLike, ks: Sequence[int] = (2, 3, 4, 5),
        silhouette_points: validation.Int = 1000) -> ImportantClusters:
    """The ``m`` most relevant neurons and k-means clusters of their training activations.

    Args:
        train_acts: one layer's training activations ``(n, neurons)``.
        relevance: ``float[neurons]`` (say, :func:`gradient_x_activation`); the ``m``
            largest are kept (ties to the lower index).
        m: relevant neurons.
        key: a JAX random key (k-means seeds, the silhouette's subsample).
        ks: candidate cluster counts, each at least 2.
        silhouette_points: the silhouette is computed on at most this many training values.

    Returns:
        :class:`ImportantClusters`.

    References:
        Gerasimou et al., ICSE 2020, sections 3.1 and 3.2.
    """
    a = validation.acts({"train_acts": train_acts})["train_acts"]
    r = np.asarray(relevance, np.float64)
    if r.shape != (a.shape[1],):
        raise ValueError(f"relevance must be float[{a.shape[1]}], got shape {r.shape}")
    m = validation.integer(m, "m", minimum=1, maximum=a.shape[1])
    neurons = np.argsort(-r, kind="stable")[:m]
    keys = jax.random.split(validation.key(key), 2 * m)
    centres = np.full((m, max(ks)), np.inf, np.float32)
    chosen = []
    for i, n in enumerate(neurons):  # one small k-means per relevant neuron
        values = np.asarray(a[:, n], np.float32)[:, None]
        sub = np.asarray(jax.random.permutation(keys[2 * i], len(values)))[:silhouette_points]
        best, _ = clustering.best_kmeans(values[sub], list(ks), key=keys[2 * i + 1])
        chosen.append(int(best.centres.shape[0]))
        centres[i, :chosen[-1]] = np.sort(np.asarray(best.centres)[:, 0])
    return ImportantClusters(jnp.asarray(neurons, jnp.int32), jnp.asarray(centres),
                             tuple(chosen))


def _strides(ks: tuple) -> np.ndarray:
    return np.concatenate([np.cumprod(ks[::-1])[::-1][1:], [1]]).astype(np.int64)


@jax.jit
def _combinations_jit(neurons, centres, strides, acts):
    values = acts[:, neurons]  # (n, m)
    nearest = jnp.argmin(jnp.abs(values[:, :, None] - centres[None]), axis=2)
    return (nearest * strides[None]).sum(axis=1).astype(jnp.int32)


def combinations(clusters: ImportantClusters, acts: Shaped[ArrayLike, "_batch _neurons"]
                 ) -> Int[Array, " batch"]:
    """Each input's combination: its nearest centre per relevant neuron, in mixed radix
    (neuron 0 most significant), ``0 .. prod(ks) - 1``.

    Example:
        >>> clusters = ImportantClusters(jnp.array([1, 0]), jnp.array([[0.0, 1.0, jnp.inf],
        ...                              [0.0, 5.0, 9.0]]), (2, 3))
        >>> combinations(clusters, np.array([[8.0, 0.9], [0.1, 0.0]])).tolist()  # 1*3+2, 0
        [5, 0]
    """
    a = validation.acts({"acts": acts})["acts"]
    if not isinstance(clusters, ImportantClusters):
        raise ValueError("clusters must be ImportantClusters from idc.fit")
    return _combinations_jit(clusters.neurons, clusters.centres,
                             jnp.asarray(_strides(clusters.ks), jnp.int32), a)


def init(clusters: ImportantClusters) -> Bool[Array, " combinations"]:
    """No combination covered: ``bool[prod(ks)]``."""
    return jnp.zeros(int(np.prod(clusters.ks)), bool)


def input_masks(clusters: ImportantClusters, acts: Shaped[ArrayLike, "_batch _neurons"]
                ) -> Bool[Array, "batch combinations"]:
    """Each input's combination, one-hot (for coverage-based prioritisation)."""
    combo = combinations(clusters, acts)
    return combo[:, None] == jnp.arange(int(np.prod(clusters.ks)))[None]


def update(state: Shaped[ArrayLike, " _combinations"], clusters: ImportantClusters,
           acts: Shaped[ArrayLike, "_batch _neurons"], *, mask: validation.RowMask = None
           ) -> Bool[Array, " combinations"]:
    """Folds a batch in: ``state`` with each counted input's combination set. IDC is
    ``state.mean()``.

    Example:
        >>> clusters = ImportantClusters(jnp.array([0]), jnp.array([[0.0, 1.0]]), (2,))
        >>> update(init(clusters), clusters, np.array([[0.9, 5.0]])).tolist()
        [False, True]

    References:
        Gerasimou et al., ICSE 2020, section 3.3 (IDC).
    """
    combo = combinations(clusters, acts)
    state = jnp.asarray(state)
    if state.shape != (int(np.prod(clusters.ks)),) or state.dtype != jnp.bool_:
        raise ValueError(f"state must be bool[{int(np.prod(clusters.ks))}] from idc.init")
    rows = validation.row_mask(mask, combo.shape[0])
    return state.at[jnp.where(rows, combo, state.shape[0])].set(True, mode="drop")
