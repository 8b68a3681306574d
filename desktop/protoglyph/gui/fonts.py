"""Whether the fonts on this machine can show a text, so a class name in a script with no
installed font gets an explanation instead of silent empty boxes."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from PySide6.QtGui import QFont, QFontDatabase, QTextLayout


@lru_cache(maxsize=4096)
def can_show(char: str, family: str = "") -> bool:
    """True if Qt's font fallback finds a glyph for ``char`` (laid out as Qt would draw it)."""
    layout = QTextLayout(char, QFont(family) if family else QFont())
    layout.beginLayout()
    layout.createLine()
    layout.endLayout()
    runs = layout.glyphRuns()
    # A run may come from a fallback font that lacks the character (and shapes it to a box).
    return bool(runs) and all(0 not in run.glyphIndexes() and run.rawFont().supportsCharacter(ord(char))
                              for run in runs)


@lru_cache(maxsize=256)
def _has_font_for(system_name: str) -> bool:
    system = getattr(QFontDatabase.WritingSystem, system_name, None)
    return system is None or bool(QFontDatabase.families(system))


def has_font_for_script(char: str) -> bool:
    """False where Qt knows the character's writing system and no installed family covers it.

    Needed beside :func:`can_show`: for complex scripts (Devanagari, Syriac…) Qt shapes a
    fallback font's boxes without reporting a missing glyph.
    """
    first = unicodedata.name(char, "").split(" ")[0].capitalize()
    return _has_font_for(first) if first else True


def script_of(char: str) -> str:
    """A readable script name for a character, from its Unicode name ("DEVANAGARI LETTER KA")."""
    name = unicodedata.name(char, "")
    if not name:
        return "some"
    first = name.split()[0]
    if first == "CJK" or name.startswith(("HIRAGANA", "KATAKANA")):
        return "Chinese/Japanese" if first != "HANGUL" else "Korean"
    return first.capitalize()


def missing_characters(text: str) -> list[str]:
    """Characters of ``text`` that no installed font can show."""
    return [ch for ch in dict.fromkeys(text)
            if not ch.isspace() and ord(ch) > 0x7F and not (can_show(ch) and has_font_for_script(ch))]


def missing_glyphs_note(text: str) -> str:
    """A sentence for a tooltip when ``text`` can't be fully shown here, else ``""``."""
    missing = missing_characters(text)
    if not missing:
        return ""
    scripts = ", ".join(dict.fromkeys(script_of(ch) for ch in missing))
    codes = " ".join(f"U+{ord(ch):04X}" for ch in missing[:6]) + (" …" if len(missing) > 6 else "")
    return (f"Some characters of this name ({codes}) can't be shown: no installed font "
            f"covers them ({scripts} script). The name is stored correctly; install a font for it, "
            "for example the Noto fonts (package fonts-noto on Debian and Ubuntu).")
