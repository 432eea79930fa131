"""Would a steadier hotspot stay on the object? An offline study on stored `napari-hotspot eval` outputs
(run with `--hotspot-smoothing 0`; the session's default smooths since the thirtieth session).

Each tracked hotspot is replaced causally by one smoothed in the object's own frame of reference: its
offset from the predicted mask's centroid is smoothed exponentially (new offset = alpha x this frame's +
(1 - alpha) x the previous smoothed one), and the point is snapped into the predicted mask's core
(`tracking.mask_core`) where it leaves it. Alpha 1 is the tracked hotspot itself. Per sequence and mean:
the temporal jitter (`hs_jitter_px`: mean second difference, frame pixels) and the share of frames whose
hotspot lies on the ground-truth mask. The tracker never sees the smoothed point (an output filter).

    python benchmarks/hotspot_smoothing_study.py --davis-root ../shared/data/davis2016-train \\
        runs/win28/s1_side/mask runs/win28/s2_side/mask [--alphas 1 0.7 0.5 0.3]

Each RUN is an eval's --out folder (its predictions/<sequence>/ label PNGs and hotspots.csv).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from napari_hotspot.data_paths import davis_annotations_dir
from napari_hotspot.evaluation.hotspot import point_inside, temporal_jitter
from napari_hotspot.evaluation.report import read_label_png
from napari_hotspot.evaluation.tracker_eval import read_hotspots
from napari_hotspot.mask_geometry import steady_hotspot
from napari_hotspot.models.tracking import mask_core


def smoothed_track(pred_dir: Path, n_frames: int, alpha: float, object_id: int = 1) -> list:
    """The smoothed hotspot per frame ((x, y) or None) of one predicted sequence."""
    hotspots = read_hotspots(pred_dir / "hotspots.csv").get(object_id, {})
    track, offset = [], None
    for t in range(n_frames):
        mask = read_label_png(pred_dir / f"{t:05d}.png", ground_truth=False) == object_id
        # the session's own filter (`TrackingOptions.hotspot_smoothing` = 1 - alpha), at frame size here
        point, offset = steady_hotspot(hotspots.get(t), mask, mask_core(mask), offset, 1.0 - alpha)
        track.append(point)
    return track


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="eval --out folders")
    ap.add_argument("--davis-root", type=Path, required=True)
    ap.add_argument("--alphas", nargs="+", type=float, default=[1.0, 0.7, 0.5, 0.3])
    args = ap.parse_args(argv)
    rows = {a: [] for a in args.alphas}
    print("| sequence | " + " | ".join(f"alpha {a:g}: jitter px / inside" for a in args.alphas) + " |")
    print("|---" * (len(args.alphas) + 1) + "|")
    for run in args.runs:
        for pred_dir in sorted(p for p in (run / "predictions").iterdir() if p.is_dir()):
            gt_files = sorted(davis_annotations_dir(args.davis_root, pred_dir.name).glob("*.png"))
            truth = [read_label_png(p, ground_truth=True) > 0 for p in gt_files]
            cells = []
            for a in args.alphas:
                track = smoothed_track(pred_dir, len(truth), a)
                on = [point_inside(g, p) for p, g in zip(track, truth) if p is not None]
                pts = np.array([(np.nan, np.nan) if p is None else p for p in track])
                jitter, inside = temporal_jitter(pts), float(np.mean(on)) if on else float("nan")
                rows[a].append((jitter, inside))
                cells.append(f"{jitter:.1f} / {inside:.3f}")
            print(f"| {pred_dir.name} | " + " | ".join(cells) + " |", flush=True)
    print("| **mean (lowest inside)** | " + " | ".join(
        f"{np.nanmean([r[0] for r in rows[a]]):.2f} / {np.nanmean([r[1] for r in rows[a]]):.4f} "
        f"({np.nanmin([r[1] for r in rows[a]]):.3f})" for a in args.alphas) + " |")


if __name__ == "__main__":
    main()
