"""Knowledge distillation: a student classifier learns a teacher's softened probabilities (`lmtune distill`).

The training rows carry a `teacher` column (the teacher's probability per label, computed by lmtune.distill);
rows without a gold label (the unlabelled file) learn from the teacher alone. Each labelled row's loss is
alpha x cross-entropy with its gold label + (1 - alpha) x T^2 x KL(teacher at temperature T || student at T); an
unlabelled row's is the T^2 x KL term (Hinton et al. 2015: T^2 keeps the soft term's gradients at the hard term's
scale as T grows). Evaluation is the classifier's, on gold labels; the saved student is a plain classification
model, so predict, serve and export treat it as one.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
import torch
from pydantic import Field
from transformers import DataCollatorWithPadding

from lmtune.config import DataConfig
from lmtune.data import check_labels_seen
from lmtune.errors import DataError
from lmtune.tasks.classification import Classification

TEACHER = "teacher"  # the rows' column of teacher probabilities, {label: probability}


def distillation_loss(logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, temperature: float,
                      alpha: float) -> torch.Tensor:
    """Mean over the rows of the loss above; `labels` -100 marks a row without a gold label."""
    soft_targets = torch.softmax(torch.log(teacher.clamp_min(1e-12)) / temperature, dim=-1)
    student = torch.log_softmax(logits / temperature, dim=-1)
    kl = (soft_targets * (torch.log(soft_targets.clamp_min(1e-12)) - student)).sum(-1) * temperature**2
    labelled = labels != -100
    hard = torch.nn.functional.cross_entropy(logits, labels.clamp_min(0), reduction="none")
    per_row = torch.where(labelled, alpha * hard + (1 - alpha) * kl, kl)
    return per_row.mean()


class Distillation(Classification):
    name: ClassVar[str] = "distillation"
    purpose: ClassVar[str] = "Assigns a text one of its teacher's labels"

    class Settings(Classification.Settings):
        temperature: float = Field(2.0, gt=0, description="Softens both distributions before they are matched: "
                                   "above 1 the teacher's small probabilities (which wrong classes look alike) "
                                   "carry more of the signal.")
        alpha: float = Field(0.5, ge=0, le=1, description="Weight of the gold labels' cross-entropy on labelled "
                             "rows; the rest (1 - alpha) matches the teacher. Unlabelled rows match the teacher "
                             "only.")

    def learn_labels(self, data: DataConfig, splits: dict[str, pd.DataFrame]) -> dict:
        """The teacher's labels, in its order (the student's head matches them one to one)."""
        train = splits["train"]
        if TEACHER not in train:
            raise DataError("distillation trains on rows that carry the teacher's probabilities: use `lmtune "
                            "distill TEACHER_RUN`, which adds them")
        self.multi_label = False
        self.labels = list(train[TEACHER].iloc[0])
        for split, rows in splits.items():
            if split != "train":
                check_labels_seen(set(self.labels), rows)
        gold = train["label"].dropna()
        return {"labels": {c: int((gold == c).sum()) for c in self.labels},
                "distillation": {"labelled_rows": len(gold), "unlabelled_rows": int(train["label"].isna().sum())}}

    def loss_labels(self, rows: pd.DataFrame) -> list:
        index = {c: i for i, c in enumerate(self.labels)}
        return [-100 if pd.isna(v) else index[v] for v in rows["label"]]

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        features = super().encode(rows, tokenizer, cfg)
        if TEACHER in rows:
            for f, probabilities in zip(features, rows[TEACHER], strict=True):
                f[TEACHER] = [float(probabilities[c]) for c in self.labels]
        return features

    def collate(self, tokenizer):
        pad = DataCollatorWithPadding(tokenizer)

        def collate(features: list[dict]) -> dict[str, torch.Tensor]:
            batch = pad([{k: v for k, v in f.items() if k != TEACHER} for f in features])
            if TEACHER in features[0]:
                batch[TEACHER] = torch.tensor([f[TEACHER] for f in features])
            return batch

        return collate

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in batch.items() if k not in ("labels", TEACHER)}
        logits = model(**inputs).logits.float()
        if TEACHER not in batch:  # a split without teacher probabilities: the gold labels alone
            return torch.nn.functional.cross_entropy(logits, batch["labels"], ignore_index=-100)
        return distillation_loss(logits, batch[TEACHER], batch["labels"], self.cfg.temperature, self.cfg.alpha)

    def state(self) -> dict:
        return {**super().state(), "task": Classification.name}  # the student is served as a classifier
