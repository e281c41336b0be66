"""The default model, picked by the language of the training texts when the user names none.

The signal is the writing system of each row (`lmtune.data.scripts`): cheap, needs no model downloaded, and
it is what decides whether a vocabulary covers the text (minilm's English WordPiece vocabulary maps 60% of
Chinese tokens to [UNK]). Latin-script text goes to the English models, Chinese to the Chinese default,
and a mix, or another script, to a multilingual model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from lmtune.data.scripts import NAMES, script_shares
from lmtune.models.registry import BUILTIN

# By language and kind. The Chinese encoder was chosen by fine-tuning both candidates on the shared Chinese
# sets (README, "Chinese"): the MIT-licensed multilingual-e5-small is preferred unless the non-commercial
# m3e-small beats it by more than a point.
DEFAULTS = {
    "en": {"encoder": "minilm", "decoder": "smollm2-135m"},
    "zh": {"encoder": "multilingual-e5-small", "decoder": "qwen2.5-coder-0.5b"},
    "multilingual": {"encoder": "multilingual-e5-small", "decoder": "qwen2.5-coder-0.5b"},
}
# A file counts as one language when at least this share of its rows is written in that script.
DOMINANT = 0.9
SAMPLE_ROWS = 2000


@dataclass(frozen=True)
class Choice:
    name: str
    reason: str


def choose_model(texts: Iterable[str], kind: str) -> Choice:
    """The built-in `kind` ("encoder"/"decoder") model that reads `texts`, with a one-line reason."""
    shares = script_shares(texts)
    if shares["latin"] >= DOMINANT:
        language = "en"
    elif shares["cjk"] >= DOMINANT:
        language = "zh"
    else:
        language = "multilingual"
    name = DEFAULTS[language][kind]
    found = ", ".join(f"{share:.0%} {NAMES[script]}" for script, share in shares.items() if share >= 0.005)
    spec = BUILTIN[name]
    return Choice(name, f"the training rows are {found or 'without letters'}; {name} reads "
                        f"{', '.join(spec.languages)} ({spec.licence})")


def row_texts(rows: pd.DataFrame, fields: Iterable[str], limit: int = SAMPLE_ROWS) -> list[str]:
    """What the model will read in up to `limit` rows: the task's input fields (strings, token lists) and the
    contents of chat messages; labels are left out, since they are often English words on Chinese text."""
    columns = [c for c in (*fields, "messages") if c in rows.columns]
    sample = rows if len(rows) <= limit else rows.sample(limit, random_state=0)
    return [" ".join(_strings(row[c]) for c in columns) for _, row in sample.iterrows()]


def _strings(cell) -> str:
    if isinstance(cell, str):
        return cell
    if isinstance(cell, dict):
        return str(cell.get("content") or "")
    if hasattr(cell, "__iter__"):
        return " ".join(_strings(item) for item in cell)
    return ""
