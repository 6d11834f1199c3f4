"""Tests of workbench.coverage: each criterion against a short NumPy version of its published
definition, ratios, properties (union, order, batching), the running form, recompiles and
bad input. The streamed passes over a model are in test_passes.py."""

import chex
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import coverage, profiles

# ------------------------------------------------------------ NumPy reference definitions


def np_nc(acts, threshold, minmax):
    """DeepXplore ``update_coverage`` per input: scale, then ``value > threshold``."""
    out = {}
    for site, a in acts.items():
        a = np.asarray(a, np.float64)
        covered = np.zeros(a.shape[1], bool)
        for row in a:
            if minmax:
                with np.errstate(invalid="ignore", divide="ignore"):
                    row = (row - row.min()) / (row.max() - row.min())
            covered |= row > threshold
        out[site] = covered
    return out


def np_profile(acts):
    return {s: (a.min(0), a.max(0), a.mean(0), a.std(0)) for s, a in
            ((s, np.asarray(a, np.float64)) for s, a in acts.items())}


def np_kmnc(acts, prof, k):
    out = {}
    for site, a in acts.items():
        low, high = prof[site][0], prof[site][1]
        covered = np.zeros((a.shape[1], k), bool)
        for row in np.asarray(a):
            for n, v in enumerate(row):
                if high[n] > low[n] and low[n] <= v <= high[n]:
                    bounds = low[n] + (high[n] - low[n]) * np.arange(k + 1) / k
                    i = min(int(np.searchsorted(bounds, v, side="right")) - 1, k - 1)
                    covered[n, i] = True
        out[site] = covered
    return out


def np_nbc(acts, prof, scale):
    out = {}
    for site, a in acts.items():
        low, high, _, std = prof[site]
        a = np.asarray(a)
        out[site] = np.stack([(a < low - scale * std).any(0), (a > high + scale * std).any(0)], -1)
    return out


def np_tknc(acts, k):
    out = {}
    for site, a in acts.items():
        covered = np.zeros(a.shape[1], bool)
        for row in np.asarray(a):
            covered[np.argsort(-row, kind="stable")[:k]] = True
        out[site] = covered
    return out


def random_acts(seed, batch=16, sizes=(5, 7, 3), relu=True):
    keys = jax.random.split(jax.random.key(seed), len(sizes))
    acts = {f"s{i}": jax.random.normal(key, (batch, n)) for i, (key, n) in
            enumerate(zip(keys, sizes))}
    return {s: jax.nn.relu(a) if relu else a for s, a in acts.items()}


def assert_masks_equal(got, want):
    assert list(got) == list(want)
    for site in want:
        np.testing.assert_array_equal(np.asarray(got[site]), want[site], err_msg=site)


def as_profile(prof):
    return profiles.Profile(*({s: jnp.asarray(v[i], jnp.float32) for s, v in prof.items()}
                              for i in range(4)))


# --------------------------------------------------------- criteria vs NumPy references


@pytest.mark.parametrize("minmax_per_input", [True, False])
@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.75])
def test_nc_matches_numpy(minmax_per_input, threshold):
    acts = random_acts(0)
    acts["const"] = jnp.full((16, 4), 0.3)  # a constant site: scaled, it covers nothing
    got = coverage.neuron_coverage(acts, threshold=threshold, minmax_per_input=minmax_per_input)
    assert_masks_equal(got, np_nc(acts, threshold, minmax_per_input))
    if minmax_per_input:
        assert not got["const"].any()


@pytest.mark.parametrize("k", [1, 3, 10, 32, 33, 1000])  # 32 sections a bit word
def test_kmnc_matches_numpy(k):
    train, test = random_acts(2, batch=40), random_acts(3, batch=12 if k < 100 else 400)
    prof = np_profile(train)
    got = coverage.k_multisection_coverage(test, as_profile(prof), k=k)
    assert_masks_equal(got, np_kmnc(test, prof, k))


def test_kmnc_boundaries_by_hand():
    prof = profiles.profile({"fc": jnp.array([[0.0], [4.0]])})
    test = {"fc": jnp.array([[0.0], [1.0], [4.0], [4.5], [-0.1]])}  # 1.0 starts section 1
    got = coverage.k_multisection_coverage(test, prof, k=4)["fc"]
    assert got.tolist() == [[True, True, False, True]]
    assert coverage.ratio({"fc": got}) == 0.75


@pytest.mark.parametrize("std_multiple", [0.0, 0.5, 1.0])
def test_nbc_and_snac_match_numpy(std_multiple):
    train, test = random_acts(4, batch=30, relu=False), random_acts(5, batch=30, relu=False)
    prof = np_profile(train)
    nbc = coverage.neuron_boundary_coverage(test, as_profile(prof), std_multiple=std_multiple)
    snac = coverage.strong_neuron_activation_coverage(test, as_profile(prof),
                                                      std_multiple=std_multiple)
    want = np_nbc(test, prof, std_multiple)
    assert_masks_equal(nbc, want)
    assert_masks_equal(snac, {s: w[:, 1] for s, w in want.items()})


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_tknc_matches_numpy(k):
    acts = random_acts(6, relu=False)
    assert_masks_equal(coverage.top_k_neuron_coverage(acts, k=k), np_tknc(acts, k))


def test_mask_drops_rows():
    acts = random_acts(7, relu=False)
    rows = jnp.arange(16) < 9
    kept = {s: a[:9] for s, a in acts.items()}
    prof = profiles.profile(random_acts(8, batch=30, relu=False))
    for fn, kw in ((coverage.neuron_coverage, {"threshold": 0.3}),
                   (coverage.k_multisection_coverage, {"profile": prof, "k": 4}),
                   (coverage.neuron_boundary_coverage, {"profile": prof}),
                   (coverage.top_k_neuron_coverage, {"k": 2})):
        assert_masks_equal(fn(acts, mask=rows, **kw), {s: np.asarray(m) for s, m in
                                                       fn(kept, **kw).items()})


# --------------------------------------------------------------------------- ratios


def test_ratio_site_ratios_and_dead_neurons():
    masks = {"a": jnp.array([True, False, False, False]), "b": jnp.array([[True, True],
                                                                          [False, True]])}
    assert coverage.ratio(masks) == 4 / 8
    assert coverage.site_ratios(masks) == {"a": 0.25, "b": 0.75}
    prof = profiles.profile({"a": jnp.array([[0.0, 1.0, 0.0, 2.0]]),
                             "b": jnp.array([[0.0, 3.0]])})
    dead = profiles.dead_neurons(prof)
    assert dead["a"].tolist() == [True, False, True, False]
    assert dead["b"].tolist() == [True, False]
    # Without the dead neurons: a keeps neurons 1 and 3 (none covered), b keeps row 1.
    assert coverage.ratio(masks, exclude=dead) == 1 / 4
    assert coverage.site_ratios(masks, exclude=dead) == {"a": 0.0, "b": 0.5}


# ------------------------------------------------------------------------- properties

# Fixed shapes, so every example reuses one compilation; hypothesis varies the values and
# the order, chunking and splitting of the rows.
SIZES = (4, 3)
acts_strategy = st.builds(lambda seed: random_acts(seed, batch=6, sizes=SIZES, relu=False),
                          st.integers(0, 2**16))


def all_masks(acts, prof):
    return {"nc": coverage.neuron_coverage(acts, threshold=0.5),
            "kmnc": coverage.k_multisection_coverage(acts, prof, k=3),
            "nbc": coverage.neuron_boundary_coverage(acts, prof, std_multiple=0.1),
            "snac": coverage.strong_neuron_activation_coverage(acts, prof),
            "tknc": coverage.top_k_neuron_coverage(acts, k=2)}


def host(masks):
    return {s: np.asarray(m) for s, m in masks.items()}


@settings(max_examples=6, deadline=None)
@given(acts_strategy, st.integers(0, 2**16), st.integers(1, 5))
def test_ratios_in_unit_interval_and_union_dominates(acts, seed, split):
    prof = profiles.profile(random_acts(seed, batch=6, sizes=SIZES, relu=False))
    rows = np.arange(6) < split  # the union is the whole batch; the parts, a row mask each
    whole = all_masks(acts, prof)
    parts = [{c: getattr(coverage, fn)(acts, mask=jnp.asarray(m), **kw) for c, (fn, kw) in
              parts_of(prof).items()} for m in (rows, ~rows)]
    for criterion, masks in whole.items():
        r = coverage.ratio(masks)
        assert 0.0 <= r <= 1.0
        assert all(0.0 <= v <= 1.0 for v in coverage.site_ratios(masks).values())
        for part in parts:
            assert r >= coverage.ratio(part[criterion])
        for s in acts:  # union coverage is exactly the OR of the parts
            np.testing.assert_array_equal(
                masks[s], parts[0][criterion][s] | parts[1][criterion][s])


def parts_of(prof):
    return {"nc": ("neuron_coverage", {"threshold": 0.5}),
            "kmnc": ("k_multisection_coverage", {"profile": prof, "k": 3}),
            "nbc": ("neuron_boundary_coverage", {"profile": prof, "std_multiple": 0.1}),
            "snac": ("strong_neuron_activation_coverage", {"profile": prof}),
            "tknc": ("top_k_neuron_coverage", {"k": 2})}


@settings(max_examples=6, deadline=None)
@given(acts_strategy, st.integers(0, 2**16), st.sampled_from([2, 3]))
def test_order_batching_and_running_form_invariance(acts, seed, chunk):
    prof = profiles.profile(acts)
    order = np.asarray(jax.random.permutation(jax.random.key(seed), 6))
    shuffled = {s: a[order] for s, a in acts.items()}
    whole = all_masks(acts, prof)
    for criterion, masks in all_masks(shuffled, prof).items():
        assert_masks_equal(masks, host(whole[criterion]))
    # The running form, ``chunk`` rows at a time, equals one shot.
    counts = {s: int(a.shape[1]) for s, a in acts.items()}
    options = {"nc": {"threshold": 0.5}, "kmnc": {"profile": prof, "k": 3},
               "nbc": {"profile": prof, "std_multiple": 0.1}, "snac": {"profile": prof},
               "tknc": {"k": 2}}
    state = {c: coverage.init(counts, criterion=c, k=3) for c in options}
    for start in range(0, 6, chunk):
        part = {s: a[start:start + chunk] for s, a in shuffled.items()}
        state = {c: coverage.update(state[c], part, criterion=c, **options[c]) for c in options}
    for criterion in options:
        assert_masks_equal(state[criterion], host(whole[criterion]))


# --------------------------------------------------------------------- incremental form


def test_update_reports_newly_covered():
    counts = {"fc": 3}
    state = coverage.init(counts, criterion="nc")
    first = coverage.update(state, {"fc": jnp.array([[0.0, 1.0, 0.0]])}, criterion="nc",
                            threshold=0.5, minmax_per_input=False)
    second = coverage.update(first, {"fc": jnp.array([[2.0, 1.0, 0.0]])}, criterion="nc",
                             threshold=0.5, minmax_per_input=False)
    assert coverage.newly_covered(first, second)["fc"].tolist() == [True, False, False]
    assert coverage.ratio(second) == 2 / 3


def test_new_values_and_thresholds_do_not_retrace():
    # Thresholds and multiples are traced values; criteria and k are static.
    acts, other = random_acts(10), random_acts(11)
    prof = profiles.profile(acts)

    def criteria(acts, prof, threshold, std_multiple):
        state = coverage.init({s: int(v.shape[1]) for s, v in acts.items()}, criterion="nc")
        return (coverage.neuron_coverage(acts, threshold=threshold),
                coverage.k_multisection_coverage(acts, prof, k=3),
                coverage.neuron_boundary_coverage(acts, prof, std_multiple=std_multiple),
                coverage.update(state, acts, criterion="nc", threshold=threshold))

    counted = jax.jit(chex.assert_max_traces(criteria, n=1))
    first = counted(acts, prof, 0.5, 0.1)
    second = counted(other, profiles.profile(other), 0.75, 1.0)
    assert_masks_equal(second[0], host(coverage.neuron_coverage(other, threshold=0.75)))
    assert_masks_equal(first[3], host(coverage.neuron_coverage(acts, threshold=0.5)))


# ------------------------------------------------------------------------- bad input


# Without the jaxtyping hook these raise ValueError; under it, the shape annotations may
# catch them first.
BAD_SHAPE = (ValueError, jaxtyping.TypeCheckError)


def test_bad_input_raises_clear_errors():
    acts = random_acts(12)
    prof = profiles.profile(acts)
    with pytest.raises(ValueError, match="NaN"):
        coverage.neuron_coverage({"a": jnp.array([[jnp.nan]])}, threshold=0.0)
    with pytest.raises(BAD_SHAPE):
        coverage.neuron_coverage({"a": jnp.zeros((2, 3, 4))}, threshold=0.0)
    with pytest.raises(BAD_SHAPE):
        coverage.neuron_coverage({"a": jnp.zeros((2, 3), jnp.int32)}, threshold=0.0)
    with pytest.raises(BAD_SHAPE):
        coverage.neuron_coverage({"a": jnp.zeros((2, 3)), "b": jnp.zeros((3, 3))}, threshold=0)
    with pytest.raises(ValueError, match="k must be"):
        coverage.top_k_neuron_coverage(acts, k=0)
    with pytest.raises(ValueError, match="no site"):
        coverage.k_multisection_coverage({"other": jnp.zeros((2, 5))}, prof, k=2)
    with pytest.raises(BAD_SHAPE):
        coverage.neuron_coverage(acts, threshold=0.0, mask=jnp.ones(3, bool))
    with pytest.raises(ValueError, match="unknown criterion"):
        coverage.init({"a": 2}, criterion="xyz")
    counts = {s: int(a.shape[1]) for s, a in acts.items()}
    with pytest.raises(ValueError, match="profile"):
        coverage.update(coverage.init(counts, criterion="kmnc", k=2), acts, criterion="kmnc",
                        k=2)
    with pytest.raises(ValueError, match="bool"):
        coverage.update(coverage.init(counts, criterion="kmnc", k=2), acts, criterion="nc")
    with pytest.raises(ValueError, match="std_multiple must be >= 0"):
        coverage.neuron_boundary_coverage(acts, prof, std_multiple=-1.0)
    with pytest.raises(ValueError, match="threshold must be finite"):
        coverage.neuron_coverage(acts, threshold=float("nan"))
    with pytest.raises(BAD_SHAPE):
        coverage.ratio({"a": jnp.zeros(3)})
    with pytest.raises(ValueError, match="exclude has no site"):
        coverage.ratio({"a": jnp.zeros(3, bool)}, exclude={"b": jnp.zeros(3, bool)})
    with pytest.raises(ValueError, match="same sites"):
        coverage.newly_covered({"a": jnp.zeros(3, bool)}, {"b": jnp.zeros(3, bool)})
