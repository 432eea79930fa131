"""Learning from confident tracked frames (OnAVOS-like, two passes), measured against the default
adaptation, on DAVIS sequences with a frame-0 ground-truth mask.

Per sequence: the default session (completion, adaptation with the guard) tracks the whole video; the
K most confident tracked frames (frame >= 10, at least max(10, n / (K + 1)) frames apart) join the
object's adaptation with their tracked masks, STEPS more optimiser steps run, the guard judges again,
and the video is tracked a second time. Prints J of both passes per sequence and the mean.

    python benchmarks/ablate_online_frames.py --davis-root ../shared/data/davis2016-train \\
        --weights runs/r3/m_split.pt --frames 3 --steps 20 \\
        --sequences boat dog-agility hockey mallard-water rollerblade swing
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--davis-root", type=Path, required=True)
    parser.add_argument("--sequences", nargs="+", required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=3, help="confident frames to learn (K)")
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps after adding them")
    args = parser.parse_args(argv)

    from napari_hotspot.data_paths import davis_annotations_dir, davis_frames_dir
    from napari_hotspot.evaluation.davis import jaccard
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.options import TrackingOptions
    from napari_hotspot.session import HotspotSession

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_corrective_clicks import _load

    models = ModelBundle.load(args.weights) if args.weights else ModelBundle.load()
    rows = []
    for seq in args.sequences:
        video, gt = _load(davis_frames_dir(args.davis_root, seq), davis_annotations_dir(args.davis_root, seq), 10**6)
        n = len(video)
        s = HotspotSession(video, models, options=TrackingOptions())
        s.add_prompt(0, 1, mask=gt[0])
        t0 = time.perf_counter()
        s.preflight()
        adapt_s = time.perf_counter() - t0
        first = {r.frame: r for r in s.propagate([1], start_frame=0, end_frame=n - 1)}
        j1 = float(np.mean([jaccard(first[t].mask, gt[t]) for t in range(1, n)]))
        picked: list[int] = []
        for t in sorted(first, key=lambda t: -first[t].confidence):
            if t >= 10 and all(abs(t - p) >= max(10, n // (args.frames + 1)) for p in picked):
                picked.append(t)
            if len(picked) == args.frames:
                break
        adapter = s._adapters.get(1)
        h, w = s.work_size
        t0 = time.perf_counter()
        for t in picked:
            img = cv2.resize(video[t], (w, h), interpolation=cv2.INTER_AREA)
            mask = cv2.resize(first[t].mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
            hot = s._to_work(*first[t].hotspot) if first[t].hotspot is not None else None
            adapter.add_frame(models.encoder, img, mask, hot)
        adapter.fit(seconds=1e9, max_steps=args.steps)
        online_s = time.perf_counter() - t0
        verdict = s.adaptation_verdict(1)
        second = {r.frame: r for r in s.propagate([1], start_frame=0, end_frame=n - 1)}
        j2 = float(np.mean([jaccard(second[t].mask, gt[t]) for t in range(1, n)]))
        rows.append((j1, j2))
        print(f"| {seq} | {n} | {j1:.3f} | {j2:.3f} | {picked} | {verdict.kept if verdict else None} | "
              f"{adapt_s:.1f} | {online_s:.1f} |", flush=True)
    a = np.array(rows)
    print(f"| mean | | {a[:, 0].mean():.4f} | {a[:, 1].mean():.4f} | | | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
