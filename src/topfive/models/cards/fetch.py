"""A card's model files: found, checked against the card, downloaded or mirrored.

Where a file comes from, in order: beside the card (not for the cards shipped in the package), the
mirror folder ($TOPFIVE_MODELS_DIR, set by `--models-dir`), the cache ($TOPFIVE_CACHE/models), else
a download of the card's URL into the cache. Every file is checked against the card's size and
sha256 before use, and every file written here is written whole or not at all (temporary file, then
rename), so a reader never takes a half-written file for the model.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

from topfive.files import atomic_path, cache_dir, sha256_file
from topfive.models.cards.schema import Card, CardError, FileRef
from topfive.models.weights import WeightsUnavailable


class ModelFileError(CardError, WeightsUnavailable):
    """A model file that is missing or is not the one the card describes (size, sha256). Also a
    WeightsUnavailable, so callers that skip models without weights skip these alike."""


def models_cache() -> Path:
    """Where downloaded and mirrored model files go: $TOPFIVE_CACHE/models (~/.cache/topfive/models)."""
    return cache_dir("models", create=False)


def models_dir() -> Path | None:
    """The mirror folder of model files named by $TOPFIVE_MODELS_DIR, if any."""
    folder = os.environ.get("TOPFIVE_MODELS_DIR")
    return Path(folder) if folder else None


# Files already hashed, by (path, size, mtime, sha256): a listing checks each file once per process.
_verified: dict[tuple, bool] = {}


def verify(path: Path, ref: FileRef, card: Card) -> None:
    """Raise ModelFileError unless `path` is the file the card describes (size, then sha256)."""
    field = "weights_file.sha256" if ref is card.weights else "sha256"
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, ref.sha256)
    if _verified.get(key):
        return
    if ref.size_bytes is not None and stat.st_size != ref.size_bytes:
        raise ModelFileError(
            card.path,
            field.replace("sha256", "size_bytes"),
            f"{path} has {stat.st_size} bytes, the card says {ref.size_bytes}",
        )
    digest = sha256_file(path)
    if digest != ref.sha256:
        raise ModelFileError(card.path, field, f"{path} has sha256 {digest}, the card says {ref.sha256}")
    _verified[key] = True


def candidate_folders(card: Card) -> list[Path]:
    folders = [] if card.builtin else [card.path.parent]
    if models_dir():
        folders.append(models_dir())
    folders.append(models_cache())
    return folders


def find_file(ref: FileRef, card: Card) -> Path | None:
    """The first file by that name in the card's folders that matches the card; a mismatch raises."""
    for folder in candidate_folders(card):
        path = folder / ref.file
        try:
            if not path.is_file():
                continue
            verify(path, ref, card)
        except OSError as e:  # e.g. permission denied: say which file, as for a wrong one
            raise ModelFileError(card.path, "file", f"{path} cannot be read ({e.strerror or e})") from e
        return path
    return None


def download(ref: FileRef, card: Card) -> Path:
    """Fetch `ref.url` into the cache, checked against the card before it takes the file's name."""
    target = models_cache() / ref.file
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out, urllib.request.urlopen(ref.url, timeout=60) as response:
            shutil.copyfileobj(response, out)
        verify(tmp, ref, card)
    return target


def fetch_file(ref: FileRef, card: Card) -> Path:
    """The verified file: found in the card's folders, else downloaded; ModelFileError says where to put it."""
    path = find_file(ref, card)
    if path is not None:
        return path
    places = ", ".join(str(f) for f in candidate_folders(card))
    how_to = f"put {ref.file} (sha256 {ref.sha256}) in one of: {places}, or pass --models-dir DIR"
    if not ref.url:
        raise ModelFileError(card.path, "file", f"{ref.file} not found and the card has no URL; {how_to}")
    if os.environ.get("TOPFIVE_OFFLINE"):
        raise ModelFileError(card.path, "file", f"{ref.file} not found (TOPFIVE_OFFLINE is set, no download); {how_to}")
    try:
        return download(ref, card)
    except ModelFileError:
        raise
    except OSError as e:  # URLError is an OSError
        reason = getattr(e, "reason", e)
        raise ModelFileError(
            card.path, "file", f"{ref.file} not found and the download of {ref.url} failed ({reason}); {how_to}"
        ) from e


def mirror(card: Card, folder: str | os.PathLike | None = None) -> list[Path]:
    """Make the card's files present and verified in `folder` (default: the cache); returns their paths."""
    target = Path(folder) if folder else models_cache()
    paths = []
    for ref in card.files:
        source = fetch_file(ref, card)
        dest = target / ref.file
        if source.resolve() != dest.resolve():
            with atomic_path(dest) as tmp:
                shutil.copyfile(source, tmp)
                verify(tmp, ref, card)
        paths.append(dest)
    return paths
