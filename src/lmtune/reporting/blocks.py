"""The report as plain data: sections of text, tables and figures, rendered to HTML and Markdown by templates."""

from __future__ import annotations


def text(content: str) -> dict:
    return {"kind": "text", "text": content}


def warning(content: str) -> dict:
    return {"kind": "warning", "text": content}


def bullets(items: list[str]) -> dict:
    return {"kind": "bullets", "items": items}


def table(columns: list[str], rows: list[list], caption: str | None = None) -> dict:
    return {"kind": "table", "columns": columns, "rows": [[cell(v) for v in row] for row in rows], "caption": caption}


def figure(name: str, caption: str, png: bytes) -> dict:
    return {"kind": "figure", "name": name, "caption": caption, "png": png}


def highlighted(caption: str, pieces: list[tuple[str, float]]) -> dict:
    """Text drawn with a weight per piece in [-1, 1] (token attributions): HTML shades it, Markdown bolds the
    strongest pieces."""
    return {"kind": "highlighted", "caption": caption, "pieces": pieces}


def section(title: str, blocks: list[dict]) -> dict:
    return {"title": title, "blocks": blocks}


def cell(value) -> str:
    """Table text: 4 decimals for ratios and losses below 1 (3 significant digits below 0.001), at most 2 for
    larger values (seconds, losses), none for whole numbers (counts, epochs), thousands separators, '-' for
    missing."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        if abs(value) >= 1:
            return f"{value:,.2f}".rstrip("0")
        return f"{value:.3g}" if 0 < abs(value) < 0.001 else f"{value:.4f}"  # a learning rate, not 0.0000
    return str(value)


def signed(value: float) -> str:
    return f"{value:+.4f}"
