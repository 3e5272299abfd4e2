"""How the report writes one value: numbers with a dash for none, intervals, paths and messages
without the machine's absolute paths."""

from __future__ import annotations

import os
import re
from pathlib import Path

from topfive.report.results import num

# an absolute path inside a message: starts after a space, quote or bracket (not inside a URL or
# after $VAR), made of the characters file names here use
_ABSOLUTE = re.compile(r"(?<![\w.:/~$])/[\w.@+%-]+(?:/[\w.@+%-]+)*")


def fmt(x: float | None, digits: int = 1, unit: str = "") -> str:
    return "—" if x is None else f"{x:.{digits}f}{unit}"


def pct_ci(row: dict, key: str) -> str:
    """`v [low–high]` of a percentage and its interval columns in a summary row."""
    v, lo, hi = num(row.get(key)), num(row.get(f"{key}_low")), num(row.get(f"{key}_high"))
    if v is None:
        return "—"
    return f"{v:.1f} [{lo:.1f}–{hi:.1f}]" if lo is not None and hi is not None else f"{v:.1f}"


def shown_path(path: str | os.PathLike | None) -> str:
    """A path as the report shows it: a relative path as given; an absolute one relative to the
    working folder, or as `~/...` when it lies in the home folder but not under the working folder."""
    if path is None:
        return ""
    text = str(path)
    if not os.path.isabs(text):
        return text
    cwd, home = Path.cwd(), Path.home()
    p = Path(text)
    if not p.is_relative_to(cwd) and p.is_relative_to(home) and home != Path(p.anchor):
        return "~/" + p.relative_to(home).as_posix()
    try:
        return os.path.relpath(text, cwd)
    except ValueError:  # another drive (Windows): nothing relative to say
        return p.name


def shown_text(message: str) -> str:
    """A message (an error's reason) with each absolute path in it shown as `shown_path` shows it."""
    return _ABSOLUTE.sub(lambda m: shown_path(m.group(0)), str(message))
