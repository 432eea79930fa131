"""Benchmark of `napari-hotspot batch`: videos and frames per second with 1 and 2 local Dask workers.

Writes N synthetic sample videos (mp4, `sample_data.make_sample_video`, different seeds) with a
mask prompt on frame 0 from their ground truth, then runs the same batch into a fresh folder once
per worker count: a LocalCluster of W processes with one thread each (as the CLI starts it).
Reports the run's wall time (models load inside it, once per worker) and the cluster start-up
separately, videos/s and frames/s, and the largest peak RSS of a worker process. Prints a Markdown
table naming the machine, the data and the command.

    python benchmarks/bench_batch.py [--videos 4] [--frames 48] [--size 240x320] [--workers 1 2] [--long-side 448]
                                     [--adapt 0]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from napari_hotspot.models.resolution import DEFAULT_LONG_SIDE
from napari_hotspot.options import TrackingOptions


def write_videos(root: Path, count: int, frames: int, height: int, width: int) -> Path:
    from napari_hotspot.sample_data import make_sample_video, write_sample

    rows = ["source,prompt,frame,value"]
    for seed in range(count):
        sample = make_sample_video(frames, height, width, seed=seed)
        paths = write_sample(root, "mp4", sample, name=f"video{seed}")
        cv2.imwrite(str(root / f"video{seed}_mask.png"), (sample.masks[0] == 1).astype(np.uint8) * 255)
        rows.append(f"{paths.frames.name},mask,0,video{seed}_mask.png")
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def _peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_once(manifest: Path, out: Path, workers: int, long_side: int, adapt: float) -> dict:
    from napari_hotspot.batch.cli import start_local_cluster
    from napari_hotspot.batch.manifest import read_manifest
    from napari_hotspot.batch.runner import run_batch

    items = read_manifest(manifest)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    cluster, client = start_local_cluster(workers)
    try:
        client.wait_for_workers(workers)
        startup = time.perf_counter() - start
        options = TrackingOptions(long_side=long_side, adapt_seconds=adapt)
        summary = run_batch(items, out, client, options=options, log=None)
        peak = max(client.run(_peak_rss_mib).values())
    finally:
        client.close()
        cluster.close()
    if summary.counts["done"] != len(items):
        raise SystemExit(f"benchmark batch did not finish every video: {summary.counts}")
    return {"workers": workers, "startup": startup, "seconds": summary.seconds, "videos": len(items),
            "frames": summary.frames_done, "peak_rss": peak}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", default="240x320", help="HEIGHTxWIDTH of the videos")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--long-side", type=int, default=DEFAULT_LONG_SIDE, help="networks' working resolution (CLI default)")
    parser.add_argument("--adapt", type=float, default=0.0,
                        help="per-video adaptation seconds (default 0: tracking throughput only)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))

    work = Path(tempfile.mkdtemp(prefix="napari_hotspot_bench_batch_"))
    try:
        manifest = write_videos(work / "videos", args.videos, args.frames, height, width)
        runs = [run_once(manifest, work / f"out{w}", w, args.long_side, args.adapt) for w in args.workers]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    import dask
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print("### napari-hotspot batch benchmark\n")
    print(f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs, Python {platform.python_version()}, torch {torch.__version__} (CPU), "
          f"dask {dask.__version__}; load average at the end {load[0]:.2f}")
    print(f"- data: {args.videos} synthetic sample videos (mp4), {args.frames} frames of {width}x{height} each, "
          f"mask prompt on frame 0; networks at long side {args.long_side}; tracker adaptation "
          f"{f'{args.adapt:g} s per video' if args.adapt > 0 else 'off (--adapt 0)'}")
    print(f"- command: `python {' '.join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])}`")
    print("- wall: `run_batch` from submit to report (includes each worker loading the models once); "
          "cluster start-up is separate\n")
    print("| workers (processes x 1 thread) | cluster start-up | wall | videos/s | frames/s | speed-up | "
          "peak worker RSS |\n|---|---|---|---|---|---|---|")
    base = runs[0]["frames"] / runs[0]["seconds"]
    for r in runs:
        fps = r["frames"] / r["seconds"]
        print(f"| {r['workers']} | {r['startup']:.1f} s | {r['seconds']:.1f} s | {r['videos'] / r['seconds']:.3f} | "
              f"{fps:.2f} | {fps / base:.2f}x | {r['peak_rss']:.0f} MiB |")


if __name__ == "__main__":
    main()
