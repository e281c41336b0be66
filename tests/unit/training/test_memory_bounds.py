"""What a huge cell or a huge label set costs stays bounded."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmtune.config import TaskConfig
from lmtune.data.clean import CHARS_PER_TOKEN
from lmtune.evaluation import baselines
from lmtune.evaluation.classification import MATRIX_LIMIT, TOP_CONFUSIONS, single_label_metrics
from lmtune.tasks.classification import TOP_PROBABILITIES, Classification
from lmtune.tasks.text_inputs import encode_texts


class Recording:
    """A tokenizer that records what it was given."""

    def __init__(self):
        self.seen = []

    def __call__(self, texts, pairs, truncation, max_length):
        self.seen.append((texts, pairs))
        return {"input_ids": [[1] * min(len(t), max_length) for t in texts]}


def test_a_huge_cell_is_cut_before_tokenising_and_before_the_baselines():
    huge = "word " * 2_000_000  # 10 MB
    rows = pd.DataFrame({"text": [huge, "short"], "text_pair": ["x", huge]})
    tokenizer = Recording()
    features = encode_texts(rows, tokenizer, max_length=64, pair=True)
    texts, pairs = tokenizer.seen[0]
    assert len(texts[0]) == len(pairs[1]) == CHARS_PER_TOKEN * 64 and texts[1] == "short"
    assert len(features[0]["input_ids"]) == 64

    class Task:
        pair, max_length = True, 64

    assert max(map(len, baselines._texts(Task(), rows))) <= 2 * CHARS_PER_TOKEN * 64 + 1


def test_many_classes_get_fewer_tfidf_features():
    features = baselines._model("tfidf_logreg", False, classes=10_000).steps[0][1].transformer_list
    assert [t.max_features for _, t in features] == [2_000, 2_000]
    features = baselines._model("tfidf_logreg", False, classes=2).steps[0][1].transformer_list
    assert [t.max_features for _, t in features] == [100_000, 100_000]


def test_a_large_label_set_keeps_its_top_confusions_not_the_matrix():
    k, rng = MATRIX_LIMIT + 10, np.random.default_rng(0)
    gold = rng.integers(0, k, 500)
    predicted = np.where(np.arange(500) % 5 == 0, (gold + 1) % k, gold)
    predicted[:30] = 7
    probs = np.eye(k)[predicted]
    metrics = single_label_metrics(probs, gold, [f"c{i}" for i in range(k)])
    assert "confusion_matrix" not in metrics
    top = metrics["top_confusions"]
    assert len(top) == TOP_CONFUSIONS
    assert [t["count"] for t in top] == sorted((t["count"] for t in top), reverse=True)
    assert all(t["gold"] != t["predicted"] for t in top)
    assert "confusion_matrix" in single_label_metrics(np.eye(3)[[0, 1, 2]], np.array([0, 1, 1]), ["a", "b", "c"])


def test_predictions_of_a_large_label_set_carry_their_most_likely_classes_only():
    for k in (MATRIX_LIMIT, MATRIX_LIMIT + 1):
        task = Classification(TaskConfig(name="classification"), labels=[f"c{i}" for i in range(k)])
        probs = np.full((2, k), 0.5 / (k - 3))
        probs[:, :3] = 0.0
        probs[0, [5, 9]], probs[1, [2, 0, 1]] = [0.3, 0.2], [0.25, 0.15, 0.1]
        records = task.records(pd.DataFrame({"text": ["a", "b"]}), probs / probs.sum(axis=1, keepdims=True))
        assert [r["label"] for r in records] == ["c5", "c2"]
        if k <= MATRIX_LIMIT:
            assert len(records[0]["probabilities"]) == k and "top_probabilities" not in records[0]
        else:
            top = records[1]["top_probabilities"]
            assert "probabilities" not in records[1] and len(top) == TOP_PROBABILITIES
            assert list(top)[:3] == ["c2", "c0", "c1"] and list(top.values()) == sorted(top.values(), reverse=True)


def test_logistic_regression_is_left_out_where_its_solver_would_not_fit_in_memory():
    many = Classification(TaskConfig(name="classification"), labels=[f"c{i}" for i in range(10_000)])
    assert "tfidf_logreg" not in baselines._names(many, 16_000)  # 160M scores per dense matrix
    assert "tfidf_logreg" in baselines._names(many, 1_000) and "majority" in baselines._names(many, 16_000)
