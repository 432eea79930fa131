"""Signals an adaptation guard could use, beside the J each choice gives, on DAVIS sequences.

Per sequence and prompt (frame 0, as `napari-hotspot eval` simulates it): the session completes the
prompt and adapts (default budget, guard off), then records, without ground truth:
- `rt_self`: the shipped guard's round trip: the adapted copy tracks the anchor mask K frames away and
  back (the way back ends on the frame it learnt); `rt_base` the same with the base tracker;
- `rt_ref`: the adapted copy tracks K frames away and the *base* tracker brings its far answer back
  (a referee that never learnt the anchor frame), against `rt_base`, for K = 10 and 20;
- `agree`: mean IoU of the adapted and the base tracker's masks over the first K tracked frames;
and then tracks the video forward with the adapted copy on every frame (`J_adapted`), on the frames
nearer than N to frame 0 only (`J_reach<N>`, `--reach`: `HotspotSession.adapt_reach`) and with the
base tracker (`J_base`); J over frames 1..n-2, DAVIS's scored frames. Prints one CSV row per
sequence; choose a rule on the validation split of davis2016-train, never on the test sequences.

    python benchmarks/guard_signals.py --davis-root ../shared/data/davis2016-train \\
        --weights benchmarks/weights/wcs_lite0_split2.pt --init mask --reach 10 20 40 \\
        --sequences bear car-turn flamingo lucia paragliding stroller --out runs/guard/split2_mask.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _iou(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def _round_trip(session, forward, back, object_id: int, frame: int, k: int) -> tuple[float, list]:
    """IoU of the anchor mask with what `back` brings to the anchor's frame from `forward`'s answer K
    frames on (the session's own round trip, `HotspotSession._round_trip_iou`); also `forward`'s masks
    (work size) on the way out."""
    out: list = []
    return session._round_trip_iou(forward, object_id, frame, k, back_tracker=back, outward=out), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--davis-root", type=Path, required=True)
    parser.add_argument("--sequences", nargs="+", required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--init", choices=("mask", "click"), default="mask")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reach", type=int, nargs="*", default=[],
                        help="also score the adapted copy used on the first N frames only (session.adapt_reach)")
    args = parser.parse_args(argv)

    from napari_hotspot.data_paths import davis_annotations_dir, davis_frames_dir
    from napari_hotspot.evaluation.davis import jaccard
    from napari_hotspot.evaluation.tracker_eval import prompt_from_ground_truth
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.options import TrackingOptions
    from napari_hotspot.session import HotspotSession

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_corrective_clicks import _load

    models = ModelBundle.load(args.weights) if args.weights else ModelBundle.load()
    base = models.tracker
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fields = ["sequence", "init", "J_base", "J_adapted", "steps", "rt_self", "rt_base", "rt_ref10", "rt_ref20",
              "rt_base20", "agree10", "agree20", "seconds"] + [f"J_reach{n}" for n in args.reach]
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fields)
        writer.writeheader()
        for seq in args.sequences:
            t0 = time.perf_counter()
            video, gt = _load(davis_frames_dir(args.davis_root, seq), davis_annotations_dir(args.davis_root, seq), 10**6)
            n = len(video)
            s = HotspotSession(video, models, options=TrackingOptions())
            s.guard_adaptation = False
            prompt_from_ground_truth(gt[0], args.init).apply(s)
            s.preflight()
            verdict = s.adaptation_verdict(1)
            adapted = s._adapters[1].model
            row = {"sequence": seq, "init": args.init, "steps": s._adapters[1].steps,
                   "rt_self": verdict.adapted_iou, "rt_base": verdict.base_iou}
            for k in (10, 20):
                row[f"rt_ref{k}"], fwd_a = _round_trip(s, adapted, base, 1, 0, k)
                rt_b, fwd_b = _round_trip(s, base, base, 1, 0, k)
                if k == 20:
                    row["rt_base20"] = rt_b
                row[f"agree{k}"] = float(np.mean([_iou(x, y) for x, y in zip(fwd_a, fwd_b)]))
            scored = range(1, n - 1)
            s.adapt_reach = None  # the adapted copy on every frame
            res = {r.frame: r for r in s.propagate([1], start_frame=0, end_frame=n - 1)}
            row["J_adapted"] = float(np.mean([jaccard(res[t].mask, gt[t]) for t in scored]))
            for reach in args.reach:  # the adapted copy on frames nearer than `reach` to frame 0 only
                s.adapt_reach = reach
                res = {r.frame: r for r in s.propagate([1], start_frame=0, end_frame=n - 1)}
                row[f"J_reach{reach}"] = float(np.mean([jaccard(res[t].mask, gt[t]) for t in scored]))
            s.reset_adaptation(1)  # the base tracker; preflight off, or it would adapt again
            res = {r.frame: r for r in s.propagate([1], start_frame=0, end_frame=n - 1, preflight=False)}
            row["J_base"] = float(np.mean([jaccard(res[t].mask, gt[t]) for t in scored]))
            row["seconds"] = time.perf_counter() - t0
            row = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            writer.writerow(row)
            fh.flush()
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
