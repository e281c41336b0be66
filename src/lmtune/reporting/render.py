"""Jinja templates (templates/) that turn report sections into HTML and Markdown; HTML is auto-escaped."""

from __future__ import annotations

import base64

from jinja2 import Environment, PackageLoader, select_autoescape

templates = Environment(loader=PackageLoader("lmtune.reporting", "templates"), autoescape=select_autoescape(["html"]),
                        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
templates.filters["base64"] = lambda data: base64.b64encode(data).decode("ascii")
templates.filters["mdcell"] = lambda value: str(value).replace("|", "\\|").replace("\n", " ")


def render_html(context: dict) -> str:
    return templates.get_template("report.html").render(context)


def render_markdown(context: dict) -> str:
    """`context`: title, subtitle, sections, and `figures`, the folder figure links point into."""
    return templates.get_template("document.md").render(context)
