"""Text-generation metrics: ROUGE, BLEU/chrF and exact match between generated and reference texts.

Generation tasks (instruction following, summarisation, translation, classification by generation) have no label
to compare against, only a reference text. These metrics score the overlap per row (for error analysis) and over
the whole evaluation set (for the report and best-model selection), on a 0-100 scale like the other lmtune metrics.
They must work for any language lmtune is fine-tuned on, including those written without spaces between words.
"""

from __future__ import annotations

import re
import statistics
from functools import lru_cache

from lmtune.data.scripts import CJK

KINDS = ("rouge", "bleu", "exact")
_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

# Scripts written without spaces between words: Han (with its iteration mark and the extension planes), Hiragana,
# Katakana (with its phonetic extensions and half-width forms) and Hangul (syllables and jamo).
_NO_SPACE = CJK + "\u3005\u31f0-\u31ff\uff66-\uff9f\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\U00020000-\U0003134f"
# One character of those scripts, or a run of other word characters. The lookahead keeps punctuation that shares
# the kana block (the middle dot ・) out of the tokens.
_TOKEN = re.compile(f"(?=\\w)[{_NO_SPACE}]|[^\\W{_NO_SPACE}]+")
_HAS_KANA_OR_HANGUL = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_HAS_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
# Sentence-final marks a model adds or drops without changing the answer ("Positive." vs "positive").
_TRAILING = " .,;:!?…。．，；：！？"


class ScriptAwareTokenizer:
    """Tokenizer for rouge_score. Its default one deletes every character outside [a-z0-9], so a Chinese or
    Japanese pair scores 0 however close the texts are. This one lowercases, splits on non-word characters and
    makes each character of a script without spaces its own token, while latin words and numbers stay whole.
    It does not stem: the Porter stemmer is English-only and would treat other languages unevenly."""

    def tokenize(self, text: str) -> list[str]:
        return _TOKEN.findall(text.lower())


def generation_metrics(predictions: list[str], references: list[str], kinds: list[str]) -> dict[str, float]:
    """Corpus-level scores of `predictions` against `references` (same order), for each of `kinds`, plus `rows`.
    ROUGE is the mean of the per-row F-measures; BLEU and chrF are sacrebleu's corpus statistics."""
    _check_kinds(kinds)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references: they must pair up")
    out: dict[str, float] = {"rows": len(predictions)}
    if not predictions:
        return out
    out["repeat_loops"] = _percent(statistics.fmean(map(repeats_itself, predictions)))
    if "rouge" in kinds:
        rows = [_rouge_fmeasures(p, r) for p, r in zip(predictions, references, strict=True)]
        out.update({k: _percent(statistics.fmean(row[k] for row in rows)) for k in _ROUGE_TYPES})
    if "bleu" in kinds:
        out.update(_corpus_bleu(predictions, references))
    if "exact" in kinds:
        out["exact_match"] = _percent(
            statistics.fmean(_exact(p, r) for p, r in zip(predictions, references, strict=True))
        )
    return out


def row_scores(prediction: str, reference: str, kinds: list[str]) -> dict[str, float]:
    """The same metrics for one row (sentence-level BLEU and chrF), for per-row error analysis."""
    _check_kinds(kinds)
    out: dict[str, float] = {}
    if "rouge" in kinds:
        out.update({k: _percent(v) for k, v in _rouge_fmeasures(prediction, reference).items()})
    if "bleu" in kinds:
        out.update(_sentence_bleu(prediction, reference))
    if "exact" in kinds:
        out["exact_match"] = _percent(_exact(prediction, reference))
    return out


def repeats_itself(text: str, min_span: int = 12) -> bool:
    """True when the text holds a loop: a stretch of at least `min_span` words (characters, for scripts without
    spaces) that is one unit said three or more times in a row, as a degenerate greedy answer does ("美丽的美丽
    的美丽的美丽的…", or a sentence over and over). A word or phrase that merely recurs is not a loop."""
    tokens = ScriptAwareTokenizer().tokenize(text)
    for period in range(1, len(tokens) // 3 + 1):
        run = 0  # how many tokens in a row equal the token one period later
        for a, b in zip(tokens, tokens[period:], strict=False):
            run = run + 1 if a == b else 0
            if run + period >= max(3 * period, min_span):
                return True
    return False


def _check_kinds(kinds: list[str]) -> None:
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown generation metric kind(s) {unknown}; valid kinds are {list(KINDS)}")


def _percent(fraction: float) -> float:
    return round(100 * fraction, 2)


@lru_cache(maxsize=1)
def _rouge_scorer():
    # Imported here: rouge_score pulls in nltk, which only generation runs need.
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(_ROUGE_TYPES), use_stemmer=False, tokenizer=ScriptAwareTokenizer())


def _rouge_fmeasures(prediction: str, reference: str) -> dict[str, float]:
    scores = _rouge_scorer().score(reference, prediction)
    return {k: scores[k].fmeasure for k in _ROUGE_TYPES}


def _bleu_tokenizer(references: list[str]) -> str:
    # sacrebleu's "zh" is pure Python and splits Han characters but leaves kana and Hangul runs whole (a whole
    # Japanese clause would be one token); its "ja-mecab"/"ko-mecab" need extra packages, so those scripts fall back
    # to "char", which needs none. A corpus gets one tokenizer so that its n-gram statistics stay comparable.
    if any(_HAS_KANA_OR_HANGUL.search(r) for r in references):
        return "char"
    if any(_HAS_HAN.search(r) for r in references):
        return "zh"
    return "13a"


def _corpus_bleu(predictions: list[str], references: list[str]) -> dict[str, float]:
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(predictions, [references], tokenize=_bleu_tokenizer(references))
    return {"bleu": round(bleu.score, 2), "chrf": round(sacrebleu.corpus_chrf(predictions, [references]).score, 2)}


def _sentence_bleu(prediction: str, reference: str) -> dict[str, float]:
    import sacrebleu

    bleu = sacrebleu.sentence_bleu(prediction, [reference], tokenize=_bleu_tokenizer([reference]))
    return {"bleu": round(bleu.score, 2), "chrf": round(sacrebleu.sentence_chrf(prediction, [reference]).score, 2)}


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(_TRAILING)


def _exact(prediction: str, reference: str) -> float:
    return float(_normalise(prediction) == _normalise(reference))
