"""The layers: the core stays free of Qt (and of torch) and of the window and the command; the
window builds on the core, never on the command. The GUI, CLI and tests all build on the core.

CI also runs import-linter with the contracts in pyproject.toml; this test checks the same
thing statically, subpackages included, so it holds wherever the tests run.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "desktop" / "protoglyph"
QT_AND_TORCH = ("PySide6", "shiboken6", "PyQt5", "PyQt6", "PySide2", "torch")
#: What each layer must not import (a module, or anything below it).
FORBIDDEN = {"core": (*QT_AND_TORCH, "protoglyph.gui", "protoglyph.cli"), "gui": ("protoglyph.cli", "torch")}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _bad(module: str, forbidden: tuple[str, ...]) -> bool:
    return any(module == f or module.startswith(f + ".") for f in forbidden)


def test_each_layer_imports_only_what_is_below_it() -> None:
    for layer, forbidden in FORBIDDEN.items():
        files = sorted((PACKAGE / layer).rglob("*.py"))  # subpackages too (core/labeling/…)
        assert len(files) > 3
        for path in files:
            bad = {m for m in imported_modules(path) if _bad(m, forbidden)}
            assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"


def test_the_walk_sees_subpackages() -> None:
    walked = {p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "core").rglob("*.py")}
    assert "core/labeling/run.py" in walked and "core/labeling/reviewing.py" in walked
    assert _bad("PySide6.QtCore", QT_AND_TORCH) and not _bad("PySide6x", QT_AND_TORCH)
