"""The study report as a page: REPORT.md of the report folder rendered to HTML, with its charts and
gallery thumbnails.

Files are served only by name from a listing of the folder that this module makes itself (REPORT.md,
charts/*.png, gallery/*.jpg|png; regular files, no links), never by joining a name from the URL to a
path. The folder is listed again for each page view, so a report written while the server runs is
the one shown."""

from __future__ import annotations

import html
import os
from pathlib import Path

from topfive.serve.markdown import to_html

REPORT_FILE = "REPORT.md"
SUBFOLDERS = {"charts": (".png",), "gallery": (".jpg", ".jpeg", ".png")}
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".md": "text/markdown; charset=utf-8"}


def _regular(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def report_files(folder: Path | None) -> dict[str, Path]:
    """{name relative to the folder: its path} for the files the report view may serve."""
    if folder is None:
        return {}
    found: dict[str, Path] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name == REPORT_FILE and _regular(entry):
                    found[REPORT_FILE] = Path(entry.path)
    except OSError:
        return {}
    for sub, suffixes in SUBFOLDERS.items():
        try:
            with os.scandir(folder / sub) as entries:
                for entry in entries:
                    if Path(entry.name).suffix.lower() in suffixes and _regular(entry):
                        found[f"{sub}/{entry.name}"] = Path(entry.path)
        except OSError:
            continue
    return found


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>topfive: study report</title><link rel="stylesheet" href="/style.css">
<link rel="icon" href="/icon.svg" type="image/svg+xml"></head>
<body>
<header><h1>topfive</h1><nav><a href="/">Classify</a> <a href="/report" aria-current="page">Study report</a></nav></header>
<main class="report">
{body}
</main>
</body>
</html>
"""


def report_page(folder: Path | None) -> tuple[str, bool]:
    """(the page, whether a report was found)."""
    files = report_files(folder)
    if REPORT_FILE not in files:
        where = f" in {html.escape(folder.name or str(folder))}/" if folder is not None else ""
        body = (f"<p>No study report{where} yet. Make one with <code>topfive report</code>, or start the "
                "server with <code>--report DIR</code> pointing at one.</p>")
        return PAGE.format(body=body), False
    try:
        text = files[REPORT_FILE].read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        return PAGE.format(body=f"<p>The report could not be read: {html.escape(e.strerror or str(e))}.</p>"), False
    return PAGE.format(body=to_html(text, set(files))), True
