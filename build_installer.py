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
import shutil
import subprocess
import sys
import time
from pathlib import Path

from installer.bundle import add_resources, prune, run_pyinstaller, strip_debug_info, stub_unused_opencv_libraries
from installer.checks import install_check, offline_prefix, self_test
from installer.common import ROOT, BuildError, arch, folder_size, version
from installer.packages import make_deb, make_dmg, make_tar_xz, make_zip

__all__ = ["BuildError", "arch", "check_tools", "main", "offline_prefix", "version"]


def check_tools(make_deb: bool) -> None:
    try:
        import PyInstaller  # noqa: F401
    except ImportError as exc:
        raise BuildError("PyInstaller is not installed. Install it with: pip install pyinstaller "
                         "(or pip install -e '.[test]')") from exc
    if make_deb and shutil.which("dpkg-deb") is None:
        raise BuildError("dpkg-deb is not installed (it comes with Debian's dpkg package); install it, or pass "
                         "--no-deb to build only the .tar.xz")
    if platform.system() == "Linux" and shutil.which("readelf") is None:
        raise BuildError("readelf is not installed (it comes with binutils: apt-get install binutils); it is "
                         "needed to prune the bundle and to find the .deb's dependencies")


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
        os.umask(0o022)  # packaged files must be readable by every user, whatever the caller's umask
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
            dmg = make_dmg(bundle, args.out)
            if dmg is not None:
                packages.append(dmg)
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
