"""The batch driver: skip finished videos, submit the rest to Dask, collect results, report, stop cleanly.

Runs in the process that owns the Dask client. Each video is one task (`worker.process_video`)
with `retries=` for unexpected errors; a worker process that dies is handled by the scheduler,
which reassigns its task (up to `distributed.scheduler.allowed-failures` deaths, then KilledWorker).
The report `batch_report.csv` is rewritten atomically after every finished video, so it is there
whatever stops the run; on Ctrl-C the pending tasks are cancelled and the unfinished videos are
reported as failed ("interrupted"), to be resumed by running the same command again.
"""

from __future__ import annotations

import csv
import errno
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from napari_hotspot.batch.manifest import BatchItem
from napari_hotspot.batch.worker import (
    BATCH_OPTIONS,
    VideoResult,
    completed_result,
    process_video,
    read_marker,
    remove_temporaries,
)
from napari_hotspot.errors import ProjectIOError
from napari_hotspot.fileio import atomic_write, describe_os_error, pid_alive
from napari_hotspot.options import TrackingOptions

REPORT_FILE = "batch_report.csv"
REPORT_COLUMNS = ("source", "status", "frames", "seconds", "error")
STATUSES = ("done", "failed", "skipped")
INTERRUPTED = "interrupted before it finished (Ctrl-C); run the same command again to resume"


@dataclass
class BatchSummary:
    """The outcome of a batch run: one result per manifest row, in manifest order."""

    results: list[VideoResult]
    seconds: float
    interrupted: bool = False
    report: Path | None = None
    counts: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = {s: sum(r.status == s for r in self.results) for s in STATUSES}

    @property
    def frames_done(self) -> int:
        return sum(r.frames for r in self.results if r.status == "done")


LOCK_FILE = ".batch.lock"


@contextmanager
def batch_lock(out_dir: Path):
    """Hold `out_dir/.batch.lock` while a batch writes there: a second batch into the same folder
    would delete the first one's temporary folders. A lock left by a dead process on this machine
    is taken over; one from another machine must be removed by hand."""
    lock = Path(out_dir) / LOCK_FILE
    me = f"{socket.gethostname()} {os.getpid()}"
    for _attempt in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                host, pid = lock.read_text().split()
            except (OSError, ValueError):
                host, pid = socket.gethostname(), "0"
            if host == socket.gethostname() and not pid_alive(int(pid)):
                lock.unlink(missing_ok=True)  # its batch died without cleaning up
                continue
            where = f"process {pid}" if host == socket.gethostname() else f"process {pid} on {host}"
            raise ProjectIOError(
                f"another batch ({where}) is writing to {out_dir}; wait for it, or if it is no longer "
                f"running, delete {lock}"
            ) from None
        except OSError as err:
            raise ProjectIOError(f"cannot write to the output folder {out_dir}: {describe_os_error(err)}") from err
        try:  # a full disk fails here: no lock file may stay behind
            try:
                data = me.encode()
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, "short write")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            lock.unlink(missing_ok=True)
            raise ProjectIOError(f"cannot write to the output folder {out_dir}: {describe_os_error(err)}") from err
        break
    else:
        raise ProjectIOError(f"cannot take the lock {lock}: it keeps reappearing")
    try:
        yield lock
    finally:
        try:
            if lock.read_text() == me:
                lock.unlink()
        except OSError:
            pass


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- report
def write_report(out_dir: str | os.PathLike, results: list[VideoResult]) -> Path:
    """Write `out_dir/batch_report.csv` (source,status,frames,seconds,error) atomically."""
    path = Path(out_dir) / REPORT_FILE
    with atomic_write(path, what="the batch report", fsync=True) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REPORT_COLUMNS)
        for r in results:
            writer.writerow([r.source, r.status, r.frames, f"{r.seconds:.2f}", " ".join(r.error.split())])
    return path


def read_report(path: str | os.PathLike) -> list[dict]:
    """The rows of a batch report as dicts (frames int, seconds float)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != REPORT_COLUMNS:
                raise ProjectIOError(f"{path} is not a batch report: header must be {','.join(REPORT_COLUMNS)}")
            rows = []
            for row in reader:
                try:
                    row["frames"], row["seconds"] = int(row["frames"]), float(row["seconds"])
                except (TypeError, ValueError):
                    raise ProjectIOError(f"{path} line {reader.line_num}: frames/seconds are not numbers") from None
                rows.append(row)
            return rows
    except FileNotFoundError:
        raise ProjectIOError(f"batch report {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ProjectIOError(f"cannot read batch report {path}: {err}") from None


def interrupted_results(
    items: list[BatchItem], out_dir: Path, known: dict[int, VideoResult] | None = None, finished: str = "done"
) -> list[VideoResult]:
    """Results for a run stopped early: the `known` ones as they are; a video found complete on disk
    gets status `finished` (done: it finished while the run was stopping; skipped: before it
    started); the rest failed with the "interrupted" note."""
    known = known or {}
    results = []
    for i, item in enumerate(items):
        result = known.get(i)
        if result is None:
            result = completed_result(item, out_dir)
            if result is not None and result.status == "skipped":
                marker = read_marker(Path(out_dir) / item.name) or {}
                seconds = float(marker.get("seconds", 0.0)) if finished == "done" else 0.0
                result = VideoResult(item.source, item.name, finished, result.frames, seconds)
        results.append(result or VideoResult(item.source, item.name, "failed", 0, 0.0, INTERRUPTED))
    return results


def finish_interrupted(summary: BatchSummary, items: list[BatchItem], out_dir: Path, clean: bool = True) -> BatchSummary:
    """After the cluster is closed: re-check the videos that were still running when the run was
    interrupted (some finish while it stops) and rewrite the report. `clean` removes temporary
    folders too: only safe when no worker can still be writing (a closed local cluster)."""
    known = {i: r for i, r in enumerate(summary.results) if r.error != INTERRUPTED}
    with batch_lock(out_dir):
        if clean:
            remove_temporaries(out_dir)  # attempts the shutdown cut short
        final = interrupted_results(items, out_dir, known)
        return BatchSummary(final, summary.seconds, interrupted=True, report=write_report(out_dir, final))


# ---------------------------------------------------------------------------- progress
class Progress:
    """One terminal line per finished video: videos done, frames per second overall."""

    def __init__(self, total: int, log: Callable[[str], None]):
        self.total = total
        self.log = log
        self.start = time.perf_counter()
        self.finished = 0
        self.frames = 0
        self.counts = {s: 0 for s in STATUSES}

    def update(self, result: VideoResult, quiet: bool = False) -> None:
        self.finished += 1
        self.counts[result.status] += 1
        if result.status == "done":
            self.frames += result.frames
        if quiet:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        what = (f"{result.frames} frames, {result.seconds:.1f} s" if result.status == "done"
                else result.error if result.status == "failed" else "already complete")
        width = len(str(self.total))
        self.log(
            f"[{self.finished:{width}d}/{self.total}] {result.status:7s} {result.name}: {what} | "
            f"{self.counts['done']} done, {self.counts['failed']} failed, {self.counts['skipped']} skipped | "
            f"{self.frames / elapsed:.1f} frames/s overall"
        )


def dashboard_link(client) -> str | None:
    """The scheduler's dashboard address, or None when it serves none."""
    try:
        if "dashboard" not in client.scheduler_info().get("services", {}):
            return None
        return client.dashboard_link
    except Exception:  # an old or remote scheduler that does not say: no link, not an error
        return None


# ---------------------------------------------------------------------------- the run
def _error_text(exc: BaseException) -> str:
    from distributed import KilledWorker

    if isinstance(exc, KilledWorker):
        return (f"the worker processing this video died {exc.allowed_failures + 1} times "
                f"(distributed.scheduler.allowed-failures={exc.allowed_failures}); last on {exc.last_worker.address}")
    text = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {text}"


def _make_out_dir(out_dir: str | os.PathLike) -> Path:
    out_dir = Path(out_dir).absolute()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ProjectIOError(f"cannot create the output folder {out_dir}: {err.strerror or err}") from err
    return out_dir


def run_batch(
    items: list[BatchItem],
    out_dir: str | os.PathLike,
    client,
    *,
    weights: str | os.PathLike | None = None,
    options: TrackingOptions | None = None,
    retries: int = 2,
    log: Callable[[str], None] | None = _stderr,
    accept_truncated: bool = False,
) -> BatchSummary:
    """Pre-annotate every video of `items` into `out_dir` on the Dask `client`'s cluster.

    `options`: how each video is tracked (None: `worker.BATCH_OPTIONS`, no adaptation). Videos whose
    folder is already complete are skipped without a task. Returns the summary;
    a KeyboardInterrupt cancels the pending tasks, writes the report and returns with
    `interrupted=True` (finished outputs are kept, nothing half-written is left in place).
    Raises ProjectIOError when `out_dir` cannot be written or another batch is writing there.
    """
    out_dir = _make_out_dir(out_dir)
    with batch_lock(out_dir):
        return _run_batch_locked(items, out_dir, client, weights, options or BATCH_OPTIONS, retries,
                                 log or (lambda _m: None), accept_truncated)


def _run_batch_locked(items, out_dir: Path, client, weights, options: TrackingOptions, retries, log,
                      accept_truncated=False) -> BatchSummary:
    from distributed import as_completed

    t0 = time.perf_counter()
    stale = remove_temporaries(out_dir)
    if stale:
        log(f"removed {len(stale)} unfinished temporary folder(s) left by an earlier run")

    results: dict[int, VideoResult] = {}
    todo: list[int] = []
    for i, item in enumerate(items):
        previous = completed_result(item, out_dir)
        if previous is not None:
            results[i] = previous
        else:
            todo.append(i)
    skipped = sum(r.status == "skipped" for r in results.values())
    other_row = len(results) - skipped
    refused = f", {other_row} refused (finished for another manifest row)" if other_row else ""
    log(f"batch: {len(items)} videos, {skipped} already complete{refused}, {len(todo)} to run -> {out_dir}")
    progress = Progress(len(items), log)
    for i in sorted(results):  # a refused one says why now, in its progress line
        progress.update(results[i], quiet=results[i].status == "skipped")

    def ordered() -> list[VideoResult]:
        return [results[i] for i in sorted(results)]

    futures = {}
    try:
        write_report(out_dir, ordered())
        weights_arg = str(Path(weights).absolute()) if weights else None
        for i in todo:
            item = items[i]
            future = client.submit(
                process_video, item, str(out_dir), weights_arg, options, 1, bool(accept_truncated),
                key=f"napari-hotspot-batch-{item.name}-{uuid.uuid4().hex[:8]}",
                retries=int(retries), pure=False,
            )
            futures[future] = i
        # as_completed([]) looks for a default client: with nothing to run there is none
        for future in as_completed(list(futures)) if futures else ():
            i = futures[future]
            item = items[i]
            if future.status == "finished":
                result = future.result()
            else:
                exc = future.exception() if future.status == "error" else None
                text = _error_text(exc) if exc is not None else f"task {future.status}"
                result = VideoResult(item.source, item.name, "failed", 0, 0.0, text)
            results[i] = result
            progress.update(result)
            write_report(out_dir, ordered())
            future.release()
    except KeyboardInterrupt:
        pending = [f for f in futures if not f.done()]
        log(f"interrupted: cancelling {len(pending)} unfinished video(s); finished outputs are kept")
        try:
            client.cancel(pending, force=True)
        except Exception as err:  # the cluster may be going down with us; the report matters more
            log(f"could not cancel the tasks cleanly: {err}")
        final = interrupted_results(items, out_dir, results)
        report = write_report(out_dir, final)
        return BatchSummary(final, time.perf_counter() - t0, interrupted=True, report=report)

    remove_temporaries(out_dir)  # folders of attempts whose worker died; every task is over now
    final = ordered()
    return BatchSummary(final, time.perf_counter() - t0, report=write_report(out_dir, final))


def run_sequential(
    items: list[BatchItem],
    out_dir: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    options: TrackingOptions | None = None,
    log: Callable[[str], None] | None = None,
    accept_truncated: bool = False,
) -> BatchSummary:
    """The same batch in this process, one video after another (the reference a Dask run must equal)."""
    log = log or (lambda _message: None)
    out_dir = _make_out_dir(out_dir)
    with batch_lock(out_dir):
        remove_temporaries(out_dir)
        t0 = time.perf_counter()
        progress = Progress(len(items), log)
        results = []
        for item in items:
            weights_arg = str(Path(weights).absolute()) if weights else None
            result = process_video(item, out_dir, weights_arg, options or BATCH_OPTIONS, 1, accept_truncated)
            results.append(result)
            progress.update(result)
        return BatchSummary(results, time.perf_counter() - t0, report=write_report(out_dir, results))
