"""Run the tracker on DAVIS-layout sequences from a simulated prompt and score it (`napari-hotspot eval`).

Prompts come from the first frame's ground truth: `mask` (the mask itself), `click` (one click at the
object's deepest interior point), `box` (its bounding box) or `auto` (no input; EG-Net picks).
Predictions land in `OUT/predictions/<seq>/<frame>.png` + `hotspots.csv`, so they can be re-scored
with `napari-hotspot eval --predictions OUT/predictions`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..data_paths import davis_annotations_dir, davis_frames_dir
from ..errors import AnnotationError, ProjectIOError
from ..models.tracking import deepest_point
from ..models.weights import ModelBundle
from ..options import ADAPT_REACH_FRAMES, TrackingOptions
from ..pipeline import TRACK_CACHE_BYTES, Prompt, track_video
from ..session import HotspotSession
from ..video import open_source
from .hotspot import point_inside, temporal_jitter
from .report import evaluate_sequence, list_sequences, read_label_png

INITS = ("mask", "click", "box", "auto")


def prompt_from_ground_truth(gt: np.ndarray, init: str, frame: int = 0, object_id: int = 1) -> Prompt:
    """The simulated user's prompt for `init` on a ground-truth mask (bool HxW)."""
    if init == "mask":
        return Prompt("mask", frame, object_id, mask=gt)
    if init == "auto":
        return Prompt("auto", frame, object_id)
    if not gt.any():
        raise ProjectIOError(f"the ground truth of frame {frame} is empty: cannot simulate a {init} prompt")
    if init == "click":
        return Prompt("click", frame, object_id, points=[deepest_point(gt)])
    if init == "box":
        ys, xs = np.nonzero(gt)
        return Prompt("box", frame, object_id, box=(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())))
    raise ValueError(f"init must be one of {INITS}, not {init!r}")


def read_hotspots(path: Path) -> dict[int, dict[int, tuple[float, float] | None]]:
    """{object_id: {frame: (x, y) or None}} from a track's hotspots.csv."""
    out: dict[int, dict] = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            xy = (float(row["x"]), float(row["y"])) if row["x"] else None
            out.setdefault(int(row["object_id"]), {})[int(row["frame"])] = xy
    return out


def hotspot_columns(hotspots: dict, gt_masks: Sequence[np.ndarray]) -> dict:
    """Hotspot-inside-ground-truth rate and temporal jitter (pixels) over the DAVIS-scored frames."""
    frames = range(1, len(gt_masks) - 1) if len(gt_masks) > 2 else range(len(gt_masks))
    inside = [point_inside(gt_masks[t], hotspots[t]) for t in frames if hotspots.get(t) and gt_masks[t].any()]
    track = np.array([hotspots[t] if hotspots.get(t) else (np.nan, np.nan) for t in range(len(gt_masks))], float)
    return {"hs_inside_rate": float(np.mean(inside)) if inside else float("nan"),
            "hs_jitter_px": float(temporal_jitter(track))}


def check_sequences(davis_root: Path, sequences: Sequence[str]) -> None:
    """Refuse, before any work, sequences without frames or ground truth under `davis_root`."""
    missing = [seq for seq in sequences if not davis_frames_dir(davis_root, seq).is_dir()
               or not any(davis_annotations_dir(davis_root, seq).glob("*.png"))]
    if missing:
        raise ProjectIOError(f"no frames or no ground truth for sequence(s) {', '.join(missing)} under {davis_root} "
                             f"(expected JPEGImages/<resolution>/<sequence>/ and Annotations/<resolution>/<sequence>/)")


def _ground_truth(davis_root: Path, sequence: str) -> tuple[list[np.ndarray], list[int]]:
    """A sequence's ground-truth label images and the object ids of its first frame, where every
    simulated prompt is taken (refused clearly when there is none, or the first frame has no object)."""
    gt_dir = davis_annotations_dir(davis_root, sequence)
    gt_files = sorted(gt_dir.glob("*.png"))
    if not gt_files:
        raise ProjectIOError(f"no ground truth for sequence {sequence!r} in {gt_dir}")
    labels = [read_label_png(p, ground_truth=True) for p in gt_files]
    ids = [int(v) for v in np.unique(labels[0]) if v != 0]
    if not ids:
        raise AnnotationError(f"the first ground-truth frame {gt_files[0]} contains no object: the simulated prompt "
                              "is taken from it")
    return labels, ids


def evaluate_tracker(
    davis_root: Path,
    out_dir: Path,
    sequences: Sequence[str] | None = None,
    init: str = "mask",
    models: ModelBundle | None = None,
    log: Callable[[str], None] = print,
    options: TrackingOptions | None = None,
    adapt_guard: bool = True,
    adapt_reach: int | None = ADAPT_REACH_FRAMES,
) -> list[dict]:
    """Track every sequence from a simulated prompt on frame 0 (`init`) with `options` (None: the command
    line's defaults) and score it; writes `out_dir/predictions/<sequence>/`. `adapt_guard` and
    `adapt_reach`: the session's switches for measuring those rules."""
    davis_root, out_dir = Path(davis_root), Path(out_dir)
    models = models or ModelBundle.load()
    options = options or TrackingOptions()
    rows = []
    for seq in sequences or list_sequences(davis_root):
        img_dir = davis_frames_dir(davis_root, seq)
        gt_labels, ids = _ground_truth(davis_root, seq)
        # One prompt per object of the first frame (one tracking pass per object); auto finds one.
        prompts = [prompt_from_ground_truth(gt_labels[0] == oid, init, 0, oid)
                   for oid in (ids if init != "auto" else ids[:1])]
        pred_dir = out_dir / "predictions" / seq
        with open_source(img_dir, cache_bytes=TRACK_CACHE_BYTES) as source:
            session = HotspotSession(source, models, options=options)
            session.guard_adaptation = adapt_guard
            session.adapt_reach = adapt_reach
            run = track_video(session, prompts, pred_dir)
        # track_video writes masks/ inside pred_dir; DAVIS layout wants the PNGs directly in it.
        for png in (pred_dir / "masks").glob("*.png"):
            png.replace(pred_dir / png.name)
        (pred_dir / "masks").rmdir()
        seq_rows = evaluate_sequence(davis_annotations_dir(davis_root, seq), pred_dir)
        hotspots = read_hotspots(pred_dir / "hotspots.csv")
        for r in seq_rows:
            hs = hotspot_columns(hotspots.get(r["object_id"], {}), [g == r["object_id"] for g in gt_labels])
            r.update(hs)
            r["fps"] = round(run.fps, 2)
            r["encoder_ms"] = round(1000 * run.timings["encoder"] / max(run.frames, 1), 1)
            r["adapt_s"] = round(run.timings["adapt"], 1)
            verdict = session.adaptation_verdict(r["object_id"])
            # Whether the guard passes the adapted copy (recorded with --no-adapt-guard too, so that one run
            # with and one without adaptation give the guard's result at any margin).
            r["adapt_pass"] = "" if verdict is None else int(verdict.kept)
            r["adapt_rt_iou"] = float("nan") if verdict is None else round(verdict.adapted_iou, 4)
            r["base_rt_iou"] = float("nan") if verdict is None else round(verdict.base_iou, 4)
        rows.extend(seq_rows)
        for r in seq_rows:
            log(f"{seq} object {r['object_id']}: J={r['J_mean']:.3f} F={r['F_mean']:.3f} "
                f"hotspot-inside={r['hs_inside_rate']:.3f} fps={run.fps:.1f}")
    return rows


def correction_curve(
    davis_root: Path,
    sequence: str,
    corrections: int,
    init: str = "mask",
    models: ModelBundle | None = None,
    options: TrackingOptions | None = None,
    adapt_guard: bool = True,
    adapt_reach: int | None = ADAPT_REACH_FRAMES,
) -> list[dict]:
    """The simulated-annotator correction protocol on one sequence (one object per first-frame id).

    Propagate from the prompt; then `corrections` times: replace the worst-scoring frame's mask with
    the ground truth (a keyframe), adapt to it when adaptation is on, and re-propagate from it in
    both directions up to the neighbouring keyframes. Returns one row per step (0 = no correction)
    with the DAVIS J/F statistics of the whole sequence at that point. `options`: how to track (None:
    the command line's defaults, adaptation included).
    """
    from .davis import boundary_f, jaccard, scores_from_per_frame

    davis_root = Path(davis_root)
    models = models or ModelBundle.load()
    gt, ids = _ground_truth(davis_root, sequence)
    with open_source(davis_frames_dir(davis_root, sequence)) as source:
        session = HotspotSession(source, models, options=options or TrackingOptions())
        session.guard_adaptation = adapt_guard
        session.adapt_reach = adapt_reach
        pred: dict[int, list[np.ndarray]] = {}
        for oid in ids:
            r = prompt_from_ground_truth(gt[0] == oid, init, 0, oid).apply(session)
            pred[oid] = [np.zeros(gt[0].shape, bool) for _ in gt]
            pred[oid][0] = r.mask
        for c in session.preflight(ids):  # completion, then adaptation (a completed mask replaces its prompt's)
            pred[c.object_id][c.frame] = c.mask
        for r in session.propagate(direction="both"):
            pred[r.object_id][r.frame] = r.mask

        def scores(step):
            rows = []
            for oid in ids:
                j = [jaccard(pred[oid][t], gt[t] == oid) for t in range(len(gt))]
                f = [boundary_f(pred[oid][t], gt[t] == oid) for t in range(len(gt))]
                rows.append({"sequence": sequence, "object_id": oid, "corrections": step,
                             **scores_from_per_frame(j, f), "_j": j})
            return rows

        history = scores(0)
        for step in range(1, corrections + 1):
            for row in [r for r in history if r["corrections"] == step - 1]:
                oid, j = row["object_id"], row["_j"]
                anchors = set(session.anchors(oid))
                candidates = [t for t in range(len(gt)) if t not in anchors]
                if not candidates:
                    continue
                worst = min(candidates, key=lambda t: j[t])
                pred[oid][worst] = gt[worst] == oid
                session.add_prompt(worst, oid, mask=gt[worst] == oid, source="correction")
                for direction in ("forward", "backward"):  # the first adapts to the correction first
                    for r in session.propagate([oid], start_frame=worst, direction=direction, stop_at_keyframe=True):
                        pred[oid][r.frame] = r.mask
            history.extend(scores(step))
    for r in history:
        r.pop("_j")
    return history


def plot_correction_curves(curves: dict[str, list[dict]], path: Path) -> None:
    """J against the number of corrections, one line per setting (e.g. with / without adaptation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for label, rows in curves.items():
        steps = sorted({r["corrections"] for r in rows})
        ax.plot(steps, [np.mean([r["J_mean"] for r in rows if r["corrections"] == k]) for k in steps],
                marker="o", label=label)
    ax.set_xlabel("corrections (worst frame replaced by ground truth)")
    ax.set_ylabel("mean J")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
