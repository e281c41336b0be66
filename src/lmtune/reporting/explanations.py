"""The report's explanation section: token attributions drawn over the text of the most confident errors and of a
sample of correct rows, and the faithfulness check (explanations.json, written by lmtune.trained.explain)."""

from __future__ import annotations

import json

from lmtune.reporting.blocks import highlighted, section, table, text
from lmtune.reporting.run_files import RunFiles
from lmtune.trained.explain import text_pieces

FILE = "explanations.json"


def explanation_sections(run: RunFiles) -> list[dict]:
    path = run.path / FILE
    if not path.exists():
        return []
    found = json.loads(path.read_text(encoding="utf-8"))
    blocks = [text(f"Token attributions by {found['method']} for the predicted output: green pushed the prediction "
                   "up, red pushed it down; the stronger the colour, the larger the share.")]
    check = found.get("faithfulness")
    if check and check.get("rows"):
        blocks.append(table(["deleted tokens", "mean drop of the predicted score"],
                            [[f"top {check['k']} attributed", check["top_k_drop"]],
                             [f"{check['k']} at random", check["random_drop"]]],
                            caption=f"Faithfulness over {check['rows']} rows: attributions that mean something make "
                                    "the first drop larger than the second."))
    for group in found["groups"]:
        if group["rows"]:
            blocks.append(text(f"{group['title']}:"))
            blocks += [highlighted(_caption(row), text_pieces(field))
                       for row in group["rows"] for field in row["fields"]]
    return [section("Explanations", blocks)]


def _caption(row: dict) -> str:
    gold = f", gold {row['gold']}" if "gold" in row else ""
    return f"row {row['row']}: predicted {row['prediction']} ({row['score']:.3f}{gold})"
