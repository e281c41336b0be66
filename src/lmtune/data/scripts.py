"""Writing systems in text: which characters metrics and baselines read one at a time (a whole Chinese clause
is otherwise a single "word"), and which scripts a data set is written in (to pick a model that reads it)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# CJK ideographs (with extension A and compatibility forms) and Japanese kana.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{CJK}]")
# Words as CoNLL-style data and the BiLSTM baseline split text: each CJK character alone (Chinese has no spaces
# between words, and Chinese NER data tags one character per line), runs of letters and digits, and each
# punctuation mark on its own.
WORD = re.compile(rf"[{CJK}]|[^\W{CJK}]+|[^\w\s]")
# Characters written with no space beside each other: CJK, CJK punctuation (。、「」) and full-width forms (，！).
_NO_SPACE = re.compile(f"[{CJK}\u3000-\u303f\uff00-\uffef]")
# Basic Latin and Latin-1 letters plus Latin Extended-A/B: English and the other Latin-script languages.
_LATIN = re.compile("[A-Za-z\u00c0-\u024f]")

SCRIPTS = ("latin", "cjk", "other")
NAMES = {"latin": "Latin-script (English)", "cjk": "Chinese/Japanese", "other": "other scripts"}  # for people


def script_of(text: str) -> str | None:
    """The script most of a text's letters are in: "latin", "cjk" or "other"; None for a text with no letters.

    A CJK character carries about a word's worth of meaning, so one counts as much as a whole Latin word
    would (~4 letters): a Chinese review with a brand name in Latin letters is still Chinese."""
    counts = Counter()
    for ch in text:
        if not ch.isalpha():
            continue
        if _CJK.match(ch):
            counts["cjk"] += 4
        elif _LATIN.match(ch):
            counts["latin"] += 1
        else:
            counts["other"] += 1
    return counts.most_common(1)[0][0] if counts else None


def script_shares(texts: Iterable[str]) -> dict[str, float]:
    """Share of the texts (with letters) written mainly in each script, e.g. {"latin": 0.5, "cjk": 0.5,
    "other": 0.0}; all zeros when no text has letters."""
    counts = Counter(s for s in map(script_of, texts) if s is not None)
    total = sum(counts.values())
    return {s: counts[s] / total if total else 0.0 for s in SCRIPTS}


def join_words(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Words joined into text as it is written, and each word's (start, end) in it: a space between words,
    except between two in a script written without spaces ("高 勇 ， 男" is "高勇，男")."""
    text, spans = "", []
    for word in words:
        if text and word and not (_NO_SPACE.match(text[-1]) and _NO_SPACE.match(word[0])):
            text += " "
        spans.append((len(text), len(text) + len(word)))
        text += word
    return text, spans
