"""How counts and names are put in words on screen: one place, so every message says it alike."""

from __future__ import annotations


def short(name: str, limit: int = 24) -> str:
    """A class name cut to fit a button or a title."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def plural(n: int, one: str, many: str = "") -> str:
    """``1 example``, ``12,345 examples`` (thousands separated, as everywhere in the window)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"
