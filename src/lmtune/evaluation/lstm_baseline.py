"""A BiLSTM text classifier trained from scratch on the run's training split: the "was pretraining worth it?"
baseline.

TF-IDF + logistic regression reads bags of n-grams; this network also reads word order, but knows nothing the
training rows do not teach it (random embeddings, its own vocabulary, no transformers tokenizer). A fine-tuned
model that barely beats it gains little from its pretraining on this data. It is built to be cheap on CPU: one
layer, length-bucketed batches packed so padding costs nothing, a few epochs. Its interface is the part of
scikit-learn's the baseline scoring uses (`fit`, `predict_proba`, `classes_`), so it is scored like the others.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lmtune.data.scripts import WORD

PAD, UNK, SEP = "<pad>", "<unk>", "<sep>"

Text = str | tuple[str, str]  # one text, or a sentence pair


def tokenize(text: str) -> list[str]:
    # Chinese a character at a time, other words whole, punctuation marks alone ("!" and "?" carry sentiment).
    return WORD.findall(text.lower())


class Vocabulary:
    """Training-set words seen at least `min_count` times, most frequent first, capped at `max_size` entries."""

    def __init__(self, texts: Sequence[Text], min_count: int = 2, max_size: int = 30_000):
        counts = Counter(token for text in texts for token in _tokens(text))
        del counts[SEP]  # a pair's marker has its own fixed id
        kept = [w for w, n in counts.most_common(max_size - 3) if n >= min_count]
        self.index = {w: i for i, w in enumerate([PAD, UNK, SEP, *kept])}

    def __len__(self) -> int:
        return len(self.index)

    def encode(self, text: Text, max_tokens: int) -> list[int]:
        unk = self.index[UNK]
        ids = [self.index.get(token, unk) for token in _tokens(text)][:max_tokens]
        return ids or [unk]  # packing needs at least one step per row


def _tokens(text: Text) -> list[str]:
    # A pair is read as one sequence with a marker between the halves, so the network can tell them apart.
    if isinstance(text, tuple):
        return [*tokenize(text[0]), SEP, *tokenize(text[1])]
    return tokenize(text)


class Network(nn.Module):
    """Embeddings -> one bidirectional LSTM layer -> max over time -> dropout -> linear head."""

    def __init__(self, vocab_size: int, outputs: int, embedding: int, hidden: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=0)
        self.lstm = nn.LSTM(embedding, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, outputs)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.dropout(self.embed(ids)), lengths, batch_first=True, enforce_sorted=False)
        states, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, padding_value=float("-inf"))
        return self.head(self.dropout(states.max(dim=1).values))  # -inf padding never wins the max


class BiLSTMClassifier:
    """fit(texts, y) / predict_proba(texts) / classes_, like a scikit-learn classifier. `y` holds class indices,
    or a (rows, labels) 0/1 matrix when `multi_label` (sigmoid outputs, binary cross-entropy)."""

    def __init__(self, multi_label: bool = False, seed: int = 0, epochs: int = 5, min_steps: int = 150,
                 batch_size: int = 64, lr: float = 2e-3, embedding: int = 128, hidden: int = 128,
                 dropout: float = 0.25, max_tokens: int = 256, patience: int = 2):
        self.multi_label, self.seed, self.epochs, self.min_steps = multi_label, seed, epochs, min_steps
        self.batch_size, self.lr, self.embedding, self.hidden = batch_size, lr, embedding, hidden
        self.dropout, self.max_tokens, self.patience = dropout, max_tokens, patience
        self.classes_: np.ndarray = np.array([])

    def fit(self, texts: Sequence[Text], y: np.ndarray,
            validation: tuple[Sequence[Text], np.ndarray] | None = None) -> BiLSTMClassifier:
        """Train; with `validation`, keep the epoch with the lowest validation loss and stop after `patience`
        epochs without a better one."""
        y = np.asarray(y)
        self.classes_ = np.arange(y.shape[1]) if self.multi_label else np.unique(y)
        self.vocabulary = Vocabulary(texts)
        # Private RNG streams: seeded for repeatability without touching the caller's global random state.
        with torch.random.fork_rng(devices=[]), one_thread():
            torch.manual_seed(self.seed)
            self.network = Network(len(self.vocabulary), len(self.classes_), self.embedding, self.hidden,
                                   self.dropout)
            self._train(self._encode(texts), self._targets(y), validation)
        return self

    def predict_proba(self, texts: Sequence[Text]) -> np.ndarray:
        with one_thread():
            logits = self._logits(self._encode(texts)).double()
        # float64 before the softmax: probabilities must sum to 1 as tightly as scikit-learn's metrics check
        return (torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)).numpy()

    # -- training -----------------------------------------------------------------------------------
    def _train(self, ids: list[list[int]], targets: torch.Tensor,
               validation: tuple[Sequence[Text], np.ndarray] | None) -> None:
        rng = np.random.default_rng(self.seed)
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.lr)
        # Tiny training sets give a handful of steps per epoch: train for at least `min_steps` steps instead.
        epochs = max(self.epochs, math.ceil(self.min_steps / math.ceil(len(ids) / self.batch_size)))
        checked = (self._encode(validation[0]), self._targets(np.asarray(validation[1]))) if validation else None
        best, best_state, waited = math.inf, None, 0
        for _ in range(epochs):
            self.network.train()
            for batch in _buckets(ids, self.batch_size, rng):
                loss = self._loss(self.network(*_pad([ids[i] for i in batch])), targets[batch])
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.network.parameters(), 1.0)
                optimizer.step()
            if checked is None:
                continue
            loss = self._loss(self._logits(checked[0]), checked[1]).item()
            if loss < best:
                best, waited = loss, 0
                best_state = {k: v.clone() for k, v in self.network.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_state is not None:
            self.network.load_state_dict(best_state)

    def _loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.multi_label:
            return nn.functional.binary_cross_entropy_with_logits(logits, targets)
        return nn.functional.cross_entropy(logits, targets)

    def _targets(self, y: np.ndarray) -> torch.Tensor:
        if self.multi_label:
            return torch.tensor(y, dtype=torch.float32)
        # The task's labels come from its training rows, so every validation label is among classes_.
        return torch.tensor(np.searchsorted(self.classes_, y), dtype=torch.long)

    # -- inference ----------------------------------------------------------------------------------
    def _encode(self, texts: Sequence[Text]) -> list[list[int]]:
        return [self.vocabulary.encode(t, self.max_tokens) for t in texts]

    @torch.no_grad()
    def _logits(self, ids: list[list[int]]) -> torch.Tensor:
        self.network.eval()
        order = np.argsort([len(x) for x in ids], kind="stable")  # similar lengths together: little padding
        out = torch.empty(len(ids), len(self.classes_))
        for start in range(0, len(ids), 4 * self.batch_size):
            batch = order[start:start + 4 * self.batch_size]
            out[torch.as_tensor(batch)] = self.network(*_pad([ids[i] for i in batch]))
        return out


@contextmanager
def one_thread() -> Iterator[None]:
    """Each step multiplies 64x128 by 128x512 matrices: too small for intra-op threads to pay for their
    synchronisation, which made steps several times slower on two threads than on one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _buckets(ids: list[list[int]], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of rows of similar length: shuffle, sort by length within pools of 50 batches, cut
    into batches, shuffle the batches. Random enough to train on, and padding stays small."""
    order = rng.permutation(len(ids))
    pool = 50 * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lambda i: len(ids[i]))
        batches += [np.array(chunk[i:i + batch_size]) for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _pad(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(r) for r in rows])
    ids = torch.zeros(len(rows), int(lengths.max()), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row)
    return ids, lengths
