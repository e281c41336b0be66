"""Tag sequences: repairing invalid predictions, entity spans and entity-level metrics (seqeval).

seqeval does the scoring (conlleval semantics) and the chunking. The repair and the constrained decoding are ours:
seqeval only reads invalid sequences leniently, while predictions written to a file or served should be valid tag
sequences, and no maintained library decodes a softmax tagger under BIO rules (CRF packages learn their own
transition scores; AllenNLP's allowed_transitions is unmaintained).
"""

from __future__ import annotations

import warnings

import numpy as np
from seqeval.metrics import accuracy_score, classification_report
from seqeval.metrics.sequence_labeling import get_entities


def repair_tags(tags: list[str], bioes: bool = False) -> list[str]:
    """Make a predicted tag sequence valid the way conlleval reads it: a chunk starts wherever its type
    starts, so `I-PER` after `O` or after `B-LOC` becomes `B-PER`. With BIOES, an `E-X` that starts a chunk
    becomes `S-X`, and a `B-X`/`I-X` not followed by `I-X`/`E-X` ends its chunk: `S-X`/`E-X`."""
    out = list(tags)
    for i, tag in enumerate(out):
        prefix, kind = tag[:2], tag[2:]
        if prefix in ("I-", "E-") and (i == 0 or out[i - 1] not in (f"B-{kind}", f"I-{kind}")):
            out[i] = ("B-" if prefix == "I-" or not bioes else "S-") + kind
    if bioes:
        # Ends are fixed after starts: a start repair can only turn the next tag into a chunk start.
        for i, tag in enumerate(out):
            prefix, kind = tag[:2], tag[2:]
            following = out[i + 1] if i + 1 < len(out) else "O"
            if prefix in ("B-", "I-") and following not in (f"I-{kind}", f"E-{kind}"):
                out[i] = ("S-" if prefix == "B-" else "E-") + kind
    return out


def best_valid_tags(log_probs: np.ndarray, labels: list[str], bioes: bool = False) -> list[int]:
    """The tag sequence with the highest total log-probability among valid ones (Viterbi): `I-X` only inside an
    X chunk, and with BIOES every chunk closed by `E-X`/`S-X`. Per-word argmax followed by repair splits a long
    entity wherever one word's tag wavers (an `O` or another type inside an organisation name), which costs a
    wrong entity and a missed one; here the whole sentence decides. Labels without a prefix are always allowed."""
    allowed = np.array([[_may_follow(a, b, bioes) for b in labels] for a in labels])
    start = np.array([_may_follow("O", b, bioes) for b in labels])
    end = np.array([_may_follow(a, "O", bioes) for a in labels])
    penalty = np.where(allowed, 0.0, -np.inf)
    score = np.where(start, log_probs[0], -np.inf)
    back = np.zeros(log_probs.shape, dtype=int)
    for i in range(1, len(log_probs)):
        candidates = score[:, None] + penalty  # [previous, next]
        back[i] = candidates.argmax(axis=0)
        score = candidates.max(axis=0) + log_probs[i]
    path = [int(np.where(end, score, -np.inf).argmax())]
    for i in range(len(log_probs) - 1, 0, -1):
        path.append(int(back[i][path[-1]]))
    return path[::-1]


def _may_follow(before: str, tag: str, bioes: bool) -> bool:
    prefix, kind = tag[:2], tag[2:]
    inside = before in (f"B-{kind}", f"I-{kind}")
    if prefix in ("I-", "E-") and not inside:
        return False
    # With BIOES an open chunk must continue or end.
    return not (bioes and before[:2] in ("B-", "I-") and not (prefix in ("I-", "E-") and kind == before[2:]))


def entity_spans(tags: list[str], scores: list[float], spans: list[tuple[int, int]], text: str) -> list[dict]:
    """Entities of a (valid) tag sequence with character offsets into `text`.

    `spans[i]` is word i's (start, end) in `text`; an entity's score is the mean of its words' scores.
    """
    out = []
    for kind, first, last in get_entities(tags):
        start, end = spans[first][0], spans[last][1]
        score = sum(scores[first:last + 1]) / (last - first + 1)
        out.append({"entity": kind, "text": text[start:end], "start": start, "end": end, "score": round(score, 4)})
    return out


def tagging_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """Entity-level precision/recall/F1 (micro over all entities, and per type) and word accuracy."""
    with warnings.catch_warnings():  # seqeval's macro average is NaN (with a warning) when no entity exists
        warnings.simplefilter("ignore", RuntimeWarning)
        report = classification_report(gold, predicted, output_dict=True, zero_division=0)
    overall = report["micro avg"]
    per_type = {kind: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                       "f1": float(v["f1-score"]), "support": int(v["support"])}
                for kind, v in report.items() if not kind.endswith(" avg")}
    return {"overall_f1": float(overall["f1-score"]), "overall_precision": float(overall["precision"]),
            "overall_recall": float(overall["recall"]), "overall_accuracy": float(accuracy_score(gold, predicted)),
            "entities": int(overall["support"]), "per_type": per_type}
