"""Loaders on tiny files the tests write, and on the real MNIST / CIFAR-10 when present."""

import gzip
import io
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


# ----------------------------------------------------------------- ensure and download
CLOSED = "http://127.0.0.1:9"  # the discard port, closed here: a real "connection refused"
MNIST_GZ = [f"{stem}.gz" for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                      "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]


def _files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_offline_ensure_names_every_missing_file_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MIRROR", CLOSED)
    root = tmp_path / "root"
    (root / "mnist").mkdir(parents=True)
    garbage = root / "mnist" / MNIST_GZ[3]
    garbage.write_bytes(b"garbage!")
    with pytest.raises(data.DataError) as caught:
        data.ensure(("mnist", "released"), root=root, progress=False)
    message = str(caught.value)
    assert message.startswith("21 data files could not be downloaded (http://127.0.0.1:9/mnist/"
                              "train-images-idx3-ubyte.gz: ConnectionRefusedError")
    for name in MNIST_GZ:
        assert f"{CLOSED}/mnist/{name}\n    -> {root / 'mnist' / name}  (" in message
    for relative in data.RELEASED_FILES:
        assert str(root / "released" / relative) in message
    assert f"-> {garbage}  (corrupt, to be replaced: SHA-256 " in message and "(8 bytes" in message
    assert "WORKBENCH_DATA" in message and f"the data root is {root}, given as root" in message
    assert "`workbench data download mnist` and `workbench data download released`" in message
    assert _files_under(root) == [f"mnist/{MNIST_GZ[3]}"] and garbage.read_bytes() == b"garbage!"


def test_offline_cli_download_names_all_four_mnist_files(tmp_path, monkeypatch, capsys):
    from workbench import cli

    monkeypatch.setenv("WORKBENCH_MIRROR", CLOSED)
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    assert cli.main(["data", "download", "mnist"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mnist: 4 data files could not be downloaded")
    assert all(str(tmp_path / "mnist" / name) in err for name in MNIST_GZ)
    assert "from WORKBENCH_DATA" in err


def test_a_corrupt_uncompressed_file_is_named_with_what_to_do(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"12345678")
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte: SHA-256 \w+ does not match "
                                             r"the published one \(8 bytes.*delete it .*"
                                             r"workbench data download mnist"):
        data.ensure(("mnist",), root=tmp_path, progress=False)


def test_an_extracted_cifar_folder_is_checked_by_its_sizes(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_CIFAR_PER_FILE", 2)
    batches = tmp_path / "cifar10" / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    for name in data._CIFAR_BATCHES:
        (batches / name).write_bytes(b"x" * (2 * 3073))
    assert data.ensure("cifar10", root=tmp_path, progress=False) == tmp_path  # nothing fetched
    (batches / "test_batch.bin").write_bytes(b"x" * 3073)
    with pytest.raises(data.DataError, match=r"test_batch.bin missing or not 6,146 bytes; delete "
                                             r"the folder and run `workbench data download"):
        data.ensure(["cifar10"], root=tmp_path, progress=False)


def test_unknown_download_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="names: unknown download 'svhn'; choose from"):
        data.ensure(("mnist", "svhn"), root=tmp_path)
    with pytest.raises(ValueError, match="unknown download 'svhn'"):
        data.download("svhn", root=tmp_path)


def test_the_default_root_is_the_projects_data_from_any_folder_in_it(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    monkeypatch.chdir(tmp_path / "notebooks")
    assert data.data_root() == tmp_path.resolve() / "data"  # never notebooks/data
    monkeypatch.setenv("WORKBENCH_DATA", "elsewhere")
    assert data.data_root() == tmp_path.resolve() / "elsewhere"
    assert data.data_root(tmp_path / "given") == tmp_path / "given"


@pytest.fixture()
def served(tmp_path):
    """``served(folder)``: a real HTTP server on a free localhost port serving ``folder``;
    returns its URL and the list of paths requested so far."""
    import functools
    import http.server
    import threading

    servers = []

    def serve(folder):
        requested = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                requested.append(self.path)

        handler = functools.partial(Handler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", requested

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.real_data
def test_download_fetches_verifies_and_replaces_a_corrupt_file(data_root, tmp_path, monkeypatch,
                                                                served):
    # The real MNIST served over HTTP: gzipped anew (other .gz digests), the same content.
    url, requested = served(data_root)
    monkeypatch.setenv("WORKBENCH_MIRROR", url)
    root = tmp_path / "root"
    assert data.download("mnist", root=root, progress=False) == root / "mnist"
    assert sorted(requested) == sorted(f"/mnist/{name}" for name in MNIST_GZ)
    assert _files_under(root) == sorted(f"mnist/{name}" for name in MNIST_GZ)
    assert data.download("mnist", root=root, progress=False) == root / "mnist"
    assert len(requested) == 4  # verified, not fetched again
    (root / "mnist" / MNIST_GZ[1]).write_bytes(b"garbage!")  # 8 bytes that used to pass
    data.download("mnist", root=root, progress=False)
    assert requested[4:] == [f"/mnist/{MNIST_GZ[1]}"]
    assert data.load("mnist", "train", root=root).labels[:4].tolist() == [5, 0, 4, 1]
    assert _files_under(root) == sorted(f"mnist/{name}" for name in MNIST_GZ)  # no .part left


@pytest.mark.real_data
def test_a_corrupt_download_leaves_the_old_file_and_nothing_else(data_root, tmp_path,
                                                                  monkeypatch, served):
    mirror = tmp_path / "mirror" / "mnist"
    mirror.mkdir(parents=True)
    source = (data_root / "mnist" / MNIST_GZ[3]).read_bytes()
    (mirror / MNIST_GZ[3]).write_bytes(source[:-100])  # truncated on the server
    url, _ = served(tmp_path / "mirror")
    monkeypatch.setenv("WORKBENCH_MIRROR", url)
    root = tmp_path / "root"
    (root / "mnist").mkdir(parents=True)
    for name in MNIST_GZ[:3]:
        (root / "mnist" / name).write_bytes((data_root / "mnist" / name).read_bytes())
    (root / "mnist" / MNIST_GZ[3]).write_bytes(b"old")
    with pytest.raises(data.DataError, match=rf"1 data file could not be downloaded\. .*\n  "
                                             rf"{url}/mnist/{MNIST_GZ[3]}\n    -> .*\({url}/mnist/"
                                             rf"{MNIST_GZ[3]}: SHA-256 \w+ does not match the "
                                             rf"published one .*; nothing was saved\)"):
        data.ensure(root=root, progress=False)
    assert (root / "mnist" / MNIST_GZ[3]).read_bytes() == b"old"
    assert _files_under(root) == sorted(f"mnist/{name}" for name in MNIST_GZ)


@pytest.mark.real_data
def test_a_file_url_mirror_serves_the_released_models(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_MIRROR", data_root.resolve().as_uri())
    root = data.ensure(("released",), root=tmp_path, progress=False)
    assert _files_under(tmp_path) == sorted(f"released/{r}" for r in data.RELEASED_FILES)
    assert data.check("released", root=root)["deepxplore"]["Model1.h5"] == 48544


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
