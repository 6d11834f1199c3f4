"""Tests of workbench.prioritisation against hand-computed orders and APFD values."""

import itertools

import jax
import numpy as np
import pytest

from workbench import coverage, prioritisation


def np_apfd(order, faults):
    """The textbook APFD (Rothermel et al. 2001), one fault at a time."""
    n, k = len(order), int(faults.sum())
    tf = [pos + 1 for pos, i in enumerate(order) if faults[i]]
    return 1 - sum(tf) / (k * n) + 1 / (2 * n)


def np_cam(matrix):
    """Greedy additional coverage, then the rest by total coverage (dnn-tip's cam)."""
    matrix = matrix.copy()
    picked = []
    while True:
        gains = [-1 if i in picked else int(matrix[i].sum()) for i in range(len(matrix))]
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        picked.append(best)
        matrix[:, matrix[best].copy()] = False
    total = MATRIX_TOTAL[0]
    rest = sorted((i for i in range(len(matrix)) if i not in picked), key=lambda i: -total[i])
    return picked + rest


MATRIX_TOTAL = [None]


def test_softmax_scores_by_hand():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.6, 0.3, 0.1]], np.float32)
    np.testing.assert_allclose(prioritisation.deepgini(p), [0.0, 0.5, 1 - 0.46], rtol=1e-6)
    np.testing.assert_allclose(prioritisation.softmax_entropy(p),
                               [0.0, np.log(2), -(0.6 * np.log(0.6) + 0.3 * np.log(0.3)
                                                  + 0.1 * np.log(0.1))], rtol=1e-6)
    np.testing.assert_allclose(prioritisation.margin(p), [0.0, 1.0, 0.7], rtol=1e-6)
    np.testing.assert_allclose(prioritisation.max_probability(p), [0.0, 0.5, 0.4], atol=1e-7)
    # Ordering: the uniform-ish second row first for every score.
    for fn in (prioritisation.deepgini, prioritisation.softmax_entropy,
               prioritisation.margin, prioritisation.max_probability):
        assert prioritisation.order(fn(p)).tolist()[-1] == 0


def test_order_is_stable_descending():
    assert prioritisation.order(np.array([1, 3, 3, 0, 1])).tolist() == [1, 2, 0, 4, 3]


def test_apfd_hand_values_and_numpy_reference():
    faults = np.array([True, False, False, True, False])
    # Faults at positions 1 and 2 of 5: 1 - 3/10 + 1/10.
    assert prioritisation.apfd(np.array([0, 3, 1, 2, 4]), faults) == pytest.approx(0.8)
    # Faults last: positions 4 and 5: 1 - 9/10 + 1/10.
    assert prioritisation.apfd(np.array([1, 2, 4, 0, 3]), faults) == pytest.approx(0.2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        f = rng.random(12) < 0.3
        f[0] = True
        o = rng.permutation(12)
        assert prioritisation.apfd(o, f) == pytest.approx(np_apfd(o, f))


def test_apfd_ties_take_the_mean_over_every_tie_break():
    faults = np.array([True, False, False, True, False])
    scores = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    o = prioritisation.order(scores)
    assert o.tolist() == [0, 1, 3, 2, 4]
    expected = np.mean([np_apfd(list(p) + [2, 4], faults) for p in itertools.permutations(
        [0, 1, 3])])
    got = prioritisation.apfd(o, faults, scores=scores)
    assert got == pytest.approx(expected)
    # 3 tied at the top hold both faults: mean position 2 each: 1 - 4/10 + 1/10.
    assert got == pytest.approx(0.7)
    assert prioritisation.apfd(o, faults) == pytest.approx(np_apfd(o.tolist(), faults))


def test_faults_found_curve():
    curve = prioritisation.faults_found(np.array([3, 0, 1, 2]),
                                        np.array([True, False, False, True]))
    assert curve.tolist() == [1, 2, 2, 2]


def test_coverage_total_and_additional_by_hand():
    masks = {"a": np.array([[True, False], [True, True], [False, False], [False, False]]),
             "b": np.array([[[False, False]], [[False, False]], [[True, True]],
                            [[False, True]]])}
    assert prioritisation.coverage_total(masks).tolist() == [1, 2, 2, 1]
    # 1 covers a0, a1 (2; ties with 2 go to the lower index); then 2 adds b0, b1;
    # nothing is left: 0 and 3 by total (1 each), lower index first.
    assert prioritisation.coverage_additional(masks).tolist() == [1, 2, 0, 3]


def test_coverage_additional_matches_numpy_greedy():
    rng = np.random.default_rng(1)
    for _ in range(10):
        matrix = rng.random((15, 9)) < 0.25
        MATRIX_TOTAL[0] = matrix.sum(axis=1)
        got = prioritisation.coverage_additional({"x": matrix})
        assert got.tolist() == np_cam(matrix)


def test_coverage_prioritisation_on_input_masks_of_each_criterion():
    acts = {"fc": jax.random.normal(jax.random.key(0), (6, 4))}
    from workbench import profiles
    prof = profiles.profile({"fc": jax.random.normal(jax.random.key(1), (50, 4))})
    options = {"nc": {"threshold": 0.5, "minmax_per_input": False}, "kmnc": {"profile": prof,
               "k": 3}, "nbc": {"profile": prof}, "snac": {"profile": prof}, "tknc": {"k": 1}}
    for criterion in coverage.CRITERIA:
        per_input = coverage.input_masks(acts, criterion=criterion, **options[criterion])
        union = coverage.update(coverage.init({"fc": 4}, criterion=criterion,
                                              k=options[criterion].get("k")), acts,
                                criterion=criterion, **options[criterion])
        np.testing.assert_array_equal(per_input["fc"].any(axis=0), union["fc"])
        for i in range(6):  # each row is the criterion of that input alone
            alone = coverage.update(coverage.init({"fc": 4}, criterion=criterion,
                                                  k=options[criterion].get("k")),
                                    {"fc": acts["fc"][i:i + 1]}, criterion=criterion,
                                    **options[criterion])
            np.testing.assert_array_equal(per_input["fc"][i], alone["fc"])
        o = prioritisation.coverage_additional(per_input)
        assert sorted(o.tolist()) == list(range(6))


def test_dnn_tip_agrees_where_installed():
    dnn_tip = pytest.importorskip("dnn_tip.apfd")
    rng = np.random.default_rng(2)
    f = rng.random(30) < 0.2
    f[3] = True
    o = rng.permutation(30)
    assert prioritisation.apfd(o, f) == pytest.approx(dnn_tip.apfd_from_order(f, o))


def test_bad_input():
    with pytest.raises(ValueError, match="softmax"):
        prioritisation.deepgini(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="permutation"):
        prioritisation.apfd(np.array([0, 0, 1]), np.array([True, False, False]))
    with pytest.raises(ValueError, match="no true"):
        prioritisation.apfd(np.array([0, 1]), np.array([False, False]))
    with pytest.raises(ValueError, match="descending"):
        prioritisation.apfd(np.array([0, 1]), np.array([True, False]), scores=np.array([0., 1.]))
    with pytest.raises(ValueError, match="bool"):
        prioritisation.coverage_total({"a": np.ones((2, 3))})
