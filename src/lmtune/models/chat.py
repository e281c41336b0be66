"""Chats rendered with the model's own chat template, and which tokens are the assistant's.

Training must use the exact text the model will see at inference (`apply_chat_template`), and score only
what the assistant says. transformers can return an assistant mask only for templates written with
`{% generation %}` markers, which few models ship (SmolLM2 does not), so the spans are found generically:
the assistant turn i spans from the end of `render(turns[:i], add_generation_prompt=True)` to the end of
`render(turns[:i+1])`. That holds for any template that renders earlier turns the same whatever follows;
a template that does not is refused with a clear error rather than trained on wrong labels.
"""

from __future__ import annotations

from lmtune.errors import ConfigError

# For tokenizers without a chat template (base models): plain role headers, and EOS after each answer so the
# model learns to stop.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m['role'] == 'system' %}{{ m['content'] + '\n\n' }}"
    "{% elif m['role'] == 'user' %}{{ '### User:\n' + m['content'] + '\n\n' }}"
    "{% else %}{{ '### Assistant:\n' + m['content'] + eos_token + '\n\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '### Assistant:\n' }}{% endif %}"
)


def ensure_chat_template(tokenizer) -> bool:
    """Give a tokenizer without a chat template the fallback one (saved with the model); True if it had one."""
    if tokenizer.chat_template:
        return True
    tokenizer.chat_template = FALLBACK_TEMPLATE
    return False


def render(messages: list[dict], tokenizer, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(messages: list[dict], tokenizer) -> tuple[str, list[tuple[int, int]]]:
    """The rendered chat and the character spans of its assistant turns (each with its end-of-turn marker)."""
    text = render(messages, tokenizer)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = render(messages[:i], tokenizer, add_generation_prompt=True)
        through = render(messages[: i + 1], tokenizer)
        if not (through.startswith(before) and text.startswith(through)):
            raise ConfigError(f"{tokenizer.name_or_path}'s chat template renders earlier turns differently once "
                              "later turns follow, so the assistant's tokens cannot be located; use "
                              "task.loss_on=all or a model with a prefix-stable template")
        spans.append((len(before), len(through)))
    return text, spans


def encode_chat(messages: list[dict], tokenizer, loss_on: str = "assistant") -> dict:
    """input_ids, and labels equal to them on the scored tokens and -100 elsewhere."""
    if not tokenizer.is_fast:
        raise ConfigError(f"{tokenizer.name_or_path} has no fast tokenizer; sft needs its character offsets")
    text, spans = assistant_spans(messages, tokenizer)
    # The template writes any BOS itself: letting the tokenizer add one more would double it.
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    ids = encoded["input_ids"]
    if loss_on == "all":
        return {"input_ids": ids, "labels": list(ids)}
    labels = [token if any(a <= start < b for a, b in spans) else -100
              for token, (start, _) in zip(ids, encoded["offset_mapping"], strict=True)]
    return {"input_ids": ids, "labels": labels}
