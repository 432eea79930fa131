"""Self-training across frames: the adapted copy learns the tracker's own masks of later frames.

The study behind issue 21's "learning from more than one frame", after `adapt_oracle.py` showed
that learning true masks of later frames *with cross-frame triples* (frame 0's view as the template,
the later frame as the search) gains more than views of single frames. Here the later frames' masks
are the tracker's own (no ground truth): per sequence,

1. `--adapt 0` tracks the video from the frame-0 mask (J, adapt 0);
2. the shipped default (10 s / 40 steps on frame 0, the guard, reach 40) tracks it (J, default) and
   its masks are kept;
3. a fresh copy learns frame 0 and K of those tracked frames (the most confident frame of each of K
   equal stretches after frame 0), half its triples cross-frame, for STEPS steps, and tracks every
   frame (guard off, no reach limit: J, self-trained); "guarded" is the same with the shipped guard's
   verdict (round trips from frame 0) choosing between it and `--adapt 0`.

    python benchmarks/adapt_selftrain.py --davis-root ../shared/data/davis2016-train \\
        --weights benchmarks/weights/wcs_lite0_split.pt --frames 4 --steps 40 80 \\
        --sequences boat dog-agility hockey mallard-water rollerblade swing --out runs/x/split1.md
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np


def confident_frames(confidence: dict[int, float], n: int, k: int) -> list[int]:
    """The most confident frame of each of k equal stretches of 1..n-1."""
    edges = np.linspace(1, n, k + 1).astype(int)
    picked = []
    for a, b in zip(edges[:-1], edges[1:]):
        inside = [t for t in range(a, b) if t in confidence]
        if inside:
            picked.append(max(inside, key=lambda t: confidence[t]))
    return picked


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    from adapt_oracle import cross_frame_adapter, finish_table, study_inputs, study_parser

    parser = study_parser(__doc__, 4, "tracked frames learnt (K)", [40, 80], "training steps")
    parser.add_argument("--within", action="store_true", help="single-frame triples only (no cross-frame)")
    args = parser.parse_args(argv)

    from napari_hotspot.evaluation.davis import evaluated_frames, jaccard
    from napari_hotspot.options import TrackingOptions
    from napari_hotspot.session import HotspotSession

    models, sequences = study_inputs(args)
    head = ("| sequence | J, adapt 0 | J, default | "
            + " | ".join(f"J, self-trained {s} steps | guarded (kept)" for s in args.steps) + " | train s | frames learnt |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    print("\n".join(lines), flush=True)
    rows = []
    for seq, video, gt in sequences:
        n = len(video)
        scored = range(n)[evaluated_frames(n)]

        def run(session):
            results = {r.frame: r for r in session.propagate([1], start_frame=0, end_frame=n - 1)}
            return results, float(np.mean([jaccard(results[t].mask, gt[t]) for t in scored]))

        row, cells, train_s = [], [], []
        for options in (TrackingOptions(adapt_seconds=0.0), TrackingOptions()):
            s = HotspotSession(video, models, options=options)
            s.add_prompt(0, 1, mask=gt[0])
            tracked, j = run(s)
            row.append(j)
        j0 = row[0]
        cells += [f"{j:.3f}" for j in row]
        picked = confident_frames({t: r.confidence for t, r in tracked.items() if t > 0 and r.mask.any()},
                                  n, args.frames)
        for steps in args.steps:
            s = HotspotSession(video, models, options=TrackingOptions(adapt_seconds=0.0))
            s.add_prompt(0, 1, mask=gt[0])
            t0 = time.perf_counter()
            s.add_adaptation_frames(1)
            adapter = s._adapters[1]
            adapter.cross_frame = 0.0  # as measured: the script's own cross-frame triples (adapt_oracle.py)
            if not args.within:
                cross_frame_adapter(adapter)
            h, w = s.work_size
            for t in picked:
                img = cv2.resize(video[t], (w, h), interpolation=cv2.INTER_AREA)
                mask = cv2.resize(tracked[t].mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
                hot = s._to_work(*tracked[t].hotspot) if tracked[t].hotspot is not None else None
                adapter.add_frame(models.encoder, img, mask, hot)
            adapter.fit(seconds=1e9, max_steps=steps)
            verdict = s.adaptation_verdict(1)
            train_s.append(time.perf_counter() - t0)
            s.guard_adaptation, s.adapt_reach = False, None
            _, j = run(s)
            guarded = j if verdict.kept else j0
            row += [j, guarded]
            cells += [f"{j:.3f}", f"{guarded:.3f} ({'yes' if verdict.kept else 'no'})"]
        rows.append(row)
        line = f"| {seq} | " + " | ".join(cells) + " | " + " / ".join(f"{t:.0f}" for t in train_s) + f" | {picked} |"
        lines.append(line)
        print(line, flush=True)
    finish_table(lines, rows, 0, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
