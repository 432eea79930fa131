"""Is a part prompt obeyed? Synthetic videos where the prompted mask is part of a salient whole.

    python benchmarks/bench_part_prompts.py --weights runs/r3/m_split.pt [--no-distractor-memory] [--whole-frame]

Defaults: the 6 validation-split sequences of davis2016-train (``--sequences``), 2 source frames each
(``--clips``), 12 frames per clip; use weights that did not train on them (the split model).

Issue 19, item 4: a mask of a part (a car's wheel, a bag on a person) must be tracked as given, not
grown into the object beside it. Each clip is one real frame (frame 0 or the middle frame of a DAVIS
sequence) moved by a smooth random camera motion (``evaluation.part_prompts``), so the part's true
mask is known on every frame. Three kinds of part:

- ``half``: the object's mask cut by a half-plane through its centroid (25-75% of its area kept);
- ``disk``: the object's mask inside a disk around an interior point (10-50% of its area);
- ``pasted``: a DUTS salient object pasted over the DAVIS object (its centre on an interior point,
  its extent 30-60% of the object's): the prompt is the pasted object, the DAVIS object is the
  salient whole beside it.
- ``copy``: a look-alike, not a part: the DAVIS object with a copy of itself pasted beside it; the
  prompt is the object, "the rest" is the copy. Tracked twice: alone, and with the copy prompted as a
  second object (other objects' masks on the prompted frame are distractors too).

The prompt is the part's frame-0 mask (``add_prompt(mask=...)``); tracking with the session's
defaults (``distractor_memory`` on unless ``--no-distractor-memory``), no adaptation. Reported per kind: J against the part, J against the whole, and "taken":
the share of the rest of the whole (whole minus part) that the tracked mask covers, mean over frames
1..N-1. A tracker that obeys scores a high part J and takes little; one that grows parts into wholes
takes most of the rest. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from napari_hotspot.evaluation.part_prompts import (camera_path, copy_beside, disk_part, half_part, part_scores,
                                                      paste_part, warp_clip)


def make_clips(rng, davis_root: Path, duts_root: Path | None, sequences, clips: int, frames: int):
    from PIL import Image

    from napari_hotspot.data_paths import davis_annotations_dir, davis_frames_dir
    from napari_hotspot.models.training.data import list_stills, load_still

    stills = list_stills(duts_root) if duts_root is not None and duts_root.is_dir() else []
    for seq in sequences:
        names = sorted(p.stem for p in davis_annotations_dir(davis_root, seq).glob("*.png"))
        picks = [names[0], names[len(names) // 2]][:clips] if clips <= 2 else \
            [names[i] for i in np.linspace(0, len(names) - 1, clips).astype(int)]
        for name in picks:
            image = np.asarray(Image.open(davis_frames_dir(davis_root, seq) / f"{name}.jpg").convert("RGB"))
            whole = np.asarray(Image.open(davis_annotations_dir(davis_root, seq) / f"{name}.png")) > 0
            if whole.ndim == 3:
                whole = whole.any(-1)
            if whole.sum() < 400:
                continue
            # kind -> (image, the prompted part, the whole it belongs to: part plus "the rest")
            kinds = {"half": (image, half_part(rng, whole), whole), "disk": (image, disk_part(rng, whole), whole)}
            if stills:
                pasted = paste_part(rng, image, whole, *load_still(duts_root, stills[rng.integers(len(stills))]))
                if pasted is not None:  # the pasted object may stick out of the DAVIS one
                    kinds["pasted"] = (pasted[0], pasted[1], whole | pasted[1])
            beside = copy_beside(image, whole)
            if beside is not None:  # the "part" is the object itself, "the rest" its look-alike copy
                kinds["copy"] = (beside[0], whole, whole | beside[1])
            for kind, (img, part, full) in kinds.items():
                if part is None:
                    continue
                path = camera_path(rng, whole.shape, frames)
                video, (parts, wholes) = warp_clip(img, [part, full], path)
                yield seq, name, kind, video, parts, wholes


def track_clip(models, video, parts, distractor_memory: bool = True, other=None, search_window: bool = True) -> np.ndarray:
    """Object 1 from its frame-0 mask; `other`: a second object's frame-0 mask, prompted as object 2."""
    from napari_hotspot.session import HotspotSession

    session = HotspotSession(video, models)
    session.distractor_memory = distractor_memory
    session.search_window = search_window
    session.add_prompt(0, 1, mask=parts[0])
    if other is not None:
        session.add_prompt(0, 2, mask=other)
    out = np.zeros_like(parts)
    out[0] = parts[0]
    for r in session.propagate([1], start_frame=0, end_frame=len(video) - 1):
        out[r.frame] = r.mask
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--davis-root", type=Path, default=None,
                        help="default: $NAPARI_HOTSPOT_DATA/davis2016-train")
    parser.add_argument("--duts-root", type=Path, default=None,
                        help="default: $NAPARI_HOTSPOT_DATA/duts-tr-subset (the pasted kind needs it)")
    parser.add_argument("--sequences", nargs="+",
                        default=["boat", "dog-agility", "hockey", "mallard-water", "rollerblade", "swing"])
    parser.add_argument("--clips", type=int, default=2, help="source frames per sequence")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="a row per clip")
    parser.add_argument("--no-distractor-memory", dest="distractor_memory", action="store_false",
                        help="track without session.distractor_memory (for measuring it)")
    parser.add_argument("--whole-frame", dest="search_window", action="store_false",
                        help="track on the whole frame, without the search window (for measuring it)")
    args = parser.parse_args(argv)

    from napari_hotspot.models.weights import ModelBundle

    data = Path(os.environ.get("NAPARI_HOTSPOT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    davis = args.davis_root or data / "davis2016-train"
    duts = args.duts_root or data / "duts-tr-subset"
    models = ModelBundle.load(args.weights) if args.weights else ModelBundle.load()
    rng = np.random.default_rng(args.seed)
    rows: dict[str, list[dict]] = {}
    start = time.perf_counter()
    if args.verbose:
        print("| sequence | frame | kind | part J | whole J | taken |\n|---|---|---|---|---|---|")
    for seq, name, kind, video, parts, wholes in make_clips(rng, davis, duts, args.sequences, args.clips, args.frames):
        runs = {kind: None}
        if kind == "copy":  # tracked alone, and with the copy prompted as a second object
            runs = {"copy, alone": None, "copy, both prompted": wholes[0] & ~parts[0]}
        for label, other in runs.items():
            s = part_scores(track_clip(models, video, parts, args.distractor_memory, other, args.search_window), parts, wholes)
            rows.setdefault(label, []).append(s)
            if args.verbose:
                print(f"| {seq} | {name} | {label} | {s['part_j']:.3f} | {s['whole_j']:.3f} | {s['taken']:.3f} |",
                      flush=True)
    print("\n| part kind | clips | J against the part | J against the whole | share of the rest taken |")
    print("|---|---|---|---|---|")
    for kind, ss in rows.items():
        print(f"| {kind} | {len(ss)} | {np.mean([s['part_j'] for s in ss]):.3f} | "
              f"{np.mean([s['whole_j'] for s in ss]):.3f} | {np.mean([s['taken'] for s in ss]):.3f} |")
    print(f"\n{time.perf_counter() - start:.0f} s, weights {args.weights or 'shipped'}, seed {args.seed}, "
          f"distractor memory {'on' if args.distractor_memory else 'off'}, "
          f"search window {'on' if args.search_window else 'off'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
