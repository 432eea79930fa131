"""Screenshots of the two docks at 1920x1080 and 1366x768, and a check that neither scrolls sideways.

Run from the repository root, once per screen size (the Xvfb screen is the size checked)::

    xvfb-run -a -s "-screen 0 1920x1080x24" python docs/images/dock_screenshots.py 1920x1080
    xvfb-run -a -s "-screen 0 1366x768x24" python docs/images/dock_screenshots.py 1366x768

The viewer fills the screen, opens the synthetic sample (with ground truth), and the hotspot dock
prompts the animal with one click and tracks it, so the quality plot has curves. Writes
``dock_hotspot_<size>.png`` and ``dock_labelling_<size>.png`` here and exits 1 when a dock needs a
horizontal scroll bar (a scroll area of the dock shows one, or the dock is narrower than its content).
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parent


def _pump(seconds: float = 0.3) -> None:
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def main(size: str) -> int:
    warnings.filterwarnings("ignore")
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_hotspot._napari.layout import sideways_scroll
    from napari_hotspot.sample_data import make_sample_video, write_sample

    w, h = (int(v) for v in size.split("x"))
    tmp = Path(tempfile.mkdtemp())
    sample = make_sample_video()
    written = write_sample(tmp, "folder", sample=sample)
    viewer = napari.Viewer(title="napari-hotspot")
    window = viewer.window._qt_window
    window.setGeometry(0, 0, w, h)
    window.showMaximized()
    viewer.open(str(written.frames), plugin="napari-hotspot")
    failures = []
    dock, widget = viewer.window.add_plugin_dock_widget("napari-hotspot", "Hotspot tracking")
    c = widget.controller
    c.autosave_dir = tmp / "autosave"
    c.adapt_seconds = 0
    c.wait(120)
    from scipy.ndimage import distance_transform_edt
    import numpy as np

    depth = distance_transform_edt(np.pad(sample.masks[0] == 1, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    c.add_click(0, float(x), float(y), positive=True)
    c.track("forward")
    c.wait(300)
    c.go_to_frame(30)
    _pump(1.0)
    QApplication.processEvents()
    problems = sideways_scroll(widget)
    print(f"{size} hotspot dock: {widget.width()}x{widget.height()} px; "
          f"{'; '.join(problems) or 'no horizontal scrolling'}")
    failures += problems
    dock.grab().save(str(OUT / f"dock_hotspot_{size}.png"))

    ldock, lwidget = viewer.window.add_plugin_dock_widget("napari-hotspot", "Hotspot labelling", tabify=True)
    ldock.raise_()
    for index in range(lwidget.tabs.count()):  # every tab must fit, the agreement table too
        lwidget.tabs.setCurrentIndex(index)
        _pump(0.3)
        problems = sideways_scroll(lwidget)
        print(f"{size} labelling dock, tab {lwidget.tabs.tabText(index)!r}: {lwidget.width()}x{lwidget.height()} "
              f"px; {'; '.join(problems) or 'no horizontal scrolling'}")
        failures += problems
    lwidget.tabs.setCurrentIndex(0)
    _pump(0.3)
    ldock.grab().save(str(OUT / f"dock_labelling_{size}.png"))
    viewer.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "1920x1080"))
