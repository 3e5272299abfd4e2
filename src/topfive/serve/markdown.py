"""A small, safe Markdown subset to HTML, enough for the study's REPORT.md: headings, paragraphs,
lists, tables (with right-aligned columns), fenced code, `code`, **bold**, images and links.

Every character of the text is escaped first; the only markup in the output is what this module
writes. Images and links are kept only when they name a file of the report's listing (`files`),
and point to `/report/files/<name>`; any other link becomes its text, so the page never makes a
request elsewhere."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]*)\)")
BOLD = re.compile(r"\*\*(.+?)\*\*")
HEADING = re.compile(r"(#{1,6})\s+(.*)")
ITEM = re.compile(r"[-*]\s+(.*)")
FILES_URL = "/report/files/"


def inline(text: str, files: set[str]) -> str:
    """One line's inline markup; text inside `code` is taken literally."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unclosed backtick is a plain character
        parts[-2:] = ["`".join(parts[-2:])]
    out = []
    for i, part in enumerate(parts):
        escaped = html.escape(part, quote=True)
        out.append(f"<code>{escaped}</code>" if i % 2 else styled(escaped, files))
    return "".join(out)


def styled(escaped: str, files: set[str]) -> str:
    def link(m: re.Match) -> str:
        image, label, target = m.group(1), m.group(2), html.unescape(m.group(3))
        if target not in files:
            return label
        url = html.escape(FILES_URL + quote(target), quote=True)
        if image:
            return f'<img src="{url}" alt="{label}" loading="lazy">'
        return f'<a href="{url}">{label}</a>'

    return BOLD.sub(r"<strong>\1</strong>", LINK.sub(link, escaped))


def cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [c.strip() for c in line.split("|")]


def table(lines: list[str], files: set[str]) -> str:
    head, rule, body = cells(lines[0]), cells(lines[1]), [cells(line) for line in lines[2:]]
    right = [c.endswith(":") and not c.startswith(":") for c in rule]

    def row(values: list[str], tag: str) -> str:
        out = []
        for i, value in enumerate(values):
            cls = ' class="num"' if i < len(right) and right[i] else ""
            out.append(f"<{tag}{cls}>{inline(value, files)}</{tag}>")
        return "<tr>" + "".join(out) + "</tr>"

    rows = "".join(row(r, "td") for r in body)
    return f'<div class="table"><table><thead>{row(head, "th")}</thead><tbody>{rows}</tbody></table></div>'


def is_rule(line: str) -> bool:
    return line.strip().startswith("|") and set(line.replace("|", "").strip()) <= set("-: ") and "-" in line


def to_html(text: str, files: set[str]) -> str:
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```")), len(lines))
            out.append("<pre>" + html.escape("\n".join(lines[i + 1 : end])) + "</pre>")
            i = end + 1
        elif m := HEADING.fullmatch(stripped):
            level = len(m.group(1))
            out.append(f"<h{level}>{inline(m.group(2), files)}</h{level}>")
            i += 1
        elif stripped.startswith("|") and i + 1 < len(lines) and is_rule(lines[i + 1]):
            end = i + 2
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            out.append(table(lines[i:end], files))
            i = end
        elif ITEM.fullmatch(stripped):
            items = []
            while i < len(lines) and (m := ITEM.fullmatch(lines[i].strip())):
                items.append(f"<li>{inline(m.group(1), files)}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = [stripped]
            i += 1
            while i < len(lines) and lines[i].strip() and not starts_block(lines, i):
                para.append(lines[i].strip())
                i += 1
            out.append("<p>" + inline(" ".join(para), files) + "</p>")
    return "\n".join(out)


def starts_block(lines: list[str], i: int) -> bool:
    s = lines[i].strip()
    return bool(s.startswith("```") or HEADING.fullmatch(s) or ITEM.fullmatch(s)
                or (s.startswith("|") and i + 1 < len(lines) and is_rule(lines[i + 1])))
