"""Test-input prioritisation: which inputs to inspect (label) first, and how good an order is.

A prioritiser gives every input a *score*, higher first: :func:`order` sorts by it (ties to the
lower index). Scores from the model's softmax output (``probs: (n, classes)``):

- :func:`deepgini`: ``1 - sum_c p_c^2`` (Feng et al., ISSTA 2020).
- :func:`softmax_entropy`: ``-sum_c p_c log p_c``.
- :func:`margin`: ``1 - (p_(1) - p_(2))``, one minus the gap between the two largest
  probabilities (Weiss and Tonella's "prediction confidence score", lower gap first).
- :func:`max_probability`: ``1 - max_c p_c`` (Weiss and Tonella's "vanilla softmax").

Scores from coverage, on what each input covers alone (``{site: bool[n, ...]}``, as
:func:`workbench.coverage.input_masks` gives for every criterion, or one-hot surprise buckets):

- :func:`coverage_total` (CTM): how many targets an input covers.
- :func:`coverage_additional` (CAM): an order, not a score: greedily the input that covers the
  most targets not yet covered.

Surprise-based ordering is :func:`order` of the surprise values (LSA, DSA, MDSA of
:mod:`workbench.surprise`): the most surprising first.

An order is judged against the faults, ``bool[n]`` (say, the misclassified inputs), by
:func:`apfd` and the curve :func:`faults_found`.

References:
    Feng et al., "DeepGini: Prioritizing Massive Tests to Enhance the Robustness of Deep
    Neural Networks", ISSTA 2020, section 3 (Gini score, equation 1; CTM and CAM baselines)
    and section 4.3 (APFD).
    Rothermel, Untch, Chu and Harrold, "Prioritizing Test Cases For Regression Testing", IEEE
    TSE 27(10), 2001, section 3 (APFD) and section 2.2 (total and additional coverage).
    Weiss and Tonella, "Simple Techniques Work Surprisingly Well for Neural Network Test
    Prioritization and Active Learning", ISSTA 2022, section 2 (softmax-based prioritisers)
    and the released ``dnn-tip`` package (``prioritizers.cam``, ``apfd.apfd_from_order``).
"""

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, Shaped

from workbench import validation

__all__ = [
    "apfd",
    "coverage_additional",
    "coverage_total",
    "deepgini",
    "faults_found",
    "margin",
    "max_probability",
    "order",
    "softmax_entropy",
]

Probs = Shaped[ArrayLike, "_n _classes"]
Scores = Shaped[ArrayLike, " _n"]
Masks = Mapping[str, Shaped[ArrayLike, "_n ..."]]


def _probs(probs) -> jax.Array:
    p = validation.array(probs, "probs")
    if p.ndim != 2 or 0 in p.shape or not jnp.issubdtype(p.dtype, jnp.floating):
        raise ValueError(f"probs must be floating (n, classes), got {p.dtype}{list(p.shape)}")
    host = np.asarray(p, np.float64)
    if not np.isfinite(host).all() or host.min() < 0 or \
            np.abs(host.sum(axis=1) - 1).max() > 1e-3:
        raise ValueError("probs must be softmax outputs: rows of non-negative values summing "
                         "to 1 (apply jax.nn.softmax to logits)")
    return p


@jax.jit
def _softmax_scores(p):
    top2 = jax.lax.top_k(p, min(2, p.shape[1]))[0]
    second = top2[:, 1] if p.shape[1] > 1 else jnp.zeros_like(top2[:, 0])
    entropy = -jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
    entropy = jnp.maximum(entropy, 0.0)  # no -0.0 for a one-hot row
    return {"deepgini": 1.0 - (p * p).sum(axis=1), "entropy": entropy,
            "margin": 1.0 - (top2[:, 0] - second), "max_probability": 1.0 - top2[:, 0]}


def deepgini(probs: Probs) -> Float[Array, " n"]:
    """DeepGini's score ``xi(x) = 1 - sum_c p_c(x)^2``: 0 for a one-hot output, largest
    (``1 - 1/C``) for a uniform one.

    Example:
        >>> np.round(np.asarray(deepgini(np.array([[1.0, 0.0], [0.5, 0.5]])), np.float64), 3
        ...          ).tolist()
        [0.0, 0.5]

    References:
        Feng et al., ISSTA 2020, section 3.2, equation 1.
    """
    return _softmax_scores(_probs(probs))["deepgini"]


def softmax_entropy(probs: Probs) -> Float[Array, " n"]:
    """The softmax output's entropy ``-sum_c p_c log p_c`` (natural log; ``0 log 0 = 0``).

    Example (``+ 0.0``: XLA's fast math, on by default, may return a certain input's 0 as -0.0):
        >>> (np.round(np.asarray(softmax_entropy(np.array([[1.0, 0.0], [0.5, 0.5]])),
        ...                    np.float64), 4) + 0.0).tolist()
        [0.0, 0.6931]

    References:
        Weiss and Tonella, ISSTA 2022, section 2.1 (softmax entropy).
    """
    return _softmax_scores(_probs(probs))["entropy"]


def margin(probs: Probs) -> Float[Array, " n"]:
    """``1 - (p_(1) - p_(2))``: the closer the two most likely classes, the higher.

    Example:
        >>> np.round(np.asarray(margin(np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])),
        ...                     np.float64), 3).tolist()
        [0.5, 1.0]

    References:
        Weiss and Tonella, ISSTA 2022, section 2.1 (prediction confidence score, PCS).
    """
    return _softmax_scores(_probs(probs))["margin"]


def max_probability(probs: Probs) -> Float[Array, " n"]:
    """``1 - max_c p_c``: the least confident first.

    Example:
        >>> np.round(np.asarray(max_probability(np.array([[0.7, 0.3], [0.5, 0.5]])),
        ...                     np.float64), 3).tolist()
        [0.3, 0.5]

    References:
        Weiss and Tonella, ISSTA 2022, section 2.1 (vanilla softmax).
    """
    return _softmax_scores(_probs(probs))["max_probability"]


def _matrix(masks, name: str = "masks") -> jax.Array:
    """Per-input masks ``{site: bool[n, ...]}`` as one ``bool[n, targets]``."""
    if not isinstance(masks, Mapping) or not masks:
        raise ValueError(f"{name} must be a non-empty dict {{site: bool[n, ...]}}")
    parts = []
    for site, mask in masks.items():
        mask = validation.array(mask, f"{name}[{site!r}]")
        if mask.dtype != jnp.bool_ or mask.ndim < 2:
            raise ValueError(f"{name}[{site!r}] must be bool[n, targets...] (what each input "
                             f"covers alone), got {mask.dtype}{list(mask.shape)}")
        parts.append(mask.reshape(mask.shape[0], -1))
    if len({p.shape[0] for p in parts}) != 1:
        raise ValueError(f"{name}: sites have different numbers of inputs "
                         f"{[p.shape[0] for p in parts]}")
    return jnp.concatenate(parts, axis=1)


def coverage_total(masks: Masks) -> Int[Array, " n"]:
    """Coverage-total (CTM) score: the number of targets (neurons, sections, corners, buckets)
    each input covers on its own. :func:`order` of it is the total-coverage order.

    Example:
        >>> coverage_total({"fc": np.array([[True, False, True], [False, True, False]])}
        ...                ).tolist()
        [2, 1]

    References:
        Rothermel et al., TSE 2001, section 2.2 ("total" coverage prioritisation); Feng et
        al., ISSTA 2020, section 4.2 (CTM).
    """
    return _matrix(masks).sum(axis=1, dtype=jnp.int32)


@jax.jit
def _cam_jit(matrix):
    n = matrix.shape[0]
    m = matrix.astype(jnp.float32)
    total = m.sum(axis=1)

    def step(carry):
        uncovered, picked, out, i = carry
        gain = jnp.where(picked, -1.0, m @ uncovered)
        best = jnp.argmax(gain)  # the first of the largest: ties to the lower index
        return (uncovered * (1.0 - m[best]), picked.at[best].set(True), out.at[i].set(best),
                i + 1)

    def more(carry):
        uncovered, picked, _, i = carry
        return (i < n) & (jnp.where(picked, 0.0, m @ uncovered).max() > 0)

    init = (jnp.ones(m.shape[1]), jnp.zeros(n, bool), jnp.zeros(n, jnp.int32), 0)
    _, picked, greedy, used = jax.lax.while_loop(more, step, init)
    # The rest by total coverage, ties to the lower index (a stable sort of the keys).
    rest = jnp.argsort(jnp.where(picked, jnp.inf, -total), stable=True)
    position = jnp.arange(n)
    return jnp.where(position < used, greedy, rest[jnp.clip(position - used, 0, n - 1)])


def coverage_additional(masks: Masks) -> Int[Array, " n"]:
    """Coverage-additional (CAM) order: repeatedly the input covering the most targets that no
    input picked before covers (ties to the lower index), until no input adds any; then the
    rest by their total coverage (CTM), as ``dnn-tip``'s ``cam`` does (Rothermel et al.
    instead start the greedy pass again; both agree up to the first full coverage).

    Args:
        masks: what each input covers alone, ``{site: bool[n, ...]}``.

    Returns:
        ``int[n]``, a permutation of the inputs, the first to inspect first.

    Example:
        >>> masks = {"fc": np.array([[True, True, False, False], [True, True, True, False],
        ...                          [False, False, False, True], [True, False, False, False]])}
        >>> coverage_additional(masks).tolist()  # 1 adds 3, then 2 adds 1; 0 and 3 by total
        [1, 2, 0, 3]

    References:
        Rothermel et al., TSE 2001, section 2.2 ("additional" coverage prioritisation); Feng
        et al., ISSTA 2020, section 4.2 (CAM); ``dnn-tip`` ``prioritizers.cam``.
    """
    return _cam_jit(_matrix(masks))


def _scores(scores, name: str = "scores") -> jax.Array:
    s = validation.array(scores, name)
    if s.ndim != 1 or s.shape[0] == 0 or not (jnp.issubdtype(s.dtype, jnp.floating)
                                              or jnp.issubdtype(s.dtype, jnp.integer)):
        raise ValueError(f"{name} must be a non-empty real vector, got {s.dtype}{list(s.shape)}")
    if jnp.issubdtype(s.dtype, jnp.floating) and bool(jnp.isnan(s).any()):
        raise ValueError(f"{name} contains NaN")
    return s


def order(scores: Scores) -> Int[Array, " n"]:
    """The inputs by descending score, ties to the lower index (a stable sort).

    Example:
        >>> order(np.array([0.2, 0.9, 0.2, 0.5])).tolist()
        [1, 3, 0, 2]
    """
    s = _scores(scores)
    return jnp.argsort(-s.astype(jnp.float32) if s.dtype == jnp.bool_ else -s, stable=True)


def _faults(faults, n: int) -> np.ndarray:
    f = np.asarray(faults)
    if f.shape != (n,) or f.dtype != np.bool_:
        raise ValueError(f"faults must be bool[{n}] (true where the input reveals a fault), "
                         f"got {f.dtype}{list(f.shape)}")
    if not f.any():
        raise ValueError("faults has no true entry: APFD is undefined without faults")
    return f


def _permutation(ordering, n: int | None = None) -> np.ndarray:
    o = np.asarray(ordering)
    if o.ndim != 1 or not np.issubdtype(o.dtype, np.integer) or \
            not np.array_equal(np.sort(o), np.arange(len(o))) or (n is not None and len(o) != n):
        raise ValueError(f"order must be a permutation of 0..{len(o) - 1 if n is None else n - 1}"
                         f", got {o.dtype}{list(o.shape)}")
    return o


def faults_found(ordering: Shaped[ArrayLike, " _n"], faults: Shaped[ArrayLike, " _n"]
                 ) -> Int[Array, " n"]:
    """The curve of faults found against inputs inspected: entry ``i`` counts the faults among
    the first ``i + 1`` inputs of ``ordering``.

    Example:
        >>> faults_found(np.array([2, 0, 1, 3]), np.array([True, False, True, False])).tolist()
        [1, 2, 2, 2]
    """
    o = _permutation(ordering)
    return jnp.cumsum(jnp.asarray(_faults(faults, len(o))[o]), dtype=jnp.int32)


def apfd(ordering: Shaped[ArrayLike, " _n"], faults: Shaped[ArrayLike, " _n"], *,
         scores: Scores | None = None) -> float:
    """Average percentage of faults detected: ``1 - sum_i TF_i / (k n) + 1 / (2 n)``, ``TF_i``
    the (1-based) position of the ``i``-th of the ``k`` faults among the ``n`` inputs in
    ``ordering``. 1 is best (all faults first), 0.5 a random order's expectation.

    Ties: an order is a strict ranking, so a tie in the scores was already broken by whoever
    made it (:func:`order`: the lower index first). Give ``scores`` to take the expectation
    over every way of breaking the ties instead: the inputs of one score that fill positions
    ``s + 1 .. s + g`` each get the mean position ``s + (g + 1) / 2``.

    Args:
        ordering: ``int[n]``, a permutation: the first to inspect first.
        faults: ``bool[n]`` by input index, true where the input reveals a fault (say, it is
            misclassified).
        scores: optional ``float[n]`` by input index, the scores ``ordering`` sorts
            descending; inputs with equal scores share their mean position.

    Returns:
        APFD, a float.

    Example:
        >>> faults = np.array([False, True, False, True])
        >>> apfd(np.array([1, 3, 0, 2]), faults)  # 1 - (1 + 2) / 8 + 1 / 8
        0.75
        >>> apfd(np.array([0, 1, 2, 3]), faults, scores=np.zeros(4))  # 1 - 5 / 8 + 1 / 8
        0.5

    References:
        Rothermel et al., TSE 2001, section 3 (APFD); Feng et al., ISSTA 2020, section 4.3.
    """
    o = _permutation(ordering)
    n = len(o)
    f = _faults(faults, n)
    positions = np.arange(1, n + 1, dtype=np.float64)
    if scores is not None:
        s = np.asarray(_scores(scores), np.float64)
        if s.shape != (n,):
            raise ValueError(f"scores must have {n} entries, got {s.shape}")
        ranked = s[o]
        if np.any(np.diff(ranked) > 0):
            raise ValueError("ordering does not sort scores in descending order")
        # Each run of equal scores shares its mean position.
        _, first, size = np.unique(-ranked, return_index=True, return_counts=True)
        positions = np.repeat(first + (size + 1) / 2.0, size)
    k = int(f.sum())
    return float(1.0 - positions[f[o]].sum() / (k * n) + 1.0 / (2 * n))

