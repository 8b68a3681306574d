"""Checking what was built: offline self-test, window start, labeling with workers, files
written, and a real install and removal of the .deb."""

from __future__ import annotations

import os
import platform
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from installer.common import NAME, BuildError, executable


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
        done = subprocess.run([*prefix, *tracer, str(executable(bundle)), "--self-test"], env=env, capture_output=True,
                              text=True, timeout=300)
        seconds = time.perf_counter() - start
        starts = []
        window_trace = Path(scratch, "window-trace.log")
        for attempt in range(5):
            t0 = time.perf_counter()
            traced = [*tracer[:-1], str(window_trace)] if tracer and attempt == 0 else []  # the first, traced
            shown = subprocess.run([*prefix, *traced, str(executable(bundle)), "--exit-when-ready"], env=env,
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

    from protoglyph.core.labeling.embedding import IN_PROCESS_BELOW
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
    done = subprocess.run([*prefix, str(executable(bundle)), "label", str(folder), "--examples", str(examples),
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
