"""Every menu and toolbar action of the main window, with its shortcut, in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources

from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QStyle, QWidget

Key = QKeySequence.StandardKey


@dataclass
class WindowActions:
    new_project: QAction
    open_project: QAction
    save_as: QAction
    quit: QAction
    undo: QAction
    redo: QAction
    undo_stroke: QAction
    paste: QAction
    clear_drawing: QAction
    add_drawing: QAction
    add_to_predicted: QAction
    new_class: QAction
    rename_class: QAction
    delete_class: QAction
    move_up: QAction
    move_down: QAction
    recolor: QAction
    add_images: QAction
    import_folder: QAction
    label_folder: QAction
    export_results: QAction
    undo_export: QAction
    forget_results: QAction
    about: QAction
    shortcuts: QAction

    def all(self) -> list[QAction]:
        return [getattr(self, f.name) for f in fields(self)]


def _action(parent: QWidget, text: str, shortcut: QKeySequence | Key | str | None = None, tip: str = "",
            icon: QStyle.StandardPixmap | None = None, theme: str = "", short: str = "", svg: str = "") -> QAction:
    act = QAction(text, parent)
    if short:
        act.setIconText(short)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
    if tip:
        act.setStatusTip(tip)
        act.setToolTip(f"{text.replace('&', '').replace('…', '')}"
                       f"{f' ({act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})' if shortcut else ''}"
                       f"\n{tip}")
    if icon is not None or svg:
        # Qt's standard pixmaps have no undo or redo (its back/forward arrows read as navigation),
        # so those two are drawn in the package's own assets.
        fallback = QIcon(str(resources.files("protoglyph") / "assets" / f"{svg}.svg")) if svg else \
            parent.style().standardIcon(icon)  # type: ignore[arg-type]
        act.setIcon(QIcon.fromTheme(theme, fallback) if theme else fallback)
    return act


def create_actions(parent: QWidget) -> WindowActions:
    sp = QStyle.StandardPixmap
    return WindowActions(
        new_project=_action(parent, "&New Project…", Key.New, "Start an empty project in a new file",
                            sp.SP_FileIcon, "document-new", short="New"),
        open_project=_action(parent, "&Open Project…", Key.Open, "Open a project file", sp.SP_DialogOpenButton,
                             "document-open", short="Open"),
        save_as=_action(parent, "Save Project &As…", "Ctrl+Shift+S",
                        "Copy the project to a new file and continue there (edits are always saved as you make them)",
                        sp.SP_DialogSaveButton, "document-save-as", short="Save As"),
        quit=_action(parent, "&Quit", Key.Quit, "Close Protoglyph (everything is already saved)"),
        undo=_action(parent, "&Undo", "Ctrl+Z", "Undo the last stroke while drawing (or bring back a cleared "
                     "drawing), else the last edit", svg="undo", theme="edit-undo", short="Undo"),
        redo=_action(parent, "&Redo", "Ctrl+Shift+Z", "Redo what was undone", svg="redo", theme="edit-redo",
                     short="Redo"),
        undo_stroke=_action(parent, "Undo Stroke", None, "Take back the last stroke, or bring back the drawing "
                            "Esc cleared (edits to classes are undone with Edit ▸ Undo)", svg="undo",
                            theme="edit-undo"),
        paste=_action(parent, "&Paste Image", Key.Paste, "Add the image on the clipboard to the selected class"),
        clear_drawing=_action(parent, "&Clear Drawing", "Esc", "Wipe the canvas", sp.SP_DialogResetButton,
                              "edit-clear", short="Clear"),
        add_drawing=_action(parent, "Add &Drawing to Class", "Return",
                            "Add the drawing to the selected class (or press 1–9 for class 1–9)",
                            sp.SP_DialogApplyButton, "list-add"),
        add_to_predicted=_action(parent, "Add Drawing to the &Predicted Class", "Shift+Return",
                                 "Add the drawing to the class it looks like (just after adding it elsewhere: "
                                 "move it there)"),
        new_class=_action(parent, "&New Class", "Ctrl+Shift+N", "Add an empty class", sp.SP_FileDialogNewFolder,
                          "folder-new", short="New Class"),
        rename_class=_action(parent, "&Rename Class", "F2", "Rename the selected class"),
        delete_class=_action(parent, "&Delete Class", "Ctrl+Delete", "Delete the selected class and its examples",
                             sp.SP_TrashIcon, "edit-delete"),
        move_up=_action(parent, "Move Class &Up", "Alt+Up", "Move the selected class up the list", sp.SP_ArrowUp,
                        "go-up"),
        move_down=_action(parent, "Move Class Do&wn", "Alt+Down", "Move the selected class down the list",
                          sp.SP_ArrowDown, "go-down"),
        recolor=_action(parent, "Class &Colour…", None, "Choose the selected class's colour",
                        sp.SP_DesktopIcon, "color-picker"),
        add_images=_action(parent, "Add &Images to Class…", "Ctrl+I",
                           "Add image files as examples of the selected class", sp.SP_DirOpenIcon, "insert-image",
                           short="Add Images"),
        import_folder=_action(parent, "Import &Folder per Class…", "Ctrl+Shift+I",
                              "Import a folder whose subfolders are classes (each subfolder's images its examples)",
                              sp.SP_DirIcon, "folder-open", short="Import Folder"),
        label_folder=_action(parent, "&Label a Folder…", "Ctrl+L",
                             "Classify every image below a folder with this project's classes, then review",
                             sp.SP_DirLinkIcon, "folder-saved-search", short="Label Folder"),
        export_results=_action(parent, "&Export Results…", "Ctrl+E",
                               "Export the labeled folder: CSV, JSON, or a folder per class", sp.SP_DialogSaveButton,
                               "document-export", short="Export"),
        undo_export=_action(parent, "Undo Folder E&xport…", None,
                            "Move exported files back (or remove copies) using the export's journal"),
        forget_results=_action(parent, "&Forget This Folder's Labels…", None,
                               "Delete the labels and reviews of the shown folder from the project (its files "
                               "stay as they are)"),
        about=_action(parent, "&About Protoglyph", None, "Version, model and accuracy"),
        shortcuts=_action(parent, "&Keyboard Shortcuts", "F1", "List the keyboard shortcuts"),
    )
