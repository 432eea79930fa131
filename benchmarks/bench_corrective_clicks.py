"""Corrective clicks on DAVIS: mean J after each simulated click, with the mask refined (the dock's way
since issue 23) or replaced by the click's prompt answer (the dock's way before).

    python benchmarks/bench_corrective_clicks.py --sequences blackswan dog kite-surf --frames 30 --clicks 3

Protocol per sequence (DAVIS-2016 480p dev, ``$NAPARI_HOTSPOT_DATA``): frame 0's ground-truth mask is
the first keyframe, the object is tracked forward over the first ``--frames`` frames. Then, up to
``--clicks`` times: on the frame with the lowest J (keyframes excluded), one click at the centre of
the largest error region (``evaluation.interactive.next_click``: positive in a miss, negative in a
false alarm); the frame becomes a keyframe with the corrected mask; re-propagation runs both ways from
it up to the neighbouring keyframes (the dock's Re-propagate). Mean J over all frames after each step.

"monotone" (the dock's way since the fourteenth session): ``corrections.refine_mask`` on the frame's
mask, and each re-propagated frame's mask combined with the one it had
(``corrections.combine_repropagated``: a negative click only removes, a positive one only adds).
"refine": the same click, and the re-propagated answers replace the masks (the dock before). "replace": the
click alone as a prompt (``add_prompt(points=...)``), whose answer replaces the mask; a negative
click alone is refused there, so that step changes nothing (the dock's behaviour before).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np


def _load(seq_dir: Path, ann_dir: Path, frames: int):
    from PIL import Image

    from napari_hotspot.video import open_source

    source = open_source(seq_dir)
    n = min(frames, source.num_frames)
    names = list(source.frame_names)[:n]
    gt = np.stack([np.asarray(Image.open(ann_dir / f"{name}.png")) > 0 for name in names])
    video = np.stack([source.get_frame(i) for i in range(n)])
    return video, gt


def run_sequence(video, gt, models, clicks: int, mode: str) -> list[float]:
    from napari_hotspot.corrections import click_polarity, combine_repropagated, refine_mask
    from napari_hotspot.errors import PromptError
    from napari_hotspot.evaluation.davis import jaccard
    from napari_hotspot.evaluation.interactive import next_click
    from napari_hotspot.session import HotspotSession

    n = len(video)
    session = HotspotSession(video, models)
    session.add_prompt(0, 1, mask=gt[0])
    masks = np.zeros_like(gt)
    masks[0] = gt[0]
    for r in session.propagate([1], start_frame=0, end_frame=n - 1):
        masks[r.frame] = r.mask
    keys = {0}
    curve = [float(np.mean([jaccard(masks[t], gt[t]) for t in range(n)]))]
    for _ in range(clicks):
        js = [jaccard(masks[t], gt[t]) if t not in keys else 2.0 for t in range(n)]
        w = int(np.argmin(js))
        click = next_click(masks[w], gt[w])
        if js[w] > 1.0 or click is None:
            curve.append(curve[-1])
            continue
        x, y, positive = click
        try:
            if mode in ("refine", "nearest", "monotone", "monotone-nearest"):
                corrected = refine_mask(session, w, masks[w], [(x, y, 1 if positive else 0)])
                session.add_prompt(w, 1, mask=corrected, source="correction")
            else:
                corrected = session.add_prompt(w, 1, points=[(x, y)], labels=[1 if positive else 0]).mask
        except PromptError:  # "replace" with a negative click alone: refused, nothing changes
            curve.append(curve[-1])
            continue
        masks[w] = corrected
        keys.add(w)
        if mode in ("nearest", "monotone-nearest"):  # each frame keeps the answer of its nearest keyframe
            from napari_hotspot.corrections import repropagation_ends
            ends = repropagation_ends(sorted(keys), w, n)
        else:
            ends = (n - 1, 0)
        for direction, end in zip(("forward", "backward"), ends):
            if end == w:
                continue
            for r in session.propagate([1], start_frame=w, end_frame=end, direction=direction, stop_at_keyframe=True):
                if r.frame not in keys:
                    if mode in ("monotone", "monotone-nearest"):  # a negative click only removes, a positive one only adds
                        polarity = click_polarity([(x, y, 1 if positive else 0)])
                        masks[r.frame] = combine_repropagated(masks[r.frame], r.mask, polarity)
                    else:
                        masks[r.frame] = r.mask
        curve.append(float(np.mean([jaccard(masks[t], gt[t]) for t in range(n)])))
    return curve


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequences", nargs="+", default=["blackswan", "dog", "kite-surf"])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["monotone", "refine"],
                        help="monotone: refine, re-propagate up to the neighbouring keyframes, a negative click "
                             "only removing and a positive one only adding (the dock's way); refine: the same, "
                             "the new answers replacing the masks; nearest: refine, and re-propagate only over "
                             "the frames nearer to the corrected frame than to any other keyframe; "
                             "monotone-nearest: both; replace: the click as a prompt")
    parser.add_argument("--davis-root", type=Path, default=None, help="default: $NAPARI_HOTSPOT_DATA/davis2016-dev")
    parser.add_argument("--weights", type=Path, default=None)
    args = parser.parse_args(argv)

    from napari_hotspot.data_paths import davis_annotations_dir, davis_frames_dir
    from napari_hotspot.models.weights import ModelBundle

    data = Path(os.environ.get("NAPARI_HOTSPOT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    root = args.davis_root or data / "davis2016-dev"
    models = ModelBundle.load(args.weights) if args.weights else ModelBundle.load()
    print(f"| sequence | mode | mean J after 0..{args.clicks} clicks | never falls |")
    print("|---|---|---|---|")
    totals: dict[str, list[list[float]]] = {m: [] for m in args.modes}
    start = time.perf_counter()
    for seq in args.sequences:
        video, gt = _load(davis_frames_dir(root, seq), davis_annotations_dir(root, seq), args.frames)
        for mode in args.modes:
            curve = run_sequence(video, gt, models, args.clicks, mode)
            totals[mode].append(curve)
            falls = all(b >= a - 1e-9 for a, b in zip(curve, curve[1:]))
            print(f"| {seq} | {mode} | {' -> '.join(f'{v:.3f}' for v in curve)} | {'yes' if falls else 'NO'} |",
                  flush=True)
    for mode, curves in totals.items():
        mean = np.mean(np.array(curves), axis=0)
        rises = all(b >= a - 1e-9 for a, b in zip(mean, mean[1:]))
        print(f"| mean | {mode} | {' -> '.join(f'{v:.4f}' for v in mean)} | "
              f"mean {'never falls' if rises else 'FALLS'}; "
              f"{sum(all(b >= a - 1e-9 for a, b in zip(c, c[1:])) for c in curves)}/{len(curves)} sequences never fall |")
    print(f"\n{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
