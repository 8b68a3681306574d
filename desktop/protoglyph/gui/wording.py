"""How counts and names are put in words on screen: one place, so every message says it alike."""

from __future__ import annotations


def short(name: str, limit: int = 24) -> str:
    """A class name cut to fit a button or a title."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def percent(p: float) -> str:
    """A probability as a person reads it: ``37%``; ``<1%`` and ``>99%`` where rounding would say
    0% or 100% of something that is neither impossible nor certain."""
    if 0.0 < p < 0.005:
        return "<1%"
    if 0.995 <= p < 1.0:
        return ">99%"
    return f"{100 * p:.0f}%"


def plural(n: int, one: str, many: str = "") -> str:
    """``1 example``, ``12,345 examples`` (thousands separated, as everywhere in the window)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"
