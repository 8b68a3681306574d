"""The ``protoglyph`` command as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "protoglyph", *args], capture_output=True, text=True, timeout=120)


def test_self_test_passes() -> None:
    out = run("--self-test")
    assert out.returncode == 0, out.stderr
    assert "self-test passed" in out.stdout and "20-way 1-shot" in out.stdout


def test_broken_model_gives_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00" * 64)
    out = run("--model", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr and "Traceback" not in out.stderr
    out = run("--model", str(tmp_path / "missing.onnx"))
    assert out.returncode == 2 and "not found" in out.stderr


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("protoglyph ")
