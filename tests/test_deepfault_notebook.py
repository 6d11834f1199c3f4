"""The DeepFault notebook runs end to end under papermill at the CI profile's tiny values."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "deepfault.ipynb"


@pytest.mark.real_data
@pytest.mark.slow
def test_notebook_runs(data_root, ci_parameters, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("WORKBENCH_DATA", str(data_root))
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "models"))
    parameters = ci_parameters(NOTEBOOK)
    out_dir = Path(parameters["out_dir"])
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "deepfault.ipynb"),
                               parameters=parameters, cwd=str(REPO),
                               kernel_name="python3", progress_bar=False)
    for name in ("model_accuracy", "suspicious_vs_random", "significance", "matched_budget",
                 "gap_by_budget", "variants", "timing", "results", "by_k", "by_step",
                 "distances"):
        assert (out_dir / f"{name}.csv").is_file() and (out_dir / f"{name}.md").is_file()
    assert (out_dir / "synthesised_mnist.png").stat().st_size > 1000
    assert (out_dir / "suspiciousness_heatmap.png").stat().st_size > 1000
    header = (out_dir / "suspicious_vs_random.csv").read_text().splitlines()[0].split(",")
    assert {"paper", "ours", "spread"} <= set(header)
    assert "suspicious vs random" in (out_dir / "results.md").read_text()
