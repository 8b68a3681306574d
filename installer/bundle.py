"""The PyInstaller bundle: build it, take out what the app never loads, add the desktop files."""

from __future__ import annotations

import platform
import re
import shutil
import subprocess
from pathlib import Path

from installer.common import DESKTOP_ENTRY, NAME, ROOT, executable, needed_libraries

#: Qt modules the app imports; every other PySide6 module stays out of the bundle.
QT_MODULES = {"QtCore", "QtGui", "QtWidgets", "QtSvg"}
#: Python packages the app never imports at run time (training, tests, other Qt bindings).
EXCLUDED = ["torch", "torchvision", "onnx", "tkinter", "PyQt5", "PyQt6", "PySide2", "matplotlib", "IPython",
            "pytest", "pytestqt", "PIL", "scipy", "pandas", "models", "setuptools", "pip", "mypy", "ruff",
            # The ray engine is for a pip installation (protoglyph[ray]) on a cluster, not the bundle:
            # there `protoglyph label --engine ray` says what to install (Ray and pyarrow: ~250 MB).
            "ray", "pyarrow",
            # No network, so no TLS (OpenSSL's libcrypto and libssl); hashlib falls back to built-ins.
            "ssl", "_ssl", "_hashlib", "http", "urllib.request", "xmlrpc", "ftplib", "smtplib"]
#: Qt plugins kept (folders, or single files of a folder); the rest go. Image files are read by
#: OpenCV, so Qt needs only SVG (the icons) beside its built-in PNG. The GTK theme plugin needs
#: GTK, which the bundle does not carry; the portal theme gives native file dialogs instead.
QT_PLUGINS = {"platforms/libqxcb.so", "platforms/libqwayland.so", "platforms/libqoffscreen.so",
              "platforms/libqminimal.so", "platformthemes/libqxdgdesktopportal.so", "platforminputcontexts",
              "xcbglintegrations", "iconengines", "imageformats/libqsvg.so", "wayland-shell-integration",
              "wayland-decoration-client", "wayland-graphics-integration-client"}
INSTALL_SH = """#!/bin/sh
# Adds Protoglyph to your applications menu (for you only; nothing outside your home folder).
# Run it again with --uninstall to take the menu entry away. The app itself stays in this folder.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps"
if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$apps/protoglyph.desktop" "$icons/protoglyph.svg"
    echo "Protoglyph's menu entry is removed."
    exit 0
fi
mkdir -p "$apps" "$icons"
cp "$here/protoglyph.svg" "$icons/protoglyph.svg"
# Exec takes the path in double quotes (it may hold spaces); sed gets it with its own
# special characters (\\ & |) escaped.
exec_path=$(printf '"%s/protoglyph"' "$here" | sed 's/[\\\\&|]/\\\\&/g')
sed "s|@EXEC@|$exec_path|" "$here/protoglyph.desktop.in" > "$apps/protoglyph.desktop"
echo "Protoglyph is in your applications menu. Or run: $here/protoglyph"
"""


def run_pyinstaller(work: Path) -> Path:
    """PyInstaller's one-folder, windowed bundle; returns its folder."""
    import PyInstaller.__main__
    import PySide6

    launcher = work / "protoglyph_launcher.py"
    launcher.write_text("import sys\nfrom protoglyph.cli import main\n\nif __name__ == '__main__':\n"
                        "    sys.exit(main())\n", encoding="utf-8")
    unused_qt = sorted(p.stem.split(".")[0] for p in Path(PySide6.__file__).parent.glob("Qt*.abi3.so")
                       if p.stem.split(".")[0] not in QT_MODULES)
    args = [str(launcher), "--name", NAME, "--onedir", "--windowed", "--noconfirm", "--log-level", "WARN",
            "--distpath", str(work / "dist"), "--workpath", str(work / "build"), "--specpath", str(work),
            "--collect-data", "protoglyph", "--contents-directory", "_internal"]
    for module in EXCLUDED + [f"PySide6.{m}" for m in unused_qt]:
        args += ["--exclude-module", module]
    PyInstaller.__main__.run(args)
    return work / "dist" / NAME


def prune(bundle: Path) -> int:
    """Drop what the app never loads (Qt translations and unused plugins); returns bytes freed."""
    freed = 0
    qt = next(bundle.rglob("PySide6/Qt"), None)
    if qt is None:
        return 0
    doomed = [qt / "translations"]
    plugins = qt / "plugins"
    if plugins.is_dir():
        for kind in plugins.iterdir():
            if kind.name in QT_PLUGINS:
                continue
            if any(keep.startswith(f"{kind.name}/") for keep in QT_PLUGINS):
                doomed += [f for f in kind.iterdir() if f"{kind.name}/{f.name}" not in QT_PLUGINS]
            else:
                doomed.append(kind)
    for path in doomed:
        if path.is_dir():
            freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            shutil.rmtree(path)
        elif path.exists():
            freed += path.stat().st_size
            path.unlink()
    return freed + drop_unreferenced_libraries(bundle)


def drop_unreferenced_libraries(bundle: Path) -> int:
    """Remove plain shared libraries nothing in the bundle links to any more (those PyInstaller
    collected for plugins that were pruned). Roots are what gets loaded by name at run time:
    the executable, libpython (opened by the bootloader), Python extension modules, Qt plugins and
    onnxruntime's own folder."""
    if platform.system() != "Linux" or shutil.which("readelf") is None:
        return 0
    internal = bundle / "_internal"
    files = [f for f in internal.rglob("*.so*") if f.is_file() and not f.is_symlink()]

    def is_root(f: Path) -> bool:
        return (".cpython-" in f.name or f.name.endswith(".abi3.so") or "plugins" in f.parts or "libpython" in f.name
                or "onnxruntime" in f.parts)

    by_name: dict[str, list[Path]] = {}
    for f in internal.rglob("*.so*"):
        by_name.setdefault(f.name, []).append(f)
    reached: set[Path] = set()
    queue = [executable(bundle), *[f for f in files if is_root(f)]]
    while queue:
        current = queue.pop()
        if current in reached:
            continue
        reached.add(current)
        for name in needed_libraries(current):
            queue += [p.resolve() if p.is_symlink() else p for p in by_name.get(name, [])]
    freed = 0
    for f in files:
        if f not in reached and f.resolve() not in reached:
            freed += f.stat().st_size
            f.unlink()
    return freed


#: OpenCV libraries the app never calls into: video (FFmpeg), AVIF images, and OpenCV's own
#: OpenBLAS (used by its matrix algebra; the app's BLAS work is numpy's). cv2 links to them, so
#: they are replaced by small stand-ins that export the same symbols and stop with a clear
#: message if one is ever called. Their own dependencies (AV1/VP9 codecs, OpenSSL, gfortran)
#: then go too: about 80 MB.
OPENCV_STUBBED = ("libopenblasp", "libavcodec", "libavformat", "libavutil", "libswscale", "libavif")
#: Stand-ins that return 0 (NULL) instead of stopping: asked at start-up, harmless to answer.
#: OpenCV makes (and destroys) an AVIF encoder whenever it looks for an image encoder, so every
#: libavif stand-in answers NULL; an AVIF file itself is never handed to OpenCV (see imagefile).
HARMLESS = re.compile(r"num_threads|get_config|get_parallel|get_corename|version|^avif")
STUB_C = """#include <stdio.h>
#include <stdlib.h>
static void missing(const char *name) {{
    fprintf(stderr, "Protoglyph: %s (from OpenCV's {lib}) is not in this installer: video, AVIF and "
                    "OpenCV's matrix algebra were left out as the app does not use them.\\n", name);
    abort();
}}
"""


def _dynamic_symbols(lib: Path) -> list[tuple[str, str, int, str, bool]]:
    """``(name, type, size, version, defined)`` of a library's dynamic symbols."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(lib)], capture_output=True, text=True).stdout
    symbols = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 8 or not parts[0].rstrip(":").isdigit():
            continue
        size = int(parts[2], 16) if parts[2].startswith("0x") else int(parts[2])
        name, _, version = parts[7].partition("@")
        symbols.append((name, parts[3], size, version.lstrip("@").split(" ")[0], parts[6] != "UND"))
    return symbols


def stub_unused_opencv_libraries(bundle: Path, work: Path) -> int:
    """Replace :data:`OPENCV_STUBBED` with stand-ins (needs a C compiler); returns bytes freed."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    libs = next((bundle / "_internal").glob("opencv_python_headless.libs"), None)
    if platform.system() != "Linux" or compiler is None or libs is None:
        print("note: no C compiler (or no OpenCV libraries); OpenCV's unused libraries stay in the bundle")
        return 0
    elf = [f for f in (bundle / "_internal").rglob("*.so*") if f.is_file() and not f.is_symlink()]
    freed = 0
    for prefix in OPENCV_STUBBED:
        target = next(libs.glob(f"{prefix}*.so*"), None)
        if target is None:
            continue
        dynamic = subprocess.run(["readelf", "-d", "-W", str(target)], capture_output=True, text=True).stdout
        soname = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", dynamic)
        users = [f for f in elf if f != target and target.name in needed_libraries(f)]
        wanted = {n for u in users for n, _, _, _, defined in _dynamic_symbols(u) if not defined}
        provided = {n: (kind, size, ver) for n, kind, size, ver, defined in _dynamic_symbols(target) if defined}
        code = [STUB_C.format(lib=prefix)]
        versions: dict[str, list[str]] = {}
        for name in sorted(wanted & provided.keys()):
            kind, size, ver = provided[name]
            if kind == "OBJECT":
                code.append(f"char {name}[{max(size, 1)}];")
            elif HARMLESS.search(name):
                code.append(f"long {name}(void) {{ return 0; }}")
            else:
                code.append(f'void {name}(void) {{ missing("{name}"); }}')
            versions.setdefault(ver, []).append(name)
        source = work / f"{prefix}_stub.c"
        source.write_text("\n".join(code) + "\n", encoding="utf-8")
        command = [compiler, "-shared", "-fPIC", "-O1", "-o", str(work / target.name), str(source)]
        if soname:
            command.append(f"-Wl,-soname,{soname.group(1)}")
        named = {v: names for v, names in versions.items() if v}
        if named:
            script = work / f"{prefix}.map"
            script.write_text("".join(f"{v} {{ global: {'; '.join(n)}; }};\n" for v, n in named.items()),
                              encoding="utf-8")
            command.append(f"-Wl,--version-script={script}")
        subprocess.run(command, check=True, capture_output=True)
        freed += target.stat().st_size - (work / target.name).stat().st_size
        shutil.copy(work / target.name, target)
    return freed + drop_unreferenced_libraries(bundle)


def strip_debug_info(bundle: Path) -> int:
    """``strip --strip-debug`` on the shared libraries that carry debug sections, and only those
    (stripping everything corrupts numpy's OpenBLAS); returns bytes freed."""
    if platform.system() != "Linux" or shutil.which("strip") is None or shutil.which("readelf") is None:
        return 0
    freed = 0
    for lib in bundle.rglob("*.so*"):
        if not lib.is_file() or lib.is_symlink():
            continue
        sections = subprocess.run(["readelf", "-S", "-W", str(lib)], capture_output=True, text=True).stdout
        if ".debug_" not in sections:
            continue
        before = lib.stat().st_size
        if subprocess.run(["strip", "--strip-debug", str(lib)], capture_output=True).returncode == 0:
            freed += before - lib.stat().st_size
    return freed


def add_resources(bundle: Path) -> None:
    icon = ROOT / "desktop" / "protoglyph" / "assets" / "protoglyph.svg"
    shutil.copy(icon, bundle / "protoglyph.svg")
    (bundle / "protoglyph.desktop.in").write_text(DESKTOP_ENTRY.format(exec="@EXEC@"), encoding="utf-8")
    script = bundle / "install.sh"
    script.write_text(INSTALL_SH, encoding="utf-8")
    script.chmod(0o755)
