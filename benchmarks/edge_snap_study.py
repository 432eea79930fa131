"""Output-mask refinements scored with DAVIS J / F on validation-split sequences of davis2016-train: one
forward sweep per sequence from the frame-0 ground-truth mask (no adaptation, `HotspotSession.snap_edges`
off), its frame-size probabilities refined by each variant, thresholded at 0.5 and scored. Only the output
changes: the templates the tracker carries are the same for every variant.

    python benchmarks/edge_snap_study.py --weights benchmarks/weights/wcs_lite0_split.pt \\
        --sequences boat dog-agility hockey mallard-water rollerblade swing [--variants base g3:1e-3 c3:1e-3]

--upscale K scores copies of the sequences upscaled K times (bicubic frames, the ground truth's bilinear
outline), written under runs/upscaled/ once: how the snapping's radius behaves where the tracker's
output is upsampled further than at DAVIS's 360p / 480p (upscaled frames have softer edges than true
high-resolution ones, so this is a proxy).

A variant is `base` (the upsampled probability as it is) or KIND RADIUS:EPS with KIND
  g  the grey-guided filter (`mask_geometry.snap_to_edges`; its grey levels from OpenCV's RGB->grey),
  f  the same on the frame shrunk by the session's rule (`mask_geometry.edge_snap_subsample`: 1 up to 480p),
  c  the colour-guided filter (He et al.'s 3x3 covariance form),
  b  half the grey-guided filter, half the plain probability,
  m  the grey-guided filter, then a 5x5 median of the binary mask,
  s  the grey-guided filter, then components and holes under 0.1% of the frame removed;
and `median` is the plain mask's 5x5 median. docs/benchmarks.md, "Output masks snapped to the frame's edges".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from napari_hotspot.data_paths import davis_annotations_dir, davis_frames_dir, davis_root
from napari_hotspot.evaluation.davis import sequence_scores
from napari_hotspot.evaluation.report import read_label_png
from napari_hotspot.evaluation.tracker_eval import prompt_from_ground_truth
from napari_hotspot.mask_geometry import edge_snap_subsample, snap_to_edges
from napari_hotspot.models.weights import ModelBundle
from napari_hotspot.options import TrackingOptions
from napari_hotspot.session import HotspotSession
from napari_hotspot.video import open_source

sys.path.insert(0, str(Path(__file__).parent))
from bench_track import keep_outputs_by_frame  # noqa: E402

DEFAULT_VARIANTS = ["base", "g2:1e-3", "g3:1e-3", "g4:1e-3", "g4:1e-2", "g8:1e-3", "c3:1e-3", "c4:1e-2"]


def _box(v, radius):
    return cv2.blur(v, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)


def colour_guided(image: np.ndarray, p: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with an RGB guide (a 3x3 covariance per pixel)."""
    im = image.astype(np.float32) / 255.0
    mean_i = [_box(im[..., c], radius) for c in range(3)]
    mean_p = _box(p, radius)
    cov_ip = np.stack([_box(im[..., c] * p, radius) - mean_i[c] * mean_p for c in range(3)], -1)
    var = np.empty((*p.shape, 3, 3), np.float32)
    for i in range(3):
        for j in range(i, 3):
            var[..., i, j] = var[..., j, i] = _box(im[..., i] * im[..., j], radius) - mean_i[i] * mean_i[j]
    var += eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(var, cov_ip[..., None])[..., 0]
    b = mean_p - (a * np.stack(mean_i, -1)).sum(-1)
    return sum(_box(a[..., c], radius) * im[..., c] for c in range(3)) + _box(b, radius)


def _median(mask: np.ndarray) -> np.ndarray:
    return cv2.medianBlur(mask.astype(np.uint8) * 255, 5) > 127


def _without_specks(mask: np.ndarray) -> np.ndarray:
    mask = mask.copy()
    for value, connectivity in ((True, 8), (False, 4)):
        n, lab, stats, _ = cv2.connectedComponentsWithStats((mask == value).astype(np.uint8), connectivity=connectivity)
        small = np.zeros(n, bool)
        small[1:] = stats[1:, cv2.CC_STAT_AREA] < 0.001 * mask.size
        mask[small[lab]] = not value
    return mask


def refine(variant: str, prob: np.ndarray, image: np.ndarray, subsample: int = 1) -> np.ndarray:
    if variant == "base":
        return prob > 0.5
    if variant == "median":
        return _median(prob > 0.5)
    kind, rest = variant[0], variant[1:]
    radius, eps = int(rest.split(":")[0]), float(rest.split(":")[1])
    if kind == "c":
        return colour_guided(image, prob, radius, eps) > 0.5
    if kind == "f":
        return snap_to_edges(prob, image, radius, eps, subsample=subsample) > 0.5
    snapped = snap_to_edges(prob, image, radius, eps)
    if kind == "g":
        return snapped > 0.5
    if kind == "b":
        return 0.5 * (prob + snapped) > 0.5
    if kind == "m":
        return _median(snapped > 0.5)
    if kind == "s":
        return _without_specks(snapped > 0.5)
    raise SystemExit(f"unknown variant {variant!r}")


def upscaled_copy(root: Path, seq: str, factor: float, out_root: Path) -> Path:
    """A DAVIS root holding `seq` upscaled `factor` times (frames bicubic, JPEG quality 95; the ground
    truth's mask resized bilinearly and cut at 0.5), made once under out_root."""
    frames_in, labels_in = davis_frames_dir(root, seq), davis_annotations_dir(root, seq)
    res = f"x{factor:g}"
    out_root = out_root / res  # a root per factor: one resolution folder each (data_paths.davis_resolution)
    frames_out = out_root / "JPEGImages" / res / seq
    labels_out = out_root / "Annotations" / res / seq
    if not (frames_out / "done").exists():
        frames_out.mkdir(parents=True, exist_ok=True)
        labels_out.mkdir(parents=True, exist_ok=True)
        for path in sorted(frames_in.glob("*.jpg")):
            image = cv2.imread(str(path))
            big = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(frames_out / path.name), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
        for path in sorted(labels_in.glob("*.png")):
            mask = (read_label_png(path, ground_truth=True) > 0).astype(np.float32)
            big = cv2.resize(mask, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR) > 0.5
            cv2.imwrite(str(labels_out / path.name), big.astype(np.uint8) * 255)
        (frames_out / "done").write_text("")
    return out_root


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--davis-root", type=Path, default=davis_root().parent / "davis2016-train")
    ap.add_argument("--weights", type=Path, required=True, help="a split model that never saw the sequences")
    ap.add_argument("--sequences", nargs="+", required=True)
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    ap.add_argument("--out", type=Path, default=None, help="per-sequence scores as JSON")
    ap.add_argument("--upscale", type=float, default=None,
                    help="score copies of the sequences upscaled this many times (runs/upscaled/)")
    ap.add_argument("--upscaled-root", type=Path, default=Path("runs/upscaled"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    models = ModelBundle.load(args.weights)
    results = {}
    for seq in args.sequences:
        root = args.davis_root
        if args.upscale:
            root = upscaled_copy(args.davis_root, seq, args.upscale, args.upscaled_root)
        gt = [read_label_png(p, ground_truth=True) > 0
              for p in sorted(davis_annotations_dir(root, seq).glob("*.png"))]
        preds = {v: [gt[0]] for v in args.variants}
        with open_source(davis_frames_dir(root, seq)) as source:
            session = HotspotSession(source, models, options=TrackingOptions(adapt_seconds=0.0))
            session.snap_edges = False  # each output's plain upsampled probability, kept for the variants
            subsample = edge_snap_subsample(session.frame_size, session.work_size)
            probs = keep_outputs_by_frame(session, "_frame_probability")
            prompt_from_ground_truth(gt[0], "mask", 0, 1).apply(session)
            for r in session.propagate(direction="forward"):
                prob, image = probs.pop(r.frame), source.get_frame(r.frame)
                for v in args.variants:
                    preds[v].append(refine(v, prob, image, subsample))
        results[seq] = {v: sequence_scores(preds[v], gt) for v in args.variants}
        print(seq, " ".join(f"{v} {results[seq][v]['J_mean']:.4f}/{results[seq][v]['F_mean']:.4f}"
                            for v in args.variants), flush=True)
    print("| variant | J | F |\n|---|---|---|")
    for v in args.variants:
        print(f"| {v} | {np.mean([results[s][v]['J_mean'] for s in results]):.4f} | "
              f"{np.mean([results[s][v]['F_mean'] for s in results]):.4f} |")
    if args.out:
        args.out.write_text(json.dumps({s: {v: {k: float(x) for k, x in d.items()} for v, d in r.items()}
                                        for s, r in results.items()}))


if __name__ == "__main__":
    sys.exit(main())
