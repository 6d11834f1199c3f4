"""The DeepXplore notebook runs end to end under papermill at the CI profile's tiny values."""

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "deepxplore.ipynb"


@pytest.mark.real_data
@pytest.mark.slow
def test_notebook_runs(data_root, trained, model_cache, ci_parameters, tmp_path, monkeypatch):
    import papermill

    parameters = ci_parameters(NOTEBOOK)
    for name in parameters["model_names"]:  # the fixtures' checkpoints, trained once a session
        trained(name, epochs=parameters["epochs"], limit=parameters["n_train"])
    monkeypatch.setenv("WORKBENCH_DATA", str(data_root))
    monkeypatch.setenv("WORKBENCH_CACHE", str(model_cache))
    out_dir = Path(parameters["out_dir"])
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
