"""Benchmark of napari_hotspot.video: open time, extra memory, random access and sequential decoding.

Writes a textured 1500-frame 854x480 H.264 mp4 once (kept in the temp dir for later runs), then
measures opening it lazily (time, extra RSS), random-access latency with the cache disabled,
sequential and backward streaming speed. Prints a Markdown table naming the machine and command.

    python benchmarks/bench_video_open.py [--frames 1500] [--video PATH] [--samples 60]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import psutil

from napari_hotspot.video import open_source


def write_benchmark_video(path: Path, frames: int, width: int, height: int, fps: int = 30) -> None:
    """A camera pan over a large textured scene with a moving object and sensor noise (realistic bitrate)."""
    rng = np.random.default_rng(0)
    scene_h, scene_w = height + 200, width + 600
    scene = np.zeros((scene_h, scene_w, 3), np.float32)
    for cells, weight in ((8, 60.0), (32, 40.0), (128, 30.0), (400, 20.0)):
        grid = rng.random((max(2, cells * scene_h // scene_w), cells, 3), dtype=np.float32)
        scene += weight * cv2.resize(grid, (scene_w, scene_h), interpolation=cv2.INTER_CUBIC)
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}  # x264 defaults otherwise: GOP 250, B-frames
        for i in range(frames):
            t = i / frames
            x0 = int(300 + 290 * np.sin(2 * np.pi * t))
            y0 = int(100 + 90 * np.sin(4 * np.pi * t))
            frame = scene[y0 : y0 + height, x0 : x0 + width].copy()
            cx, cy = int(width * (0.2 + 0.6 * t)), int(height * (0.5 + 0.3 * np.sin(6 * np.pi * t)))
            cv2.ellipse(frame, (cx, cy), (60, 35), 20 * np.sin(8 * np.pi * t), 0, 360, (150, 90, 40), -1)
            # Fresh noise every frame, like a real sensor: keeps the bitrate near real 480p footage.
            frame = cv2.add(frame, rng.integers(0, 24, frame.shape, dtype=np.uint8))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1500)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--video", type=Path, default=None, help="video to benchmark (written if missing)")
    parser.add_argument("--samples", type=int, default=60, help="random frames to time")
    args = parser.parse_args(argv)

    video = args.video or Path(tempfile.gettempdir()) / "napari_hotspot_bench" / f"bench_v2_{args.frames}_{args.width}x{args.height}.mp4"
    if not video.exists():
        start = time.perf_counter()
        write_benchmark_video(video, args.frames, args.width, args.height)
        print(f"wrote {video} ({video.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - start:.1f} s", file=sys.stderr)

    rows: list[tuple[str, str]] = []
    rss_before = rss_mib()
    start = time.perf_counter()
    source = open_source(video, cache_bytes=0)  # cache off: every access below really decodes
    open_s = time.perf_counter() - start
    extra_rss = rss_mib() - rss_before
    rows += [
        ("video", f"{video.name}: {source.num_frames} frames, {source.width}x{source.height}, {source.fps:g} fps, "
                  f"{video.stat().st_size / 2**20:.1f} MiB, {len(source._keyframes)} keyframes"),
        ("open time (index packets + decode frame 0)", f"{open_s * 1e3:.0f} ms"),
        ("extra RSS after open", f"{extra_rss:.1f} MiB"),
    ]

    rng = np.random.default_rng(0)
    latencies = []
    for i in rng.integers(0, source.num_frames, args.samples):
        start = time.perf_counter()
        source.get_frame(int(i))
        latencies.append(time.perf_counter() - start)
    lat = np.array(latencies) * 1e3
    rows.append(
        (f"random access, {args.samples} frames, no cache",
         f"median {np.median(lat):.0f} ms, mean {lat.mean():.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, max {lat.max():.0f} ms")
    )

    start = time.perf_counter()
    count = sum(1 for _ in source.iter_frames())
    seq_s = time.perf_counter() - start
    rows.append((f"sequential iter_frames (all {count} frames)", f"{count / seq_s:.0f} fps ({seq_s:.1f} s)"))

    n_back = min(300, source.num_frames)
    start = time.perf_counter()
    stop = source.num_frames - 1 - n_back if n_back < source.num_frames else None  # None: down to frame 0
    count = sum(1 for _ in source.iter_frames(source.num_frames - 1, stop, -1))
    back_s = time.perf_counter() - start
    rows.append((f"backward iter_frames (last {count} frames, step -1)", f"{count / back_s:.0f} fps"))

    start = time.perf_counter()
    count = 0
    for i in range(0, min(300, source.num_frames)):
        source.get_frame(i)
        count += 1
    rows.append((f"get_frame(i), i = 0..{count - 1} (forward scrubbing, no cache)", f"{count / (time.perf_counter() - start):.0f} fps"))
    source.close()

    # A viewer stepping backward through the video, with the default frame cache.
    with open_source(video) as viewer_source:
        last = viewer_source.num_frames - 1
        viewer_source.get_frame(last)
        start = time.perf_counter()
        steps = 0
        for i in range(last - 1, max(-1, last - 301), -1):
            viewer_source.get_frame(i)
            steps += 1
        back_scrub_s = time.perf_counter() - start
    rows.append((f"get_frame(i), i = {last - 1}..{last - steps} (backward scrubbing, default cache)", f"{steps / back_scrub_s:.0f} fps"))
    from napari_hotspot.sample_data import make_sample_video

    sample_s = []
    for _ in range(3):  # the bundled sample video is made in memory when the demo starts (target: < 1 s)
        start = time.perf_counter()
        make_sample_video()
        sample_s.append(time.perf_counter() - start)
    rows.append(("make_sample_video() (the demo's synthetic video), median of 3", f"{np.median(sample_s):.2f} s"))
    rows.append(("RSS of this process at the end", f"{psutil.Process().memory_info().rss / 2**20:.0f} MiB"))

    print("### napari-hotspot video benchmark\n")
    print(f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs, Python {platform.python_version()}, PyAV {av.__version__}")
    print(f"- command: `python {' '.join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])])}`\n")
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
