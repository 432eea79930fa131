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

from ..errors import ProjectIOError
from ..models.tracking import deepest_point
from ..models.weights import ModelBundle
from ..pipeline import Prompt, track_video
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


def evaluate_tracker(
    davis_root: Path,
    out_dir: Path,
    sequences: Sequence[str] | None = None,
    init: str = "mask",
    models: ModelBundle | None = None,
    log: Callable[[str], None] = print,
    adapt_seconds: float = 0.0,
) -> list[dict]:
    davis_root, out_dir = Path(davis_root), Path(out_dir)
    models = models or ModelBundle.load()
    rows = []
    for seq in sequences or list_sequences(davis_root):
        img_dir = davis_root / "JPEGImages" / "480p" / seq
        gt_dir = davis_root / "Annotations" / "480p" / seq
        gt_files = sorted(gt_dir.glob("*.png"))
        if not gt_files:
            raise ProjectIOError(f"no ground truth for sequence {seq!r} in {gt_dir}")
        gt_labels = [read_label_png(p, ground_truth=True) for p in gt_files]
        ids = [int(v) for v in np.unique(gt_labels[0]) if v != 0]
        # One prompt per object of the first frame (one tracking pass per object); auto finds one.
        prompts = [prompt_from_ground_truth(gt_labels[0] == oid, init, 0, oid)
                   for oid in (ids if init != "auto" else ids[:1])]
        pred_dir = out_dir / "predictions" / seq
        with open_source(img_dir) as source:
            session = HotspotSession(source, models)
            run = track_video(session, prompts, pred_dir, adapt_seconds=adapt_seconds)
        # track_video writes masks/ inside pred_dir; DAVIS layout wants the PNGs directly in it.
        for png in (pred_dir / "masks").glob("*.png"):
            png.replace(pred_dir / png.name)
        (pred_dir / "masks").rmdir()
        seq_rows = evaluate_sequence(gt_dir, pred_dir)
        hotspots = read_hotspots(pred_dir / "hotspots.csv")
        for r in seq_rows:
            hs = hotspot_columns(hotspots.get(r["object_id"], {}), [g == r["object_id"] for g in gt_labels])
            r.update(hs)
            r["fps"] = round(run.fps, 2)
            r["encoder_ms"] = round(1000 * run.timings["encoder"] / max(run.frames, 1), 1)
            r["adapt_s"] = round(run.timings["adapt"], 1)
        rows.extend(seq_rows)
        for r in seq_rows:
            log(f"{seq} object {r['object_id']}: J={r['J_mean']:.3f} F={r['F_mean']:.3f} "
                f"hotspot-inside={r['hs_inside_rate']:.3f} fps={run.fps:.1f}")
    return rows
