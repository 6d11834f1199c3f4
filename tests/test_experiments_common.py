"""The experiments' shared layer: one path convention, the papers' models, result tables."""

import csv

import numpy as np
import pytest

from workbench import models, train
from workbench.experiments import common


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A project folder (``pyproject.toml``) with ``notebooks/``; no data or cache variables."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    monkeypatch.delenv("WORKBENCH_CACHE", raising=False)
    return tmp_path.resolve()


def test_project_root_walks_up_to_the_marker(project, monkeypatch):
    assert common.project_root(project / "notebooks") == project
    assert common.project_root(project) == project
    monkeypatch.chdir(project / "notebooks")
    assert common.project_root() == project


def test_project_root_is_the_start_without_a_marker(tmp_path):
    bare = tmp_path / "somewhere" / "deep"
    bare.mkdir(parents=True)
    if any((p / m).exists() for p in (bare, *bare.parents) for m in ("pyproject.toml", ".git")):
        pytest.skip("the temporary folder lies inside a project")
    assert common.project_root(bare) == bare.resolve()


@pytest.mark.parametrize("cwd", ["", "notebooks"])
def test_one_out_dir_from_the_root_and_from_notebooks(project, monkeypatch, cwd):
    # papermill from the repository root, JupyterLab in notebooks/: the same folder
    monkeypatch.chdir(project / cwd)
    out = common.output_dir("figures/quickstart")
    assert out == project / "figures" / "quickstart" and out.is_dir()
    assert common.data_root() == project / "data"
    assert common.model_cache() == train.default_cache()  # one per user, not per folder


def test_absolute_paths_and_variables_win(project, tmp_path, monkeypatch):
    monkeypatch.chdir(project / "notebooks")
    elsewhere = tmp_path / "elsewhere" / "figs"
    assert common.output_dir(str(elsewhere)) == elsewhere and elsewhere.is_dir()
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("WORKBENCH_CACHE", "cache")  # relative: under the project root
    assert common.data_root() == tmp_path / "d"
    assert common.model_cache() == project / "cache"
    assert common.data_root(tmp_path / "given") == tmp_path / "given"


def test_save_table_writes_csv_and_markdown(tmp_path):
    rows = [{"model": "a", "ours": 0.5}, {"model": "b", "ours": None}]
    text = common.save_table(rows, tmp_path / "t")
    assert text.splitlines()[2:] == ["| a | 0.5 |", "| b |  |"]
    assert (tmp_path / "t.md").read_text() == text + "\n"
    with (tmp_path / "t.csv").open() as handle:
        assert list(csv.reader(handle)) == [["model", "ours"], ["a", "0.5"], ["b", ""]]


def test_bad_names_raise():
    with pytest.raises(ValueError, match="weights"):
        common.load_model("lenet5", weights="pretrained")
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        common.load_model("nope")
    with pytest.raises(ValueError, match="n_train"):
        common.load_model("lenet5", n_train=0)


@pytest.mark.real_data
def test_load_data_takes_the_first_n(data_root):
    test = common.load_data("mnist", "test", n=7, root=data_root)
    assert test.images.shape == (7, 28, 28, 1)
    assert test.labels.tolist() == [7, 2, 1, 0, 4, 1, 4]  # data/README.md


@pytest.mark.real_data
@pytest.mark.slow
def test_load_model_shares_the_fixtures_checkpoint(data_root, model_cache, trained):
    net = trained("lenet1")
    result = common.load_model("lenet1", epochs=1, n_train=5000, cache=model_cache,
                               root=data_root)
    assert result.cached
    x = common.load_data("mnist", "test", n=50, root=data_root).images
    np.testing.assert_array_equal(train.predict(result.model, x), train.predict(net, x))
    assert common.load_models(["lenet1"], epochs=1, n_train=5000, cache=model_cache,
                              root=data_root).keys() == {"lenet1"}


@pytest.mark.real_data
@pytest.mark.slow
def test_the_whole_training_set_is_one_checkpoint(data_root, trained, tmp_path):
    # n_train=None and n_train >= 60,000 both mean "all of it": the checkpoint without a limit
    net = trained("lenet1")
    train.save(net, train.cache_path("lenet1", "mnist", epochs=1, seed=0, cache=tmp_path),
               metadata={"test_accuracy": 0.5, "train_seconds": 1.0})
    x = common.load_data("mnist", "test", n=50, root=data_root).images
    for n_train in (None, 60_000, 70_000):
        result = common.load_model("lenet1", epochs=1, n_train=n_train, cache=tmp_path,
                                   root=data_root)
        assert result.cached and result.test_accuracy == 0.5
        np.testing.assert_array_equal(train.predict(result.model, x), train.predict(net, x))


@pytest.mark.real_data
@pytest.mark.slow
def test_released_weights(data_root):
    if not (data_root / "released" / "deepxplore" / "Model1.h5").is_file():
        pytest.skip("the released models are not in the data root")
    result = common.load_model("lenet1", weights="released", root=data_root)
    assert result.cached and result.train_seconds is None
    assert 0.97 < result.test_accuracy < 1.0  # DeepXplore Table 1: LeNet-1, 98.33%
    assert "lenet1" in models.released_names()


def test_save_table_writes_csv_and_markdown_only(tmp_path):
    rows = [{"model": "lenet1", "ours": 0.123456789, "paper": None}]
    text = common.save_table(rows, tmp_path / "sub" / "results")
    folder = tmp_path / "sub"
    assert sorted(p.name for p in folder.iterdir()) == ["results.csv", "results.md"]
    with open(folder / "results.csv", newline="") as f:
        assert list(csv.reader(f)) == [["model", "ours", "paper"], ["lenet1", "0.123456789", ""]]
    assert (folder / "results.md").read_text() == text + "\n"
    assert text == "| model | ours | paper |\n| --- | --- | --- |\n| lenet1 | 0.1235 |  |"
