"""The ``protoglyph`` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
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
