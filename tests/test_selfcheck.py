"""workbench.selfcheck: each check passes a right answer and names the first problem of a wrong
one in its hint, never raising."""

import numpy as np
import pytest

from workbench import selfcheck


def test_right_answer_passes_and_shows_pass():
    check = selfcheck.array("x", np.ones(3) / 2, shape=(3,), dtype="float", low=0, high=1,
                            expected=[0.5, 0.5, 0.5])
    assert check.passed and repr(check).startswith("PASS x: ")


@pytest.mark.parametrize("value", [None, ...])
def test_placeholder_is_not_answered(value):
    check = selfcheck.array("x", value, shape=())
    assert not check.passed and "not answered yet" in check.hint
    assert repr(check).startswith("NOT YET x: ")


@pytest.mark.parametrize(("value", "options", "words"), [
    (np.zeros((4, 3)), {"shape": (3,)}, "too many axes"),
    (np.zeros(3), {"shape": (1, 3)}, "same size"),
    (np.zeros(()), {"shape": (3,)}, "too few axes"),
    (np.zeros(3), {"shape": (-1, 2)}, "expected shape ('any', 2), got (3,)"),
    (np.array([0.5, 1.5]), {"dtype": "int"}, "expected int values, got float"),
    (np.array([1, 2]), {"dtype": "bool"}, "expected bool values, got int"),
    (np.array([1.0, np.nan]), {}, "1 values are NaN or infinite"),
    (1.5, {"low": 0, "high": 1}, "yours reach 1.5 (a ratio is covered / total)"),
    (-0.5, {"low": 0}, "yours go down to -0.5"),
    (0.6, {"expected": 0.5}, "0.6 is too high, off by 0.1 (20% of the expected value)"),
    (0.4, {"expected": 0.5}, "too low"),
    (np.array([1.0, 2.0, 3.0]), {"expected": [1.0, 2.0, 4.0]}, "1 of 3 values differ"),
    ("text", {}, "expected an array or a number, got str"),
    ({"a": 1}, {}, "expected an array or a number, got dict"),
])
def test_wrong_answers_get_the_first_problem_as_hint(value, options, words):
    check = selfcheck.array("x", value, **options)
    assert not check.passed
    assert words in check.hint, check.hint


def test_int_asked_whole_float_accepted():
    assert selfcheck.array("n", 3.0, shape=(), dtype="int", expected=3).passed


def test_tolerance():
    assert selfcheck.array("x", 1.0005, expected=1.0, rtol=1e-3).passed
    assert not selfcheck.array("x", 1.01, expected=1.0, rtol=1e-3).passed


def test_mapping():
    acts = {"fc1": np.zeros((2, 3)), "fc2": np.zeros((2, 4))}
    assert selfcheck.mapping("acts", acts, keys=["fc1", "fc2"], shapes={"fc2": (2, 4)}).passed
    assert "missing keys ['fc3']" in selfcheck.mapping("acts", acts, keys=["fc1", "fc2", "fc3"]).hint
    assert "unexpected keys ['fc2']" in selfcheck.mapping("acts", acts, keys=["fc1"]).hint
    hint = selfcheck.mapping("acts", acts, shapes={"fc1": (2, 4)}).hint
    assert "expected shape (2, 4), got (2, 3)" in hint and "at key 'fc1'" in hint
    assert "expected a dict, got list" in selfcheck.mapping("acts", [1]).hint
    assert "not answered yet" in selfcheck.mapping("acts", None).hint


def test_neurons():
    want = [("fc1", 0), ("fc2", 3)]
    assert selfcheck.neurons("top", [("fc2", 3), ["fc1", 0]], expected=want).passed
    assert "expected 2 entries, got 1" in selfcheck.neurons("top", [("fc1", 0)], expected=want).hint
    hint = selfcheck.neurons("top", [("fc1", 0), ("fc1", 1)], expected=want).hint
    assert hint == "1 of your 2 are right; 1 expected ones are missing, e.g. (fc2, 3)"
    assert "order differs from position 0" in selfcheck.neurons(
        "top", want[::-1], expected=want, ordered=True).hint
    assert selfcheck.neurons("top", [3, 1], expected=[1, 3]).passed
    assert "expected a list, got int" in selfcheck.neurons("top", 3, expected=want).hint
    assert "could not read" in selfcheck.neurons("top", [("fc1", "x")], expected=want).hint


def test_an_answer_that_breaks_the_check_is_a_hint():
    class Odd:
        def __array__(self, *args, **kwargs):
            raise RuntimeError("no array here")

    check = selfcheck.array("x", Odd(), shape=())
    assert not check.passed and "RuntimeError: no array here" in check.hint
