"""``workbench reproduce``: every notebook through papermill, then one reproduction report.

Each notebook in ``notebooks/`` is executed with the parameters of a profile, a YAML file
``notebooks/profiles/<profile>.yml`` keyed by notebook name and then parameter name::

    defaults:            # applied to every notebook that declares the parameter
      seed: 0
    quickstart:          # only for notebooks/quickstart.ipynb
      n_train: 2000
      epochs: 1

A parameter named for a notebook that its ``parameters`` cell does not declare is a mistake
(papermill would only warn) and fails that notebook before it runs. Every notebook that declares
``out_dir`` gets ``figures/<notebook>/`` as an absolute path.

Folders follow the one path convention of :mod:`workbench.experiments.common`: ``notebooks/``,
``figures/``, ``runs/`` and the data root (``$WORKBENCH_DATA``, else ``data/``) are under the
project root, the nearest folder at or above the working directory with a ``pyproject.toml`` or
``.git`` (else the working directory), so the command works from an installed package too.

Executed copies go to ``runs/<timestamp>/<notebook>.ipynb`` (ignored by git). A failing
notebook is reported with its cell and error, and the others still run. Finally the report
``REPRODUCTION.md`` collects, for each notebook, what it wrote to ``figures/<notebook>/``:

- ``results.md``: the notebook's short results table (the last step of every notebook), included
  verbatim;
- every ``*.csv`` with a ``paper`` column: a reproduced table, the paper's value next to ours
  (columns ``paper``, ``ours`` and, over several seeds, ``spread``), rendered as Markdown with
  ``ours - paper`` added where both are numbers;

together with the run's parameters, the versions of Python, JAX, Flax and Optax, the date and the
git commit.

The report always goes to the run folder (``runs/<timestamp>/REPRODUCTION.md``). It replaces
``figures/REPRODUCTION.md``, the committed one, only when every notebook ran, all of them
(no ``--only`` subset): a report describes one whole run at one commit, so a partial run (its
header would claim the other notebooks' sections) or a failed one (it would replace the last good
report with a failure) leaves it as it was, and the command says where its own report is.

Before anything is created, the output folders are checked (:func:`writable_folder`: a file
where a folder should be, no permission), and a profile that is not valid YAML is named with its
line (:func:`load_profile`).
"""

import argparse
import contextlib
import csv
import datetime
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import yaml

from workbench import files, stats

__all__ = [
    "PROFILES",
    "Outcome",
    "add_arguments",
    "collect_results",
    "execute",
    "find_notebooks",
    "load_profile",
    "main",
    "notebook_parameters",
    "render_report",
    "run",
    "versions",
    "writable_folder",
]

PROFILES = ("quick", "paper")
DEFAULTS_KEY = "defaults"
REPORT = "REPRODUCTION.md"


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


def load_profile(profile: str | os.PathLike, *, notebooks_dir: str | os.PathLike) -> dict:
    """Reads a profile: a name (``notebooks_dir/profiles/<name>.yml``) or a path to a YAML file.

    Returns:
        ``{notebook name or "defaults": {parameter: value}}``.

    Raises:
        ValueError: the profile does not exist, is not UTF-8 YAML (the file and the line are
            named) or is not a mapping of mappings.
    """
    path = Path(profile)
    if path.suffix not in (".yml", ".yaml"):
        path = Path(notebooks_dir) / "profiles" / f"{profile}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in (Path(notebooks_dir) / "profiles").glob("*.yml"))
        raise ValueError(f"unknown profile {str(profile)!r}: no file {path} "
                         f"(profiles here: {known})")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = "" if mark is None else f", line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        context = getattr(error, "context", None)
        raise ValueError(f"{path}{where}: not valid YAML ({problem}"
                         + (f", {context}" if context else "") + ")") from None
    if not isinstance(content, dict) or not all(
            isinstance(v, dict) or v is None for v in content.values()):
        raise ValueError(f"{path}: a profile maps notebook names to {{parameter: value}}")
    return {str(k): dict(v or {}) for k, v in content.items()}


def writable_folder(path: str | os.PathLike, what: str) -> Path:
    """``path`` as an absolute folder that exists and can be written, or that can be created;
    checked without creating anything.

    Raises:
        ValueError: naming ``what`` and ``path``: a file (or anything but a folder) stands where
            the folder or one of its parents should be, or the nearest existing one cannot be
            written (no permission).

    Example:
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile() as handle:
        ...     writable_folder(Path(handle.name) / "figures", "the figures folder")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: the figures folder .../figures cannot be created: ... is a file, not a folder
    """
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        if not (folder.exists() or folder.is_symlink()):
            continue
        if not folder.is_dir():
            kind = "a file" if folder.is_file() else "not a folder"
            raise ValueError(f"{what} {path} is {kind}, not a folder" if folder == path else
                             f"{what} {path} cannot be created: {folder} is {kind}, not a "
                             "folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{what} {path} cannot be written: no permission to write in "
                             f"{folder}")
        return path
    return path


def find_notebooks(folder: str | os.PathLike, only: Sequence[str] = ()) -> list[Path]:
    """The notebooks of ``folder`` in name order, or only those named in ``only``.

    Raises:
        ValueError: a name in ``only`` is not a notebook of ``folder``.
    """
    found = {p.stem: p for p in sorted(Path(folder).glob("*.ipynb"))}
    unknown = [name for name in only if Path(name).stem not in found]
    if unknown:
        raise ValueError(f"no notebook named {unknown} in {folder}; there are {sorted(found)}")
    if only:
        return [found[Path(name).stem] for name in dict.fromkeys(only)]
    return list(found.values())


def notebook_parameters(notebook: str | os.PathLike, profile: dict, *,
                        figures_dir: str | os.PathLike) -> dict:
    """The parameters ``notebook`` runs with under ``profile``.

    ``defaults`` apply where the notebook declares them, the notebook's own section overrides
    them, and ``out_dir`` becomes ``figures_dir/<notebook>`` when declared.

    Raises:
        ValueError: the notebook's section names a parameter its ``parameters`` cell lacks.
    """
    import papermill

    notebook = Path(notebook)
    declared = papermill.inspect_notebook(str(notebook))
    own = profile.get(notebook.stem, {})
    undeclared = sorted(set(own) - set(declared))
    if undeclared:
        raise ValueError(f"{notebook.name}: the profile sets {undeclared}, which its "
                         f"parameters cell does not declare (it declares {sorted(declared)})")
    chosen = {k: v for k, v in profile.get(DEFAULTS_KEY, {}).items() if k in declared}
    chosen.update(own)
    if "out_dir" in declared:
        chosen["out_dir"] = str(Path(figures_dir).resolve() / notebook.stem)
    return chosen


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def execute(notebook: str | os.PathLike, output: str | os.PathLike, parameters: dict, *,
            timeout: float | None = None, progress: bool = True) -> Outcome:
    """Runs one notebook with papermill in its own folder; never raises for the notebook's
    errors, which come back in the :class:`Outcome`."""
    import papermill

    notebook, output = Path(notebook), Path(output)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, cwd=str(notebook.parent),
            progress_bar={"desc": notebook.stem, "leave": False} if progress else False,
            execution_timeout=timeout)
    except papermill.PapermillExecutionError as error:
        return Outcome(notebook.stem, False, time.perf_counter() - start, output, parameters,
                       cell=error.cell_index, exec_count=error.exec_count, source=error.source,
                       error=f"{error.ename}: {error.evalue}")
    except Exception as error:  # noqa: BLE001  kernel death, timeouts, bad notebooks: report, go on
        return Outcome(notebook.stem, False, time.perf_counter() - start, output, parameters,
                       error=f"{type(error).__name__}: {error}")
    return Outcome(notebook.stem, True, time.perf_counter() - start, output, parameters)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
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


def versions() -> dict[str, str]:
    """Versions of Python and of the packages the results depend on, the platform and the commit."""
    found = {"python": platform.python_version()}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy", "workbench"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    found["platform"] = platform.platform()
    from workbench.experiments import common

    try:
        found["commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=common.project_root(),
            capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found["commit"] = "unknown"
    return found


def _shown(path) -> str:
    """``path`` relative to the project root when it lies inside it: committed reports hold no
    machine paths."""
    from workbench.experiments.common import project_root

    path = Path(path).resolve()
    try:
        return str(path.relative_to(project_root()))
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
    """The text of ``REPRODUCTION.md`` (``only``: the ``--only`` names of a partial run)."""
    failed = [o for o in outcomes if not o.ok]
    command = " ".join([f"--profile {profile}", *(f"--only {name}" for name in only)])
    lines = [
        "# Reproduction report", "",
        (f"Generated by `workbench reproduce {command}` on {date}; "
         f"executed notebooks in `{_shown(run_dir)}`."), "",
        f"Hardware: {hardware()}.", "",
        f"**{len(outcomes) - len(failed)} of {len(outcomes)} notebooks ran**"
        + (f"; failed: {', '.join(o.name for o in failed)}." if failed else "."), "",
        _markdown_table(["notebook", "status", "seconds", "executed copy"],
                        [[o.name, "ok" if o.ok else "FAILED", f"{o.seconds:.1f}",
                          _shown(o.output)] for o in outcomes]), "",
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
            lines += [f"**Failed** {where}:", "", "```", outcome.error, "```", ""]
        results = collect_results(figures_dir / outcome.name)
        lines += [results if results else "_No results written to "
                  f"`figures/{outcome.name}/`._", ""]
    return "\n".join(lines)


@contextlib.contextmanager
def _environment(**defaults: str) -> Iterator[None]:
    """Sets environment variables the kernels inherit, where unset; restores them after."""
    saved = {k: os.environ.get(k) for k in defaults}
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds the options of ``workbench reproduce`` to ``parser``."""
    parser.add_argument("--profile", default="quick",
                        help="quick (a laptop CPU, minutes), paper (the papers' sizes), another "
                             "profile name in notebooks/profiles/, or a path to a YAML file")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this notebook (repeatable), e.g. --only quickstart; its "
                             "report goes to the run folder, figures/REPRODUCTION.md is kept")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder of the executed notebooks and of the run's report (default "
                             "runs/<timestamp>)")
    parser.add_argument("--notebooks", type=Path, default=None,
                        help="folder of the notebooks (default notebooks/ of the project root)")
    parser.add_argument("--figures", type=Path, default=None,
                        help="folder of the figures and of REPRODUCTION.md (default figures/ of "
                             "the project root)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per cell (default: no limit)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no per-cell progress bars")
    return parser


def run(args: argparse.Namespace) -> int:
    """Runs ``workbench reproduce`` with parsed ``args``.

    The run's report goes to its run folder; ``figures/REPRODUCTION.md`` is replaced only when
    every notebook ran (see the module docstring).

    Returns:
        0 when every notebook ran, 1 when any failed, 2 for a bad profile or notebook name or an
        output folder that cannot be written (nothing created).
    """
    from tqdm.auto import tqdm

    from workbench.experiments import common

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = common.project_root()
    run_dir = (args.out or root / "runs" / stamp).resolve()
    figures_dir = (args.figures or root / "figures").resolve()
    notebooks_dir = args.notebooks or root / "notebooks"
    try:
        profile = load_profile(args.profile, notebooks_dir=notebooks_dir)
        notebooks = find_notebooks(notebooks_dir, args.only)
        writable_folder(run_dir, "the run folder (--out)")
        writable_folder(figures_dir, "the figures folder (--figures)")
        for report_path in (run_dir / REPORT, figures_dir / REPORT):
            if report_path.is_dir():
                raise ValueError(f"the report {report_path} is a folder: remove it")
    except ValueError as error:
        print(f"workbench reproduce: {error}", file=sys.stderr)
        return 2
    if not notebooks:
        print(f"workbench reproduce: no notebooks in {notebooks_dir}", file=sys.stderr)
        return 2
    names = {p.stem for p in find_notebooks(notebooks_dir)}
    partial = {p.stem for p in notebooks} != names
    notes = [f"The profile has a section for `{key}`, which is not a notebook here."
             for key in profile if key != DEFAULTS_KEY and key not in names]
    run_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with _environment(WORKBENCH_DATA=str(common.data_root()),
                      WORKBENCH_CACHE=str(common.model_cache())):
        bar = tqdm(notebooks, desc="notebooks", unit="notebook", disable=not args.progress)
        for notebook in bar:
            bar.set_postfix_str(notebook.stem)
            output = run_dir / notebook.name
            try:
                parameters = notebook_parameters(notebook, profile, figures_dir=figures_dir)
            except ValueError as error:
                outcome = Outcome(notebook.stem, False, 0.0, output,
                                  profile.get(notebook.stem, {}), error=f"ValueError: {error}")
            else:
                outcome = execute(notebook, output, parameters, timeout=args.timeout,
                                  progress=args.progress)
            outcomes.append(outcome)
            status = "ok" if outcome.ok else (
                f"FAILED in cell {outcome.cell}: {outcome.error}" if outcome.cell is not None
                else f"FAILED: {outcome.error}")
            tqdm.write(f"{notebook.stem}: {status} ({outcome.seconds:.1f} s)", file=sys.stderr)
    report = render_report(
        outcomes, profile=str(args.profile), figures_dir=figures_dir, run_dir=run_dir,
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        versions=versions(), notes=notes, only=[p.stem for p in notebooks] if partial else ())
    failed = [o.name for o in outcomes if not o.ok]
    written = [run_dir / REPORT] + ([] if failed or partial else [figures_dir / REPORT])
    for path in written:
        with files.atomic_write(path, "w") as handle:
            handle.write(report)
    kept = ("" if len(written) == 2 else
            f" ({figures_dir / REPORT} kept as it was: "
            + ("a failed run" if failed else "a partial run (--only)") + ")")
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} notebooks ran"
          + (f"; failed: {', '.join(failed)}" if failed else "")
          + f". Report: {' and '.join(map(str, written))}{kept}; executed notebooks: {run_dir}",
          file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``workbench reproduce [--profile quick|paper] [--only NAME] [--out DIR]``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="workbench reproduce",
        description="Run every notebook with papermill and write the reproduction report "
                    "(figures/REPRODUCTION.md when every notebook ran)."))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
