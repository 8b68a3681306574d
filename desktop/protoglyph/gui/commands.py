"""Undoable edits. Each command keeps ids and plain values (never live objects) and calls the
workspace; it is pushed only after the edit itself succeeded, so its first ``redo`` does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand

from protoglyph.core.project import ClassRecord, ExampleRecord
from protoglyph.core.workspace import ClassSnapshot

if TYPE_CHECKING:
    from protoglyph.gui.controller import ProjectController


class Edit(QUndoCommand):
    def __init__(self, controller: ProjectController, text: str) -> None:
        super().__init__(text)
        self.c = controller
        self._first = True

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self.apply()
        self.c.refresh()

    def undo(self) -> None:
        self.revert()
        self.c.refresh()

    def apply(self) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError


class AddClass(Edit):
    def __init__(self, controller: ProjectController, record: ClassRecord) -> None:
        super().__init__(controller, f"New Class “{record.name}”")
        self.record = record

    def apply(self) -> None:
        self.c.workspace.restore_class(ClassSnapshot(self.record, ()))

    def revert(self) -> None:
        self.c.workspace.delete_class(self.record.id)


class DeleteClass(Edit):
    def __init__(self, controller: ProjectController, snapshot: ClassSnapshot) -> None:
        super().__init__(controller, f"Delete Class “{snapshot.record.name}”")
        self.snapshot = snapshot

    def apply(self) -> None:
        self.c.workspace.delete_class(self.snapshot.record.id)

    def revert(self) -> None:
        self.c.workspace.restore_class(self.snapshot)
        self.c.select_class(self.snapshot.record.id)


class RenameClass(Edit):
    def __init__(self, controller: ProjectController, class_id: int, old: str, new: str) -> None:
        super().__init__(controller, f"Rename “{old}” to “{new}”")
        self.class_id, self.old, self.new = class_id, old, new

    def apply(self) -> None:
        self.c.workspace.rename_class(self.class_id, self.new)

    def revert(self) -> None:
        self.c.workspace.rename_class(self.class_id, self.old)


class RecolorClass(Edit):
    def __init__(self, controller: ProjectController, class_id: int, name: str, old: str, new: str) -> None:
        super().__init__(controller, f"Colour of “{name}”")
        self.class_id, self.old, self.new = class_id, old, new

    def apply(self) -> None:
        self.c.workspace.recolor_class(self.class_id, self.new)

    def revert(self) -> None:
        self.c.workspace.recolor_class(self.class_id, self.old)


class MoveClass(Edit):
    def __init__(self, controller: ProjectController, class_id: int, name: str, old: int, new: int) -> None:
        super().__init__(controller, f"Move “{name}”")
        self.class_id, self.old, self.new = class_id, old, new

    def apply(self) -> None:
        self.c.workspace.move_class(self.class_id, self.new)

    def revert(self) -> None:
        self.c.workspace.move_class(self.class_id, self.old)


class AddExamples(Edit):
    def __init__(self, controller: ProjectController, records: list[ExampleRecord], class_name: str) -> None:
        n = len(records)
        super().__init__(controller, f"Add {n} Example{'s' if n != 1 else ''} to “{class_name}”")
        self.records = records

    def apply(self) -> None:
        self.c.workspace.restore_examples(self.records)

    def revert(self) -> None:
        self.c.workspace.remove_examples([r.id for r in self.records])


class RemoveExamples(Edit):
    def __init__(self, controller: ProjectController, records: list[ExampleRecord]) -> None:
        n = len(records)
        super().__init__(controller, f"Remove {n} Example{'s' if n != 1 else ''}")
        self.records = records

    def apply(self) -> None:
        self.c.workspace.remove_examples([r.id for r in self.records])

    def revert(self) -> None:
        self.c.workspace.restore_examples(self.records)


class MoveExamples(Edit):
    def __init__(self, controller: ProjectController, before: list[tuple[int, int, int]],
                 after: list[tuple[int, int, int]], class_name: str) -> None:
        n = len(before)
        super().__init__(controller, f"Move {n} Example{'s' if n != 1 else ''} to “{class_name}”")
        self.before, self.after = before, after

    def apply(self) -> None:
        self.c.workspace.place_examples(self.after)

    def revert(self) -> None:
        self.c.workspace.place_examples(self.before)


class Macro(Edit):
    """Steps already done (a class made, examples added…), undone and redone as one."""

    def __init__(self, controller: ProjectController, text: str) -> None:
        super().__init__(controller, text)
        # Kept here rather than as Qt children, so the Python side of each step stays alive.
        self.steps: list[Edit] = []

    def add(self, step: Edit) -> None:
        self.steps.append(step)

    def apply(self) -> None:
        for step in self.steps:
            step.apply()

    def revert(self) -> None:
        for step in reversed(self.steps):
            step.revert()
