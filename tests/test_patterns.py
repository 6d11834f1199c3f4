"""Tests of workbench.patterns (TKNP): against a NumPy count of distinct top-k patterns, the
running form against one shot, masks, capacity, recompiles and bad input."""

import chex
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest

from workbench import patterns


def random_acts(seed, batch=16, sizes=(5, 7, 3)):
    keys = jax.random.split(jax.random.key(seed), len(sizes))
    return {f"s{i}": jax.random.normal(key, (batch, n)) for i, (key, n) in
            enumerate(zip(keys, sizes))}


def np_tknp(acts, k):
    """DeepGauge's TKNP: distinct tuples, over layers, of each input's top-k neuron set."""
    found = set()
    n = len(next(iter(acts.values())))
    for i in range(n):
        found.add(tuple(frozenset(np.argsort(-np.asarray(a)[i], kind="stable")[:k])
                        for a in acts.values()))
    return len(found)


def test_top_k_mask_by_hand():
    value = jnp.array([[3.0, 1.0, 3.0, 0.0], [0.0, 2.0, 1.0, 5.0]])
    assert patterns.top_k_mask(value, k=1).tolist() == [[True, False, False, False],
                                                         [False, False, False, True]]
    assert patterns.top_k_mask(value, k=9).all()  # a site with at most k neurons: all


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_tknp_matches_numpy(k):
    acts = random_acts(6)
    assert patterns.top_k_neuron_patterns(acts, k=k) == np_tknp(acts, k)


def test_mask_drops_rows():
    acts = random_acts(7)
    rows = jnp.arange(16) < 9
    kept = {s: a[:9] for s, a in acts.items()}
    assert (patterns.top_k_neuron_patterns(acts, k=2, mask=rows)
            == patterns.top_k_neuron_patterns(kept, k=2))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_running_form_matches_numpy(k):
    # Few neurons, many inputs: patterns repeat within a batch and across batches.
    acts = random_acts(12, batch=40, sizes=(3, 4, 33))
    counts = {s: int(a.shape[1]) for s, a in acts.items()}
    state = patterns.patterns_init(counts, k=k, capacity=64)
    totals = []
    for start in range(0, 40, 8):
        rows = jnp.arange(8) < (5 if start == 32 else 8)  # the last batch is partly padding
        state = patterns.patterns_update(state, {s: a[start:start + 8] for s, a in acts.items()},
                                         mask=rows)
        totals.append(patterns.patterns_count(state))
    kept = {s: jnp.concatenate([a[:32], a[32:37]]) for s, a in acts.items()}
    assert totals[-1] == np_tknp(kept, k) == patterns.top_k_neuron_patterns(kept, k=k)
    assert totals == sorted(totals) and totals[0] == np_tknp({s: a[:8] for s, a in acts.items()}, k)
    # Folding the same inputs again adds nothing.
    again = patterns.patterns_update(state, {s: a[:8] for s, a in acts.items()})
    assert patterns.patterns_count(again) == totals[-1]


def test_overflow_and_wrong_sites_raise():
    acts = random_acts(13, batch=10, sizes=(6, 6))
    state = patterns.patterns_update(patterns.patterns_init({"s0": 6, "s1": 6}, k=2, capacity=3),
                                     acts)
    with pytest.raises(ValueError, match="larger capacity"):
        patterns.patterns_count(state)
    with pytest.raises(ValueError, match="state was made for"):
        patterns.patterns_update(patterns.patterns_init({"s0": 6}, k=2), acts)


def test_new_batches_do_not_retrace():
    state = patterns.patterns_init({"s0": 5, "s1": 7, "s2": 3}, k=2, capacity=64)

    def fold(table, count, overflow, acts, rows):
        new = patterns.patterns_update(state._replace(table=table, count=count,
                                                      overflow=overflow), acts, mask=rows)
        return new.table, new.count, new.overflow

    counted = jax.jit(chex.assert_max_traces(fold, n=1))
    arrays = (state.table, state.count, state.overflow)
    everything = []
    for seed in range(3):
        acts = random_acts(seed)
        arrays = counted(*arrays, acts, jnp.arange(16) < 12)
        everything.append({s: a[:12] for s, a in acts.items()})
    joined = {s: jnp.concatenate([e[s] for e in everything]) for s in everything[0]}
    assert patterns.patterns_count(state._replace(table=arrays[0], count=arrays[1],
                                                  overflow=arrays[2])) == np_tknp(joined, 2)


# Without the jaxtyping hook these raise ValueError; under it, the annotations may catch a
# wrong type first.
BAD_TYPE = (ValueError, jaxtyping.TypeCheckError)


def test_bad_input():
    acts = random_acts(14)
    with pytest.raises(ValueError, match="k must be a positive int"):
        patterns.top_k_neuron_patterns(acts, k=0)
    with pytest.raises(ValueError, match="capacity must be a positive int"):
        patterns.patterns_init({"a": 2}, k=1, capacity=0)
    with pytest.raises(BAD_TYPE):
        patterns.patterns_update({"a": 2}, acts)
    with pytest.raises(ValueError, match="mask"):
        patterns.top_k_neuron_patterns(acts, k=1, mask=jnp.ones(3, bool))
