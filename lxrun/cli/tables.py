"""Plain-text tables and sizes for the store's verbs (stack ls, df)."""

from __future__ import annotations

from collections.abc import Sequence

UNITS = ("B", "K", "M", "G", "T")


def human(size: int | None) -> str:
    """Bytes as du -h shows them (powers of 1024, one decimal below 10); "?" when unknown."""
    if size is None:
        return "?"
    value = float(size)
    for unit in UNITS:
        if value < 1024 or unit == UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{size}B"
    return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"


def render(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; the columns numbered in `right` aligned right (numbers)."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
