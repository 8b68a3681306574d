"""The ``protoglyph`` command as a user runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from protoglyph.cli import main
from protoglyph.core.encoder import EncoderSession
from tests.model_factory import make_encoder


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


# -- a model that computes nonsense must fail the self-test the installer relies on ----------
BAD_MODELS = {
    "NaN embeddings": ({"nan_output": True}, 2, "produces NaN or infinite embeddings"),
    "temperature nan": ({"metadata_overrides": {"temperature": "nan"}}, 2, "temperature 'nan' is not a finite number"),
    "norm_std inf": ({"metadata_overrides": {"norm_std": "inf"}}, 2, "norm_std 'inf' is not a finite number"),
    # finite embeddings of ~1e20: their squared distances overflow float32, so p would be nan
    "distances overflow": ({"output_scale": 1e20, "embedding_size": 64}, 1, "probability nan"),
}


@pytest.mark.parametrize("kind", list(BAD_MODELS))
def test_self_test_fails_on_a_model_computing_nonsense(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       kind: str) -> None:
    options, code, message = BAD_MODELS[kind]
    bad = make_encoder(tmp_path / "bad.onnx", **options)
    with np.errstate(over="ignore", invalid="ignore"):
        assert main(["--self-test", "--model", str(bad)]) == code
    out, err = capsys.readouterr()
    assert message in err and "passed" not in out and "self-test passed" not in err
    if code == 2:
        assert str(bad) in err


def test_self_test_fails_on_a_nan_model_as_a_user_runs_it(tmp_path: Path) -> None:
    bad = make_encoder(tmp_path / "bad.onnx", nan_output=True)
    out = run("--self-test", "--model", str(bad))
    assert out.returncode == 2, out.stdout
    assert "produces NaN or infinite embeddings" in out.stderr and str(bad) in out.stderr
    assert "passed" not in out.stdout and "Traceback" not in out.stderr


def test_self_test_checks_the_embedding_itself(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Belt and braces: even if a NaN got past the encoder's own checks, the self-test says so."""
    real = EncoderSession.embed_images

    def nan_for_the_query(self: EncoderSession, images: list[np.ndarray]) -> np.ndarray:
        out = real(self, images)
        if len(images) == 1 and images[0].shape[0] == 300:  # the self-test's drawn ring
            out[0, 0] = np.nan
        return out

    monkeypatch.setattr(EncoderSession, "embed_images", nan_for_the_query)
    assert main(["--self-test"]) == 1
    out, err = capsys.readouterr()
    assert "NaN or infinite embedding" in err and "passed" not in out


def test_info_survives_a_malformed_accuracy_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = make_encoder(tmp_path / "m.onnx", metadata_overrides={"accuracy": '{"5w1s": {"mean": "high"}}'})
    assert main(["--info", "--model", str(model)]) == 0
    assert "protoglyph-test-encoder" in capsys.readouterr().out


# -- the window on X11 where a library Qt's xcb plugin needs is missing -------------------------
def x11_environ(tmp_path: Path, display: str) -> dict[str, str]:
    """The environment of a person starting the app on an X11 desktop: DISPLAY set, no Qt platform
    chosen, no Wayland; the app's data and settings in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "QT_QPA_PLATFORM_PLUGIN_PATH",
                        "PROTOGLYPH_NO_PLATFORM_CHECK")}
    return {**env, "DISPLAY": display, "PROTOGLYPH_DATA_DIR": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_missing_x11_libraries_are_named_before_qt_starts(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from protoglyph.cli import platform_check
    from protoglyph.gui import app

    if platform_check.xcb_plugin() is None or not sys.platform.startswith("linux"):
        pytest.skip("PySide6's xcb plugin (libqxcb.so) is not here")
    started: list[object] = []
    monkeypatch.setattr(app, "run", lambda *args: started.append(args) or 0)  # Qt must not be reached
    for name, value in x11_environ(Path("/nonexistent"), ":99").items():
        monkeypatch.setenv(name, value)
    for name in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE", "QT_QPA_PLATFORM_PLUGIN_PATH"):
        monkeypatch.delenv(name, raising=False)
    gone = {"libxcb-cursor.so.0", "libxcb-keysyms.so.1"}
    monkeypatch.setattr(platform_check, "load_error", lambda name: (
        f"{name}: cannot open shared object file: No such file or directory" if name in gone else None))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert started == [] and "Traceback" not in err
    assert "  libxcb-cursor.so.0  (package libxcb-cursor0)\n" in err
    assert "  libxcb-keysyms.so.1  (package libxcb-keysyms1)\n" in err
    assert "sudo apt-get install libxcb-cursor0 libxcb-keysyms1\n" in err
    assert err.count("(package ") == 2


def test_a_missing_x11_library_as_a_user_runs_it(tmp_path: Path) -> None:
    """``python -m protoglyph`` on a system where the xcb plugin needs a library that is not there
    (a copy of PySide6's plugin whose DT_NEEDED names one no system has): exit 2 and the message,
    before Qt (which the fake PySide6 package could not even import)."""
    from tests.test_platform_check import PLUGIN, fake_plugin_tree

    if PLUGIN is None or not sys.platform.startswith("linux"):
        pytest.skip("PySide6's xcb plugin (libqxcb.so) is not here")
    fake_plugin_tree(tmp_path / "site")
    env = x11_environ(tmp_path, ":99")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp_path / "site"), env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-m", "protoglyph"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "Could not load the Qt platform plugin" not in out.stderr
    assert "Qt's X11 platform plugin (xcb) needs system libraries that are not installed:\n  libxcb-cursor.so.9\n" \
        in out.stderr
    assert "apt-file search libxcb-cursor.so.9" in out.stderr
    assert not (tmp_path / "data").exists()  # nothing was started


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="no Xvfb here to show the window on")
def test_the_check_lets_the_window_start_on_x11_where_everything_is_installed(tmp_path: Path) -> None:
    from protoglyph.cli import platform_check

    verdict = platform_check.check_xcb({"DISPLAY": ":0"})
    if verdict is None or verdict.missing:
        pytest.skip(f"the X11 libraries are not all installed here: {verdict}")
    display = f":{100 + os.getpid() % 400}"
    server = subprocess.Popen(["Xvfb", display, "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        socket = Path(f"/tmp/.X11-unix/X{display[1:]}")
        for _ in range(100):
            if socket.exists() or server.poll() is not None:
                break
            time.sleep(0.05)
        if not socket.exists():
            pytest.skip("Xvfb did not start")
        out = subprocess.run([sys.executable, "-m", "protoglyph", "--exit-when-ready"], capture_output=True,
                             text=True, timeout=120, env=x11_environ(tmp_path, display))
    finally:
        server.terminate()
        server.wait(10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ready ") and "cannot open" not in out.stderr
