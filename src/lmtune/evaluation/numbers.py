"""What counts as a metric value: a real number. bool is an int subclass in Python, but a flag is no score."""

from __future__ import annotations


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
