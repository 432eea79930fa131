"""`napari-hotspot batch MANIFEST --out DIR [--scheduler ADDRESS] [--workers N]`: arguments and cluster setup.

Without --scheduler it starts a local Dask cluster (worker processes with one thread each); with
it, it connects to a running `dask scheduler`. The work itself is `runner.run_batch`.
Exit status: 0 every video done or skipped, 1 some failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from napari_hotspot.argtypes import non_negative_int as _non_negative_int
from napari_hotspot.argtypes import positive_int as _positive_int
from napari_hotspot.options import (
    add_accept_truncated_arg,
    add_adapt_arg,
    add_distractor_arg,
    add_hotspot_smoothing_arg,
    add_long_side_arg,
    add_window_arg,
    tracking_options,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `batch` sub-command's arguments."""
    parser.add_argument("manifest", type=Path,
                        help="CSV with header source,prompt,frame,value, one row per video; prompt is mask, click, "
                             "box, auto or gaze; value is the mask PNG, \"x,y\", \"x0,y0,x1,y1\", empty, or the "
                             "fixation CSV (relative paths resolve against the manifest's folder)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: one project folder per video and batch_report.csv")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="address of a running `dask scheduler` (e.g. tcp://host:8786); default: start a "
                             "local cluster")
    parser.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                        help="local worker processes, one thread each (default: the CPU count, at most one per "
                             "video); not with --scheduler")
    parser.add_argument("--weights", type=Path, default=None, help="model weights (default: the shipped ones)")
    add_long_side_arg(parser)
    add_adapt_arg(parser, "per-video tracker adaptation budget in seconds, as for track",
                  off="0 = off, reproducible on any machine")
    add_distractor_arg(parser)
    add_window_arg(parser)
    add_hotspot_smoothing_arg(parser)
    parser.add_argument("--no-reacquire", dest="reacquire", action="store_false",
                        help="past a manifest row's absent frames the object is not looked for: empty after one "
                             "(going away from the prompt); frames before one that comes before the prompt are not "
                             "tracked")
    add_accept_truncated_arg(parser)
    parser.add_argument("--retries", type=_non_negative_int, default=2,
                        help="re-runs of a video whose task raised an unexpected error (default 2)")
    parser.add_argument("--allowed-failures", type=_non_negative_int, default=3,
                        help="worker deaths a video may cause before it is failed (local cluster only; a remote "
                             "scheduler reads distributed.scheduler.allowed-failures from its own config)")


def start_local_cluster(n_workers: int, allowed_failures: int = 3):
    """A local Dask cluster for a batch: `n_workers` processes of one thread each (torch gets one
    intra-op thread per process) that leave Ctrl-C to this process; returns (cluster, client)."""
    import dask
    from distributed import Client, LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": int(allowed_failures)}):
        cluster = LocalCluster(
            n_workers=int(n_workers), threads_per_worker=1, processes=True,
            dashboard_address=":0", silence_logs=logging.WARNING,
            env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
            preload=["napari_hotspot.batch.local_worker"],
        )
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return cluster, client


def _start_cluster(args, n_videos: int):
    if n_videos == 0:
        return None, None  # everything is complete already: no cluster needed
    from distributed import Client

    from napari_hotspot.errors import HotspotError

    if args.scheduler:
        try:
            return None, Client(args.scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError) as err:
            raise HotspotError(f"cannot connect to the Dask scheduler at {args.scheduler}: {err}") from None
    n_workers = args.workers or max(1, min(os.cpu_count() or 1, n_videos))
    return start_local_cluster(n_workers, args.allowed_failures)



def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


class _SyncCancelRace(logging.Filter):
    """Drops one harmless record: when Ctrl-C lands just after distributed's `sync()` scheduled a call and
    before the call started, its cancel callback reads the call's future before it exists, and tornado
    logs that NameError with a traceback (distributed 2026.8: `future` is only declared in `sync`). The
    interrupt itself works; the user should not see a library traceback for pressing Ctrl-C."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, NameError) and "'future'" in str(exc))


def run(args) -> int:
    """Run a batch from parsed arguments; returns the exit status."""
    tornado_log = logging.getLogger("tornado.application")
    if not any(isinstance(f, _SyncCancelRace) for f in tornado_log.filters):
        tornado_log.addFilter(_SyncCancelRace())
    from napari_hotspot.batch.manifest import missing_files, read_manifest
    from napari_hotspot.batch.runner import (
        REPORT_FILE,
        batch_lock,
        dashboard_link,
        finish_interrupted,
        interrupted_results,
        run_batch,
        write_report,
    )
    from napari_hotspot.batch.worker import completed_result
    from napari_hotspot.fileio import prepare_output_dir

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.scheduler and args.workers:
        log("napari-hotspot batch: error: --workers sizes the local cluster; with --scheduler, start workers "
            "with `dask worker ADDRESS --nthreads 1` instead")
        return EXIT_BAD_INPUT
    if args.weights is not None and not Path(args.weights).is_file():
        log(f"napari-hotspot batch: error: model weights {args.weights} not found")
        return EXIT_BAD_INPUT
    items = read_manifest(args.manifest)
    for note in missing_files(items):
        log(f"warning: {args.manifest} {note}; that video will be reported as failed")
    out_dir = Path(args.out).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        log(f"napari-hotspot batch: error: --out {args.out} is a file: give a folder")
        return EXIT_BAD_INPUT
    # Before a cluster starts (seconds, and workers that load models): a folder that cannot be written,
    # or that another batch is writing into, is refused now. run_batch takes the lock again for the run.
    prepare_output_dir(out_dir, "--out folder")
    with batch_lock(out_dir):
        pass

    previous_sigterm = None
    if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
        # `kill` stops as cleanly as Ctrl-C
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    cluster = client = summary = None
    try:
        try:
            pending = sum(completed_result(item, out_dir) is None for item in items)
            cluster, client = _start_cluster(args, pending)
            if client is not None:
                log(f"dask: {args.scheduler or f'local cluster of {len(cluster.workers)} worker process(es), 1 thread each'}")
            link = dashboard_link(client) if client is not None else None
            if link:
                no_plots = cluster is not None and importlib.util.find_spec("bokeh") is None
                log(f"dask dashboard: {link}" + (" (its plots need bokeh>=3.1, not installed)" if no_plots else ""))
            summary = run_batch(items, out_dir, client, weights=args.weights, options=tracking_options(args),
                                retries=args.retries, log=log, accept_truncated=args.accept_truncated)
        except KeyboardInterrupt:  # before run_batch took over (cluster start-up)
            pass
        finally:
            for closable in (client, cluster):
                if closable is not None:
                    try:
                        closable.close()
                    except Exception:  # closing a cluster that is already going down
                        pass
        if summary is None or summary.interrupted:
            # The cluster is closed now: videos that finished while it stopped are on disk.
            if summary is None:
                out_dir.mkdir(parents=True, exist_ok=True)
                write_report(out_dir, interrupted_results(items, out_dir, finished="skipped"))
            else:
                summary = finish_interrupted(summary, items, out_dir, clean=cluster is not None)
            c = summary.counts if summary else {"done": 0}
            log(f"interrupted: {c['done']} video(s) finished in this run; report: {out_dir / REPORT_FILE}; "
                f"run the same command again to resume")
            return EXIT_INTERRUPTED
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)

    c = summary.counts
    rate = summary.frames_done / summary.seconds if summary.seconds > 0 else 0.0
    log(f"batch finished in {summary.seconds:.1f} s: {c['done']} done, {c['failed']} failed, "
        f"{c['skipped']} skipped ({rate:.1f} frames/s); report: {summary.report}")
    return EXIT_FAILED if c["failed"] else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="napari-hotspot batch",
                                     description="Pre-annotate many videos on a Dask cluster")
    add_arguments(parser)
    return parser


def main(argv=None) -> int:
    """`python -m napari_hotspot.batch.cli ...` (the same as `napari-hotspot batch ...`)."""
    from napari_hotspot.errors import HotspotError

    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except HotspotError as exc:
        print(f"napari-hotspot batch: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
