"""Self-checks for the course's exercises: say what is still wrong, with a hint, never raise.

Each function compares a student's answer with what the exercise asks for (a shape, a dtype, a
range, a value, a set of neurons, the keys of a dict) and returns a :class:`Check`, whose
``repr`` is one line a notebook shows as the cell's result: ``PASS name: ...`` or
``NOT YET name: hint``. The checks run in order and the first failing one gives the hint, so a
student fixes one thing at a time: not answered yet, wrong type, wrong shape, wrong dtype, not
finite, out of range, value off the expected one.

Nothing here raises on a wrong answer: any problem, including an answer of a type the check
cannot read at all, becomes a hint. The course's graded test cells (plain ``assert`` s, nbgrader
style) are where a wrong answer fails.
"""

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = ["UNANSWERED", "Check", "array", "mapping", "neurons"]

UNANSWERED = (None, Ellipsis)
"""What a student version's placeholder assigns (``answer = None  # YOUR CODE HERE``)."""


class Check(NamedTuple):
    """The outcome of one self-check; its ``repr`` is the line a notebook shows."""

    name: str  # the answer's variable name
    passed: bool  # True when every check passed
    hint: str  # what is wrong and what to try, or a short confirmation

    def __repr__(self) -> str:
        return f"{'PASS' if self.passed else 'NOT YET'} {self.name}: {self.hint}"


def _unanswered(name: str, value: Any) -> Check | None:
    if value is None or value is Ellipsis:
        return Check(name, False, f"not answered yet: replace the placeholder in the exercise "
                                  f"cell with your computation of `{name}`")
    return None


def _as_array(name: str, value: Any) -> tuple[np.ndarray | None, Check | None]:
    try:
        out = np.asarray(value)
    except (TypeError, ValueError) as error:  # unreadable: a hint, not a traceback
        return None, Check(name, False, f"expected an array or a number, got "
                                        f"{type(value).__name__} ({error})")
    if out.dtype != np.bool_ and not np.issubdtype(out.dtype, np.number):
        return None, Check(name, False, f"expected an array or a number, got "
                                        f"{type(value).__name__}")
    return out, None


def _never_raises(check):
    """``check`` with anything it cannot handle in an answer turned into a hint."""

    @functools.wraps(check)
    def guarded(name: str, value: Any, **options) -> Check:
        try:
            return check(name, value, **options)
        except Exception as error:  # noqa: BLE001 - a self-check must never show a traceback
            return Check(name, False, f"could not check this answer ({type(error).__name__}: "
                                      f"{error}); is it the kind of value the exercise asks for?")

    return guarded


def _kind(dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "int"
    if np.issubdtype(dtype, np.floating):
        return "float"
    return str(dtype)


@_never_raises
def array(name: str, value: Any, *, shape: Sequence[int] | None = None, dtype: Any = None,
          low: Any = None, high: Any = None, expected: Any = None, rtol: Any = 1e-3,
          atol: Any = 1e-6) -> Check:
    """Checks a numeric answer (a number or an array).

    Args:
        name: the answer's variable name, used in the hint.
        value: the student's answer.
        shape: the expected shape (``()`` for one number); ``-1`` matches any length.
        dtype: ``"bool"``, ``"int"`` or ``"float"`` (any width); a float answer where an int
            is asked is accepted when every value is whole.
        low, high: the closed range every value must lie in.
        expected: the reference value (broadcast to the answer's shape).
        rtol, atol: the tolerance against ``expected``, as in ``numpy.allclose``.

    Returns:
        A :class:`Check`; the hint names the first problem found.

    Example:
        >>> array("ratio", 0.5, shape=(), low=0, high=1, expected=0.5)
        PASS ratio: shape (), in [0, 1], matches the expected value
        >>> array("ratio", 1.5, shape=(), low=0, high=1).hint
        'values must lie in [0, 1]; yours reach 1.5 (a ratio is covered / total)'
    """
    if (missing := _unanswered(name, value)) is not None:
        return missing
    out, problem = _as_array(name, value)
    if problem is not None:
        return problem
    if shape is not None:
        shape = tuple(shape)
        fits = out.ndim == len(shape) and all(s in (-1, o) for s, o in zip(shape, out.shape))
        if not fits:
            wanted = tuple("any" if s == -1 else s for s in shape)
            hint = f"expected shape {wanted}, got {out.shape}"
            if out.size == int(np.prod([s for s in shape if s != -1], dtype=np.int64)) \
                    and -1 not in shape:
                hint += " (same size: reshape, or check which axis you reduced)"
            elif out.ndim > len(shape):
                hint += " (too many axes: did you forget to reduce over one, e.g. .mean(axis=0)?)"
            elif out.ndim < len(shape):
                hint += " (too few axes: did you reduce over one axis too many?)"
            return Check(name, False, hint)
    if dtype is not None:
        got = _kind(out.dtype)
        whole = got == "float" and dtype == "int" and bool(np.all(np.mod(out, 1) == 0))
        if got != dtype and not whole and not (dtype == "float" and got in ("int", "bool")):
            return Check(name, False, f"expected {dtype} values, got {got} ({out.dtype})")
    numeric = out.dtype != np.bool_ and np.issubdtype(out.dtype, np.number)
    if numeric and not np.all(np.isfinite(out)):
        return Check(name, False, f"{int(np.sum(~np.isfinite(out)))} values are NaN or "
                                  f"infinite (a division by zero?)")
    values = out.astype(np.float64) if out.size else out
    if low is not None and out.size and values.min() < low:
        return Check(name, False, f"values must lie in [{low:g}, {high if high is not None else 'inf'}]"
                                  f"; yours go down to {values.min():.4g}")
    if high is not None and out.size and values.max() > high:
        lo = f"{low:g}" if low is not None else "-inf"
        extra = " (a ratio is covered / total)" if (low, high) == (0, 1) else ""
        return Check(name, False, f"values must lie in [{lo}, {high:g}]; yours reach "
                                  f"{values.max():.4g}{extra}")
    if expected is not None:
        ref = np.asarray(expected, dtype=np.float64)
        try:
            close = np.isclose(values, ref, rtol=rtol, atol=atol)
        except ValueError:
            return Check(name, False, f"cannot compare shape {out.shape} with the expected "
                                      f"shape {ref.shape}")
        if not np.all(close):
            if out.ndim == 0:
                direction = "too high" if values > ref else "too low"
                gap = abs(float(values) - float(ref))
                rel = gap / abs(float(ref)) if float(ref) else float("inf")
                return Check(name, False, f"{float(values):.4g} is {direction}, off by {gap:.3g} "
                                          f"({rel:.0%} of the expected value)")
            return Check(name, False, f"{int(np.sum(~close))} of {close.size} values differ "
                                      f"from the expected ones (first at index "
                                      f"{tuple(int(i) for i in np.argwhere(~close)[0])})")
    said = [f"shape {out.shape}"]
    if low is not None or high is not None:
        said.append(f"in [{low if low is not None else '-inf'}, "
                    f"{high if high is not None else 'inf'}]")
    if expected is not None:
        said.append("matches the expected value")
    return Check(name, True, ", ".join(said))


@_never_raises
def mapping(name: str, value: Any, *, keys: Iterable[Any] | None = None,
            shapes: Mapping[Any, Sequence[int]] | None = None) -> Check:
    """Checks a dict answer, such as ``{site: (batch, neurons)}``: its keys, then each shape.

    Example:
        >>> mapping("acts", {"fc1": np.zeros((2, 3))}, keys=["fc1", "fc2"]).hint
        "missing keys ['fc2']"
    """
    if (missing := _unanswered(name, value)) is not None:
        return missing
    if not isinstance(value, Mapping):
        return Check(name, False, f"expected a dict, got {type(value).__name__}")
    if keys is not None:
        keys = list(keys)
        absent = [k for k in keys if k not in value]
        extra = [k for k in value if k not in keys]
        if absent:
            return Check(name, False, f"missing keys {absent}")
        if extra:
            return Check(name, False, f"unexpected keys {extra}; expected only {keys}")
    for key, want in (shapes or {}).items():
        if key in value:
            inner = array(f"{name}[{key!r}]", value[key], shape=want)
            if not inner.passed:
                return Check(name, False, inner.hint + f" (at key {key!r})")
    return Check(name, True, f"keys {list(value)}" + (", shapes right" if shapes else ""))


@_never_raises
def neurons(name: str, value: Any, *, expected: Iterable[Any], ordered: Any = False) -> Check:
    """Checks a list of neurons (``(site, index)`` pairs, or anything hashable) against the
    expected ones, as a set unless ``ordered``.

    Example:
        >>> neurons("top", [("fc1", 0), ("fc1", 2)], expected=[("fc1", 0), ("fc1", 1)]).hint
        '1 of your 2 are right; 1 expected ones are missing, e.g. (fc1, 1)'
    """
    if (missing := _unanswered(name, value)) is not None:
        return missing
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return Check(name, False, f"expected a list, got {type(value).__name__}")
    try:
        got = [tuple(v) if isinstance(v, (list, tuple)) else v for v in value]
        got = [(str(v[0]), int(v[1])) if isinstance(v, tuple) and len(v) == 2 else v for v in got]
        want = [tuple(v) if isinstance(v, (list, tuple)) else v for v in expected]
        want = [(str(v[0]), int(v[1])) if isinstance(v, tuple) and len(v) == 2 else v
                for v in want]
        if len(got) != len(want):
            return Check(name, False, f"expected {len(want)} entries, got {len(got)}")
        if ordered:
            wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
            if wrong:
                return Check(name, False, f"the order differs from position {wrong[0]} on "
                                          f"(sort by score, highest first)")
            return Check(name, True, f"{len(got)} entries, in the right order")
        right = set(got) & set(want)
        if len(right) != len(set(want)):
            absent = sorted(set(want) - set(got), key=str)
            shown = "(" + ", ".join(map(str, absent[0])) + ")" if isinstance(absent[0], tuple) \
                else str(absent[0])
            return Check(name, False, f"{len(right)} of your {len(got)} are right; "
                                      f"{len(absent)} expected ones are missing, e.g. {shown}")
    except (TypeError, ValueError, IndexError) as error:  # a hint, not a traceback
        return Check(name, False, f"could not read your neurons as (site, index) pairs ({error})")
    return Check(name, True, f"the {len(got)} expected entries")
