"""Labelled photo sets: a folder per label, a CSV (`file,label`), or a manifest.

- Folder per label: `DATA/<label>/*.jpg` (sub-folders of a label folder count too).
- CSV (UTF-8) with a header and at least `file,label`; files are relative to the CSV's folder and
  confined to it (see load_dataset).
- Manifest: a CSV with the columns
  `file,sha256,label,accepted_imagenet_indices,source_repo,source_commit,source_path,source_dataset,license`.
  Rows carry their accepted ImageNet-1k indices (space-separated) and these are used as given; a row
  without them has its label resolved like any other. A folder holding a `manifest.csv` is read as
  that manifest, and `builtin:eval` names the copy of the public set's manifest shipped in the
  package (data/eval_manifest.csv: facts only, no images).

Where a manifest's image comes from (photos.py finds it): `--mirror DIR` (a local copy laid out like
the manifest), else the manifest's own folder, else the cache (`$TOPFIVE_CACHE/photos`, default
~/.cache/topfive/photos; content-addressed by sha256), else a download of the raw file at the source
repository, commit and path (raw.githubusercontent.com). Every file from a manifest with a sha256 is
checked against it. Some photos were converted after download (EXIF orientation applied, downscaled,
PNG -> JPEG), so the manifest's hash is of the converted file and the source's file cannot match: such a
photo is reported for itself (an `Item` with a `problem`) and the rest of the set goes on.

Labels are resolved (see wordnet.py) when the set is loaded, so a bad label stops the run before any
model is loaded.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from topfive.decode.images import IMAGE_SUFFIXES, ImageUnreadable, find_images
from topfive.eval.photos import RAW_BASE, SHA256, PhotoFetcher
from topfive.eval.wordnet import resolve_labels

BUILTIN = {"builtin:eval": "data/eval_manifest.csv"}


class DatasetError(ValueError):
    """The set itself cannot be read (no such path, permission denied, a bad CSV header or row, a
    path outside the set)."""


@dataclass(frozen=True)
class Item:
    file: str  # the name used in result files (path relative to the set)
    label: str
    accepted: frozenset[int]
    path: str | None  # local file to read; None when the photo could not be had
    problem: tuple[str, str] | None = None  # (error, reason) when path is None
    sha256: str = ""
    source: str = ""
    licence: str = ""


@dataclass
class Dataset:
    path: str
    kind: str  # "folder", "csv" or "manifest"
    items: list[Item]
    sources: dict = field(default_factory=dict)
    licences: dict = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, int]:
        return dict(sorted(Counter(i.label for i in self.items if i.label).items()))

    @property
    def label_sets(self) -> dict[str, list[int]]:
        """label -> accepted indices (the union over its rows; rows of one label agree in practice)."""
        sets: dict[str, set[int]] = {}
        for i in self.items:
            if i.label:  # a photo outside any label folder has none
                sets.setdefault(i.label, set()).update(i.accepted)
        return {k: sorted(v) for k, v in sorted(sets.items())}

    @property
    def readable(self) -> list[Item]:
        return [i for i in self.items if i.path is not None]

    @property
    def missing(self) -> list[Item]:
        return [i for i in self.items if i.path is None]

    def fingerprint(self) -> str:
        """Changes when any file, label or accepted set changes (guards resuming into another set)."""
        h = hashlib.sha256()
        for i in sorted(self.items, key=lambda i: i.file):
            h.update(f"{i.file}\t{i.label}\t{' '.join(map(str, sorted(i.accepted)))}\n".encode())
        return h.hexdigest()


def load_dataset(
    data: str | os.PathLike,
    mirror: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    download: bool = True,
    base_url: str = RAW_BASE,
    progress: bool = False,
    allow_outside: bool = False,
) -> Dataset:
    """Read a photo set (folder, CSV, manifest, or `builtin:eval`) and resolve its labels.

    A CSV or manifest is UTF-8 (a byte-order mark, as spreadsheets write, is fine) with a header and
    at least one row. Its `file` names are relative to the set's root (the CSV's folder, or the
    mirror); they are normalised (`./dir/x`, `dir/x` and `dir//x` are one photo; listed twice is an error)
    and confined to that root: an absolute name or one that climbs out with `..` is a DatasetError
    unless `allow_outside` (`topfive evaluate --allow-outside`). The check is on the names, so a
    symbolic link inside the root is followed. A `sha256` is empty or 64 hex digits.
    A photo that cannot be read (permission denied, ...) is an Item with a problem, not an error.
    """
    text = str(data)
    options = dict(mirror=mirror, cache=cache, download=download, base_url=base_url, progress=progress,
                   allow_outside=allow_outside)
    if text in BUILTIN:
        with resources.as_file(resources.files("topfive").joinpath(BUILTIN[text])) as manifest:
            return _load_csv(Path(manifest), text, base=None, **options)
    path = Path(data)
    try:
        folder = path.is_dir()
        manifest = folder and (path / "manifest.csv").is_file()
        file = not folder and path.is_file()
    except OSError as e:  # the set itself, so the whole set: no photo of it can be named
        raise DatasetError(f"{data}: {ImageUnreadable.from_os_error(text, e).reason}") from e
    if manifest:
        return _load_csv(path / "manifest.csv", text, base=path, **options)
    if folder:
        return _load_folder(path)
    if file:
        return _load_csv(path, text, base=path.parent, **options)
    raise DatasetError(f"{data}: no such file or folder (give a folder per label, a CSV, a manifest or {', '.join(BUILTIN)})")


def _unreadable(file: str, label: str, accepted: frozenset[int], reason: str) -> Item:
    return Item(file, label, accepted, None, (ImageUnreadable.__name__, reason))


def _load_folder(root: Path) -> Dataset:
    try:
        entries = sorted(root.iterdir())
    except OSError as e:
        raise DatasetError(f"{root}: {ImageUnreadable.from_os_error(str(root), e).reason}") from e
    folders, loose = [], []
    for p in entries:
        try:
            if p.is_dir():
                if not p.name.startswith("."):
                    folders.append(p)
            elif p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                reason = "lies directly in the set's folder, not in a label folder: its label is unknown"
                loose.append(Item(p.name, "", frozenset(), None, ("NoLabel", reason)))
        except OSError as e:  # neither a label folder nor a photo we can tell: its own failure row
            if not p.name.startswith("."):
                loose.append(_unreadable(p.name, "", frozenset(), ImageUnreadable.from_os_error(p.name, e).reason))
    sets = resolve_labels([f.name for f in folders])
    items = []
    for folder in folders:
        problems: dict[str, str] = {}
        for f in find_images([folder], recursive=True, problems=problems):
            name, accepted = Path(f).relative_to(root).as_posix(), sets[folder.name].indices
            if f in problems:
                items.append(_unreadable(name, folder.name, accepted, problems[f]))
            else:
                items.append(Item(name, folder.name, accepted, f))
    if not items:
        raise DatasetError(f"{root}: no images in label folders (expected {root}/<label>/*.jpg)")
    return Dataset(str(root), "folder", items + loose, sources={"local": str(root)})


def _parse_indices(text: str, where: str) -> frozenset[int]:
    try:
        indices = frozenset(int(t) for t in text.split())
    except ValueError:
        raise DatasetError(f"{where}: accepted_imagenet_indices {text!r} is not a list of integers") from None
    if not indices or not all(0 <= i < 1000 for i in indices):
        raise DatasetError(f"{where}: accepted_imagenet_indices must be indices 0..999, got {text!r}")
    return indices


def _read_rows(manifest: Path) -> list[dict]:
    """The rows of a CSV set, or a DatasetError that says what is wrong with the file."""
    try:
        data = manifest.read_bytes()
    except OSError as e:
        raise DatasetError(f"{manifest}: {ImageUnreadable.from_os_error(str(manifest), e).reason}") from e
    try:
        text = data.decode("utf-8-sig")  # -sig: a spreadsheet's byte-order mark is not part of the header
    except UnicodeDecodeError as e:
        # No guessing at another encoding: a wrong guess would silently rename photos and labels.
        line = data[: e.start].count(b"\n") + 1
        raise DatasetError(f"{manifest}, line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
                           "save the CSV as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = set(reader.fieldnames or ())
        rows = list(reader)
    except csv.Error as e:  # a NUL byte, a field over the csv module's size limit
        raise DatasetError(f"{manifest}, line {reader.reader.line_num}: not a readable CSV ({e})") from None
    if not {"file", "label"} <= columns:
        raise DatasetError(f"{manifest}: a CSV set needs a header with at least the columns file,label")
    if not rows:
        raise DatasetError(f"{manifest}: no rows (a header and no photos)")
    return rows


def _set_path(file: str, where: str, allow_outside: bool = False) -> str:
    """`file` as the one name of its photo (normalised), confined to the set's root unless allowed."""
    if "\x00" in file:  # no file can have it; Path would raise a ValueError
        raise DatasetError(f"{where}: the file name {file!r} holds a NUL character")
    name = posixpath.normpath(file)
    if name == ".":
        raise DatasetError(f"{where}: {file!r} names the set's folder itself, not a photo")
    if not allow_outside and (posixpath.isabs(name) or name == ".." or name.startswith("../")):
        raise DatasetError(f"{where}: {file!r} lies outside the set's folder; photos of a set are named "
                           "relative to it (--allow-outside, or allow_outside=True, to allow it)")
    return name


def _load_csv(manifest: Path, name: str, base: Path | None, mirror, cache, download, base_url, progress,
              allow_outside) -> Dataset:
    rows = _read_rows(manifest)
    columns = set(rows[0])
    needs_labels = [(r["label"] or "").strip() for r in rows if not (r.get("accepted_imagenet_indices") or "").strip()]
    sets = resolve_labels([label for label in needs_labels if label]) if needs_labels else {}
    kind = "manifest" if "accepted_imagenet_indices" in columns else "csv"

    checked, lines = [], {}  # every row is checked before any photo is looked for or downloaded
    for n, r in enumerate(rows, start=2):
        where = f"{manifest}, line {n}"
        file, label = (r["file"] or "").strip(), (r["label"] or "").strip()
        if not file or not label:
            raise DatasetError(f"{where}: empty file or label")
        photo = _set_path(file, where, allow_outside)
        if photo in lines:
            first, spelled = lines[photo]
            raise DatasetError(f"{where}: {file} is listed again (first on line {first} as {spelled}); one label per photo")
        lines[photo] = (n, file)
        given = (r.get("accepted_imagenet_indices") or "").strip()
        accepted = _parse_indices(given, where) if given else sets[label].indices
        sha = (r.get("sha256") or "").strip().lower()
        if sha and not SHA256.fullmatch(sha):
            raise DatasetError(f"{where}: sha256 {sha[:80]!r} is not 64 hex digits")
        checked.append((photo, label, accepted, sha, r))

    try:
        if mirror is not None and not Path(mirror).is_dir():
            raise DatasetError(f"--mirror {mirror}: no such folder")
    except OSError as e:
        raise DatasetError(f"--mirror {mirror}: {ImageUnreadable.from_os_error(str(mirror), e).reason}") from e
    fetcher = PhotoFetcher(mirror, base, cache, download, base_url)
    if progress and kind == "manifest":
        from tqdm import tqdm

        checked = tqdm(checked, desc="checking photos", unit="img", delay=1.0, leave=False)
    items = []
    for file, label, accepted, sha, r in checked:
        path, problem, source = fetcher.get(file, sha, r)
        items.append(Item(file, label, accepted, path, problem, sha, source, (r.get("license") or "").strip()))

    sources: dict[str, dict] = {}
    for r in rows:
        repo = (r.get("source_repo") or "").strip()
        if repo:
            key = f"{repo}@{(r.get('source_commit') or '').strip()}" if r.get("source_commit") else repo
            entry = sources.setdefault(key, {"repo": repo, "commit": (r.get("source_commit") or "").strip(),
                                             "dataset": (r.get("source_dataset") or "").strip(), "n": 0})
            entry["n"] += 1
    if not sources:
        sources = {"local": str(base or manifest.parent)}
    licences = dict(Counter(i.licence for i in items if i.licence).most_common())
    return Dataset(name, kind, items, sources, licences)
