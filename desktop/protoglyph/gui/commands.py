"""Undoable edits. Each command keeps the workspace and ids and plain values (never the window's
objects) and calls the workspace; it is pushed only after the edit itself succeeded, so its
first ``redo`` does nothing. What the window shows follows the undo stack: the controller
refreshes whenever the stack's index changes (``ProjectController``).
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from protoglyph.core.project import ClassRecord, ExampleRecord
from protoglyph.core.workspace import ClassSnapshot, Workspace


class Edit(QUndoCommand):
    #: A class to select once this edit is undone (a deleted class brought back), if any.
    select_after_undo: int | None = None

    def __init__(self, workspace: Workspace, text: str) -> None:
        super().__init__(text)
        self.workspace = workspace
        self._first = True

    def redo(self) -> None:
        if self._first:
            self._first = False
            return
        self.apply()

    def undo(self) -> None:
        self.revert()

    def apply(self) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError


class AddClass(Edit):
    def __init__(self, workspace: Workspace, record: ClassRecord) -> None:
        super().__init__(workspace, f"New Class “{record.name}”")
        self.record = record

    def apply(self) -> None:
        self.workspace.restore_class(ClassSnapshot(self.record, ()))

    def revert(self) -> None:
        self.workspace.delete_class(self.record.id)


class DeleteClass(Edit):
    def __init__(self, workspace: Workspace, snapshot: ClassSnapshot) -> None:
        super().__init__(workspace, f"Delete Class “{snapshot.record.name}”")
        self.snapshot = snapshot
        self.select_after_undo = snapshot.record.id

    def apply(self) -> None:
        self.workspace.delete_class(self.snapshot.record.id)

    def revert(self) -> None:
        self.workspace.restore_class(self.snapshot)


class RenameClass(Edit):
    def __init__(self, workspace: Workspace, class_id: int, old: str, new: str) -> None:
        super().__init__(workspace, f"Rename “{old}” to “{new}”")
        self.class_id, self.old, self.new = class_id, old, new

    def apply(self) -> None:
        self.workspace.rename_class(self.class_id, self.new)

    def revert(self) -> None:
        self.workspace.rename_class(self.class_id, self.old)


class RecolorClass(Edit):
    def __init__(self, workspace: Workspace, class_id: int, name: str, old: str, new: str) -> None:
        super().__init__(workspace, f"Colour of “{name}”")
        self.class_id, self.old, self.new = class_id, old, new

    def apply(self) -> None:
        self.workspace.recolor_class(self.class_id, self.new)

    def revert(self) -> None:
        self.workspace.recolor_class(self.class_id, self.old)


class MoveClass(Edit):
    def __init__(self, workspace: Workspace, class_id: int, name: str, old: int, new: int) -> None:
        super().__init__(workspace, f"Move “{name}”")
        self.class_id, self.old, self.new = class_id, old, new

    def apply(self) -> None:
        self.workspace.move_class(self.class_id, self.new)

    def revert(self) -> None:
        self.workspace.move_class(self.class_id, self.old)


class AddExamples(Edit):
    def __init__(self, workspace: Workspace, records: list[ExampleRecord], class_name: str) -> None:
        n = len(records)
        super().__init__(workspace, f"Add {n} Example{'s' if n != 1 else ''} to “{class_name}”")
        self.records = records

    def apply(self) -> None:
        self.workspace.restore_examples(self.records)

    def revert(self) -> None:
        self.workspace.remove_examples([r.id for r in self.records])


class RemoveExamples(Edit):
    def __init__(self, workspace: Workspace, records: list[ExampleRecord]) -> None:
        n = len(records)
        super().__init__(workspace, f"Remove {n} Example{'s' if n != 1 else ''}")
        self.records = records

    def apply(self) -> None:
        self.workspace.remove_examples([r.id for r in self.records])

    def revert(self) -> None:
        self.workspace.restore_examples(self.records)


class MoveExamples(Edit):
    def __init__(self, workspace: Workspace, before: list[tuple[int, int, int]],
                 after: list[tuple[int, int, int]], class_name: str) -> None:
        n = len(before)
        super().__init__(workspace, f"Move {n} Example{'s' if n != 1 else ''} to “{class_name}”")
        self.before, self.after = before, after

    def apply(self) -> None:
        self.workspace.place_examples(self.after)

    def revert(self) -> None:
        self.workspace.place_examples(self.before)


class Macro(Edit):
    """Steps already done (a class made, examples added…), undone and redone as one."""

    def __init__(self, workspace: Workspace, text: str) -> None:
        super().__init__(workspace, text)
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
