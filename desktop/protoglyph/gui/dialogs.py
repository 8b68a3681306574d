"""Message boxes the app shows: problems with files, the model, a project; the About box."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

import protoglyph
from protoglyph.core.encoder import MODEL_ENV_VAR, ModelError, ModelInfo


def file_problems(parent: QWidget | None, problems: Sequence[tuple[Path, str]], total: int) -> None:
    """List files that were skipped, each with the reason."""
    n = len(problems)
    box = QMessageBox(QMessageBox.Icon.Warning, "Some files were skipped",
                      f"{n} of {total} file{'s' if total != 1 else ''} could not be used and "
                      f"{'was' if n == 1 else 'were'} skipped. Everything else was added.", parent=parent)
    lines = [f"{path}: {reason}" for path, reason in problems]
    box.setInformativeText("\n".join(lines[:8]) + (f"\n… and {n - 8} more (see Details)" if n > 8 else ""))
    box.setDetailedText("\n".join(lines))
    box.setObjectName("fileProblems")
    box.open()


def model_error_text(error: ModelError) -> str:
    return (f"Protoglyph cannot start: its encoder model cannot be used.\n\nFile: {error.path}\n"
            f"Problem: {error.problem}\n\nTo fix it, reinstall Protoglyph, or point the environment variable "
            f"{MODEL_ENV_VAR} (or the --model option) at a Protoglyph encoder .onnx file.")


def model_error(error: ModelError) -> None:
    box = QMessageBox(QMessageBox.Icon.Critical, "Protoglyph: the model cannot be loaded", model_error_text(error))
    box.setObjectName("modelError")
    box.exec()


def project_error(parent: QWidget | None, path: Path, problem: str, action: str = "open", wait: bool = False) -> None:
    """Say why a project could not be opened, saved or created; ``wait`` blocks until it is read
    (before the window exists, when nothing else would keep the message on screen)."""
    done = {"open": "opened", "save": "saved", "create": "created"}.get(action, action)
    box = QMessageBox(QMessageBox.Icon.Warning, f"Cannot {action} the project",
                      f"The project could not be {done}:\n\n{path}\n\n{problem}\n\nNothing was changed.",
                      parent=parent)
    box.setObjectName("projectError")
    if wait:
        box.exec()
    else:
        box.open()


def project_problems(parent: QWidget | None, path: Path, problems: Sequence[str]) -> None:
    """What could not be used when a project was opened (damaged examples, a starter project
    that had to be made anew); the rest of the project works."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Part of the project could not be used",
                      f"{path}\n\n" + "\n\n".join(problems[:5])
                      + (f"\n\n… and {len(problems) - 5} more (see Details)" if len(problems) > 5 else ""),
                      parent=parent)
    box.setDetailedText("\n".join(problems))
    box.setObjectName("projectProblems")
    box.open()


def about(parent: QWidget | None, info: ModelInfo) -> None:
    QMessageBox.about(
        parent, "About Protoglyph",
        f"<h3>Protoglyph {protoglyph.__version__}</h3>"
        "<p>Few-shot labeling of characters and symbols: define classes with a few examples, then "
        "draw or load glyphs and see them classified. Runs fully offline.</p>"
        f"<pre>{_escape(info.summary())}</pre>"
        "<p>The encoder is a Prototypical Network (Snell et al., 2017) meta-trained on the data "
        "named above: Omniglot (Lake, Salakhutdinov and Tenenbaum, 2015; MIT licence) and, from "
        "encoder 2 on, glyphs rendered from free font packages of Debian (none of those fonts "
        "ships with the app); the accuracy above was measured on alphabets it never saw.</p>")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
