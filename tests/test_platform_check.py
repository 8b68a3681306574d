"""The check, before Qt starts, that the X11 libraries Qt's xcb plugin needs can be loaded: it
reads the plugin's needed libraries as the dynamic linker does, names exactly the missing ones
with their Debian packages, and never stands in the way when it cannot tell."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from protoglyph.cli import platform_check as pc

PLUGIN = pc.xcb_plugin()
needs_plugin = pytest.mark.skipif(PLUGIN is None, reason="PySide6's xcb plugin (libqxcb.so) is not installed here")


def readelf_needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def fake_plugin_tree(root: Path, old: bytes = b"libxcb-cursor.so.0", new: bytes = b"libxcb-cursor.so.9") -> Path:
    """A PySide6 package whose xcb plugin needs ``new`` instead of ``old`` (patched in its string
    table, same length), with the real Qt libraries beside it: a system where ``new`` is missing."""
    assert PLUGIN is not None and len(old) == len(new)
    qt = PLUGIN.parent.parent.parent
    platforms = root / "PySide6" / "Qt" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (root / "PySide6" / "__init__.py").write_text("")
    (root / "PySide6" / "Qt" / "lib").symlink_to(qt / "lib")
    data = PLUGIN.read_bytes()
    assert data.count(b"\0" + old + b"\0") == 1
    (platforms / "libqxcb.so").write_bytes(data.replace(b"\0" + old + b"\0", b"\0" + new + b"\0"))
    return platforms / "libqxcb.so"


def missing_by_name(*names: str) -> Callable[[str], str | None]:
    """A loader for which ``names`` are not there (as glibc words it) and everything else loads."""
    def load(name: str) -> str | None:
        return f"{name}: cannot open shared object file: No such file or directory" if name in names else None
    return load


# -- reading the plugin ----------------------------------------------------------------------
@needs_plugin
@pytest.mark.skipif(shutil.which("readelf") is None, reason="no readelf here to compare with")
def test_needed_libraries_are_read_as_readelf_reads_them() -> None:
    assert PLUGIN is not None
    qpa = PLUGIN.parent.parent.parent / "lib" / "libQt6XcbQpa.so.6"
    for library in (PLUGIN, qpa):
        info = pc.read_dynamic(library)
        assert info.needed == readelf_needed(library)
        assert "libxcb-cursor.so.0" in info.needed and "libxkbcommon-x11.so.0" in info.needed
    assert pc.read_dynamic(PLUGIN).runpath == ["$ORIGIN/../../lib"]


def test_a_file_that_is_not_elf_is_refused(tmp_path: Path) -> None:
    (tmp_path / "libqxcb.so").write_bytes(b"#!/bin/sh\n" * 20)
    with pytest.raises(pc.ElfError):
        pc.read_dynamic(tmp_path / "libqxcb.so")


@needs_plugin
def test_everything_the_real_plugin_needs_is_followed_and_tried(tmp_path: Path) -> None:
    assert PLUGIN is not None
    tried: list[str] = []

    def loads(name: str) -> str | None:
        tried.append(name)
        return None

    assert pc.missing_libraries(PLUGIN, loads) == []
    # the X11 libraries of the plugin and of libQt6XcbQpa, and those of the Qt libraries they load
    assert {"libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0", "libglib-2.0.so.0"} <= set(tried)
    assert not any(name.startswith("libQt6") for name in tried)  # shipped: followed, not loaded
    assert len(tried) == len(set(tried))  # each tried once


# -- naming exactly what is missing ----------------------------------------------------------
@needs_plugin
def test_the_missing_libraries_are_named_with_their_packages() -> None:
    assert PLUGIN is not None
    load = missing_by_name("libxcb-cursor.so.0", "libxkbcommon-x11.so.0", "libxcb-icccm.so.4")
    verdict = pc.check_xcb({"DISPLAY": ":0"}, load)
    assert verdict is not None
    assert verdict.missing == ["libxkbcommon-x11.so.0", "libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    text = pc.message(verdict)
    assert "sudo apt-get install libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4\n" in text
    named = [line.split()[0] for line in text.splitlines() if line.startswith("  lib")]
    assert named == verdict.missing  # exactly these, nothing else
    assert "libxcb-keysyms" not in text and str(PLUGIN) in text


def test_a_library_missing_below_another_is_the_one_named(tmp_path: Path) -> None:
    """dlopen names the file that is not there, which may be one a needed library needs."""
    def load(name: str) -> str | None:
        if name == "libxcb-cursor.so.0":
            return "libxcb-render-util.so.0: cannot open shared object file: No such file or directory"
        return None

    if PLUGIN is None:
        pytest.skip("PySide6's xcb plugin (libqxcb.so) is not installed here")
    assert pc.missing_libraries(PLUGIN, load) == ["libxcb-render-util.so.0"]


def test_unknown_libraries_are_named_by_file_name() -> None:
    text = pc.message(pc.Verdict(Path("/x/libqxcb.so"), ["libxcb-cursor.so.0", "libfoo-x11.so.7"]))
    assert "sudo apt-get install libxcb-cursor0\n" in text
    assert "  libfoo-x11.so.7\n" in text and "apt-file search libfoo-x11.so.7" in text
    only_unknown = pc.message(pc.Verdict(Path("/x/libqxcb.so"), ["libfoo-x11.so.7"]))
    assert "apt-get install" not in only_unknown and "libfoo-x11.so.7" in only_unknown


def test_other_load_errors_are_no_verdict() -> None:
    """Only "cannot open shared object file" means missing: an undefined symbol, a wrong
    architecture or anything else is left for Qt to try (or to explain)."""
    assert pc.not_there("libGL.so.1: undefined symbol: glXFoo") is None
    assert pc.not_there("libX11.so.6: wrong ELF class: ELFCLASS32") is None
    assert pc.not_there("libx.so.1: cannot open shared object file: No such file or directory") == "libx.so.1"
    assert pc.not_there("Error loading shared library liby.so.2: No such file or directory") == "liby.so.2"
    if PLUGIN is not None:
        assert pc.missing_libraries(PLUGIN, lambda name: f"{name}: undefined symbol: x") == []


@needs_plugin
def test_the_real_dynamic_linker_is_asked(tmp_path: Path) -> None:
    """A plugin that needs a library no system has: found missing by the real ``dlopen``."""
    plugin = fake_plugin_tree(tmp_path)
    missing = pc.missing_libraries(plugin)
    assert "libxcb-cursor.so.9" in missing
    # beside it, what this machine lacks for the real plugin (none on a full desktop; a fresh
    # machine may lack libxcb-icccm4 and libxcb-keysyms1, as issue 11 found)
    assert set(missing) - {"libxcb-cursor.so.9"} == set(pc.missing_libraries(PLUGIN)) - {"libxcb-cursor.so.0"}
    assert pc.load_error("libc.so.6") is None


@needs_plugin
@pytest.mark.skipif(shutil.which("ldd") is None, reason="no ldd here to compare with")
def test_the_verdict_agrees_with_ldd() -> None:
    """Whatever this machine has installed: nothing is called missing that ldd finds, and
    something is whenever ldd finds a library missing."""
    assert PLUGIN is not None
    out = subprocess.run(["ldd", str(PLUGIN)], capture_output=True, text=True).stdout
    not_found = {line.split()[0] for line in out.splitlines() if "not found" in line}
    missing = set(pc.missing_libraries(PLUGIN))
    assert missing <= not_found and bool(missing) == bool(not_found)


# -- when it is checked, and never in the way --------------------------------------------------
@pytest.mark.parametrize(("environ", "platform", "checked"), [
    ({"DISPLAY": ":0"}, "linux", True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb:nograb"}, "linux", True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", False),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland;xcb"}, "linux", False),
    ({}, "linux", False),  # no X display: Qt fails anyway, and says so itself
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", False),  # Qt tries Wayland first
    ({"DISPLAY": ":0", "XDG_SESSION_TYPE": "wayland"}, "linux", False),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"}, "linux", True),
    ({"DISPLAY": ":0", "QT_QPA_PLATFORM_PLUGIN_PATH": "/opt/qt"}, "linux", False),
    ({"DISPLAY": ":0", "PROTOGLYPH_NO_PLATFORM_CHECK": "1"}, "linux", False),
    ({"DISPLAY": ":0"}, "darwin", False),
    ({"DISPLAY": ":0"}, "win32", False),
])
def test_checked_only_where_qt_would_use_xcb(environ: dict[str, str], platform: str, checked: bool) -> None:
    assert pc.xcb_would_be_used(environ, platform) is checked


def test_a_check_that_fails_lets_qt_try(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    garbage = tmp_path / "libqxcb.so"
    garbage.write_bytes(b"\x7fELF" + bytes(100))
    monkeypatch.setattr(pc, "xcb_plugin", lambda: garbage)
    assert pc.check_xcb({"DISPLAY": ":0"}, missing_by_name("libxcb.so.1")) is None

    def broken(name: str) -> str | None:
        raise RuntimeError("surprise")

    monkeypatch.setattr(pc, "xcb_plugin", lambda: PLUGIN)
    assert pc.check_xcb({"DISPLAY": ":0"}, broken) is None
    monkeypatch.setattr(pc, "xcb_plugin", lambda: None)  # PySide6 without the plugin
    assert pc.check_xcb({"DISPLAY": ":0"}, missing_by_name("libxcb.so.1")) is None


def test_the_installed_apps_ctypes_still_gives_the_linkers_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyInstaller's ``ctypes.CDLL`` wraps every load error in one of its own words (the bundled
    window printed Qt's misleading line because the check could not read them): the linker's
    text it chains is what the check reads."""
    real = ctypes.CDLL

    class FrozenImportError(OSError):
        pass

    class FrozenCDLL(real):  # type: ignore[misc, valid-type]
        def __init__(self, name: str, *args: object, **kwargs: object) -> None:
            try:
                super().__init__(name, *args, **kwargs)
            except Exception as base:
                raise FrozenImportError(f"Failed to load dynlib/dll {name!r}. Most likely this dynlib/dll was not "
                                        "found when the application was frozen.") from base

    monkeypatch.setattr(ctypes, "CDLL", FrozenCDLL)
    error = pc.load_error("libprotoglyph-no-such-library.so.7")
    assert error is not None and pc.not_there(error) == "libprotoglyph-no-such-library.so.7"
    assert pc.load_error("libc.so.6") is None
