"""Can Qt's X11 platform plugin (xcb) load here? Checked before Qt starts, without Qt.

Why: PySide6's wheels ship Qt and its xcb plugin, but not the X11 client libraries the plugin
links (``libxcb-cursor0``, ``libxcb-icccm4``, …). Where one is missing, a plain Debian 12
desktop for one, Qt aborts with *Could not load the Qt platform plugin "xcb" in "" even though
it was found* and names no library, or a wrong one. This module finds which libraries are
missing and says which packages to install, so that ``protoglyph`` can stop with that message
instead.

How, and why this way:

- *Which libraries*: read from the plugin itself, not from a list kept here: the ``DT_NEEDED``
  entries of ``PySide6/Qt/plugins/platforms/libqxcb.so``, read from its ELF dynamic segment
  (a few small reads, no ``ldd``, which would run the dynamic loader in a subprocess), followed
  into each library it finds through its own ``RUNPATH`` (the Qt libraries PySide6 ships:
  ``libQt6XcbQpa``, ``libQt6Gui``, ``libQt6Core``, …). So a new PySide6 that links a new library
  is checked without a change here.
- *Whether one loads*: every needed library that PySide6 does not ship is handed to the system's
  own dynamic linker (``dlopen`` through :mod:`ctypes`), which is what Qt will do a moment later:
  same search path (``LD_LIBRARY_PATH``, ``ld.so.cache``, multiarch folders), same checks of
  architecture, and it loads the library's own dependencies too, naming the first one missing.
  Searching folders in Python would have to imitate all of that and would be wrong somewhere.
  Loading has no cost for Qt (it finds them loaded) and these are plain X11 client libraries.
- *Never in the way*: a library counts as missing only when the linker says that it *cannot open
  shared object file* (the library is not there). Any other outcome (another load error, a
  plugin that can't be found or read, an unexpected exception in this module) gives no verdict,
  and Qt is left to try. ``PROTOGLYPH_NO_PLATFORM_CHECK=1`` skips the check altogether.

Cost, on a start where everything is present (2 loaded cores; ``python -m
protoglyph.platform_check`` measures it again): reading the 8 ELF objects about 3 ms; the
whole check in a fresh process 16–35 ms, median 24 ms (import 8 ms, loading 34 libraries that
Qt then finds already loaded); the whole start to a shown window on Xvfb unchanged within the
noise (median of 15: 1.31 s with the check, 1.35 s without).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import struct
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

#: Debian and Ubuntu packages of the libraries Qt's window needs and PySide6 does not ship:
#: the DT_NEEDED entries of ``libqxcb.so`` and ``libQt6XcbQpa.so.6`` (PySide6 6.11), then of the
#: Qt libraries they load, mapped with ``dpkg -S`` on Debian 12. A library missing from this
#: table is named by its file name.
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
}

#: How ``dlerror()`` begins and ends its text when a library (or one it needs) is not there:
#: glibc (``NAME: cannot open shared object file: …``) and musl; the only answers taken as "missing".
_NOT_THERE = ((None, ": cannot open shared object file"), ("Error loading shared library ", ": No such file"))

#: Most ELF objects followed from the plugin (PySide6 6.11 needs 8): a guard against a loop.
_MAX_OBJECTS = 64

_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 15, 29
_PT_LOAD, _PT_DYNAMIC = 1, 2


class ElfError(ValueError):
    """The file is not an ELF shared object this module can read."""


class Dynamic(NamedTuple):
    """What the dynamic linker reads from an ELF object: its needed libraries and search path."""

    needed: list[str]
    runpath: list[str]  # DT_RUNPATH, else DT_RPATH, split at ':', ``$ORIGIN`` not yet expanded


class Verdict(NamedTuple):
    """The libraries that cannot be loaded (file names, in the order found), and the plugin checked."""

    plugin: Path
    missing: list[str]


def read_dynamic(path: Path) -> Dynamic:
    """The ``DT_NEEDED`` names and ``RUNPATH`` of an ELF object, read from its program headers.

    Program headers, not section headers: they are what the loader uses, and a stripped
    library may have no section table. Only the headers, the dynamic segment and the needed
    strings are read (a few hundred bytes even of ``libQt6Gui``'s 10 MB).
    """
    with open(path, "rb") as f:
        ident = f.read(16)
        if len(ident) < 16 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ElfError(f"{path} is not an ELF file")
        wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
        header = f.read(48 if wide else 36)
        if wide:
            phoff, phentsize, phnum = (struct.unpack_from(order + "Q", header, 16)[0],
                                       *struct.unpack_from(order + "HH", header, 38))
            phdr, dyn = order + "IIQQQQQQ", order + "qQ"
        else:
            phoff, phentsize, phnum = (struct.unpack_from(order + "I", header, 12)[0],
                                       *struct.unpack_from(order + "HH", header, 26))
            phdr, dyn = order + "IIIIIIII", order + "iI"
        if not 0 < phnum < 0xFFFF or phentsize < struct.calcsize(phdr):
            raise ElfError(f"{path}: unreadable program headers")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
        loads: list[tuple[int, int, int]] = []  # (vaddr, offset, filesz)
        dynamic: tuple[int, int] | None = None  # (offset, filesz)
        for i in range(phnum):
            fields = struct.unpack_from(phdr, table, i * phentsize)
            if wide:
                p_type, p_offset, p_vaddr, p_filesz = fields[0], fields[2], fields[3], fields[5]
            else:
                p_type, p_offset, p_vaddr, p_filesz = fields[0], fields[1], fields[2], fields[4]
            if p_type == _PT_LOAD:
                loads.append((p_vaddr, p_offset, p_filesz))
            elif p_type == _PT_DYNAMIC:
                dynamic = (p_offset, p_filesz)
        if dynamic is None:
            raise ElfError(f"{path} has no dynamic segment")
        f.seek(dynamic[0])
        raw = f.read(dynamic[1])
        entries: list[tuple[int, int]] = []
        for tag, value in struct.iter_unpack(dyn, raw[: len(raw) // struct.calcsize(dyn) * struct.calcsize(dyn)]):
            if tag == _DT_NULL:
                break
            entries.append((tag, value))
        strtab = next((v for t, v in entries if t == _DT_STRTAB), None)
        if strtab is None:
            raise ElfError(f"{path} has no string table")
        base = next((off + strtab - vaddr for vaddr, off, size in loads if vaddr <= strtab < vaddr + size), None)
        if base is None:
            raise ElfError(f"{path}: the string table lies outside the file")

        def string(offset: int) -> str:
            f.seek(base + offset)
            text = f.read(4096).split(b"\0", 1)[0]
            return text.decode("utf-8", "surrogateescape")

        needed = [string(v) for t, v in entries if t == _DT_NEEDED]
        runpath = [string(v) for t, v in entries if t == _DT_RUNPATH]
        if not runpath:
            runpath = [string(v) for t, v in entries if t == _DT_RPATH]
    return Dynamic(needed, [d for r in runpath for d in r.split(":") if d])


def _search_dirs(obj: str, runpath: Iterable[str]) -> list[str]:
    origin = os.path.dirname(obj)
    return [d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin) for d in runpath]


def load_error(name: str) -> str | None:
    """Why the system's dynamic linker cannot load ``name`` (its ``dlerror()`` text), or ``None``.

    In the installed (PyInstaller) app ``ctypes.CDLL`` is PyInstaller's, which replaces the
    linker's text with "Failed to load dynlib/dll … not found when the application was frozen"
    and chains the real error: that one is read, so the bundle names what is missing too.
    """
    try:
        ctypes.CDLL(name)
    except OSError as exc:
        cause = exc.__cause__
        return str(cause if isinstance(cause, OSError) else exc)
    return None


def not_there(error: str) -> str | None:
    """The library that is missing, when a load error says a file is not there; else ``None``."""
    for prefix, marker in _NOT_THERE:
        head, found, _ = error.partition(marker)
        if not found:
            continue
        if prefix is not None:
            if not head.startswith(prefix):
                continue
            head = head[len(prefix):]
        if head and not any(c.isspace() for c in head):
            return head
    return None


def missing_libraries(plugin: Path, load: Callable[[str], str | None] | None = None) -> list[str]:
    """File names of the libraries the plugin needs that cannot be loaded, in the order found.

    Libraries found through an object's own RUNPATH (what PySide6 ships) are followed into, not
    loaded; every other needed library is given to ``load``, and is missing when that says a
    file is not there (the file named may be one that library needs in turn). ``load`` is
    :func:`load_error` unless given (tests give one that makes libraries missing).

    Raises:
        OSError, ElfError: the plugin or a shipped library cannot be read (no verdict).
    """
    load = load or load_error
    missing: list[str] = []
    seen_objects: set[str] = set()
    tried: set[str] = set()
    listings: dict[str, set[str]] = {}  # a folder's file names, listed once: cheaper than a stat per name
    todo = [str(plugin)]
    while todo:
        obj = todo.pop(0)
        if obj in seen_objects:
            continue
        seen_objects.add(obj)
        if len(seen_objects) > _MAX_OBJECTS:
            raise ElfError(f"more than {_MAX_OBJECTS} libraries below {plugin}")
        info = read_dynamic(Path(obj))
        dirs = _search_dirs(obj, info.runpath)
        for folder in dirs:
            if folder not in listings:
                try:
                    listings[folder] = set(os.listdir(folder))
                except OSError:
                    listings[folder] = set()
        for name in info.needed:
            shipped = next((os.path.join(d, name) for d in dirs if name in listings[d]), None)
            if shipped is not None:
                todo.append(os.path.realpath(shipped))
                continue
            if name in tried:
                continue
            tried.add(name)
            error = load(name)
            lost = not_there(error) if error is not None else None
            if lost is not None and lost not in missing:
                missing.append(lost)
    return missing


def xcb_would_be_used(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt would start on X11: Linux, ``DISPLAY`` set, and ``QT_QPA_PLATFORM`` unset or xcb.

    Left out, so as never to refuse a start that could work: a Wayland session with the platform
    unset (Qt tries Wayland first there), a list of platforms to fall back on, and a
    ``QT_QPA_PLATFORM_PLUGIN_PATH`` (Qt may load another plugin than PySide6's).
    """
    if not platform.startswith("linux") or not environ.get("DISPLAY") or environ.get("PROTOGLYPH_NO_PLATFORM_CHECK"):
        return False
    if environ.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if not chosen:
        return not (environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE", "").lower() == "wayland")
    return chosen.split(":", 1)[0].strip().lower() == "xcb"


def xcb_plugin() -> Path | None:
    """PySide6's ``libqxcb.so``, found without importing PySide6 (nor Qt); ``None`` if absent."""
    spec = importlib.util.find_spec("PySide6")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        plugin = Path(folder) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def check_xcb(environ: Mapping[str, str] | None = None,
              load: Callable[[str], str | None] | None = None) -> Verdict | None:
    """The libraries missing for the xcb plugin, when Qt would use it; ``None`` for no verdict.

    Never raises: a check that fails for any reason must not stop a start that might work.
    """
    try:
        if not xcb_would_be_used(os.environ if environ is None else environ):
            return None
        plugin = xcb_plugin()
        if plugin is None:
            return None
        return Verdict(plugin, missing_libraries(plugin, load))
    except Exception:  # no verdict: let Qt try
        return None


def packages_for(libraries: Iterable[str]) -> tuple[list[str], list[str]]:
    """The Debian/Ubuntu packages for these libraries (in order, once each), and the libraries
    no package is known for."""
    packages: list[str] = []
    unknown: list[str] = []
    for name in libraries:
        package = DEBIAN_PACKAGES.get(name)
        if package is None:
            unknown.append(name)
        elif package not in packages:
            packages.append(package)
    return packages, unknown


def message(verdict: Verdict) -> str:
    """What to tell a person whose X11 libraries are missing: which, and the command to install them."""
    packages, unknown = packages_for(verdict.missing)
    lines = ["protoglyph: the window cannot open: Qt's X11 platform plugin (xcb) needs system libraries "
             "that are not installed:"]
    for name in verdict.missing:
        package = DEBIAN_PACKAGES.get(name)
        lines.append(f"  {name}" + (f"  (package {package})" if package else ""))
    if packages:
        lines += ["On Debian or Ubuntu, install them with:", f"  sudo apt-get install {' '.join(packages)}"]
    if unknown:
        lines.append("Find the package that holds " + ", ".join(unknown) + " with your system's package search "
                     f"(on Debian or Ubuntu: apt-file search {unknown[0]}).")
    lines += [f"(checked {verdict.plugin}; commands without a window work as they are: protoglyph --self-test, "
              "protoglyph label; PROTOGLYPH_NO_PLATFORM_CHECK=1 lets Qt try anyway)"]
    return "\n".join(lines)


def _measure(runs: int = 20) -> None:
    """Print the check's cost here: the first call (libraries loaded for the first time) and later ones."""
    plugin = xcb_plugin()
    if plugin is None:
        print("PySide6's xcb plugin is not installed here")
        return
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        missing = missing_libraries(plugin)
        times.append((time.perf_counter() - start) * 1000)
    later = sorted(times[1:])
    print(f"{plugin}: missing {missing or 'nothing'}; first check {times[0]:.2f} ms, "
          f"later ones median {later[len(later) // 2]:.2f} ms")


if __name__ == "__main__":
    _measure()
