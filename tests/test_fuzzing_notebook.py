"""The fuzzing notebook runs end to end under papermill at the CI profile's tiny values."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "fuzzing.ipynb"


@pytest.mark.real_data
@pytest.mark.slow
def test_notebook_runs(trained, ci_parameters, tmp_path, notebook_env):
    import papermill

    parameters = ci_parameters(NOTEBOOK)
    trained(parameters["model_name"], epochs=parameters["epochs"], limit=parameters["n_train"])
    out_dir = Path(parameters["out_dir"])
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "fuzzing.ipynb"),
                               parameters=parameters, cwd=str(REPO),
                               kernel_name="python3", progress_bar=False)
    for name in ("model", "runs", "summary", "guided_minus_random", "oracles", "results"):
        assert (out_dir / f"{name}.csv").is_file() and (out_dir / f"{name}.md").is_file()
    for figure in ("coverage_over_mutants", "failing_seeds"):
        assert (out_dir / f"{figure}.png").stat().st_size > 1000
    runs = (out_dir / "runs.csv").read_text().splitlines()
    assert len(runs) == 1 + 2 * 2 * 2  # header, then criteria x modes x runs
    header = (out_dir / "guided_minus_random.csv").read_text().splitlines()[0].split(",")
    assert {"difference", "difference ci95", "a12", "finding"} <= set(header)
    assert "guided - random" in (out_dir / "results.md").read_text()
