"""NeuraL Coverage (NLC; Yuan et al., ICSE 2023): how much of each layer's joint output
distribution a set of inputs spans, measured by the covariance of the layer's neurons.

For layer ``l`` with neurons ``m_l`` (``acts[l]``: ``(batch, m_l)``; conv maps averaged over
positions, as the ``"post"`` convention gives them, which is NLC's reduction), ``C_l`` is the
covariance of its outputs over all inputs so far (dividing by the count, as the released
``Estimator``), and

``NLC = sum_l ||C_l||_1 / m_l^2``, the mean absolute covariance entry, summed over layers.

The running state holds, per layer, the count, the mean and the co-moment ``sum (a - mean)
(a - mean)^T``, merged batch by batch with Chan et al.'s exact pairwise update, so any split
of the inputs into batches, in any order, gives the same state as one pass over all of them
(up to float rounding): :func:`init`, :func:`update`, :func:`value`, and the gain of a batch,
:func:`increment`. :func:`neural_coverage` is the one-shot value.

What holds (tested in ``tests/test_nlc.py``; the critique of arXiv 2601.08729 says NLC breaks
monotonicity and order independence):

- Order and batch independence of the *value of a set*: holds (the pooled covariance does not
  depend on order).
- Monotonicity: does not hold. A new input near the mean shrinks every variance, so NLC can
  fall when inputs are added; :func:`increment` is then negative.
- Order independence of NLC-*guided selection* (keep a batch only if its increment is
  positive, as the released fuzzer does): does not hold; which batches are kept depends on the
  order they come in.

References:
    Yuan, Pang, Wang and Ma, "Revisiting Neuron Coverage for DNN Testing: A Layer-Wise and
    Distribution-Aware Criterion", ICSE 2023, section 4 (NLC) and the released code
    (``coverage.py``: ``NLC``; ``tool.py``: ``Estimator``).
    Chan, Golub and LeVeque, "Updating Formulae and a Pairwise Algorithm for Computing Sample
    Variances", Stanford CS tech. report STAN-CS-79-773, 1979 (the pairwise update).
"""

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from workbench import validation

__all__ = ["LayerMoments", "increment", "init", "neural_coverage", "update", "value"]


class LayerMoments(NamedTuple):
    """One layer's running moments."""

    count: jax.Array  # shape=(), dtype=float32: inputs seen
    mean: jax.Array  # shape=(neurons,), dtype=float32
    comoment: jax.Array  # shape=(neurons, neurons), dtype=float32: sum of centred outer products


State = Mapping[str, Any]  # {site: LayerMoments}, checked here


def _merge(moments: LayerMoments, value, rows) -> LayerMoments:
    """Chan et al.'s pairwise update: the moments of the old inputs and the counted rows."""
    w = rows.astype(value.dtype)
    n_b = w.sum()
    mean_b = (value * w[:, None]).sum(axis=0) / jnp.maximum(n_b, 1.0)
    centred = (value - mean_b[None]) * w[:, None]
    m2_b = centred.T @ centred
    n = moments.count + n_b
    delta = mean_b - moments.mean
    share = n_b / jnp.maximum(n, 1.0)
    return LayerMoments(n, moments.mean + delta * share,
                        moments.comoment + m2_b
                        + jnp.outer(delta, delta) * moments.count * share)


@jax.jit
def _update_jit(state: tuple, values: tuple, rows):
    return tuple(_merge(m, v, rows) for m, v in zip(state, values))


def _layer_value(moments: LayerMoments):
    cov = moments.comoment / jnp.maximum(moments.count, 1.0)
    return jnp.abs(cov).mean()


@jax.jit
def _value_jit(state: tuple):
    return jnp.stack([_layer_value(m) for m in state]).sum()


def init(counts: Mapping[str, int]) -> dict[str, LayerMoments]:
    """An empty state: no inputs seen, ``{site: LayerMoments}``.

    Example:
        >>> state = init({"fc": 3})
        >>> state["fc"].comoment.shape, float(value(state))
        ((3, 3), 0.0)
    """
    return {s: LayerMoments(jnp.zeros((), jnp.float32), jnp.zeros(n, jnp.float32),
                            jnp.zeros((n, n), jnp.float32))
            for s, n in validation.counts(counts).items()}


def _checked(state, acts, mask):
    acts = validation.acts(acts)
    rows = validation.row_mask(mask, next(iter(acts.values())).shape[0])
    if not isinstance(state, Mapping) or set(state) != set(acts):
        raise ValueError(f"state sites {list(state) if isinstance(state, Mapping) else state} "
                         f"differ from the acts sites {list(acts)}")
    for site, v in acts.items():
        if not isinstance(state[site], LayerMoments) or \
                state[site].mean.shape != (v.shape[1],):
            raise ValueError(f"state[{site!r}] must be LayerMoments of {v.shape[1]} neurons "
                             "(from nlc.init)")
    return acts, rows


def update(state: State, acts: validation.Acts, *, mask: validation.RowMask = None
           ) -> dict[str, LayerMoments]:
    """Folds a batch into the running moments, in one jitted call.

    Args:
        state: from :func:`init` or :func:`update`.
        acts: ``{site: (batch, neurons)}`` with the sites of ``state``.
        mask: ``bool[batch]``, the rows to count (padding excluded).

    Returns:
        The new state, in the order of ``state``.

    Example:
        >>> state = update(init({"fc": 2}), {"fc": jnp.array([[0.0, 0.0], [2.0, 2.0]])})
        >>> state["fc"].mean.tolist(), (state["fc"].comoment / state["fc"].count).tolist()
        ([1.0, 1.0], [[1.0, 1.0], [1.0, 1.0]])

    References:
        Chan, Golub and LeVeque 1979 (pairwise update); Yuan et al., ICSE 2023, section 4.
    """
    acts, rows = _checked(state, acts, mask)
    new = dict(zip(acts, _update_jit(tuple(state[s] for s in acts), tuple(acts.values()),
                                     rows)))
    return {s: new[s] for s in state}


def value(state: State) -> Float[Array, ""]:
    """NLC of the inputs folded into ``state``: the sum over layers of the mean absolute entry
    of the layer's covariance.

    Example:
        >>> float(value(update(init({"fc": 2}), {"fc": jnp.array([[0.0, 0.0], [2.0, 2.0]])})))
        1.0

    References:
        Yuan et al., ICSE 2023, section 4 (NLC as the summed covariance norm).
    """
    if not isinstance(state, Mapping) or not state or \
            not all(isinstance(m, LayerMoments) for m in state.values()):
        raise ValueError("state must be {site: LayerMoments} from nlc.init / nlc.update")
    return _value_jit(tuple(state.values()))


def increment(state: State, acts: validation.Acts, *, mask: validation.RowMask = None
              ) -> Float[Array, ""]:
    """What a batch adds to NLC: ``value(update(state, acts)) - value(state)``; negative when
    the batch narrows the layers' spread (NLC is not monotone). The released fuzzer keeps a
    batch when this is positive.

    Example:
        >>> state = update(init({"fc": 1}), {"fc": jnp.array([[0.0], [2.0]])})
        >>> round(float(increment(state, {"fc": jnp.array([[1.0]])})), 4)  # variance 1 -> 2/3
        -0.3333
    """
    return value(update(state, acts, mask=mask)) - value(state)


def neural_coverage(acts: validation.Acts) -> Float[Array, ""]:
    """NLC of one set of inputs, ``value(update(init(...), acts))``.

    Example:
        >>> float(neural_coverage({"a": jnp.array([[0.0], [2.0]]),
        ...                        "b": jnp.array([[1.0, -1.0], [3.0, 1.0]])}))  # 1 + 1
        2.0
    """
    acts = validation.acts(acts)
    return value(update(init({s: v.shape[1] for s, v in acts.items()}), acts))
