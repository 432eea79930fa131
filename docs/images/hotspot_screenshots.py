"""Regenerate the screenshots of docs/user_guide.md from the real application.

Run from the repository root: ``xvfb-run -a python docs/images/hotspot_screenshots.py``.

* ``hotspot_demo.png``: exactly ``napari-hotspot demo --screenshot ... --quit`` (a click on each
  object of the synthetic sample, track all frames, middle frame).
* ``hotspot_davis.png`` (needs the DAVIS data, else skipped): the DAVIS-2016 ``blackswan`` frame
  folder opened with the reader (video + ground truth), the first frame's mask painted into the
  masks layer (here copied from the DAVIS annotation, the way a user paints or corrects a frame),
  tracked forward through the dock, frame 30 shown with the QA plot (confidence and J).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent
DATA = Path(os.environ.get("NAPARI_HOTSPOT_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "data"))
DAVIS_SEQ = DATA / "davis2016-dev" / "JPEGImages" / "480p" / "blackswan"


def demo_screenshot() -> int:
    shot = OUT / "hotspot_demo.png"
    proc = subprocess.run([sys.executable, "-m", "napari_hotspot._napari.demo", "--screenshot", str(shot), "--quit"])
    return proc.returncode


def davis_screenshot(frame: int = 30) -> int:
    import tempfile
    import warnings

    warnings.filterwarnings("ignore", message=".*PyQt5.*")
    import napari
    from napari.utils.notifications import notification_manager

    from napari_hotspot._napari.demo import WINDOW_SIZE, _wait_until
    from napari_hotspot._napari.widget import HotspotWidget

    notification_manager.records.clear()
    viewer = napari.Viewer(title="napari-hotspot: DAVIS blackswan")
    viewer.window.resize(*WINDOW_SIZE)
    image, truth = viewer.open(str(DAVIS_SEQ), plugin="napari-hotspot")
    truth.visible = False
    with tempfile.TemporaryDirectory() as scratch:
        widget = HotspotWidget(viewer, autosave_dir=scratch)
        viewer.window.add_dock_widget(widget, name="Hotspot tracking", area="right")
        c = widget.controller
        if not _wait_until(lambda: c.ready, 300):
            print("models did not load", file=sys.stderr)
            return 1
        widget.add_button.click()
        c.rename_object(1, "swan")
        mask = np.asarray(truth.data[0]) > 0
        ys, xs = np.nonzero(mask)
        # Paint the first frame's mask into the masks layer: the same event path as a brush stroke.
        c.layer("masks").data_setitem((np.zeros_like(ys), ys, xs), 1)
        if c.store.get(1, 0) is None:
            print(f"painting the first mask failed: {c.last_error}", file=sys.stderr)
            return 1
        widget.track_button.click()
        if not _wait_until(lambda: not c.running, 900):
            print("tracking did not finish", file=sys.stderr)
            return 1
        c.go_to_frame(frame)
        viewer.layers.selection.active = c.layer("masks")
        widget._refresh_plot(immediate=True)
        _wait_until(lambda: False, 0.5)
        viewer.screenshot(str(OUT / "hotspot_davis.png"), canvas_only=False)
        j = c.jaccard_series()[1]
        print(f"blackswan: mean J over frames 1..{len(j) - 1} = {np.nanmean(j[1:]):.3f}")
        widget.shutdown()
    viewer.close()
    return 0


def main() -> int:
    code = demo_screenshot()
    if DAVIS_SEQ.is_dir():
        code = code or davis_screenshot()
    else:
        print(f"skipping hotspot_davis.png: no DAVIS data at {DAVIS_SEQ}")
    return code


if __name__ == "__main__":
    sys.exit(main())
