"""Labelled photo sets: a folder per label, a CSV (`file,label`), or a manifest.

- Folder per label: `DATA/<label>/*.jpg` (sub-folders of a label folder count too).
- CSV with a header and at least `file,label`; files are relative to the CSV's folder.
- Manifest: a CSV with the columns
  `file,sha256,label,accepted_imagenet_indices,source_repo,source_commit,source_path,source_dataset,license`.
  Rows carry their accepted ImageNet-1k indices (space-separated) and these are used as given; a row
  without them has its label resolved like any other. A folder holding a `manifest.csv` is read as
  that manifest, and `builtin:eval` names the copy of the public set's manifest shipped in the
  package (data/eval_manifest.csv: facts only, no images).

Where a manifest's image comes from: `--mirror DIR` (a local copy laid out like the manifest), else the
manifest's own folder, else the cache (`$TOPFIVE_CACHE/photos`, default ~/.cache/topfive/photos;
content-addressed by sha256), else a download of the raw file at the source repository, commit and path
(raw.githubusercontent.com). Every file from a manifest with a sha256 is checked against it. Some
photos were converted after download (EXIF orientation applied, downscaled, PNG -> JPEG), so the
manifest's hash is of the converted file and the source's file cannot match: such a photo is reported
for itself (an `Item` with a `problem`) and the rest of the set goes on.

Labels are resolved (see wordnet.py) when the set is loaded, so a bad label stops the run before any
model is loaded.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from topfive.decode.images import IMAGE_SUFFIXES
from topfive.eval.wordnet import resolve_labels
from topfive.files import atomic_path, cache_dir, sha256_file

RAW_BASE = "https://raw.githubusercontent.com"
BUILTIN = {"builtin:eval": "data/eval_manifest.csv"}
MAX_NETWORK_FAILURES = 3  # consecutive connection failures before the remaining downloads are skipped


class DatasetError(ValueError):
    """The set itself cannot be read (no such path, a bad CSV header or row)."""


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
) -> Dataset:
    """Read a photo set (folder, CSV, manifest, or `builtin:eval`) and resolve its labels."""
    text = str(data)
    if text in BUILTIN:
        with resources.as_file(resources.files("topfive").joinpath(BUILTIN[text])) as manifest:
            return _load_csv(Path(manifest), text, base=None, mirror=mirror, cache=cache,
                             download=download, base_url=base_url, progress=progress)
    path = Path(data)
    if path.is_dir():
        if (path / "manifest.csv").is_file():
            return _load_csv(path / "manifest.csv", text, base=path, mirror=mirror, cache=cache,
                             download=download, base_url=base_url, progress=progress)
        return _load_folder(path)
    if path.is_file():
        return _load_csv(path, text, base=path.parent, mirror=mirror, cache=cache,
                         download=download, base_url=base_url, progress=progress)
    raise DatasetError(f"{data}: no such file or folder (give a folder per label, a CSV, a manifest or {', '.join(BUILTIN)})")


def _load_folder(root: Path) -> Dataset:
    items, loose = [], []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    sets = resolve_labels([f.name for f in folders])
    for folder in folders:
        for f in sorted(folder.rglob("*")):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                items.append(Item(f.relative_to(root).as_posix(), folder.name, sets[folder.name].indices, str(f)))
    for f in sorted(root.iterdir()):
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
            reason = "lies directly in the set's folder, not in a label folder: its label is unknown"
            loose.append(Item(f.name, "", frozenset(), None, ("NoLabel", reason)))
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


def _load_csv(manifest: Path, name: str, base: Path | None, mirror, cache, download, base_url, progress) -> Dataset:
    with manifest.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns = set(rows[0]) if rows else set()
    if not {"file", "label"} <= columns:
        raise DatasetError(f"{manifest}: a CSV set needs a header with at least the columns file,label")
    needs_labels = [(r["label"] or "").strip() for r in rows if not (r.get("accepted_imagenet_indices") or "").strip()]
    sets = resolve_labels([label for label in needs_labels if label]) if needs_labels else {}
    kind = "manifest" if "accepted_imagenet_indices" in columns else "csv"

    checked, lines = [], {}  # every row is checked before any photo is looked for or downloaded
    for n, r in enumerate(rows, start=2):
        where = f"{manifest}, line {n}"
        file, label = (r["file"] or "").strip(), (r["label"] or "").strip()
        if not file or not label:
            raise DatasetError(f"{where}: empty file or label")
        if file in lines:
            raise DatasetError(f"{where}: {file} is listed again (first on line {lines[file]}); one label per photo")
        lines[file] = n
        given = (r.get("accepted_imagenet_indices") or "").strip()
        accepted = _parse_indices(given, where) if given else sets[label].indices
        checked.append((file, label, accepted, (r.get("sha256") or "").strip().lower(), r))

    fetcher = _Fetcher(mirror, base, cache, download, base_url)
    if progress and kind == "manifest":
        from tqdm import tqdm

        checked = tqdm(checked, desc="checking photos", unit="img", delay=1.0, leave=False)
    items = []
    for file, label, accepted, sha, r in checked:
        path, problem, source = fetcher.get(file, sha, r)
        items.append(Item(file, label, accepted, path, problem, sha, source, (r.get("license") or "").strip()))
    if not items:
        raise DatasetError(f"{manifest}: no rows")

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


class _NotTheManifestsFile(Exception):
    def __init__(self, got: str):
        super().__init__(got)
        self.got = got


class _Fetcher:
    """Finds one manifest photo: mirror, the manifest's folder, the cache, or a download."""

    def __init__(self, mirror, base, cache, download, base_url):
        self.roots = [Path(p) for p in (mirror, base) if p is not None]
        if mirror is not None and not Path(mirror).is_dir():
            raise DatasetError(f"--mirror {mirror}: no such folder")
        self.cache = Path(cache) if cache else cache_dir("photos", create=False)
        self.download = download and not os.environ.get("TOPFIVE_OFFLINE")
        self.base_url = base_url.rstrip("/")
        self.network_failures = 0
        self.last_network_error = ""

    def get(self, file: str, sha: str, row: dict) -> tuple[str | None, tuple[str, str] | None, str]:
        url = self._url(row)
        source = url or (row.get("source_repo") or "").strip()
        for root in self.roots:
            local = root / file
            if local.is_file():
                got = sha256_file(local) if sha else ""
                if got != sha:
                    return None, ("ChecksumMismatch", f"{local}: sha256 {got} is not the manifest's {sha}"), source
                return str(local), None, source
        if not sha:
            where = " or ".join(str(r) for r in self.roots) or "the manifest's folder"
            return None, ("ImageNotFound", f"not found in {where} (no sha256 in the manifest, so no download)"), source
        cached = self.cache / sha[:2] / (sha + Path(file).suffix.lower())
        if cached.is_file() and sha256_file(cached) == sha:
            return str(cached), None, source
        if url is None:
            return None, ("NotDownloadable", f"not in the mirror or cache, and its source {source!r} is not a "
                          "GitHub repository, commit and path to download from; use --mirror DIR"), source
        if not self.download:
            return None, ("NotDownloaded", f"not in the mirror or cache and downloads are off (TOPFIVE_OFFLINE); source {url}"), source
        if self.network_failures >= MAX_NETWORK_FAILURES:
            return None, ("NotDownloaded", f"not in the mirror or cache; download of {url} skipped after "
                          f"{self.network_failures} failed downloads in a row ({self.last_network_error})"), source
        return (*self._download(url, cached, sha), source)

    def _url(self, row: dict) -> str | None:
        repo = (row.get("source_repo") or "").strip()
        commit = (row.get("source_commit") or "").strip()
        path = (row.get("source_path") or "").strip()
        if not (re.fullmatch(r"[\w.-]+/[\w.-]+", repo) and re.fullmatch(r"[0-9a-f]{7,40}", commit) and path):
            return None
        return f"{self.base_url}/{repo}/{commit}/{urllib.parse.quote(path)}"

    def _download(self, url: str, target: Path, sha: str) -> tuple[str | None, tuple[str, str] | None]:
        """Into the cache under its sha256, only once it is checked (a partial file never stays)."""
        try:
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=30) as response:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                got = sha256_file(tmp)
                if got != sha:
                    raise _NotTheManifestsFile(got)
        except urllib.error.HTTPError as e:
            self.network_failures = 0
            return None, ("DownloadFailed", f"{url}: HTTP {e.code} {e.reason}")
        except (urllib.error.URLError, OSError) as e:
            self.network_failures += 1
            self.last_network_error = str(getattr(e, "reason", e))
            return None, ("DownloadFailed", f"{url}: {self.last_network_error}")
        except _NotTheManifestsFile as e:
            self.network_failures = 0
            return None, ("ConvertedFile", f"downloaded {url}, but its sha256 {e.got} is not the manifest's {sha}: "
                          "this photo was converted after download (the manifest's hash is of the converted "
                          "copy), so the source cannot give it; use --mirror DIR with a copy of the set")
        self.network_failures = 0
        return str(target), None
