"""The one validation module: each check names the argument, what was given and what is
expected."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from workbench import validation


def test_images_accepts_float_batches_and_names_the_problem():
    x = np.zeros((2, 3), np.float32)
    assert validation.images(x) is x
    with pytest.raises(ValueError, match="seeds must be a batched array"):
        validation.images(np.zeros(3, np.float32), "seeds")
    with pytest.raises(ValueError, match="floating point"):
        validation.images(np.zeros((2, 3), np.int32))
    with pytest.raises(ValueError, match="NaN or infinity"):
        validation.images(np.array([[np.inf]], np.float32))


def test_acts_checks_every_site():
    out = validation.acts({"a": np.zeros((2, 3), np.float32), "b": np.ones((2, 1), np.float32)})
    assert list(out) == ["a", "b"] and out["a"].shape == (2, 3)
    with pytest.raises(ValueError, match=r"acts\['a'\] must be \(batch, neurons\)"):
        validation.acts({"a": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="different batch sizes"):
        validation.acts({"a": np.zeros((2, 3), np.float32), "b": np.zeros((3, 3), np.float32)})
    with pytest.raises(ValueError, match="non-empty dict"):
        validation.acts({})


def test_row_mask_and_scalars():
    assert validation.row_mask(None, 3).tolist() == [True] * 3
    with pytest.raises(ValueError, match=r"mask must be bool\[3\]"):
        validation.row_mask(np.ones(3, np.int32), 3)
    assert float(validation.scalar(0.5, "threshold")) == 0.5
    with pytest.raises(ValueError, match="threshold must be finite"):
        validation.scalar(float("nan"), "threshold")
    with pytest.raises(ValueError, match="step must be >= 0"):
        validation.scalar(-1.0, "step", minimum=0.0)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4", None])
def test_positive_int_refuses(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        validation.positive_int(bad, "batch_size")


def test_labels_names_the_argument_the_shape_and_the_bad_values():
    got = validation.labels(np.array([2, 0, 1], np.uint8), 3, classes=3)
    assert isinstance(got, np.ndarray) and got.dtype == np.uint8 and got.tolist() == [2, 0, 1]
    assert validation.labels(jnp.array([4, 5]), 2).tolist() == [4, 5]  # a jax array, to NumPy
    with pytest.raises(ValueError, match=r"^labels must be int\[3\], got float32\[3\]$"):
        validation.labels(np.zeros(3, np.float32), 3)
    with pytest.raises(ValueError, match=r"^classes must be int\[2\], got int64\[2, 1\]$"):
        validation.labels(np.zeros((2, 1), np.int64), 2, "classes")
    with pytest.raises(ValueError, match=r"^extra_labels must be int\[4\], one per extra image, "
                                         r"got bool\[4\]$"):
        validation.labels(np.ones(4, bool), 4, "extra_labels", hint=", one per extra image")
    with pytest.raises(ValueError, match=r"^labels must lie in 0\.\.9, got \[-3, 10\]$"):
        validation.labels([10, 0, -3, 10], 4, classes=10)
    with pytest.raises(ValueError, match=r"got \[10, 11, .*, 19\] and 2 more$"):
        validation.labels(np.arange(22), 22, classes=10)
    with pytest.raises(ValueError, match=r"must be int\[0\], got float64\[0\]"):
        validation.labels([], 0)


def test_labels_under_a_trace_checks_shape_and_dtype_only():
    seen = []

    @jax.jit
    def f(y):
        seen.append(validation.labels(y, 3, classes=2))  # values unknown: range not checked
        return y

    assert f(jnp.array([0, 5, 1])).tolist() == [0, 5, 1]
    assert isinstance(seen[0], jax.core.Tracer)
    with pytest.raises(ValueError, match=r"labels must be int\[3\], got float32\[3\]"):
        f(jnp.zeros(3))


def test_positive_int_accepts_numpy_integers():
    assert validation.positive_int(np.int64(7), "k") == 7


def test_keys_new_and_legacy():
    new = jax.random.key(0)
    assert validation.key(new) is new
    legacy = validation.key(jax.random.PRNGKey(0))
    assert legacy.shape == () and jnp.issubdtype(legacy.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(jax.random.key_data(legacy), jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="single random key"):
        validation.key(jax.random.split(new, 2))
    with pytest.raises(ValueError, match="JAX random key"):
        validation.key(0)


def test_choice_lists_the_options():
    assert validation.choice("max", "reduce", ("mean", "max")) == "max"
    with pytest.raises(ValueError, match=r"unknown reduce 'median'; choose one of \('mean', 'max'\)"):
        validation.choice("median", "reduce", ("mean", "max"))


def test_extremes_reduces_a_jax_array_once_and_never_answers_for_another():
    x = jnp.array([[0.5, -1.0], [2.0, 0.0]])
    assert validation.extremes(x) == (-1.0, 2.0)
    assert validation.extremes(x) == (-1.0, 2.0)  # remembered
    y = x.at[0, 0].set(jnp.nan)  # a new array: reduced again
    assert np.isnan(validation.extremes(y)).all()
    with pytest.raises(ValueError, match="NaN or infinity"):
        validation.images(y, "seeds")
    z = np.array([[3.0, 4.0]], np.float32)  # NumPy arrays are mutable: never remembered
    assert validation.extremes(z) == (3.0, 4.0)
    z[0, 0] = np.inf
    assert validation.extremes(z) == (4.0, np.inf)
