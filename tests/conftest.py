"""Shared test set-up: strict JAX numerics, the real data root (fetched first when missing),
and small trained models."""

import os
from pathlib import Path

# Several xdist workers (and their notebooks' kernels) may share one GPU: none takes most of its
# memory up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite compiles far more than it computes (tiny inputs, many shapes and options): XLA's
# backend optimisation level 0 compiles 15-30% faster here, with the same semantics (float
# results may differ in the last bits; the tests' tolerances allow that). The kernels of the
# notebooks under test inherit it. WORKBENCH_TEST_XLA_OPT=default tests at XLA's default level.
if (os.environ.get("WORKBENCH_TEST_XLA_OPT") != "default"
        and "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", "")):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_backend_optimization_level=0").strip()

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


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: harmless without it
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: a worker per core, at most four (each holds JAX and its compiled programs)."""
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1, 4))


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


def _shared(tmp_path_factory, name: str) -> Path:
    """A folder of the whole run: one for all of pytest-xdist's workers (``-n``), which each
    have their own base temporary folder under a common one."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One checkpoint folder for the whole run, so each small model is trained once."""
    return _shared(tmp_path_factory, "models")


@pytest.fixture(scope="session")
def jax_cache(tmp_path_factory) -> Path:
    """One JAX persistent compilation cache for the notebooks' kernels, as `workbench reproduce`
    gives them: a kernel compiles little of what an earlier one compiled."""
    return _shared(tmp_path_factory, "jax_cache")


_MIN_COMPILE_SECONDS = 0.1  # what the persistent cache keeps: programs slower than this to compile


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(jax_cache):
    """The tests' own programs go to the same persistent cache as the kernels', so a notebook
    loads what a test (or another xdist worker) already compiled instead of compiling it."""
    jax.config.update("jax_compilation_cache_dir", str(jax_cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", _MIN_COMPILE_SECONDS)


@pytest.fixture(scope="session")
def trained(data_root, model_cache):
    """``trained(name)``: a zoo model trained for one epoch on the first 5,000 training images
    of its dataset (about 97% on MNIST for the LeNets), cached for the run (a worker waits for
    another that is training the same model)."""
    from filelock import FileLock

    from workbench import train

    def make(name: str, *, epochs: int = 1, limit: int = 5000, seed: int = 0):
        with FileLock(model_cache / f"{name}-e{epochs}-n{limit}-s{seed}.lock"):
            return train.load_or_train(name, epochs=epochs, limit=limit, seed=seed,
                                       cache=model_cache, root=data_root).model

    return make


@pytest.fixture()
def notebook_env(data_root, model_cache, jax_cache, monkeypatch):
    """What a notebook's kernel inherits: the real data root, the run's checkpoint folder (the
    ``trained`` fixture's models) and the shared compilation cache."""
    monkeypatch.setenv("WORKBENCH_DATA", str(data_root))
    monkeypatch.setenv("WORKBENCH_CACHE", str(model_cache))
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(jax_cache))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(_MIN_COMPILE_SECONDS))


@pytest.fixture()
def ci_parameters(tmp_path):
    """``ci_parameters(notebook)``: the CI profile's values for a notebook, resolved as the
    reproduction pipeline resolves them (``out_dir`` under ``tmp_path/figures``)."""
    from workbench import reproduce

    profile = reproduce.load_profile("ci", notebooks_dir=REPO / "notebooks")
    return lambda notebook: reproduce.notebook_parameters(notebook, profile,
                                                          figures_dir=tmp_path / "figures")
