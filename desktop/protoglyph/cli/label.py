"""``protoglyph label``: label a folder of images from the command line, with no window.

    protoglyph label FOLDER (--project P | --examples DIR) --out FILE.csv [--threshold T] [--jobs N]
                     [--engine processes|in-process|ray [--address ADDR]]

It runs the same pipeline as the app (``core.labeling.run.label_folder``): the folder is
listed, new and changed files are embedded by the engine (worker processes by default), and
each image gets the class of the nearest prototype, or ``unknown`` when it is farther from
every prototype than the threshold. With ``--project`` the results are kept in the project, so
a second run (after Ctrl+C, or on a folder that grew) only does new and changed files, and the
app shows the same results for review.

Exit status: 0 when the CSV was written; 1 when no image in the folder could be labeled (the
CSV is still written: one row per file, or the header alone for a folder with no files); 2 when
nothing could be done (no such folder, no classes with examples, a folder of examples that is not
a folder per class, an unusable model or project file); 130 when interrupted, 143 when stopped by
SIGTERM. Worker processes end with the command however it ends, SIGKILL included.

Image decoders' own messages (OpenCV's ``[ WARN:…]``, libpng's ``libpng error: …``, libjpeg's
``Corrupt JPEG data: …``) are kept off stderr, in this process and in the workers: each names
no file, and every file they are about is in the CSV with its reason.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from protoglyph.core.classifier import Calibration, FewShotClassifier
from protoglyph.core.encoder import EncoderSession, ModelError
from protoglyph.core.export import ExportError
from protoglyph.core.export.tables import write_csv
from protoglyph.core.imagefile import ImageReadError, read_image
from protoglyph.core.importing import plan_import
from protoglyph.core.labeling.embedding import IN_PROCESS_BELOW, BatchError, default_jobs
from protoglyph.core.labeling.engines import ENGINE_NAMES, Engine, EngineError, LocalWorkers, make_engine
from protoglyph.core.labeling.listing import FileEntry
from protoglyph.core.labeling.results import BatchResults, result_rows
from protoglyph.core.labeling.run import ChunkDone, Started, Support, choose_threshold, label_folder, take_chunk
from protoglyph.core.labeling.states import EXPORTED_STATUSES
from protoglyph.core.labeling.store import usable_threshold
from protoglyph.core.project import BUSY_LIMIT_S, Project, ProjectError
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
                   help="worker processes, or Ray workers (default: one per core, here %(default)s)")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="processes",
                   help="where files are embedded: worker processes on this machine (default), this process "
                        "alone, or Ray (pip install 'protoglyph[ray]'; on this machine, or a cluster with --address)")
    p.add_argument("--address", metavar="ADDR", help="with --engine ray: the Ray cluster's head, e.g. 10.0.0.1:6379 "
                   "(the folder and the model must be at the same path on every machine)")
    p.add_argument("--model", type=Path, help="encoder .onnx file (default: the shipped one)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``2 files``, ``1,024 files``: a count with thousands separators and its noun."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def examples_classifier(folder: Path, session: EncoderSession, quiet: bool = False
                        ) -> tuple[FewShotClassifier, dict[int, str]]:
    """Classes from a folder-per-class tree (``--examples``).

    A folder of images with no subfolders is refused rather than made one class named after
    the folder (what the window's import does with it): here that silently labels every image
    with that one class, which is never what was meant. Images lying beside the class folders
    belong to no class and are skipped, with a message. A tree with a single class is accepted
    (it answers "that class, or unknown" by the threshold alone, a detector), with a note.
    """
    if not folder.is_dir():
        raise Failure(f"the examples folder {folder} does not exist")
    plan = plan_import([folder])
    for path, problem in plan.problems:
        print(f"protoglyph label: skipped example {path}: {problem}", file=sys.stderr)
    loose = [f for files in plan.groups.values() for f in files if f.parent == folder]
    if loose and len(loose) == plan.file_count:
        raise Failure(f"--examples {folder} holds images but no class folders. Each subfolder of it is a class "
                      f"(the subfolder's name is the class, the images in it its examples), e.g.\n"
                      f"  {folder / 'ring' / '1.png'}\n  {folder / 'cross' / '1.png'}\n"
                      f"Move the images into one subfolder per class and run again.")
    if loose:
        names_shown = ", ".join(f.name for f in loose[:3]) + (", …" if len(loose) > 3 else "")
        print(f"protoglyph label: skipped {plural(len(loose), 'image')} directly in {folder} ({names_shown}): "
              "only the images in its subfolders are examples, one subfolder per class", file=sys.stderr)
        plan.groups = {name: kept for name, files in plan.groups.items()
                       if (kept := [f for f in files if f.parent != folder])}
    classifier = FewShotClassifier(session.embedding_size, session.info.temperature,
                                   calibration=Calibration.from_model(session.info))
    names: dict[int, str] = {}
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
            classifier.add_examples(key, session.embed_images(images))
    if len(names) == 1 and not quiet:
        only = next(iter(names.values()))
        print(f"protoglyph label: note: {folder} has one class, {only!r}: each image is labeled {only!r} or "
              "'unknown' (farther from it than the threshold), and a labeled one's confidence is always 1.0; "
              "add a subfolder per other class to tell classes apart", file=sys.stderr)
    return classifier, names


class Progress:
    """Files read / total (and how many of them could not be used), rate and time left on stderr:
    a line redrawn in a terminal, else every 5 s. Files read, not "labeled": a damaged file is
    read but gets no label, and counting it as labeled hid the errors until the summary."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet, self.done, self.unusable = total, quiet, 0, 0
        self.start = self.last = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def step(self, n: int, unusable: int = 0) -> None:
        self.done += n
        self.unusable += unusable
        now = time.perf_counter()
        if self.quiet or (now - self.last < (0.2 if self.tty else 5.0) and self.done < self.total):
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate else 0.0
        print(f"\r{self.line(rate, left)}   " if self.tty else self.line(rate, left), end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def line(self, rate: float, left: float) -> str:
        """``read 21 / 21 files (4 could not be used), 70 files/s, 0 s left``."""
        unusable = f" ({self.unusable:,} could not be used)" if self.unusable else ""
        return (f"read {self.done:,} / {plural(self.total, 'file')}{unusable}, {rate:,.0f} files/s, "
                f"{left:,.0f} s left")

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
    if args.address is not None and args.engine != "ray":
        raise Failure("--address is for --engine ray (a Ray cluster's head, e.g. 10.0.0.1:6379)")
    try:
        engine = make_engine(args.engine, args.jobs, args.address)
    except EngineError as exc:
        raise Failure(str(exc)) from exc
    try:
        session = EncoderSession(args.model)
    except ModelError as exc:
        raise Failure(f"the encoder model cannot be used.\n  file: {exc.path}\n  problem: {exc.problem}") from exc
    project = None
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
    else:
        classifier, names = examples_classifier(args.examples, session, args.quiet)
    try:
        keys, prototypes = classifier.prototypes()
        if not keys:
            where = args.project or args.examples
            raise Failure(f"{where} has no classes with examples; add a few examples per class first")
        support = Support([int(k) for k in keys], prototypes,  # type: ignore[call-overload]
                          classifier.open_set_reference())  # calibrated confidences need the support set's
        events = label_folder(folder, session, support, project=project, engine=engine,
                              skip=_output_test(folder, args.out))  # an earlier CSV
        started = next(events)
        assert isinstance(started, Started)
        results = started.results
        if not len(results):
            # Written all the same, as for a folder of unusable files: a script reading the CSV
            # after exit status 1 finds the header and no rows, not a missing (or stale) file.
            write_csv([], args.out)
            print(f"protoglyph label: {folder} holds no files to label; {args.out} has the header only",
                  file=sys.stderr)
            return 1
        label_all(args, engine, results, events)
        results.refresh_share()  # the folder's share of unknowns from all its items, whatever their order
        results.threshold = choose_threshold(args.threshold, results.table.threshold, classifier.default_threshold())
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
    counts = {s: sum(1 for r in rows if r.status == s) for s in EXPORTED_STATUSES}
    summary = ", ".join(plural(n, s) if s == "error" else f"{n:,} {s}" for s, n in counts.items() if n)
    print(f"protoglyph label: {plural(written, 'file')} → {args.out} ({summary}; unknown beyond squared distance "
          f"{results.threshold:,.1f})", file=sys.stderr)
    return 1 if counts["error"] == written else 0


def _output_test(folder: Path, out: Path) -> Callable[[FileEntry], bool]:
    """Whether a listed file is the CSV being written, by inode (a path compare would need
    ``resolve()``, which fails on a link loop). Only a file of the CSV's size is looked at: one
    ``stat`` per file would cost 2 s on 100,000 files, before any is labeled."""
    try:
        size = os.stat(out).st_size
    except OSError:  # not there yet: no file listed can be it
        return lambda entry: False

    def is_output(entry: FileEntry) -> bool:
        if entry.problem is not None or entry.size != size:
            return False
        try:
            return os.path.samefile(folder / entry.path, out)
        except OSError:
            return False

    return is_output


class Terminated(BaseException):
    """SIGTERM: stop as after Ctrl+C (workers shut down, what was stored kept). A BaseException,
    like KeyboardInterrupt, so that no ``except Exception`` on the way turns it into an error."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def label_all(args: argparse.Namespace, engine: Engine, results: BatchResults,
              events: Iterator[Started | ChunkDone]) -> None:
    """Take in the folder's new and changed files as the pipeline embeds and stores them."""
    todo = len(results.table.todo)
    progress = Progress(todo, args.quiet)
    try:
        for event in events:
            assert isinstance(event, ChunkDone)
            # Prototypes never move here, so the embeddings are used once and not kept:
            # 100,000 of them would be 100 MB.
            take_chunk(results, event.chunk, keep_embeddings=False)
            progress.step(event.chunk.count, len(event.chunk.errors))
    except (BatchError, EngineError) as exc:
        raise Failure(str(exc), 1) from exc
    elapsed = progress.finish()
    if todo and not args.quiet:
        embedded = todo - progress.unusable
        # "N embedded in T s (R images/s" is what benchmarks/cli_batch.py reads.
        if isinstance(engine, LocalWorkers):
            where = (plural(args.jobs, "worker") if args.jobs > 1 and todo >= IN_PROCESS_BELOW
                     else "in this process")
        else:
            where = engine.description
        unusable = f"; {progress.unusable:,} could not be used" if progress.unusable else ""
        print(f"protoglyph label: {plural(todo, 'file')} read and {embedded:,} embedded in {elapsed:.1f} s "
              f"({embedded / max(elapsed, 1e-9):,.0f} images/s, {where}){unusable}", file=sys.stderr)


#: How the lines begin that libpng's and libjpeg's default message handlers print straight to
#: stderr (``fprintf``), bypassing OpenCV's log: libpng's errors and warnings, and libjpeg's
#: warnings (its ``JWRN_*`` texts). They name no file, and come for a file that is in the CSV
#: with its reason (or, for a JPEG libjpeg recovered, is labeled from what it decoded).
DECODER_CHATTER = (b"libpng error: ", b"libpng warning: ", b"Corrupt JPEG data: ", b"Premature end of JPEG file",
                   b"Invalid SOS parameters for sequential JPEG", b"Warning: unknown JFIF revision number ",
                   b"Inconsistent progression sequence for component ", b"Unknown Adobe color transform code ",
                   b"Application transferred too few scanlines", b"Application transferred too many scanlines")


#: Parts of lines that Ray's C++ core prints straight to stderr about its own set-up with the
#: ray engine: that actors Ray Data may restart hold their class in Ray's object store (they do,
#: and nothing is lost if they are not restarted: the batch then ends with the reason).
RAY_CHATTER = (b"has constructor arguments in the object store and max_restarts > 0",)


class DecoderChatterFilter:
    """Keeps the lines of :data:`DECODER_CHATTER` off stderr, in this process and in its workers.

    libpng and libjpeg print with ``fprintf(stderr, …)`` from C, and OpenCV installs no handler
    for them, so no setting reaches them; the worker processes that decode most files are
    started by the core, out of this command's reach, but they inherit its file descriptor 2.
    So fd 2 becomes a pipe for the duration, and a thread forwards to the real stderr every line
    that is not decoder chatter: a worker's traceback, a crash report or any other message still
    comes through, as it is written. This command's own messages (``sys.stderr``, when that is
    fd 2) go straight to the real stderr, so progress redrawn with ``\\r`` is not held back.

    Where anything of it cannot be set up (no fd 2, not POSIX) stderr is left as it is.
    """

    def __init__(self) -> None:
        self.saved: int | None = None  # the real stderr
        self.read_end = self.mark = -1
        self.token = b"\0protoglyph-stderr-mark-" + os.urandom(8).hex().encode() + b"\0"
        self.flushed = threading.Event()
        self.python_stderr: TextIO | None = None

    def __enter__(self) -> DecoderChatterFilter:
        if os.name != "posix":
            return self
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            return self
        self.read_end, write_end = os.pipe()
        self.mark = os.dup(write_end)  # to say "all written so far" once fd 2 is given back
        os.dup2(write_end, 2)  # inheritable: the workers write here too
        os.close(write_end)
        self.saved = saved
        threading.Thread(target=self._forward, name="stderr-filter", daemon=True).start()
        try:
            on_fd2 = sys.stderr.fileno() == 2
        except (OSError, ValueError, AttributeError):  # a test's capture, a StringIO: leave it
            on_fd2 = False
        if on_fd2:
            self.python_stderr = sys.stderr
            sys.stderr = open(saved, "w", encoding=sys.stderr.encoding, errors=sys.stderr.errors,
                              buffering=1, closefd=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            return
        if self.python_stderr is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            sys.stderr = self.python_stderr
        os.dup2(self.saved, 2)
        # Everything the workers wrote is in the pipe by now (they have stopped); the mark comes
        # after it, so once the thread has seen it, all of it has been forwarded. The thread then
        # goes on until no process holds the pipe (multiprocessing's resource tracker may).
        with contextlib.suppress(OSError):
            os.write(self.mark, self.token)
        os.close(self.mark)
        self.flushed.wait(5.0)

    def _forward(self) -> None:
        assert self.saved is not None
        pending = b""
        try:
            while True:
                try:
                    chunk = os.read(self.read_end, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                pending += chunk
                if self.token in pending:
                    before, _, pending = pending.partition(self.token)
                    self._write(self._keep(before.split(b"\n")))
                    self.flushed.set()
                lines = pending.split(b"\n")
                pending = lines.pop()
                self._write(self._keep(lines, complete=True))
            self._write(self._keep([pending]))
        finally:
            self.flushed.set()
            os.close(self.read_end)
            os.close(self.saved)

    @staticmethod
    def _keep(lines: list[bytes], complete: bool = False) -> bytes:
        """The lines that are not decoder chatter, joined again (the last without its newline
        unless ``complete``)."""
        kept = [line for line in lines
                if not line.startswith(DECODER_CHATTER) and not any(part in line for part in RAY_CHATTER)]
        if not kept or (kept == [b""] and not complete):
            return b""
        return b"\n".join(kept) + (b"\n" if complete else b"")

    def _write(self, data: bytes) -> None:
        assert self.saved is not None
        while data:
            try:
                data = data[os.write(self.saved, data):]
            except OSError:  # the real stderr is gone: drop it, but keep draining the pipe
                return


@contextlib.contextmanager
def quiet_decoders() -> Iterator[None]:
    """Image decoders' messages off stderr for the duration, here and in the worker processes.

    OpenCV's own log (``[ WARN:…]``, ``[ERROR:…]``, e.g. every damaged TIFF) is turned down to
    fatal errors at the source: in this process with ``setLogLevel`` (cv2 is already imported),
    in the workers through ``OPENCV_LOG_LEVEL``, which they inherit and read when they import
    cv2. A level set by the person in ``OPENCV_LOG_LEVEL`` is kept. libpng's and libjpeg's lines
    go through :class:`DecoderChatterFilter`. Both are undone afterwards, for callers in-process.
    """
    import cv2

    chosen = "OPENCV_LOG_LEVEL" in os.environ
    previous = cv2.utils.logging.getLogLevel()
    if not chosen:
        os.environ["OPENCV_LOG_LEVEL"] = "FATAL"
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_FATAL)
    try:
        with DecoderChatterFilter():
            yield
    finally:
        if not chosen:
            os.environ.pop("OPENCV_LOG_LEVEL", None)
            cv2.utils.logging.setLogLevel(previous)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if on_main else None
    try:
        with quiet_decoders():
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
