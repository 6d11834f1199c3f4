"""MNIST and CIFAR-10: loading from the official files, validation, checksummed downloads.

The root folder is, in order: the ``root`` argument, the ``WORKBENCH_DATA`` environment variable,
then ``./data``. Below it the files live as the official archives unpack them::

    <root>/mnist/train-images-idx3-ubyte.gz     (or without .gz; t10k-*, *-labels-* likewise)
    <root>/cifar10/cifar-10-batches-bin/data_batch_1.bin ... test_batch.bin, batches.meta.txt
    <root>/cifar10/cifar-10-binary.tar.gz       (extracted on first use, safely)

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
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["Dataset", "DataError", "DATASETS", "load", "download", "check", "data_root"]

MNIST_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
# SHA-256 of the official downloads (the same digests TFDS and Keras publish).
_MNIST_FILES = {
    "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
_CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
_CIFAR_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
_CIFAR_DIR = "cifar-10-batches-bin"
_CIFAR_RECORD = 1 + 32 * 32 * 3
_CIFAR_PER_FILE = 10_000
_SPLIT_PREFIX = {"train": "train", "test": "t10k"}
_SPLIT_COUNT = {("mnist", "train"): 60_000, ("mnist", "test"): 10_000,
                ("cifar10", "train"): 50_000, ("cifar10", "test"): 10_000}

DATASETS = ("mnist", "cifar10")


class DataError(ValueError):
    """A data file is missing, truncated, corrupt, or fails its checksum."""


class Dataset(NamedTuple):
    """One split of a dataset, held in host memory."""

    images: np.ndarray  # shape=(n, height, width, channels), dtype=float32, values in [0, 1]
    labels: np.ndarray  # shape=(n,), dtype=int32
    class_names: tuple[str, ...]


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$WORKBENCH_DATA``, else ``./data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("WORKBENCH_DATA") or "data")


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
    if name == "mnist":
        images, labels = _load_mnist(base / "mnist", split)
        classes = MNIST_CLASSES
    else:
        images, labels = _load_cifar(base / "cifar10", split)
        classes = _cifar_classes(base / "cifar10")
    expected = _SPLIT_COUNT[(name, split)]
    if len(labels) != expected:
        raise DataError(f"{name} {split}: found {len(labels)} examples, expected {expected}")
    return Dataset(images, labels, classes)


# --------------------------------------------------------------------------------------- MNIST
def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"missing {folder / stem}(.gz). Run `workbench data download mnist` on a machine with "
        f"internet, or put the four official MNIST IDX files "
        f"({', '.join(s + '.gz' for s in _MNIST_FILES)}) into {folder}, or point WORKBENCH_DATA "
        f"at a folder that holds mnist/ with them."
    )


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: corrupt or truncated gzip stream ({error})") from None
    return raw


def parse_idx(raw: bytes, *, source: str = "<bytes>") -> np.ndarray:
    """Parses an unsigned-byte IDX file (magic ``0x0000 08 nd``) into a uint8 array.

    Raises:
        DataError: wrong magic number, wrong data type, or a payload whose size does not match
            the dimensions in the header (a truncated or padded file).
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{source}: not an IDX file (bad magic number {raw[:4].hex()})")
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
    batches = folder / _CIFAR_DIR
    if batches.is_dir():
        return batches
    archive = folder / _CIFAR_ARCHIVE
    if archive.is_file():
        extract_tar(archive, folder)
        return batches
    raise DataError(
        f"missing {batches}. Run `workbench data download cifar10` on a machine with internet, "
        f"or put the official binary archive {_CIFAR_ARCHIVE} (or its extracted folder "
        f"{_CIFAR_DIR}/) into {folder}. The pickled 'python version' is not read, on purpose."
    )


def _cifar_classes(folder: Path) -> tuple[str, ...]:
    meta = folder / _CIFAR_DIR / "batches.meta.txt"
    if meta.is_file():
        names = tuple(line.strip() for line in meta.read_text().splitlines() if line.strip())
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
        if not path.is_file():
            raise DataError(f"missing {path}: the CIFAR-10 binary folder is incomplete")
        batch_images, batch_labels = parse_cifar_binary(path.read_bytes(), source=str(path))
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
    leaves nothing behind.
    """
    destination = Path(destination)
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
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DataError(f"{archive}: corrupt or truncated archive ({error})") from None
        for child in staging_path.iterdir():
            target = destination / child.name
            if not target.exists():
                child.rename(target)


# ----------------------------------------------------------------------------------- downloads
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, path: Path, sha256: str, *, progress: bool) -> None:
    """Downloads ``url`` to ``path`` through a temporary file, renamed only once its SHA-256
    matches; on any failure the temporary file is removed."""
    from tqdm.auto import tqdm

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name,
                      disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        actual = _sha256(Path(temporary))
        if actual != sha256:
            raise DataError(f"{url}: SHA-256 {actual} does not match the published {sha256}; "
                            f"nothing was saved")
        os.replace(temporary, path)
    except (urllib.error.URLError, OSError) as error:
        raise DataError(
            f"could not download {url} ({error}). You seem to be offline: fetch it by other means "
            f"and place it at {path}, or set WORKBENCH_DATA to a folder that holds it."
        ) from None
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def download(name: str, *, root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Downloads a dataset from its official source unless its files are already there.

    Every file is checked against its published SHA-256, written to a temporary file with a
    progress bar, and renamed into place only when complete.

    Returns:
        The dataset's folder under the data root.

    Raises:
        DataError: offline (the message names each file and where to put it) or a checksum
            mismatch; in both cases no partial file is left.
    """
    _check_name(name)
    folder = data_root(root) / name
    if name == "mnist":
        for stem, digest in _MNIST_FILES.items():
            if not (folder / stem).is_file() and not (folder / f"{stem}.gz").is_file():
                _fetch(_MNIST_URL + stem + ".gz", folder / f"{stem}.gz", digest, progress=progress)
    elif not (folder / _CIFAR_DIR).is_dir():
        archive = folder / _CIFAR_ARCHIVE
        if not archive.is_file():
            _fetch(_CIFAR_URL + _CIFAR_ARCHIVE, archive, _CIFAR_SHA256, progress=progress)
        extract_tar(archive, folder)
    return folder


def check(name: str, *, root: str | os.PathLike | None = None) -> dict[str, dict[str, int]]:
    """Validates both splits of a dataset by structure and returns per-split class counts.

    Raises:
        DataError: as :func:`load`.
    """
    result = {}
    for split in _SPLIT_PREFIX:
        dataset = load(name, split, root=root)
        counts = np.bincount(dataset.labels, minlength=10)
        result[split] = {cls: int(c) for cls, c in zip(dataset.class_names, counts)}
    return result
