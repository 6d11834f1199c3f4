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

A run writes only into its run folder, ``runs/<timestamp>/`` (ignored by git; ``--out``
chooses another): the executed notebooks, each notebook's figures and tables in
``figures/<notebook>/`` below it (the ``out_dir`` every notebook that declares it gets, as an
absolute path), and the report ``REPRODUCTION.md``. A failing notebook is reported with its cell
and error, and the others still run. The report collects, for each notebook that ran, what it
wrote in this run:

- ``results.md``: the notebook's short results table (the last step of every notebook), included
  verbatim;
- every ``*.csv`` with a ``paper`` column: a reproduced table, the paper's value next to ours
  (columns ``paper``, ``ours`` and, over several seeds, ``spread``), rendered as Markdown with
  ``ours - paper`` added where both are numbers;

together with the run's parameters, the versions of Python, JAX, Flax and Optax, the date and the
git commit. A failed notebook's section gives its error and no tables: a report shows only what
its own run produced.

The committed figures change only on purpose: ``--update-figures`` copies the figures of every
notebook that ran into ``figures/`` (the quick profile's) or ``figures/<profile>/`` (any other
profile), ``--figures DIR`` into ``DIR``. The report replaces the one there only when every
notebook ran, all of them (no ``--only`` subset): a partial run (its header would claim the
other notebooks' sections) or a failed one (it would replace the last good report with a
failure) leaves it as it was, and the command says where its own report is.

The kernels' own output (ipykernel's log lines, not the notebooks' outputs, which are in the
executed copies) goes to ``<notebook>.kernel.log`` in the run folder; a failed notebook's section
quotes its end. Kernels talk to papermill over local sockets (IPC) where the platform has them.

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
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

import yaml

from workbench import files

__all__ = [
    "PROFILES",
    "Outcome",
    "add_arguments",
    "collect_results",
    "execute",
    "find_notebooks",
    "headlines",
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


def _kernel_manager(log: Path):
    """A kernel manager class whose kernels write their own output (ipykernel's log lines, such as
    "KeyboardInterrupt caught in kernel" when it is stopped after the last cell) to ``log``."""
    from jupyter_client.manager import AsyncKernelManager

    class LoggedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            with log.open("ab") as handle:  # the kernel process keeps its own copy
                kw.setdefault("stdout", handle)
                kw.setdefault("stderr", handle)
                return await super().start_kernel(**kw)

    return LoggedKernelManager


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def execute(notebook: str | os.PathLike, output: str | os.PathLike, parameters: dict, *,
            timeout: float | None = None, progress: bool = True) -> Outcome:
    """Runs one notebook with papermill in its own folder; never raises for the notebook's
    errors, which come back in the :class:`Outcome`.

    The kernel's own output goes to ``<output stem>.kernel.log`` beside ``output`` (quoted in
    the error of a notebook that fails without a cell error, such as a kernel that died), and
    the kernel is reached over IPC sockets where the platform has them: jupyter_client's
    ``KernelManager.transport = "ipc"``, so ipykernel does not warn about unencrypted TCP.
    """
    import papermill
    from traitlets.config import Config

    notebook, output = Path(notebook), Path(output)
    log = output.with_suffix(".kernel.log")
    log.unlink(missing_ok=True)
    sockets = Path(tempfile.mkdtemp(prefix="wb-kernel-"))
    config = Config()
    if os.name == "posix" and len(str(sockets)) < 80:  # Unix socket paths hold about 100 bytes
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(sockets / "kernel")
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, cwd=str(notebook.parent),
            progress_bar={"desc": notebook.stem, "leave": False} if progress else False,
            execution_timeout=timeout, kernel_manager_class=_kernel_manager(log), config=config)
    except papermill.PapermillExecutionError as error:
        return Outcome(notebook.stem, False, time.perf_counter() - start, output, parameters,
                       cell=error.cell_index, exec_count=error.exec_count, source=error.source,
                       error=f"{error.ename}: {error.evalue}")
    except Exception as error:  # noqa: BLE001  kernel death, timeouts, bad notebooks: report, go on
        tail = _tail(log)
        return Outcome(notebook.stem, False, time.perf_counter() - start, output, parameters,
                       error=f"{type(error).__name__}: {error}"
                       + (f"\n\nThe kernel's last output ({log.name}):\n{tail}" if tail else ""))
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return Outcome(notebook.stem, True, time.perf_counter() - start, output, parameters)


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
    (its first column, and its ``setting``), then its measured value (the ``ours``,
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
        about = row[columns[0]] + (f" ({row['setting']})" if row.get("setting") else "")
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
    """The text of ``REPRODUCTION.md`` (``only``: the ``--only`` names of a partial run).

    ``figures_dir`` is the run's own figures folder: tables come from there, and only for the
    notebooks that ran; a failed notebook's section gives its error instead.
    """
    failed = [o for o in outcomes if not o.ok]
    command = " ".join([f"--profile {profile}", *(f"--only {name}" for name in only)])
    lines = [
        "# Reproduction report", "",
        (f"Generated by `workbench reproduce {command}` on {date}; "
         f"executed notebooks in `{_shown(run_dir)}`."), "",
    ]
    if profile in PROFILE_NOTES:
        lines += [f"**{PROFILE_NOTES[profile]}**", ""]
    lines += [
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
            lines += [f"**Failed** {where}:", "", "```", outcome.error, "```", "",
                      "_No tables: this notebook did not finish in this run._", ""]
            continue
        results = collect_results(figures_dir / outcome.name)
        lines += [results if results else "_No results written to "
                  f"`{_shown(figures_dir / outcome.name)}/`._", ""]
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


def add_arguments(parser: argparse.ArgumentParser, *,
                  profile: bool = True) -> argparse.ArgumentParser:
    """Adds the options of ``workbench reproduce`` to ``parser`` (``profile=False``: all but
    ``--profile``, for ``workbench demo``). Imports nothing heavy: help stays fast."""
    if profile:
        parser.add_argument(
            "--profile", default="quick", metavar="PROFILE",
            help="quick (reduced sizes for a laptop CPU, a few minutes), paper (the papers' "
                 "sizes; hours, plan on a GPU), ci (toy sizes for the tests), another name in "
                 "notebooks/profiles/, or a path to a YAML file (default: quick)")
        parser.add_argument(
            "--only", action="append", default=[], metavar="NAME",
            help="run only this notebook: quickstart, explorer, deepfault, deepxplore or "
                 "fuzzing (repeatable). The report of a partial run stays in its run folder")
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR",
        help="the run folder: executed notebooks, their figures and tables, the report "
             "(default: runs/<timestamp>/ of the project, which git ignores)")
    parser.add_argument(
        "--update-figures", action="store_true",
        help="also copy the figures of every notebook that ran into the committed figures/ "
             "(figures/<profile>/ for a profile other than quick), and the report there after "
             "a whole run in which every notebook ran (default: leave figures/ alone)")
    parser.add_argument(
        "--figures", type=Path, default=None, metavar="DIR",
        help="like --update-figures, into DIR instead")
    parser.add_argument(
        "--notebooks", type=Path, default=None, metavar="DIR",
        help="folder of the notebooks (default: notebooks/ of the project)")
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="SECONDS",
        help="seconds allowed per cell (default: no limit)")
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false",
        help="no progress bars (the default shows one per notebook's cells)")
    return parser


def _publish(source: Path, target: Path) -> list[str]:
    """Copies the files of ``source`` into ``target`` (replacing those of the same name);
    returns the names of the files ``target`` holds that ``source`` did not produce."""
    produced = {p.relative_to(source) for p in source.rglob("*") if p.is_file()}
    for relative in sorted(produced):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        with files.atomic_write(target / relative, "wb") as handle:
            handle.write((source / relative).read_bytes())
    return sorted(str(p.relative_to(target)) for p in target.rglob("*")
                  if p.is_file() and p.relative_to(target) not in produced)


def _print_summary(outcomes: Sequence[Outcome], *, profile: str, figures_dir: Path) -> None:
    """The headline numbers of every notebook, on stdout."""
    print(f"\nHeadline numbers ({PROFILE_NOTES.get(profile, f'profile {profile}').split(':')[0]}"
          + ("; reduced sizes, not comparable with the papers" if profile == "quick" else "")
          + "):")
    for outcome in outcomes:
        if not outcome.ok:
            where = "" if outcome.cell is None else f" in cell {outcome.cell}"
            print(f"  {outcome.name}: FAILED{where} ({outcome.seconds:.0f} s): "
                  f"{_clip(_first_line(outcome.error), 90)}")
            continue
        print(f"  {outcome.name} ({outcome.seconds:.0f} s)")
        for line in headlines(figures_dir / outcome.name) or ["(no results table)"]:
            print(f"    {line}")


def run(args: argparse.Namespace) -> int:
    """Runs ``workbench reproduce`` with parsed ``args``.

    Everything goes to the run folder; the committed figures and report change only with
    ``--update-figures`` or ``--figures`` (see the module docstring). Ends by printing each
    notebook's headline numbers and where the report and the figures are.

    Returns:
        0 when every notebook ran, 1 when any failed, 2 for a bad profile or notebook name or an
        output folder that cannot be written (nothing created).
    """
    from tqdm.auto import tqdm

    from workbench.experiments import common

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    root = common.project_root()
    run_dir = (args.out or root / "runs" / stamp).resolve()
    figures_dir = run_dir / "figures"
    profile_name = str(getattr(args, "profile", "quick"))
    target = args.figures
    if target is None and args.update_figures:
        target = root / "figures" / ("" if profile_name == "quick" else Path(profile_name).stem)
    target = None if target is None else target.resolve()
    notebooks_dir = args.notebooks or root / "notebooks"
    only = getattr(args, "only", [])
    try:
        profile = load_profile(profile_name, notebooks_dir=notebooks_dir)
        notebooks = find_notebooks(notebooks_dir, only)
        writable_folder(run_dir, "the run folder (--out)")
        if target is not None:
            writable_folder(target, "the figures folder (--figures)")
        for report_path in (run_dir / REPORT, *([] if target is None else [target / REPORT])):
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
    outcomes = []
    with _environment(WORKBENCH_DATA=str(common.data_root()),
                      WORKBENCH_CACHE=str(common.model_cache())):
        bar = tqdm(notebooks, desc="notebooks", unit="notebook", disable=not args.progress)
        for notebook in bar:
            bar.set_postfix_str(notebook.stem)
            output = run_dir / notebook.name
            shutil.rmtree(figures_dir / notebook.stem, ignore_errors=True)  # a reused --out
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
        outcomes, profile=profile_name, figures_dir=figures_dir, run_dir=run_dir,
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        versions=versions(), notes=notes, only=[p.stem for p in notebooks] if partial else ())
    failed = [o.name for o in outcomes if not o.ok]
    with files.atomic_write(run_dir / REPORT, "w") as handle:
        handle.write(report)
    _print_summary(outcomes, profile=profile_name, figures_dir=figures_dir)
    print(f"\nReport: {_shown(run_dir / REPORT)}\nFigures and tables: {_shown(figures_dir)}/"
          f"\nExecuted notebooks: {_shown(run_dir)}/")
    if target is not None:
        _update_figures(outcomes, figures_dir, target, report,
                        whole=not failed and not partial, partial=partial)
    print(f"{len(outcomes) - len(failed)}/{len(outcomes)} notebooks ran"
          + (f"; failed: {', '.join(failed)}" if failed else "") + ".", file=sys.stderr)
    return 1 if failed else 0


def _update_figures(outcomes: Sequence[Outcome], figures_dir: Path, target: Path, report: str,
                    *, whole: bool, partial: bool) -> None:
    """Copies the figures of the notebooks that ran into ``target``, and the report after a whole
    run in which every notebook ran; says what it left as it was."""
    for outcome in outcomes:
        if not outcome.ok:
            print(f"{_shown(target / outcome.name)}/ kept as it was: {outcome.name} failed")
            continue
        source = figures_dir / outcome.name
        if not source.is_dir():
            continue
        older = _publish(source, target / outcome.name)
        print(f"Updated {_shown(target / outcome.name)}/"
              + (f" (not produced by this run, left as they were: {', '.join(older)})"
                 if older else ""))
    if whole:
        with files.atomic_write(target / REPORT, "w") as handle:
            handle.write(report)
        print(f"Updated {_shown(target / REPORT)}")
    else:
        print(f"{_shown(target / REPORT)} kept as it was: "
              + ("a partial run (--only)" if partial else "a failed run"))


def main(argv: Sequence[str] | None = None) -> int:
    """``workbench reproduce [--profile quick|paper] [--only NAME] [--out DIR]``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="workbench reproduce",
        description="Run every notebook with papermill and write the reproduction report into "
                    "the run folder."))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
