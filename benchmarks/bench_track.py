"""Tracking speed and memory: `napari-hotspot track` end to end at DAVIS 480p, time split into decode /
encoder / heads / write (heads_ahead: the heads' work the encoding thread does, the next frame's matching keys
and anchor correlations; heads: the tracking thread's) (and a frame's whole cost in encoder passes: the encoder alone, timed on one
frame over and over, and the encoder as it ran inside the loop: by default on the second thread that
encodes the next frame while the heads track this one, `--no-encode-ahead` on the tracking thread),
the share of tracked frames that ran on a search window around the previous mask (`windowed`, the
window's mean share of the frame, and `fallbacks`: windowed masks that reached a window side and ran
again on the whole frame), click latency on an encoded frame (the refined answer, and the decoder's
first answer the dock shows before it), peak memory against video length, and the
OpenCV DIS optical-flow peer measured in the same process (ratios are stable on shared machines).

    python benchmarks/bench_track.py [--sequences blackswan dog] [--threads 2] [--no-encode-ahead] [--memory] --out docs/bench_track.md
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_hotspot.data_paths import davis_root
from napari_hotspot.evaluation.baselines import propagate_mask_dis
from napari_hotspot.evaluation.report import read_label_png
from napari_hotspot.models.resolution import working_size
from napari_hotspot.models.weights import ModelBundle
from napari_hotspot.pipeline import Prompt, track_video
from napari_hotspot.session import HotspotSession
from napari_hotspot.video import open_source


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def keep_outputs_by_frame(session: HotspotSession, method: str) -> dict:
    """Wrap the session's `method(mask_prob, frame=None)` (`_mask_to_frame`, `_frame_probability`) so that
    each output is also kept by frame in the returned dict (the studies' view of what a sweep produced)."""
    kept = {}
    plain = getattr(session, method)

    def keep(mask_prob, frame=None):
        kept[frame] = plain(mask_prob, frame)
        return kept[frame]

    setattr(session, method, keep)
    return kept


def add_weights_arg(ap) -> None:
    """--weights of the accuracy benchmarks (read it with `ModelBundle.load(args.weights)`)."""
    ap.add_argument("--weights", type=Path, default=None,
                    help="weights file (default: the shipped one, which trained on all 12 development "
                         "sequences: score accuracy with a fold model on its held-out sequences, scripts/gpu_folds.sh)")


def emit(lines: list[str], out: Path | None, note: str | None = None) -> None:
    """Print a benchmark's Markdown report, and write it to `out` when given (shared by the scripts).

    note: a bold first line, e.g. `ModelBundle.seen_in_training_note` (the weights saw these sequences)."""
    text = "\n".join(([f"**{note}**", ""] if note else []) + lines)
    print(text)
    if out:
        out.write_text(text + "\n")


def encoder_only_ms(models: ModelBundle, size, n=10, blocks=5, upto: str = "s32") -> float:
    """One encoder pass on one frame, over and over: the median of `blocks` means of `n` passes (a single
    block of 10 ranged 10.3-13.4 ms between runs on a quiet machine; a hiccup moved issue 19's ratio).
    upto "s16": the pass a tracking sweep runs (the tracker reads s4-s16)."""
    from napari_hotspot.models.backbone import frame_to_tensor

    x = frame_to_tensor(np.zeros((480, 854, 3), np.uint8), size)
    models.encoder(x, upto=upto)
    means = []
    for _ in range(blocks):
        t0 = time.perf_counter()
        for _ in range(n):
            models.encoder(x, upto=upto)
        means.append(1000 * (time.perf_counter() - t0) / n)
    return float(np.median(means))


def bench_sequence(models, root: Path, seq: str, out: Path, encode_ahead: bool = True) -> dict:
    gt_files = sorted((root / "Annotations" / "480p" / seq).glob("*.png"))
    gt0 = read_label_png(gt_files[0], ground_truth=True) > 0
    with open_source(root / "JPEGImages" / "480p" / seq) as src:
        session = HotspotSession(src, models)
        session.encode_ahead = encode_ahead
        from napari_hotspot.models import tracking

        windows, fallbacks = [], []  # each windowed step's window share, and those run again on the whole frame
        grid = (session.work_size[0] // 16) * (session.work_size[1] // 16)
        step_in = tracking._step_in

        def counted(*a, **k):
            r0, r1, c0, c1 = a[6]
            res = step_in(*a, **k)
            if (r1 - r0) * (c1 - c0) < grid:  # a window, not the whole frame
                (fallbacks if res is None else windows).append((r1 - r0) * (c1 - c0) / grid)
            return res

        tracking._step_in = counted
        try:
            run = track_video(session, [Prompt("mask", 0, mask=gt0)], out / seq)
        finally:
            tracking._step_in = step_in
        # Click latency: the frame is encoded (cached); a click runs the Gaze2Mask decoder and the
        # tracker passes that refine its mask (session.REFINE_PASSES), no encoder pass.
        session.features(0)
        from napari_hotspot.models.tracking import deepest_point

        x, y = deepest_point(gt0)
        lat, first = [], []
        for k in range(5):
            t0 = time.perf_counter()
            session.add_prompt(0, 2, points=[(x + k, y)])
            lat.append(time.perf_counter() - t0)
        for k in range(5):  # the dock's first answer: Gaze2Mask-Net alone, the passes come later
            t0 = time.perf_counter()
            session.add_prompt(0, 3, points=[(x + k, y)], refine_later=True)
            first.append(time.perf_counter() - t0)
        # Peer: DIS optical-flow propagation over the same frames, same process.
        t0 = time.perf_counter()
        n = sum(1 for _ in propagate_mask_dis(src.iter_frames(), gt0))
        dis_s = time.perf_counter() - t0
    n_frames = run.frames
    return {"sequence": seq, "frames": n_frames, "fps": run.fps,
            **{f"{k}_ms": 1000 * v / n_frames for k, v in run.timings.items()},
            "click_ms": 1000 * float(np.median(lat)), "click_first_ms": 1000 * float(np.median(first)),
            "dis_fps": n / dis_s,
            # tracked steps that ran on a window (`tracking.search_window`), its mean share of the frame, and
            # the steps whose windowed mask reached a window side and ran again on the whole frame
            "windowed": len(windows) / max(1, n_frames - 1),
            "window_area": float(np.mean(windows)) if windows else 1.0,
            "fallbacks": len(fallbacks)}


class _LoopedFrames:
    """The sample video's frames looped to `num_frames`, yielded one at a time (no big array)."""

    def __init__(self, frames: np.ndarray, num_frames: int):
        self.frames, self.shape = frames, (num_frames, *frames.shape[1:])

    def __iter__(self):
        return (self.frames[i % len(self.frames)] for i in range(self.shape[0]))


def peak_rss_mib(num_frames: int) -> float:
    """Track a synthetic video of `num_frames` frames in a fresh process; its peak RSS in MiB.

    The video is written here first, streamed frame by frame, so the measured process only opens and
    tracks it (an earlier version built the looped video in the measured process: its peak was the
    video array, not tracking)."""
    from napari_hotspot.sample_data import make_sample_video, write_mp4

    d = Path(tempfile.mkdtemp())
    video = write_mp4(_LoopedFrames(make_sample_video(num_frames=48).frames, num_frames), d / "v.mp4", fps=24)
    code = f"""
import resource
from pathlib import Path
from napari_hotspot.sample_data import make_sample_video
from napari_hotspot.session import HotspotSession
from napari_hotspot.pipeline import TRACK_CACHE_BYTES, Prompt, track_video
from napari_hotspot.video import open_source
mask = make_sample_video(num_frames=48).masks[0] == 1
with open_source({str(video)!r}, cache_bytes=TRACK_CACHE_BYTES) as src:
    track_video(HotspotSession(src), [Prompt('mask', 0, mask=mask)], Path({str(d / 'out')!r}))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sequences", nargs="+", default=["blackswan", "car-shadow", "dog"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-encode-ahead", action="store_true",
                    help="encode each frame on the tracking thread (the session encodes the next frame on a "
                         "second thread by default; its encoder_ms is then that thread's time, overlapped)")
    ap.add_argument("--memory", action="store_true", help="also measure peak RSS for 300 vs 3000 frames")
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown table here too")
    ap.add_argument("--weights", type=Path, default=None, help="weights file (default: the shipped one)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = davis_root()
    models = ModelBundle.load(args.weights)
    size = working_size(480, 854)
    enc_ms = encoder_only_ms(models, size)
    enc16_ms = encoder_only_ms(models, size, upto="s16")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seq in args.sequences:
            rows.append(bench_sequence(models, root, seq, Path(tmp), not args.no_encode_ahead))
    for r in rows:  # issue 19's measure: a tracked frame's cost in encoder-only passes of this run
        r["frame_per_encoder_alone"] = 1000.0 / r["fps"] / enc_ms
        r["frame_per_encoder_in_loop"] = 1000.0 / r["fps"] / r["encoder_ms"]
    cols = ["sequence", "frames", "fps", "decode_ms", "encoder_ms", "heads_ahead_ms", "heads_ms", "write_ms", "click_ms",
            "click_first_ms", "dis_fps", "windowed", "window_area", "fallbacks",
            "frame_per_encoder_alone", "frame_per_encoder_in_loop"]
    lines = [f"Command: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`  ",
             f"Data: DAVIS-2016 480p ({', '.join(args.sequences)}), prompt = frame-0 ground-truth mask  ",
             f"Machine: {machine()}  ",
             f"Encoder alone (one {size[0]}x{size[1]} pass, same run, median of 5 blocks of 10): {enc_ms:.1f} ms; "
             f"to s16 only, the pass a sweep runs: {enc16_ms:.1f} ms  ",
             f"Encoding ahead on a second thread: {'no' if args.no_encode_ahead else 'yes'}", "",
             "| " + " | ".join(cols) + " | ratio fps / DIS fps |", "|" + "---|" * (len(cols) + 1)]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]) if isinstance(r[c], (str, int))
                                        else f"{r[c]:.2f}" if c.startswith(("frame_per", "window")) else f"{r[c]:.1f}" for c in cols)
                     + f" | {r['fps'] / r['dis_fps']:.2f} |")
    if args.memory:
        m300, m3000 = peak_rss_mib(300), peak_rss_mib(3000)
        lines += ["", f"Peak RSS tracking a 240x320 synthetic video: 300 frames {m300:.0f} MiB, "
                      f"3000 frames {m3000:.0f} MiB (ratio {m3000 / m300:.2f})"]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
