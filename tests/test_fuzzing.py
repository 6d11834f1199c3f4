"""workbench.fuzzing on tiny models made here: the batched gain test against a one-by-one loop,
the priority and power schedule by hand, validity along every recorded chain, chains that
reproduce their mutants, the oracles against independent predictions, determinism, one trace."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench import activations, coverage, differential, fuzzing, passes, patterns, profiles
from workbench import mutations as mu

KEY = jax.random.key(0)


class Tiny(nnx.Module):
    """8x8 grey images, a 4-channel conv, 12 dense units, 3 classes."""

    sites = ("c1", "f1")

    def __init__(self, seed: int):
        rngs = nnx.Rngs(seed)
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.fc = nnx.Linear(4 * 8 * 8, 12, rngs=rngs)
        self.out = nnx.Linear(12, 3, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.conv(x))
        self.sow(nnx.Intermediate, "c1", h)
        h = nnx.relu(self.fc(h.reshape(h.shape[0], -1)))
        self.sow(nnx.Intermediate, "f1", h)
        return self.out(h)


@pytest.fixture(scope="module")
def model():
    return Tiny(0)


@pytest.fixture(scope="module")
def seeds():
    return np.random.default_rng(1).random((12, 8, 8, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def labels(model, seeds):
    return np.asarray(jnp.argmax(activations.trace(model, seeds).logits, axis=-1), np.int32)


SMALL = {"budget": 192, "batch_size": 8, "mutants_per_seed": 8}


@pytest.fixture(scope="module")
def result(model, seeds, labels):
    return fuzzing.fuzz(model, seeds, labels, key=KEY, feedback="nc", threshold=0.5, **SMALL)


def _predict(model, x):
    return np.asarray(jnp.argmax(activations.trace(model, x).logits, axis=-1))


# ----------------------------------------------------------------------- the gain test


def _acts(seed, n):
    rng = np.random.default_rng(seed)
    return {"a": jnp.asarray(rng.normal(size=(n, 5)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=(n, 3)), jnp.float32)}


@pytest.mark.parametrize("feedback", fuzzing.FEEDBACK)
def test_gain_is_what_a_one_by_one_loop_keeps(feedback):
    """A mutant is kept when it is the first of its batch to cover something new: exactly what
    DeepHunter's loop, which folds mutants in one at a time, keeps."""
    train, before, batch = _acts(0, 20), _acts(1, 2), _acts(2, 16)
    rows = jnp.asarray(np.random.default_rng(3).random(16) < 0.8)
    k = {"kmnc": 3, "tknc": 1, "tknp": 1}.get(feedback)
    consts = {"threshold": jnp.float32(0.8), "std_multiple": jnp.float32(0.5),
              "profile": profiles.profile(train) if feedback in ("kmnc", "nbc", "snac")
              else None}
    counts = {"a": 5, "b": 3}
    if feedback == "tknp":
        state = patterns.patterns_update(patterns.patterns_init(counts, k=k, capacity=64),
                                         before)
        top = lambda acts: np.concatenate(
            [patterns.top_k_mask(v, k=k) for v in acts.values()], axis=1)
        seen, bits = {tuple(b) for b in top(before)}, top(batch)
        expected = []
        for j, b in enumerate(bits):
            new = bool(rows[j]) and tuple(b) not in seen
            expected.append(new)
            if rows[j]:
                seen.add(tuple(b))
        gain, after = fuzzing._feedback(consts, state, batch, rows, feedback=feedback, k=k,
                                        minmax=True)
        assert gain.tolist() == expected
        assert patterns.patterns_count(after) == len(seen)
        return
    options = {"criterion": feedback, "threshold": 0.8, "k": k, "profile": consts["profile"],
               "std_multiple": 0.5}
    state = coverage.update(coverage.init(counts, criterion=feedback, k=k), before, **options)
    current = {s: np.asarray(m) for s, m in state.items()}
    expected = []
    for j in range(16):
        one = coverage.update(coverage.init(counts, criterion=feedback, k=k),
                              {s: v[j:j + 1] for s, v in batch.items()}, **options)
        new = bool(rows[j]) and any((np.asarray(one[s]) & ~current[s]).any() for s in one)
        expected.append(new)
        if rows[j]:
            current = {s: current[s] | np.asarray(one[s]) for s in one}
    gain, after = fuzzing._feedback(consts, state, batch, rows, feedback=feedback, k=k,
                                    minmax=True)
    assert gain.tolist() == expected
    assert any(expected) and not all(expected)
    for site in current:
        np.testing.assert_array_equal(after[site], current[site])


def test_packed_patterns_have_the_pattern_state_layout():
    acts = _acts(4, 10)
    state = patterns.patterns_update(patterns.patterns_init({"a": 5, "b": 3}, k=2), acts)
    bits = jnp.concatenate([patterns.top_k_mask(v, k=2) for v in acts.values()], axis=1)
    ours = {tuple(row) for row in np.asarray(fuzzing._pack(bits)).tolist()}
    theirs = {tuple(row) for row in np.asarray(state.table[:int(state.count)]).tolist()}
    assert ours == theirs


def test_priority_and_power_schedule_by_hand():
    priority = fuzzing._priority(jnp.arange(6), 5.0, 0.3)
    np.testing.assert_allclose(priority, [1.0, 0.8, 0.6, 0.4, 0.3, 0.3], atol=1e-6)
    assert fuzzing._schedule(jnp.array([3.0, 1.0]), 8).tolist() == [0] * 6 + [1] * 2
    assert fuzzing._schedule(jnp.array([0.0, 0.0]), 4).tolist() == [0, 0, 1, 1]
    assert fuzzing._schedule(jnp.array([1.0, 0.0, 1.0]), 4).tolist() == [0, 0, 2, 2]


# ---------------------------------------------------------------------------- the loop


def _check_lineage(result, seeds, alpha=mu.ALPHA, beta=mu.BETA):
    """Every failure replays from its chain, and every step of the chain is valid by a NumPy
    version of Equations 1-2 against the lineage's reference, with at most one affine step."""
    for i in range(len(result.failures)):
        steps = fuzzing.chain(result, i)
        assert sum(s.name in mu.AFFINE for s in steps) <= 1
        original = seeds[result.seed_index[i]]
        image, reference, l0_before, linf_before = original, original, 0, 0.0
        for step in steps:
            before = image
            image = mu.replay(before, [step])
            if step.name in mu.AFFINE:
                l0_before = int(np.sum(before != reference))
                linf_before = float(np.max(np.abs(before - reference)))
                reference = mu.replay(reference, [step])
            l0 = l0_before + int(np.sum(image != reference))
            linf = max(linf_before, float(np.max(np.abs(image - reference))))
            assert l0 < alpha * image.size or linf < beta + 1e-6, (i, step)
            assert (image != before).any()
        np.testing.assert_allclose(image, result.failures[i], atol=1e-5)
        np.testing.assert_allclose(fuzzing.replay_failure(result, seeds, i), image, atol=1e-6)
    assert result.failures.min(initial=0) >= 0 and result.failures.max(initial=1) <= 1


def test_fuzz_records_what_it_found(result, model, seeds, labels):
    r = result
    assert r.mutants == 192 and r.history["mutants"].tolist() == [64.0, 128.0, 192.0]
    assert np.all(np.diff(r.history["coverage"]) >= 0) and r.coverage >= r.coverage_before
    assert r.seeds_used == 12 and r.queue_size > r.seeds_used  # every seed passes
    assert 0 < r.valid <= r.mutants
    assert r.failures_total == len(r.failures) > 0
    predicted = _predict(model, r.failures)
    np.testing.assert_array_equal(r.predictions[0], predicted)
    assert (predicted != r.labels).all() and (r.labels == labels[r.seed_index]).all()
    assert (np.diff(r.found_at) >= 0).all() and r.found_at.max() <= r.mutants
    _check_lineage(r, seeds)


def test_random_mutation_keeps_every_valid_mutant(model, seeds, labels, result):
    r = fuzzing.fuzz(model, seeds, labels, key=KEY, feedback="nc", threshold=0.5, guided=False,
                     **SMALL)
    assert r.queue_size - r.seeds_used == r.valid - r.failures_total
    assert r.queue_size > result.queue_size
    _check_lineage(r, seeds)


def test_deterministic_under_a_key(model, seeds, labels, result):
    again = fuzzing.fuzz(model, seeds, labels, key=KEY, feedback="nc", threshold=0.5, **SMALL)
    np.testing.assert_array_equal(again.failures, result.failures)
    np.testing.assert_array_equal(again.history["coverage"], result.history["coverage"])
    other = fuzzing.fuzz(model, seeds, labels, key=jax.random.key(1), feedback="nc",
                         threshold=0.5, **SMALL)
    assert other.found_at.tolist() != result.found_at.tolist()


def test_one_trace_for_new_keys_and_settings(model, seeds, labels, monkeypatch):
    counted = jax.jit(chex.assert_max_traces(fuzzing._step, n=1),
                      static_argnames=fuzzing._STATIC, donate_argnums=(1,))
    monkeypatch.setattr(fuzzing, "_step_jit", counted)
    # A profile from the sharded pass: its mesh must not reach the step's outputs.
    profile = passes.model_profile(model, seeds)
    fuzzing.fuzz(model, seeds, labels, key=KEY, feedback="snac", profile=profile, **SMALL)
    fuzzing.fuzz(model, seeds, labels, key=jax.random.key(5), feedback="snac", guided=False,
                 alpha=0.05, beta=0.3, gamma=3.0, p_min=0.1, std_multiple=0.5,
                 profile=passes.model_profile(model, seeds[:6]),
                 ranges={"rotation": ((-5.0, 5.0), (0.0, 0.0))}, **SMALL)


def test_time_budget_stops_early(model, seeds, labels):
    r = fuzzing.fuzz(model, seeds, labels, key=KEY, feedback="nc", seconds=1e-6, **SMALL)
    assert len(r.history["mutants"]) == 1 and r.mutants == 64


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.floats(0.005, 0.1), st.floats(0.02, 0.4), st.integers(0, 1000),
       st.sets(st.sampled_from(mu.MUTATIONS), min_size=1))
def test_validity_holds_for_random_parameters(model, seeds, labels, alpha, beta, key, allowed):
    r = fuzzing.fuzz(model, seeds, labels, key=jax.random.key(key), feedback="nc",
                     threshold=0.5, alpha=alpha, beta=beta, allowed=sorted(allowed),
                     ranges={"brightness": ((-0.5, 0.5), (0.0, 0.0))}, **SMALL)
    _check_lineage(r, seeds, alpha, beta)
    assert all(s.name in allowed for i in range(len(r.failures)) for s in fuzzing.chain(r, i))


# ---------------------------------------------------------------------------- oracles


@pytest.fixture(scope="module")
def near_tie():
    """Classes 0 and 1 nearly tied (their output weights differ by 0.1%), class 2 never wins:
    rounding to 16 bits decides between 0 and 1 on some inputs."""
    net = Tiny(3)
    kernel = net.out.kernel.get_value()
    wobble = 1 + 1e-3 * jax.random.normal(jax.random.key(1), kernel[:, 0].shape)
    kernel = kernel.at[:, 1].set(kernel[:, 0] * wobble).at[:, 2].set(-1.0)
    net.out.kernel.set_value(kernel)
    net.out.bias.set_value(jnp.zeros(3))
    return net


@pytest.mark.parametrize("precision", fuzzing.PRECISIONS)
def test_quantization_oracle(near_tie, seeds, precision):
    r = fuzzing.fuzz(near_tie, seeds, key=KEY, oracle="quantization", precision=precision,
                     feedback="nc", **SMALL)
    graphdef, state = nnx.split(near_tie)
    copy = nnx.capture(nnx.merge(graphdef, jax.tree.map(lambda a: a.astype(precision), state)),
                       nnx.Intermediate)
    full = _predict(near_tie, seeds)
    low = np.asarray(jnp.argmax(copy(jnp.asarray(seeds, precision))[0], axis=-1))
    assert r.seeds_used == (full == low).sum() and r.failures_total > 0
    low = np.asarray(jnp.argmax(copy(jnp.asarray(r.failures, precision))[0], axis=-1))
    np.testing.assert_array_equal(r.predictions, [_predict(near_tie, r.failures), low])
    assert (r.predictions[0] != r.predictions[1]).all()


class MyNet(nnx.Module):
    """The README's kind of model: no ``sites``, values sown under the layers' own names."""

    def __init__(self, seed: int):
        rngs = nnx.Rngs(seed)
        self.fc1 = nnx.Linear(64, 16, rngs=rngs)
        self.out = nnx.Linear(16, 3, rngs=rngs)

    def __call__(self, x):
        h = nnx.relu(self.fc1(x.reshape(x.shape[0], -1)))
        self.sow(nnx.Intermediate, "fc1", h)
        return self.out(h)


def test_disagreement_oracle(model, seeds):
    other = MyNet(7)
    r = fuzzing.fuzz(model, seeds, key=KEY, oracle="disagreement", others=[other],
                     feedback="nc", **SMALL)
    agree = _predict(model, seeds) == _predict(other, seeds)
    assert r.seeds_used == agree.sum() and r.failures_total > 0
    np.testing.assert_array_equal(r.predictions, differential.predictions([model, other],
                                                                          r.failures))
    assert (r.predictions[0] != r.predictions[1]).all()


# ---------------------------------------------------------------------------- bad input


def test_bad_input_is_rejected(model, seeds, labels):
    def run(**kw):
        args = {"key": KEY, **SMALL, **kw}
        return fuzzing.fuzz(model, args.pop("seeds", seeds), args.pop("labels", labels), **args)

    with pytest.raises(ValueError, match="unknown oracle"):
        run(oracle="crash")
    with pytest.raises(ValueError, match="unknown feedback"):
        run(feedback="lsc")
    with pytest.raises(ValueError, match="needs the seeds' labels"):
        run(labels=None)
    with pytest.raises(ValueError, match="needs the other models"):
        run(oracle="disagreement")
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        run(seeds=seeds * 2)
    with pytest.raises(ValueError, match="labels must be int"):
        run(labels=labels[:3])
    with pytest.raises(ValueError, match="needs a training profile"):
        run(feedback="kmnc")
    with pytest.raises(ValueError, match="p_min must be in"):
        run(p_min=2.0)
    with pytest.raises(ValueError, match="unknown allowed mutation"):
        run(allowed=["fog"])
    with pytest.raises(ValueError, match="budget must be a positive int"):
        run(budget=0)
    with pytest.raises(ValueError, match="no seed passes"):
        run(labels=(labels + 1) % 3)
    with pytest.raises(ValueError, match="key must be a JAX random key"):
        run(key=0)
