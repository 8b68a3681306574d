"""``protoglyph label``: label a folder of images from the command line, with no window.

    protoglyph label FOLDER (--project P | --examples DIR) --out FILE.csv [--threshold T] [--jobs N]

It runs the same core as the app: the folder is listed, new and changed files are embedded
in worker processes, and each image gets the class of the nearest prototype, or ``unknown``
when it is farther from every prototype than the threshold. With ``--project`` the results
are kept in the project, so a second run (after Ctrl+C, or on a folder that grew) only does
new and changed files, and the app shows the same results for review.

Exit status: 0 when the CSV was written; 1 when no image in the folder could be labeled; 2
when nothing could be done (no such folder, no classes with examples, an unusable model or
project file); 130 when interrupted, 143 when stopped by SIGTERM. Worker processes end with the
command however it ends, SIGKILL included.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from protoglyph.core.batch import BatchError, FileEntry, default_jobs, embed_files, list_folder
from protoglyph.core.batch_store import BatchStore, BatchTable, read_batch, usable_threshold
from protoglyph.core.classifier import FewShotClassifier
from protoglyph.core.encoder import EncoderSession, ModelError
from protoglyph.core.export import ExportError, write_csv
from protoglyph.core.imagefile import ImageReadError, read_image
from protoglyph.core.importing import plan_import
from protoglyph.core.project import BUSY_LIMIT_S, Project, ProjectError
from protoglyph.core.review import BatchResults, result_rows
from protoglyph.core.threshold import default_threshold
from protoglyph.core.workspace import Workspace


class Failure(Exception):
    """Nothing could be done: the message says why; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="protoglyph label", description="Label every image below FOLDER with the "
                                "classes of a project, or of a folder of examples, and write a CSV.")
    p.add_argument("folder", type=Path, metavar="FOLDER", help="folder of images (read recursively, never modified)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--project", type=Path, metavar="P", help="a .protoglyph project: its classes and examples; "
                        "results are stored in it, so a second run resumes")
    source.add_argument("--examples", type=Path, metavar="DIR", help="a folder per class: each subfolder's name is "
                        "a class, its images the examples")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.csv", help="where to write the results")
    p.add_argument("--threshold", type=float, metavar="T", help="squared distance beyond which an image is "
                   "'unknown' (default: the project's setting, else one derived from the examples)")
    p.add_argument("--jobs", type=int, default=default_jobs(), metavar="N",
                   help="worker processes (default: one per core, here %(default)s)")
    p.add_argument("--model", type=Path, help="encoder .onnx file (default: the shipped one)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def examples_classifier(folder: Path, session: EncoderSession
                        ) -> tuple[FewShotClassifier, dict[int, str], dict[int, np.ndarray]]:
    """Classes from a folder-per-class tree (``--examples``)."""
    if not folder.is_dir():
        raise Failure(f"the examples folder {folder} does not exist")
    plan = plan_import([folder])
    for path, problem in plan.problems:
        print(f"protoglyph label: skipped example {path}: {problem}", file=sys.stderr)
    classifier = FewShotClassifier(session.embedding_size, session.info.temperature)
    names: dict[int, str] = {}
    support: dict[int, np.ndarray] = {}
    for name, files in plan.groups.items():
        images = []
        for f in files:
            try:
                images.append(read_image(f))
            except ImageReadError as exc:
                print(f"protoglyph label: skipped example {f}: {exc.reason}", file=sys.stderr)
        if images:
            key = len(names)
            names[key] = name or folder.name
            support[key] = session.embed_images(images)
            classifier.add_examples(key, support[key])
    return classifier, names, support


class Progress:
    """Done / total, rate and time left on stderr: a line redrawn in a terminal, else every 5 s."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet, self.done = total, quiet, 0
        self.start = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def step(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.quiet or (now - self.last < (0.2 if self.tty else 5.0) and self.done < self.total):
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate else 0.0
        line = f"labeled {self.done:,} / {self.total:,} images, {rate:,.0f} images/s, {left:,.0f} s left"
        print(f"\r{line}   " if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def finish(self) -> float:
        if self.tty and not self.quiet and self.total:
            print(file=sys.stderr)
        return time.perf_counter() - self.start


def run(args: argparse.Namespace) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        raise Failure(f"no such folder: {folder}")
    if args.jobs < 1:
        raise Failure("--jobs must be at least 1")
    # Checked before any work, not only when the CSV is written: a mistyped --out would
    # otherwise be found after an hour of labeling (and, without --project, lose it).
    if args.out.is_dir():
        raise Failure(f"--out {args.out} is a folder; give a file name, e.g. {args.out / 'labels.csv'}")
    if not args.out.parent.is_dir():
        raise Failure(f"cannot write {args.out}: the folder {args.out.parent} does not exist")
    if args.threshold is not None and usable_threshold(args.threshold) is None:
        raise Failure(f"--threshold must be a finite number of at least 0, not {args.threshold}")
    try:
        session = EncoderSession(args.model)
    except ModelError as exc:
        raise Failure(f"the encoder model cannot be used.\n  file: {exc.path}\n  problem: {exc.problem}") from exc
    model_key = session.model_key
    project = store = None
    if args.project is not None:
        try:
            project = Project.open(args.project)
            project.patience_s = BUSY_LIMIT_S
            project.on_wait = lambda waited: None if args.quiet else print(
                f"protoglyph label: waiting for another program to release {args.project} ({waited:.0f} s)…",
                file=sys.stderr, flush=True)
            workspace = Workspace(project, session)
        except ProjectError as exc:
            raise Failure(f"the project cannot be used.\n  file: {exc.path}\n  problem: {exc.problem}") from exc
        for problem in workspace.problems:
            print(f"protoglyph label: {args.project}: {problem}", file=sys.stderr)
        classifier, names = workspace.classifier, {c.id: c.name for c in workspace.classes()}
        support = workspace.support_embeddings()
    else:
        classifier, names, support = examples_classifier(args.examples, session)
    try:
        keys, prototypes = classifier.prototypes()
        if not keys:
            where = args.project or args.examples
            raise Failure(f"{where} has no classes with examples; add a few examples per class first")
        entries = [e for e in list_folder(folder) if not _is_output(folder / e.path, e, args.out)]  # an earlier CSV
        if not entries:
            raise Failure(f"{folder} holds no files to label", 1)
        table = read_batch(project.path if project else None, folder, entries, model_key, session.embedding_size)
        results = BatchResults(table, session.info.temperature)
        results.set_prototypes([int(k) for k in keys], prototypes)  # type: ignore[call-overload]
        if project is not None:
            store = BatchStore(project, folder)  # files no longer there keep their stored results
            store.save_listing_problems(table, model_key)
        label_all(args, session, table, results, store, model_key)
        threshold = args.threshold if args.threshold is not None else table.threshold
        results.threshold = threshold if threshold is not None else default_threshold(support)
        rows = result_rows(results, names)
        written = write_csv(rows, args.out)
    except ExportError as exc:
        raise Failure(f"the results cannot be written.\n  file: {exc.path}\n  problem: {exc.problem}") from exc
    except ModelError as exc:  # found while labeling: the model gave NaN for some images
        raise Failure(f"the encoder model cannot be used.\n  file: {exc.path}\n  problem: {exc.problem}") from exc
    except ProjectError as exc:
        raise Failure(f"the project cannot be used.\n  file: {exc.path}\n  problem: {exc.problem}") from exc
    finally:
        if project is not None:
            project.close()
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("predicted", "confirmed", "corrected", "unknown",
                                                                   "error")}
    summary = ", ".join(f"{n:,} {s}" for s, n in counts.items() if n)
    print(f"protoglyph label: {written:,} images → {args.out} ({summary}; unknown beyond squared distance "
          f"{results.threshold:.1f})", file=sys.stderr)
    return 1 if counts["error"] == written else 0


def _is_output(path: Path, entry: FileEntry, out: Path) -> bool:
    """Whether a listed file is the CSV being written (compared by inode: a path compare would
    need ``resolve()``, which fails on a link loop)."""
    if entry.problem is not None:
        return False
    try:
        return os.path.samefile(path, out)
    except OSError:
        return False


class Terminated(BaseException):
    """SIGTERM: stop as after Ctrl+C (workers shut down, what was stored kept). A BaseException,
    like KeyboardInterrupt, so that no ``except Exception`` on the way turns it into an error."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def label_all(args: argparse.Namespace, session: EncoderSession, table: BatchTable, results: BatchResults,
              store: BatchStore | None, model_key: str) -> None:
    """Embed the folder's new and changed files, storing each chunk as it finishes."""
    todo = [(i, table.paths[i]) for i in table.todo]
    progress = Progress(len(todo), args.quiet)
    try:
        for chunk in embed_files(args.folder, todo, session, jobs=args.jobs):
            if store is not None:
                store.save_chunk(table, chunk, model_key)
            # Prototypes never move here, so the embeddings are used once and not kept:
            # 100,000 of them would be 100 MB.
            table.apply(chunk, keep_embeddings=False)
            results.update_rows(chunk.indices, chunk.embeddings)
            progress.step(chunk.count)
    except BatchError as exc:
        raise Failure(str(exc), 1) from exc
    elapsed = progress.finish()
    if todo and not args.quiet:
        print(f"protoglyph label: {len(todo):,} images read and embedded in {elapsed:.1f} s "
              f"({len(todo) / max(elapsed, 1e-9):,.0f} images/s, {args.jobs} worker"
              f"{'s' if args.jobs > 1 else ''})", file=sys.stderr)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
    try:
        return run(args)
    except Failure as exc:
        print(f"protoglyph label: {exc}", file=sys.stderr)
        return exc.code
    except (KeyboardInterrupt, Terminated) as exc:
        kept = " (what was labeled is kept in the project; run again to go on)" if args.project else ""
        how = "stopped" if isinstance(exc, Terminated) else "interrupted"
        print(f"\nprotoglyph label: {how}{kept}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if on_main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
