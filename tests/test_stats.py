"""Statistics: A12 from Mann-Whitney U, the t interval, the sd convention, tables."""

import math

import numpy as np
import pytest
import scipy.stats

from workbench import stats


def brute_force_a12(a, b):
    """Vargha and Delaney's A12 by counting every pair: P(A > B) + P(A = B) / 2."""
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


def test_a12_matches_a_hand_count_with_ties():
    # Pairs of (1, 2, 3) against (1, 2): (1,1) tie, (1,2) loss, (2,1) win, (2,2) tie,
    # (3,1) win, (3,2) win: 3 wins + 2 halves = 4 of 6. Ranks of 1,1,2,2,3: 1.5,1.5,3.5,3.5,5;
    # R_a = 10, equation (14): (10/3 - 2) / 2 = 2/3.
    assert stats.a12([1, 2, 3], [1, 2]) == pytest.approx(4 / 6)
    assert stats.a12([1, 2], [1, 2, 3]) == pytest.approx(2 / 6)


@pytest.mark.parametrize("seed", range(5))
def test_a12_matches_the_pairwise_count(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 5, size=rng.integers(1, 30)).astype(float)  # many ties
    b = rng.integers(0, 5, size=rng.integers(1, 30)).astype(float) + rng.choice([0, 0.5])
    assert stats.a12(a, b) == pytest.approx(brute_force_a12(a, b), abs=1e-12)
    assert stats.a12(a, b) + stats.a12(b, a) == pytest.approx(1.0)


def test_a12_of_identical_constants_is_one_half():
    assert stats.a12([2.0, 2.0], [2.0, 2.0, 2.0]) == 0.5
    assert stats.compare([2.0, 2.0], [2.0]).p == 1.0


def test_compare_reports_scipys_u_and_p():
    a, b = [0.9, 0.7, 0.8, 0.75, 0.6], [0.5, 0.65, 0.55, 0.7]
    c = stats.compare(a, b)
    reference = scipy.stats.mannwhitneyu(a, b, alternative="two-sided")
    # Pairs a > b: 0.9, 0.8, 0.75 beat all 4 (12); 0.7 beats 3 and ties 1 (3.5); 0.6 beats 2.
    assert c.u == pytest.approx(17.5) == pytest.approx(reference.statistic)
    assert c.p == pytest.approx(reference.pvalue)
    assert c.a12 == pytest.approx(17.5 / 20) == pytest.approx(brute_force_a12(a, b))
    assert (c.n_a, c.n_b) == (5, 4)
    assert (c.median_a, c.median_b) == pytest.approx((0.75, 0.6))
    assert c.magnitude == "large"


def test_magnitude_follows_vargha_and_delaney_thresholds():
    labels = [stats.magnitude(x) for x in (0.55, 0.57, 0.65, 0.72, 0.45, 0.37, 0.28)]
    assert labels == ["negligible", "small", "medium", "large", "negligible", "small", "large"]


def test_bad_samples_are_rejected_by_name():
    with pytest.raises(ValueError, match="sample a is empty"):
        stats.a12([], [1.0])
    with pytest.raises(ValueError, match="sample b contains NaN"):
        stats.compare([1.0], [float("nan")])


def test_mean_interval_matches_a_hand_computed_t_interval():
    # values 2, 4, 6, 8: mean 5, s = sqrt(20 / 3) = 2.582, t(0.975, 3) = 3.182 (tables),
    # half-width 3.182 * 2.582 / 2 = 4.108.
    mean, half = stats.mean_interval([2.0, 4.0, 6.0, 8.0])
    assert mean == 5.0
    assert half == pytest.approx(3.182 * math.sqrt(20 / 3) / 2, rel=1e-3)
    assert half == pytest.approx(4.108, abs=1e-3)
    # 90%: t(0.95, 3) = 2.353.
    _, half90 = stats.mean_interval(np.array([2.0, 4.0, 6.0, 8.0]), confidence=0.9)
    assert half90 == pytest.approx(2.353 * math.sqrt(20 / 3) / 2, rel=1e-3)


def test_mean_interval_of_one_value_has_no_width():
    mean, half = stats.mean_interval([0.25])
    assert mean == 0.25 and math.isnan(half)


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95, True])
def test_mean_interval_rejects_bad_confidence(confidence):
    with pytest.raises(ValueError, match="confidence must be a number in"):
        stats.mean_interval([1.0, 2.0], confidence=confidence)


def test_sd_is_the_sample_standard_deviation():
    values = [1.0, 2.0, 4.0, 7.0]
    assert stats.sd(values) == pytest.approx(np.std(values, ddof=1))
    assert stats.sd(values) == pytest.approx(math.sqrt(21 / 3))  # mean 3.5: 6.25+2.25+0.25+12.25
    assert math.isnan(stats.sd([3.0]))


def test_group_mean_uses_the_sample_sd_and_names_it():
    rows = [{"m": "a", "acc": 0.5}, {"m": "b", "acc": 0.9}, {"m": "a", "acc": 0.7},
            {"m": "a", "acc": 0.9}, {"m": "b", "acc": None}]
    summary = stats.group_mean(rows, ["m"], ["acc"])
    column = stats.sd_column("acc")
    assert column == "acc sd (ddof=1)"
    assert [(r["m"], r["n"]) for r in summary] == [("a", 3), ("b", 2)]
    assert summary[0]["acc"] == pytest.approx(0.7)
    assert summary[0][column] == pytest.approx(0.2)  # deviations -0.2, 0, 0.2: sqrt(0.08 / 2)
    assert math.isnan(summary[1]["acc"]) and math.isnan(summary[1][column])


def test_markdown_table_formats_and_escapes():
    text = stats.markdown_table([{"a": 1 / 3, "b": None, "c": "x|y\nz"}, {"a": np.float32(2)}])
    assert text.splitlines() == ["| a | b | c |", "| --- | --- | --- |",
                                 "| 0.3333 |  | x\\|y z |", "| 2 |  |  |"]
    assert stats.markdown_table([{"a": 1, "b": 2}], ["b"]) == "| b |\n| --- |\n| 2 |"
