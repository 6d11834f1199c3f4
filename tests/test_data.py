"""Loaders on tiny files the tests write, and on the real MNIST / CIFAR-10 when present."""

import gzip
import io
import os
import struct
import tarfile

import numpy as np
import pytest

from workbench import data


def _idx(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(folder, n=(12, 5), *, gz=True, labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for split, count in zip(("train", "t10k"), n):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        split_labels = np.arange(count) % 10 if labels is None else labels
        for kind, array in (("images-idx3", images), ("labels-idx1", split_labels)):
            raw = _idx(np.asarray(array))
            name = f"{split}-{kind}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        out[split] = (images, split_labels)
    return out


def _cifar_bytes(labels, rng):
    images = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([np.asarray(labels, np.uint8)[:, None],
                              images.reshape(len(labels), -1)], axis=1)
    return records.tobytes(), images


def test_parse_idx_reads_header_and_payload():
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(data.parse_idx(_idx(array)), array)


@pytest.mark.parametrize("mutate, message", [
    (lambda raw: raw[:-1], "truncated"),
    (lambda raw: raw + b"\x00", "truncated"),
    (lambda raw: b"\x01" + raw[1:], "magic"),
    (lambda raw: raw[:2] + b"\x0d" + raw[3:], "unsigned byte"),
    (lambda raw: raw[:5], "header truncated"),
])
def test_parse_idx_rejects_bad_files(mutate, message):
    raw = _idx(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(data.DataError, match=message):
        data.parse_idx(mutate(raw), source="x.idx")


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_from_tiny_idx_files(tmp_path, monkeypatch, gz):
    monkeypatch.setitem(data._SPLIT_COUNT, ("mnist", "train"), 12)
    written = _write_mnist(tmp_path / "mnist", gz=gz)
    train = data.load("mnist", "train", root=tmp_path)
    assert train.images.shape == (12, 28, 28, 1) and train.images.dtype == np.float32
    assert train.labels.dtype == np.int32
    np.testing.assert_array_equal(train.labels, np.arange(12) % 10)
    np.testing.assert_allclose(train.images[..., 0] * 255, written["train"][0], atol=1e-4)
    assert train.class_names == tuple("0123456789")


def test_root_comes_from_environment(tmp_path, monkeypatch):
    monkeypatch.setitem(data._SPLIT_COUNT, ("mnist", "test"), 5)
    _write_mnist(tmp_path / "mnist")
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    assert len(data.load("mnist", "test").labels) == 5


def test_bad_label_is_named(tmp_path):
    _write_mnist(tmp_path / "mnist", n=(3, 3), labels=np.array([1, 12, 3]))
    with pytest.raises(data.DataError, match="label 12 at index 1"):
        data.load("mnist", "test", root=tmp_path)


def test_truncated_gzip_is_named(tmp_path):
    _write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load("mnist", "test", root=tmp_path)


def test_missing_files_say_what_to_do(tmp_path):
    with pytest.raises(data.DataError, match="workbench data download mnist"):
        data.load("mnist", "train", root=tmp_path)
    with pytest.raises(data.DataError, match="cifar-10-binary.tar.gz"):
        data.load("cifar10", "test", root=tmp_path)


def test_unknown_names_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        data.load("svhn", "train", root=tmp_path)
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        data.load("mnist", "valid", root=tmp_path)


def test_parse_cifar_binary_is_nhwc():
    rng = np.random.default_rng(1)
    raw, planes = _cifar_bytes([3, 9], rng)
    images, labels = data.parse_cifar_binary(raw)
    np.testing.assert_array_equal(labels, [3, 9])
    assert images.shape == (2, 32, 32, 3)
    # Red plane first in the record, so channel 0 of pixel (y, x) is planes[:, 0, y, x].
    np.testing.assert_array_equal(images[1, 5, 7], planes[1, :, 5, 7])


def test_parse_cifar_binary_rejects_truncation_and_bad_labels():
    rng = np.random.default_rng(2)
    raw, _ = _cifar_bytes([1, 2], rng)
    with pytest.raises(data.DataError, match="whole number"):
        data.parse_cifar_binary(raw[:-10], source="b.bin")
    bad, _ = _cifar_bytes([1, 11], rng)
    with pytest.raises(data.DataError, match="label 11"):
        data.parse_cifar_binary(bad, source="b.bin")


def _tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def test_cifar_archive_is_extracted_and_read(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_CIFAR_PER_FILE", 4)
    monkeypatch.setitem(data._SPLIT_COUNT, ("cifar10", "test"), 4)
    rng = np.random.default_rng(3)
    raw, _ = _cifar_bytes([0, 1, 2, 3], rng)
    folder = tmp_path / "cifar10"
    folder.mkdir()
    (folder / "cifar-10-binary.tar.gz").write_bytes(_tar_bytes({
        "cifar-10-batches-bin/test_batch.bin": raw,
        "cifar-10-batches-bin/batches.meta.txt": "\n".join(data.CIFAR10_CLASSES).encode(),
    }))
    test = data.load("cifar10", "test", root=tmp_path)
    np.testing.assert_array_equal(test.labels, [0, 1, 2, 3])
    assert test.images.shape == (4, 32, 32, 3)
    assert test.class_names[0] == "airplane"


def test_tar_member_escaping_its_folder_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tar_bytes({"cifar-10-batches-bin/ok.bin": b"1",
                                    "../escaped.txt": b"gotcha"}))
    with pytest.raises(data.DataError, match="escapes its folder"):
        data.extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "out" / "cifar-10-batches-bin").exists()


def test_corrupt_archive_leaves_nothing(tmp_path):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(_tar_bytes({"cifar-10-batches-bin/a.bin": b"x" * 5000})[:100])
    with pytest.raises(data.DataError, match="broken.tar.gz: corrupt or truncated"):
        data.extract_tar(archive, tmp_path / "out")
    out = tmp_path / "out"
    assert not out.exists() or [p.name for p in out.iterdir()] == []


def test_download_offline_names_files_and_leaves_nothing(tmp_path, monkeypatch):
    # An address that refuses at once: this machine has no route to the official servers.
    monkeypatch.setattr(data, "_MNIST_URL", "http://127.0.0.1:9/mnist/")
    with pytest.raises(data.DataError, match="offline.*train-images-idx3-ubyte.gz"):
        data.download("mnist", root=tmp_path, progress=False)
    assert [p for p in (tmp_path / "mnist").iterdir()] == []


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    source = tmp_path / "served.gz"
    source.write_bytes(b"not mnist")
    with pytest.raises(data.DataError, match="does not match"):
        data._fetch(source.as_uri(), tmp_path / "out" / "file.gz", "0" * 64, progress=False)
    assert os.listdir(tmp_path / "out") == []


def test_download_keeps_a_verified_file(tmp_path):
    import hashlib

    source = tmp_path / "served.gz"
    source.write_bytes(b"payload")
    digest = hashlib.sha256(b"payload").hexdigest()
    target = tmp_path / "out" / "file.gz"
    data._fetch(source.as_uri(), target, digest, progress=False)
    assert target.read_bytes() == b"payload"


# ------------------------------------------------------------------------------- real data
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_real_mnist(data_root):
    train = data.load("mnist", "train", root=data_root)
    test = data.load("mnist", "test", root=data_root)
    assert train.images.shape == (60_000, 28, 28, 1) and test.images.shape == (10_000, 28, 28, 1)
    assert np.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert 0.0 <= train.images.min() and train.images.max() == 1.0


def test_real_cifar10(data_root):
    counts = data.check("cifar10", root=data_root)
    assert list(counts["train"].values()) == [5000] * 10
    assert list(counts["test"].values()) == [1000] * 10
    assert list(counts["train"]) == list(data.CIFAR10_CLASSES)
