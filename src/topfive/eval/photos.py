"""Where one photo of a labelled set comes from: a mirror, the set's own folder, the cache, or a
checked download (see datasets.py for the rules; this module only finds and fetches).

Every lookup that fails is an (error, reason) for that photo alone, never an exception, so that one
unreadable or missing photo is a failure row and the rest of the set goes on.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from topfive.decode.images import ImageUnreadable
from topfive.files import atomic_path, cache_dir, sha256_file

RAW_BASE = "https://raw.githubusercontent.com"
SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_NETWORK_FAILURES = 3  # consecutive connection failures before the remaining downloads are skipped


class _NotTheManifestsFile(Exception):
    def __init__(self, got: str):
        super().__init__(got)
        self.got = got


class PhotoFetcher:
    """Finds one manifest photo: mirror, the manifest's folder, the cache, or a download."""

    def __init__(self, mirror, base, cache, download, base_url):
        self.roots = [Path(p) for p in (mirror, base) if p is not None]  # the caller checked the mirror is a folder
        self.cache = Path(cache) if cache else cache_dir("photos", create=False)
        self.download = download and not os.environ.get("TOPFIVE_OFFLINE")
        self.base_url = base_url.rstrip("/")
        self.network_failures = 0
        self.last_network_error = ""

    def get(self, file: str, sha: str, row: dict) -> tuple[str | None, tuple[str, str] | None, str]:
        """(local path, None, source) or (None, (error, reason), source). `file` is already confined
        and normalised, and `sha` is empty or 64 hex digits (datasets.py checks both)."""
        url = self._url(row)
        source = url or (row.get("source_repo") or "").strip()
        try:
            found = self._local(file, sha)
        except OSError as e:  # e.g. permission denied: this photo's failure, not the set's
            error = ImageUnreadable.from_os_error(str(e.filename or file), e)
            return None, (type(error).__name__, str(error)), source
        if found is not None:
            return (*found, source)
        if not sha:
            where = " or ".join(str(r) for r in self.roots) or "the manifest's folder"
            return None, ("ImageNotFound", f"not found in {where} (no sha256 in the manifest, so no download)"), source
        cached = self._cached(file, sha)
        if url is None:
            return None, ("NotDownloadable", f"not in the mirror or cache, and its source {source!r} is not a "
                          "GitHub repository, commit and path to download from; use --mirror DIR"), source
        if not self.download:
            return None, ("NotDownloaded", f"not in the mirror or cache and downloads are off (TOPFIVE_OFFLINE); source {url}"), source
        if self.network_failures >= MAX_NETWORK_FAILURES:
            return None, ("NotDownloaded", f"not in the mirror or cache; download of {url} skipped after "
                          f"{self.network_failures} failed downloads in a row ({self.last_network_error})"), source
        return (*self._download(url, cached, sha), source)

    def _local(self, file: str, sha: str) -> tuple[str | None, tuple[str, str] | None] | None:
        """The photo from a mirror, the set's folder or the cache; None when none has it."""
        for root in self.roots:
            local = root / file
            if local.is_file():
                got = sha256_file(local) if sha else ""
                if got != sha:
                    return None, ("ChecksumMismatch", f"{local}: sha256 {got} is not the manifest's {sha}")
                return str(local), None
        if sha:
            cached = self._cached(file, sha)
            if cached.is_file() and sha256_file(cached) == sha:
                return str(cached), None
        return None

    def _cached(self, file: str, sha: str) -> Path:
        # The digest becomes folder and file names: only hex digits keep it inside the cache.
        if not SHA256.fullmatch(sha):
            raise ValueError(f"{file}: sha256 {sha!r} is not 64 hex digits")
        return self.cache / sha[:2] / (sha + Path(file).suffix.lower())

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
