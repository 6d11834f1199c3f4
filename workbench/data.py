"""MNIST and CIFAR-10: loading from the official files, validation, checksummed downloads.

The root folder is, in order: the ``root`` argument, the ``WORKBENCH_DATA`` environment variable,
then ``./data``. Below it the files live as the official archives unpack them::

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
from pathlib import Path
from typing import NamedTuple

import numpy as np

from workbench import files

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
    "load",
    "released_file",
]

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
DOWNLOADS = (*DATASETS, "released")  # what download and check take: the datasets, the models


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
    return Dataset(images, labels, classes)


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
        f"({', '.join(s + '.gz' for s in _MNIST_FILES)}) into {folder}, or point WORKBENCH_DATA "
        f"at a folder that holds mnist/ with them."
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
    archive = folder / _CIFAR_ARCHIVE
    _not_a_directory(archive)
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


def _fetch(url: str, path: Path, sha256: str, *, progress: bool) -> None:
    """Downloads ``url`` to ``path`` atomically (:func:`workbench.files.atomic_write`), renamed
    into place only once its SHA-256 matches; on any failure nothing is left behind."""
    from tqdm.auto import tqdm

    try:
        with files.atomic_write(path) as out, \
                urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            digest = hashlib.sha256()
            with tqdm(total=total, unit="B", unit_scale=True, desc=path.name,
                      disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
            if digest.hexdigest() != sha256:
                raise DataError(f"{url}: SHA-256 {digest.hexdigest()} does not match the "
                                f"published {sha256}; nothing was saved")
    except (urllib.error.URLError, OSError) as error:
        raise DataError(
            f"could not download {url} ({error}). You seem to be offline: fetch it by other means "
            f"and place it at {path}, or set WORKBENCH_DATA to a folder that holds it."
        ) from None


def download(name: str, *, root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Downloads a dataset from its official source unless its files are already there.

    ``"released"`` fetches the papers' released models (``RELEASED_FILES``) from the authors'
    repositories at fixed commits into ``<root>/released/``. Every file is checked against its published SHA-256, written to a temporary file with a
    progress bar, and renamed into place only when complete.

    Returns:
        The dataset's (or the released models') folder under the data root.

    Raises:
        DataError: offline (the message names each file and where to put it) or a checksum
            mismatch; in both cases no partial file is left.
    """
    if name == "released":
        return _download_released(root, progress)
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
# The trained MNIST models the DeepXplore and DeepFault authors published with their code, from
# their public repositories at fixed commits (raw.githubusercontent.com serves the committed
# files as they are), with the SHA-256 of each file as published.
RELEASED_SOURCES = {
    # Pei et al., DeepXplore (SOSP 2017): peikexin9/deepxplore, folder MNIST/, MIT licence.
    "deepxplore": "https://raw.githubusercontent.com/peikexin9/deepxplore/7ab6a02/MNIST/",
    # Eniser et al., DeepFault (FASE 2019): hfeniser/DeepFault, folder neural_networks/, GPL-3.0.
    "deepfault": "https://raw.githubusercontent.com/hfeniser/DeepFault/7a068e7/neural_networks/",
}
RELEASED_FILES = {  # path under <root>/released/ -> SHA-256
    "deepxplore/Model1.h5":
        "ad24a291b3b44942b67acedbe85bf6938917d45fda51aef9519ff5143ff08144",
    "deepxplore/Model2.h5":
        "e858a1f9e428162ab60584f594b76e3fc2b9853d04bccccb5f6b1332ed9f819c",
    "deepxplore/Model3.h5":
        "3c6f7589d67d7189faf036e8edd7af2eee5b68b0247f98a5cf766577590c32ce",
    "deepfault/mnist_test_model_3_50_leaky_relu.h5":
        "a43972583d23e527d1bea08dff4272fde905ed059ad6b86467812880642e0cc9",
    "deepfault/mnist_test_model_3_50_leaky_relu.json":
        "b3c9cd2b6f62d7bf9f0201d3b82955de832cbc5a5d1d68a39d4b4b8e155cf473",
    "deepfault/mnist_test_model_3_50_relu.h5":
        "09a36a4bbf369cd9ce409583eaca6a891a05e08d2e0d6ef5a116a69f819beae9",
    "deepfault/mnist_test_model_3_50_relu.json":
        "4dbdd0c76585e99c48b4bff67a0ad67d298ecd5a0c991e4556a0fe74e5e8d0a7",
    "deepfault/mnist_test_model_5_30_leaky_relu.h5":
        "2814e9a6f37b96fb9e85847428170396c914ae8b61e7119bcb147a55a47d11cc",
    "deepfault/mnist_test_model_5_30_leaky_relu.json":
        "417b05d587632b2033b932e9faba203b5af058c9600c89c96d29522debc579cb",
    "deepfault/mnist_test_model_5_30_relu.h5":
        "2fd0a2a6a702faf678988b3beeac5c96c48f7199cc78a68591badd60e127af35",
    "deepfault/mnist_test_model_5_30_relu.json":
        "54b92234f16312666deb04373fdccaa3b9c825c5eae0e5eda6d77f00f5a84ff3",
    "deepfault/mnist_test_model_6_25_leaky_relu.h5":
        "036b54e944d4f23c64f9cc23b54e4c33b842760dbb211a1cbbb5bdf37e00e1d0",
    "deepfault/mnist_test_model_6_25_leaky_relu.json":
        "88a318477e3a896fee98a513533cbbdb3bc0ae875191cff8d6d4f6001cdd7857",
    "deepfault/mnist_test_model_8_20_leaky_relu.h5":
        "3ed22f6f22b53e2cf80331700ff0b6baef37889c1c4a91b3bd757e7426223180",
    "deepfault/mnist_test_model_8_20_leaky_relu.json":
        "e8065e805b6733ec1591e64a98657c9061d1a3322a1460ad2314995ebfc9bcdf",
    "deepfault/mnist_test_model_8_20_relu.h5":
        "95a7cb9653ee11cae87ba771afbecbad17c0723f57c04403e272447daf8c3b14",
    "deepfault/mnist_test_model_8_20_relu.json":
        "c197b6ccc4dbdfa7763eacd18babd148dc260c014414a0dfc3b33ec87597d0aa",
}


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


def _download_released(root, progress: bool) -> Path:
    base = data_root(root) / "released"
    missing = [r for r in RELEASED_FILES if not (base / r).is_file()]
    for index, relative in enumerate(missing):
        try:
            _fetch(_released_url(relative), base / relative, RELEASED_FILES[relative],
                   progress=progress)
        except DataError as error:
            raise DataError(f"{error}\n{_released_help(missing[index:], base)}") from None
    return base


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
