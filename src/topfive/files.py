"""Files on disk, written once for the whole package: content hashes, atomic writes, cache folders.

The cache root is $TOPFIVE_CACHE, else ~/.cache/topfive; each kind of file has its own folder
under it (`models` for model-card files, `onnx` for exported and quantised models, `photos` for
downloaded photo sets, `tune` for runtime choices).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

DATA_DIR = Path(__file__).resolve().parent / "data"  # files shipped inside the package


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's contents, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir(kind: str, create: bool = True) -> Path:
    """The cache folder for one kind of file: $TOPFIVE_CACHE/<kind> or ~/.cache/topfive/<kind>."""
    root = os.environ.get("TOPFIVE_CACHE") or Path.home() / ".cache" / "topfive"
    path = Path(root) / kind
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; once the block ends without an error it replaces
    `path` in one rename, so a reader never sees a half-written file. On an error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, _mode_for(path))  # mkstemp's 0600 would make every replaced file owner-only
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _mode_for(path: Path) -> int:
    """The replaced file's mode, or what a plain open() would give a new file (0666 less the umask)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, data: str | bytes, fsync: bool = False) -> Path:
    """Write text (UTF-8) or bytes to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
    return Path(path)
