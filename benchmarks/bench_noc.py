"""Interactive effort: clicks needed to reach IoU 0.85 / 0.90 with Gaze2Mask-Net (NoC@85, NoC@90,
capped at 20), with the simulated annotator of `evaluation/interactive.py` (click at the centre of
the largest error region; positive on a miss, negative on a false alarm).

    python benchmarks/bench_noc.py --sequences breakdance cows kite-surf parkour --every 10

One click only (`--max-clicks 1`): IoU@1 is the one-click IoU at the object's deepest point on every
N-th frame, the frame-level measure of docs/benchmarks.md; `--tracker W` swaps in the tracker head of
another weights file (the tracker refines each answer, `session._refine_with_tracker`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from napari_hotspot.data_paths import davis_root
from napari_hotspot.errors import PromptError
from napari_hotspot.evaluation.interactive import number_of_clicks
from napari_hotspot.evaluation.report import read_label_png
from napari_hotspot.models.weights import ModelBundle, load_heads_into
from napari_hotspot.session import HotspotSession
from napari_hotspot.video import open_source

sys.path.insert(0, str(Path(__file__).parent))
from bench_track import add_weights_arg, emit, machine  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", nargs="+", default=["breakdance", "cows", "kite-surf", "parkour"])
    ap.add_argument("--every", type=int, default=10, help="score every N-th frame")
    ap.add_argument("--no-refine", action="store_true",
                    help="Gaze2Mask-Net's mask as is (no tracker refinement, far parts kept): the ablation")
    ap.add_argument("--max-clicks", type=int, default=20, help="clicks per frame at most (1: one-click IoU only)")
    ap.add_argument("--tracker", type=Path, default=None,
                    help="take the tracker head from this weights file (default: the --weights file's)")
    ap.add_argument("--out", type=Path, default=None)
    add_weights_arg(ap)
    args = ap.parse_args(argv)
    root = davis_root()
    models = ModelBundle.load(args.weights)
    notes = [models.seen_in_training_note(args.sequences)]
    if args.tracker is not None:
        tracker_meta = load_heads_into({"tracker": models.tracker}, args.tracker)
        notes.append(replace(models, meta=tracker_meta).seen_in_training_note(args.sequences))
    rows = []
    for seq in args.sequences:
        gts = sorted((root / "Annotations" / "480p" / seq).glob("*.png"))
        with open_source(root / "JPEGImages" / "480p" / seq) as src:
            session = HotspotSession(src, models)
            session.refine_prompts = not args.no_refine
            res = []
            for t in range(0, len(gts), args.every):
                gt = read_label_png(gts[t], ground_truth=True) > 0

                def segment(points, labels, t=t):
                    try:
                        return session.add_prompt(t, 1, points=points, labels=labels).mask
                    except PromptError:  # e.g. no positive click yet, or an empty mask
                        return np.zeros_like(gt)

                res.append(number_of_clicks(segment, gt, max_clicks=args.max_clicks))
                session.reset()
        rows.append({"sequence": seq, "frames": len(res),
                     "NoC@85": float(np.mean([r["NoC@0.85"] for r in res])),
                     "NoC@90": float(np.mean([r["NoC@0.90"] for r in res])),
                     "fail@85": float(np.mean([r["failed@0.85"] for r in res])),
                     "fail@90": float(np.mean([r["failed@0.90"] for r in res])),
                     "IoU@1": float(np.mean([r["ious"][0] for r in res]))})
    cols = ["sequence", "frames", "IoU@1", "NoC@85", "NoC@90", "fail@85", "fail@90"]
    lines = [f"Command: `python benchmarks/bench_noc.py {' '.join(argv or sys.argv[1:])}`  ",
             f"Data: DAVIS-2016 480p, every {args.every}th frame  ", f"Machine: {machine()}", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows + [{"sequence": "**mean**", "frames": sum(r["frames"] for r in rows),
                      **{c: float(np.mean([r[c] for r in rows])) for c in cols[2:]}}]:
        lines.append("| " + " | ".join(str(r[c]) if isinstance(r[c], (str, int)) else
                                       f"{r[c]:.3f}" if c == "IoU@1" else f"{r[c]:.2f}" for c in cols) + " |")
    emit(lines, args.out, note=" ".join(n for n in notes if n) or None)


if __name__ == "__main__":
    main()
