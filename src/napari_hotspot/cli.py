"""Command-line interface: argument parsing only; every sub-command calls the package's modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .argtypes import non_negative_int, positive_int
from .command_line import attach_signed_values, run_command
from .fileio import atomic_write, prepare_output_dir
from .options import (
    ADAPT_REACH_FRAMES,
    DEFAULT_ADAPT_STEPS,
    add_absent_args,
    add_accept_truncated_arg,
    add_adapt_arg,
    add_complete_arg,
    add_distractor_arg,
    add_hotspot_smoothing_arg,
    add_window_arg,
    add_long_side_arg,
    add_prompt_args,
    adapt_seconds,
    tracking_options,
)


def cmd_track(args) -> int:
    from .errors import PromptError
    from .models.weights import ModelBundle
    from .pipeline import TRACK_CACHE_BYTES, prompt_from_args, terminal_progress, track_video
    from .session import HotspotSession
    from .video import open_source, require_complete

    from . import track_output

    track_output.check_replaceable(args.out)  # a project or someone's masks/ is refused before any work
    source = open_source(args.source, cache_bytes=TRACK_CACHE_BYTES)
    require_complete(source, args.accept_truncated)  # before the earlier output could be replaced
    options = tracking_options(args)
    session = HotspotSession(source, ModelBundle.load(args.weights), options=options)
    prompt = prompt_from_args(args, session.frame_size)
    prompt.check(session)  # a click off the image is refused before anything is announced
    for frame in args.absent:
        if frame == prompt.frame:
            raise PromptError(f"--absent {frame} is the prompt's frame (--frame): the object cannot be prompted "
                              "and absent on one frame")
        if frame >= session.num_frames:
            raise PromptError(f"--absent {frame} is out of range: the video has frames 0..{session.num_frames - 1}")
    if options.adapt_seconds > 0:  # a few silent seconds before the progress bar otherwise
        print(f"adapting the tracker to this video (up to {options.adapt_seconds:g} s; --adapt 0 skips it)",
              file=sys.stderr)
    progress, close = terminal_progress("track")
    try:
        run = track_video(session, [prompt], args.out, progress,
                          absent={prompt.object_id: sorted(set(args.absent))})
    finally:
        close()
    adapted = session.adaptation_state(prompt.object_id)
    verdict = session.adaptation_verdict(prompt.object_id)
    note = (f"; adapted first in {run.timings['adapt']:.1f}s ({adapted['steps']} steps; {verdict.describe(session.adapt_reach)})"
            if adapted and adapted["steps"] and verdict else "")
    frames = f"{run.frames} frame{'s' if run.frames != 1 else ''}"
    found = "".join(f"; found again on frame {t}" for _oid, t in run.found_again)
    print(f"tracked {frames} in {run.seconds - run.timings['adapt']:.1f}s ({run.fps:.1f} fps){note}{found}; wrote "
          f"{args.out}/masks and {args.out}/hotspots.csv")
    return 0


def cmd_train(args) -> int:
    from .models.training.train import main as train_main

    train_main(args.rest)
    return 0


def cmd_eval(args) -> int:
    from .evaluation.report import evaluate_predictions, list_sequences, write_results

    from .data_paths import davis_root

    # Checked first: --corrections and --hotspot-maps write their results only after all the work.
    prepare_output_dir(args.out, "--out folder")
    if args.hotspot_maps is not None:
        return _eval_hotspot_maps(args)
    if args.hotspots is not None:  # it would be ignored: say so rather than score something else
        from .errors import PromptError

        raise PromptError("--hotspots is scored against --hotspot-maps EXPORT_DIR (a hotspot ground-truth export)")
    root = args.davis_root or davis_root()
    if args.sequences:  # each scored once, however often it is named
        args.sequences = list(dict.fromkeys(args.sequences))
    if args.sequences and args.predictions is None:  # a typo fails now, not after the other sequences' work
        from .evaluation.tracker_eval import check_sequences

        check_sequences(root, args.sequences)
    if args.corrections:
        return _eval_corrections(args, root)
    note = None
    if args.predictions is not None:
        rows = evaluate_predictions(root, args.predictions, args.sequences)
    else:
        from .evaluation.tracker_eval import evaluate_tracker
        from .models.weights import ModelBundle

        models = ModelBundle.load(args.weights)
        note = _seen_in_training_note(models, args.sequences or list_sequences(root))
        rows = evaluate_tracker(root, args.out, args.sequences, args.init, models, options=_eval_options(args),
                                adapt_guard=args.adapt_guard, adapt_reach=args.adapt_reach or None)
    print(write_results(rows, args.out, note=note))
    return 0


def _eval_options(args):
    """`eval`'s TrackingOptions: the tracking commands' own, with its --adapt-steps."""
    return tracking_options(args).with_(adapt_steps=args.adapt_steps)


def _seen_in_training_note(models, sequences) -> str | None:
    """A warning (printed, and kept in the written report) when the weights trained on a scored sequence."""
    note = models.seen_in_training_note(sequences)
    if note:
        print(note, file=sys.stderr)
    return note


def _eval_hotspot_maps(args) -> int:
    """--hotspot-maps EXPORT --hotspots CSV: score a hotspot track against exported ground truth."""
    from .annotations.io_hotspot_maps import score_hotspot_csv
    from .errors import PromptError
    from .evaluation.report import markdown_table

    if args.hotspots is None:
        raise PromptError("--hotspot-maps needs --hotspots PRED.csv (a track's hotspots.csv)")
    scores = score_hotspot_csv(args.hotspots, args.hotspot_maps)
    rows = [{"object_id": oid, **{k: v for k, v in sc.items() if k != "object_id"}} for oid, sc in sorted(scores.items())]
    import csv

    with atomic_write(args.out / "hotspot_results.csv") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with atomic_write(args.out / "hotspot_summary.md") as fh:
        fh.write(markdown_table(rows) + "\n")
    keys = ("hs_pck10", "nss", "cc", "auc_judd")
    print(" ".join(f"{k}={sum(r[k] for r in rows) / len(rows):.3f}" for k in keys if k in rows[0]))
    return 0


def _eval_corrections(args, root) -> int:
    """--corrections K: J after each simulated correction, with and without adaptation, plus a plot."""
    import csv

    from .evaluation.report import list_sequences
    from .evaluation.tracker_eval import correction_curve, plot_correction_curves
    from .models.weights import ModelBundle

    models = ModelBundle.load(args.weights)
    note = _seen_in_training_note(models, args.sequences or list_sequences(root))
    budget = adapt_seconds(args)
    settings = {"memory only (--adapt 0)": 0.0}
    if budget > 0:
        settings[f"with adaptation ({budget:g} s)"] = budget
    curves = {}
    for label, seconds in settings.items():
        rows = []
        for seq in args.sequences or list_sequences(root):
            rows.extend(correction_curve(root, seq, args.corrections, args.init, models,
                                         _eval_options(args).with_(adapt_seconds=seconds),
                                         adapt_guard=args.adapt_guard, adapt_reach=args.adapt_reach or None))
        curves[label] = rows
        for k in range(args.corrections + 1):
            js = [r["J_mean"] for r in rows if r["corrections"] == k]
            fs = [r["F_mean"] for r in rows if r["corrections"] == k]
            print(f"{label}: corrections={k} J_mean={sum(js) / len(js):.3f} F_mean={sum(fs) / len(fs):.3f}")
    with atomic_write(args.out / "corrections.csv") as fh:
        cols = ["setting", "sequence", "object_id", "corrections", "J_mean", "F_mean", "J_recall", "F_recall"]
        w = csv.writer(fh)
        w.writerow(cols)
        for label, rows in curves.items():
            for r in rows:
                w.writerow([label] + [r[c] for c in cols[1:]])
    plot_correction_curves(curves, args.out / "corrections.png")
    if note:
        with atomic_write(args.out / "NOTE.txt", what="evaluation note") as fh:
            fh.write(note + "\n")
    print(f"wrote {args.out / 'corrections.csv'} and {args.out / 'corrections.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="napari-hotspot", description="Video object segmentation with joint hotspot tracking")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("track", help="track one object through a video from a prompt")
    p.add_argument("source", type=Path, help="video file or folder of frames")
    p.add_argument("--out", type=Path, required=True, help="output folder (masks/, hotspots.csv)")
    add_prompt_args(p)
    add_absent_args(p)
    p.add_argument("--weights", type=Path, default=None, help="model weights (default: the shipped ones)")
    add_adapt_arg(p)
    add_complete_arg(p)
    add_distractor_arg(p)
    add_window_arg(p)
    add_hotspot_smoothing_arg(p)
    add_long_side_arg(p)
    add_accept_truncated_arg(p)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("eval", help="score the tracker (or existing predictions) on DAVIS-layout data")
    p.add_argument("--davis-root", type=Path, default=None,
                   help="DAVIS-layout root (default: $NAPARI_HOTSPOT_DATA/davis2016-dev)")
    p.add_argument("--sequences", nargs="+", default=None, help="sequences to score (default: all)")
    p.add_argument("--init", choices=["mask", "click", "box", "auto"], default="mask",
                   help="simulated prompt on frame 0 (mask: ground truth; click: deepest interior point)")
    p.add_argument("--predictions", type=Path, default=None, help="score these DAVIS-format predictions instead")
    add_adapt_arg(p)
    add_complete_arg(p)
    p.add_argument("--hotspot-maps", type=Path, default=None, metavar="EXPORT_DIR",
                   help="score --hotspots against a hotspot ground-truth export (labelling dock / io_hotspot_maps)")
    p.add_argument("--hotspots", type=Path, default=None, metavar="CSV", help="predicted hotspots.csv to score")
    p.add_argument("--corrections", type=non_negative_int, default=0, metavar="K",
                   help="simulate K worst-frame corrections; prints J after each, with and without adaptation")
    p.add_argument("--no-adapt-guard", dest="adapt_guard", action="store_false",
                   help="use every adapted tracker, also one that fails the round-trip check the default "
                        "applies (session.adaptation_verdict; for measuring the guard)")
    p.add_argument("--adapt-reach", type=non_negative_int, default=ADAPT_REACH_FRAMES, metavar="FRAMES",
                   help="an adapted tracker tracks only frames nearer than this to a frame it learnt, the base "
                        f"tracker the others (default {ADAPT_REACH_FRAMES}; 0: every frame; for measuring the rule)")
    p.add_argument("--adapt-steps", type=positive_int, default=DEFAULT_ADAPT_STEPS, metavar="N",
                   help=f"at most N training steps per adaptation (default {DEFAULT_ADAPT_STEPS}; for measuring the rule)")
    add_distractor_arg(p)
    add_window_arg(p)
    add_hotspot_smoothing_arg(p)
    p.add_argument("--weights", type=Path, default=None)
    add_long_side_arg(p)
    p.add_argument("--out", type=Path, required=True, help="writes results.csv, summary.md (and predictions/)")
    p.set_defaults(func=cmd_eval)

    from .reframe import cli as reframe_cli

    p = sub.add_parser("reframe", help="zoom, crop or retarget a video around tracked objects")
    reframe_cli.add_arguments(p)
    p.set_defaults(func=reframe_cli.run)

    from ._napari import demo

    p = sub.add_parser("demo", help="open napari on the sample video with the dock widget (or a scripted screenshot run)")
    demo.add_arguments(p)
    p.set_defaults(func=demo.run)

    from .batch import cli as batch_cli

    p = sub.add_parser("batch", help="pre-annotate many videos on a Dask cluster (resumable, fault tolerant)")
    batch_cli.add_arguments(p)
    p.set_defaults(func=batch_cli.run)

    p = sub.add_parser("train", help="train the heads (see python -m napari_hotspot.train --help)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        # The trainer owns its options (and --help); argparse's REMAINDER would reject a leading option.
        args = argparse.Namespace(command="train", func=cmd_train, rest=argv[1:])
    else:
        args = build_parser().parse_args(attach_signed_values(argv))
    return run_command(args.command, args.func, args)


if __name__ == "__main__":
    sys.exit(main())
