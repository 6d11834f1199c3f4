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
