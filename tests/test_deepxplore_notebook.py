"""The DeepXplore notebook runs end to end under papermill at the CI profile's tiny values."""

import csv
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "deepxplore.ipynb"


def _ci_parameters(out_dir: Path) -> dict:
    profile = yaml.safe_load((REPO / "notebooks" / "profiles" / "ci.yml").read_text())
    parameters = {**profile.get("defaults", {}), **profile["deepxplore"]}
    parameters["out_dir"] = str(out_dir)
    return parameters


def test_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count")
               for c in nb.cells if c.cell_type == "code")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


@pytest.mark.real_data
@pytest.mark.slow
def test_notebook_runs(data_root, trained, model_cache, tmp_path, monkeypatch):
    import papermill

    parameters = _ci_parameters(tmp_path / "figures")
    for name in parameters["model_names"]:  # the fixtures' checkpoints, trained once a session
        trained(name, epochs=parameters["epochs"], limit=parameters["n_train"])
    monkeypatch.setenv("WORKBENCH_DATA", str(data_root))
    monkeypatch.setenv("WORKBENCH_CACHE", str(model_cache))
    out_dir = tmp_path / "figures"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "deepxplore.ipynb"),
                               parameters=parameters, cwd=str(REPO),
                               kernel_name="python3", progress_bar=False)
    for name in ("models", "found", "found_per_run", "coverage_vs_baselines", "hyperparameters",
                 "retraining", "retraining_per_run", "summary"):
        assert (out_dir / f"{name}.csv").is_file() and (out_dir / f"{name}.md").is_file()
    assert (out_dir / "gallery_light.png").stat().st_size > 1000
    assert (out_dir / "retraining.png").stat().st_size > 1000
    with open(out_dir / "found.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["clip"] for row in rows} == {"True", "False"}
    assert all(float(row["found"]) > 0 for row in rows)
    with open(out_dir / "retraining.csv") as f:
        rows = list(csv.DictReader(f))
    assert {"paper", "ours", "spread"} <= set(rows[0])
    assert {row["source"] for row in rows} == {"none", "deepxplore", "random", "adversarial"}
    assert "seconds per difference-inducing input" in (out_dir / "results.md").read_text()
