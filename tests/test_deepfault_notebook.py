"""The DeepFault notebook runs end to end under papermill at the CI profile's tiny values."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "deepfault.ipynb"


def _ci_parameters(out_dir: Path) -> dict:
    profile = yaml.safe_load((REPO / "notebooks" / "profiles" / "ci.yml").read_text())
    parameters = {**profile.get("defaults", {}), **profile["deepfault"]}
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
def test_notebook_runs(data_root, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("WORKBENCH_DATA", str(data_root))
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "models"))
    out_dir = tmp_path / "figures"
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "deepfault.ipynb"),
                               parameters=_ci_parameters(out_dir), cwd=str(REPO),
                               kernel_name="python3", progress_bar=False)
    for name in ("model_accuracy", "suspicious_vs_random", "significance", "matched_budget",
                 "gap_by_budget", "variants", "timing"):
        assert (out_dir / f"{name}.csv").is_file() and (out_dir / f"{name}.md").is_file()
    assert (out_dir / "synthesised_mnist.png").stat().st_size > 1000
    assert (out_dir / "suspiciousness_heatmap.png").stat().st_size > 1000
    header = (out_dir / "suspicious_vs_random.csv").read_text().splitlines()[0].split(",")
    assert {"paper", "ours", "spread"} <= set(header)
    assert "suspicious vs random" in (out_dir / "results.md").read_text()
