"""What counts as a metric value: a real number. bool is an int subclass in Python, but a flag is no score."""

from __future__ import annotations


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def higher_is_better(metric: str) -> bool:
    """A metric's direction from its name: losses, perplexity and errors fall as models improve."""
    return not any(word in metric for word in ("loss", "perplexity", "mse", "mae", "rmse", "error", "ece"))
