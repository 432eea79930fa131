"""Looking for an object again after the user marked it absent (`TrackingOptions.reacquire`), scored on
cut-away videos made from validation-split sequences of davis2016-train.

Each sequence A becomes A's first third, then `--away` frames of another sequence of the list (B, resized
to A's size: the object is not there), then A again from `--skip` frames past where it left; each A is
cut away to every other sequence of the list in turn. The simulated
user gives the ground-truth mask on frame 0 and marks the object absent on the first cut-away frame (the
dock: erase it there), then tracks forward, once per variant (`off`: the object stays absent until its
next keyframe, the behaviour before; `on`: the session looks for it again, `HotspotSession._search_step`;
`onN`: the same with N frames in a row, REACQUIRE_FRAMES). Per frame J against the ground truth, where an empty mask
on an empty truth scores 1 (DAVIS's convention) and a mask on it 0.

    python benchmarks/reacquire_study.py --weights benchmarks/weights/wcs_lite0_split.pt \\
        --sequences boat dog-agility hockey mallard-water rollerblade swing

Columns: `away fp` cut-away frames given a mask (of `--away - 1` tracked ones), `back J` mean J of the
frames after the object returns, `found` frames from its return to its first mask with IoU >= 0.5
(`-` never), `J` mean over every tracked frame (a frame no sweep reached counts as an empty mask). No
completion; no adaptation unless `--adapt SECONDS`. `--backward` runs the same videos the other way:
the prompt on the last frame, the absence on the last cut-away frame, a backward sweep.

--evidence FRAMES instead writes, for each sequence cut away to FRAMES frames of every other sequence under
--davis-root in turn, the search's answer on every frame past the absence (none taken) with its evidence
(`tracking.step_evidence`) and its IoU with the truth: the rows the rule's thresholds were chosen from.
docs/benchmarks.md, "Finding an object again after an absence".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from napari_hotspot.data_paths import davis_annotations_dir, davis_frames_dir, davis_root
from napari_hotspot.evaluation.davis import jaccard
from napari_hotspot.evaluation.report import read_label_png
from napari_hotspot.models.tracking import confidence_from_certainty
from napari_hotspot.models.weights import ModelBundle
from napari_hotspot.options import TrackingOptions
from napari_hotspot import session as session_module
from napari_hotspot.session import HotspotSession

sys.path.insert(0, str(Path(__file__).parent))
from bench_track import keep_outputs_by_frame  # noqa: E402

# off: the object stays absent until its next keyframe (the behaviour before); on: the session's rule;
# onN: the same rule over N frames in a row (REACQUIRE_FRAMES)
DEFAULT_VARIANTS = ["off", "on1", "on", "on3"]


def read_sequence(root: Path, seq: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(davis_frames_dir(root, seq).glob("*.jpg"))]
    gt = [read_label_png(p, ground_truth=True) > 0 for p in sorted(davis_annotations_dir(root, seq).glob("*.png"))]
    return frames, gt


def cut_away(a: tuple[list, list], clips: list[tuple[str, list]], skip: int):
    """Sequence A's first third, then each (name, frames) clip of other videos in turn (resized to A's
    size: the object is not there), then A from `skip` frames past where it left. Returns the video
    (T, H, W, 3), its ground truth (T, H, W), each frame's kind ("before", a clip's name, "back"), the
    first cut-away frame and the first frame back."""
    frames, gt = a
    k = len(frames) // 3
    h, w = frames[0].shape[:2]
    video, truth, kinds = list(frames[:k]), list(gt[:k]), ["before"] * k
    for name, clip in clips:
        video += [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in clip]
        truth += [np.zeros((h, w), bool)] * len(clip)
        kinds += [name] * len(clip)
    back = len(video)
    video += frames[k + skip:]
    truth += gt[k + skip:]
    kinds += ["back"] * len(frames[k + skip:])
    return np.stack(video), truth, kinds, k, back


@contextlib.contextmanager
def reacquire_frames(frames: int | None):
    """The session's REACQUIRE_FRAMES set to `frames` inside the block (None: as it is), then restored."""
    before = session_module.REACQUIRE_FRAMES
    if frames is not None:
        session_module.REACQUIRE_FRAMES = frames
    try:
        yield
    finally:
        session_module.REACQUIRE_FRAMES = before


def run(models, video, truth, k, back, variant: str, adapt_seconds: float = 0.0, backward: bool = False) -> dict:
    """One cut-away video tracked forward from frame 0 (the absence on its first cut-away frame), or with
    `backward` from its last frame (the absence on its last cut-away frame, the object back before it)."""
    with reacquire_frames(int(variant[2:]) if variant.startswith("on") and variant != "on" else None):
        session = HotspotSession(video, models, options=TrackingOptions(
            adapt_seconds=adapt_seconds, complete_frames=0, reacquire=variant != "off"))
        prompt, absent = (len(video) - 1, back - 1) if backward else (0, k)
        session.add_prompt(prompt, 1, mask=truth[prompt])
        session.mark_absent(absent, 1)
        masks = {r.frame: r.mask for r in session.propagate(direction="backward" if backward else "forward")}
    for t in range(len(video)):  # frames no sweep reached: nothing
        if t not in masks and t not in (prompt, absent):
            masks[t] = np.zeros(truth[t].shape, bool)
    js = {t: jaccard(masks[t], truth[t]) for t in masks}
    away = [t for t in masks if k <= t < back and t != absent]
    returned = sorted((t for t in masks if t < k), reverse=True) if backward else sorted(t for t in masks if t >= back)
    found = next((i for i, t in enumerate(returned) if js[t] >= 0.5), None)
    return {"away_fp": int(sum(masks[t].any() for t in away)), "away_frames": len(away),
            "back_J": float(np.mean([js[t] for t in returned])), "found": found,
            "J": float(np.mean(list(js.values())))}


def candidate_evidence(models, a: tuple[list, list], others: list[tuple[str, list]], per_other: int, skip: int) -> list:
    """The search's answer and its evidence (`tracking.step_evidence`) on every frame past an absence,
    none of them taken (REACQUIRE_FRAMES out of reach): `per_other` frames of each other sequence (the object is not
    there), then A from `skip` frames past where it left. Rows: (kind, sequence, candidate IoU with the
    truth, evidence with the step's confidence)."""
    video, truth, kinds, k, _back = cut_away(a, [(name, other[:per_other]) for name, other in others], skip)
    with reacquire_frames(10**9):  # never taken: every frame past the absence is a search step
        return _search_rows(models, video, truth, kinds, k)


def _search_rows(models, video, truth, kinds, k) -> list:
    session = HotspotSession(video, models, options=TrackingOptions(
        adapt_seconds=0.0, complete_frames=0, reacquire=True))
    session.collect_evidence = True
    candidates = keep_outputs_by_frame(session, "_mask_to_frame")
    session.add_prompt(0, 1, mask=truth[0])
    session.mark_absent(k, 1)
    rows = []
    for r in session.propagate(direction="forward"):
        if r.frame < k:  # tracked before it left: its usual evidence
            rows.append(("before", "before", jaccard(r.mask, truth[r.frame]), dict(r.evidence, confidence=r.confidence)))
            continue
        if r.frame == k:
            continue
        ev = dict(r.evidence, confidence=confidence_from_certainty(r.evidence["certainty"])
                  if r.evidence["area"] > 0 else 0.0)
        rows.append(("back" if kinds[r.frame] == "back" else "away", kinds[r.frame],
                     jaccard(candidates[r.frame], truth[r.frame]) if truth[r.frame].any() else 0.0, ev))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--davis-root", type=Path, default=davis_root().parent / "davis2016-train")
    ap.add_argument("--weights", type=Path, required=True, help="a split model that never saw the sequences")
    ap.add_argument("--sequences", nargs="+", required=True, help="each is cut away to every other one in turn")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    ap.add_argument("--away", type=int, default=20, help="cut-away frames (default 20)")
    ap.add_argument("--skip", type=int, default=10, help="frames of the sequence passed while away (default 10)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backward", action="store_true",
                    help="prompt the last frame, mark the absence on the last cut-away frame and track backward "
                         "(the object back in the sequence's first third)")
    ap.add_argument("--adapt", type=float, default=0.0, metavar="SECONDS",
                    help="per-video adaptation budget of each run (default 0; the session's default is 10)")
    ap.add_argument("--out", type=Path, default=None, help="per-sequence results as JSON")
    ap.add_argument("--evidence", type=int, default=None, metavar="FRAMES",
                    help="instead: the search's untaken answers and their evidence, cut away to FRAMES frames of "
                         "every other sequence under --davis-root in turn (JSON rows in --out)")
    args = ap.parse_args(argv)
    if len(args.sequences) < 2 and args.evidence is None:
        ap.error("give at least two sequences: each is cut away to another")
    torch.set_num_threads(args.threads)
    models = ModelBundle.load(args.weights)
    data = {s: read_sequence(args.davis_root, s) for s in args.sequences}
    if args.evidence is not None:
        pool = sorted(p.name for p in davis_frames_dir(args.davis_root, args.sequences[0]).parent.iterdir())
        rows = {}
        for seq in args.sequences:
            others = [(o, read_sequence(args.davis_root, o)[0][:args.evidence]) for o in pool if o != seq]
            rows[seq] = candidate_evidence(models, data[seq], others, args.evidence, args.skip)
            print(seq, len(rows[seq]), flush=True)
        if args.out:
            args.out.write_text(json.dumps(rows))
        return
    results: dict[str, dict[str, dict]] = {}  # "A/B" (A cut away to B) -> variant -> scores
    for seq in args.sequences:
        for other in (o for o in args.sequences if o != seq):
            video, truth, _kinds, k, back = cut_away(data[seq], [(other, data[other][0][:args.away])], args.skip)
            results[f"{seq}/{other}"] = {v: run(models, video, truth, k, back, v, args.adapt, args.backward)
                                         for v in args.variants}
            print(f"{seq}/{other}", " | ".join(
                f"{v}: fp {r['away_fp']} back {r['back_J']:.3f} found {r['found']} J {r['J']:.3f}"
                for v, r in results[f"{seq}/{other}"].items()), flush=True)
    print("\n| variant | away fp frames (of) | videos with an away fp | back J | found (median frames; never) | J |\n"
          "|---|---|---|---|---|---|")
    for v in args.variants:
        rs = [results[s][v] for s in results]
        found = [r["found"] for r in rs if r["found"] is not None]
        print(f"| {v} | {sum(r['away_fp'] for r in rs)} ({sum(r['away_frames'] for r in rs)}) | "
              f"{sum(r['away_fp'] > 0 for r in rs)} of {len(rs)} | {np.mean([r['back_J'] for r in rs]):.3f} | "
              f"{np.median(found) if found else '-'}; {len(rs) - len(found)} | {np.mean([r['J'] for r in rs]):.3f} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
