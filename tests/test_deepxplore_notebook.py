"""The DeepXplore notebook runs end to end under papermill at the CI profile's tiny values."""

import csv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "deepxplore.ipynb"
TABLES = ("models", "table2", "table2_per_run", "figure9", "table6", "table7", "table5",
          "table8", "tables9_11", "table12", "pollution", "figure10", "figure10_starting_models",
          "environment", "results")


def run(parameters, tmp_path) -> Path:
    """Executes the notebook with ``parameters``; returns its figures folder."""
    import papermill

    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "deepxplore.ipynb"),
                               parameters=parameters, cwd=str(REPO),
                               kernel_name="python3", progress_bar=False)
    return Path(parameters["out_dir"])


def _rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.real_data
@pytest.mark.slow
def test_notebook_runs(trained, ci_parameters, tmp_path, notebook_env):
    parameters = ci_parameters(NOTEBOOK)
    for name in parameters["model_names"]:  # the fixtures' checkpoints, trained once a session
        trained(name, epochs=parameters["epochs"], limit=parameters["n_train"])
    out_dir = run(parameters, tmp_path)
    for name in TABLES:
        assert (out_dir / f"{name}.csv").is_file() and (out_dir / f"{name}.md").is_file(), name
    assert (out_dir / "gallery_trained_light.png").stat().st_size > 1000
    for figure in ("figure9_trained", "figure10_trained_weights",
                   "figure10_stopped_at_the_paper_s_start"):
        assert (out_dir / f"{figure}.png").stat().st_size > 1000, figure
    table2 = _rows(out_dir / "table2.csv")
    assert {row["clip"] for row in table2} == {"True", "False"}
    assert {row["target"] for row in table2} == {"lenet1", "lenet4", "lenet5", "all"}
    # The CI profile is toy-sized: no paper column anywhere, so no "ours - paper" either.
    for name in TABLES:
        with open(out_dir / f"{name}.csv") as f:
            header = next(csv.reader(f))
        assert "paper" not in header and "verdict" not in header, name
    results = _rows(out_dir / "results.csv")
    assert {"weights", "claim", "ours", "ci95", "runs"} <= set(results[0])
    assert any(row["claim"].startswith("Figure 10") for row in results)
    assert {row["source"] for row in _rows(out_dir / "figure10.csv")} == {
        "deepxplore", "adversarial", "random"}
