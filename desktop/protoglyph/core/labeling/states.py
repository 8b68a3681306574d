"""The one vocabulary of a labeled folder's items: where an item is, what the person said of
it, and what the person sees. Each is an ``IntEnum`` so that it is stored in the item arrays
(``int8``) and compared with them directly (``table.review == Review.CONFIRMED``); ``word`` is
the name a person reads, in the window, the CSV and the project file.
"""

from __future__ import annotations

from enum import IntEnum


class ItemState(IntEnum):
    """:attr:`BatchTable.state`: waiting to be embedded, embedded, or not usable (with its reason)."""

    PENDING = 0
    DONE = 1
    ERROR = 2


class Review(IntEnum):
    """:attr:`BatchTable.review`: what the person said of an item (``NONE``: nothing yet)."""

    NONE = 0
    CONFIRMED = 1
    CORRECTED = 2
    UNKNOWN = 3

    @property
    def word(self) -> str | None:
        """As stored in the project file (``None`` for no review)."""
        return None if self is Review.NONE else self.name.lower()

    @classmethod
    def from_word(cls, word: str | None) -> Review:
        """The review a stored word names; no review for ``None`` or a word it does not know."""
        try:
            return cls[word.upper()] if word else cls.NONE
        except KeyError:
            return cls.NONE


class Status(IntEnum):
    """What the person sees for an item (``BatchResults.status``), in the order of the filters."""

    PREDICTED = 0
    CONFIRMED = 1
    CORRECTED = 2
    UNKNOWN = 3
    ERROR = 4
    WAITING = 5

    @property
    def word(self) -> str:
        """As shown and exported: ``predicted``, ``confirmed``, …, ``error``, ``waiting``."""
        return self.name.lower()


#: The statuses an export can hold (a waiting item is not exported), in the CSV's words.
EXPORTED_STATUSES = tuple(s.word for s in Status if s is not Status.WAITING)
