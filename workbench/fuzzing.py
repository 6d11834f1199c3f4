"""Coverage-guided fuzzing (DeepHunter, TensorFuzz): mutate seeds, keep what adds coverage.

A seed queue starts with the seeds that pass the oracle. Every step draws ``batch_size`` seeds
from it by DeepHunter's priority (Equation 3: a seed fuzzed ``f`` times is drawn with weight
``1 - f / gamma``, at least ``p_min``), shares ``batch_size * mutants_per_seed`` mutants among
them by the power schedule (each seed's share is proportional to the change it may still take,
``beta * size - sum |s - s0|``), makes every mutant with one random mutation of
:mod:`workbench.mutations` (at most one affine change per lineage; the mutant is dropped unless
:func:`workbench.mutations.validity` holds against its original), runs the model on all of them
and asks the oracle. A failing mutant is recorded with its lineage; a passing one joins the
queue when it covers something the queue did not: the feedback criterion's running state
(:func:`workbench.coverage.update` form; TKNP: :func:`workbench.patterns.patterns_update`).
Mutants are judged in order within a step, as DeepHunter's one-by-one loop would (a mutant is
kept when it is the first to cover some element), so a batch keeps what a sequence would keep.

The whole step (selection, mutation, validity, forward passes, oracle, coverage, queue and
failure updates) is one jitted call on fixed shapes; the carry is donated, so the queue is
updated in place, and nothing recompiles from step to step. ``guided=False`` is random
mutation at the same budget: the same loop with the coverage gate off (every valid passing
mutant joins the queue, as in DeepHunter's random mode, which also selects uniformly; here the
selection stays the same so that only the feedback differs).

Oracles (``ORACLES``):

- ``"misclassification"``: the model's class differs from the seed's label;
- ``"disagreement"``: the model and ``others`` do not all agree (DeepXplore's oracle);
- ``"quantization"``: the model and its copy in ``precision`` (weights and inputs cast to
  float16 or bfloat16) disagree (TensorFuzz).

References:
    Xie et al., "DeepHunter: A Coverage-Guided Fuzz Testing Framework for Deep Neural
    Networks", ISSTA 2019, section 3 (Algorithm 1: the fuzzing loop; Equation 3: seed
    priority, with the released code's gamma = 5 and p_min = 0.3, ``lib/queue.py``) and the
    arXiv version (1809.01266, Algorithm 1's ``PowerSchedule``, as NeuraL-Coverage's
    ``fuzz.py`` implements it).
    Odena et al., "TensorFuzz: Debugging Neural Networks with Coverage-Guided Fuzzing", ICML
    2019 (disagreements between a model and its 16-bit quantised copy).
    Pei et al., "DeepXplore", SOSP 2017 (disagreement among several models as the oracle).
"""

import functools
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Shaped

from workbench import activations, coverage, mutations, patterns, profiles, validation

__all__ = [
    "FEEDBACK",
    "ORACLES",
    "PRECISIONS",
    "Lineage",
    "Result",
    "chain",
    "fuzz",
    "replay_failure",
]

ORACLES = ("misclassification", "disagreement", "quantization")
FEEDBACK = (*coverage.CRITERIA, "tknp")
PRECISIONS = ("float16", "bfloat16")
_K_DEFAULT = {"kmnc": 10, "tknc": 2, "tknp": 2}  # KMNC's sections, TKNC's and TKNP's top k
_N_PIXEL = len(mutations.PIXEL)

Model = Any  # a Flax NNX model (only the model layer imports Flax)
Scalar = float | ArrayLike


class Lineage(NamedTuple):
    """How every queued input and every failure was made: parent, mutation, key."""

    queue_parent: np.ndarray  # shape=(queue,), int32: the queue entry mutated (-1: a seed)
    queue_root: np.ndarray  # shape=(queue,), int32: index of the original seed in ``seeds``
    queue_op: np.ndarray  # shape=(queue,), int32: index in ``mutations.MUTATIONS``
    queue_params: np.ndarray  # shape=(queue, 2), float32
    queue_key: np.ndarray  # shape=(queue, 2), uint32: the mutation's key data
    failure_parent: np.ndarray  # shape=(failures,), int32: the queue entry mutated
    failure_op: np.ndarray  # shape=(failures,), int32
    failure_params: np.ndarray  # shape=(failures, 2), float32
    failure_key: np.ndarray  # shape=(failures, 2), uint32


class Result(NamedTuple):
    """What :func:`fuzz` found: the failures with their lineage, and coverage over time."""

    failures: np.ndarray  # shape=(f, h, w, c), float32: the failing mutants
    seed_index: np.ndarray  # shape=(f,), int32: the seed each came from (index in ``seeds``)
    labels: np.ndarray  # shape=(f,), int32: that seed's label
    predictions: np.ndarray  # shape=(outputs, f), int32: the oracle's models' classes
    found_at: np.ndarray  # shape=(f,), int32: mutants generated when it was found
    history: dict  # per step, arrays: mutants, valid, coverage, failures, queue, seconds
    coverage: float  # the feedback criterion at the end (a ratio; TKNP: distinct patterns)
    coverage_before: float  # the same on the seeds alone
    mutants: int  # mutants generated
    valid: int  # of them, valid (Equations 1-2, changed, pixels in range)
    queue_size: int  # seeds and kept mutants
    seeds_used: int  # seeds that passed the oracle and were fuzzed
    failures_total: int  # failures found (``len(failures)`` unless ``max_failures`` cut it)
    dropped: int  # mutants to queue that the full queue could not take
    lineage: Lineage


# --------------------------------------------------------------------------- feedback


def _pack(bits):
    """``bool[n, total]`` -> ``uint32[n, words]``, bit ``i`` in word ``i // 32`` at bit
    ``i % 32``: the layout of :class:`workbench.patterns.PatternState` rows (tested)."""
    pad = -bits.shape[1] % 32
    bits = jnp.pad(bits, ((0, 0), (0, pad))).reshape(bits.shape[0], -1, 32)
    shifts = jnp.arange(32, dtype=jnp.uint32)
    return (bits.astype(jnp.uint32) << shifts[None, None]).sum(axis=2, dtype=jnp.uint32)


def _novel_patterns(state: patterns.PatternState, packed, rows):
    """Which of ``packed[rows]`` are in neither ``state`` nor an earlier row: one sort of the
    table and the batch (table rows first among equals, then batch order)."""
    capacity, n = state.table.shape[0], packed.shape[0]
    both = jnp.concatenate([state.table, packed])
    empty = jnp.concatenate([jnp.arange(capacity) >= state.count, ~rows])
    batch = jnp.arange(capacity + n) >= capacity
    keys = [jnp.arange(capacity + n), batch] + [both[:, w] for w in
                                                range(both.shape[1] - 1, -1, -1)] + [empty]
    order = jnp.lexsort(keys)
    sorted_rows, sorted_empty = both[order], empty[order]
    first = jnp.concatenate([jnp.ones(1, bool), (sorted_rows[1:] != sorted_rows[:-1]).any(1)])
    novel = first & batch[order] & ~sorted_empty
    return jnp.zeros(capacity + n, bool).at[order].set(novel)[capacity:]


def _options(consts, feedback, k, minmax):
    return {"criterion": feedback, "threshold": consts["threshold"], "k": k,
            "minmax_per_input": minmax, "profile": consts["profile"],
            "std_multiple": consts["std_multiple"]}


def _feedback(consts, state, acts, rows, *, feedback, k, minmax):
    """``(gain, state)``: which rows are the first to cover something new, and the state with
    every row of ``rows`` folded in."""
    if feedback == "tknp":
        bits = jnp.concatenate([patterns.top_k_mask(v, k=k) for v in acts.values()], axis=1)
        gain = _novel_patterns(state, _pack(bits), rows)
        return gain, patterns.patterns_update(state, acts, mask=rows)
    options = _options(consts, feedback, k, minmax)
    empty = {site: jnp.zeros_like(m) for site, m in state.items()}
    per_row = jax.vmap(lambda row: coverage.update(
        empty, {s: v[None] for s, v in row.items()}, **options))(acts)
    flat = jnp.concatenate([per_row[s].reshape(rows.shape[0], -1) for s in state], axis=1)
    seen = jnp.concatenate([state[s].reshape(-1) for s in state])
    new = flat & ~seen[None] & rows[:, None]
    first = jnp.argmax(new, axis=0)
    gain = jnp.zeros(rows.shape[0], bool).at[first].max(new.any(axis=0))
    folded = {s: state[s] | (per_row[s] & rows.reshape(-1, *[1] * (per_row[s].ndim - 1))
                             ).any(axis=0) for s in state}
    return gain, folded


def _value(state, feedback):
    """The criterion's value as a float32 scalar: covered fraction, or TKNP's count."""
    if feedback == "tknp":
        return state.count.astype(jnp.float32)
    covered = sum(m.sum(dtype=jnp.int32) for m in state.values())
    return covered.astype(jnp.float32) / sum(m.size for m in state.values())


# ----------------------------------------------------------------------------- oracle


def _classes(graphdefs, consts, x, conv, precision):
    """``(trace, predictions)``: the model's trace and the oracle's classes ``(outputs, n)``:
    the model, then ``others`` (disagreement) or the low-precision copy (quantization)."""
    trace = activations.neurons(graphdefs[0], consts["states"][0], x, conv)
    preds = [jnp.argmax(trace.logits, axis=-1)]
    for g, s in zip(graphdefs[1:], consts["states"][1:]):
        preds.append(jnp.argmax(activations.forward(g, s, x), axis=-1))
    if precision is not None:
        low = activations.forward(graphdefs[0], consts["low_state"], x.astype(precision))
        preds.append(jnp.argmax(low, axis=-1))
    return trace, jnp.stack(preds).astype(jnp.int32)


def _fails(oracle, preds, labels):
    if oracle == "misclassification":
        return preds[0] != labels
    return (preds != preds[:1]).any(axis=0)


# ------------------------------------------------------------------------------- step


def _coverage_state(carry, feedback, k, sites):
    if feedback == "tknp":
        return patterns.PatternState(*carry["state"], k, sites)
    return carry["state"]


def _stored_state(state, feedback):
    return (state.table, state.count, state.overflow) if feedback == "tknp" else state


def _fold_seeds(consts, state, images, labels, rows, *, graphdefs, conv, oracle, precision,
                feedback, k, minmax, sites):
    """The dry run on one chunk of seeds: the oracle's classes, and the coverage of the seeds
    that pass it folded into ``state`` (the batch form of the criterion)."""
    trace, preds = _classes(graphdefs, consts, images, conv, precision)
    passed = rows & ~_fails(oracle, preds, labels)
    if feedback == "tknp":
        state = patterns.patterns_update(patterns.PatternState(*state, k, sites), trace.acts,
                                         mask=passed)
    else:
        state = coverage.update(state, trace.acts, mask=passed, **_options(consts, feedback,
                                                                           k, minmax))
    return _stored_state(state, feedback), preds


_fold_seeds_jit = jax.jit(_fold_seeds, static_argnames=(
    "graphdefs", "conv", "oracle", "precision", "feedback", "k", "minmax", "sites"))


def _select(consts, q, key, n_picks, n_mutants):
    """Seeds by priority (DeepHunter's Equation 3), and the power schedule: mutant slot
    ``j`` goes to the seed whose share of ``n_mutants`` (proportional to
    ``beta * size - sum |s - reference|``) covers ``j + 1/2``."""
    capacity = q["image"].shape[0]
    priority = _priority(q["fuzzed"], consts["gamma"], consts["p_min"])
    logits = jnp.where(jnp.arange(capacity) < q["size"], jnp.log(priority), -jnp.inf)
    pick = jax.random.categorical(key, logits, shape=(n_picks,))
    reference = jax.vmap(mutations.warp)(consts["originals"][q["root"][pick]],
                                         q["affine_op"][pick], q["affine_params"][pick])
    parent = q["image"][pick]
    change = jnp.abs(parent - reference).reshape(n_picks, -1).sum(axis=1)
    potential = jnp.maximum(consts["beta"] * parent[0].size - change, 0.0)
    return pick, _schedule(potential, n_mutants), parent, reference


def _priority(fuzzed, gamma, p_min):
    """DeepHunter's Equation 3: ``1 - f / gamma`` while ``f < (1 - p_min) * gamma``, then
    ``p_min``, for a seed fuzzed ``f`` times."""
    fuzzed = fuzzed.astype(jnp.float32)
    return jnp.where(fuzzed < (1.0 - p_min) * gamma, 1.0 - fuzzed / gamma, p_min)


def _schedule(potential, n_mutants: int):
    """The power schedule: ``int32[n_mutants]``, the seed of each mutant slot; seed ``i`` gets
    a share of the slots proportional to ``potential[i]`` (equal shares when all are 0)."""
    share = jnp.where(potential.sum() > 0, potential, 1.0)
    bounds = jnp.cumsum(share) / share.sum() * n_mutants
    slot = jnp.searchsorted(bounds, jnp.arange(n_mutants) + 0.5, side="right")
    return jnp.minimum(slot, potential.shape[0] - 1).astype(jnp.int32)


def _mutants(consts, q, pick, slot, parent, reference, key, n_mutants):
    """One random mutation per slot (an affine one only where the lineage has none), and
    whether each mutant is valid (Equations 1-2, changed, a mutation allowed)."""
    k_op, k_par, k_mut = jax.random.split(key, 3)
    had_affine = q["affine_op"][pick][slot] >= 0
    pixel = jnp.arange(len(mutations.MUTATIONS)) < _N_PIXEL
    allowed = consts["allowed"][None] & (pixel[None] | ~had_affine[:, None])
    op = jax.random.categorical(k_op, jnp.where(allowed, 0.0, -jnp.inf)).astype(jnp.int32)
    bounds = consts["ranges"][op]
    params = bounds[..., 0] + (bounds[..., 1] - bounds[..., 0]) * jax.random.uniform(
        k_par, (n_mutants, 2))
    keys = jax.random.split(k_mut, n_mutants)
    source, ref = parent[slot], reference[slot]
    mutant = jax.vmap(mutations.mutate)(source, op, params, keys)
    affine = op >= _N_PIXEL
    flat = lambda a: a.reshape(n_mutants, -1)
    l0 = jnp.where(affine, flat(source != ref).sum(axis=1, dtype=jnp.int32),
                   q["l0"][pick][slot])
    linf = jnp.where(affine, flat(jnp.abs(source - ref)).max(axis=1), q["linf"][pick][slot])
    new_ref = jax.vmap(mutations.warp)(ref, op, params)
    check = functools.partial(mutations.validity, alpha=consts["alpha"], beta=consts["beta"])
    valid = jax.vmap(check)(new_ref, mutant, l0, linf)[0]
    valid = valid & flat(mutant != source).any(axis=1) & allowed.any(axis=1)
    entry = {"op": op, "params": params, "key": jax.random.key_data(keys), "l0": l0,
             "linf": linf, "affine_op": jnp.where(affine, op, q["affine_op"][pick][slot]),
             "affine_params": jnp.where(affine[:, None], params,
                                        q["affine_params"][pick][slot])}
    return mutant, valid, entry


def _append(buffer, rows, count, values):
    """Writes ``values[rows]`` after the first ``count`` entries of ``buffer`` (what does not
    fit is dropped); returns the buffer and how many rows fitted."""
    capacity = next(iter(buffer.values())).shape[0]
    at = count + jnp.cumsum(rows, dtype=jnp.int32) - 1
    fits = rows & (at < capacity)
    at = jnp.where(fits, at, capacity)
    return ({name: buffer[name].at[at].set(values[name], mode="drop") for name in buffer},
            fits.sum(dtype=jnp.int32))


def _step(consts, carry, t, *, graphdefs, conv, oracle, precision, feedback, k, minmax, sites,
          n_picks, n_mutants):
    """One step of the fuzzing loop (DeepHunter's Algorithm 1, batched)."""
    key = jax.random.fold_in(consts["key"], t)
    k_pick, k_mutate = jax.random.split(key)
    q = dict(carry["queue"])
    pick, slot, parent, reference = _select(consts, q, k_pick, n_picks, n_mutants)
    q["fuzzed"] = q["fuzzed"].at[pick].add(1)
    mutant, valid, entry = _mutants(consts, q, pick, slot, parent, reference, k_mutate,
                                    n_mutants)
    root = q["root"][pick][slot]
    trace, preds = _classes(graphdefs, consts, mutant, conv, precision)
    failed = valid & _fails(oracle, preds, consts["labels"][root])
    passed = valid & ~failed
    state = _coverage_state(carry, feedback, k, sites)
    gain, state = _feedback(consts, state, trace.acts, passed, feedback=feedback, k=k,
                            minmax=minmax)
    keep = jnp.where(consts["guided"], gain, passed)

    values = {**entry, "image": mutant, "root": root, "parent": pick[slot]}
    fields = {name: q[name] for name in q if name not in ("fuzzed", "size")}
    fields, added = _append(fields, keep, q["size"], values)
    queue = {**fields, "fuzzed": q["fuzzed"], "size": q["size"] + added}
    mutants = carry["mutants"] + n_mutants
    values = {**entry, "image": mutant, "root": root, "parent": pick[slot], "preds": preds.T,
              "found_at": carry["mutants"] + jnp.arange(1, n_mutants + 1, dtype=jnp.int32)}
    found, _ = _append(carry["found"], failed, carry["n_failed"], values)
    carry = {"queue": queue, "found": found, "state": _stored_state(state, feedback),
             "mutants": mutants, "valid": carry["valid"] + valid.sum(dtype=jnp.int32),
             "n_failed": carry["n_failed"] + failed.sum(dtype=jnp.int32),
             "dropped": carry["dropped"] + keep.sum(dtype=jnp.int32) - added}
    stats = {"mutants": mutants, "valid": carry["valid"], "coverage": _value(state, feedback),
             "failures": carry["n_failed"], "queue": queue["size"]}
    return carry, stats


_STATIC = ("graphdefs", "conv", "oracle", "precision", "feedback", "k", "minmax", "sites",
           "n_picks", "n_mutants")
_step_jit = jax.jit(_step, static_argnames=_STATIC, donate_argnums=(1,))


# ------------------------------------------------------------------------------ public


def _check_models(model, others, oracle, seeds):
    others = tuple(others or ())
    if oracle == "disagreement" and not others:
        raise ValueError("oracle 'disagreement' needs the other models: others=[model2, ...]")
    if oracle != "disagreement" and others:
        raise ValueError(f"others are only used by oracle 'disagreement', not {oracle!r}")
    parts = [activations.split(m) for m in (model, *others)]
    for part in parts:
        activations.check_model_input(part, seeds, "seeds")
    return tuple(p[0] for p in parts), tuple(p[1] for p in parts)


def _check_seeds(seeds, labels, oracle):
    seeds = validation.images(seeds, "seeds")
    if seeds.ndim != 4 or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty batch of images (n, height, width, "
                         f"channels), got shape {tuple(seeds.shape)}")
    seeds = np.asarray(seeds, np.float32)
    if seeds.min() < 0 or seeds.max() > 1:
        raise ValueError(f"seeds must lie in [0, 1], got [{seeds.min():g}, {seeds.max():g}]")
    if labels is None:
        if oracle == "misclassification":
            raise ValueError("oracle 'misclassification' needs the seeds' labels")
        return seeds, None
    return seeds, validation.labels(labels, len(seeds)).astype(np.int32)


def _plain(tree):
    """The arrays of ``tree`` as plain single-device arrays: a profile from a sharded pass
    (``passes.model_profile``) would otherwise give the step's outputs its mesh, and the
    second step would compile again for inputs of another sharding."""
    return jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), tree)


def _low_precision(state, precision):
    return jax.tree.map(lambda a: a.astype(precision) if jnp.issubdtype(a.dtype, jnp.floating)
                        else a, state)


def _initial_state(counts, feedback, k, capacity):
    if feedback == "tknp":
        return _stored_state(patterns.patterns_init(counts, k=k, capacity=capacity), feedback)
    return coverage.init(counts, criterion=feedback, k=k)


def _queue(originals, capacity, n_outputs, shape, failures):
    n = len(originals)
    zeros = lambda size, *s, dtype=jnp.float32: jnp.zeros((size, *s), dtype)
    entry = lambda size: {"root": jnp.zeros(size, jnp.int32),
                          "parent": jnp.full(size, -1, jnp.int32),
                          "op": jnp.full(size, -1, jnp.int32), "params": zeros(size, 2),
                          "key": zeros(size, 2, dtype=jnp.uint32)}
    queue = {**entry(capacity), "image": zeros(capacity, *shape).at[:n].set(originals),
             "affine_op": jnp.full(capacity, -1, jnp.int32), "affine_params": zeros(capacity, 2),
             "l0": jnp.zeros(capacity, jnp.int32), "linf": zeros(capacity),
             "fuzzed": jnp.zeros(capacity, jnp.int32), "size": jnp.int32(n)}
    queue["root"] = queue["root"].at[:n].set(jnp.arange(n, dtype=jnp.int32))
    found = {**entry(failures), "image": zeros(failures, *shape),
             "preds": jnp.zeros((failures, n_outputs), jnp.int32),
             "found_at": jnp.zeros(failures, jnp.int32)}
    return queue, found


def fuzz(model: Model, seeds: Shaped[ArrayLike, "_n ..."],
         labels: Shaped[ArrayLike, " _n"] | None = None, *, key: ArrayLike,
         feedback: str = "nc", guided: bool = True, oracle: str = "misclassification",
         others: Sequence[Model] = (), precision: str = "float16", budget: int = 10_000,
         seconds: float | None = None, batch_size: int = 64, mutants_per_seed: int = 16,
         allowed: Sequence[str] = mutations.MUTATIONS, ranges: Mapping | None = None,
         alpha: Scalar = mutations.ALPHA, beta: Scalar = mutations.BETA, gamma: Scalar = 5.0,
         p_min: Scalar = 0.3, convention: str | activations.Convention = "post",
         threshold: Scalar = 0.75, minmax_per_input: bool = True, k: int | None = None,
         profile: profiles.Profile | None = None, std_multiple: Scalar = 0.0,
         capacity: int | None = None, max_failures: int | None = None,
         progress: bool = False) -> Result:
    """Coverage-guided fuzzing of ``model`` from ``seeds`` (see the module docstring).

    Each step mutates ``batch_size`` seeds of the queue into ``batch_size * mutants_per_seed``
    mutants and evaluates them together in one jitted call, until ``budget`` mutants (rounded
    up to whole steps) or ``seconds`` of fuzzing. Deterministic under ``key`` with a mutant
    budget (a time budget stops wherever the clock says).

    Args:
        model: the NNX model under test.
        seeds: images ``(n, h, w, c)`` in [0, 1]; those failing the oracle are left out.
        labels: ``int[n]``, the seeds' classes (needed by ``"misclassification"``; otherwise
            the model's classes of the seeds are used).
        key: the source of everything random, e.g. ``jax.random.key(0)``.
        feedback: the criterion whose gain keeps a mutant: ``FEEDBACK`` (``"nc"``, ``"kmnc"``,
            ``"nbc"``, ``"snac"``, ``"tknc"``, ``"tknp"``).
        guided: ``False``: random mutation, every valid passing mutant is kept (the feedback
            is still measured).
        oracle: one of ``ORACLES``.
        others: the other models of ``"disagreement"``.
        precision: the copy of ``"quantization"``: ``"float16"`` (TensorFuzz) or
            ``"bfloat16"``.
        budget: mutants to generate.
        seconds: stop after the step that passes this many seconds (compilation included).
        batch_size: seeds drawn per step (with replacement).
        mutants_per_seed: mutants per drawn seed on average (the power schedule shares them).
        allowed: the mutations to draw from (names in ``mutations.MUTATIONS``).
        ranges: ``{name: ((low0, high0), (low1, high1))}`` to replace ``mutations.RANGES``.
        alpha, beta: DeepHunter's validity budgets (Equation 1).
        gamma, p_min: DeepHunter's seed priority (Equation 3).
        convention: which values are neurons (``activations.CONVENTIONS``). DeepHunter's NC
            scales each layer before the channel mean: ``"deepxplore"`` with
            ``minmax_per_input=False`` is that.
        threshold, minmax_per_input: NC's (the released DeepHunter code: 0.75, scaled).
        k: KMNC's sections, TKNC's and TKNP's top k (default 10, 2 and 2).
        profile: the training profile (``passes.model_profile``), needed by KMNC, NBC, SNAC.
        std_multiple: NBC's and SNAC's margin.
        capacity: the queue's size (default: every seed and mutant fits).
        max_failures: failures kept with their images (default: every mutant fits).
        progress: show a progress bar (tqdm).

    Returns:
        A :class:`Result`.

    References:
        DeepHunter, ISSTA 2019, Algorithm 1; TensorFuzz, ICML 2019.
    """
    validation.choice(oracle, "oracle", ORACLES)
    validation.choice(feedback, "feedback", FEEDBACK)
    seeds, labels = _check_seeds(seeds, labels, oracle)
    graphdefs, states = _check_models(model, others, oracle, seeds)
    key = validation.key(key)
    conv = activations.as_convention(convention)
    n_picks = validation.positive_int(batch_size, "batch_size")
    n_mutants = n_picks * validation.positive_int(mutants_per_seed, "mutants_per_seed")
    n_steps = math.ceil(validation.positive_int(budget, "budget") / n_mutants)
    if seconds is not None:
        validation.scalar(seconds, "seconds", above=0.0)
    precision = validation.choice(precision, "precision", PRECISIONS)
    low = jnp.dtype(precision) if oracle == "quantization" else None
    k = validation.positive_int(_K_DEFAULT.get(feedback) if k is None else k, "k") \
        if feedback in _K_DEFAULT else None
    counts = activations.neuron_counts(model, seeds.shape[1:], convention=conv)
    if feedback in ("kmnc", "nbc", "snac"):
        if profile is None:
            raise ValueError(f"feedback {feedback!r} needs a training profile "
                             "(passes.model_profile)")
        profile = _plain(profiles.check(profile, counts))
    else:
        profile = None
    allowed = [validation.choice(a, "allowed mutation", mutations.MUTATIONS) for a in allowed]
    if not allowed:
        raise ValueError("allowed must name at least one mutation")
    consts = {
        "states": _plain(states), "ranges": jnp.asarray(mutations.ranges_table(ranges)),
        "allowed": jnp.asarray([m in allowed for m in mutations.MUTATIONS]),
        "alpha": validation.scalar(alpha, "alpha", above=0.0),
        "beta": validation.scalar(beta, "beta", above=0.0),
        "gamma": validation.scalar(gamma, "gamma", above=0.0),
        "p_min": validation.scalar(p_min, "p_min", above=0.0),
        "threshold": validation.scalar(threshold, "threshold"),
        "std_multiple": validation.scalar(std_multiple, "std_multiple", minimum=0.0),
        "profile": profile, "key": key, "guided": jnp.bool_(bool(guided))}
    if float(consts["p_min"]) > 1:
        raise ValueError(f"p_min must be in (0, 1], got {p_min}")
    if low is not None:
        consts["low_state"] = _low_precision(states[0], low)
    static = {"graphdefs": graphdefs, "conv": conv, "oracle": oracle, "precision": low,
              "feedback": feedback, "k": k, "minmax": bool(minmax_per_input),
              "sites": tuple(counts.items())}
    limit = len(seeds) + n_steps * n_mutants
    capacity = limit if capacity is None else validation.positive_int(capacity, "capacity")

    # The dry run: the oracle on every seed, the coverage of those that pass.
    state = _initial_state(counts, feedback, k, capacity)
    padded = -(-len(seeds) // n_mutants) * n_mutants
    images = np.zeros((padded, *seeds.shape[1:]), np.float32)
    images[:len(seeds)] = seeds
    rows = np.arange(padded) < len(seeds)
    given = np.zeros(padded, np.int32)
    if labels is not None:
        given[:len(seeds)] = labels
    preds = []
    for i in range(0, padded, n_mutants):
        chunk = slice(i, i + n_mutants)
        state, p = _fold_seeds_jit(consts, state, images[chunk], given[chunk], rows[chunk],
                                   **static)
        preds.append(np.asarray(p))
    preds = np.concatenate(preds, axis=1)[:, :len(seeds)]
    labels = preds[0] if labels is None else labels
    passing = ~(preds[0] != labels if oracle == "misclassification"
                else (preds != preds[:1]).any(axis=0))
    used = np.flatnonzero(passing).astype(np.int32)
    if not len(used):
        raise ValueError(f"no seed passes the oracle {oracle!r} (every seed already fails it)")
    consts["originals"] = jnp.asarray(seeds[used])
    consts["labels"] = jnp.asarray(labels[used], jnp.int32)
    before = float(_value(_coverage_state({"state": state}, feedback, k, static["sites"]),
                          feedback))
    failures = limit if max_failures is None else validation.positive_int(max_failures,
                                                                          "max_failures")
    if capacity < len(used):
        raise ValueError(f"capacity {capacity} cannot hold the {len(used)} seeds")
    queue, found = _queue(consts["originals"], capacity, len(preds), seeds.shape[1:], failures)
    carry = {"queue": queue, "found": found, "state": state, "mutants": jnp.int32(0),
             "valid": jnp.int32(0), "n_failed": jnp.int32(0), "dropped": jnp.int32(0)}
    return _run(consts, carry, static, n_steps, n_picks, n_mutants, seconds, progress, used,
                labels, before, feedback)


def _run(consts, carry, static, n_steps, n_picks, n_mutants, seconds, progress, used, labels,
         before, feedback):
    """The host loop: one jitted step per iteration until the budget or the clock runs out."""
    from tqdm.auto import tqdm

    history = []
    start = time.perf_counter()
    with tqdm(total=n_steps * n_mutants, unit="mutant", disable=not progress,
              desc=f"fuzzing ({feedback})") as bar:
        for t in range(n_steps):
            carry, stats = _step_jit(consts, carry, jnp.int32(t), n_picks=n_picks,
                                     n_mutants=n_mutants, **static)
            stats = {name: float(v) for name, v in jax.device_get(stats).items()}
            stats["seconds"] = time.perf_counter() - start
            history.append(stats)
            bar.update(n_mutants)
            bar.set_postfix(coverage=f"{stats['coverage']:.4g}", failures=int(stats["failures"]))
            if seconds is not None and stats["seconds"] >= seconds:
                break
    carry = jax.device_get(carry)
    q, f = carry["queue"], carry["found"]
    size, n_kept = int(q["size"]), min(int(carry["n_failed"]), len(f["image"]))
    lineage = Lineage(q["parent"][:size], used[q["root"][:size]], q["op"][:size],
                      q["params"][:size], q["key"][:size], f["parent"][:n_kept],
                      f["op"][:n_kept], f["params"][:n_kept], f["key"][:n_kept])
    roots = f["root"][:n_kept]
    return Result(
        failures=f["image"][:n_kept], seed_index=used[roots], labels=labels[used][roots],
        predictions=f["preds"][:n_kept].T.copy(), found_at=f["found_at"][:n_kept],
        history={name: np.array([h[name] for h in history]) for name in history[0]},
        coverage=history[-1]["coverage"], coverage_before=before, mutants=int(carry["mutants"]),
        valid=int(carry["valid"]), queue_size=size, seeds_used=len(used),
        failures_total=int(carry["n_failed"]), dropped=int(carry["dropped"]), lineage=lineage)


def chain(result: Result, i: int) -> list[mutations.Mutation]:
    """The mutations that made failure ``i`` from its seed, first to last.

    Example:
        >>> lineage = Lineage(np.array([-1, 0]), np.array([3, 3]), np.array([-1, 0]),
        ...                   np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint32),
        ...                   np.array([1]), np.array([7]), np.zeros((1, 2), np.float32),
        ...                   np.zeros((1, 2), np.uint32))
        >>> [m.name for m in chain(Result(*[None] * 14, lineage), 0)]
        ['brightness', 'rotation']
    """
    lin = result.lineage
    i = validation.integer(i, "i", minimum=0, maximum=len(lin.failure_op) - 1)
    steps = [(lin.failure_op[i], lin.failure_params[i], lin.failure_key[i])]
    node = int(lin.failure_parent[i])
    while lin.queue_parent[node] >= 0:
        steps.append((lin.queue_op[node], lin.queue_params[node], lin.queue_key[node]))
        node = int(lin.queue_parent[node])
    return [mutations.Mutation(mutations.MUTATIONS[int(op)], tuple(float(p) for p in params),
                               np.asarray(key, np.uint32)) for op, params, key in steps[::-1]]


def replay_failure(result: Result, seeds: Shaped[ArrayLike, "_n ..."], i: int
                   ) -> np.ndarray:
    """Failure ``i`` made again from its seed by its chain (:func:`chain`,
    :func:`workbench.mutations.replay`); equals ``result.failures[i]`` up to float rounding."""
    return mutations.replay(np.asarray(seeds)[result.seed_index[i]], chain(result, i))
