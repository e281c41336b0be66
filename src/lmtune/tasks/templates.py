"""Task templates: plain columns turned into chats with a fixed, documented prompt, so summarisation,
translation and classification-by-generation need no prompt engineering.

    summarisation   user: "Summarise the following text.\\n\\n{source}"                 assistant: {target}
    translation     user: "Translate the following text from {source_lang} to {target_lang}.\\n\\n{source}"
                                                                                        assistant: {target}
    classification  user: "Classify the text as one of: {labels}. Answer with the label only.\\n\\nText: {text}"
                                                                                        assistant: {label}

Classification uses the label values themselves as the words the model answers with, so name labels in
words ("positive", not "1"). The same prompt wraps the input at prediction time (`prompt_for`).
"""

from __future__ import annotations

import pandas as pd

from lmtune.config import DataConfig
from lmtune.data import check_required, clean_text, read_table, select_columns
from lmtune.errors import ConfigError
from lmtune.tasks.base import TaskSettings

PROMPTS = {
    "summarisation": "Summarise the following text.\n\n{source}",
    "translation": "Translate the following text from {source_lang} to {target_lang}.\n\n{source}",
    "classification": "Classify the text as one of: {labels}. Answer with the label only.\n\nText: {source}",
}
METRICS = {"summarisation": ["rouge"], "translation": ["bleu"], "classification": ["exact"]}


def columns(template: str, d: DataConfig) -> dict[str, object]:
    """canonical name → the user's column: classification reads text/label columns, the others source/target."""
    if template == "classification":
        return {"source": d.text_column, "target": d.label_column}
    if d.source_column is None or d.target_column is None:
        raise ConfigError(f"task.template={template} reads data.source_column and data.target_column "
                          "(--source-column, --target-column); set both")
    return {"source": d.source_column, "target": d.target_column}


def read_template_rows(path: str, template: str, d: DataConfig) -> pd.DataFrame:
    """source/target columns, cleaned and checked: every row needs both."""
    mapping = columns(template, d)
    table = read_table(path, d.format, d.header, list(mapping.values()),
                       allow_extra_fields=d.extra_fields == "ignore")
    rows = clean_text(select_columns(table, mapping), ["source", "target"], d.lowercase)
    check_required(rows, ["source", "target"], label_columns=["target"])
    return rows


def prompt_for(source: str, cfg: TaskSettings, labels: list[str]) -> str:
    """The user message that wraps `source`, from sft's settings (`cfg`: template, source_lang, target_lang)."""
    return PROMPTS[cfg.template].format(source=source, source_lang=cfg.source_lang, target_lang=cfg.target_lang,
                                        labels=", ".join(labels))


def to_chats(rows: pd.DataFrame, cfg: TaskSettings, labels: list[str], system: str | None) -> pd.DataFrame:
    head = [{"role": "system", "content": system}] if system else []
    chats = [[*head, {"role": "user", "content": prompt_for(src, cfg, labels)},
              {"role": "assistant", "content": str(tgt)}] for src, tgt in zip(rows["source"], rows["target"],
                                                                               strict=True)]
    out = pd.DataFrame({"messages": chats}, index=rows.index, dtype=object)
    out.attrs = dict(rows.attrs)
    return out
