"""MNIST and CIFAR-10: loading from the official files, validation, checksummed downloads.

The root folder is, in order: the ``root`` argument, the ``WORKBENCH_DATA`` environment
variable, then ``data/`` in the project root (:func:`data_root`). :func:`ensure` verifies the
files there and downloads what is missing or corrupt (URLs and digests: ``workbench.sources``;
``$WORKBENCH_MIRROR`` points every download at a mirror). Below the root the files live as the
official archives unpack them::

    <root>/mnist/train-images-idx3-ubyte.gz     (or without .gz; t10k-*, *-labels-* likewise)
    <root>/cifar10/cifar-10-batches-bin/data_batch_1.bin ... test_batch.bin, batches.meta.txt
    <root>/cifar10/cifar-10-binary.tar.gz       (extracted on first use, safely)
    <root>/released/deepxplore/Model1.h5, Model2.h5, Model3.h5
    <root>/released/deepfault/mnist_test_model_<L>_<N>_<act>.json and .h5

the last two being the models the DeepXplore and DeepFault authors released, as published
(``RELEASED_FILES``, with their SHA-256).

Nothing here unpickles: CIFAR-10 is read from its binary version only, whose records are
1 label byte followed by 3,072 pixel bytes (red, green, blue planes, row-major).

References:
    LeCun et al., "The MNIST database of handwritten digits" (IDX format description).
    Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009 (CIFAR-10).
"""

import gzip
import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from workbench import files, sources
from workbench.sources import RELEASED_FILES, RELEASED_SOURCES

__all__ = [
    "DATASETS",
    "DOWNLOADS",
    "RELEASED_FILES",
    "RELEASED_SOURCES",
    "DataError",
    "Dataset",
    "check",
    "data_root",
    "download",
    "ensure",
    "load",
    "released_file",
]

MNIST_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_CIFAR_DIR = "cifar-10-batches-bin"
_CIFAR_RECORD = 1 + 32 * 32 * 3
_CIFAR_PER_FILE = 10_000
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_SPLIT_COUNT = {("mnist", "train"): 60_000, ("mnist", "test"): 10_000,
                ("cifar10", "train"): 50_000, ("cifar10", "test"): 10_000}

DATASETS = ("mnist", "cifar10")
DOWNLOADS = (*DATASETS, "released")  # what download and check take: the datasets, the models


class DataError(ValueError):
    """A data file is missing, truncated, corrupt, or fails its checksum."""


class Dataset(NamedTuple):
    """One split of a dataset, held in host memory."""

    images: np.ndarray  # shape=(n, height, width, channels), dtype=float32, values in [0, 1]
    labels: np.ndarray  # shape=(n,), dtype=int32
    class_names: tuple[str, ...]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$WORKBENCH_DATA``, else ``data/`` in the project root
    (:func:`workbench.files.project_root`: the checkout, from any folder in it, ``notebooks/``
    included); a relative ``$WORKBENCH_DATA`` is under the project root too."""
    if root is not None:
        return Path(root)
    path = Path(os.environ.get("WORKBENCH_DATA") or "data")
    return path if path.is_absolute() else files.project_root() / path


def _check_name(name: str, split: str | None = None) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    if split is not None and split not in _SPLIT_PREFIX:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")


def load(name: str, split: str, *, root: str | os.PathLike | None = None) -> Dataset:
    """Loads one split of MNIST or CIFAR-10 from the official files under the data root.

    Args:
        name: ``"mnist"`` or ``"cifar10"``.
        split: ``"train"`` or ``"test"``.
        root: the data folder; defaults to ``$WORKBENCH_DATA``, then ``./data``.

    Returns:
        A :class:`Dataset` with NHWC float32 images in [0, 1] (MNIST 28x28x1, CIFAR-10 32x32x3),
        int32 labels and the class names.

    Raises:
        DataError: a file is missing (the message says which and how to get it), truncated or
            corrupt (the message names the file and the problem).

    Example:
        >>> train = load("mnist", "train")  # doctest: +SKIP
        >>> train.images.shape, train.labels[:3].tolist()  # doctest: +SKIP
        ((60000, 28, 28, 1), [5, 0, 4])
    """
    _check_name(name, split)
    base = data_root(root)
    _folder(base, "the data root")
    if name == "mnist":
        images, labels = _load_mnist(base / "mnist", split)
        classes = MNIST_CLASSES
    else:
        images, labels = _load_cifar(base / "cifar10", split)
        classes = _cifar_classes(base / "cifar10")
    expected = _SPLIT_COUNT[(name, split)]
    if len(labels) != expected:
        raise DataError(f"{name} {split}: found {len(labels)} examples, expected {expected}")
    return Dataset(_frozen(images), _frozen(labels), classes)


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only copy of ``array`` starting on a 64-byte boundary. XLA's CPU client then takes
    each batch of it without copying (an MNIST batch of 1,000: 0.34 -> 0.03 ms a
    ``device_put``, a third of an MLP's forward pass); read-only, because such a batch shares
    the array's memory while a jitted call may still be reading it."""
    raw = np.empty(array.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start:start + array.nbytes].view(array.dtype).reshape(array.shape)
    out[...] = array
    out.flags.writeable = False
    return out


# ------------------------------------------------------------------------------ files, folders
def _not_a_directory(path: Path) -> None:
    """A directory where a file should be is named as one (not reported as missing)."""
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a file: remove or rename it and put the "
                        f"file itself there")


def _folder(path: Path, what: str) -> None:
    """A file where a folder should be is named as one."""
    if path.exists() and not path.is_dir():
        raise DataError(f"{what} {path} is a file, not a folder")


def _read(path: Path) -> bytes:
    _not_a_directory(path)
    try:
        return path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from None


# --------------------------------------------------------------------------------------- MNIST
def _find(folder: Path, stem: str) -> Path:
    _folder(folder, "the MNIST folder")
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        _not_a_directory(candidate)
    raise DataError(
        f"missing {folder / stem}(.gz). Run `workbench data download mnist` on a machine with "
        f"internet, or put the four official MNIST IDX files "
        f"({', '.join(s + '.gz' for s in sources.MNIST_FILES)}) into {folder}, or point "
        f"WORKBENCH_DATA at a folder that holds mnist/ with them."
    )


def _read_maybe_gzip(path: Path) -> bytes:
    raw = _read(path)
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: corrupt or truncated gzip stream ({_reason(error)}); "
                            f"delete it and download it again") from None
    return raw


def _reason(error: BaseException) -> str:
    """An exception as text, never empty (``EOFError()`` has no message)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def parse_idx(raw: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parses an unsigned-byte IDX file (magic ``0x0000 08 nd``) into a uint8 array.

    Raises:
        DataError: wrong magic number, wrong data type, or a payload whose size does not match
            the dimensions in the header (a truncated or padded file).
    """
    if len(raw) == 0:
        raise DataError(f"{source}: empty file (0 bytes), not an IDX file: a truncated "
                        f"download? Delete it and download it again")
    if len(raw) < 4:
        raise DataError(f"{source}: {len(raw)} bytes, too short for an IDX header (truncated "
                        f"file)")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{source}: not an IDX file (bad magic number 0x{raw[:4].hex()}, "
                        f"expected 0x000008nn)")
    if raw[2] != 0x08:
        raise DataError(f"{source}: IDX data type 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{source}: IDX header truncated")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    size = int(np.prod(dims))
    if len(raw) - header != size:
        raise DataError(
            f"{source}: IDX payload is {len(raw) - header} bytes, header {dims} says {size} "
            f"(truncated or corrupt file)"
        )
    return np.frombuffer(raw, np.uint8, size, header).reshape(dims)


def _load_mnist(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    prefix = _SPLIT_PREFIX[split]
    image_path = _find(folder, f"{prefix}-images-idx3-ubyte")
    label_path = _find(folder, f"{prefix}-labels-idx1-ubyte")
    images = parse_idx(_read_maybe_gzip(image_path), source=str(image_path))
    labels = parse_idx(_read_maybe_gzip(label_path), source=str(label_path))
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{image_path}: expected images of 28x28, got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{label_path}: expected a 1-D label file, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{image_path} has {len(images)} images but {label_path} has "
                        f"{len(labels)} labels")
    _check_labels(labels, label_path)
    return (images[..., None].astype(np.float32) / 255.0), labels.astype(np.int32)


def _check_labels(labels: np.ndarray, source: Path) -> None:
    if labels.size and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataError(f"{source}: label {int(labels[bad])} at index {bad} is outside 0-9")


# ------------------------------------------------------------------------------------ CIFAR-10
def _cifar_folder(folder: Path) -> Path:
    _folder(folder, "the CIFAR-10 folder")
    batches = folder / _CIFAR_DIR
    if batches.is_dir():
        return batches
    _folder(batches, "the CIFAR-10 binary folder")
    archive = folder / sources.CIFAR_ARCHIVE
    _not_a_directory(archive)
    if archive.is_file():
        extract_tar(archive, folder)
        return batches
    raise DataError(
        f"missing {batches}. Run `workbench data download cifar10` on a machine with internet, "
        f"or put the official binary archive {sources.CIFAR_ARCHIVE} (or its extracted folder "
        f"{_CIFAR_DIR}/) into {folder}. The pickled 'python version' is not read, on purpose."
    )


def _cifar_classes(folder: Path) -> tuple[str, ...]:
    meta = folder / _CIFAR_DIR / "batches.meta.txt"
    if meta.exists():
        try:
            text = _read(meta).decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{meta}: not UTF-8 text ({error.reason} at byte {error.start}): "
                            f"a corrupt file; delete it (the class names then default to the "
                            f"official ones)") from None
        names = tuple(line.strip() for line in text.splitlines() if line.strip())
        if len(names) == 10:
            return names
    return CIFAR10_CLASSES


def parse_cifar_binary(raw: bytes, *, source: str = "<bytes>") -> tuple[np.ndarray, np.ndarray]:
    """Parses CIFAR-10 binary records into uint8 NHWC images and labels.

    Raises:
        DataError: a size that is not a whole number of 3,073-byte records, or a label above 9.
    """
    if len(raw) == 0 or len(raw) % _CIFAR_RECORD:
        raise DataError(f"{source}: {len(raw)} bytes is not a whole number of "
                        f"{_CIFAR_RECORD}-byte CIFAR-10 records (truncated or corrupt file)")
    records = np.frombuffer(raw, np.uint8).reshape(-1, _CIFAR_RECORD)
    labels = records[:, 0]
    _check_labels(labels, Path(source))
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def _load_cifar(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    batches = _cifar_folder(folder)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else ["test_batch.bin"]
    images, labels = [], []
    for file_name in names:
        path = batches / file_name
        _not_a_directory(path)
        if not path.is_file():
            raise DataError(f"missing {path}: the CIFAR-10 binary folder is incomplete")
        batch_images, batch_labels = parse_cifar_binary(_read(path), source=str(path))
        if len(batch_labels) != _CIFAR_PER_FILE:
            raise DataError(f"{path}: {len(batch_labels)} records, expected {_CIFAR_PER_FILE}")
        images.append(batch_images)
        labels.append(batch_labels)
    images = np.concatenate(images).astype(np.float32) / 255.0
    return images, np.concatenate(labels).astype(np.int32)


def extract_tar(archive: Path, destination: Path) -> None:
    """Extracts a tar archive of regular files and folders only, refusing any member that would
    land outside ``destination`` (absolute paths, ``..``, links, devices).

    The archive is unpacked into a temporary folder first and moved into place, so a failure
    leaves nothing behind. A gzip-compressed archive is read to its end first, so a stream
    corrupted anywhere fails its CRC check before a single member is extracted.

    Raises:
        DataError: the archive is corrupt or truncated, or holds a member it may not (the
            message names the archive and the member).
    """
    archive, destination = Path(archive), Path(destination)
    _not_a_directory(archive)
    _check_gzip(archive)
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=destination, prefix=".extract-") as staging:
        staging_path = Path(staging).resolve()
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()
                for member in members:
                    target = (staging_path / member.name).resolve()
                    if not (member.isfile() or member.isdir()):
                        raise DataError(f"{archive}: member {member.name!r} is not a regular file")
                    if staging_path not in target.parents and target != staging_path:
                        raise DataError(f"{archive}: member {member.name!r} escapes its folder")
                tar.extractall(staging_path, members=members, filter="data")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
            raise DataError(f"{archive}: corrupt or truncated archive ({_reason(error)})"
                            ) from None
        for child in staging_path.iterdir():
            target = destination / child.name
            if not target.exists():
                child.rename(target)


def _check_gzip(path: Path) -> None:
    """Reads a gzip file to its end (which checks its CRC and length); other files pass."""
    try:
        with open(path, "rb") as stream:
            if stream.read(2) != b"\x1f\x8b":
                return
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 22):
                pass
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: corrupt or truncated gzip stream ({_reason(error)}); delete "
                        f"it and download it again") from None


# ----------------------------------------------------------------------------------- downloads
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_CIFAR_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6)) + ("test_batch.bin",)


class _File(NamedTuple):
    """A file a download provides: its place under the data root, its URL, its published
    SHA-256 and, for MNIST, that of its decompressed content."""

    relative: str
    url: str
    sha256: str
    content: str | None = None


def _source(relative: str, official: str) -> str:
    """``official``, or ``$WORKBENCH_MIRROR/<relative>`` when a mirror is set: any folder laid
    out like a data root, served over HTTP(S) or named by a ``file://`` URL."""
    mirror = os.environ.get("WORKBENCH_MIRROR")
    return f"{mirror.rstrip('/')}/{relative}" if mirror else official


def _files(name: str) -> list[_File]:
    if name == "mnist":
        return [_File(f"mnist/{stem}.gz",
                      _source(f"mnist/{stem}.gz", f"{sources.MNIST_URL}{stem}.gz"),
                      digest, sources.MNIST_CONTENT[stem])
                for stem, digest in sources.MNIST_FILES.items()]
    if name == "cifar10":
        relative = f"cifar10/{sources.CIFAR_ARCHIVE}"
        url = _source(relative, sources.CIFAR_URL + sources.CIFAR_ARCHIVE)
        return [_File(relative, url, sources.CIFAR_SHA256)]
    return [_File(f"released/{r}", _source(f"released/{r}", _released_url(r)), digest)
            for r, digest in RELEASED_FILES.items()]


def _verify(path: Path, item: _File) -> str | None:
    """``None`` when ``path`` holds the published file (for MNIST: or its content, gzipped or
    not); else what is wrong with it."""
    digest = _sha256(path)
    if digest in (item.sha256, item.content):
        return None
    if item.content is not None:
        try:
            with gzip.open(path) as stream:
                if hashlib.file_digest(stream, "sha256").hexdigest() == item.content:
                    return None
        except (OSError, EOFError, zlib.error):
            pass
    return (f"SHA-256 {digest} does not match the published one ({path.stat().st_size:,} bytes: "
            f"truncated, corrupt or another file)")


def _survey(name: str, base: Path) -> tuple[list[tuple[_File, str]], list[str]]:
    """What a download of ``name`` must fetch, each file with why (missing, or what is wrong
    with the one there), and the problems a download cannot mend, each with what to do."""
    fetch, stuck = [], []
    batches = base / "cifar10" / _CIFAR_DIR
    if name == "cifar10" and batches.is_dir():  # extracted: the archive's digest cannot apply
        size = _CIFAR_RECORD * _CIFAR_PER_FILE
        bad = [f for f in _CIFAR_BATCHES
               if not (batches / f).is_file() or (batches / f).stat().st_size != size]
        if bad:
            stuck.append(f"{batches}: {', '.join(bad)} missing or not {size:,} bytes; delete "
                         f"the folder and run `workbench data download cifar10`")
        return fetch, stuck
    for item in _files(name):
        path = base / item.relative
        _not_a_directory(path)
        plain = path.with_suffix("") if item.content else None  # loaded before <stem>.gz
        if plain is not None and plain.is_file():
            if problem := _verify(plain, item):
                stuck.append(f"{plain}: {problem}; delete it (it is read before {path.name}) "
                             f"and run `workbench data download {name}`")
        elif not path.is_file():
            fetch.append((item, "missing"))
        elif problem := _verify(path, item):
            fetch.append((item, f"corrupt, to be replaced: {problem}"))
    return fetch, stuck


class _Unreachable(DataError):
    """The server cannot be reached: offline, or behind a firewall."""


def _fetch(item: _File, path: Path, *, progress: bool) -> None:
    """Downloads ``item`` to ``path`` with a progress bar, through a temporary file
    (:func:`workbench.files.atomic_path`) renamed into place, over a corrupt file there, only
    once :func:`_verify` passes it; on any failure nothing is left and ``path`` is as it was."""
    from tqdm.auto import tqdm

    try:
        response = urllib.request.urlopen(item.url, timeout=60)
    except urllib.error.HTTPError as error:
        raise DataError(f"{item.url}: the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, FileNotFoundError):  # a file:// mirror without this file
            raise DataError(f"{item.url}: no such file") from None
        raise _Unreachable(f"{item.url}: {_reason(reason)}") from None
    try:
        with response, files.atomic_path(path) as temporary:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(temporary, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                                    desc=path.name, disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
            if problem := _verify(temporary, item):
                raise DataError(f"{item.url}: {problem}; nothing was saved")
    except OSError as error:
        raise DataError(f"{item.url}: the download failed ({_reason(error)}); nothing was "
                        f"saved") from None


def _origin(root) -> str:
    if root is not None:
        return "given as root"
    if os.environ.get("WORKBENCH_DATA"):
        return "from WORKBENCH_DATA"
    return "the default, data/ in the project root, as WORKBENCH_DATA is not set"


def _not_fetched(failed: list[tuple[str, _File, str]], base: Path, origin: str,
                 offline: DataError | None) -> str:
    commands = " and ".join(f"`workbench data download {n}`" for n in dict.fromkeys(
        n for n, _, _ in failed))
    lines = "\n".join(f"  {item.url}\n    -> {base / item.relative}  ({why})"
                      for _, item, why in failed)
    cause = f" ({offline}): you seem to be offline" if offline else ""
    count = f"{len(failed)} data file" + ("s" if len(failed) > 1 else "")
    return (f"{count} could not be downloaded{cause}. Fetch them by other "
            f"means ({commands} on a machine with internet, checksums verified) and put each "
            f"where the arrow points, or set WORKBENCH_DATA to a folder that holds them (the "
            f"data root is {base}, {origin}):\n{lines}")


def ensure(names: Sequence[str] = ("mnist",), *, root: str | os.PathLike | None = None,
           progress: bool = True) -> Path:
    """Makes the files of ``names`` ready under the data root: verifies those there, downloads
    those missing or corrupt, and extracts CIFAR-10.

    Every file is checked against its published SHA-256 (MNIST: or that of its decompressed
    content, so a copy gzipped anew passes; an extracted CIFAR-10 folder by its files' sizes).
    A missing or corrupt file is fetched from its official source (or ``$WORKBENCH_MIRROR``, a
    data root served over HTTP or as ``file://``) with a progress bar into a temporary file,
    renamed into place only once verified. Offline, the first unreachable server stops the
    downloads, and one error names every file not fetched, its URL and its place.

    Args:
        names: what to make ready, from ``DOWNLOADS`` (``"mnist"``, ``"cifar10"``,
            ``"released"``: the papers' released models).
        root: the data folder (:func:`data_root`).
        progress: show a progress bar per download.

    Returns:
        The data root.

    Raises:
        ValueError: an unknown name.
        DataError: files that could not be downloaded, all of them in one message; a problem a
            download cannot mend (such as a corrupt uncompressed MNIST file), with what to do.
    """
    names = (names,) if isinstance(names, str) else tuple(names)
    for name in names:
        if name not in DOWNLOADS:
            raise ValueError(f"names: unknown download {name!r}; choose from {DOWNLOADS}")
    base = data_root(root)
    _folder(base, "the data root")
    fetch, stuck = [], []
    for name in dict.fromkeys(names):
        wanted, problems = _survey(name, base)
        fetch += [(name, item, why) for item, why in wanted]
        stuck += problems
    if stuck:
        raise DataError("data files that a download cannot replace:\n  " + "\n  ".join(stuck))
    failed, offline = [], None
    for name, item, why in fetch:
        if offline is None:
            try:
                _fetch(item, base / item.relative, progress=progress)
                continue
            except _Unreachable as error:
                offline = error
            except DataError as error:
                why = str(error)
        failed.append((name, item, why))
    if failed:
        raise DataError(_not_fetched(failed, base, _origin(root), offline))
    if "cifar10" in names and not (base / "cifar10" / _CIFAR_DIR).is_dir():
        extract_tar(base / "cifar10" / sources.CIFAR_ARCHIVE, base / "cifar10")
    return base


def download(name: str, *, root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Makes one download ready (:func:`ensure`): verifies the files there and fetches what is
    missing or corrupt. ``"released"`` is the papers' released models (``RELEASED_FILES``).

    Returns:
        The dataset's (or the released models') folder under the data root.

    Raises:
        DataError: as :func:`ensure`: offline, every missing file in one message; no partial
            file is ever left.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"unknown download {name!r}; choose one of {DOWNLOADS}")
    return ensure((name,), root=root, progress=progress) / name


def check(name: str, *, root: str | os.PathLike | None = None) -> dict[str, dict[str, int]]:
    """Validates both splits of a dataset by structure and returns per-split class counts.

    For ``"released"``: checks every released model file against its published SHA-256 and
    returns ``{"deepxplore": {file: bytes}, "deepfault": {...}}``.

    Raises:
        DataError: as :func:`load`; for ``"released"``, the missing files (with where to get
            them and where to put them) and those whose SHA-256 differs.
    """
    if name == "released":
        return _check_released(root)
    result = {}
    for split in _SPLIT_PREFIX:
        dataset = load(name, split, root=root)
        counts = np.bincount(dataset.labels, minlength=10)
        result[split] = {cls: int(c) for cls, c in zip(dataset.class_names, counts)}
    return result


# ------------------------------------------------------------------------------ released models
def _released_url(relative: str) -> str:
    folder, name = relative.split("/", 1)
    return RELEASED_SOURCES[folder] + name


def _released_help(missing: list[str], base: Path) -> str:
    lines = "\n".join(f"  {_released_url(r)}\n    -> {base / r}" for r in missing)
    return (f"Run `workbench data download released` on a machine with internet, or fetch these "
            f"files by other means and put each where the arrow points (or set WORKBENCH_DATA "
            f"to a folder whose released/ holds them):\n{lines}")


def released_file(relative: str, *, root: str | os.PathLike | None = None) -> Path:
    """The path of one released model file, ``<root>/released/<relative>``, after checking it
    against its published SHA-256 (``RELEASED_FILES``).

    Raises:
        DataError: the file is missing (the message says where to get it and where to put it)
            or is not the published file.
    """
    if relative not in RELEASED_FILES:
        raise ValueError(f"unknown released file {relative!r}; choose one of "
                         f"{', '.join(RELEASED_FILES)}")
    base = data_root(root) / "released"
    path = base / relative
    _not_a_directory(path)
    if not path.is_file():
        raise DataError(f"missing {path}. {_released_help([relative], base)}")
    actual = _sha256(path)
    if actual != RELEASED_FILES[relative]:
        raise DataError(f"{path}: SHA-256 {actual} is not that of the published file "
                        f"({RELEASED_FILES[relative]}): truncated, corrupt or another file. "
                        f"Delete it and run `workbench data download released`.")
    return path


def _check_released(root) -> dict[str, dict[str, int]]:
    base = data_root(root) / "released"
    missing, wrong, sizes = [], [], {}
    for relative, digest in RELEASED_FILES.items():
        path = base / relative
        _not_a_directory(path)
        if not path.is_file():
            missing.append(relative)
        elif _sha256(path) != digest:
            wrong.append(str(path))
        else:
            folder, name = relative.split("/", 1)
            sizes.setdefault(folder, {})[name] = path.stat().st_size
    problems = []
    if wrong:
        problems.append(f"not the published files (SHA-256 differs: truncated, corrupt or "
                        f"others; delete them and download again): {', '.join(wrong)}")
    if missing:
        problems.append(f"{len(missing)} files missing. {_released_help(missing, base)}")
    if problems:
        raise DataError("released models: " + "\n".join(problems))
    return sizes
