"""The offline installer: build it (fast compression), check the packages and run what they hold.

``build_installer.main`` itself runs the bundle's ``--self-test`` offline (``unshare -n`` as
root), starts the bundled window offscreen, labels 1,200 drawings with the bundled command and
its worker processes, and fails if anything used the network or wrote outside its folders.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import build_installer
from protoglyph.cli import platform_check

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform != "linux", reason="the .deb and .tar.xz are built on Linux")]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pytest.importorskip("PyInstaller", reason="needs PyInstaller (the test extra)")
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb")
    out = tmp_path_factory.mktemp("dist")
    code = build_installer.main(["--fast", "--out", str(out), "--work", str(tmp_path_factory.mktemp("work"))])
    assert code == 0, "build_installer failed (its output is above)"
    yield out


def test_the_deb_installs_under_opt_with_a_launcher_a_menu_entry_and_an_icon(built: Path, tmp_path: Path) -> None:
    deb = built / f"protoglyph_{build_installer.version()}_{build_installer.arch()}.deb"
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout
    assert "Package: protoglyph" in control and "Depends: libc6 (>= 2." in control
    assert "Recommends: fonts-noto-core, fonts-noto-cjk" in control
    assert subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True).returncode == 0
    assert os.readlink(root / "usr/bin/protoglyph") == "/opt/protoglyph/protoglyph"
    app = root / "opt/protoglyph/protoglyph"
    assert app.is_file() and os.access(app, os.X_OK)
    assert (root / "opt/protoglyph/_internal/protoglyph/assets/encoder.onnx").stat().st_size > 100_000
    entry = (root / "usr/share/applications/protoglyph.desktop").read_text(encoding="utf-8")
    assert "Exec=/usr/bin/protoglyph %F" in entry and "Icon=protoglyph" in entry
    assert (root / "usr/share/icons/hicolor/scalable/apps/protoglyph.svg").read_text().lstrip().startswith("<")
    conffiles = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True)
    assert conffiles.returncode != 0  # none, so ``dpkg -r`` leaves nothing behind
    # The unpacked copy runs on its own, offline.
    done = subprocess.run([*build_installer.offline_prefix(), str(app), "--self-test"], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0 and "self-test passed" in done.stdout, done.stderr


def test_the_tar_xz_unpacks_anywhere_and_install_sh_adds_a_menu_entry(built: Path, tmp_path: Path) -> None:
    archive = next(built.glob("protoglyph-*-linux-*.tar.xz"))
    where = tmp_path / "my apps & co"  # spaces and a sed special character
    with tarfile.open(archive) as tar:
        tar.extractall(where, filter="tar")
    top = where / f"protoglyph-{build_installer.version()}"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_DATA_HOME", None)
    subprocess.run(["sh", str(top / "install.sh")], check=True, env=env, capture_output=True)
    entry = home / ".local/share/applications/protoglyph.desktop"
    assert f'Exec="{top}/protoglyph" %F' in entry.read_text(encoding="utf-8")
    assert (home / ".local/share/icons/hicolor/scalable/apps/protoglyph.svg").exists()
    subprocess.run(["sh", str(top / "install.sh"), "--uninstall"], check=True, env=env, capture_output=True)
    assert not entry.exists()


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb to show the window on an X server")
def test_the_bundled_window_shows_on_an_x_server(built: Path, tmp_path: Path) -> None:
    archive = next(built.glob("protoglyph-*-linux-*.tar.xz"))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path, filter="tar")
    app = tmp_path / f"protoglyph-{build_installer.version()}" / "protoglyph"
    display = f":{90 + os.getpid() % 100}"
    server = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "HOME": str(tmp_path)}
        done = subprocess.run([str(app), "--exit-when-ready"], capture_output=True, text=True, timeout=120, env=env)
    finally:
        server.terminate()
        server.wait()
    # PyInstaller bundles the X11 libraries the build machine has; where it lacks some (a fresh
    # machine without the README's list), the bundle must say which, not Qt's misleading line
    verdict = platform_check.check_xcb({"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"})
    if verdict is not None and verdict.missing:
        assert done.returncode == 2, done.stderr[-2000:]
        assert all(name in done.stderr for name in verdict.missing) and "apt-get install" in done.stderr
        assert "Could not load the Qt platform plugin" not in done.stderr
        return
    assert done.returncode == 0 and done.stdout.startswith("ready"), done.stderr[-2000:]


def test_missing_tools_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PyInstaller", None)  # as if not installed
    with pytest.raises(build_installer.BuildError, match="pip install pyinstaller"):
        build_installer.check_tools(make_deb=False)
    monkeypatch.delitem(sys.modules, "PyInstaller")
    pytest.importorskip("PyInstaller")
    monkeypatch.setattr(build_installer.shutil, "which", lambda tool: None)
    with pytest.raises(build_installer.BuildError, match=r"dpkg-deb is not installed.*--no-deb"):
        build_installer.check_tools(make_deb=True)


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_installer.main(["--help"])
    assert exit_.value.code == 0 and "--no-deb" in capsys.readouterr().out
