"""Tables as text: aligned plain text for the terminal, pipe tables for Markdown."""

from __future__ import annotations


def text_table(rows: list[list], header: list[str], right: set[int] = frozenset()) -> str:
    """Columns padded to their widest cell under a line of dashes; columns in `right` right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(row) -> str:
        cells = (str(x).rjust(w) if i in right else str(x).ljust(w) for i, (x, w) in enumerate(zip(row, widths)))
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]) + "\n"


def markdown_table(header: list[str], rows: list[list], right_from: int = 1, left: tuple[int, ...] = ()) -> list[str]:
    """A pipe table as lines (a blank line after it); columns from `right_from` on are right-aligned
    except those in `left`. A `|` inside a cell is escaped."""
    align = ["---" if i < right_from or i in left else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines + [""]
