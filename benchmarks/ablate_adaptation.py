"""Adaptation ablation at fixed optimiser-step counts (so the result does not depend on machine speed).

For each sequence: prompt frame 0 (ground-truth mask, or one click at its deepest point), adapt the
object's tracker for exactly N steps, fine-tuning either the late decoder parts (`ADAPTED_PARTS`, the
shipped choice) or the whole tracker head, then track the video and score J.

    python benchmarks/ablate_adaptation.py --steps 20 40 80 --parts late all [--init mask] [--out FILE.md]
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
from napari_hotspot.evaluation.tracker_eval import prompt_from_ground_truth
from napari_hotspot.models.adaptation import ADAPTED_PARTS
from napari_hotspot.models.weights import ModelBundle
from napari_hotspot.options import TrackingOptions
from napari_hotspot.pipeline import TRACK_CACHE_BYTES, track_video
from napari_hotspot.session import HotspotSession
from napari_hotspot.video import open_source

sys.path.insert(0, str(Path(__file__).parent))
from bench_track import add_weights_arg, emit, machine  # noqa: E402

PARTS = {"late": ADAPTED_PARTS, "all": None}


def run(models, root: Path, seq: str, init: str, steps: int, parts, out: Path) -> tuple[float, float]:
    gt_dir = root / "Annotations" / "480p" / seq
    gt0 = read_label_png(sorted(gt_dir.glob("*.png"))[0], ground_truth=True) > 0
    prompt = prompt_from_ground_truth(gt0, init, 0, 1)
    with open_source(root / "JPEGImages" / "480p" / seq, cache_bytes=TRACK_CACHE_BYTES) as src:
        # The CLI's options without a budget: a click's mask is completed as `track` completes it, and
        # the adaptation is the fixed-step one below.
        session = HotspotSession(src, models, options=TrackingOptions(adapt_seconds=0.0))
        session.adapt_parts = parts
        prompt.apply(session)
        t0 = time.perf_counter()
        if steps:
            session.adapt(1, seconds=1e9, max_steps=steps)
        adapt_s = time.perf_counter() - t0
        track_video(session, [prompt], out)  # re-applies the same prompt, keeps the adapted copy
    return evaluate_sequence(gt_dir, out / "masks")[0]["J_mean"], adapt_s


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", nargs="+", default=["breakdance", "cows", "kite-surf", "parkour"])
    ap.add_argument("--steps", nargs="+", type=int, default=[20, 40, 80])
    ap.add_argument("--parts", nargs="+", choices=sorted(PARTS), default=["late", "all"])
    ap.add_argument("--init", choices=["mask", "click"], default="mask")
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown table here too")
    add_weights_arg(ap)
    args = ap.parse_args(argv)
    root, models = davis_root(), ModelBundle.load(args.weights)
    lines = [f"Command: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`  ",
             f"Data: DAVIS-2016 480p ({', '.join(args.sequences)}), prompt: {args.init} on frame 0  ",
             f"Machine: {machine()}", "",
             "| parts | steps | " + " | ".join(args.sequences) + " | mean J | adapt s (mean) |",
             "|" + "---|" * (len(args.sequences) + 4)]
    with tempfile.TemporaryDirectory() as tmp:
        for parts in args.parts:
            for steps in args.steps:
                res = [run(models, root, seq, args.init, steps, PARTS[parts], Path(tmp) / f"{parts}{steps}{seq}")
                       for seq in args.sequences]
                js = [r[0] for r in res]
                lines.append(f"| {parts} | {steps} | " + " | ".join(f"{j:.3f}" for j in js)
                             + f" | {np.mean(js):.3f} | {np.mean([r[1] for r in res]):.1f} |")
                print(lines[-1], flush=True)
    emit(lines, args.out, note=models.seen_in_training_note(args.sequences))


if __name__ == "__main__":
    main()
