"""Significance and effect size for comparing two groups of measurements, and result tables.

Claims such as "inputs synthesised from suspicious neurons are classified correctly less often
than those from random neurons" compare two samples (one value per class, seed or repeat).
Following Arcuri and Briand's guidelines for randomised algorithms in software engineering,
:func:`compare` reports the Mann-Whitney U test (no normality assumption) and the
Vargha-Delaney A12 effect size.

References:
    Mann and Whitney, "On a test of whether one of two random variables is stochastically
    larger than the other", Ann. Math. Statist. 18(1), 1947.
    Vargha and Delaney, "A critique and improvement of the CL common language effect size
    statistics of McGraw and Wong", J. Educ. Behav. Stat. 25(2), 2000, equation (14).
    Arcuri and Briand, "A practical guide for using statistical tests to assess randomized
    algorithms in software engineering", ICSE 2011, section 5.
"""

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.stats

__all__ = ["Comparison", "a12", "magnitude", "compare", "group_mean", "write_table",
           "markdown_table"]


class Comparison(NamedTuple):
    """Two samples compared: sizes, medians, Mann-Whitney U, its p-value and A12."""

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    u: float  # Mann-Whitney U of sample a
    p: float  # two-sided p-value
    a12: float  # P(A > B) + P(A = B) / 2
    magnitude: str  # "negligible", "small", "medium" or "large"


def _sample(name: str, values) -> np.ndarray:
    values = np.asarray(values, np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError(f"sample {name} is empty")
    if not np.isfinite(values).all():
        raise ValueError(f"sample {name} contains NaN or infinity")
    return values


def a12(a, b) -> float:
    """Vargha-Delaney A12: the probability that a value of ``a`` exceeds one of ``b``, ties
    counting half.

    Example:
        >>> a12([1, 2, 3], [1, 2, 3]), a12([4, 5], [1, 2]), a12([1], [1, 2])
        (0.5, 1.0, 0.25)
    """
    a, b = _sample("a", a), _sample("b", b)
    greater = (a[:, None] > b[None, :]).mean()
    equal = (a[:, None] == b[None, :]).mean()
    return float(greater + 0.5 * equal)


def magnitude(effect: float) -> str:
    """Vargha and Delaney's labels for A12: distance from 0.5 below 0.06 is negligible, below
    0.14 small, below 0.21 medium, else large (their thresholds 0.56, 0.64, 0.71)."""
    distance = abs(effect - 0.5)
    return ("negligible" if distance < 0.06 else "small" if distance < 0.14
            else "medium" if distance < 0.21 else "large")


def compare(a, b) -> Comparison:
    """Mann-Whitney U (two-sided, scipy) and A12 of sample ``a`` against sample ``b``.

    Example:
        >>> c = compare([0.1, 0.2, 0.3, 0.2], [0.6, 0.8, 0.7, 0.9])
        >>> c.a12, c.magnitude, c.p < 0.05
        (0.0, 'large', True)
    """
    a, b = _sample("a", a), _sample("b", b)
    if np.ptp(np.concatenate([a, b])) == 0:
        u, p = a.size * b.size / 2, 1.0
    else:
        result = scipy.stats.mannwhitneyu(a, b, alternative="two-sided")
        u, p = float(result.statistic), float(result.pvalue)
    effect = a12(a, b)
    return Comparison(int(a.size), int(b.size), float(np.median(a)), float(np.median(b)),
                      float(u), float(p), effect, magnitude(effect))


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def markdown_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts as a GitHub Markdown table (floats to 4 significant digits).

    Example:
        >>> print(markdown_table([{"model": "a", "ours": 0.96}]))
        | model | ours |
        | --- | --- |
        | a | 0.96 |
    """
    columns = list(columns or (rows[0].keys() if rows else []))
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(_text(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_table(rows: Sequence[Mapping], path: str | os.PathLike,
                columns: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Writes ``rows`` as ``path.csv`` and ``path.md`` (``path`` without suffix); returns both
    paths. Missing values are empty cells."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns or (rows[0].keys() if rows else []))
    csv_path, md_path = path.with_suffix(".csv"), path.with_suffix(".md")
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    md_path.write_text(markdown_table(rows, columns) + "\n")
    return csv_path, md_path


def group_mean(rows: Sequence[Mapping], by: Sequence[str], values: Sequence[str]
               ) -> list[dict]:
    """Means (and standard deviations, as ``<value>_sd``, and counts ``n``) of ``values`` over
    the rows sharing each combination of ``by``, in order of first appearance.

    Example:
        >>> group_mean([{"a": "x", "v": 1.0}, {"a": "x", "v": 3.0}, {"a": "y", "v": 5.0}],
        ...            ["a"], ["v"])
        [{'a': 'x', 'n': 2, 'v': 2.0, 'v_sd': 1.0}, {'a': 'y', 'n': 1, 'v': 5.0, 'v_sd': 0.0}]
    """
    groups: dict[tuple, list[Mapping]] = {}
    for row in rows:
        groups.setdefault(tuple(row[b] for b in by), []).append(row)
    out = []
    for key, members in groups.items():
        entry = dict(zip(by, key))
        entry["n"] = len(members)
        for v in values:
            sample = np.array([m[v] for m in members], np.float64)
            entry[v] = float(sample.mean())
            entry[f"{v}_sd"] = float(sample.std())
        out.append(entry)
    return out
