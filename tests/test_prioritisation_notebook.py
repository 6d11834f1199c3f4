"""The prioritisation notebook runs end to end under papermill at tiny sizes (MNIST and
CIFAR-10, two seeds)."""

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "prioritisation.ipynb"
TINY = {"datasets": ["mnist", "cifar10"], "model_names": ["lenet1", "cifar_lenet"],
        "epochs": 1, "n_train": 1000, "n_test": 80, "n_replicates": 2}


@pytest.mark.real_data
@pytest.mark.slow
def test_notebook_runs(tmp_path, notebook_env):
    import papermill

    from workbench.experiments import prioritisation as experiment

    out_dir = tmp_path / "figures" / "prioritisation"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "prioritisation.ipynb"),
                               parameters={**TINY, "out_dir": str(out_dir)}, cwd=str(REPO),
                               kernel_name="python3", progress_bar=False)
    for name in ("apfd_per_seed", "apfd", "results"):
        assert (out_dir / f"{name}.csv").is_file() and (out_dir / f"{name}.md").is_file()
    assert (out_dir / "faults_found.png").stat().st_size > 1000
    with (out_dir / "apfd.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert {r["dataset"] for r in table} == {"mnist", "cifar10"}
    assert {r["prioritiser"] for r in table} == set(experiment.PRIORITISERS)
    assert all(0 <= float(r["apfd"]) <= 1 for r in table)
