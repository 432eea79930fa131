"""Tracking speed with and without the search window (`TrackingOptions.search_window`), alternated in one
process, for one and for two objects: the sample video's two objects (small, 240x320), and DAVIS
sequences whose frame-0 mask is prompted once (one object) and twice (two objects, two passes a frame,
as two objects cost). Frames per second of `HotspotSession.propagate` after the prompts, with the
per-frame times of each thread (`HotspotSession.timings`), beside the encoder-only time of the same run
at each case's working size.

    python benchmarks/bench_search_window.py [--sequences car-shadow dog] [--rounds 2] [--out runs/window.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from napari_hotspot.data_paths import davis_root
from napari_hotspot.evaluation.report import read_label_png
from napari_hotspot.models.weights import ModelBundle
from napari_hotspot.sample_data import make_sample_video
from napari_hotspot.session import HotspotSession
from napari_hotspot.video import open_source

sys.path.insert(0, str(Path(__file__).parent))
from bench_track import emit, encoder_only_ms, machine  # noqa: E402


def sweep(models, source, prompts, window: bool) -> dict:
    """Prompt `prompts` [(object id, mask)] on frame 0 and time one forward propagation."""
    session = HotspotSession(source, models)
    size = session.work_size
    session.search_window = window
    for oid, mask in prompts:
        session.add_prompt(0, oid, mask=mask)
    for k in session.timings:
        session.timings[k] = 0.0
    frames = set()
    t0 = time.perf_counter()
    for r in session.propagate():
        frames.add(r.frame)
    seconds = time.perf_counter() - t0
    n = len(frames)
    return {"fps": n / seconds, "size": size, **{f"{k}_ms": 1000 * v / n for k, v in session.timings.items()}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", nargs="*", default=["car-shadow", "dog"])
    ap.add_argument("--rounds", type=int, default=2, help="alternations of window on / off")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    models = ModelBundle.load()
    enc_ms = {}  # working size -> the encoder alone there
    sample = make_sample_video()
    cases = [("sample, 2 objects", sample.frames, [(1, sample.masks[0] == 1), (2, sample.masks[0] == 2)])]
    root = davis_root()
    for seq in args.sequences:
        gt_files = sorted((root / "Annotations" / "480p" / seq).glob("*.png"))
        if not gt_files:
            print(f"skipping {seq}: no DAVIS data at {root}", file=sys.stderr)
            continue
        gt = read_label_png(gt_files[0], ground_truth=True) > 0
        frames = root / "JPEGImages" / "480p" / seq
        cases += [(f"{seq}, 1 object", frames, [(1, gt)]), (f"{seq}, 2 objects", frames, [(1, gt), (2, gt)])]
    rows = []
    for r in range(args.rounds):
        for name, source, prompts in cases:
            for window in (True, False):
                if isinstance(source, Path):
                    with open_source(source) as src:
                        res = sweep(models, src, prompts, window)
                else:
                    res = sweep(models, source, prompts, window)
                if res["size"] not in enc_ms:
                    enc_ms[res["size"]] = encoder_only_ms(models, res["size"])
                rows.append({"case": name, "window": "on" if window else "off", "round": r + 1, **res,
                             "encoder_alone_ms": enc_ms[res["size"]]})
                print(rows[-1], file=sys.stderr)
    cols = ["case", "window", "round", "fps", "decode_ms", "encoder_ms", "heads_ahead_ms", "heads_ms", "encoder_alone_ms"]
    lines = [f"Command: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`  ",
             f"Machine: {machine()}  ",
             "Working sizes: " + ", ".join(f"{h}x{w}" for h, w in enc_ms) + " (encoder_alone_ms: one pass at the case's "
             "size, over and over, same run)", "",
             "| " + " | ".join(cols) + " | frame / encoder alone |", "|" + "---|" * (len(cols) + 1)]
    for row in rows:
        lines.append("| " + " | ".join(str(row[c]) if isinstance(row[c], (str, int)) else f"{row[c]:.1f}"
                                        for c in cols) + f" | {1000 / row['fps'] / row['encoder_alone_ms']:.2f} |")
    summary = {}
    for row in rows:
        summary.setdefault((row["case"], row["window"]), []).append(row["fps"])
    lines += ["", "| case | fps, window on | fps, whole frame | on / off |", "|---|---|---|---|"]
    for name, *_ in cases:
        on, off = summary[(name, "on")], summary[(name, "off")]
        lines.append(f"| {name} | {min(on):.1f}-{max(on):.1f} | {min(off):.1f}-{max(off):.1f} | "
                     f"{np.mean(on) / np.mean(off):.2f} |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
