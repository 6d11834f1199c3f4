"""Shared test set-up: strict JAX numerics, the real data root, and small trained models."""

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = Path(__file__).resolve().parent.parent


def _real_root() -> Path | None:
    for candidate in (os.environ.get("WORKBENCH_DATA"), REPO.parent / "shared" / "data",
                      REPO / "data"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder holding the real MNIST / CIFAR-10 files; skips the test when there is none."""
    root = _real_root()
    if root is None:
        pytest.skip("real data not found: set WORKBENCH_DATA to a folder with mnist/ and cifar10/")
    return root


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One checkpoint folder for the whole session, so each small model is trained once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def trained(data_root, model_cache):
    """``trained(name)``: a zoo model trained for one epoch on the first 5,000 training images
    of its dataset (about 97% on MNIST for the LeNets), cached for the session."""
    from workbench import train

    def make(name: str, *, epochs: int = 1, limit: int = 5000, seed: int = 0):
        return train.load_or_train(name, epochs=epochs, limit=limit, seed=seed,
                                   cache=model_cache, root=data_root).model

    return make


@pytest.fixture()
def ci_parameters(tmp_path):
    """``ci_parameters(notebook)``: the CI profile's values for a notebook, resolved as the
    reproduction pipeline resolves them (``out_dir`` under ``tmp_path/figures``)."""
    from workbench import reproduce

    profile = reproduce.load_profile("ci", notebooks_dir=REPO / "notebooks")
    return lambda notebook: reproduce.notebook_parameters(notebook, profile,
                                                          figures_dir=tmp_path / "figures")
