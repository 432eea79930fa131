"""GUI speed through the real hotspot dock: click-to-mask, tracking frames/s against the session alone,
and the longest freeze of the viewer while it tracks.

Run under Xvfb from the repository root::

    xvfb-run -a -s "-screen 0 1920x1080x24" python benchmarks/bench_gui_speed.py [--seq blackswan] [--frames 30]

* click-to-mask: the dock moves to a frame it has not shown yet and a click lands at once, so the
  time (the click's layer event until the mask is in the store) includes encoding that frame;
  median and max over ``--clicks`` frames. That mask is Gaze2Mask-Net's answer; the tracker passes
  that refine it run in a thread after it, and ``click_to_refined_ms`` is the time until their
  mask is in the store (the viewer's event loop running meanwhile). ``encoder_ms`` is one encoder
  pass alone in the same process (median of 5), for comparing machines. ``encoded_click_ms``: a click
  for a new object on those frames, now encoded; ``second_click_ms``: a second positive click on the
  same frame right after that one's answer (it stops the first one's refinement).
* tracking: frames/s of a forward run in the dock (``Track``, adaptation and completion off) from a
  mask painted on frame 0, against frames/s of ``HotspotSession.propagate`` (what the CLI's
  ``track`` runs) on the same frames in the same process, right after.
* freeze: a 20 ms QTimer on the main thread during the dock's run and for 1 s after it (the layers'
  and the QA plot's catching up at its end); the longest gap between two ticks less the 20 ms is the
  longest time the viewer did not respond.
* frame step: after the run, the viewer steps to each of the first 10 tracked frames as an annotator
  reviewing them would (``viewer.dims``); ``frame_step_ms`` is the median and max of the event-loop
  work that shows the new frame (layers sliced, the QA plot's marker moved, the window painted).
* baselines of the freeze without the dock (``--no-baseline`` skips them; the dock is shut down first,
  its layers stay in the viewer): the same viewer while a
  plain thread runs ``HotspotSession.propagate`` over the same frames (its steps on the model thread,
  as the dock's: ``napari_hotspot.compute``) and the main thread only turns
  the event loop (``worker_only``: what tracking on this machine's CPUs costs the viewer by itself), and
  the same while the viewer also steps to each tracked frame as it comes (``worker_and_steps``: napari
  drawing a new frame per result, which the dock does not do), and ``window_repaint``: the median
  turn of the event loop that repaints the whole idle window once (napari's canvas and the docks;
  under Xvfb, software OpenGL), the least any visible change costs. A dock freeze near these is not
  the dock's own work.

Uses a DAVIS-2016 dev sequence (``$NAPARI_HOTSPOT_DATA``, default ``../shared/data``) when present,
else the synthetic sample. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq", default="blackswan", help="DAVIS-2016 dev sequence")
    parser.add_argument("--frames", type=int, default=30, help="frames to track")
    parser.add_argument("--clicks", type=int, default=5, help="first-visit frames to click on")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the freeze baselines without the dock")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    import napari
    import torch
    from scipy.ndimage import distance_transform_edt

    from napari_hotspot._napari.controller import shared_models
    from napari_hotspot._napari.controller_jobs import process_events
    from napari_hotspot._napari.widget import HotspotWidget
    from napari_hotspot.models.backbone import frame_to_tensor
    from napari_hotspot.compute import compute_thread
    from napari_hotspot.models.precision import inference_dtype
    from napari_hotspot.session import HotspotSession

    data = Path(os.environ.get("NAPARI_HOTSPOT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    seq = data / "davis2016-dev" / "JPEGImages" / "480p" / args.seq
    tmp = Path(tempfile.mkdtemp())
    if not seq.is_dir():
        from napari_hotspot.sample_data import write_sample

        seq = write_sample(tmp / "video", "folder").frames
    models = shared_models()
    viewer = napari.Viewer(title="bench_gui_speed")
    viewer.window._qt_window.resize(1920, 1080)
    video, truth = viewer.open(str(seq), plugin="napari-hotspot")[:2]
    widget = HotspotWidget(viewer, models=models, autosave_dir=tmp / "autosave", adapt_seconds=0)
    viewer.window.add_dock_widget(widget, name="Hotspot tracking")
    c = widget.controller
    c.complete_frames = 0
    c.wait(120)
    T = c.num_frames
    n = min(args.frames, T)

    # click-to-mask on frames never shown before (encoding included)
    c.add_object()
    times, refined, encoded, again, points = [], [], [], [], {}
    for t in np.linspace(T // 2, T - 1, args.clicks).astype(int):
        gt = np.asarray(truth.data[t]) > 0
        depth = distance_transform_edt(np.pad(gt, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(depth)), gt.shape)
        points[int(t)] = (float(x), float(y))
        c.wait(30)  # no earlier job running
        c.go_to_frame(int(t))  # the dock asks for an encoding in the background; the click comes at once
        start = time.perf_counter()
        c.add_click(int(t), float(x), float(y), positive=True)
        times.append(time.perf_counter() - start)
        assert c.store.get(1, int(t)) is not None, c.last_error
        while c._refine_worker is not None:
            process_events()
            time.sleep(0.001)
        refined.append(time.perf_counter() - start)
    c.wait(30)
    # a second click right after a first one (a new object on the same, now encoded, frames)
    c.add_object()
    for t, (x, y) in points.items():
        start = time.perf_counter()
        c.add_click(t, x, y, positive=True)
        encoded.append(time.perf_counter() - start)
        process_events()  # the first answer drawn, its refinement under way
        start = time.perf_counter()
        c.add_click(t, x + 4.0, y, positive=True)
        again.append(time.perf_counter() - start)
        c.wait(30)
    c.select_object(1)

    # tracking in the dock from a painted first frame, with a 20 ms timer watching the main thread
    gt0 = np.asarray(truth.data[0]) > 0
    ys, xs = np.nonzero(gt0)
    c.layer("masks").data_setitem((np.zeros_like(ys), ys, xs), 1)
    c.track_range = (0, n - 1)
    watch = MainThreadWatch()
    c.go_to_frame(0)
    c.wait(30)
    ended = []  # when the run's end (the layers' refresh) was done: the dock says so last
    c.run_state_changed.connect(lambda running: ended.append(time.perf_counter()) if not running else None)
    start = time.perf_counter()
    c.track("forward")
    while c.running:
        process_events()  # a turn of the main loop, deferred deletions included
        time.sleep(0.002)
    dock_s = time.perf_counter() - start
    seen, gaps = watch.settle_and_stop(start, process_events)  # the run's end is the viewer's work too
    # where the longest gap lies: during the run, at its end (it holds the dock's end-of-run refresh), or
    # in the second after it (the tracks layer, the QA plot, the canvas catching up)
    when = "during the run"
    if len(seen) > 2 and ended:
        a, b = seen[int(np.argmax(gaps))], seen[int(np.argmax(gaps)) + 1]
        when = "at the run's end" if a <= ended[0] <= b else "after the run" if a > ended[0] else when
    dock_fps = (n - 1) / dock_s

    step_times = []  # reviewing the tracked frames one by one
    for t in range(1, min(n, 11)):
        start = time.perf_counter()
        viewer.dims.set_current_step(0, t)
        process_events()
        step_times.append(time.perf_counter() - start)
        for _ in range(5):
            process_events()
            time.sleep(0.01)
    viewer.dims.set_current_step(0, 0)
    process_events()

    # the same frames through the session alone (what the CLI runs), same process, right after, on the
    # process's model thread as the dock's work (a second thread running torch would slow both down:
    # napari_hotspot.compute)
    def track_alone() -> tuple[float, tuple[int, int]]:
        session = HotspotSession(c._source, models)
        session.add_prompt(0, 1, mask=gt0)
        start = time.perf_counter()
        done = sum(1 for _ in session.propagate([1], start_frame=0, end_frame=n - 1))
        return done / (time.perf_counter() - start), session.work_size

    cli_fps, work_size = compute_thread().run(track_alone)

    baseline = {}
    if args.baseline:
        # the dock shut down (its timers, workers and frame handlers), its layers still in the viewer
        c.wait(30)
        source = c._source
        widget.shutdown()
        for name, steps in (("worker_only", False), ("worker_and_steps", True)):
            baseline[name] = freeze_without_dock(viewer, source, models, gt0, n, steps, process_events)
        baseline["window_repaint"] = window_repaint_ms(viewer, process_events)

    def encoder_alone() -> list[float]:
        enc = []
        for t in range(5):  # the encoder alone on frames the session has not cached (same process, same run)
            img = c._source.get_frame(n + t if n + t < T else t)
            start = time.perf_counter()
            models.encoder(frame_to_tensor(img, work_size))
            enc.append(time.perf_counter() - start)
        return enc

    enc = compute_thread().run(encoder_alone)

    result = {
        "video": str(seq.name), "frames": n, "size": list(c.store.shape[1:]),
        "encoder_ms": round(1000 * float(np.median(enc)), 1),
        "click_to_mask_ms": {"median": round(1000 * float(np.median(times)), 1),
                             "max": round(1000 * float(np.max(times)), 1), "n": len(times)},
        "encoded_click_ms": {"median": round(1000 * float(np.median(encoded)), 1),
                             "max": round(1000 * float(np.max(encoded)), 1)},
        "second_click_ms": {"median": round(1000 * float(np.median(again)), 1),
                            "max": round(1000 * float(np.max(again)), 1)},
        "click_to_refined_ms": {"median": round(1000 * float(np.median(refined)), 1),
                                "max": round(1000 * float(np.max(refined)), 1)},
        "dock_fps": round(dock_fps, 2), "session_fps": round(cli_fps, 2),
        "dock_vs_session": round(dock_fps / cli_fps, 3),
        "longest_freeze_ms": MainThreadWatch.longest_ms(gaps),
        "longest_freeze_when": when,
        "frame_step_ms": {"median": round(1000 * float(np.median(step_times)), 1),
                          "max": round(1000 * float(np.max(step_times)), 1)},
        "baseline_freeze_ms": baseline,
        "cpus": os.cpu_count(), "load_avg": [round(v, 2) for v in os.getloadavg()],
        "torch_threads": torch.get_num_threads(), "inference_dtype": str(inference_dtype()).replace("torch.", ""),
    }
    print(json.dumps(result))
    widget.shutdown()
    viewer.close()
    return 0


class MainThreadWatch:
    """A 20 ms QTimer on the main thread: the longest gap between its ticks, less the period, is the
    longest time the viewer did not respond."""

    PERIOD_S = 0.020

    def __init__(self):
        from qtpy.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self.timer.start(int(1000 * self.PERIOD_S))

    def settle_and_stop(self, start: float, process_events, settle_s: float = 1.0):
        """Turn the event loop ``settle_s`` more (what follows a run is the viewer's work too), stop, and
        return the ticks since ``start`` and the gaps between them."""
        settle = time.perf_counter()
        while time.perf_counter() - settle < settle_s:
            process_events()
            time.sleep(0.002)
        self.timer.stop()
        seen = [t for t in self.ticks if t >= start]
        return seen, (np.diff(seen) if len(seen) > 2 else np.zeros(1))

    @classmethod
    def longest_ms(cls, gaps) -> float:
        return round(1000 * max(float(np.max(gaps)) - cls.PERIOD_S, 0.0), 1)


def window_repaint_ms(viewer, process_events, repeats: int = 5) -> float:
    """Median time (ms) of the event-loop turn that repaints the whole (idle) main window once."""
    window = viewer.window._qt_window
    canvas = viewer.window._qt_viewer.canvas.native
    times = []
    for _ in range(repeats):
        for _ in range(5):  # idle first
            process_events()
            time.sleep(0.02)
        window.update()
        canvas.update()
        start = time.perf_counter()
        process_events()
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 1)


def freeze_without_dock(viewer, source, models, mask0, n, steps, process_events) -> float:
    """Longest gap (ms, less the 20 ms period) of a 20 ms main-thread timer while a plain thread tracks
    ``n`` frames with a fresh session (no dock); with ``steps`` the viewer shows each tracked frame."""
    import queue
    import threading

    from napari_hotspot.compute import compute_thread
    from napari_hotspot.session import HotspotSession

    def prompted() -> HotspotSession:  # model work on the model thread, as all of the dock's
        session = HotspotSession(source, models)
        session.add_prompt(0, 1, mask=mask0)
        return session

    session = compute_thread().run(prompted)
    done: queue.Queue = queue.Queue()

    def run():
        try:
            for result in session.propagate([1], start_frame=0, end_frame=n - 1):
                done.put(result.frame)
        finally:
            done.put(None)  # the main loop ends even when tracking fails

    watch = MainThreadWatch()
    process_events()
    start = time.perf_counter()
    worker = threading.Thread(target=compute_thread().run, args=(run,), daemon=True)  # as the dock's jobs
    worker.start()
    finished = False
    while not finished:
        process_events()
        time.sleep(0.002)
        while not done.empty():
            frame = done.get()
            if frame is None:
                finished = True
            elif steps:
                viewer.dims.set_current_step(0, int(frame))
    worker.join()
    return MainThreadWatch.longest_ms(watch.settle_and_stop(start, process_events)[1])


if __name__ == "__main__":
    sys.exit(main())
