"""The course (notebooks/course/): the chapters' outline and nbgrader metadata, the student
versions, and every chapter executed with its solutions (every self-check passes) and as the
student version (every self-check fails gracefully, with its hint).

tests/test_notebooks.py checks the notebooks directly under notebooks/; the chapters follow the
same rules here, with a chapter's own first cell (title, question, learning goals) and a larger
line budget (a worked example plus exercises, their self-checks and graded tests).
"""

import ast
import copy
from pathlib import Path

import nbformat
import pytest
import yaml

from workbench import course

REPO = Path(__file__).resolve().parent.parent
COURSE = REPO / "notebooks" / "course"
CHAPTERS = course.chapters(COURSE)
MAX_CODE_LINES = 125
CI = yaml.safe_load((COURSE / "ci.yml").read_text(encoding="utf-8"))


def _read(path):
    return nbformat.read(path, as_version=4)


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _parameters(nb) -> dict[str, str]:
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return {n.target.id: ast.unparse(n.annotation) for n in ast.parse(cell.source).body}


def _text(cell) -> str:
    out = []
    for o in cell.outputs:
        out.append(o.get("text", "") + o.get("data", {}).get("text/plain", ""))
    return "\n".join(out)


def _errors(cell) -> list[str]:
    return [o["ename"] for o in cell.outputs if o.get("output_type") == "error"]


def test_eight_chapters_in_the_issues_order():
    assert [p.stem for p in CHAPTERS] == [
        "01_neurons", "02_coverage", "03_surprise", "04_deepxplore", "05_deepfault",
        "06_meaningful", "07_fuzzing", "08_repair"]
    assert set(CI) == {p.stem for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_clean(path):
    assert all(not c.outputs and c.execution_count is None for c in _code(_read(path)))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_outline(path):
    nb = _read(path)
    cells, code = nb.cells, _code(nb)
    number = int(path.stem[:2])
    assert cells[0].cell_type == "markdown"
    assert cells[0].source.startswith(f"# Chapter {number}. ")
    for part in ("**Question:**", "**Learning goals.**", "*Time: about"):
        assert part in cells[0].source, part
    assert cells[1] is code[0]
    assert all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.parse(code[0].source).body)
    assert "from workbench import" in code[0].source and "selfcheck" in code[0].source
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [code[1]] and cells[2] is code[1]
    lines = [line for line in code[1].source.splitlines() if line.strip()]
    for node, line in zip(ast.parse(code[1].source).body, lines, strict=True):
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name), line
        ast.literal_eval(node.value)
        assert "  # " in line, f"{path.name}: parameter without a comment: {line}"
    assert "common.output_dir(out_dir)" in code[2].source.splitlines()[0]
    assert _parameters(nb)["out_dir"] == "str"
    assert cells[-1].cell_type == "markdown" and cells[-1].source.startswith("## Summary")
    assert set(CI[path.stem]) <= set(_parameters(nb)), "ci.yml names an unknown parameter"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_thin(path):
    nb = _read(path)
    lines = [line for c in _code(nb) for line in c.source.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert len(lines) <= MAX_CODE_LINES, f"{path.name}: {len(lines)} code lines"
    defines = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    for cell in _code(nb):
        for node in ast.walk(ast.parse(cell.source)):
            assert not isinstance(node, defines), f"{path.name}: {ast.unparse(node)[:60]}"
    source = "\n".join(c.source for c in _code(nb))
    for stale in ("REPO", "os.environ", "Path(__file__)", '"../'):
        assert stale not in source, f"{path.name} uses {stale}"


def test_parameter_names_mean_what_they_mean_in_the_other_notebooks():
    seen: dict[str, str] = {}
    for path in sorted((REPO / "notebooks").glob("*.ipynb")) + CHAPTERS:
        for name, annotation in _parameters(_read(path)).items():
            assert seen.setdefault(name, annotation) == annotation, (name, path.name)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_follow_nbgrader(path):
    nb = _read(path)
    assert course.metadata_problems(nb) == []
    found = course.exercises(nb)
    assert 2 <= len(found) <= 4
    for ex in found:
        solution, check, test = (nb.cells[ex[k]] for k in ("solution", "check", "test"))
        assert ex["solution"] < ex["check"] < ex["test"]
        assert course.solution_names(solution.source), ex["id"]
        assert "selfcheck." in check.source and "assert " in test.source
        assert test.metadata["nbgrader"]["points"] >= 1
        assert nb.cells[ex["solution"] - 1].source.startswith("### Exercise ")


def test_student_version_of_a_cell():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
                    "x = 1\nif x:\n    ### BEGIN SOLUTION\n    a, b = 2, 3\n    c = a + b\n"
                    "    ### END SOLUTION\nprint(x)"),
                nbformat.v4.new_code_cell("assert c == 5\n### BEGIN HIDDEN TESTS\nassert a == 2\n"
                                          "### END HIDDEN TESTS"),
                nbformat.v4.new_code_cell("### BEGIN SOLUTION\nprint('hi')\n### END SOLUTION")]
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1")]
    nb.cells[0].execution_count = 3
    student = course.student_version(nb)
    assert student.cells[0].source == ("x = 1\nif x:\n    a = None  # YOUR CODE HERE\n"
                                       "    b = None  # YOUR CODE HERE\n"
                                       "    c = None  # YOUR CODE HERE\nprint(x)")
    assert student.cells[0].outputs == [] and student.cells[0].execution_count is None
    assert student.cells[1].source == "assert c == 5"
    assert student.cells[2].source == "# YOUR CODE HERE"
    assert nb.cells[0].execution_count == 3  # the teacher's copy is untouched


def test_metadata_problems_name_the_cell():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("assert True")
    cell.metadata = {"nbgrader": {"grade": True, "solution": False, "locked": False, "task": False,
                                  "grade_id": "t", "schema_version": 3}}
    nb.cells = [cell, nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")]
    problems = course.metadata_problems(nb)
    assert "cell 0: a test cell must be locked and have points" in problems
    assert "cell 0: a test cell needs the raises-exception tag" in problems
    assert "cell 1: a solution region outside a solution cell" in problems


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_version_removes_every_solution(path):
    nb = _read(path)
    student = course.student_version(nb)
    assert len(student.cells) == len(nb.cells)
    for ex in course.exercises(nb):
        teacher, cell = nb.cells[ex["solution"]], student.cells[ex["solution"]]
        names = course.solution_names(teacher.source)
        assert cell.source == "\n".join(f"{n} = None  # YOUR CODE HERE" for n in names)
        for k in ("check", "test"):
            assert student.cells[ex[k]].source == nb.cells[ex[k]].source
    everything = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in everything and "END SOLUTION" not in everything
    for cell in _code(student):
        ast.parse(cell.source)


def test_student_command(tmp_path):
    assert course.main(["student", str(tmp_path / "student")]) == 0
    written = sorted(p.name for p in (tmp_path / "student").glob("*.ipynb"))
    assert written == [p.name for p in CHAPTERS]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="out_dir: .* is a file, expected a folder"):
        course.write_student(tmp_path / "file")


def _with_student_checks(nb):
    """The chapter with, after each exercise, the student version's cells for it run on the
    unanswered placeholders (tags ``student-stub``, ``student-check``, ``student-test``), then
    the answers put back: one execution shows both the teacher's and the student's self-checks."""
    student = course.student_version(nb)
    out = copy.deepcopy(nb)
    for number, ex in reversed(list(enumerate(course.exercises(nb)))):
        names = course.solution_names(nb.cells[ex["solution"]].source)
        stash = f"_teacher_answers_{number}"
        cells = [nbformat.v4.new_code_cell(
                     f"{stash} = {{n: globals()[n] for n in {names!r} if n in globals()}}\n"
                     + student.cells[ex["solution"]].source, metadata={"tags": ["student-stub"]}),
                 nbformat.v4.new_code_cell(student.cells[ex["check"]].source,
                                           metadata={"tags": ["student-check"]}),
                 nbformat.v4.new_code_cell(student.cells[ex["test"]].source,
                                           metadata={"tags": ["student-test", "raises-exception"]}),
                 nbformat.v4.new_code_cell(f"globals().update({stash})")]
        out.cells[ex["test"] + 1:ex["test"] + 1] = cells
    return out


def _tagged(nb, tag) -> list:
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def _execute(path, tmp_path) -> tuple:
    """The chapter executed once with papermill at ci.yml's values, its solutions in, and the
    student version's self-checks and graded cells run after each exercise on the unanswered
    placeholders: ``(notebook, out_dir)``."""
    import papermill

    source, target = tmp_path / f"checked_{path.name}", tmp_path / f"executed_{path.name}"
    nbformat.write(_with_student_checks(_read(path)), source)
    try:
        papermill.execute_notebook(str(source), str(target),
                                   parameters={**CI[path.stem], "out_dir": str(tmp_path / "out")},
                                   cwd=str(COURSE), kernel_name="python3", progress_bar=False)
    except papermill.PapermillExecutionError:
        pass  # the student-test cells fail by design; the checks below read every cell
    return _read(target), tmp_path / "out"


@pytest.mark.real_data
@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_self_checks_pass_and_student_hints_show(path, tmp_path, notebook_env):
    """One execution: with the solutions every self-check passes and every graded test
    passes; on the student version's placeholders every self-check gives its hint (no
    traceback) and every graded test fails; the executed chapter renders to HTML."""
    nb, out = _execute(path, tmp_path)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    for cell in _code(nb):
        if cell not in graded and "student-test" not in cell.metadata.get("tags", []):
            assert not _errors(cell), cell.source[:80]
    for ex in course.exercises(nb):
        text = _text(nb.cells[ex["check"]])
        assert text.startswith("PASS") and "NOT YET" not in text, (ex["id"], text)
        assert not _errors(nb.cells[ex["test"]]), ex["id"]
    assert list(out.glob("*.png")), "no figure saved"

    checks, tests = _tagged(nb, "student-check"), _tagged(nb, "student-test")
    assert len(checks) == len(tests) == len(course.exercises(nb)) >= 2
    for check, test in zip(checks, tests):
        text = _text(check)
        assert not _errors(check) and "Traceback" not in text
        assert text.startswith("NOT YET") and "not answered yet" in text, text
        assert "PASS" not in text
        assert _errors(test), f"the graded test passes without an answer: {test.source[:80]}"

    html = course.html_page(nb)
    assert "data:image/png;base64" in html and "PASS " in html


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_version_runs_past_an_unanswered_exercise(path):
    """No cell after an exercise reads its answers, so a student's *Run all* with placeholders
    (None) reaches every later exercise: the one thing an execution of the student version
    shows that the executed chapter above does not."""
    nb = _read(path)
    student = course.student_version(nb)
    for ex in course.exercises(nb):
        names = set(course.solution_names(nb.cells[ex["solution"]].source))
        own = {ex["solution"], ex["check"], ex["test"]}
        for i in range(ex["solution"] + 1, len(nb.cells)):
            if i in own or nb.cells[i].cell_type != "code":
                continue
            read = {n.id for n in ast.walk(ast.parse(student.cells[i].source))
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            assert not read & names, f"{path.name} cell {i} reads {sorted(read & names)}"


def test_html_of_every_chapter_with_an_index(tmp_path):
    folder = tmp_path / "chapters"
    folder.mkdir()
    for name in ("01_first", "02_second"):
        nb = nbformat.v4.new_notebook(metadata={"kernelspec": {
            "name": "python3", "display_name": "Python 3", "language": "python"}})
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"),
                    nbformat.v4.new_code_cell("x = 2\nx", metadata={"tags": ["parameters"]}),
                    nbformat.v4.new_code_cell("print('result', x * 21)")]
        nbformat.write(nb, folder / f"{name}.ipynb")
    pages = course.render_html(tmp_path / "html", folder=folder, profile={"02_second": {"x": 1}},
                               names=["02_second"])
    assert [p.name for p in pages] == ["02_second.html"]
    assert "result 21" in pages[0].read_text(encoding="utf-8")
    assert '<a href="02_second.html">' in (tmp_path / "html" / "index.html").read_text()
    assert (tmp_path / "html" / "executed" / "02_second.ipynb").is_file()
