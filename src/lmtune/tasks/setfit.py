"""Few-shot classification in the SetFit style (Tunstall et al. 2022): with 8-64 labelled examples per class,
fine-tuning a classification head is unstable; fine-tuning the sentence encoder contrastively on pairs of
examples, then fitting a light head on its embeddings, is not.

Training rows become pairs (`sentence_pairs`): per round, each example once with an example of its own class
(target cosine similarity 1) and once with one of another class (0); the loss is the squared error between the
pairs' mean-pooled embeddings' cosine similarity and that target. At every evaluation, and so for the saved
model, a logistic-regression head is fitted on the training examples' normalised embeddings; its weights are
saved in lmtune.json beside the encoder. Built on lmtune's own loop rather than the setfit package, which trains
through sentence-transformers' trainer and brings it, evaluate and the hub client along: here the pairs are one
`prepare_train` step, and checkpoints, resume, reports, predict and serve stay those of every task.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field
from sklearn.linear_model import LogisticRegression
from transformers import AutoModel

from lmtune.config import DataConfig, ModelConfig
from lmtune.errors import ConfigError
from lmtune.evaluation.inference import model_outputs
from lmtune.models.load import load_model
from lmtune.tasks.classification import Classification

SECOND = "_b"  # suffix of the second sentence's features in a pair


def sentence_pairs(labels: list, rounds: int, seed: int) -> list[tuple[int, int, float]]:
    """(i, j, target similarity) pairs: per round, each example i with a random other example of its class (1.0)
    and a random example of another class (0.0). A class of one example has no positive pair; a single class
    has no negatives."""
    rng = np.random.default_rng(seed)
    by_class: dict = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    pairs = []
    for _ in range(rounds):
        for i, label in enumerate(labels):
            same = [j for j in by_class[label] if j != i]
            other = [j for c, members in by_class.items() if c != label for j in members]
            if same:
                pairs.append((i, int(rng.choice(same)), 1.0))
            if other:
                pairs.append((i, int(rng.choice(other)), 0.0))
    return pairs


def mean_pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class SetFit(Classification):
    name: ClassVar[str] = "setfit"
    peft_task_type: ClassVar[str] = "FEATURE_EXTRACTION"
    purpose: ClassVar[str] = "Assigns a text one of its labels (a sentence encoder and a logistic-regression head)"
    pipeline_tag: ClassVar[str | None] = None  # the head lives in lmtune.json, not in a transformers class
    onnx_outputs: ClassVar[tuple[str, ...] | None] = None

    class Settings(Classification.Settings):
        pair_rounds: int = Field(20, ge=1, description="Rounds of pairing: each one pairs every training example "
                                 "once with its own class and once with another (SetFit's num_iterations).")

    def __init__(self, *args, head: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.head = head  # {"coef": classes x hidden (1 x hidden for two classes), "intercept": ...}
        self.examples: list[dict] | None = None  # the training features the head is fitted on

    def learn_labels(self, data: DataConfig, splits: dict) -> dict:
        report = super().learn_labels(data, splits)
        if self.multi_label:
            raise ConfigError("setfit fits a single-label head; multi-label data needs --task classification")
        return report

    def build_model(self, path: str, cfg: ModelConfig) -> torch.nn.Module:
        return load_model(AutoModel, path, cfg)

    def prepare_train(self, features: list[dict]) -> list[dict]:
        """The training examples as pairs; the examples themselves are kept to fit the head on."""
        self.examples = features
        # The run's seed (set before training starts), so a run pairs its examples the same way each time.
        pairs = sentence_pairs([f["labels"] for f in features], self.cfg.pair_rounds, torch.initial_seed() % 2**32)
        return [{"input_ids": features[i]["input_ids"], "attention_mask": features[i]["attention_mask"],
                 f"input_ids{SECOND}": features[j]["input_ids"],
                 f"attention_mask{SECOND}": features[j]["attention_mask"], "labels": target}
                for i, j, target in pairs]

    def collate(self, tokenizer):
        def pad(features: list[dict], suffix: str = "") -> dict[str, torch.Tensor]:
            side = [{"input_ids": f[f"input_ids{suffix}"], "attention_mask": f[f"attention_mask{suffix}"]}
                    for f in features]
            return dict(tokenizer.pad(side, return_tensors="pt"))

        def collate(features: list[dict]) -> dict[str, torch.Tensor]:
            batch = pad(features)
            if f"input_ids{SECOND}" in features[0]:
                batch.update({f"{k}{SECOND}": v for k, v in pad(features, SECOND).items()})
            if "labels" in features[0]:
                batch["labels"] = torch.tensor([f["labels"] for f in features])
            return batch

        return collate

    def loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        first = self._embedding(model, batch["input_ids"], batch["attention_mask"])
        second = self._embedding(model, batch[f"input_ids{SECOND}"], batch[f"attention_mask{SECOND}"])
        similarity = torch.nn.functional.cosine_similarity(first.float(), second.float())
        return torch.nn.functional.mse_loss(similarity, batch["labels"].float())

    @staticmethod
    def _embedding(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return mean_pooled(model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state,
                           attention_mask)

    def embeddings(self, model, tokenizer, features: list[dict], batch_size: int) -> np.ndarray:
        """Normalised mean-pooled embeddings, one row per feature."""
        tokens = model_outputs(model, features, self.collate(tokenizer), batch_size, self.precision,
                               extract=lambda out: out.last_hidden_state, per_token=True)
        pooled = np.stack([t.mean(0) for t in tokens]).astype(np.float64)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)

    def predictions(self, model, tokenizer, features: list[dict], batch_size: int) -> np.ndarray:
        if self.examples is not None:  # training: the encoder moved since the last fit
            self._fit_head(self.embeddings(model, tokenizer, self.examples, batch_size))
        return self._probabilities(self.embeddings(model, tokenizer, features, batch_size))

    def _fit_head(self, x: np.ndarray) -> None:
        y = np.array([f["labels"] for f in self.examples])
        head = LogisticRegression(max_iter=1000).fit(x, y)
        coef, intercept = np.zeros((len(self.labels), x.shape[1])), np.zeros(len(self.labels))
        if len(head.classes_) == 2 and len(self.labels) == 2:
            coef, intercept = head.coef_, head.intercept_
        else:  # classes missing from the examples keep zero weights and a very low intercept
            intercept -= 1e4
            coef[head.classes_], intercept[head.classes_] = head.coef_, head.intercept_
        self.head = {"coef": coef.tolist(), "intercept": intercept.tolist()}

    def _probabilities(self, x: np.ndarray) -> np.ndarray:
        scores = x @ np.array(self.head["coef"]).T + np.array(self.head["intercept"])
        if scores.shape[1] == 1:  # scikit-learn's binary head: one score, for the second class
            p = 1 / (1 + np.exp(-scores))
            return np.hstack([1 - p, p])
        return self.from_logits(scores)

    def score_for(self, record: dict):
        target = self.labels.index(record["label"])
        coef = torch.tensor(self.head["coef"], dtype=torch.float32)
        intercept = torch.tensor(self.head["intercept"], dtype=torch.float32)

        def score(model: torch.nn.Module, inputs: dict) -> torch.Tensor:
            pooled = self._embedding(model, inputs["input_ids"], inputs["attention_mask"]).float()
            scores = torch.nn.functional.normalize(pooled, dim=-1) @ coef.T.to(pooled.device) + intercept.to(
                pooled.device)
            if scores.shape[1] == 1:
                p = scores[:, 0].sigmoid()
                return p if target == 1 else 1 - p
            return scores.softmax(-1)[:, target]

        return score

    def state(self) -> dict:
        return {**super().state(), "head": self.head}

    @classmethod
    def from_state(cls, state: dict) -> SetFit:
        task = super().from_state(state)
        task.head = state["head"]
        return task
