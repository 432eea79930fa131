"""Benchmark of the reframer on DAVIS-2016: containment, mask coverage and smoothness vs the naive path.

For each sequence and setting (aspect ratio, zoom), ``napari-hotspot reframe SRC --tracks DIR`` runs
through ``napari_hotspot.reframe.cli.run`` on a track folder whose ``masks/`` is the ground-truth
annotation folder (symlinked, not copied) and without hotspots.csv, so the hotspot is each frame's
deepest interior mask point: the numbers measure the reframer, not a tracker. Every number in the table
is read from the JSON report the command writes. With ``--tracker SEQ`` one more run goes through the
tracker (``--mask`` = the first ground-truth mask) and its windows are also scored against the ground
truth. ``--strips DIR`` saves before/after PNG strips (input frame with the window drawn over the
rendered output frame, decoded from the written video).

    python benchmarks/bench_reframe.py [--davis-root ROOT] [--sequences a b] [--settings 9:16@1 1:1@auto]
        [--tracker SEQ] [--strips DIR] [--out TABLE.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from napari_hotspot.reframe import cli as reframe_cli
from napari_hotspot.reframe.metrics import path_metrics
from napari_hotspot.reframe.inputs import tracks_from_track_folder
from napari_hotspot.video import open_source

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("NAPARI_HOTSPOT_DATA", REPO.parent / "shared" / "data"))
DEFAULT_SETTINGS = ["9:16@1", "1:1@1", "4:5@auto"]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_cli(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser()
    reframe_cli.add_arguments(parser)
    args = parser.parse_args(argv)
    if reframe_cli.run(args) != 0:
        raise SystemExit(f"reframe failed: {argv}")
    return json.loads(Path(args.report).read_text())


def row_from_report(name: str, aspect: str, zoom: str, report: dict) -> dict:
    base = report["baseline"]
    modes = sorted({f"{s['mode_x']}/{s['mode_y']}" for s in report["shots"]})
    fits = report.get("mask_coverage_where_fits")
    jerk_ratio = report["jerk"] / base["jerk"] if base["jerk"] > 0 else 0.0
    return {
        "sequence": name, "aspect": aspect, "zoom": zoom, "frames": report["frames"], "shots": len(report["shots"]),
        "modes": ",".join(modes),
        "hotspot_in": report["hotspot_in_window"], "coverage": report["mask_coverage"],
        "coverage_fit": fits if fits is not None else float("nan"), "fit_frames": report.get("frames_mask_fits", 0),
        "jerk": report["jerk"], "naive_jerk": base["jerk"], "jerk_ratio": jerk_ratio,
        "naive_hotspot_in": base["hotspot_in_window"], "naive_coverage": base["mask_coverage"],
    }


def fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:.3f}"
    return str(v)


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def save_strip(frames_dir: Path, video: Path, report: dict, out_png: Path, picks: int = 5) -> None:
    """Top: input frames with the crop window (green) and hotspot; bottom: the reframed frames."""
    src = open_source(frames_dir)
    out = open_source(video)
    n = src.num_frames
    idx = np.linspace(0, n - 1, picks).round().astype(int)
    tiles_top, tiles_bottom = [], []
    top_h = 180
    for t in idx:
        frame = src.get_frame(int(t))
        cx, cy, w, h = report["windows"][t]
        cv2.rectangle(frame, (int(round(cx - w / 2)), int(round(cy - h / 2))),
                      (int(round(cx + w / 2)), int(round(cy + h / 2))), (0, 255, 0), 4)
        hot = report["hotspots"][t]
        if hot is not None:
            cv2.circle(frame, (int(round(hot[0])), int(round(hot[1]))), 9, (255, 255, 0), -1)
            cv2.circle(frame, (int(round(hot[0])), int(round(hot[1]))), 9, (0, 0, 0), 2)
        cv2.putText(frame, f"t={t}", (12, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (0, 0, 0), 8)
        cv2.putText(frame, f"t={t}", (12, 44), cv2.FONT_HERSHEY_SIMPLEX, 1.3, (255, 255, 255), 3)
        scale = top_h / frame.shape[0]
        tiles_top.append(cv2.resize(frame, (int(frame.shape[1] * scale), top_h), interpolation=cv2.INTER_AREA))
        crop = out.get_frame(int(t))
        cs = tiles_top[-1].shape[1] / crop.shape[1]
        bh = int(round(crop.shape[0] * min(cs, top_h * 1.6 / crop.shape[0])))
        bw = int(round(crop.shape[1] * bh / crop.shape[0]))
        tile = np.full((bh, tiles_top[-1].shape[1], 3), 255, np.uint8)
        resized = cv2.resize(crop, (bw, bh), interpolation=cv2.INTER_AREA)
        x0 = (tile.shape[1] - bw) // 2
        tile[:, x0:x0 + bw] = resized
        tiles_bottom.append(tile)
    pad = np.full((top_h, 6, 3), 255, np.uint8)
    top = np.concatenate(sum(([t, pad] for t in tiles_top), [])[:-1], axis=1)
    bh = max(t.shape[0] for t in tiles_bottom)
    tiles_bottom = [np.pad(t, ((0, bh - t.shape[0]), (0, 0), (0, 0)), constant_values=255) for t in tiles_bottom]
    bottom = np.concatenate(sum(([t, np.full((bh, 6, 3), 255, np.uint8)] for t in tiles_bottom), [])[:-1], axis=1)
    strip = np.concatenate([top, np.full((6, top.shape[1], 3), 255, np.uint8), bottom], axis=0)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    src.close()
    out.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--davis-root", type=Path, default=DEFAULT_DATA / "davis2016-dev")
    parser.add_argument("--sequences", nargs="*", default=None)
    parser.add_argument("--settings", nargs="*", default=DEFAULT_SETTINGS, help="ASPECT@ZOOM, e.g. 9:16@1 1:1@auto")
    parser.add_argument("--tracker", default=None, help="also reframe this sequence through the tracker")
    parser.add_argument("--strips", type=Path, default=None, help="write before/after PNG strips here")
    parser.add_argument("--strip-sequences", nargs="*", default=["dog", "kite-surf"])
    parser.add_argument("--out", type=Path, default=None, help="also write the Markdown to this file")
    args = parser.parse_args(argv)

    images = args.davis_root / "JPEGImages" / "480p"
    annotations = args.davis_root / "Annotations" / "480p"
    if not images.is_dir():
        print(f"no DAVIS data at {args.davis_root} (set NAPARI_HOTSPOT_DATA)", file=sys.stderr)
        return 2
    sequences = args.sequences or sorted(p.name for p in images.iterdir() if p.is_dir())
    rows = []
    work = Path(tempfile.mkdtemp(prefix="bench_reframe_"))
    for seq in sequences:
        tracks_dir = work / seq
        tracks_dir.mkdir()
        (tracks_dir / "masks").symlink_to(annotations / seq)
        for setting in args.settings:
            aspect, zoom = setting.split("@")
            tag = f"{seq}_{aspect.replace(':', 'x')}_{zoom}"
            report = run_cli([str(images / seq), "--out", str(work / f"{tag}.mp4"), "--aspect", aspect,
                              "--zoom", zoom, "--tracks", str(tracks_dir), "--report", str(work / f"{tag}.json")])
            rows.append(row_from_report(seq, aspect, zoom, report))
            print(f"{tag}: hotspot {rows[-1]['hotspot_in']:.3f} coverage {rows[-1]['coverage']:.3f} "
                  f"fit {rows[-1]['coverage_fit']:.3f} jerk ratio {rows[-1]['jerk_ratio']:.3f}", file=sys.stderr)
            if args.strips is not None and seq in args.strip_sequences and setting == args.settings[0]:
                strip = args.strips / f"reframe_{seq}_{aspect.replace(':', 'x')}.png"
                save_strip(images / seq, work / f"{tag}.mp4", report, strip)

    tracker_rows = []
    if args.tracker:
        seq = args.tracker
        aspect, zoom = args.settings[0].split("@")
        first_mask = sorted((annotations / seq).glob("*.png"))[0]
        tag = f"{seq}_tracker"
        report = run_cli([str(images / seq), "--out", str(work / f"{tag}.mp4"), "--aspect", aspect, "--zoom", zoom,
                          "--mask", str(first_mask), "--frame", "0", "--report", str(work / f"{tag}.json")])
        row = row_from_report(f"{seq} (tracker)", aspect, zoom, report)
        # Score the same windows against the ground truth (masks and deepest-point hotspots).
        with open_source(images / seq) as src:
            gt_tracks = tracks_from_track_folder(work / seq, src.frame_names, (src.height, src.width))
        gt = path_metrics(np.asarray(report["windows"]), gt_tracks, report["cuts"])
        row["gt_hotspot_in"], row["gt_coverage"], row["gt_coverage_fit"] = (
            gt["hotspot_in_window"], gt["mask_coverage"], gt.get("mask_coverage_where_fits", float("nan")))
        tracker_rows.append(row)
        if args.strips is not None:
            save_strip(images / seq, work / f"{tag}.mp4", report, args.strips / f"reframe_{seq}_tracker.png")

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    columns = ["sequence", "aspect", "zoom", "frames", "shots", "modes", "hotspot_in", "coverage", "coverage_fit",
               "fit_frames", "jerk", "naive_jerk", "jerk_ratio", "naive_coverage"]
    lines = ["## Reframing benchmark (DAVIS-2016, ground-truth masks, deepest-point hotspots)", "",
             f"- command: `{command}`",
             f"- data: `{args.davis_root}` ({len(sequences)} sequences, 480p, 854x480)",
             f"- machine: {cpu_name()}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}",
             "- hotspot_in: share of frames whose hotspot is inside the window; coverage: mean share of the mask "
             "inside the window; coverage_fit: the same over the fit_frames frames where the mask's extent fits "
             "in the window; jerk: mean |3rd difference| of the window centre (px/frame^3); naive_*: the path "
             "that centres the window on the hotspot each frame (clamped to the image), same window sizes", ""]
    lines.append(markdown(rows, columns))
    ok_hot = all(r["hotspot_in"] >= 0.99 for r in rows)
    fit_rows = [r for r in rows if r["fit_frames"] > 0 and r["coverage_fit"] == r["coverage_fit"]]
    total_fit = sum(r["fit_frames"] for r in fit_rows)
    mean_fit = sum(r["coverage_fit"] * r["fit_frames"] for r in fit_rows) / total_fit if total_fit else float("nan")
    ok_jerk = all(r["jerk"] <= r["naive_jerk"] / 5 for r in rows)
    lines += ["", f"- hotspot inside the window on >= 99% of frames in every run: {'yes' if ok_hot else 'NO'} "
              f"(min {min(r['hotspot_in'] for r in rows):.3f})",
              f"- mean mask coverage where the object fits (frame-weighted over all runs): {mean_fit:.3f} "
              f"(min per run {min((r['coverage_fit'] for r in fit_rows), default=float('nan')):.3f})",
              f"- jerk at most 1/5 of the naive path's in every run: {'yes' if ok_jerk else 'NO'} "
              f"(max ratio {max(r['jerk_ratio'] for r in rows):.3f})"]
    if tracker_rows:
        lines += ["", "### Through the tracker (`--mask` = first ground-truth mask; shipped weights)", "",
                  markdown(tracker_rows, ["sequence", "aspect", "zoom", "frames", "modes", "hotspot_in", "coverage",
                                          "jerk", "naive_jerk", "jerk_ratio", "gt_hotspot_in", "gt_coverage",
                                          "gt_coverage_fit"]),
                  "", "hotspot_in / coverage: against the tracker's own masks and hotspots (what the report holds); "
                  "gt_*: the same windows scored against the ground truth."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
