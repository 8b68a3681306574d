"""The ``protoglyph`` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "protoglyph", *args], capture_output=True, text=True, timeout=120)


def test_self_test_passes() -> None:
    out = run("--self-test")
    assert out.returncode == 0, out.stderr
    assert "self-test passed" in out.stdout and "starter project" in out.stdout and "20-way 1-shot" in out.stdout


def test_the_app_starts_and_shows_its_window(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PROTOGLYPH_DATA_DIR": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-m", "protoglyph", "--exit-when-ready"], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ready ")
    assert (tmp_path / "Starter project.protoglyph").is_file()


def test_broken_model_gives_a_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x00" * 64)
    out = run("--info", "--model", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr and "Traceback" not in out.stderr
    out = run("--self-test", "--model", str(tmp_path / "missing.onnx"))
    assert out.returncode == 2 and "not found" in out.stderr


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("protoglyph ")
