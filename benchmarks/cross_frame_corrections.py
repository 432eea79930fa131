"""The corrections curve with adaptation, at several shares of cross-frame training triples
(`models.adaptation.CROSS_FRAME_SHARE`): with a prompt and corrections learnt, a triple may take its
template from another learnt frame than its search view.

Runs `evaluation.tracker_eval.correction_curve` (the `eval --corrections` protocol, with adaptation,
the shipped guard and reach) per sequence and share; prints mean J after each correction and the
per-sequence falls.

    python benchmarks/cross_frame_corrections.py --davis-root ../shared/data/davis2016-train \\
        --weights benchmarks/weights/wcs_lite0_split.pt --shares 0 0.5 --corrections 6 \\
        --sequences boat dog-agility hockey mallard-water rollerblade swing --out runs/x/split1.csv
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--davis-root", type=Path, required=True)
    parser.add_argument("--sequences", nargs="+", required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--shares", type=float, nargs="+", default=[0.0, 0.5])
    parser.add_argument("--corrections", type=int, default=6)
    parser.add_argument("--init", default="mask")
    parser.add_argument("--out", type=Path, default=None, help="per-sequence rows (CSV)")
    args = parser.parse_args(argv)

    import napari_hotspot.models.adaptation as adaptation
    from napari_hotspot.evaluation.tracker_eval import correction_curve
    from napari_hotspot.models.weights import ModelBundle

    models = ModelBundle.load(args.weights) if args.weights else ModelBundle.load()
    rows = []
    for share in args.shares:
        adaptation.CROSS_FRAME_SHARE = share
        for seq in args.sequences:
            for r in correction_curve(args.davis_root, seq, args.corrections, args.init, models):
                rows.append({"share": share, "sequence": seq, "corrections": r["corrections"], "J": r["J_mean"]})
            js = [r["J"] for r in rows if r["share"] == share and r["sequence"] == seq]
            print(f"share {share:g} {seq}: " + " ".join(f"{j:.3f}" for j in js), flush=True)
    print("\n| share | " + " | ".join(str(k) for k in range(args.corrections + 1)) + " | falls (> 0.002) |")
    print("|---|" + "---|" * (args.corrections + 2))
    for share in args.shares:
        per_seq = np.array([[r["J"] for r in rows if r["share"] == share and r["sequence"] == s]
                            for s in args.sequences])
        falls = int((np.diff(per_seq, axis=1) < -0.002).sum())
        print(f"| {share:g} | " + " | ".join(f"{m:.3f}" for m in per_seq.mean(axis=0)) + f" | {falls} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
