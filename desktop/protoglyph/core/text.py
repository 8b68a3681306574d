"""Text rules shared by class names, file names and what the window shows of them."""

from __future__ import annotations

import os
import unicodedata

#: The invisible format characters (Unicode category Cf) a name may keep: the joiners that Persian,
#: Indic scripts and emoji sequences need. Others (bidirectional overrides and isolates such as
#: U+202E, which make "gnp.exe" read "exe.png"; marks; the byte-order mark) are refused in class
#: names and stripped from exported folder names.
JOINERS = frozenset("\u200c\u200d")
#: How a name that is not valid UTF-8 is written out: its own bytes on POSIX (Python holds them
#: as surrogate escapes), and on Windows, where a name may hold a lone UTF-16 surrogate, that.
FILE_NAME_ERRORS = "surrogatepass" if os.name == "nt" else "surrogateescape"


def hidden_format_characters(text: str) -> list[str]:
    """The invisible format characters of ``text`` that are not :data:`JOINERS`."""
    return [ch for ch in text if unicodedata.category(ch) == "Cf" and ch not in JOINERS]


def readable(text: str) -> str:
    """A file name fit to show: what is not valid UTF-8 becomes U+FFFD (the name itself is kept
    exactly wherever it is stored or exported)."""
    try:
        return text.encode("utf-8", FILE_NAME_ERRORS).decode("utf-8", "replace")
    except UnicodeEncodeError:  # a lone surrogate that no byte stands for
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
