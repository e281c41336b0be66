"""Token attributions for a trained model's predictions (`lmtune explain`, the report's explanation section).

Each explained row gets, for every input field (text, and text_pair for pairs), the character spans of its
tokens with their attribution to the predicted output, from integrated gradients (occlusion for ONNX models,
which have no gradients). The faithfulness check deletes each row's top-k attributed tokens and k random ones
and reports both mean drops of the predicted score: attributions that mean something make the first larger.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lmtune.errors import UserError
from lmtune.evaluation.attribution import deletion_drops, integrated_gradients, occlusion
from lmtune.numbers import is_number
from lmtune.trained.onnx_model import OnnxModel

FIELDS = ("text", "text_pair")
TOP_K = 3


def explain_rows(model: torch.nn.Module, tokenizer, task, rows: pd.DataFrame, records: list[dict],
                 max_length: int = 256) -> list[dict]:
    """One explanation per row: {"row", "prediction", "score", "method", "delta", "fields": [{"field", "text",
    "spans": [[start, end, attribution], ...]}]}. `records` are the task's prediction records for `rows`."""
    out = []
    for i, record in enumerate(records):
        score = task.score_for(record)
        if score is None:
            raise UserError(f"{task.name} predictions have no single score to attribute: explanations cover "
                            "classification and regression")
        inputs, special, offsets, sequence = _encode(tokenizer, rows.iloc[i], max_length, model)
        method, values, delta = _attribute(model, inputs, score, special, tokenizer.pad_token_id)
        with torch.inference_mode():
            value = float(score(model, inputs)[0])
        out.append({"row": int(record.get("row", i)), "prediction": _prediction(record), "score": round(value, 4),
                    "method": method, "delta": round(delta, 5),
                    "fields": _fields(rows.iloc[i], values, offsets, sequence)})
    return out


def faithfulness(model: torch.nn.Module, tokenizer, task, rows: pd.DataFrame, records: list[dict],
                 k: int = TOP_K, seed: int = 0, max_length: int = 256) -> dict:
    """{"k", "rows", "top_k_drop", "random_drop"}: mean drops of the predicted score over the rows when their
    k most attributed tokens, or k random ones, are deleted."""
    rng = np.random.default_rng(seed)
    top, random = [], []
    for i, record in enumerate(records):
        score = task.score_for(record)
        inputs, special, _, _ = _encode(tokenizer, rows.iloc[i], max_length, model)
        _, values, _ = _attribute(model, inputs, score, special, tokenizer.pad_token_id)
        drops = deletion_drops(model, inputs, score, values, special, k, rng)
        if drops:
            top.append(drops[0])
            random.append(drops[1])
    return {"k": k, "rows": len(top), "top_k_drop": round(float(np.mean(top)), 4) if top else None,
            "random_drop": round(float(np.mean(random)), 4) if random else None}


def _attribute(model, inputs, score, special, pad_id) -> tuple[str, np.ndarray, float]:
    if isinstance(model, OnnxModel):
        return "occlusion", occlusion(model, inputs, score, special, pad_id), 0.0
    values, delta = integrated_gradients(model, inputs, score, special, pad_id)
    return "integrated gradients", values, delta


def _encode(tokenizer, row: pd.Series, max_length: int, model: torch.nn.Module):
    """The row as the model reads it (a batch of one, on the model's device), its special-token mask, each token's
    character span and which input field (0 text, 1 text_pair) it came from."""
    pair = row.get("text_pair") if "text_pair" in row.index else None
    enc = tokenizer(str(row["text"]), None if pair is None else str(pair), truncation=True, max_length=max_length,
                    return_tensors="pt", return_special_tokens_mask=True, return_offsets_mapping=True)
    special = enc.pop("special_tokens_mask").bool()
    offsets = enc.pop("offset_mapping")[0].tolist()
    device = next(model.parameters()).device
    return {k: v.to(device) for k, v in enc.items()}, special, offsets, enc.sequence_ids(0)


def _fields(row: pd.Series, values: np.ndarray, offsets: list, sequence: list) -> list[dict]:
    fields = []
    for index, name in enumerate(FIELDS):
        if name not in row.index or row[name] is None:
            continue
        spans = [[start, end, float(f"{v:.4g}")] for (start, end), v, s in zip(offsets, values, sequence, strict=True)
                 if s == index and end > start]
        fields.append({"field": name, "text": str(row[name]), "spans": spans})
    return fields


def _prediction(record: dict):
    return record.get("label", record.get("labels", record.get("score")))


def report_explanations(model: torch.nn.Module, tokenizer, task, rows: pd.DataFrame, records: list[dict],
                        n: int, seed: int) -> dict | None:
    """What the report's explanation section shows (explanations.json): the n/2 worst errors (most confident
    wrong classes; largest regression errors) and n/2 other rows drawn at random, explained, and the faithfulness
    check over n rows drawn at random (each explanation is a few dozen forward and backward passes: a large
    model's cost grows with n). None when the task has no score to attribute or the records carry no gold values."""
    if n == 0 or not records or "gold" not in records[0] or task.score_for(records[0]) is None:
        return None
    worst, others, titles = _worst_first(records)
    rng = np.random.default_rng(seed)
    errors = worst[: n // 2]
    rest = [i for i in others if i not in set(errors)]
    picked = sorted(rng.choice(rest, min(len(rest), n - len(errors)), replace=False).tolist()) if rest else []
    sample = sorted(rng.choice(len(records), min(len(records), n), replace=False).tolist())

    def explained(chosen: list[int]) -> list[dict]:
        found = explain_rows(model, tokenizer, task, rows.iloc[chosen], [records[i] for i in chosen], task.max_length)
        return [{**e, "gold": records[i]["gold"]} for e, i in zip(found, chosen, strict=True)]

    groups = [{"title": title, "rows": explained(chosen)} for title, chosen in zip(titles, (errors, picked),
                                                                                    strict=True)]
    method = next((g["rows"][0]["method"] for g in groups if g["rows"]), "integrated gradients")
    check = faithfulness(model, tokenizer, task, rows.iloc[sample], [records[i] for i in sample],
                         seed=seed, max_length=task.max_length)
    return {"method": method, "groups": groups, "faithfulness": check}


def _worst_first(records: list[dict]) -> tuple[list[int], list[int], tuple[str, str]]:
    """(rows from the worst error down, the rows to sample the others from, the two groups' titles)."""
    if is_number(records[0]["gold"]):
        error = [abs(float(_prediction(r)) - float(r["gold"])) for r in records]
        order = sorted(range(len(records)), key=lambda i: -error[i])
        return order, order, ("Largest errors", "Other rows")
    wrong = [i for i, r in enumerate(records) if _prediction(r) != r["gold"]]
    right = [i for i, r in enumerate(records) if _prediction(r) == r["gold"]]
    return sorted(wrong, key=lambda i: -records[i].get("score", 0.0)), right, ("Most confident errors",
                                                                              "Correct predictions")


def text_pieces(field: dict) -> list[tuple[str, float]]:
    """The field's text cut into token spans and the gaps between them, each with its attribution scaled so the
    largest |attribution| in the text is 1 (gaps 0)."""
    content, spans = field["text"], field["spans"]
    largest = max((abs(a) for _, _, a in spans), default=0.0) or 1.0
    pieces, at = [], 0
    for start, end, value in spans:
        if start > at:
            pieces.append((content[at:start], 0.0))
        pieces.append((content[start:end], round(value / largest, 3)))
        at = end
    if at < len(content):
        pieces.append((content[at:], 0.0))
    return pieces
