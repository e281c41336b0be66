"""Baselines a fine-tuned classifier has to beat, scored on the very rows the model was evaluated on.

TF-IDF + logistic regression is the classic strong cheap baseline (seconds on CPU); the majority class is the
floor; a BiLSTM trained from scratch (`lstm_baseline`, task.lstm_baseline) shows what reading word order buys
without pretraining. All are fitted on the run's own training split, so a lift over them is a like-for-like
comparison.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import MultiLabelBinarizer

from lmtune.data.clean import within_view
from lmtune.evaluation.bootstrap import paired_lift_ci
from lmtune.evaluation.classification import multi_label_metrics, record_correct, single_label_metrics
from lmtune.evaluation.lstm_baseline import BiLSTMClassifier
from lmtune.training.progress import WorkProgress

BASELINES = ("tfidf_logreg", "majority", "bilstm")
LIFTS = {"lift": "tfidf_logreg", "lift_bilstm": "bilstm"}  # metrics key -> the baseline the model is compared with
log = logging.getLogger(__name__)
COEFFICIENTS = 20_000_000  # the most classes x features TF-IDF + LR may hold: 160 MB of float64 weights
# The most training rows x classes LR's solver may hold: it keeps several dense matrices of that shape (scores,
# probabilities, their gradient); 10,000 classes x 16,000 rows took it past 5 GB.
SCORES = 40_000_000


def run_baselines(task, splits: dict[str, pd.DataFrame], predictions: list[dict]) -> dict:
    """{"baselines": ...} for a run of a task that has baselines (classification) and asks for them, else {}. A
    baseline that cannot be fitted (e.g. texts with no usable n-grams, or torch failing in the BiLSTM) is logged
    and skipped: it must not cost the trained model."""
    if not (task.has_baselines and task.cfg.baselines) or len(task.labels) < 2 or len(splits) < 2:
        return {}
    try:
        return {"baselines": baseline_metrics(task, splits, predictions)}
    except (ValueError, RuntimeError) as err:
        log.warning("baselines skipped: %s", err)
        return {}


def baseline_metrics(task, splits: dict[str, pd.DataFrame], predictions: list[dict]) -> dict:
    """{"tfidf_logreg": {split: metrics}, "majority": {...}, "bilstm": {...}, "lift": {...}, "lift_bilstm": {...}}
    for a classification task whose labels are set (after `task.load`); `predictions` are the model's records on
    the last evaluated split."""
    out: dict = {}
    correct: dict[str, np.ndarray] = {}
    names = _names(task, len(splits["train"]))
    with WorkProgress("baselines", len(names)) as progress:
        for name in names:
            model = _fit(name, task, splits)
            out[name] = {}
            for split in ("validation", "test"):
                if split in splits:
                    probs = _probabilities(model, _inputs(name, task, splits[split]), len(task.labels))
                    gold = _targets(task, splits[split]["label"])
                    out[name][split] = _scalars(task, probs, gold)
                    correct[name] = _correct(task, probs, gold)  # the last split is the one predictions cover
            progress.advance()
    model_correct = np.array([record_correct(r) for r in predictions], dtype=float)
    for key, name in LIFTS.items():
        if name in correct and len(model_correct) >= 2 and len(model_correct) == len(correct[name]):
            lift, low, high = paired_lift_ci(model_correct, correct[name])
            out[key] = {"over": name, "metric": "subset_accuracy" if task.multi_label else "accuracy",
                        "split": "test" if "test" in splits else "validation", "lift": lift, "low": low, "high": high}
    return out


def _names(task, rows: int) -> list[str]:
    names = [n for n in BASELINES if n != "bilstm" or task.cfg.lstm_baseline]
    if rows * len(task.labels) > SCORES:
        log.warning("TF-IDF + logistic regression baseline skipped: %s training rows x %s classes is more than "
                    "its solver can hold in memory", f"{rows:,}", f"{len(task.labels):,}")
        names.remove("tfidf_logreg")
    return names


def _fit(name: str, task, splits: dict[str, pd.DataFrame]):
    train = splits["train"]
    train = train[train["label"].notna()]  # supervised baselines: rows without a label (distillation's) teach none
    y = _targets(task, train["label"])
    if name != "bilstm":
        return _model(name, task.multi_label, len(task.labels)).fit(_texts(task, train), y)
    held = splits.get("validation")  # early stopping, as the fine-tuned model selects its best checkpoint
    validation = None if held is None else (_inputs(name, task, held), _targets(task, held["label"]))
    return BiLSTMClassifier(task.multi_label).fit(_inputs(name, task, train), y, validation)


def _inputs(name: str, task, rows: pd.DataFrame) -> list:
    # The BiLSTM reads order, so it gets a pair as two halves it joins with a separator token.
    if name == "bilstm" and task.pair:
        return list(zip(rows["text"].astype(str), rows["text_pair"].astype(str), strict=True))
    return _texts(task, rows)


def _texts(task, rows: pd.DataFrame) -> list[str]:
    # A sentence pair becomes one text: a bag-of-n-grams model cannot tell the halves apart anyway. The baselines
    # read what the model reads, so one 50 MB cell cannot blow up the n-gram counts.
    texts = within_view(rows["text"], task.max_length)
    if task.pair:
        return [f"{a} {b}" for a, b in zip(texts, within_view(rows["text_pair"], task.max_length), strict=True)]
    return texts


def _targets(task, labels: pd.Series) -> np.ndarray:
    if task.multi_label:
        return MultiLabelBinarizer(classes=task.labels).fit_transform(labels)
    index = {c: i for i, c in enumerate(task.labels)}
    return np.array([index[v] for v in labels])


def _model(name: str, multi_label: bool, classes: int):
    if name == "majority":
        return DummyClassifier(strategy="prior")
    # Word 1-2-grams plus character 2-4-grams: the characters carry scripts written without spaces (Chinese).
    # The classifier keeps a dense weight per class and feature, so many classes get fewer features.
    size = max(1_000, min(100_000, COEFFICIENTS // max(classes, 1)))
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=size),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True,
                                          max_features=size))
    classifier = LogisticRegression(max_iter=1000)
    return make_pipeline(features, OneVsRestClassifier(classifier) if multi_label else classifier)


def _probabilities(model, texts: list[str], k: int) -> np.ndarray:
    """(rows, k) probabilities in the task's label order; classes absent from training get 0."""
    probs = model.predict_proba(texts)
    if isinstance(probs, list):  # DummyClassifier on a label matrix: per label, columns for the values seen
        return np.stack([p[:, list(c).index(1)] if 1 in c else np.zeros(len(texts))
                         for p, c in zip(probs, model.classes_, strict=True)], axis=1)
    classes = model.classes_
    out = np.zeros((len(texts), k))
    out[:, classes] = probs
    return out


def _scalars(task, probs: np.ndarray, gold: np.ndarray) -> dict:
    """The task's own metrics, numbers only (per-class tables and matrices are the model's to show)."""
    if task.multi_label:
        metrics = multi_label_metrics(probs, gold, task.labels, task.threshold)
    else:
        metrics = single_label_metrics(probs, gold, task.labels)
    return {k: v for k, v in metrics.items() if v is None or isinstance(v, int | float)}


def _correct(task, probs: np.ndarray, gold: np.ndarray) -> np.ndarray:
    if task.multi_label:
        return ((probs >= task.threshold).astype(int) == gold).all(axis=1).astype(float)
    return (probs.argmax(axis=1) == gold).astype(float)
