"""Files: atomic writes, and the folders where data and checkpoints live by default.

Downloads, checkpoints and result tables are written through :func:`atomic_write`: the bytes
go to a temporary file in the destination's own folder (so the final rename never crosses a
file system), which is flushed to disk and then renamed over the destination with
``os.replace``, atomic on POSIX and Windows. If anything fails before the rename (an exception
in the caller's ``with`` block, a full disk, an interrupt), the temporary file is removed and
an existing file at the destination is left as it was.

Default folders: :func:`project_root` (the checkout a relative data root is resolved against)
and :func:`cache_folder` (one folder per user for what can be fetched or trained again, such as
model checkpoints).

References:
    The POSIX ``rename`` specification (IEEE Std 1003.1, "rename": the destination names the old
    or the new file at every moment) and Python's ``os.replace`` documentation.
"""

import contextlib
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_path", "atomic_write", "cache_folder", "project_root"]

_MODES = ("wb", "w")
_MARKERS = ("pyproject.toml", ".git")


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding a
    ``pyproject.toml`` or ``.git``; ``start`` itself where there is none.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     (Path(folder) / "pyproject.toml").touch()
        ...     (Path(folder) / "notebooks").mkdir()
        ...     project_root(Path(folder) / "notebooks") == Path(folder).resolve()
        True
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in _MARKERS):
            return folder
    return here


def cache_folder(platform: str | None = None) -> Path:
    """This user's cache folder for workbench (not created): ``$XDG_CACHE_HOME/workbench``,
    else ``~/.cache/workbench`` on Linux and other Unix systems; ``~/Library/Caches/workbench``
    on macOS; ``%LOCALAPPDATA%\\workbench\\Cache`` on Windows (the platforms' conventions: the
    XDG Base Directory Specification, Apple's File System Programming Guide, Windows' Known
    Folders). ``platform`` defaults to ``sys.platform``.

    Example:
        >>> cache_folder("linux").name
        'workbench'
    """
    platform = sys.platform if platform is None else platform
    home = Path.home()
    if platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        return (Path(local) if local else home / "AppData" / "Local") / "workbench" / "Cache"
    if platform == "darwin":
        return home / "Library" / "Caches" / "workbench"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"
    return base / "workbench"


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """Opens a new, unique ``.<name>.<random>.part`` file in ``folder`` for writing.

    Created with mode 0o666 less the umask, as ``open`` would create the destination itself
    (``tempfile.mkstemp`` makes files readable by their owner only).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = folder / f".{name}.{secrets.token_hex(6)}.part"
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {folder / name}")


def _sync_folder(folder: Path) -> None:
    """Flushes the folder entry of a renamed file to disk where the platform allows it."""
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows: folders cannot be opened; NTFS journals the rename itself
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file name next to ``path`` that becomes ``path`` once the block succeeds.

    For writers that want a file name rather than a file object (``h5py.File``, a library's
    ``save(filename)``); the writer must write to exactly the name given (``numpy.save``, for
    one, appends ``.npy`` to a name without it). On leaving the block the file is ``fsync``-ed
    and renamed over ``path``; an exception removes it, leaves any existing ``path`` untouched
    and propagates. The folder is created if needed.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_path(folder / "x.bin") as temporary:
        ...     _ = temporary.write_bytes(b"x")
        >>> sorted(p.name for p in folder.iterdir())
        ['x.bin']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = _create_temporary(path.parent, path.name)
    os.close(handle)
    replaced = False
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
        replaced = True
    finally:
        if not replaced:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
    with contextlib.suppress(OSError):  # some file systems cannot sync a folder; the file is in
        _sync_folder(path.parent)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, encoding: str = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """Opens ``path`` for writing so that it appears only once the ``with`` block succeeds.

    The file object writes to a temporary file next to ``path`` (:func:`atomic_path`); leaving
    the block flushes it, ``fsync``-s it and renames it over ``path``. An exception inside the
    block (or while writing) removes the temporary file, leaves any existing ``path`` untouched
    and propagates. The folder is created if needed.

    Args:
        path: the destination file.
        mode: ``"wb"`` (bytes) or ``"w"`` (text).
        encoding: the text encoding (text mode only).
        newline: as for ``open`` (text mode only; ``""`` for the ``csv`` module).

    Yields:
        The open file object.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> with atomic_write(folder / "hello.txt", "w") as out:
        ...     _ = out.write("hello")
        >>> (folder / "hello.txt").read_text(), sorted(p.name for p in folder.iterdir())
        ('hello', ['hello.txt'])
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    text = {} if mode == "wb" else {"encoding": encoding, "newline": newline}
    with atomic_path(path) as temporary, open(temporary, mode, **text) as out:
        yield out
