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
``out_dir`` gets ``<run folder>/figures/<notebook>/`` as an absolute path.

Folders follow the one path convention of :mod:`workbench.experiments.common`: ``notebooks/``,
``figures/``, ``runs/`` and the data root are under the project root
(:func:`workbench.files.project_root`), so the command works from an installed package too.

A run writes only into its run folder, ``runs/<timestamp>/`` (ignored by git; ``--out``
chooses another): the executed notebooks, their figures and tables in ``figures/<notebook>/``
below it, and the report ``REPRODUCTION.md`` (:mod:`workbench.report`: only what this run
produced). A failing notebook is reported with its cell and error, and the others still run.
The run ends by printing every notebook's headline numbers and where everything is. The
kernels share JAX's persistent compilation cache (``$JAX_COMPILATION_CACHE_DIR``, default
``jax/`` in :func:`workbench.files.cache_folder`), so a second run compiles little.

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
import datetime
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from workbench import files
from workbench.report import Outcome, render_report, shown, summary, versions

__all__ = [
    "Outcome",
    "add_arguments",
    "execute",
    "find_notebooks",
    "load_profile",
    "main",
    "notebook_parameters",
    "run",
    "writable_folder",
]

DEFAULTS_KEY = "defaults"
REPORT = "REPRODUCTION.md"
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
        found = sorted(p.stem for p in (files.project_root() / "notebooks").glob("*.ipynb"))
        parser.add_argument(
            "--only", action="append", default=[], metavar="NAME",
            help="run only this notebook (repeatable): "
                 + (", ".join(found) if found else "a name in notebooks/, e.g. quickstart")
                 + ". The report of a partial run stays in its run folder")
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
    # JAX's persistent compilation cache: a later run (and a notebook compiling what an earlier
    # one did) loads the compiled programs instead of compiling them again.
    with _environment(WORKBENCH_DATA=str(common.data_root()),
                      WORKBENCH_CACHE=str(common.model_cache()),
                      JAX_COMPILATION_CACHE_DIR=str(files.cache_folder() / "jax"),
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.1"):
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
    print("\n" + "\n".join(summary(outcomes, profile=profile_name, figures_dir=figures_dir)))
    print(f"\nReport: {shown(run_dir / REPORT)}\nFigures and tables: {shown(figures_dir)}/"
          f"\nExecuted notebooks: {shown(run_dir)}/")
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
            print(f"{shown(target / outcome.name)}/ kept as it was: {outcome.name} failed")
            continue
        source = figures_dir / outcome.name
        if not source.is_dir():
            continue
        older = _publish(source, target / outcome.name)
        print(f"Updated {shown(target / outcome.name)}/"
              + (f" (not produced by this run, left as they were: {', '.join(older)})"
                 if older else ""))
    if whole:
        with files.atomic_write(target / REPORT, "w") as handle:
            handle.write(report)
        print(f"Updated {shown(target / REPORT)}")
    else:
        print(f"{shown(target / REPORT)} kept as it was: "
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
