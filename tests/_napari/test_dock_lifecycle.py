"""Closing a dock or the viewer stops the dock's background jobs: no worker outlives its dock.

napari's "close dock" only unparents the widget, so before the fix every job a dock had started
(model loading, frame encoding, tracking) kept running, and a process that opened and closed the
three docks in two viewers ended in ``RuntimeError: wrapped C/C++ object of type WorkerBaseSignals
has been deleted`` and ``Aborted`` (exit 134). The crash shows only when the process exits, so the
scenario runs in a child process (it inherits the Xvfb display of the test run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def sample():
    from napari_hotspot.sample_data import make_sample_video

    return make_sample_video(num_frames=12, height=96, width=128)

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import napari
    from qtpy.QtWidgets import QApplication
    from napari_hotspot._napari.workers import worker_running
    from napari_hotspot.sample_data import make_sample_video, write_sample

    tmp = Path(sys.argv[1])
    sample = write_sample(tmp / "video", "folder", sample=make_sample_video(num_frames=12, height=96, width=128))
    autosave = tmp / "autosave"

    def pump(n=10):
        for _ in range(n):
            QApplication.processEvents()
            time.sleep(0.01)

    for size in ((1920, 1080), (1366, 768)):
        viewer = napari.Viewer(show=True)
        viewer.window._qt_window.resize(*size)
        viewer.open(str(sample.frames), plugin="napari-hotspot")
        for name in ("Hotspot tracking", "Hotspot labelling", "Reframe video"):
            dock, widget = viewer.window.add_plugin_dock_widget("napari-hotspot", name)
            jobs = []
            if name == "Hotspot tracking":
                c = widget.controller
                c.autosave_dir = autosave
                c.adapt_seconds = 0
                c.wait(60)  # the models load in a worker
                assert c.ready, c.last_error
                c.add_click(0, 64, 48, positive=True)
                jobs = [c.track("forward")]  # close the dock while it tracks
                assert jobs[0] is not None and c.busy, c.last_error
            pump(3)
            viewer.window.remove_dock_widget(dock)
            left = [w for w in jobs if worker_running(w)]
            assert not left, f"{name}: {len(left)} job(s) still running after the dock closed"
            if name == "Hotspot tracking":
                assert widget._closing
                saved = list(autosave.glob("*.hotspot"))
                assert saved, "the clicked object was not autosaved when the dock closed"
            pump()
        # the last dock stays open while the viewer closes
        viewer.window.add_plugin_dock_widget("napari-hotspot", "Hotspot tracking")
        pump()
        viewer.close()
        pump()
    print("clean exit")
    """
)


def test_docks_open_and_close_in_two_viewers(tmp_path):
    env = {**os.environ, "NAPARI_HOTSPOT_AUTOSAVE_DIR": str(tmp_path / "autosave")}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=600, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "clean exit" in proc.stdout
    assert "has been deleted" not in output, output[-4000:]


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)])
def test_docks_fit_without_sideways_scrolling(make_napari_viewer, sample_folder, size):
    """Both docks, in a window of that screen size, show every control with vertical scrolling only
    (the hotspot dock needed ~495 px where napari's dock area gives ~395)."""
    from qtpy.QtWidgets import QApplication

    from napari_hotspot._napari.layout import sideways_scroll

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*size)
    viewer.open(str(sample_folder.frames), plugin="napari-hotspot")
    _dock, hotspot = viewer.window.add_plugin_dock_widget("napari-hotspot", "Hotspot tracking")
    hotspot.controller.wait(60)
    for section in hotspot.sections.values():  # every section open: the widest content shows
        section.expand(animate=False)
    _ldock, labelling = viewer.window.add_plugin_dock_widget("napari-hotspot", "Hotspot labelling")
    for _ in range(20):
        QApplication.processEvents()
    assert hotspot.width() <= 400 and not sideways_scroll(hotspot), sideways_scroll(hotspot)
    for index in range(labelling.tabs.count()):
        labelling.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        assert not sideways_scroll(labelling), (labelling.tabs.tabText(index), sideways_scroll(labelling))
    hotspot.shutdown()
