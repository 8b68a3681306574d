"""What the installer's parts share: names, versions, errors, and reading ELF files."""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "protoglyph"

DESKTOP_ENTRY = """[Desktop Entry]
Type=Application
Name=Protoglyph
GenericName=Glyph labeler
Comment=Few-shot labeling of characters and symbols, offline
Exec={exec} %F
Icon=protoglyph
Terminal=false
Categories=Graphics;Education;Science;
MimeType=application/x-protoglyph;
"""


class BuildError(RuntimeError):
    """Something the build needs is missing or failed; the message says what to do."""


def version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version = "([^"]+)"', text, re.M)
    if not match:
        raise BuildError("pyproject.toml has no version")
    return match.group(1)


def arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def executable(bundle: Path) -> Path:
    return bundle / (f"{NAME}.exe" if platform.system() == "Windows" else NAME)


def folder_size(path: Path) -> int:
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() or f.is_symlink())


def needed_libraries(lib: Path) -> list[str]:
    """The ``DT_NEEDED`` entries of an ELF file."""
    dynamic = subprocess.run(["readelf", "-d", "-W", str(lib)], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
