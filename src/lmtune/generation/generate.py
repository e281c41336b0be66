"""Generation with a loaded causal LM (`lmtune.trained.generator` loads one from a run, name or folder).

Prompts are chat-rendered with the model's template unless asked for raw text, batched longest-first with
left padding (a decoder continues from the last position, so padding must come before the prompt), and cut
at stop strings. Greedy by default: evaluation must be reproducible; sampling is one option away.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
from transformers import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from lmtune.config import REPETITION_PENALTY
from lmtune.models.chat import render
from lmtune.training.batching import sorted_batches
from lmtune.training.device import eval_mode
from lmtune.training.memory import releaser
from lmtune.training.progress import WorkProgress

INCOMPLETE = "\ufffd"  # what decoding shows for the bytes of a character whose last bytes are still to come


@dataclass
class Settings:
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    repetition_penalty: float = REPETITION_PENALTY

    def kwargs(self, tokenizer, prompt_length: int) -> dict:
        sampling = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p} \
            if self.temperature > 0 else {"do_sample": False}
        stops = {"stop_strings": self.stop, "tokenizer": tokenizer} if self.stop else {}
        # The penalty counts the answer's own tokens only (prompts are left-padded to one length): transformers'
        # repetition_penalty also counts the prompt's, which would push a summary or an extraction away from
        # the very words it should copy.
        penalty = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(self.repetition_penalty, prompt_length)]) \
            if self.repetition_penalty != 1.0 else LogitsProcessorList()
        return {"max_new_tokens": self.max_new_tokens, "pad_token_id": tokenizer.pad_token_id,
                "logits_processor": penalty, **sampling, **stops}


class Generator:
    def __init__(self, model: torch.nn.Module, tokenizer, precision: str = "auto", system: str | None = None):
        self.model, self.tokenizer, self.system = model.eval(), tokenizer, system
        # Decoding reads every weight once per token, and on a CPU autocast casts each one to bf16 again at every
        # step, slower than plain fp32 (benchmarks/precision.py, README "Speed"). There it runs in the weights' dtype.
        self.precision = "fp32" if next(model.parameters()).device.type == "cpu" else precision
        # Without a template (a base model) prompts go in as raw text.
        self.chat = bool(tokenizer.chat_template)

    def prompt(self, turns: str | list[dict], raw: bool = False) -> str:
        """The text the model continues: the chat so far plus the assistant header, or raw text as given."""
        if raw or not self.chat:
            return turns if isinstance(turns, str) else "\n".join(t["content"] for t in turns)
        messages = [{"role": "user", "content": turns}] if isinstance(turns, str) else list(turns)
        if self.system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": self.system})
        return render(messages, self.tokenizer, add_generation_prompt=True)

    def generate(self, prompts: list[str], settings: Settings | None = None, batch_size: int = 8) -> list[str]:
        settings = settings or Settings()
        out: list[str] = [""] * len(prompts)
        batches = sorted_batches([len(p) for p in prompts], batch_size)
        with (eval_mode(self.model, self.precision) as device,
              WorkProgress("generate", len(batches) * settings.max_new_tokens) as progress):
            for idx in batches:
                batch = self._encode([prompts[i] for i in idx]).to(device)
                steps = Steps(progress)
                ids = self.model.generate(**batch, **settings.kwargs(self.tokenizer, batch["input_ids"].shape[1]),
                                          stopping_criteria=StoppingCriteriaList([steps]))
                progress.advance(settings.max_new_tokens - steps.count)  # a batch that ends early skips ahead
                new = ids[:, batch["input_ids"].shape[1]:]
                for i, text in zip(idx, self.tokenizer.batch_decode(new, skip_special_tokens=True), strict=True):
                    out[i] = cut_at_stop(text.rstrip(INCOMPLETE), settings.stop)
                if release := releaser():  # each batch grows KV caches of its own sizes: hand them back
                    release()
        return out

    def stream(self, prompt: str, settings: Settings | None = None) -> Iterator[str]:
        """Text pieces as they are generated (for chat); generation runs in a thread, as transformers' streamer
        requires."""
        settings = settings or Settings()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        device = next(self.model.parameters()).device
        batch = self._encode([prompt]).to(device)

        def work() -> None:
            with eval_mode(self.model, self.precision):
                self.model.generate(**batch, **settings.kwargs(self.tokenizer, batch["input_ids"].shape[1]),
                                    streamer=streamer)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        text = ""
        for piece in whole_characters(streamer):
            stop = next((s for s in settings.stop if s in text + piece), None)
            if stop:
                yield cut_at_stop(text + piece, [stop])[len(text):]
                break
            text += piece
            yield piece
        thread.join()

    def _encode(self, prompts: list[str]):
        # A chat template writes its own BOS; raw prompts get the tokenizer's usual special tokens.
        return self.tokenizer(prompts, return_tensors="pt", padding=True, padding_side="left",
                              add_special_tokens=not self.chat)


class Steps(StoppingCriteria):
    """Counts generation steps into a progress bar; never stops anything."""

    def __init__(self, progress: WorkProgress):
        self.progress, self.count = progress, 0

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        self.count += 1
        self.progress.advance()
        return torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)


def whole_characters(pieces: Iterable[str]) -> Iterator[str]:
    """Streamed pieces that never end inside a character. A byte-level tokenizer spreads a character over
    several tokens (a Chinese one is 3 UTF-8 bytes), and its bytes decode to U+FFFD until the last arrives;
    transformers' streamer holds those back, except when generation stops inside the character, where the
    piece is dropped here rather than shown as a replacement character."""
    held = ""
    for piece in pieces:
        held += piece
        if not held.endswith(INCOMPLETE):
            yield held
            held = ""
    if held.rstrip(INCOMPLETE):
        yield held.rstrip(INCOMPLETE)


def cut_at_stop(text: str, stops: list[str]) -> str:
    """Text up to the first stop string (transformers stops after it but keeps it)."""
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return text if cut < 0 else text[:cut]
