"""The course in ``notebooks/course/``: student versions, nbgrader metadata, rendered HTML.

The chapters are notebooks with nbgrader's conventions (its cell metadata, schema 3): a
*solution* cell holds the answer between ``### BEGIN SOLUTION`` and ``### END SOLUTION``; a
*self-check* cell (tag ``selfcheck``, read-only) shows a :mod:`workbench.selfcheck` hint; an
*autograded test* cell (read-only, with points) asserts the answer, with any hidden part between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.

:func:`student_version` removes the solutions as ``nbgrader generate_assignment`` does, with one
difference: a removed region becomes ``name = None  # YOUR CODE HERE`` for each name it
assigned, not ``raise NotImplementedError()``, so a student's *Run all* reaches every
self-check, which then says what is missing. The graded test cells carry the
``raises-exception`` tag, so Jupyter and papermill go on past a failing one. The same folder
works with nbgrader's own ``generate_assignment`` (its source folder layout:
``source/<assignment>/<chapter>.ipynb``); :func:`metadata_problems` checks what nbgrader needs.

Command line (``python -m workbench.course ...``):

- ``student OUT``: the student version of every chapter into ``OUT`` (default
  ``runs/course/student``, ignored by git).
- ``html OUT [--profile ci.yml]``: every chapter executed with papermill (its default
  parameters, or a profile's) and rendered to HTML with its outputs and figures, plus
  ``index.html``.
"""

import argparse
import ast
import copy
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["COURSE_DIR", "chapters", "exercises", "html_page", "metadata_problems", "render_html",
           "solution_names", "student_version", "write_student"]

COURSE_DIR = Path(__file__).resolve().parent.parent / "notebooks" / "course"
"""The chapters' folder in a checkout."""

_SOLUTION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION[^\n]*\n?",
                       re.MULTILINE | re.DOTALL)
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?",
                     re.MULTILINE | re.DOTALL)
_SCHEMA = 3


def chapters(folder: str | Path = COURSE_DIR) -> list[Path]:
    """The chapters, ``NN_name.ipynb``, in order."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def exercises(nb) -> list[dict]:
    """The exercises of a chapter: ``{"id", "solution", "check", "test", "points"}`` with the
    cells' indices (``None`` where one is missing), in order of their solution cells."""
    out = []
    for i, cell in enumerate(nb.cells):
        meta = _nbgrader(cell)
        if meta.get("solution") and cell.cell_type == "code":
            out.append({"id": meta.get("grade_id"), "solution": i, "check": None, "test": None,
                        "points": 0})
        elif out and "selfcheck" in cell.metadata.get("tags", []) and out[-1]["check"] is None:
            out[-1]["check"] = i
        elif out and meta.get("grade") and out[-1]["test"] is None:
            out[-1]["test"] = i
            out[-1]["points"] = meta.get("points", 0)
    return out


def solution_names(source: str) -> list[str]:
    """The names a solution region assigns at its top level, in order of first assignment."""
    names: list[str] = []
    for node in ast.parse(source).body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign))
                   else [])
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name) and name.id not in names:
                    names.append(name.id)
    return names


def _strip(source: str) -> str:
    def placeholder(match: re.Match) -> str:
        indent, body = match.group(1), match.group(2)
        names = solution_names(_dedent(body, indent))
        if not names:
            return f"{indent}# YOUR CODE HERE\n"
        return "".join(f"{indent}{name} = None  # YOUR CODE HERE\n" for name in names)

    return _HIDDEN.sub("", _SOLUTION.sub(placeholder, source)).rstrip("\n")


def _dedent(body: str, indent: str) -> str:
    return "\n".join(line.removeprefix(indent) for line in body.splitlines())


def student_version(nb):
    """A copy of chapter ``nb`` (an ``nbformat`` notebook) with every solution region replaced
    by placeholders, hidden tests removed and outputs cleared."""
    out = copy.deepcopy(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.source = _strip(cell.source)
            cell.outputs, cell.execution_count = [], None
    return out


def write_student(out_dir: str | Path, folder: str | Path = COURSE_DIR) -> list[Path]:
    """Writes the student version of every chapter (and the teacher's README) to ``out_dir``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir: {out_dir} is a file, expected a folder")
    import nbformat  # here, not at the top: the CLI imports this module for its help (1.2 s)

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in chapters(folder):
        target = out_dir / path.name
        nbformat.write(student_version(nbformat.read(path, as_version=4)), target)
        written.append(target)
    return written


def metadata_problems(nb) -> list[str]:
    """What in chapter ``nb`` would keep nbgrader from making its student version or grading it
    (empty when nothing): every graded or solution cell has a unique ``grade_id`` and schema 3,
    graded cells have points and are read-only, solution cells hold a complete solution region,
    each exercise has a self-check and a test cell."""
    problems, seen = [], set()
    for i, cell in enumerate(nb.cells):
        meta = _nbgrader(cell)
        if not meta:
            if "### BEGIN SOLUTION" in cell.source:
                problems.append(f"cell {i}: a solution region outside a solution cell")
            continue
        gid = meta.get("grade_id")
        if not gid or gid in seen:
            problems.append(f"cell {i}: grade_id {gid!r} missing or repeated")
        seen.add(gid)
        if meta.get("schema_version") != _SCHEMA:
            problems.append(f"cell {i}: schema_version {meta.get('schema_version')}, expected 3")
        for field in ("grade", "solution", "locked", "task"):
            if not isinstance(meta.get(field), bool):
                problems.append(f"cell {i}: nbgrader.{field} missing or not a bool")
        if meta.get("grade") and not meta.get("solution"):
            if not meta.get("locked") or not isinstance(meta.get("points"), (int, float)):
                problems.append(f"cell {i}: a test cell must be locked and have points")
            if "raises-exception" not in cell.metadata.get("tags", []):
                problems.append(f"cell {i}: a test cell needs the raises-exception tag")
        if meta.get("solution") and cell.cell_type == "code" and not _SOLUTION.search(cell.source):
            problems.append(f"cell {i}: a solution cell without BEGIN/END SOLUTION")
    for ex in exercises(nb):
        if ex["check"] is None or ex["test"] is None:
            problems.append(f"exercise {ex['id']}: needs a self-check cell and a test cell after it")
    return problems


def html_page(nb) -> str:
    """An executed chapter as one HTML page, its figures inlined."""
    from nbconvert import HTMLExporter

    return HTMLExporter().from_notebook_node(nb)[0]


def render_html(out_dir: str | Path, *, folder: str | Path = COURSE_DIR,
                profile: Mapping[str, Mapping] | None = None,
                names: Sequence[str] | None = None) -> list[Path]:
    """Executes every chapter with papermill (default parameters, or ``profile[stem]``) into
    ``out_dir/executed/`` and renders each to ``out_dir/<chapter>.html``, with an index."""
    import nbformat
    import papermill

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir: {out_dir} is a file, expected a folder")
    (out_dir / "executed").mkdir(parents=True, exist_ok=True)
    pages = []
    for path in chapters(folder):
        if names and path.stem not in names:
            continue
        executed = out_dir / "executed" / path.name
        papermill.execute_notebook(str(path), str(executed),
                                   parameters=dict((profile or {}).get(path.stem, {})),
                                   cwd=str(path.parent), kernel_name="python3",
                                   progress_bar=False)
        page = out_dir / f"{path.stem}.html"
        page.write_text(html_page(nbformat.read(executed, as_version=4)), encoding="utf-8")
        pages.append(page)
    links = "\n".join(f'<li><a href="{p.name}">{p.stem}</a></li>' for p in pages)
    (out_dir / "index.html").write_text(
        f"<!doctype html><title>workbench course</title><h1>Testing deep neural networks from "
        f"the inside</h1><ol>\n{links}\n</ol>\n", encoding="utf-8")
    return pages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``course`` subcommand's arguments (for ``workbench course``)."""
    parser.add_argument("action", choices=("student", "html"))
    parser.add_argument("out", nargs="?", default=None,
                        help="output folder (default runs/course/student or runs/course/html)")
    parser.add_argument("--profile", default=None,
                        help="html: a YAML file of parameters per chapter, e.g. "
                             "notebooks/course/ci.yml")
    parser.add_argument("--only", nargs="*", default=None, help="html: these chapters only")


def run(args: argparse.Namespace) -> int:
    """Runs ``workbench course ACTION [OUT]``; returns the exit status."""
    from workbench.experiments import common

    out = common.output_dir(args.out or f"runs/course/{args.action}")
    if args.action == "student":
        written = write_student(out)
        print(f"{len(written)} student notebooks in {out}")
        return 0
    profile = None
    if args.profile:
        import yaml

        profile = yaml.safe_load(Path(args.profile).read_text(encoding="utf-8")) or {}
    pages = render_html(out, profile=profile, names=args.only)
    print(f"{len(pages)} chapters rendered: {out / 'index.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.course student|html [OUT]``."""
    parser = argparse.ArgumentParser(prog="workbench course", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as error:
        print(f"workbench course: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
