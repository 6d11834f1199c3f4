"""The reproduction report: ``REPRODUCTION.md`` from one run's outcomes and results tables,
and the headline numbers printed at the end of a run (``workbench reproduce``, ``workbench
demo``).

What a report collects, for each notebook that ran, from what it wrote in the run's own figures
folder ``figures/<notebook>/``:

- ``results.md``: the notebook's short results table (the last step of every notebook), included
  verbatim;
- every ``*.csv`` with a ``paper`` column: a reproduced table, the paper's value next to ours
  (columns ``paper``, ``ours`` and, over several seeds, ``spread``), rendered as Markdown with
  ``ours - paper`` added where both are numbers;

together with the run's parameters, the versions of Python, JAX, Flax and Optax, the hardware,
the date and the git commit. A failed notebook's section gives its error and no tables.
"""

import csv
import os
import platform
import re
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from workbench import files

__all__ = [
    "PROFILE_NOTES",
    "Outcome",
    "collect_results",
    "hardware",
    "headlines",
    "render_report",
    "shown",
    "summary",
    "versions",
]

# What a shipped profile's numbers are; printed with its report and its headline numbers.
PROFILE_NOTES = {
    "quick": ("Quick profile: reduced sizes (fewer training images, epochs, seeds and runs than "
              "the papers; notebooks/profiles/quick.yml), for a laptop CPU in minutes. Its numbers "
              "show what each notebook measures; they are not comparable with the papers' "
              "(`--profile paper`)."),
    "ci": "CI profile: toy sizes for the test suite; the numbers mean nothing.",
}


class Outcome(NamedTuple):
    """What happened to one notebook."""

    name: str
    ok: bool
    seconds: float
    output: Path  # the executed copy
    parameters: dict
    cell: int | None = None  # index of the failing cell in the executed copy
    exec_count: int | None = None  # its "In [n]"
    source: str = ""  # its source
    error: str = ""  # "ErrorName: message"


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    from workbench import stats

    return stats.markdown_table([dict(zip(header, row)) for row in rows], header)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _csv_table(path: Path) -> str:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], [row + [""] * (len(rows[0]) - len(row)) for row in rows[1:]]
    if "paper" in header and "ours" in header:
        paper, ours = header.index("paper"), header.index("ours")
        header = header + ["ours - paper"]
        for row in body:
            p, o = _number(row[paper]), _number(row[ours])
            row.append("" if p is None or o is None else f"{o - p:+.4g}")
    return _markdown_table(header, body)


def collect_results(folder: str | os.PathLike) -> str:
    """The Markdown of one notebook's results in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    parts = []
    summary = folder / "results.md"
    if summary.is_file():
        parts.append(summary.read_text().strip())
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
        if "paper" in header:
            parts.append(f"**{path.stem}** (`{path.name}`)\n\n{_csv_table(path)}")
    return "\n\n".join(parts)


def _markdown_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in ``text``, as ``{column: cell}``."""
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    cells = [[cell.strip().replace("\\|", "|")
              for cell in re.split(r"(?<!\\)\|", line.strip("|"))] for line in lines]
    if len(cells) < 2:
        return []
    return [dict(zip(cells[0], row)) for row in cells[2:]]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def headlines(folder: str | os.PathLike, *, limit: int = 5, width: int = 100) -> list[str]:
    """The first ``limit`` rows of ``folder/results.md`` as one line each: what the row is about
    (its ``claim`` or ``quantity``, else its first column, with its ``setting`` or ``weights``), then its measured value (the ``ours``,
    ``measured`` or ``value`` column, and the ``verdict``) or else its other cells; a last line
    counts the rows left out.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = (Path(folder) / "results.md").write_text(
        ...         "| quantity | value |\\n| --- | --- |\\n| test accuracy | 0.97 |\\n")
        ...     headlines(folder)
        ['test accuracy: 0.97']
    """
    path = Path(folder) / "results.md"
    rows = _markdown_rows(path.read_text(errors="replace")) if path.is_file() else []
    lines = []
    for row in rows[:limit]:
        columns = list(row)
        name = next((c for c in ("claim", "quantity") if c in row), columns[0])
        context = [row[c] for c in ("setting", "weights") if row.get(c)]
        about = row[name] + (f" ({', '.join(context)})" if context else "")
        columns = [name] + [c for c in columns if c != name]
        value = next((row[c] for c in ("ours", "measured", "value") if c in row), None)
        if value is None:
            value = ", ".join(f"{c} {row[c]}" for c in columns[1:] if row[c])
        elif row.get("verdict"):
            value += f" [{row['verdict']}]"
        lines.append(_clip(f"{about}: {value}", width))
    if len(rows) > limit:
        lines.append(f"... {len(rows) - limit} more rows in the report")
    return lines


def versions() -> dict[str, str]:
    """Versions of Python and of the packages the results depend on, the platform and the commit."""
    found = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy", "workbench"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["platform"] = platform.platform()
    try:
        found["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=files.project_root(),
            capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found["commit"] = "unknown"
    return found


def shown(path: str | os.PathLike) -> str:
    """``path`` relative to the project root when it lies inside it: committed reports hold no
    machine paths."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(files.project_root()))
    except ValueError:
        return str(path)


def hardware() -> str:
    """The machine a run used, in a few words: processor, cores, JAX's devices.

    Example:
        >>> "cores" in hardware()
        True
    """
    import jax

    kinds = sorted({d.device_kind for d in jax.devices()})
    return (f"{platform.machine()} {platform.processor() or 'CPU'}, {os.cpu_count()} cores; "
            f"JAX devices: {jax.device_count()} x {', '.join(kinds)}")


def render_report(outcomes: Sequence[Outcome], *, profile: str, figures_dir: Path,
                  run_dir: Path, date: str, versions: dict[str, str],
                  notes: Sequence[str] = (), only: Sequence[str] = ()) -> str:
    """The text of ``REPRODUCTION.md`` (``only``: the ``--only`` names of a partial run).

    ``figures_dir`` is the run's own figures folder: tables come from there, and only for the
    notebooks that ran; a failed notebook's section gives its error instead.
    """
    failed = [o for o in outcomes if not o.ok]
    command = " ".join([f"--profile {profile}", *(f"--only {name}" for name in only)])
    lines = [
        "# Reproduction report", "",
        (f"Generated by `workbench reproduce {command}` on {date}; "
         f"executed notebooks in `{shown(run_dir)}`."), "",
    ]
    if profile in PROFILE_NOTES:
        lines += [f"**{PROFILE_NOTES[profile]}**", ""]
    lines += [
        f"Hardware: {hardware()}.", "",
        f"**{len(outcomes) - len(failed)} of {len(outcomes)} notebooks ran**"
        + (f"; failed: {', '.join(o.name for o in failed)}." if failed else "."), "",
        _markdown_table(["notebook", "status", "seconds", "executed copy"],
                        [[o.name, "ok" if o.ok else "FAILED", f"{o.seconds:.1f}",
                          shown(o.output)] for o in outcomes]), "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", "",
    ]
    lines += [f"> {note}" for note in notes] + ([""] if notes else [])
    for outcome in outcomes:
        lines += [f"## {outcome.name}", ""]
        if outcome.parameters:
            lines += ["Parameters: " + ", ".join(
                f"`{k}={v!r}`" for k, v in outcome.parameters.items() if k != "out_dir") + ".",
                ""]
        if not outcome.ok:
            where = ("before any cell ran" if outcome.cell is None else
                     f"in cell {outcome.cell} (`In [{outcome.exec_count}]`: "
                     f"`{_first_line(outcome.source)}`)")
            lines += [f"**Failed** {where}:", "", "```", outcome.error, "```", "",
                      "_No tables: this notebook did not finish in this run._", ""]
            continue
        results = collect_results(figures_dir / outcome.name)
        lines += [results if results else "_No results written to "
                  f"`{shown(figures_dir / outcome.name)}/`._", ""]
    return "\n".join(lines)


def summary(outcomes: Sequence[Outcome], *, profile: str, figures_dir: Path) -> list[str]:
    """The lines that end a run: every notebook's headline numbers (:func:`headlines`), or its
    error."""
    lines = [f"Headline numbers ({PROFILE_NOTES.get(profile, f'profile {profile}').split(':')[0]}"
          + ("; reduced sizes, not comparable with the papers" if profile == "quick" else "")
          + "):"]
    for outcome in outcomes:
        if not outcome.ok:
            where = "" if outcome.cell is None else f" in cell {outcome.cell}"
            lines.append(f"  {outcome.name}: FAILED{where} ({outcome.seconds:.0f} s): "
                         f"{_clip(_first_line(outcome.error), 90)}")
            continue
        lines.append(f"  {outcome.name} ({outcome.seconds:.0f} s)")
        lines += [f"    {line}" for line in
                  headlines(figures_dir / outcome.name) or ["(no results table)"]]
    return lines
