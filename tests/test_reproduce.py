"""The reproduction pipeline on throw-away notebooks: profiles, failures, the report, where it
goes (the run folder always; figures/ only on purpose, and its report only after a whole run that
succeeded), headline numbers, the kernels' noise, bad profiles and output folders."""

import os
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from workbench import reproduce

REPO = Path(__file__).resolve().parent.parent


def _notebook(path: Path, parameters: str, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    tagged = nbformat.v4.new_code_cell(parameters)
    tagged.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A test notebook"), tagged]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)


WRITE_RESULTS = """
from pathlib import Path
out = Path(out_dir); out.mkdir(parents=True, exist_ok=True)
(out / "results.md").write_text(f"| quantity | value |\\n|---|---|\\n| n | {n} |\\n")
(out / "table.csv").write_text(f"quantity,paper,ours,spread\\naccuracy,0.5,{n / 10},0.01\\n")
(out / "other.csv").write_text("a,b,c\\n1,2,3\\n")
"""


@pytest.fixture()
def folder(tmp_path):
    notebooks = tmp_path / "notebooks"
    (notebooks / "profiles").mkdir(parents=True)
    params = 'n: int = 1  # a size\nout_dir: str = "unused"  # where results go\n'
    _notebook(notebooks / "alpha.ipynb", params, WRITE_RESULTS)
    _notebook(notebooks / "broken.ipynb", params, "x = 1",
              "raise RuntimeError('deliberate failure ' + str(n))", "y = 2")
    _notebook(notebooks / "omega.ipynb", params, WRITE_RESULTS)
    profile = {"defaults": {"n": 3, "not_declared_anywhere": 1}, "omega": {"n": 7},
               "missing": {"n": 1}}
    (notebooks / "profiles" / "tiny.yml").write_text(yaml.safe_dump(profile))
    return tmp_path


def _run(folder: Path, *extra: str) -> int:
    return reproduce.main(["--profile", "tiny", "--notebooks", str(folder / "notebooks"),
                           "--figures", str(folder / "figures"), "--out", str(folder / "run"),
                           "--no-progress", *extra])


def test_failing_notebook_is_reported_and_the_others_still_run(folder, capsys):
    assert _run(folder) == 1
    run = folder / "run"
    assert sorted(p.name for p in run.glob("*.ipynb")) == [
        "alpha.ipynb", "broken.ipynb", "omega.ipynb"]
    # defaults apply where declared; a notebook's own section overrides them
    assert "| n | 3 |" in (folder / "figures" / "alpha" / "results.md").read_text()
    assert "| n | 7 |" in (folder / "figures" / "omega" / "results.md").read_text()
    # the failure report goes to the run folder, never over the committed report
    assert not (folder / "figures" / "REPRODUCTION.md").exists()
    report = (run / "REPRODUCTION.md").read_text()
    out = capsys.readouterr().out
    assert f"{folder / 'figures' / 'REPRODUCTION.md'} kept as it was: a failed run" in out
    assert f"Report: {run / 'REPRODUCTION.md'}" in out
    assert "**2 of 3 notebooks ran**; failed: broken." in report
    # the failing cell: 0 markdown, 1 parameters, 2 injected parameters, 3 "x = 1", 4 raise
    assert "**Failed** in cell 4 (`In [4]`: `raise RuntimeError('deliberate failure ' + str(n))`)" \
        in report
    assert "RuntimeError: deliberate failure 3" in report
    assert "_No tables: this notebook did not finish in this run._" in report
    # the reproduced table, with ours - paper; a CSV without a paper column is left out
    assert "| accuracy | 0.5 | 0.7 | 0.01 | +0.2 |" in report
    assert "| accuracy | 0.5 | 0.3 | 0.01 | -0.2 |" in report
    assert "other.csv" not in report
    assert "Parameters: `n=7`." in report
    assert "which is not a notebook here" in report and "`missing`" in report
    for package in ("python", "jax", "flax"):
        assert f"{package} " in report.split("Versions: ")[1]
    executed = nbformat.read(run / "broken.ipynb", as_version=4)
    assert executed.cells[-1].get("outputs", []) == []  # the cell after the failure never ran


def _good_report(folder: Path) -> str:
    """A committed report from an earlier whole run."""
    figures = folder / "figures"
    figures.mkdir(exist_ok=True)
    (figures / "REPRODUCTION.md").write_text("# Reproduction report\n\nthe last good one\n")
    return "# Reproduction report\n\nthe last good one\n"


def test_only_runs_the_named_notebook_and_keeps_the_committed_report(folder, capsys):
    good = _good_report(folder)
    assert _run(folder, "--only", "omega") == 0
    assert [p.name for p in (folder / "run").glob("*.ipynb")] == ["omega.ipynb"]
    assert (folder / "figures" / "REPRODUCTION.md").read_text() == good
    report = (folder / "run" / "REPRODUCTION.md").read_text()
    assert "**1 of 1 notebooks ran**." in report
    assert "`workbench reproduce --profile tiny --only omega`" in report
    assert "## omega" in report and "## alpha" not in report
    assert "kept as it was: a partial run (--only)" in capsys.readouterr().out


def test_a_failed_run_keeps_the_last_good_report(folder):
    good = _good_report(folder)
    assert _run(folder) == 1
    assert (folder / "figures" / "REPRODUCTION.md").read_text() == good
    assert "failed: broken." in (folder / "run" / "REPRODUCTION.md").read_text()


def test_a_whole_run_that_succeeds_replaces_the_committed_report(folder, capsys):
    _good_report(folder)
    (folder / "notebooks" / "broken.ipynb").unlink()
    assert _run(folder) == 0
    report = (folder / "figures" / "REPRODUCTION.md").read_text()
    assert "**2 of 2 notebooks ran**." in report and "--only" not in report
    assert report == (folder / "run" / "REPRODUCTION.md").read_text()
    assert "kept as it was" not in capsys.readouterr().out
    # naming every notebook with --only is a whole run too
    assert _run(folder, "--only", "alpha", "--only", "omega") == 0
    assert "**2 of 2 notebooks ran**." in (folder / "figures" / "REPRODUCTION.md").read_text()


MALFORMED = {
    "unclosed list": ("omega:\n  n: [1, 2\n",
                      (r"tiny.yml, line 3, column 1: not valid YAML \(expected ',' or '\]', but "
                       r"got '<stream end>', while parsing a flow sequence\)")),
    "tab indent": ("omega:\n\tn: 1\n",
                   (r"tiny.yml, line 2, column 1: not valid YAML \(found character '\\t' that "
                    r"cannot start any token")),
    "two colons": ("omega: {n: 1}\nomega: : 2\n", r"tiny.yml, line 2, column 8: not valid YAML"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_profile_names_the_file_and_the_line(folder, capsys, case):
    text, message = MALFORMED[case]
    (folder / "notebooks" / "profiles" / "tiny.yml").write_text(text)
    with pytest.raises(ValueError, match=message):
        reproduce.load_profile("tiny", notebooks_dir=folder / "notebooks")
    assert _run(folder) == 2
    err = capsys.readouterr().err
    assert re.search("workbench reproduce: .*" + message, err) and "Traceback" not in err
    assert not (folder / "run").exists() and not (folder / "figures").exists()


def test_a_profile_that_is_not_utf8_is_named(folder):
    (folder / "notebooks" / "profiles" / "tiny.yml").write_bytes("n: 1\n".encode("utf-16"))
    with pytest.raises(ValueError, match=r"tiny.yml: not UTF-8 text \(byte 0: invalid start "
                                         r"byte\)"):
        reproduce.load_profile("tiny", notebooks_dir=folder / "notebooks")


@pytest.mark.parametrize("option, what", [("--out", "the run folder"),
                                          ("--figures", "the figures folder")])
@pytest.mark.parametrize("below", [False, True])
def test_an_output_folder_that_is_a_file_is_refused_before_anything_is_created(
        folder, capsys, option, what, below):
    taken = folder / "taken"
    taken.write_text("a file")
    target = taken / "sub" if below else taken
    message = (f"{what} \\(.*\\) {target} cannot be created: {taken} is a file, not a folder"
               if below else f"{what} \\(.*\\) {taken} is a file, not a folder")
    before = sorted(folder.rglob("*"))
    assert _run(folder, option, str(target)) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err
    assert sorted(folder.rglob("*")) == before  # nothing created


def test_a_report_path_that_is_a_folder_is_refused(folder, capsys):
    (folder / "figures" / "REPRODUCTION.md").mkdir(parents=True)
    assert _run(folder, "--only", "omega") == 2
    assert "is a folder: remove it" in capsys.readouterr().err
    assert not (folder / "run").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permissions do not bind root (nor on Windows)")
def test_an_output_folder_without_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(ValueError, match=f"the run folder {locked / 'run'} cannot be "
                                             f"written: no permission to write in {locked}"):
            reproduce.writable_folder(locked / "run", "the run folder")
    finally:
        locked.chmod(0o755)


def test_writable_folder_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b"
    assert reproduce.writable_folder(target, "the run folder") == target
    assert list(tmp_path.iterdir()) == []


def test_bad_names_exit_2(folder, capsys):
    assert _run(folder, "--only", "nope") == 2
    assert "no notebook named ['nope']" in capsys.readouterr().err
    assert reproduce.main(["--profile", "nope", "--notebooks", str(folder / "notebooks")]) == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_undeclared_parameter_fails_that_notebook_before_it_runs(folder):
    profile = folder / "notebooks" / "profiles" / "tiny.yml"
    profile.write_text(yaml.safe_dump({"alpha": {"typo": 1}}))
    assert _run(folder, "--only", "alpha", "--only", "omega") == 1
    assert not (folder / "run" / "alpha.ipynb").exists()
    report = (folder / "run" / "REPRODUCTION.md").read_text()
    assert "**Failed** before any cell ran" in report
    assert "the profile sets ['typo'], which its parameters cell does not declare" in report


@pytest.mark.parametrize("profile", ["quick", "paper", "ci"])
def test_shipped_profiles_name_only_declared_parameters(profile):
    loaded = reproduce.load_profile(profile, notebooks_dir=REPO / "notebooks")
    for notebook in reproduce.find_notebooks(REPO / "notebooks"):
        if notebook.stem in loaded:
            params = reproduce.notebook_parameters(notebook, loaded, figures_dir="figures")
            assert params["out_dir"].endswith(f"figures/{notebook.stem}")


def test_default_folders_are_under_the_project_root(folder, monkeypatch):
    # `workbench reproduce` from a subfolder of a project (an installed package, no REPO
    # constant): notebooks/, figures/ and runs/ are found by walking up to pyproject.toml.
    (folder / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(folder / "notebooks")
    assert reproduce.main(["--profile", "tiny", "--only", "omega", "--no-progress"]) == 0
    [run] = (folder / "runs").iterdir()
    assert "| n | 7 |" in (run / "figures" / "omega" / "results.md").read_text()
    assert [p.name for p in run.glob("*.ipynb")] == ["omega.ipynb"]
    assert (run / "REPRODUCTION.md").is_file()
    assert not (folder / "figures").exists()  # nothing outside the run folder


def test_a_run_writes_only_into_its_run_folder(folder, capsys):
    (folder / "notebooks" / "broken.ipynb").unlink()
    before = sorted(p for p in folder.rglob("*") if p.is_file())
    assert reproduce.main(["--profile", "tiny", "--notebooks", str(folder / "notebooks"),
                           "--out", str(folder / "run"), "--no-progress"]) == 0
    after = sorted(p for p in folder.rglob("*") if p.is_file())
    assert all(p.is_relative_to(folder / "run") for p in set(after) - set(before))
    assert not (folder / "figures").exists()
    report = (folder / "run" / "REPRODUCTION.md").read_text()
    assert "| accuracy | 0.5 | 0.7 | 0.01 | +0.2 |" in report  # from run/figures/omega
    out = capsys.readouterr().out
    assert f"Figures and tables: {folder / 'run' / 'figures'}/" in out
    assert "  omega (" in out and "    n: 7" in out  # the headline numbers


def test_update_figures_copies_what_ran_and_the_report_never_shows_stale_tables(folder, capsys):
    # figures/ from an earlier run: broken's old tables, and a file omega no longer writes
    figures = folder / "figures"
    for name in ("broken", "omega"):
        (figures / name).mkdir(parents=True)
        (figures / name / "results.md").write_text("| quantity | value |\n|---|---|\n| old | 1 |\n")
        (figures / name / "stale.csv").write_text("quantity,paper,ours\nstale,1,2\n")
    (figures / "REPRODUCTION.md").write_text("the last good report\n")
    assert _run(folder) == 1
    report = (folder / "run" / "REPRODUCTION.md").read_text()
    assert "stale" not in report and "| old | 1 |" not in report
    assert "| n | 7 |" in (figures / "omega" / "results.md").read_text()  # updated
    assert (figures / "omega" / "stale.csv").is_file()  # not deleted, but named
    assert "| old | 1 |" in (figures / "broken" / "results.md").read_text()  # failed: kept
    assert (figures / "REPRODUCTION.md").read_text() == "the last good report\n"
    out = capsys.readouterr().out
    assert f"Updated {figures / 'omega'}/ (not produced by this run, left as they were: " \
           "stale.csv)" in out
    assert f"{figures / 'broken'}/ kept as it was: broken failed" in out
    assert "  broken: FAILED in cell 4 (" in out and "RuntimeError: deliberate failure 3" in out


def test_update_figures_goes_to_the_projects_figures_of_the_profile(folder, monkeypatch):
    (folder / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(folder)
    assert reproduce.main(["--profile", "tiny", "--only", "omega", "--no-progress",
                           "--update-figures"]) == 0
    assert "| n | 7 |" in (folder / "figures" / "tiny" / "omega" / "results.md").read_text()
    assert not (folder / "figures" / "tiny" / "REPRODUCTION.md").exists()  # a partial run


def test_the_kernels_talk_over_ipc_and_keep_their_log_out_of_the_terminal(folder, capfd):
    assert _run(folder, "--only", "alpha") == 0
    captured = capfd.readouterr()
    for noise in ("without encryption", "KeyboardInterrupt"):
        assert noise not in captured.err and noise not in captured.out
    log = folder / "run" / "alpha.kernel.log"
    assert log.is_file() and "without encryption" not in log.read_text()


def test_a_dead_kernel_is_reported_with_its_last_output(folder):
    params = 'n: int = 1\nout_dir: str = "unused"\n'
    _notebook(folder / "notebooks" / "dies.ipynb", params,
              "import os, sys\nprint('last words', file=sys.__stderr__, flush=True)\nos._exit(3)")
    assert _run(folder, "--only", "dies") == 1
    report = (folder / "run" / "REPRODUCTION.md").read_text()
    assert "DeadKernelError" in report
    assert "The kernel's last output (dies.kernel.log):" in report and "last words" in report


def test_the_kernels_share_the_data_root_the_model_cache_and_a_compilation_cache(folder,
                                                                                monkeypatch):
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(folder / "jax"))  # a user's wins
    _notebook(folder / "notebooks" / "env.ipynb", 'n: int = 1\nout_dir: str = "unused"\n',
              "import os\nfrom pathlib import Path\nout = Path(out_dir); out.mkdir(parents=True)\n"
              "names = ['WORKBENCH_DATA', 'WORKBENCH_CACHE', 'JAX_COMPILATION_CACHE_DIR']\n"
              "(out / 'env.txt').write_text('\\n'.join(os.environ.get(k, '-') for k in names))")
    assert _run(folder, "--only", "env") == 0
    data, cache, jax_cache = (folder / "run" / "figures" / "env" / "env.txt").read_text().split("\n")
    assert "-" not in (data, cache) and jax_cache == str(folder / "jax")
