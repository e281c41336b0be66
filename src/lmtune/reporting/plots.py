"""The report's figures as PNG bytes (matplotlib).

`Figure` objects are used directly rather than pyplot: no global figure state, no GUI backend, nothing to
close, safe to call from a training process.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

MAX_CURVES = 10  # one-vs-rest curves beyond this many classes are an unreadable tangle


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" metadata: it holds matplotlib's web address, and the report references nothing online.
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _figure(title: str, xlabel: str, ylabel: str, size: tuple[float, float] = (6, 4)):
    fig = Figure(figsize=size)
    ax = fig.add_subplot()
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    return fig, ax


def line_plot(series: dict[str, tuple[list, list]], title: str, xlabel: str, ylabel: str) -> bytes:
    fig, ax = _figure(title, xlabel, ylabel)
    for name, (x, y) in series.items():
        ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, label=name)
    if len(series) > 1:
        ax.legend()
    return _png(fig)


def confusion_heatmap(matrix: np.ndarray, labels: list[str]) -> bytes:
    k = len(labels)
    side = min(4 + 0.4 * k, 14)
    fig, ax = _figure("Confusion matrix", "predicted", "gold", (side, side * 0.85))
    ax.grid(False)
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    ax.set_xticks(range(k), labels, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), labels)
    if k <= 20:  # beyond that the numbers overlap; the colours still show the pattern
        high = matrix.max() if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > high / 2 else "black")
    return _png(fig)


def roc_plot(gold: np.ndarray, probs: np.ndarray, labels: list[str]) -> bytes | None:
    """ROC of each class against the rest (`gold` a 0/1 matrix); binary: the second class only."""
    classes = _curve_classes(gold, labels)
    if not classes:
        return None
    fig, ax = _figure("ROC curve", "false positive rate", "true positive rate")
    for j in classes:
        fpr, tpr, _ = roc_curve(gold[:, j], probs[:, j])
        ax.plot(fpr, tpr, label=f"{labels[j]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def pr_plot(gold: np.ndarray, probs: np.ndarray, labels: list[str]) -> bytes | None:
    classes = _curve_classes(gold, labels)
    if not classes:
        return None
    fig, ax = _figure("Precision-recall curve", "recall", "precision")
    for j in classes:
        precision, recall, _ = precision_recall_curve(gold[:, j], probs[:, j])
        ap = average_precision_score(gold[:, j], probs[:, j])
        ax.plot(recall, precision, label=f"{labels[j]} (AP {ap:.3f}, base rate {gold[:, j].mean():.2f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="lower left", fontsize="small")
    return _png(fig)


def _curve_classes(gold: np.ndarray, labels: list[str]) -> list[int]:
    """Classes with both positives and negatives among the gold labels (others have no curve)."""
    candidates = [1] if len(labels) == 2 and gold.shape[1] == 2 else range(len(labels))
    return [j for j in candidates if 0 < gold[:, j].sum() < len(gold)][:MAX_CURVES]


def reliability_plot(bins: list[dict], ece: float) -> bytes:
    fig, ax = _figure(f"Reliability diagram (ECE {ece:.3f})", "confidence", "accuracy")
    ax.bar([b["low"] for b in bins], [b["accuracy"] for b in bins], width=[b["high"] - b["low"] for b in bins],
           align="edge", edgecolor="black", alpha=0.7, label="accuracy in bin")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", color="black",
            label="mean confidence in bin")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize="small")
    return _png(fig)


def scatter_plot(predicted: np.ndarray, gold: np.ndarray) -> bytes:
    fig, ax = _figure("Predicted vs gold", "gold", "predicted", (5, 5))
    ax.scatter(gold, predicted, s=8, alpha=0.5)
    low, high = float(min(gold.min(), predicted.min())), float(max(gold.max(), predicted.max()))
    ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    return _png(fig)
