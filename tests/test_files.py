"""Atomic writes: the destination appears complete or not at all; no temporary file is left."""

import os
import stat

import pytest

from workbench import files


def names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_bytes_and_text_land_under_the_name(tmp_path):
    with files.atomic_write(tmp_path / "a.bin") as out:
        out.write(b"\x00\x01")
    with files.atomic_write(tmp_path / "deeper" / "b.csv", "w", newline="") as out:
        out.write("x,y\r\n1,é\n")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "deeper" / "b.csv").read_bytes() == "x,y\r\n1,é\n".encode()
    assert names(tmp_path) == ["a.bin", "deeper"] and names(tmp_path / "deeper") == ["b.csv"]


def test_failure_mid_write_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.msgpack"
    with pytest.raises(RuntimeError, match="interrupted"), files.atomic_write(target) as out:
        out.write(b"half of a checkpoint")
        out.flush()
        assert len(names(tmp_path)) == 1 and names(tmp_path)[0].endswith(".part")
        raise RuntimeError("interrupted")
    assert names(tmp_path) == []


def test_a_write_error_keeps_the_old_file(tmp_path):
    target = tmp_path / "table.md"
    target.write_text("old")
    with pytest.raises(TypeError), files.atomic_write(target, "w") as out:
        out.write("new ")
        out.write(b"bytes in a text file")  # fails inside the write itself
    assert target.read_text() == "old" and names(tmp_path) == ["table.md"]


def test_replaces_an_existing_file(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with files.atomic_write(target, "w") as out:
        out.write("new")
    assert target.read_text() == "new" and names(tmp_path) == ["x.txt"]


def test_permissions_follow_the_umask_like_open(tmp_path):
    with open(tmp_path / "plain", "wb"):
        pass
    with files.atomic_write(tmp_path / "atomic"):
        pass
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)


def test_bad_mode_is_rejected_before_anything_is_created(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of"), \
            files.atomic_write(tmp_path / "sub" / "x", "ab"):
        pass
    assert names(tmp_path) == []


def test_atomic_path_gives_writers_a_name_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "weights.h5"
    with files.atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.endswith(".part")
        temporary.write_bytes(b"weights")
        assert not target.exists()
    assert target.read_bytes() == b"weights" and names(tmp_path) == ["weights.h5"]
    with pytest.raises(OSError), files.atomic_path(target) as temporary:
        temporary.write_bytes(b"partial")
        raise OSError("disk full")
    assert target.read_bytes() == b"weights" and names(tmp_path) == ["weights.h5"]


def test_cache_folder_follows_each_platforms_convention(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert files.cache_folder("linux") == tmp_path / ".cache" / "workbench"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert files.cache_folder("linux") == tmp_path / "xdg" / "workbench"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # the XDG spec: ignore a relative path
    assert files.cache_folder("freebsd") == tmp_path / ".cache" / "workbench"
    assert files.cache_folder("darwin") == tmp_path / "Library" / "Caches" / "workbench"
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert files.cache_folder("win32") == tmp_path / "Local" / "workbench" / "Cache"
    assert not (tmp_path / ".cache").exists()  # named, not created


def test_project_root_is_the_checkout_from_any_folder_in_it(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "notebooks" / "deep").mkdir(parents=True)
    assert files.project_root(tmp_path / "notebooks" / "deep") == tmp_path.resolve()
