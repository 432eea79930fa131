"""`napari-hotspot demo`: napari on the sample video with the hotspot widget, optionally a scripted session.

``napari-hotspot demo`` opens the viewer for interactive use. With ``--screenshot PATH`` and/or
``--quit`` it runs a scripted session through the same widget code a user drives (a click added to
the clicks layer, the Track button, a jump to a middle frame), saves a screenshot of the whole
window and exits (0 on success, 1 when a step failed). Works headless under ``xvfb-run -a``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

WINDOW_SIZE = (1500, 920)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--screenshot", type=Path, metavar="PATH",
                        help="run the scripted session and save a screenshot of the window to PATH (.png)")
    parser.add_argument("--quit", action="store_true", help="exit after the scripted session (no interactive viewer)")
    from napari_hotspot.argtypes import long_side_px, non_negative_int, positive_int
    from napari_hotspot.options import add_adapt_arg

    parser.add_argument("--frame", type=non_negative_int, default=None,
                        help="frame shown in the screenshot (default: the middle)")
    parser.add_argument("--frames", type=positive_int, default=48, help="number of frames of the sample video (default 48)")
    parser.add_argument("--long-side", type=long_side_px, default=None,
                        help="working resolution of the networks, 256-2048 (default: the video's own size, 320)")

    add_adapt_arg(parser, "the dock's per-video adaptation budget in seconds")


def _click_point(mask: np.ndarray) -> tuple[float, float]:
    """A click where a user would put it: the point deepest inside the object (x, y)."""
    from scipy.ndimage import distance_transform_edt

    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]  # the frame border counts as outside
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(x), float(y)


def _wait_until(predicate, timeout_s: float) -> bool:
    import time

    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)
    QApplication.processEvents()
    return predicate()


def scripted_session(viewer, widget, sample, frame: int | None = None, timeout_s: float = 600.0) -> list[str]:
    """Click on the sample's first object (the animal) in frame 0, track all frames forward, go to ``frame``.

    Everything goes through the widget (its buttons) and the clicks layer, like a user's session.
    Returns the problems met (empty when all went well).
    """
    controller = widget.controller
    problems: list[str] = []
    if not _wait_until(lambda: controller.ready, timeout_s):
        return ["the models did not load"]
    for oid, name in enumerate(sample.object_names[:1], start=1):
        widget.add_button.click()
        controller.rename_object(oid, name)
        x, y = _click_point(sample.masks[0] == oid)
        controller.add_click(0, x, y, positive=True)  # the same path as a user's click on the clicks layer
        if controller.store.get(oid, 0) is None:
            problems.append(f"the click on the {name} at ({x:.0f}, {y:.0f}) gave no mask: {controller.last_error}")
    if problems:
        return problems
    widget.scope_combo.setCurrentIndex(1)  # all objects
    widget.direction_combo.setCurrentText("forward")
    widget.track_button.click()
    if not _wait_until(lambda: not controller.running, timeout_s):
        problems.append("tracking did not finish in time")
        controller.cancel()
        controller.wait(30)
    for oid in controller.store.object_ids:
        missing = [t for t in range(sample.num_frames) if controller.store.get(oid, t) is None]
        if missing:
            problems.append(f"object {oid}: frames without a mask after tracking: {missing[:10]}")
    controller.select_object(1)
    controller.go_to_frame(sample.num_frames // 2 if frame is None else frame)
    viewer.layers.selection.active = controller.layer("masks")
    widget._refresh_plot(immediate=True)
    _wait_until(lambda: False, 0.3)  # let the canvas and the plot draw
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -m napari_hotspot._napari.demo`: `napari-hotspot demo`, with its error handling."""
    from napari_hotspot.command_line import run_command

    parser = argparse.ArgumentParser(prog="napari-hotspot demo", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_command("demo", run, parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    import napari

    from napari_hotspot._napari.widget import HotspotWidget
    from napari_hotspot.errors import ProjectIOError, PromptError
    from napari_hotspot.fileio import prepare_output_dir
    from napari_hotspot.sample_data import make_sample_video

    scripted = args.screenshot is not None or args.quit
    # Checked before the viewer opens: a bad --frame or screenshot path would otherwise surface only
    # after the whole scripted session.
    if args.frame is not None and args.frame >= args.frames:
        raise PromptError(f"--frame {args.frame} is outside the sample video (frames 0..{args.frames - 1})")
    if args.screenshot is not None:
        if args.screenshot.is_dir():
            raise ProjectIOError(f"--screenshot {args.screenshot} is a folder: give a .png file name")
        prepare_output_dir(args.screenshot.parent, "--screenshot folder")
    sample = make_sample_video(num_frames=args.frames)
    if scripted:
        # napari's one-time PyQt5 deprecation toast would cover the canvas in the documentation
        # screenshot; it is about napari's Qt backend, not this plugin. Interactive runs keep it.
        from napari._qt import qt_main_window

        qt_main_window.SHOW_QT_WARNING = False
    viewer = napari.Viewer(title="napari-hotspot demo")
    viewer.window.resize(*WINDOW_SIZE)
    frame_names = [f"{i:05d}" for i in range(sample.num_frames)]
    viewer.add_image(sample.frames, name="sample video", rgb=True,
                     metadata={"napari_hotspot": {"source": "sample", "fps": sample.fps, "frame_names": frame_names,
                                                  "num_frames": sample.num_frames}})
    viewer.add_labels(sample.masks, name="sample video ground truth", opacity=0.5, visible=False)
    long_side = args.long_side or max(sample.frames.shape[1:3])
    # A scripted run must leave nothing behind: its autosaves go to a temporary folder.
    scratch = tempfile.TemporaryDirectory(prefix="napari-hotspot-demo-") if scripted else None
    from napari_hotspot.options import adapt_seconds

    widget = HotspotWidget(viewer, long_side=long_side, autosave_dir=scratch.name if scratch else None,
                           adapt_seconds=adapt_seconds(args))
    viewer.window.add_dock_widget(widget, name="Hotspot tracking", area="right")
    if not scripted:
        napari.run()
        return 0
    problems = scripted_session(viewer, widget, sample, args.frame)
    if args.screenshot is not None:
        try:
            viewer.screenshot(str(args.screenshot), canvas_only=False)
            print(f"screenshot saved to {args.screenshot}")
        except (OSError, ValueError) as exc:  # after the session: say so, then close the viewer cleanly
            problems.append(f"cannot save the screenshot {args.screenshot}: {exc}")
    widget.shutdown()
    viewer.close()
    scratch.cleanup()
    for problem in problems:
        print(f"demo: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
