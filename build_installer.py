"""Build Protoglyph's offline installer: a PyInstaller one-folder bundle, then the platform's packages.

    python build_installer.py [--out dist] [--fast] [--no-deb] [--no-check] [--install-check]

On Linux it writes ``dist/protoglyph-<version>-linux-<arch>.tar.xz`` (unpack anywhere, run
``protoglyph``; ``install.sh`` adds a menu entry for the current user) and
``dist/protoglyph_<version>_<arch>.deb`` (the bundle under ``/opt/protoglyph``, ``protoglyph`` on
the ``PATH``, a menu entry and an icon). On Windows and macOS it writes a zip of the bundle
(PyInstaller cannot cross-build: run this script on each platform). Everything the app needs
is inside: Python, Qt, onnxruntime, OpenCV, the encoder and the starter project (made by the
app on first start); nothing is ever downloaded.

Then it checks what it built: the bundled app's ``--self-test`` with the network cut off
(``unshare -n``, as root, where available), traced for network calls (``strace``, where
available), and with ``HOME`` and ``TMPDIR`` pointing at empty folders to see what it writes;
the window's start time (offscreen); and the sizes. ``--install-check`` (root, Debian) also
installs the ``.deb`` with ``dpkg -i``, runs it, removes it and checks nothing is left.

Build on the oldest Linux you support: the bundle needs the C library it was built against
(the ``.deb`` states the version it found) or newer.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
NAME = "protoglyph"
#: Qt modules the app imports; every other PySide6 module stays out of the bundle.
QT_MODULES = {"QtCore", "QtGui", "QtWidgets", "QtSvg"}
#: Python packages the app never imports at run time (training, tests, other Qt bindings).
EXCLUDED = ["torch", "torchvision", "onnx", "tkinter", "PyQt5", "PyQt6", "PySide2", "matplotlib", "IPython",
            "pytest", "pytestqt", "PIL", "scipy", "pandas", "models", "setuptools", "pip", "mypy", "ruff",
            # No network, so no TLS (OpenSSL's libcrypto and libssl); hashlib falls back to built-ins.
            "ssl", "_ssl", "_hashlib", "http", "urllib.request", "xmlrpc", "ftplib", "smtplib"]
#: Qt plugins kept (folders, or single files of a folder); the rest go. Image files are read by
#: OpenCV, so Qt needs only SVG (the icons) beside its built-in PNG. The GTK theme plugin needs
#: GTK, which the bundle does not carry; the portal theme gives native file dialogs instead.
QT_PLUGINS = {"platforms/libqxcb.so", "platforms/libqwayland.so", "platforms/libqoffscreen.so",
              "platforms/libqminimal.so", "platformthemes/libqxdgdesktopportal.so", "platforminputcontexts",
              "xcbglintegrations", "iconengines", "imageformats/libqsvg.so", "wayland-shell-integration",
              "wayland-decoration-client", "wayland-graphics-integration-client"}
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
sed "s|@EXEC@|$here/protoglyph|" "$here/protoglyph.desktop.in" > "$apps/protoglyph.desktop"
echo "Protoglyph is in your applications menu. Or run: $here/protoglyph"
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


def check_tools(make_deb: bool) -> None:
    try:
        import PyInstaller  # noqa: F401
    except ImportError as exc:
        raise BuildError("PyInstaller is not installed. Install it with: pip install pyinstaller "
                         "(or pip install -e '.[test]')") from exc
    if make_deb and shutil.which("dpkg-deb") is None:
        raise BuildError("dpkg-deb is not installed (it comes with Debian's dpkg package); install it, or pass "
                         "--no-deb to build only the .tar.xz")


# -- the bundle ---------------------------------------------------------------------------
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


def _needed(lib: Path) -> list[str]:
    dynamic = subprocess.run(["readelf", "-d", "-W", str(lib)], capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)


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
    queue = [bundle / NAME, *[f for f in files if is_root(f)]]
    while queue:
        current = queue.pop()
        if current in reached:
            continue
        reached.add(current)
        for name in _needed(current):
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
        users = [f for f in elf if f != target and target.name in _needed(f)]
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


def folder_size(path: Path) -> int:
    return sum(f.lstat().st_size for f in path.rglob("*") if f.is_file() or f.is_symlink())


# -- packages -----------------------------------------------------------------------------
def make_tar_xz(bundle: Path, out: Path, fast: bool) -> Path:
    """``protoglyph-<version>/`` in a .tar.xz (xz with all cores where the tool exists)."""
    top = f"{NAME}-{version()}"
    target = out / f"{top}-linux-{platform.machine()}.tar.xz"
    level = "-1" if fast else "-9"
    if shutil.which("xz"):
        tar = out / f"{top}.tar"
        with tarfile.open(tar, "w") as archive:
            archive.add(bundle, arcname=top)
        subprocess.run(["xz", "-T0", level, "-f", str(tar)], check=True)
        Path(f"{tar}.xz").replace(target)
    else:
        with tarfile.open(target, "w:xz", preset=int(level[1:])) as archive:
            archive.add(bundle, arcname=top)
    return target


def needed_glibc(bundle: Path) -> str:
    """The newest ``GLIBC_x.y`` symbol version any file of the bundle needs."""
    found = {(2, 17)}
    for f in bundle.rglob("*"):
        if f.is_file() and not f.is_symlink() and (f.suffix == "" or ".so" in f.name):
            text = subprocess.run(["readelf", "-V", "-W", str(f)], capture_output=True, text=True).stdout
            found |= {(int(a), int(b)) for a, b in re.findall(r"GLIBC_(\d+)\.(\d+)", text)}
    major, minor = max(found)
    return f"{major}.{minor}"


def system_dependencies(bundle: Path) -> list[str]:
    """Debian packages providing the libraries the bundle links to but does not carry."""
    inside = {f.name for f in bundle.rglob("*.so*")}
    wanted: set[str] = set()
    for f in bundle.rglob("*.so*"):
        if f.is_file() and not f.is_symlink():
            dynamic = subprocess.run(["readelf", "-d", "-W", str(f)], capture_output=True, text=True).stdout
            wanted |= set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    packages: set[str] = set()
    for lib in sorted(wanted - inside):
        owner = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True)
        if owner.returncode == 0:
            package = owner.stdout.split(":")[0].strip()
            if package not in ("libc6", "libc6-dev"):
                packages.add(package)
    return sorted(packages)


def make_deb(bundle: Path, out: Path, fast: bool) -> Path:
    """The .deb: /opt/protoglyph, /usr/bin/protoglyph, a menu entry and an icon; no conffiles, so
    ``dpkg -r`` removes everything."""
    stage = Path(tempfile.mkdtemp(prefix="protoglyph-deb-", dir=out))
    try:
        shutil.copytree(bundle, stage / "opt" / NAME, symlinks=True)
        (stage / "usr" / "bin").mkdir(parents=True)
        os.symlink(f"/opt/{NAME}/{NAME}", stage / "usr" / "bin" / NAME)
        apps = stage / "usr" / "share" / "applications"
        apps.mkdir(parents=True)
        (apps / "protoglyph.desktop").write_text(DESKTOP_ENTRY.format(exec=f"/usr/bin/{NAME}"), encoding="utf-8")
        icons = stage / "usr" / "share" / "icons" / "hicolor" / "scalable" / "apps"
        icons.mkdir(parents=True)
        shutil.copy(bundle / "protoglyph.svg", icons / "protoglyph.svg")
        for leftover in ("install.sh", "protoglyph.desktop.in", "protoglyph.svg"):
            (stage / "opt" / NAME / leftover).unlink()
        depends = ", ".join([f"libc6 (>= {needed_glibc(bundle)})", *system_dependencies(bundle)])
        control = stage / "DEBIAN"
        control.mkdir()
        (control / "control").write_text(
            f"Package: {NAME}\nVersion: {version()}\nArchitecture: {arch()}\n"
            f"Maintainer: Protoglyph developers <protoglyph@localhost>\nSection: graphics\nPriority: optional\n"
            f"Installed-Size: {folder_size(stage) // 1024}\nDepends: {depends}\n"
            f"Recommends: fonts-noto-core, fonts-noto-cjk\n"
            f"Description: few-shot labeling of characters and symbols, offline\n"
            f" Draw or load a few examples per class; a meta-trained encoder classifies new\n"
            f" drawings live and labels whole folders of glyph images. Runs without network.\n",
            encoding="utf-8")
        target = out / f"{NAME}_{version()}_{arch()}.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", f"-z{1 if fast else 9}", "--build", str(stage),
                        str(target)], check=True, capture_output=True)
        return target
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def make_zip(bundle: Path, out: Path) -> Path:
    target = out / f"{NAME}-{version()}-{platform.system().lower()}-{platform.machine().lower()}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in sorted(bundle.rglob("*")):
            archive.write(f, Path(f"{NAME}-{version()}") / f.relative_to(bundle))
    return target


# -- checks -------------------------------------------------------------------------------
def offline_prefix() -> list[str]:
    """``unshare -n`` (a network namespace with no network) where we may use it."""
    if platform.system() == "Linux" and shutil.which("unshare") and os.geteuid() == 0:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-n"]
    return []


def network_calls(trace: Path) -> list[str]:
    """Lines of an ``strace -e trace=network`` log that open or use an internet socket."""
    lines = trace.read_text(errors="replace").splitlines() if trace.exists() else []
    return [line for line in lines if re.search(r"AF_INET6?|sin6?_addr|connect\(.*(inet|INET)", line)]


def self_test(bundle: Path) -> dict[str, object]:
    """Run ``--self-test`` offline, traced, with empty HOME and TMPDIR; report what happened."""
    with tempfile.TemporaryDirectory() as scratch:
        home, tmp = Path(scratch, "home"), Path(scratch, "tmp")
        home.mkdir()
        tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTOGLYPH_", "ORT_", "QT_", "XDG_"))}
        env.update(HOME=str(home), TMPDIR=str(tmp), QT_QPA_PLATFORM="offscreen")
        prefix = offline_prefix()
        trace = Path(scratch, "trace.log")
        tracer = ["strace", "-f", "-qq", "-e", "trace=network", "-o", str(trace)] if shutil.which("strace") else []
        start = time.perf_counter()
        done = subprocess.run([*prefix, *tracer, str(bundle / NAME), "--self-test"], env=env, capture_output=True,
                              text=True, timeout=300)
        seconds = time.perf_counter() - start
        starts = []
        window_trace = Path(scratch, "window-trace.log")
        for attempt in range(5):
            t0 = time.perf_counter()
            traced = [*tracer[:-1], str(window_trace)] if tracer and attempt == 0 else []  # the first, traced
            shown = subprocess.run([*prefix, *traced, str(bundle / NAME), "--exit-when-ready"], env=env,
                                   capture_output=True, text=True, timeout=120)
            starts.append(time.perf_counter() - t0)
            if shown.returncode != 0 or not shown.stdout.startswith("ready"):
                raise BuildError(f"the bundled window did not start:\n{shown.stderr[-2000:]}")
        labeled = label_check(bundle, Path(scratch), [*prefix], env)
        written = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
        leftovers = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    if done.returncode != 0:
        raise BuildError(f"the bundled self-test failed (exit {done.returncode}):\n{done.stdout}\n"
                         f"{done.stderr[-3000:]}")
    own = (".local/share/Protoglyph/", ".config/Protoglyph/")
    return {"seconds": seconds, "output": done.stdout.strip().splitlines()[-1], "offline": bool(prefix),
            "traced": bool(tracer), "network": network_calls(trace) + network_calls(window_trace) if tracer else None,
            "start_s": statistics.median(starts[1:]), "label": labeled,
            "written_elsewhere": [w for w in written if not w.startswith(own)] + [f"$TMPDIR/{x}" for x in leftovers],
            "written": written}


def label_check(bundle: Path, scratch: Path, prefix: list[str], env: dict[str, str]) -> str:
    """``protoglyph label`` from the bundle on 1,200 drawings: the frozen app's worker processes."""
    import cv2
    import numpy as np

    from protoglyph.core.batch import IN_PROCESS_BELOW
    from protoglyph.core.shapes import draw_shape

    rng = np.random.default_rng(0)
    examples, folder = scratch / "examples", scratch / "folder"
    for shape in ("ring", "cross"):
        (examples / shape).mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(examples / shape / f"{k}.png"), draw_shape(shape, rng, size=105, pen=4))
    folder.mkdir()
    count = IN_PROCESS_BELOW + 176
    for i in range(count):
        cv2.imwrite(str(folder / f"{i:05d}.png"), draw_shape(("ring", "cross")[i % 2], rng, size=105, pen=4))
    out = scratch / "labels.csv"
    start = time.perf_counter()
    done = subprocess.run([*prefix, str(bundle / NAME), "label", str(folder), "--examples", str(examples),
                           "--out", str(out), "--jobs", "2", "--quiet"], env=env, capture_output=True, text=True,
                          timeout=300)
    seconds = time.perf_counter() - start
    rows = out.read_text(encoding="utf-8").splitlines()[1:] if out.exists() else []
    right = sum(1 for i, row in enumerate(rows) if row.split(",")[1] == ("ring", "cross")[i % 2])
    if done.returncode != 0 or len(rows) != count or right < 0.99 * count:
        raise BuildError(f"the bundled 'protoglyph label' failed (exit {done.returncode}, {len(rows)} rows, "
                         f"{right} right):\n{done.stderr[-2000:]}")
    return f"{count:,} drawings labeled in {seconds:.1f} s with 2 worker processes, {right / count:.1%} right"


def install_check(deb: Path) -> list[str]:
    """Install the .deb for real, run it, remove it; returns what was left behind (nothing, we hope)."""
    files = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = [line.split(None, 5)[5].split(" -> ")[0].lstrip(".") for line in files.splitlines()]
    subprocess.run(["dpkg", "-i", str(deb)], check=True, capture_output=True)
    try:
        subprocess.run([*offline_prefix(), f"/usr/bin/{NAME}", "--self-test"], check=True, capture_output=True,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, timeout=300)
    finally:
        subprocess.run(["dpkg", "-r", NAME], check=True, capture_output=True)
    status = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}", NAME], capture_output=True, text=True)
    left = [p for p in paths if p not in ("/", "") and not p.endswith("/") and os.path.lexists(p)]
    if status.returncode == 0 and status.stdout.strip() not in ("", "not-installed"):
        left.append(f"dpkg status: {status.stdout.strip()}")
    left += [p for p in (f"/opt/{NAME}",) if os.path.exists(p)]
    return left


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="Needs PyInstaller (pip install pyinstaller) and, for the .deb, dpkg-deb.")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="where the packages go (default: dist/)")
    parser.add_argument("--work", type=Path, help="build folder (default: a fresh one under build/)")
    parser.add_argument("--fast", action="store_true", help="light compression (for tests; bigger files)")
    parser.add_argument("--no-deb", action="store_true", help="Linux: build only the .tar.xz")
    parser.add_argument("--no-check", action="store_true", help="skip the self-test of the bundle")
    parser.add_argument("--full-opencv", action="store_true",
                        help="keep OpenCV's video, AVIF and BLAS libraries (80 MB the app does not use)")
    parser.add_argument("--install-check", action="store_true",
                        help="as root on Debian/Ubuntu: dpkg -i the .deb, run it, dpkg -r it, check nothing is left")
    args = parser.parse_args(argv)
    linux = platform.system() == "Linux"
    want_deb = linux and not args.no_deb
    try:
        check_tools(want_deb)
        args.out.mkdir(parents=True, exist_ok=True)
        work = args.work or ROOT / "build" / "installer"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        t0 = time.perf_counter()
        bundle = run_pyinstaller(work)
        pruned = prune(bundle) + (0 if args.full_opencv else stub_unused_opencv_libraries(bundle, work))
        stripped = strip_debug_info(bundle)
        add_resources(bundle)
        print(f"bundle: {bundle} ({folder_size(bundle) / 1e6:.0f} MB installed; pruned {pruned / 1e6:.0f} MB, "
              f"stripped {stripped / 1e6:.0f} MB of debug info; {time.perf_counter() - t0:.0f} s)")
        if not args.no_check:
            result = self_test(bundle)
            print(f"self-test: {result['output']} in {result['seconds']:.1f} s "
                  f"({'network cut off with unshare -n' if result['offline'] else 'network NOT cut off: not root'})")
            if result["network"] is not None:
                print(f"network calls traced (self-test and a window start): "
                      f"{len(result['network'])}")  # type: ignore[arg-type]
            print(f"window start (offscreen, warm, median of 4): {result['start_s']:.2f} s")
            print(f"protoglyph label: {result['label']}")
            print(f"files written outside the app's own folders: {result['written_elsewhere'] or 'none'}")
            if result["network"] or result["written_elsewhere"]:
                raise BuildError("the bundle used the network or wrote outside its own folders (see above)")
        packages = []
        if linux:
            packages.append(make_tar_xz(bundle, args.out, args.fast))
            if want_deb:
                packages.append(make_deb(bundle, args.out, args.fast))
        else:
            packages.append(make_zip(bundle, args.out))
        for p in packages:
            print(f"package: {p} ({p.stat().st_size / 1e6:.1f} MB)")
        if args.install_check and want_deb:
            left = install_check(packages[-1])
            print(f".deb install → self-test → dpkg -r: {'clean' if not left else f'LEFT BEHIND: {left}'}")
            if left:
                return 1
    except BuildError as exc:
        print(f"build_installer: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"build_installer: {' '.join(map(str, exc.cmd))} failed (exit {exc.returncode})\n"
              f"{(exc.stderr or b'')[-2000:]!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
