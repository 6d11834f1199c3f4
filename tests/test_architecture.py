"""The layer rule of ARCHITECTURE.md, checked on the source: a module imports only from its own
layer and those below, only the model layer imports Flax, and no module reaches into another
module's private names."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"


def _layers() -> dict[str, int]:
    """``{module: layer}`` from the table in ARCHITECTURE.md (``experiments.x`` for the
    experiments package)."""
    layers = {}
    for line in (ROOT / "ARCHITECTURE.md").read_text().splitlines():
        row = re.match(r"\| (\d) [^|]+\| ([^|]+) \|", line)
        if row:
            for name in re.findall(r"`([\w.]+)`", row.group(2)):
                layers[name] = int(row.group(1))
    return layers


LAYERS = _layers()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts)


def _layer(name: str) -> int | None:
    if name in LAYERS:
        return LAYERS[name]
    if name.startswith("experiments"):
        return 5  # every experiments module, named in the table or not
    return None


def _imports(tree: ast.Module) -> tuple[set[str], dict[str, str]]:
    """The workbench modules a file imports (anywhere in it) and the local names bound to
    them."""
    modules, bound = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "workbench" or node.module == "workbench.experiments":
                prefix = "" if node.module == "workbench" else "experiments."
                for alias in node.names:
                    modules.add(prefix + alias.name)
                    bound[alias.asname or alias.name] = prefix + alias.name
            elif node.module.startswith("workbench."):
                modules.add(node.module.removeprefix("workbench."))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("workbench."):
                    modules.add(alias.name.removeprefix("workbench."))
    return modules, bound


SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def test_the_table_names_every_module():
    missing = [_module_name(p) for p in SOURCES if _layer(_module_name(p)) is None]
    assert not missing, f"modules without a layer in ARCHITECTURE.md: {missing}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _module_name(p))
def test_a_module_imports_only_its_layer_and_below(path):
    name = _module_name(path)
    tree = ast.parse(path.read_text())
    modules, bound = _imports(tree)
    own = _layer(name)
    above = sorted(m for m in modules if (_layer(m) or 0) > own)
    assert not above, f"{name} (layer {own}) imports {above} from higher layers"
    flax = any(isinstance(n, (ast.Import, ast.ImportFrom))
               and any(a.name.split(".")[0] == "flax" for a in n.names)
               or isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "flax"
               for n in ast.walk(tree))
    assert not flax or own == 2, f"{name} (layer {own}) imports Flax: only layer 2 may"
    private = sorted({f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
                      if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                      and n.value.id in bound and n.attr.startswith("_")
                      and not n.attr.startswith("__")})
    private += sorted(f"{n.module}.{a.name}" for n in ast.walk(tree)
                      if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("workbench")
                      for a in n.names if a.name.startswith("_"))
    assert not private, f"{name} uses other modules' private names: {private}"
