"""The installed package, not only the checkout, carries the encoder and finds it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_the_encoder_and_finds_it(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(REPO)], check=True, timeout=300)
    wheel = next(tmp_path.glob("protoglyph-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    assert "protoglyph/assets/encoder.onnx" in names
    assert not any(n.startswith(("models/", "desktop/", "tests/")) for n in names)
    # Import from the unpacked wheel alone (no checkout on the path) and load the encoder.
    site = str(tmp_path / "site")
    code = (f"import sys; sys.path = [{site!r}] + [p for p in sys.path if not p.endswith('desktop')]; "
            "import protoglyph.core.encoder as e; s = e.EncoderSession(); "
            f"assert str(s.path).startswith({site!r}), s.path; print(s.info.model_name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "protoglyph-omniglot-protonet"
