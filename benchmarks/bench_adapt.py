"""Per-video adaptation: its time, its optimiser steps, and tracking speed and J before and after it.

For each sequence: track from the frame-0 ground-truth mask with the base tracker (`--adapt 0`), then
again with adaptation at the given budget; report the adaptation's wall time (encoding the synthetic
views plus training), steps and ms per step, tracking frames per second before and after (adaptation
excluded), and J of both runs. The encoder-only time of the same run is printed for scale.

    python benchmarks/bench_adapt.py [--sequences breakdance cows] [--budget 10] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_hotspot.data_paths import davis_root
from napari_hotspot.evaluation.report import evaluate_sequence, read_label_png
from napari_hotspot.models.resolution import working_size
from napari_hotspot.models.weights import ModelBundle
from napari_hotspot.pipeline import TRACK_CACHE_BYTES, Prompt, track_video
from napari_hotspot.options import TrackingOptions
from napari_hotspot.session import DEFAULT_ADAPT_SECONDS, HotspotSession
from napari_hotspot.video import open_source

sys.path.insert(0, str(Path(__file__).parent))
from bench_track import add_weights_arg, emit, encoder_only_ms, machine  # noqa: E402


def run_once(models, root: Path, seq: str, budget: float, out: Path) -> dict:
    gt_dir = root / "Annotations" / "480p" / seq
    gt0 = read_label_png(sorted(gt_dir.glob("*.png"))[0], ground_truth=True) > 0
    with open_source(root / "JPEGImages" / "480p" / seq, cache_bytes=TRACK_CACHE_BYTES) as src:
        session = HotspotSession(src, models, options=TrackingOptions(adapt_seconds=budget))
        t0 = time.perf_counter()
        run = track_video(session, [Prompt("mask", 0, mask=gt0)], out)
        wall = time.perf_counter() - t0
        state = session.adaptation_state(1)
    j = evaluate_sequence(gt_dir, out / "masks")[0]["J_mean"]
    steps = int(state["steps"]) if state else 0
    train_s = float(state["seconds"]) if state else 0.0
    return {"fps": run.fps, "J": j, "adapt_s": run.timings["adapt"], "steps": steps,
            "step_ms": 1000 * train_s / steps if steps else float("nan"),
            "views_s": run.timings["adapt"] - train_s, "wall_s": wall}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", nargs="+", default=["breakdance", "cows", "kite-surf", "parkour"])
    ap.add_argument("--budget", type=float, default=DEFAULT_ADAPT_SECONDS, help="adaptation seconds")
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown table here too")
    add_weights_arg(ap)
    args = ap.parse_args(argv)
    root = davis_root()
    models = ModelBundle.load(args.weights)
    size = working_size(480, 854)
    enc_ms = encoder_only_ms(models, size)
    cols = ["sequence", "fps base", "fps adapted", "J base", "J adapted", "adapt s", "views s", "steps", "ms/step"]
    lines = [f"Command: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`  ",
             f"Data: DAVIS-2016 480p ({', '.join(args.sequences)}), frame-0 ground-truth mask, budget {args.budget:g} s  ",
             f"Machine: {machine()}  ",
             f"Encoder alone (one {size[0]}x{size[1]} pass, same run): {enc_ms:.1f} ms", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seq in args.sequences:
            base = run_once(models, root, seq, 0.0, Path(tmp) / f"{seq}_base")
            adapted = run_once(models, root, seq, args.budget, Path(tmp) / f"{seq}_adapted")
            rows.append((base, adapted))
            lines.append(f"| {seq} | {base['fps']:.1f} | {adapted['fps']:.1f} | {base['J']:.3f} | {adapted['J']:.3f} | "
                         f"{adapted['adapt_s']:.1f} | {adapted['views_s']:.1f} | {adapted['steps']} | "
                         f"{adapted['step_ms']:.0f} |")
    mean = {k: float(np.mean([r[i][k] for r in rows])) for i, k in ((0, "fps"), (0, "J"))}
    mean_a = {k: float(np.mean([r[1][k] for r in rows])) for k in ("fps", "J", "adapt_s", "views_s", "steps", "step_ms")}
    lines.append(f"| **mean** | {mean['fps']:.1f} | {mean_a['fps']:.1f} | {mean['J']:.3f} | {mean_a['J']:.3f} | "
                 f"{mean_a['adapt_s']:.1f} | {mean_a['views_s']:.1f} | {mean_a['steps']:.0f} | {mean_a['step_ms']:.0f} |")
    emit(lines, args.out, note=models.seen_in_training_note(args.sequences))


if __name__ == "__main__":
    main()
