import os
import stat

import pytest

from topfive.files import atomic_path, atomic_write, cache_dir, sha256_file


def test_atomic_write_replaces_whole_and_keeps_mode(tmp_path):
    target = tmp_path / "README.md"
    target.write_text("old")
    target.chmod(0o644)
    atomic_write(target, "new")
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    fresh = atomic_write(tmp_path / "fresh.txt", b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_is_under_topfive_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPFIVE_CACHE", str(tmp_path))
    assert cache_dir("onnx") == tmp_path / "onnx" and (tmp_path / "onnx").is_dir()


def test_sha256_file(tmp_path):
    f = tmp_path / "a"
    f.write_bytes(b"abc")
    assert sha256_file(f) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
