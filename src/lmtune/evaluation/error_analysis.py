"""Where a single-label classifier goes wrong, read from its prediction records (text, gold, label, score)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd


def confident_mistakes(records: list[dict], k: int = 10) -> list[dict]:
    """The k wrong predictions the model was surest of: often label noise, or a pattern the model over-trusts."""
    wrong = [r for r in records if r["label"] != r["gold"]]
    wrong.sort(key=lambda r: r["score"], reverse=True)
    return [{"text": r["text"], "gold": r["gold"], "predicted": r["label"], "confidence": r["score"]}
            for r in wrong[:k]]


def confused_pairs(records: list[dict], k: int = 10) -> list[dict]:
    """The k most frequent (gold, predicted) mistakes, with the share of the gold class they take."""
    support = Counter(r["gold"] for r in records)
    pairs = Counter((r["gold"], r["label"]) for r in records if r["label"] != r["gold"])
    return [{"gold": gold, "predicted": predicted, "count": count, "share_of_gold": count / support[gold]}
            for (gold, predicted), count in pairs.most_common(k)]


def accuracy_by_length(records: list[dict], buckets: int = 4) -> list[dict]:
    """Accuracy per input-length bucket: word-count quantiles, merged where lengths repeat (fewer buckets)."""
    if not records:
        return []
    words = pd.Series([len(str(r["text"]).split()) for r in records])
    correct = np.array([r["label"] == r["gold"] for r in records])
    if words.nunique() == 1:
        codes = np.zeros(len(words), dtype=int)
    else:
        codes = pd.qcut(words, buckets, labels=False, duplicates="drop").to_numpy()
    out = []
    for code in sorted(set(codes)):
        member = codes == code
        out.append({"words": f"{words[member].min()}-{words[member].max()}", "n": int(member.sum()),
                    "accuracy": float(correct[member].mean())})
    return out
