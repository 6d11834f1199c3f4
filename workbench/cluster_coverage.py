"""Cluster coverage (TensorFuzz): an input is new coverage when its activation vector lies
farther than a threshold from every vector stored so far; it is then stored.

The corpus is a fixed-capacity buffer on the device, scanned input by input (``lax.scan``), so
within a batch a later input is compared with the earlier ones stored before it: the result
is exactly TensorFuzz's sequential rule (their approximate nearest-neighbour search is exact
here), and folding batches one after another equals one pass over their concatenation. The
rule depends on the order of the inputs by definition.

References:
    Odena, Olsson, Andersen and Goodfellow, "TensorFuzz: Debugging Neural Networks with
    Coverage-Guided Fuzzing", ICML 2019, section 3 ("Coverage-guided fuzzing ... nearest
    neighbour"): an input adds coverage if its activation vector is farther than a distance
    threshold (L2) from its nearest neighbour in the corpus.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Shaped

from workbench import validation

__all__ = ["Corpus", "init", "update"]


class Corpus(NamedTuple):
    """The stored activation vectors."""

    vectors: jax.Array  # shape=(capacity, features), dtype=float32; rows >= count unused
    count: jax.Array  # shape=(), dtype=int32: vectors stored


def init(features: validation.Int, *, capacity: validation.Int) -> Corpus:
    """An empty corpus for ``features``-long vectors, holding at most ``capacity``.

    Example:
        >>> init(3, capacity=10).vectors.shape
        (10, 3)
    """
    features = validation.positive_int(features, "features")
    capacity = validation.positive_int(capacity, "capacity")
    return Corpus(jnp.zeros((capacity, features), jnp.float32), jnp.zeros((), jnp.int32))


@jax.jit
def _update_jit(corpus, vectors, rows, threshold):
    capacity = corpus.vectors.shape[0]

    def step(carry, args):
        stored, count = carry
        x, row = args
        d2 = ((stored - x[None]) ** 2).sum(axis=1)
        d2 = jnp.where(jnp.arange(capacity) < count, d2, jnp.inf)
        new = row & (d2.min() > threshold * threshold) & (count < capacity)
        stored = jnp.where(new, stored.at[jnp.minimum(count, capacity - 1)].set(x), stored)
        return (stored, count + new.astype(jnp.int32)), new

    (stored, count), new = jax.lax.scan(step, (corpus.vectors, corpus.count), (vectors, rows))
    return Corpus(stored, count), new


def update(corpus: Corpus, vectors: Shaped[ArrayLike, "_batch _features"], *,
           threshold: validation.Float, mask: validation.RowMask = None
           ) -> tuple[Corpus, Bool[Array, " batch"]]:
    """Folds a batch into the corpus, in order: input ``i`` is new (and stored) when its L2
    distance to every stored vector is greater than ``threshold`` and the corpus has room.

    Args:
        corpus: from :func:`init` or :func:`update`.
        vectors: ``(batch, features)`` activation vectors (say, one site's activations, or the
            logits, as TensorFuzz uses).
        threshold: the distance (traced: changing it does not recompile).
        mask: ``bool[batch]``, the rows to consider.

    Returns:
        The new corpus and ``bool[batch]``, which inputs were new. Coverage is ``count``.

    Example:
        >>> corpus, new = update(init(1, capacity=8), jnp.array([[0.0], [0.5], [2.0]]),
        ...                      threshold=1.0)
        >>> new.tolist(), int(corpus.count)
        ([True, False, True], 2)

    References:
        Odena et al., ICML 2019, section 3.
    """
    if not isinstance(corpus, Corpus):
        raise ValueError("corpus must be a Corpus from cluster_coverage.init")
    v = validation.acts({"vectors": vectors}, "vectors")["vectors"]
    if v.shape[1] != corpus.vectors.shape[1]:
        raise ValueError(f"vectors have {v.shape[1]} features, the corpus "
                         f"{corpus.vectors.shape[1]}")
    rows = validation.row_mask(mask, v.shape[0])
    threshold = validation.scalar(threshold, "threshold", minimum=0.0)
    return _update_jit(corpus, v.astype(jnp.float32), rows, jnp.float32(threshold))


