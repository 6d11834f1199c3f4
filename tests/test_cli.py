"""The ``workbench`` command, run as a user runs it: a subprocess of the installed script."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def workbench(*args, data_root, cache, timeout=120, cwd=None, **env):
    """Runs ``workbench ARGS`` (the venv's script, else ``python -m workbench.cli``)."""
    script = Path(sys.executable).with_name("workbench")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "workbench.cli"]
    env = dict(os.environ, WORKBENCH_DATA=str(data_root), WORKBENCH_CACHE=str(cache),
               JAX_PLATFORMS="cpu", **env)
    return subprocess.run([*command, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False, cwd=cwd)


def _tiny_notebooks(folder: Path) -> Path:
    """A notebooks folder with one notebook that writes a results table, and a quick profile."""
    import nbformat

    (folder / "profiles").mkdir(parents=True)
    (folder / "profiles" / "quick.yml").write_text("tiny:\n  n: 4\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    parameters = nbformat.v4.new_code_cell('n = 1\nout_dir = "unused"')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell(
        "from pathlib import Path\nout = Path(out_dir); out.mkdir(parents=True)\n"
        "(out / 'results.md').write_text(f'| quantity | value |\\n|---|---|\\n| n | {n} |\\n')")]
    nbformat.write(nb, folder / "tiny.ipynb")
    return folder


@pytest.mark.real_data
def test_demo_checks_the_data_runs_the_quick_profile_and_prints_the_results(data_root,
                                                                            tmp_path):
    notebooks = _tiny_notebooks(tmp_path / "notebooks")
    result = workbench("demo", "--notebooks", str(notebooks), "--no-progress",
                       data_root=data_root, cache=tmp_path / "models", cwd=tmp_path,
                       timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Data: mnist, released verified in" in result.stderr
    assert "Headline numbers (Quick profile; reduced sizes" in result.stdout
    assert "  tiny (" in result.stdout and "    n: 4" in result.stdout
    [run] = (tmp_path / "runs").iterdir()  # the project root here is tmp_path
    assert f"Report: runs/{run.name}/REPRODUCTION.md" in result.stdout
    assert f"Figures and tables: runs/{run.name}/figures/" in result.stdout
    assert "jupyter lab notebooks/explorer.ipynb (run all cells" in result.stdout
    assert not (tmp_path / "figures").exists()  # the committed figures: only on purpose
    for noise in ("without encryption", "KeyboardInterrupt", "Traceback"):
        assert noise not in result.stderr + result.stdout


def test_demo_offline_says_so_before_any_notebook_runs(tmp_path):
    notebooks = _tiny_notebooks(tmp_path / "notebooks")
    (tmp_path / "data").mkdir()
    result = workbench("demo", "--notebooks", str(notebooks), "--out", str(tmp_path / "run"),
                       data_root=tmp_path / "data", cache=tmp_path / "models",
                       WORKBENCH_MIRROR="http://127.0.0.1:9")  # closed: connection refused
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "train-images-idx3-ubyte" in result.stderr and "t10k-labels-idx1-ubyte" in \
        result.stderr  # every missing file named
    assert not (tmp_path / "run").exists()


@pytest.fixture()
def empty(tmp_path):
    """``run(*args)`` with an empty data folder and an empty model cache."""
    (tmp_path / "data").mkdir()
    return lambda *args: workbench(*args, data_root=tmp_path / "data",
                                   cache=tmp_path / "models")


def test_help_lists_the_commands(empty):
    result = empty("--help")
    assert result.returncode == 0
    for command in ("data", "train", "demo", "reproduce", "course"):
        assert command in result.stdout


def test_help_imports_no_jax_and_shows_no_markup():
    # Every help text, in one process: none may import JAX (3-4 s) before its command runs.
    code = """
import sys
from workbench import cli
for args in ([], ["data"], ["train"], ["demo"], ["reproduce"], ["course"]):
    try:
        cli.main([*args, "--help"])
    except SystemExit:
        pass
for args in (["reproduce", "--bogus"], ["demo", "--profile", "paper"]):
    try:
        cli.main(args)
    except SystemExit as exit:
        assert exit.code == 2
print("jax" in sys.modules, "flax" in sys.modules, "nbformat" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False, env=dict(os.environ, COLUMNS="300"))  # no wrapping
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False False False"  # nbformat alone took 1.2 s
    assert "`" not in result.stdout
    assert "usage: workbench reproduce" in result.stderr and "usage: workbench demo" in \
        result.stderr and "unrecognized arguments: --profile paper" in result.stderr
    for text in ("lenet5", "cifar_gap", "10 on mnist, 40 on cifar10", "(default: 0)",
                 "(default: quick)", "--update-figures", "passes over the training images",
                 "{student,html}"):
        assert text in result.stdout, text


def test_the_help_lists_match_the_zoo_the_recipes_the_data_and_the_notebooks():
    from workbench import cli, data, models, reproduce, train

    assert {d: set(names) for d, names in cli.ZOO.items()} == {
        d: {n for n in models.names() if models.dataset_of(n) == d} for d in cli.ZOO}
    assert sum(map(len, cli.ZOO.values())) == len(models.names())
    for dataset, names in cli.ZOO.items():
        assert {train.recipe(n).epochs for n in names if n not in cli.MODEL_EPOCHS} == {
            cli.RECIPE_EPOCHS[dataset]}
    assert {m: train.recipe(m).epochs for m in cli.MODEL_EPOCHS} == cli.MODEL_EPOCHS
    assert cli.DOWNLOADS == data.DOWNLOADS
    text = reproduce.add_arguments(argparse.ArgumentParser()).format_help()
    for notebook in reproduce.find_notebooks(REPO / "notebooks"):
        assert notebook.stem in text  # --only's list


def test_no_command_is_a_usage_error(empty):
    result = empty()
    assert result.returncode == 2 and "usage: workbench" in result.stderr


def test_data_check_on_an_empty_folder_says_what_is_missing_and_how_to_get_it(empty, tmp_path):
    result = empty("data", "check", "mnist")
    assert result.returncode == 1
    assert str(tmp_path / "data" / "mnist" / "train-images-idx3-ubyte") in result.stderr
    assert "workbench data download mnist" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == []  # nothing was created


def test_data_rejects_unknown_actions_and_datasets(empty):
    for args, wrong in ((("data", "fetch"), "fetch"), (("data", "check", "imagenet"),
                                                       "imagenet")):
        result = empty(*args)
        assert result.returncode == 2 and "invalid choice" in result.stderr
        assert repr(wrong) in result.stderr


@pytest.mark.parametrize("args, message", [
    ((), "the following arguments are required: MODEL"),
    (("lenet1", "--epochs", "two"), "argument --epochs: invalid int value: 'two'"),
    (("lenet1", "--seed", "0.5"), "argument --seed: invalid int value: '0.5'"),
    (("lenet1", "--batch", "3"), "unrecognized arguments: --batch 3"),
])
def test_train_argument_errors_are_usage_errors(empty, args, message):
    result = empty("train", *args)
    assert result.returncode == 2
    # the command's own usage, also for a flag it does not know
    assert "usage: workbench train" in result.stderr and message in result.stderr


@pytest.mark.parametrize("args, message", [
    (("nosuch",), "workbench: unknown model 'nosuch'; choose one of lenet1"),
    (("lenet1", "--dataset", "cifar10"), "model 'lenet1' is built for mnist, not cifar10"),
])
def test_train_rejects_unknown_models_and_datasets_before_any_work(empty, tmp_path, args,
                                                                   message):
    result = empty("train", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("below", [False, True])
def test_train_refuses_a_model_cache_that_is_a_file_before_training(tmp_path, below):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    cache = taken / "models" if below else taken
    # An empty data folder: had it started training, it would fail on the missing MNIST.
    (tmp_path / "data").mkdir()
    result = workbench("train", "deepfault_3x50_relu", "--epochs", "1",
                       data_root=tmp_path / "data", cache=cache)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    expected = (f"workbench: the model cache (WORKBENCH_CACHE) {cache} cannot be created: "
                f"{taken} is a file, not a folder" if below else
                f"workbench: the model cache (WORKBENCH_CACHE) {taken} is a file, not a folder")
    assert expected in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "taken"]


def test_data_download_refuses_a_data_folder_that_is_a_file_before_downloading(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    result = workbench("data", "download", "mnist", data_root=taken, cache=tmp_path / "models")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"workbench: the mnist folder (WORKBENCH_DATA) {taken / 'mnist'} cannot be created: "
            f"{taken} is a file, not a folder") in result.stderr
    assert "offline" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.real_data
def test_data_check_counts_the_real_mnist(data_root, tmp_path):
    result = workbench("data", "check", "mnist", data_root=data_root, cache=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "mnist train: 60000 examples" in result.stdout
    assert "mnist test: 10000 examples" in result.stdout


@pytest.mark.real_data
@pytest.mark.slow
def test_train_trains_caches_and_reports(data_root, tmp_path):
    # The smallest zoo model on 256 images for one epoch: a few seconds.
    args = ("train", "deepfault_3x50_relu", "--epochs", "1", "--limit", "256")
    first = workbench(*args, data_root=data_root, cache=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "deepfault_3x50_relu: test accuracy 0." in first.stdout and "(trained;" in first.stdout
    from workbench import train

    digest = train.training_digest("deepfault_3x50_relu")
    assert [p.name for p in tmp_path.iterdir()] == [
        f"deepfault_3x50_relu-mnist-e1-s0-n256-{digest}.msgpack"]
    again = workbench(*args, data_root=data_root, cache=tmp_path, timeout=300)
    assert again.returncode == 0 and "(cached;" in again.stdout


def test_module_entry_point_runs_without_the_script():
    result = subprocess.run([sys.executable, "-m", "workbench.cli", "--help"],
                            capture_output=True, text=True, timeout=120, check=False,
                            env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert result.returncode == 0 and "usage: workbench" in result.stdout
