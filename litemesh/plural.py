"""Counts in messages: ``plural(1, "route")`` is "1 route", ``plural(2, "route")`` is "2 routes".

Every message and log line that prints a count goes through here, so "1 workers" cannot creep back in.
"""
from __future__ import annotations


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``count`` followed by ``noun``, or by its plural (``noun + "s"`` unless ``plural_form``) when
    ``count`` is not exactly 1 ("0 routes", "1 route", "2 routes")."""
    word = noun if count == 1 else (plural_form if plural_form is not None else noun + "s")
    return f"{count} {word}"
