"""Benchmark of the DIS optical-flow mask-propagation baseline on every DAVIS sequence present.

For each sequence the first ground-truth mask is propagated through all frames with
``propagate_mask_dis`` (OpenCV DIS, preset MEDIUM, backward warping), then scored with the DAVIS
metrics (first and last frame excluded). Frames are decoded before timing, so fps measures flow +
warping only. Prints a Markdown table naming the command, data and machine; ``--out DIR`` also writes
results.csv / summary.md through ``evaluation.report.write_results``.

    python benchmarks/bench_dis_baseline.py [--davis-root ROOT] [--sequences a b] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from napari_hotspot.evaluation.baselines import propagate_mask_dis
from napari_hotspot.evaluation.davis import sequence_scores
from napari_hotspot.evaluation.report import list_sequences, markdown_table, summary_line, write_results

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("NAPARI_HOTSPOT_DATA", REPO.parent / "shared" / "data"))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_sequence(davis_root: Path, sequence: str) -> dict:
    gt_files = sorted((davis_root / "Annotations" / "480p" / sequence).glob("*.png"))
    gts = [np.array(Image.open(f)) > 127 for f in gt_files]
    frames = [np.array(Image.open(davis_root / "JPEGImages" / "480p" / sequence / f"{f.stem}.jpg")) for f in gt_files]
    start = time.perf_counter()
    preds = list(propagate_mask_dis(frames, gts[0]))
    elapsed = time.perf_counter() - start
    row = {"sequence": sequence, "object_id": 1}
    row.update(sequence_scores(preds, gts))
    row["fps"] = (len(frames) - 1) / elapsed  # the first frame is given, not propagated
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis-root", type=Path, default=DEFAULT_DATA / "davis2016-dev")
    parser.add_argument("--sequences", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write results.csv and summary.md here")
    args = parser.parse_args(argv)

    sequences = args.sequences or list_sequences(args.davis_root)
    rows = []
    for sequence in sequences:
        rows.append(run_sequence(args.davis_root, sequence))
        print(f"{sequence}: J={rows[-1]['J_mean']:.3f} F={rows[-1]['F_mean']:.3f} fps={rows[-1]['fps']:.1f}",
              file=sys.stderr)

    columns = ["sequence", "n_frames", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay", "fps"]
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    print("# DIS optical-flow baseline (OpenCV DIS MEDIUM, backward warp, threshold 0.5)\n")
    print(f"- command: `{command}`")
    print(f"- data: `{args.davis_root}` ({len(sequences)} sequences, 480p; first mask given, "
          "first and last frame not scored; n_frames = scored frames)")
    print(f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, "
          f"OpenCV {cv2.__version__}, cv2 threads {cv2.getNumThreads()}")
    print("- fps: propagated frames per second, flow + warp only (decoding excluded)\n")
    print(markdown_table(rows, columns))
    print(summary_line(rows))
    if args.out is not None:
        write_results(rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
