"""Scores per language for data that mixes languages: one number over a bilingual file can hide a model that
reads one half and guesses on the other (minilm on English + Chinese reviews did exactly that)."""

from __future__ import annotations

from collections import defaultdict

from lmtune.data.scripts import NAMES, script_of
from lmtune.evaluation.classification import record_correct

MIN_SHARE = 0.1  # a language below this share of the rows is too few rows to score on its own


def accuracy_by_language(records: list[dict]) -> dict:
    """{language: {"rows", "accuracy"}} over classification prediction records, when at least two scripts
    each hold MIN_SHARE of the rows; {} otherwise."""
    groups: defaultdict[str, list[bool]] = defaultdict(list)
    for record in records:
        script = script_of(str(record.get("text", "")))
        if script is not None and "gold" in record and ("label" in record or "labels" in record):
            groups[script].append(record_correct(record))
    big = {s: hits for s, hits in groups.items() if len(hits) >= MIN_SHARE * len(records)}
    if len(big) < 2:
        return {}
    return {NAMES[s]: {"rows": len(hits), "accuracy": round(sum(hits) / len(hits), 4)}
            for s, hits in sorted(big.items())}
