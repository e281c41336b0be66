"""Jinja templates (templates/) that turn report sections into HTML and Markdown; HTML is auto-escaped."""

from __future__ import annotations

import base64

from jinja2 import Environment, PackageLoader, select_autoescape

templates = Environment(loader=PackageLoader("lmtune.reporting", "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
templates.filters["base64"] = lambda data: base64.b64encode(data).decode("ascii")
templates.filters["mdcell"] = lambda value: str(value).replace("|", "\\|").replace("\n", " ")
STRONG = 0.5  # Markdown has no colours: pieces at least this strong (of the text's largest) are bold


def shade(weight: float) -> str:
    """A background for an attribution in [-1, 1]: green for positive, red for negative, stronger when larger."""
    red, green = (0, 150) if weight > 0 else (210, 0)
    return f"rgba({red}, {green}, 0, {abs(weight) * 0.55:.3f})"


templates.filters["shade"] = shade
templates.globals["STRONG"] = STRONG


def render_html(context: dict) -> str:
    return templates.get_template("report.html").render(context)


def render_markdown(context: dict) -> str:
    """`context`: title, subtitle, sections, and `figures`, the folder figure links point into."""
    return templates.get_template("document.md").render(context)
