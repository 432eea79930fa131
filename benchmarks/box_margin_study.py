"""Box prompts drawn by hand: the answer's IoU on single frames for several `session.BOX_MARGIN` values,
with the true box and with boxes as people draw them (each side moved by up to --jitter of the box's
size, in or out, seeded), so that the margin is chosen for users, not only for the benchmark's tight box.

    python benchmarks/box_margin_study.py --davis-root ../shared/data/davis2016-train \\
        --sequences boat dog-agility hockey mallard-water rollerblade swing \\
        --weights benchmarks/weights/wcs_lite0_split.pt --margins 0 0.01 0.02 --every 10

Per frame (every N-th of each sequence): the true box of its ground-truth mask, then `--draws` jittered
boxes; each is a prompt on a fresh object of one session (refinement as shipped, no tracking), scored
by IoU against the ground truth (a prompt the session refuses counts as an empty answer, IoU 0). Prints mean IoU per margin and box kind, and the share of frames
where the answer covers less than 90% of the object (a box that cut the object, answered inside it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def jittered(box, rng, jitter: float, shape) -> tuple[float, float, float, float]:
    """`box` with each side moved by a uniform share in [-jitter, +jitter] of the box's width/height."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    dx0, dy0, dx1, dy1 = rng.uniform(-jitter, jitter, 4)
    H, W = shape
    nx0, nx1 = np.clip([x0 - dx0 * w, x1 + dx1 * w], 0, W - 1)
    ny0, ny1 = np.clip([y0 - dy0 * h, y1 + dy1 * h], 0, H - 1)
    return float(nx0), float(ny0), float(max(nx1, nx0 + 2)), float(max(ny1, ny0 + 2))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--davis-root", type=Path, required=True)
    ap.add_argument("--sequences", nargs="+", required=True)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--margins", nargs="+", type=float, default=[0.0, 0.02])
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--jitter", type=float, default=0.1, help="largest move of a side, as a share of the box size")
    ap.add_argument("--draws", type=int, default=2, help="jittered boxes per frame")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import napari_hotspot.session as session_module
    from napari_hotspot.models.weights import ModelBundle

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_track import machine

    models = ModelBundle.load(args.weights)
    shipped_margin = session_module.BOX_MARGIN
    try:
        scores = _score(args, session_module, models)
    finally:
        session_module.BOX_MARGIN = shipped_margin  # the study sets it per prompt; callers get it back
    print(f"\nCommand: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`  ")
    print(f"Machine: {machine()}\n")
    print("| box | margin | frames | mean IoU | answers covering < 90% of the object |")
    print("|---|---|---|---|---|")
    for kind, d in scores.items():
        for margin, v in d.items():
            ious, cov = np.array([s[0] for s in v]), np.array([s[1] for s in v])
            print(f"| {kind} | {margin:g} | {len(v)} | {ious.mean():.3f} | {100 * (cov < 0.9).mean():.0f}% |")
    return 0


def _score(args, session_module, models) -> dict[str, dict[float, list[tuple[float, float]]]]:
    """kind ("true" / "drawn") -> margin -> (IoU, covered share of the object) per prompt."""
    from napari_hotspot.data_paths import davis_annotations_dir, davis_frames_dir
    from napari_hotspot.errors import PromptError
    from napari_hotspot.evaluation.report import read_label_png
    from napari_hotspot.video import open_source

    scores: dict[str, dict[float, list[tuple[float, float]]]] = {}
    for seq in args.sequences:
        gts = sorted(davis_annotations_dir(args.davis_root, seq).glob("*.png"))
        with open_source(davis_frames_dir(args.davis_root, seq)) as src:
            session = session_module.HotspotSession(src, models)
            rng = np.random.default_rng(args.seed)
            next_id = 1
            for t in range(0, len(gts), args.every):
                gt = read_label_png(gts[t], ground_truth=True) > 0
                if not gt.any():
                    continue
                ys, xs = np.nonzero(gt)
                true_box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
                boxes = [("true", true_box)] + [("drawn", jittered(true_box, rng, args.jitter, gt.shape))
                                                 for _ in range(args.draws)]
                for kind, box in boxes:
                    for margin in args.margins:
                        session_module.BOX_MARGIN = margin
                        try:
                            mask = session.add_prompt(t, next_id, box=box).mask
                        except PromptError:
                            mask = np.zeros_like(gt)
                        session.reset_object(next_id)
                        next_id += 1
                        inter = float((mask & gt).sum())
                        iou = inter / float((mask | gt).sum())
                        scores.setdefault(kind, {}).setdefault(margin, []).append((iou, inter / float(gt.sum())))
        print(f"{seq} (running means over the sequences so far): "
              + "; ".join(f"{k} " + " ".join(f"{m:g}:{np.mean([s[0] for s in v]):.3f}" for m, v in d.items())
                          for k, d in scores.items()), flush=True)
    return scores


if __name__ == "__main__":
    sys.exit(main())
