"""Causal-LM continued pre-training on unlabelled domain text (next-token prediction), scored by perplexity:
the decoder counterpart of `mlm`.

Text is tokenised, each document closed with EOS, concatenated and cut into blocks of max_length, so no
text is lost to truncation and nothing to padding. Unlike GPT-2's recipe, a block's documents do not see
each other: positions restart at each document, which transformers turns into a block-diagonal causal mask
(as in the packed SFT rows). The saved model/ folder is a plain causal LM that `sft` can start from.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from lmtune.config import DataConfig
from lmtune.errors import ConfigError
from lmtune.tasks.language_model import CausalModelling, CorpusTask

CONTINUATION_TOKENS = 64


class CausalLM(CorpusTask, CausalModelling):
    name: ClassVar[str] = "clm"
    purpose: ClassVar[str] = "Continues text in the style of its domain corpus; mainly a starting point for sft"

    def encode(self, rows: pd.DataFrame, tokenizer, cfg: DataConfig) -> list[dict]:
        if tokenizer.eos_token_id is None:
            raise ConfigError(f"task clm needs a tokenizer with an end-of-text token; {tokenizer.name_or_path} "
                              "has none")
        docs = tokenizer(rows["text"].tolist(), add_special_tokens=False, verbose=False)["input_ids"]
        return causal_blocks([doc + [tokenizer.eos_token_id] for doc in docs], cfg.max_length)

    def evaluate(self, model, tokenizer, rows: pd.DataFrame, features: list[dict],
                 batch_size: int) -> tuple[dict, list[dict]]:
        """Mean next-token loss and perplexity = exp(loss). No per-row records: blocks span lines."""
        return {**self.perplexity(model, tokenizer, features, batch_size), "blocks": len(features)}, []

    def predict(self, model, tokenizer, rows: pd.DataFrame, batch_size: int) -> list[dict]:
        """A greedy continuation of each text."""
        return self.generate_for_rows(model, tokenizer, rows, batch_size, CONTINUATION_TOKENS, raw=True)

    def state(self) -> dict:
        return {"task": self.name, "max_length": self.max_length}

    @classmethod
    def from_state(cls, state: dict) -> CausalLM:
        return cls(max_length=state["max_length"])


def causal_blocks(docs: list[list[int]], max_length: int) -> list[dict]:
    """Documents (each ending in EOS) concatenated and cut into max_length blocks; position ids restart at
    every document start, and a document cut at a block's end continues in the next block (its positions
    restart there too, which costs the cut document its longer context but never mixes documents)."""
    ids: list[int] = []
    positions: list[int] = []
    for doc in docs:
        ids += doc
        positions += range(len(doc))
    blocks = []
    for start in range(0, len(ids), max_length):
        chunk, pos = ids[start:start + max_length], positions[start:start + max_length]
        # A block that starts mid-document restarts its positions too: the mask must see a new sequence begin.
        first_end = next((i for i, p in enumerate(pos) if p == 0 and i > 0), len(pos))
        pos = list(range(first_end)) + pos[first_end:]
        # A sequence's first token would be predicted from another document: it is not scored.
        labels = [-100 if p == 0 else token for token, p in zip(chunk, pos, strict=True)]
        blocks.append({"input_ids": chunk, "labels": labels, "position_ids": pos})
    return blocks
