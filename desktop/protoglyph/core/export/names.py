"""Folder and file names that every file system takes, and that never collide."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from protoglyph.core.text import JOINERS

#: The folder of the "none of these" items (class name ``None``), unless a class's folder has the name.
UNKNOWN_FOLDER = "unknown"
#: Longest folder or file name written, in UTF-8 bytes (most file systems allow 255).
MAX_NAME_BYTES = 200

_FORBIDDEN = frozenset('/\\:*?"<>|')
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{p}{n}" for p in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)


def _name_bytes(text: str) -> int:
    """The length of a name on disk; a surrogate escape (a byte of a non-UTF-8 name) is one byte."""
    return len(text.encode("utf-8", "surrogateescape"))


def _cut_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes on disk, between characters (never half of one)."""
    if _name_bytes(text) <= limit:
        return text
    kept, used = [], 0
    for ch in text:
        used += _name_bytes(ch)
        if used > limit:
            break
        kept.append(ch)
    return "".join(kept)


def _name_char(ch: str) -> str:
    """One character of a safe name: itself, ``_`` for one that is forbidden, or nothing for an
    invisible format character."""
    category = unicodedata.category(ch)
    if ch in _FORBIDDEN or category in ("Cc", "Zl", "Zp"):
        return "_"
    if category == "Cf" and ch not in JOINERS:  # invisible, could disguise the name
        return ""
    if category == "Cs" and not "\udc80" <= ch <= "\udcff":
        return "_"  # a lone surrogate that, unlike a surrogate escape, stands for no byte
    return ch


def safe_folder_name(name: str) -> str:
    """``name`` as one folder (or file) name that is valid on Windows, macOS and Linux and cannot
    point anywhere else: no separators, never ``.`` or ``..``, not hidden, not a device name, no
    invisible format characters. Letters of every script and emoji are kept as they are, and so
    are the bytes of a name that is not UTF-8 (its surrogate escapes)."""
    text = "".join(_name_char(ch) for ch in unicodedata.normalize("NFC", name))
    text = text.lstrip(" ").rstrip(". ")  # Windows drops trailing dots and spaces silently
    if text.startswith("."):
        text = "_" + text[1:]
    stem, dot, rest = text.partition(".")
    if stem.rstrip(" ").upper() in _RESERVED:  # "con.txt" is the console too: mark the stem
        text = stem + "_" + dot + rest
    text = _cut_utf8(text, MAX_NAME_BYTES).rstrip(". ")
    return text or "_"


def class_folders(names: Iterable[str | None]) -> dict[str | None, str]:
    """A distinct folder name for each distinct class name. Names that would share a folder
    (``a/b`` and ``a_b``, or differing only in case, which Windows and macOS don't tell apart)
    get `` (2)``, `` (3)``… in the order given, so the result is the same on every run. ``None``
    (the "none of these" items) gets ``unknown`` once every class has its folder: a class named
    "unknown" keeps its own."""
    folders: dict[str | None, str] = {}
    used: set[str] = set()
    wanted = list(dict.fromkeys(names))
    for name in wanted:
        if name is not None:
            folders[name] = unique_name(safe_folder_name(name), used, is_file=False)
    if None in wanted:
        folders[None] = unique_name(UNKNOWN_FOLDER, used, is_file=False)
    return folders


def unique_name(name: str, used: set[str], *, is_file: bool) -> str:
    """``name``, or ``name (n)`` (``stem (n).ext`` for a file) with the smallest free ``n``;
    ``used`` holds the names taken, case-folded, and gets this one."""
    dot = name.rfind(".") if is_file else -1
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    candidate, n = name, 1
    while candidate.casefold() in used:
        n += 1
        suffix = f" ({n}){ext}"
        candidate = _cut_utf8(stem, MAX_NAME_BYTES - _name_bytes(suffix)).rstrip(". ") + suffix
    used.add(candidate.casefold())
    return candidate
