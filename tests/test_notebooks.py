"""Every notebook in notebooks/ follows the one outline, is thin and is committed clean.

The outline (STYLE.md, section 12): a Markdown title with the question; one cell of imports;
the ``parameters`` cell of annotated literals, each with a comment; the setup, which resolves
``out_dir`` through the one path convention; calls into ``workbench``; figures; and last a
``## Results`` heading and the cell that writes ``out / "results"``. No function or class is
defined in a notebook, and its code stays under ``MAX_CODE_LINES`` lines.
"""

import ast
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
MAX_CODE_LINES = 90
SHARED = {"seed", "model_name", "model_names", "weights", "epochs", "n_train", "n_test",
          "n_seeds", "out_dir"}


def _code(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def _tree(cell) -> ast.Module:
    # IPython's display() is a builtin there; nothing else in the notebooks is IPython syntax.
    return ast.parse(cell.source)


def _parameters(nb) -> dict[str, tuple[str, object]]:
    """``{name: (annotation, value)}`` of the parameters cell."""
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    out = {}
    for node in _tree(cell).body:
        out[node.target.id] = (ast.unparse(node.annotation), ast.literal_eval(node.value))
    return out


def test_there_are_notebooks():
    assert {p.stem for p in NOTEBOOKS} >= {"quickstart", "explorer", "deepfault", "deepxplore"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.outputs and c.execution_count is None for c in _code(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_outline(path):
    nb = nbformat.read(path, as_version=4)
    cells, code = nb.cells, _code(nb)
    # 1. title and question
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert "**Question:**" in cells[0].source
    # 2. imports, and only imports
    assert cells[1] is code[0]
    assert all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in _tree(code[0]).body)
    assert "from workbench" in code[0].source
    # 3. the parameters cell: annotated literals, each with a comment
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [code[1]] and cells[2] is code[1]
    lines = [line for line in code[1].source.splitlines() if line.strip()]
    for node, line in zip(_tree(code[1]).body, lines, strict=True):
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name), line
        ast.literal_eval(node.value)  # a literal: papermill cannot recompute derived values
        assert "  # " in line, f"{path.name}: parameter without a comment: {line}"
    # 4. the setup resolves out_dir by the one convention (experiments.common)
    assert "common.output_dir(out_dir)" in code[2].source.splitlines()[0]
    # 7. the results table last
    assert cells[-2].cell_type == "markdown" and cells[-2].source == "## Results"
    assert 'out / "results"' in cells[-1].source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_thin(path):
    nb = nbformat.read(path, as_version=4)
    lines = [line for c in _code(nb) for line in c.source.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert len(lines) <= MAX_CODE_LINES, f"{path.name}: {len(lines)} code lines"
    for cell in _code(nb):
        for node in ast.walk(_tree(cell)):
            defines = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
            assert not isinstance(node, defines), f"{path.name}: {ast.unparse(node)[:60]}"
    source = "\n".join(c.source for c in _code(nb))
    for stale in ("REPO", "os.environ", "Path(__file__)", '"../'):
        assert stale not in source, f"{path.name} uses {stale}: use workbench.experiments.common"


def test_one_meaning_per_parameter_name():
    """A parameter name means one thing in every notebook: the same annotation everywhere, and
    none of the names that used to mean two things (``k``: suspicious neurons or KMNC
    sections, now ``k_neurons`` / ``k_sections``; DeepXplore's ``n_steps`` / ``iterations``, now
    ``n_iterations``, leaving ``n_steps`` to synthesis)."""
    seen: dict[str, tuple[str, str]] = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for name, (annotation, _) in _parameters(nb).items():
            assert name not in ("k", "iterations"), f"{path.name}: ambiguous parameter {name!r}"
            if name in seen:
                assert seen[name][0] == annotation, (name, path.name, seen[name][1])
            seen[name] = (annotation, path.name)
    assert SHARED <= set(seen)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_paper_models_take_weights(path):
    annotation, value = _parameters(nbformat.read(path, as_version=4))["weights"]
    assert (annotation, value) == ("str", "trained")
