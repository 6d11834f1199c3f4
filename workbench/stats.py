"""Significance, effect size, confidence intervals and result tables.

Claims such as "inputs synthesised from suspicious neurons are classified correctly less often
than those from random neurons" compare two samples (one value per class, seed or repeat).
Following Arcuri and Briand's guidelines for randomised algorithms in software engineering,
:func:`compare` reports the Mann-Whitney U test (no normality assumption) and the
Vargha-Delaney A12 effect size, which is U scaled to [0, 1]. :func:`mean_interval` gives a mean
over a few runs with its Student-t confidence interval.

One spread convention throughout: the *sample* standard deviation (``ddof=1``, dividing by
``n - 1``), named in every column that reports it (:func:`sd_column`); a single value has no
sample standard deviation (NaN).

References:
    Mann and Whitney, "On a test of whether one of two random variables is stochastically
    larger than the other", Ann. Math. Statist. 18(1), 1947.
    Vargha and Delaney, "A critique and improvement of the CL common language effect size
    statistics of McGraw and Wong", J. Educ. Behav. Stat. 25(2), 2000, equation (14).
    Arcuri and Briand, "A practical guide for using statistical tests to assess randomized
    algorithms in software engineering", ICSE 2011, section 5.
    Student, "The probable error of a mean", Biometrika 6(1), 1908.
"""

import numbers
from collections.abc import Mapping, Sequence
from typing import NamedTuple, SupportsFloat

import numpy as np
import scipy.stats
from jaxtyping import ArrayLike, Real

__all__ = [
    "Comparison",
    "Sample",
    "a12",
    "compare",
    "group_mean",
    "magnitude",
    "markdown_table",
    "mean_interval",
    "sd",
    "sd_column",
]

# One sample of measurements: an array of any shape (flattened) or a list of numbers.
Sample = Real[ArrayLike, "..."] | Sequence[SupportsFloat]


class Comparison(NamedTuple):
    """Two samples compared: sizes, medians, Mann-Whitney U, its p-value and A12."""

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    u: float  # Mann-Whitney U of sample a: pairs (x in a, y in b) with x > y, ties half
    p: float  # two-sided p-value
    a12: float  # u / (n_a * n_b) = P(A > B) + P(A = B) / 2
    magnitude: str  # "negligible", "small", "medium" or "large"


def _sample(name: str, values) -> np.ndarray:
    values = np.asarray(values, np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError(f"sample {name} is empty")
    if not np.isfinite(values).all():
        raise ValueError(f"sample {name} contains NaN or infinity")
    return values


def _mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney U of ``a`` (scipy: midranks, so each tie counts half) and its two-sided p."""
    if np.ptp(np.concatenate([a, b])) == 0:
        # Every value tied: U is half of all pairs and nothing differs (older scipy returns
        # NaN with a warning here).
        return a.size * b.size / 2, 1.0
    result = scipy.stats.mannwhitneyu(a, b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def a12(a: Sample, b: Sample) -> float:
    """Vargha-Delaney A12: the probability that a value of ``a`` exceeds one of ``b``, ties
    counting half.

    Computed from the Mann-Whitney U of ``a`` (the number of pairs ``(x in a, y in b)`` with
    ``x > y``, ties counting half) as ``A12 = U / (n_a * n_b)``, Vargha and Delaney's equation
    (14) ``(R_a / n_a - (n_a + 1) / 2) / n_b`` with ``R_a`` the rank sum of ``a``: no pairwise
    ``(n_a, n_b)`` matrix is formed.

    Args:
        a, b: the two samples (any shape, flattened; finite, non-empty).

    Returns:
        A12 in [0, 1]: 0.5 when neither sample tends to be larger.

    Example:
        >>> a12([1, 2, 3], [1, 2, 3]), a12([4, 5], [1, 2]), a12([1], [1, 2])
        (0.5, 1.0, 0.25)

    References:
        Vargha and Delaney 2000, equation (14); Mann and Whitney 1947.
    """
    a, b = _sample("a", a), _sample("b", b)
    u, _ = _mann_whitney(a, b)
    return u / (a.size * b.size)


def magnitude(effect: float) -> str:
    """Vargha and Delaney's labels for A12: distance from 0.5 below 0.06 is negligible, below
    0.14 small, below 0.21 medium, else large (their thresholds 0.56, 0.64, 0.71).

    Example:
        >>> magnitude(0.5), magnitude(0.6), magnitude(0.3), magnitude(0.05)
        ('negligible', 'small', 'medium', 'large')
    """
    distance = abs(effect - 0.5)
    return ("negligible" if distance < 0.06 else "small" if distance < 0.14
            else "medium" if distance < 0.21 else "large")


def compare(a: Sample, b: Sample) -> Comparison:
    """Mann-Whitney U (two-sided, scipy) and A12 of sample ``a`` against sample ``b``.

    Args:
        a, b: the two samples (any shape, flattened; finite, non-empty).

    Returns:
        A :class:`Comparison`; its ``a12`` is ``u / (n_a * n_b)``.

    Example:
        >>> c = compare([0.1, 0.2, 0.3, 0.2], [0.6, 0.8, 0.7, 0.9])
        >>> c.u, c.a12, c.magnitude, c.p < 0.05
        (0.0, 0.0, 'large', True)

    References:
        Mann and Whitney 1947; Vargha and Delaney 2000, equation (14); Arcuri and Briand
        2011, section 5.
    """
    a, b = _sample("a", a), _sample("b", b)
    u, p = _mann_whitney(a, b)
    effect = u / (a.size * b.size)
    return Comparison(int(a.size), int(b.size), float(np.median(a)), float(np.median(b)),
                      u, p, effect, magnitude(effect))


def mean_interval(values: Sample, *, confidence: SupportsFloat = 0.95) -> tuple[float, float]:
    """The mean of ``values`` and the half-width of its Student-t confidence interval.

    The interval is ``mean +- t * s / sqrt(n)`` with ``s`` the sample standard deviation
    (``ddof=1``) and ``t`` the ``(1 + confidence) / 2`` quantile of Student's t with ``n - 1``
    degrees of freedom: it assumes roughly normal values, which a few runs cannot check.

    Args:
        values: the measurements, one per run (any shape, flattened; finite, non-empty).
        confidence: the interval's coverage, in (0, 1).

    Returns:
        ``(mean, half_width)``; the half-width is NaN for a single value.

    Example:
        >>> mean, half = mean_interval([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.303
        >>> round(mean, 3), round(half, 3)
        (2.0, 2.484)

    References:
        Student 1908; Montgomery and Runger, "Applied Statistics and Probability for
        Engineers", section 8.2 (the t interval on a mean, variance unknown).
    """
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) \
            or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    values = _sample("values", values)
    mean = float(values.mean())
    if values.size == 1:
        return mean, float("nan")
    t = scipy.stats.t.ppf(0.5 + confidence / 2, values.size - 1)
    return mean, float(t * _sd(values) / np.sqrt(values.size))


def sd(values: Sample) -> float:
    """The sample standard deviation (``ddof=1``, dividing by ``n - 1``); NaN for one value.

    Example:
        >>> sd([1.0, 2.0, 3.0]), sd([4.0])
        (1.0, nan)
    """
    return _sd(_sample("values", values))


def _sd(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")


def sd_column(value: str) -> str:
    """The name of the column holding the sample standard deviation of ``value``.

    Example:
        >>> sd_column("accuracy")
        'accuracy sd (ddof=1)'
    """
    return f"{value} sd (ddof=1)"


def group_mean(rows: Sequence[Mapping], by: Sequence[str], values: Sequence[str]
               ) -> list[dict]:
    """Means, sample standard deviations and counts of ``values`` over the rows sharing each
    combination of ``by``, in order of first appearance.

    Args:
        rows: dicts holding every key of ``by`` and ``values``.
        by: the keys that form a group.
        values: the numeric keys to summarise.

    Returns:
        One dict per group: the ``by`` keys, ``n``, and per value its mean (under the value's
        own name) and its sample standard deviation, ``ddof=1``, under :func:`sd_column`
        (NaN for a group of one). A ``None`` value counts as NaN, making both NaN.

    Example:
        >>> group_mean([{"a": "x", "v": 1.0}, {"a": "x", "v": 3.0}, {"a": "y", "v": 5.0}],
        ...            ["a"], ["v"])  # doctest: +NORMALIZE_WHITESPACE
        [{'a': 'x', 'n': 2, 'v': 2.0, 'v sd (ddof=1)': 1.4142135623730951},
         {'a': 'y', 'n': 1, 'v': 5.0, 'v sd (ddof=1)': nan}]
    """
    groups: dict[tuple, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(tuple(row[b] for b in by), []).append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(by, key))
        entry["n"] = len(members)
        for v in values:
            # A missing (None) value is NaN and makes its group's mean and sd NaN.
            sample = np.array([m[v] for m in members], np.float64)
            entry[v] = float(sample.mean())
            entry[sd_column(v)] = _sd(sample)
        out.append(entry)
    return out


def _text(value) -> str:
    if isinstance(value, (float, np.floating)):
        text = f"{value:.4g}"
    else:
        text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as a GitHub Markdown table: the one table renderer of the package.

    Floats are shown to 4 significant digits, ``None`` or a missing key as an empty cell,
    anything else as ``str``; ``|`` is escaped and line breaks become spaces.

    Args:
        rows: one dict per row.
        columns: the columns, in order (default: the first row's keys).

    Returns:
        The table, without a trailing newline.

    Example:
        >>> print(markdown_table([{"model": "a", "ours": 0.96, "note": "x|y"}]))
        | model | ours | note |
        | --- | --- | --- |
        | a | 0.96 | x\\|y |
    """
    columns = list(columns or (rows[0].keys() if rows else []))
    lines = ["| " + " | ".join(_text(c) for c in columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(_text(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)
