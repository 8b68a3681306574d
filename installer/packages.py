"""The packages: .tar.xz and .deb on Linux, a zip (and a .dmg on macOS) elsewhere."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path

from installer.common import DESKTOP_ENTRY, NAME, arch, folder_size, needed_libraries, version


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
            wanted |= set(needed_libraries(f))
    packages: set[str] = set()
    for lib in sorted(wanted - inside):
        owner = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True)
        if owner.returncode == 0:
            package = owner.stdout.split(":")[0].strip()
            if package not in ("libc6", "libc6-dev"):
                packages.add(package)
        else:
            print(f"warning: {lib} (needed by the bundle) is not installed here, so no package provides it in the "
                  ".deb's Depends; install it on the build machine and build again")
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
    """Windows and macOS: the one-folder bundle in a zip (unpack anywhere, run ``protoglyph``)."""
    target = out / f"{NAME}-{version()}-{platform.system().lower()}-{platform.machine().lower()}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for f in sorted(bundle.rglob("*")):
            archive.write(f, Path(f"{NAME}-{version()}") / f.relative_to(bundle))
    return target


def make_dmg(bundle: Path, out: Path) -> Path | None:
    """macOS, where ``hdiutil`` exists: the ``.app`` PyInstaller made beside the folder, in a .dmg.
    (Not built or tried on this project's Linux machines; see the README.)"""
    app = bundle.parent / f"{NAME}.app"
    if platform.system() != "Darwin" or not app.is_dir() or shutil.which("hdiutil") is None:
        return None
    target = out / f"{NAME}-{version()}-macos-{platform.machine().lower()}.dmg"
    subprocess.run(["hdiutil", "create", "-volname", "Protoglyph", "-srcfolder", str(app), "-ov", "-format", "UDZO",
                    str(target)], check=True, capture_output=True)
    return target
