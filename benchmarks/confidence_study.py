"""Does the tracker's per-frame evidence find the frames it got wrong? (issue 23)

Tracks DAVIS sequences from a first-frame prompt (no adaptation) and writes, per frame, the tracker's
own evidence (`tracking.step_evidence`), its confidence and the IoU with the ground truth; then scores
each evidence and the confidence as a detector of bad frames: AUROC for IoU < 0.5 and for the bottom
10% by IoU (pooled over sequences), and how often the least-confident frame of a sequence (the dock's
"low ▶") has an IoU below that sequence's mean.

    python benchmarks/confidence_study.py --davis-root ../shared/data/davis2016-train \
        --sequences boat dog-agility ... --weights runs/davis_train/m_split.pt --out runs/conf/split
    python benchmarks/confidence_study.py --from-csv runs/conf/split/frames.csv   # scores only
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

FEATURES = ("certainty", "agree_anchor", "agree_prev", "moved", "bg_like", "fg_sim", "heat_peak",
            "area_vs_anchor", "area_vs_prev")


def auroc(score_bad: np.ndarray, bad: np.ndarray) -> float:
    """Probability that a bad frame scores higher than a good one (ties count half): Mann-Whitney U."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(bad.sum()), int((~bad).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score_bad)  # average ranks over ties
    return float((ranks[bad].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def track_rows(davis_root: Path, sequences, weights, inits, long_side: int | None) -> list[dict]:
    import torch

    from napari_hotspot.data_paths import davis_annotations_dir, davis_frames_dir
    from napari_hotspot.evaluation.tracker_eval import prompt_from_ground_truth
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.options import TrackingOptions
    from napari_hotspot.evaluation.report import read_label_png
    from napari_hotspot.session import HotspotSession
    from napari_hotspot.video import open_source

    torch.set_num_threads(1)
    models = ModelBundle.load(weights) if weights else ModelBundle.load()
    options = TrackingOptions(adapt_seconds=0.0).with_(long_side=long_side)
    rows = []
    for init in inits:
        for seq in sequences:
            gt = [read_label_png(p, ground_truth=True) > 0
                  for p in sorted(davis_annotations_dir(davis_root, seq).glob("*.png"))]
            with open_source(davis_frames_dir(davis_root, seq)) as source:
                # The command line's preflight (click and box masks completed) without adaptation.
                session = HotspotSession(source, models, options=options)
                session.collect_evidence = True
                prompt_from_ground_truth(gt[0], init, 0, 1).apply(session)
                for r in session.propagate(direction="forward"):
                    g = gt[r.frame]
                    union = (g | r.mask).sum()
                    iou = float((g & r.mask).sum() / union) if union else 1.0
                    rows.append({"init": init, "sequence": seq, "frame": r.frame, "iou": round(iou, 4),
                                 "confidence": round(r.confidence, 4),
                                 **{k: round(float(v), 4) for k, v in r.evidence.items()}})
            print(f"{init} {seq}: {sum(1 for x in rows if x['sequence'] == seq and x['init'] == init)} frames",
                  file=sys.stderr)
    return rows


def score(rows: list[dict], columns) -> dict:
    iou = np.array([r["iou"] for r in rows])
    bad50 = iou < 0.5
    bad10 = iou <= np.quantile(iou, 0.1)
    out = {"frames": len(rows), "bad50": int(bad50.sum())}
    for c in columns:
        x = np.array([float(r[c]) for r in rows])
        a50 = auroc(-x, bad50)  # a low value should mean a bad frame...
        a10 = auroc(-x, bad10)
        out[c] = {"auroc_iou<0.5": round(a50, 3), "auroc_bottom10%": round(a10, 3)}
    return out


def low_frame_hits(rows: list[dict], column: str) -> float:
    """Share of (init, sequence) runs whose least-`column` frame has an IoU below the run's mean."""
    runs = {}
    for r in rows:
        runs.setdefault((r["init"], r["sequence"]), []).append(r)
    hits = [min(rs, key=lambda r: float(r[column]))["iou"] < np.mean([r["iou"] for r in rs]) for rs in runs.values()]
    return float(np.mean(hits))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--davis-root", type=Path)
    ap.add_argument("--sequences", nargs="*")
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--inits", nargs="*", default=["mask", "click"])
    ap.add_argument("--long-side", type=int, default=None)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--from-csv", type=Path)
    args = ap.parse_args(argv)
    if args.from_csv:
        with open(args.from_csv, newline="") as fh:
            rows = [{k: (v if k in ("init", "sequence") else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]
    else:
        rows = track_rows(args.davis_root, args.sequences, args.weights, args.inits, args.long_side)
        args.out.mkdir(parents=True, exist_ok=True)
        with open(args.out / "frames.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    cols = [c for c in ("confidence", *FEATURES) if c in rows[0]]
    result = score(rows, cols)
    result["low_frame_below_mean"] = {c: round(low_frame_hits(rows, c), 3) for c in cols}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
