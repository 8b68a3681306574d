"""A guard for tests of code that must never block: run it in a thread with a time limit."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

T = TypeVar("T")


def finishes(seconds: float, work: Callable[[], T], fifos: Sequence[Path] = ()) -> T:
    """``work()`` run in a thread that must finish within ``seconds``: a hang fails the test, not the suite.

    On a timeout every FIFO in ``fifos`` is opened for writing once, which lets a reader blocked
    opening it go on, so the stuck thread ends too.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"still running after {seconds} s (blocked opening a FIFO?)")
    if "error" in outcome:
        raise outcome["error"]
    return cast(T, outcome["value"])
