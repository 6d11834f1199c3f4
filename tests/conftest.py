"""Shared test set-up: strict JAX numerics, the real data root (fetched first when missing),
and small trained models."""

import os
from pathlib import Path

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = ("mnist", "cifar10", "released")  # what the tests on real data read
_not_ready: list[str] = []  # why the real data could not be made ready, when it could not


def _real_root() -> Path | None:
    for candidate in (os.environ.get("WORKBENCH_DATA"), REPO.parent / "shared" / "data",
                      REPO / "data"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


def pytest_collection_finish(session):
    """Before the first test, when any test reads the real data: verify it and download what
    is missing (``data.ensure``, with its progress bars), into ``$WORKBENCH_DATA`` (else the
    project's ``data/``). Offline, its one message is printed here and again at the end, and
    the real-data tests skip if no data is there at all (they run on what there is otherwise)."""
    if session.config.option.collectonly or not any(
            "data_root" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from workbench import data

    root = _real_root() or Path(os.environ.get("WORKBENCH_DATA") or REPO / "data")
    plugins = session.config.pluginmanager
    with plugins.getplugin("capturemanager").global_and_fixture_disabled():
        try:
            data.ensure(REAL_DATA, root=root)
        except (data.DataError, OSError) as error:
            _not_ready.append(f"the real data is not ready: {error}")
            plugins.getplugin("terminalreporter").write_line(_not_ready[0], yellow=True)


def pytest_terminal_summary(terminalreporter):
    if _not_ready:
        terminalreporter.write_sep("-", "real data")
        terminalreporter.write_line(_not_ready[0], yellow=True)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The folder holding the real MNIST / CIFAR-10 files; skips the test when there is none."""
    root = _real_root()
    if root is None:
        pytest.skip("the real data could not be downloaded: the message above the summary names "
                    "every file and where to put it" if _not_ready else
                    "real data not found: set WORKBENCH_DATA to a folder with mnist/ and cifar10/")
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
