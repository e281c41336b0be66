"""SQuAD v1.1 exact match and token F1, and the span search that turns start/end logits into an answer.

The metrics are written out here rather than taken from `evaluate`'s "squad" metric, which downloads its
script from the Hugging Face hub at run time; the official script is a few lines of normalisation and
counting, reproduced below. Chinese and Japanese are written without spaces, so whitespace tokens would
make a whole answer one "word"; there answers are scored as CMRC 2018's official script does: punctuation
removed, exact match on what is left, and F1 from the longest common run of segments, where a segment is
one CJK character or one run of other letters and digits ("308分" is "308", "分").
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

import numpy as np

from lmtune.data.scripts import CJK

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCTUATION = set(string.punctuation)
_CJK = re.compile(f"[{CJK}]")
_SEGMENT = re.compile(f"[{CJK}]|[^\\s{CJK}]+")
# CMRC's list of characters to drop includes these symbols besides punctuation proper. Its list leaves out
# ASCII ,.?!;:'"() (its tokenizer splits them off as words); here every punctuation character goes, as the
# Chinese and English punctuation a reader would not count as part of an answer.
_CMRC_SYMBOLS = set("^`+=~")


def written_without_spaces(text: str) -> bool:
    """Most letters are CJK. Decided on the context, not the answer: a Chinese answer may be just "308"."""
    letters = [ch for ch in text if ch.isalpha()]
    return 2 * sum(bool(_CJK.match(ch)) for ch in letters) > len(letters)


def normalize_answer(text: str, by_char: bool = False) -> str:
    """SQuAD's normalisation: lower-case, drop ASCII punctuation and English articles, single spaces.

    `by_char`: lower-case and drop all Unicode punctuation (full-width ，。？《》 included), CMRC's symbols and all
    whitespace.
    """
    text = text.lower()
    if by_char:
        return "".join(ch for ch in _without_punctuation(text) if not ch.isspace())
    text = "".join(ch for ch in text if ch not in _ASCII_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _without_punctuation(text: str) -> str:
    return "".join(ch for ch in text if ch not in _CMRC_SYMBOLS and not unicodedata.category(ch).startswith("P"))


def segments(text: str) -> list[str]:
    """CMRC 2018's mixed segmentation, after lower-casing and removing punctuation: each CJK character alone,
    each run of other non-space characters as one segment."""
    return _SEGMENT.findall(_without_punctuation(text.lower()))


def longest_common_run(a: list[str], b: list[str]) -> int:
    """Length of the longest contiguous run of segments shared by a and b (CMRC's F1 counts this, not a bag)."""
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def exact_match(prediction: str, gold: str, by_char: bool = False) -> float:
    return float(normalize_answer(prediction, by_char) == normalize_answer(gold, by_char))


def f1(prediction: str, gold: str, by_char: bool = False) -> float:
    if by_char:
        predicted, expected = segments(prediction), segments(gold)
        common = longest_common_run(predicted, expected)
    else:
        predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
        common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def question_scores(prediction: str, golds: list[str], by_char: bool = False) -> tuple[float, float]:
    """(exact match, F1) against the closest gold answer."""
    return (max(exact_match(prediction, g, by_char) for g in golds),
            max(f1(prediction, g, by_char) for g in golds))


def squad_metrics(predictions: list[str], golds: list[list[str]], by_char: list[bool]) -> dict:
    scores = [question_scores(p, g, c) for p, g, c in zip(predictions, golds, by_char, strict=True)]
    n = len(scores)
    return {"exact_match": sum(s[0] for s in scores) / n if n else 0.0,
            "f1": sum(s[1] for s in scores) / n if n else 0.0, "questions": n}


def best_span(context: str, windows: list[tuple[np.ndarray, list]], n_best: int, max_answer_length: int) -> dict:
    """The highest-scoring answer span over all windows of one context.

    Each window is (logits of shape (tokens, 2) holding start and end logits, offsets): offsets[i] is token
    i's (start, end) character span in the context, or None for question and special tokens. A span's
    score is start + end logit; spans must lie in the context, end at or after their start and be at most
    max_answer_length tokens. `score` in the result is the best span's softmax share of the top n_best
    spans, a confidence in 0..1 rather than a raw logit sum.
    """
    spans = []
    for logits, offsets in windows:
        starts = np.argsort(-logits[:, 0], kind="stable")[:n_best]
        ends = np.argsort(-logits[:, 1], kind="stable")[:n_best]
        for s in starts:
            for e in ends:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                spans.append((float(logits[s, 0] + logits[e, 1]), offsets[s][0], offsets[e][1]))
    if not spans:
        return {"answer": "", "start": 0, "end": 0, "score": 0.0}
    top = sorted(spans, key=lambda span: -span[0])[:n_best]
    scores = np.array([span[0] for span in top])
    share = np.exp(scores - scores.max())
    _, start, end = top[0]
    return {"answer": context[start:end], "start": int(start), "end": int(end),
            "score": round(float(share[0] / share.sum()), 6)}
