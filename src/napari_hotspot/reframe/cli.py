"""`napari-hotspot reframe`: arguments and the run that tracks (or loads tracks), plans, renders, reports.

    napari-hotspot reframe SOURCE --out OUT.mp4 --aspect W:H [--zoom Z|auto] [--mode auto|steady|track|pan]
        (--mask PNG | --click X,Y | --box X0,Y0,X1,Y1 | --auto | --tracks DIR) [--report REPORT.json] [--frame N]

The lead's ``cli.py`` wires ``add_arguments`` / ``run`` as the ``reframe`` sub-command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from napari_hotspot.argtypes import frame_rate
from napari_hotspot.errors import HotspotError, ProjectIOError, PromptError
from napari_hotspot.fileio import atomic_write, prepare_output_dir
from napari_hotspot.options import (
    COMPLETION_FRAMES,
    add_accept_truncated_arg,
    add_adapt_arg,
    add_distractor_arg,
    add_hotspot_smoothing_arg,
    add_window_arg,
    add_long_side_arg,
    add_prompt_args,
    tracking_options,
)


def _zoom(text: str) -> float | None:
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"zoom must be a number >= 1 or 'auto', got {text!r}") from None
    if not 1.0 <= value <= 20.0:
        raise argparse.ArgumentTypeError(f"zoom must be between 1 (widest window) and 20, got {text!r}")
    return value


def _ids(text: str) -> list[int]:
    try:
        ids = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected object ids like 2,1 (priority first), got {text!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("expected at least one object id")
    return ids


def _keyframe(text: str):
    from napari_hotspot.reframe.path import Keyframe

    try:
        values = [float(v) for v in text.split(",")]
        if len(values) not in (3, 4) or values[0] != int(values[0]):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FRAME,CX,CY[,HEIGHT], got {text!r}") from None
    return Keyframe(int(values[0]), values[1], values[2], values[3] if len(values) == 4 else None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``reframe`` arguments to ``parser``."""
    parser.add_argument("source", type=Path, help="video file or folder of frames")
    parser.add_argument("--out", type=Path, required=True, help="reframed video (.mp4, .mov, .mkv or .m4v)")
    parser.add_argument("--aspect", required=True, help="output aspect ratio W:H, e.g. 9:16, 1:1, 16:9")
    parser.add_argument("--zoom", type=_zoom, default=1.0,
                        help="zoom factor >= 1 (1 = the largest window of that aspect) or 'auto' (frames the masks)")
    parser.add_argument("--mode", choices=("auto", "steady", "track", "pan"), default="auto",
                        help="camera mode (auto: chosen per shot from the subject's motion)")
    add_prompt_args(parser, tracks=True)
    parser.add_argument("--objects", type=_ids, default=None,
                        help="with --tracks: object ids to keep in view, priority first (default: all)")
    parser.add_argument("--report", type=Path, default=None, help="write the JSON quality report here")
    parser.add_argument("--margin", type=float, default=0.1, help="hotspot margin, fraction of the window (0.1)")
    parser.add_argument("--max-speed", type=float, default=None, help="cap on the window's speed, px/frame")
    parser.add_argument("--keyframe", type=_keyframe, action="append", default=[],
                        help="FRAME,CX,CY[,HEIGHT]: a window the path must pass through (repeatable)")
    parser.add_argument("--cuts", default="auto",
                        help="shot cuts: 'auto' (detect from colour histograms), 'none', or frame list like 120,480")
    parser.add_argument("--height", type=int, default=None,
                        help="output height in pixels (default: the zoom-1 window's)")
    parser.add_argument("--fps", type=frame_rate, default=None, help="frame rate for frame folders (default 24)")
    parser.add_argument("--weights", type=Path, default=None, help="model weights for the tracker")
    add_adapt_arg(parser, "adapt the tracker to the video first, as for track")
    add_distractor_arg(parser)
    add_window_arg(parser)
    add_hotspot_smoothing_arg(parser)
    add_long_side_arg(parser)
    add_accept_truncated_arg(parser)


def _cuts(args, source) -> list[int]:
    from napari_hotspot.reframe.shots import detect_cuts_in_frames

    text = str(args.cuts).strip().lower()
    if text == "none":
        return []
    if text == "auto":
        return detect_cuts_in_frames(source.iter_frames())
    try:
        cuts = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise HotspotError(f"--cuts must be 'auto', 'none' or frame numbers like 120,480, got {args.cuts!r}") from None
    bad = [c for c in cuts if not 0 < c < source.num_frames]
    if bad:
        raise HotspotError(f"--cuts {bad} are outside 1..{source.num_frames - 1}")
    return cuts


def _check_distinct_paths(args) -> None:
    """--out and --report must not name the source video or each other: one would overwrite the other."""
    def same(a: Path, b: Path) -> bool:
        return a.resolve() == b.resolve()

    if same(args.out, args.source):
        raise ProjectIOError(f"--out {args.out} is the source video: writing there would replace it; give another "
                             "file name")
    if args.report is not None:
        if same(args.report, args.source):
            raise ProjectIOError(f"--report {args.report} is the source video: give a .json file name")
        if same(args.report, args.out):
            raise ProjectIOError(f"--report {args.report} is the --out video: give a .json file name")


def _check_keyframes(keyframes, source) -> None:
    """A keyframe's frame must lie in the video, its centre on the image, its height within the frame."""
    for k in keyframes:
        text = f"--keyframe {k.frame},{k.cx:g},{k.cy:g}" + (f",{k.height:g}" if k.height is not None else "")
        if not 0 <= k.frame < source.num_frames:
            raise PromptError(f"{text}: frame {k.frame} is outside the video (frames 0..{source.num_frames - 1})")
        if not (0 <= k.cx <= source.width - 1 and 0 <= k.cy <= source.height - 1):
            raise PromptError(f"{text}: the centre is off the image (x in 0..{source.width - 1}, "
                              f"y in 0..{source.height - 1})")
        if k.height is not None and not 2 <= k.height <= source.height:
            raise PromptError(f"{text}: the height must be 2..{source.height} pixels")


def _tracks(args, source):
    from napari_hotspot.reframe.inputs import load_tracks, run_tracker

    frame_size = (source.height, source.width)
    if args.negative and not args.click:  # with --tracks too: nothing would use it
        raise PromptError("--negative needs at least one --click")
    if args.tracks is not None:
        return load_tracks(args.tracks, source.frame_names, frame_size, args.objects)
    if args.objects:
        raise PromptError("--objects selects objects of --tracks; a prompt tracks one object")
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.pipeline import prompt_from_args, terminal_progress
    from napari_hotspot.session import HotspotSession

    prompt = prompt_from_args(args, frame_size)
    # reframe has no --complete: a click's or box's mask is completed over the default frames
    options = tracking_options(args).with_(complete_frames=COMPLETION_FRAMES)
    session = HotspotSession(source, ModelBundle.load(args.weights), options=options)
    progress, close = terminal_progress("track")
    try:
        return run_tracker(session, [prompt], progress)
    finally:
        close()


def write_report(report: dict, path: Path) -> None:
    """Write the report as JSON, atomically (NaN becomes null)."""
    def clean(v):
        if isinstance(v, float) and v != v:
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    with atomic_write(path, what="report", parents=True) as handle:
        handle.write(json.dumps(clean(report), indent=1, allow_nan=False))


def run(args) -> int:
    """Track (or load tracks), plan the crop path, render the video, write the report. Returns 0."""
    from napari_hotspot.pipeline import terminal_progress
    from napari_hotspot.reframe.metrics import reframe_report
    from napari_hotspot.reframe.path import ReframeConfig, parse_aspect, plan_crop_path
    from napari_hotspot.reframe.render import output_size, render_reframed
    from napari_hotspot.reframe.tracks import primary_hotspots
    from napari_hotspot.video import open_source, require_complete

    t0 = time.perf_counter()
    config = ReframeConfig(aspect=parse_aspect(args.aspect), zoom=args.zoom, mode=args.mode, margin=args.margin,
                           max_speed=args.max_speed)
    if args.out.suffix.lower() not in (".mp4", ".mov", ".mkv", ".m4v"):
        raise ProjectIOError(f"--out {args.out}: use a .mp4, .mov, .mkv or .m4v file name")
    if args.out.is_dir():
        raise ProjectIOError(f"--out {args.out} is a folder: give a video file name")
    if args.report is not None and args.report.is_dir():
        raise ProjectIOError(f"--report {args.report} is a folder: give a .json file name")
    _check_distinct_paths(args)
    # Both folders checked before any work: the report is written after the video has replaced --out.
    prepare_output_dir(args.out.parent, "--out folder")
    if args.report is not None:
        prepare_output_dir(args.report.parent, "--report folder")
    source = open_source(args.source)
    try:
        require_complete(source, args.accept_truncated)
        if not 0 <= args.frame < source.num_frames:
            raise PromptError(f"--frame {args.frame} is outside the video (frames 0..{source.num_frames - 1})")
        _check_keyframes(args.keyframe, source)
        # A bad --cuts, --height or --aspect fails before the tracking, not after it.
        t_cuts = time.perf_counter()
        cuts = _cuts(args, source)
        size = output_size((source.height, source.width), config.aspect, args.height)  # the crop path's frame size
        t_cuts = time.perf_counter() - t_cuts
        tracks = _tracks(args, source)
        t_tracks = time.perf_counter()
        path = plan_crop_path(tracks, (source.height, source.width), config, cuts, args.keyframe)
        t_plan = time.perf_counter()
        fps = source.fps or args.fps
        audio = source.path if source.path.is_file() else None
        progress, close = terminal_progress("render")
        try:
            summary = render_reframed(source.iter_frames(), path, args.out, size, fps, audio, progress)
        finally:
            close()
        t_render = time.perf_counter()
    finally:
        source.close()
    report = reframe_report(path.centers, path.heights, path.aspect, path.frame_size, tracks, path.cuts)
    report.update({
        "source": str(args.source), "out": str(args.out), "aspect": args.aspect, "zoom": args.zoom or "auto",
        "mode": args.mode, "object_ids": [t.object_id for t in tracks], "frames": path.num_frames,
        "frame_size": list(path.frame_size), "output_size": [summary["width"], summary["height"]],
        "fps": summary["fps"], "audio": summary["audio"], "render_notes": summary["notes"],
        "cuts": path.cuts, "shots": [s.as_dict() for s in path.shots],
        "seconds": {"tracks": t_tracks - t0 - t_cuts, "plan": t_plan - t_tracks + t_cuts,
                    "render": t_render - t_plan},
        "windows": [[round(float(v), 3) for v in row] for row in path.windows],
        "hotspots": [None if not np.isfinite(p).all() else [round(float(v), 2) for v in p]
                     for p in primary_hotspots(tracks)],
    })
    if args.report is not None:
        write_report(report, args.report)
    modes = ", ".join(f"{s.start}-{s.stop - 1}: {s.mode_x}/{s.mode_y}" for s in path.shots)
    print(f"reframed {path.num_frames} frames to {summary['width']}x{summary['height']} ({modes}); "
          f"hotspot in window {report['hotspot_in_window']:.1%}, mask coverage {report['mask_coverage']:.1%}, "
          f"jerk {report['jerk']:.3f} vs naive {report['baseline']['jerk']:.3f} px/frame^3; wrote {args.out}")
    for shot in path.shots:
        for note in shot.notes:
            print(f"note (frames {shot.start}-{shot.stop - 1}): {note}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """Stand-alone entry (``python -m napari_hotspot.reframe.cli``): `napari-hotspot reframe`, the same
    arguments and the same error handling."""
    from napari_hotspot.command_line import attach_signed_values, run_command

    parser = argparse.ArgumentParser(prog="napari-hotspot reframe", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(attach_signed_values(list(sys.argv[1:] if argv is None else argv)))
    return run_command("reframe", run, args)


if __name__ == "__main__":
    sys.exit(main())
