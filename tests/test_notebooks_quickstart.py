"""The quickstart and explorer notebooks run end to end under papermill at the CI profile's tiny
values (through the reproduction pipeline's own functions); tests/test_notebooks.py checks their
outline."""

import csv
from pathlib import Path

import pytest

from workbench import reproduce

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = {name: REPO / "notebooks" / f"{name}.ipynb" for name in ("quickstart", "explorer")}


def _run(name: str, tmp_path: Path, **extra) -> Path:
    profile = reproduce.load_profile("ci", notebooks_dir=REPO / "notebooks")
    parameters = reproduce.notebook_parameters(NOTEBOOKS[name], profile,
                                               figures_dir=tmp_path / "figures") | extra
    outcome = reproduce.execute(NOTEBOOKS[name], tmp_path / f"{name}.ipynb", parameters,
                                progress=False)
    assert outcome.ok, f"cell {outcome.cell}: {outcome.error}\n{outcome.source}"
    return tmp_path / "figures" / name


def _results(folder: Path) -> dict[str, float]:
    with (folder / "results.csv").open() as handle:
        return {row["quantity"]: float(row["value"]) for row in csv.DictReader(handle)}


@pytest.mark.real_data
@pytest.mark.slow
def test_quickstart_runs(tmp_path, notebook_env, trained):
    for model in ("lenet1", "lenet4", "lenet5"):
        trained(model)  # the notebook loads the session's checkpoints
    out = _run("quickstart", tmp_path)
    for figure in ("kmnc_heatmap", "suspiciousness_heatmap", "synthesised"):
        assert (out / f"{figure}.png").stat().st_size > 1000
    results = _results(out)
    assert results["test accuracy"] > 0.8
    for criterion in ("nc", "kmnc", "nbc", "snac", "tknc"):
        assert 0.0 <= results[f"coverage: {criterion}"] <= 1.0
    assert results["coverage: nc (live neurons)"] >= results["coverage: nc"]
    assert results["difference-inducing inputs per seed"] >= 0
    assert "| test accuracy |" in (out / "results.md").read_text()


@pytest.mark.real_data
@pytest.mark.slow
def test_quickstart_runs_on_the_released_weights(tmp_path, notebook_env, data_root):
    if not (data_root / "released" / "deepxplore" / "Model3.h5").is_file():
        pytest.skip("the released models are not in the data root")
    out = _run("quickstart", tmp_path, weights="released")
    results = _results(out)
    assert results["test accuracy"] > 0.98  # DeepXplore's LeNet-5 (Table 1: 98.63%)
    assert 0.0 <= results["NC of lenet1 after DeepXplore"] <= 1.0


@pytest.mark.real_data
@pytest.mark.slow
def test_explorer_runs(tmp_path, notebook_env, trained):
    trained("lenet5")
    out = _run("explorer", tmp_path)
    assert (out / "heatmap.png").stat().st_size > 1000
    assert (out / "neuron.png").stat().st_size > 1000
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["site"] for r in rows] == ["conv1", "conv2", "fc1", "fc2"]
    assert [int(r["neurons"]) for r in rows] == [6, 16, 120, 84]
    assert all(r["measure"] == "ochiai" for r in rows)
