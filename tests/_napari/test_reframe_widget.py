"""GUI test of the "Reframe video" widget: preview rectangles per frame, keyframe by dragging, render."""

from __future__ import annotations

import av
import numpy as np
import pytest
from qtpy.QtCore import Qt

from napari_hotspot._napari.reframe_widget import WINDOW_LAYER, ReframeWidget
from napari_hotspot.sample_data import make_sample_video

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def sample():
    return make_sample_video(num_frames=12, height=120, width=160)


def add_sample_layers(viewer, sample):
    viewer.add_image(sample.frames, rgb=True, name="video", metadata={"napari_hotspot": {"fps": 12.0}})
    viewer.add_labels(sample.masks, name="masks")
    t_idx, k_idx = np.nonzero(sample.hotspots[..., 2] > 0.5)
    points = np.column_stack([t_idx, sample.hotspots[t_idx, k_idx, 1], sample.hotspots[t_idx, k_idx, 0]])
    viewer.add_points(points, features={"object_id": k_idx + 1}, name="hotspots")


def test_preview_keyframe_and_render(make_napari_viewer, qtbot, tmp_path, sample):
    viewer = make_napari_viewer()
    add_sample_layers(viewer, sample)
    widget = ReframeWidget(viewer)
    viewer.window.add_dock_widget(widget)
    assert widget.image_combo.currentText() == "video"
    assert widget.labels_combo.currentText() == "masks" and widget.points_combo.currentText() == "hotspots"
    assert widget.object_ids() == [1, 2]
    widget.objects_list.item(1).setCheckState(Qt.Unchecked)  # keep only object 1 (the animal) in view
    assert widget.object_ids() == [1]
    widget.aspect_combo.setCurrentText("9:16")
    widget.mode_combo.setCurrentText("track")

    widget.compute_path()
    qtbot.waitUntil(lambda: widget.path is not None, timeout=30000)
    layer = viewer.layers[WINDOW_LAYER]
    rects = [np.asarray(r) for r in layer.data]
    assert len(rects) == sample.num_frames
    hot = sample.hotspots[:, 0, :2]
    for t, rect in enumerate(rects):
        assert np.all(rect[:, 0] == t)  # one rectangle per frame, on that frame only
        y0, x0 = rect[:, 1].min(), rect[:, 2].min()
        y1, x1 = rect[:, 1].max(), rect[:, 2].max()
        assert x1 - x0 == pytest.approx((y1 - y0) * 9 / 16)
        assert x0 >= -0.5 - 1e-6 and x1 <= 159.5 + 1e-6 and y0 >= -0.5 - 1e-6 and y1 <= 119.5 + 1e-6
        assert x0 <= hot[t, 0] <= x1 and y0 <= hot[t, 1] <= y1

    # Drag the window of frame 5 sideways: it becomes a keyframe and the path is re-planned through it.
    first_path = widget.path
    cx = float(first_path.centers[5, 0])
    shift = 25.0 if cx < 80 else -25.0
    moved = [r.copy() for r in rects]
    moved[5][:, 2] += shift
    layer.data = moved
    qtbot.waitUntil(lambda: widget.path is not first_path, timeout=30000)
    assert list(widget.keyframes) == [5]
    assert widget.keyframes[5].height is None  # moved, not resized: the zoom is kept
    assert widget.path.centers[5, 0] == pytest.approx(cx + shift, abs=1.01)
    assert "5" in widget.keyframe_label.text()

    out = tmp_path / "reframed.mp4"
    widget.out_edit.setText(str(out))
    widget.render()
    qtbot.waitUntil(lambda: widget.report is not None, timeout=60000)
    assert widget.progress.value() == sample.num_frames
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        w, h = stream.codec_context.width, stream.codec_context.height
    assert frames == sample.num_frames and abs(w / h - 9 / 16) < 0.02
    assert (tmp_path / "reframed.json").is_file()
    from napari_hotspot.reframe.metrics import inside_window

    inside = inside_window(widget.path.windows, hot)
    assert inside[np.arange(sample.num_frames) != 5].all()  # only the user's keyframe may leave it out
    assert widget.report["hotspot_in_window"] == pytest.approx(inside.mean())

    keyed_path = widget.path
    widget.clear_keyframes()
    assert widget.keyframes == {}
    qtbot.waitUntil(lambda: widget.path is not keyed_path, timeout=30000)
    assert np.allclose(widget.path.centers, first_path.centers, atol=1e-3)  # back to the unkeyed path

    # A render that fails (a parent of the output is a file) ends in the status line, not in an
    # exception re-raised on the GUI thread (which pytest-qt would report, and a script would die of).
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    widget.report = None
    worker = widget.render(str(blocker / "r.mp4"))
    qtbot.waitUntil(lambda: "rendering failed" in widget.status.text(), timeout=30000)
    qtbot.waitUntil(lambda: widget.render_button.isEnabled(), timeout=30000)
    assert "a parent of this path is a file" in widget.status.text() and widget.report is None
    assert worker is not None


def test_widget_reports_missing_inputs(make_napari_viewer, qtbot, sample):
    viewer = make_napari_viewer()
    viewer.add_image(sample.frames, rgb=True, name="video")
    widget = ReframeWidget(viewer)
    assert widget.compute_path() is None
    assert "no object selected" in widget.status.text()
    assert widget.render("/tmp/never.mp4") is None
    assert "preview a crop path first" in widget.status.text()
    # hotspots only (no masks) are enough
    t = np.arange(sample.num_frames)
    viewer.add_points(np.column_stack([t, sample.hotspots[:, 1, 1], sample.hotspots[:, 1, 0]]),
                      features={"object_id": np.full(len(t), 2)}, name="bird")
    widget.refresh_objects()
    assert widget.object_ids() == [2]
    widget.compute_path()
    qtbot.waitUntil(lambda: widget.path is not None, timeout=30000)
    assert len(viewer.layers[WINDOW_LAYER].data) == sample.num_frames


def test_render_from_a_video_file_opened_with_the_reader(make_napari_viewer, qtbot, tmp_path):
    from napari_hotspot.sample_data import write_sample

    small = make_sample_video(num_frames=8, height=96, width=128)
    paths = write_sample(tmp_path, kind="mp4", sample=small)
    viewer = make_napari_viewer()
    viewer.open(str(paths.frames), plugin="napari-hotspot")
    add_points = np.column_stack([np.arange(8), small.hotspots[:, 0, 1], small.hotspots[:, 0, 0]])
    viewer.add_points(add_points, features={"object_id": np.ones(8, int)}, name="hotspots")
    widget = ReframeWidget(viewer)
    widget.aspect_combo.setCurrentText("1:1")
    widget.zoom_spin.setValue(2.0)
    widget.compute_path()
    qtbot.waitUntil(lambda: widget.path is not None, timeout=30000)
    assert np.allclose(widget.path.heights, 48.0)  # zoom 2 of a 96 px tall frame
    widget.render(str(tmp_path / "square.mp4"))
    qtbot.waitUntil(lambda: widget.report is not None, timeout=60000)
    with av.open(str(tmp_path / "square.mp4")) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) == 8
        assert stream.codec_context.width == stream.codec_context.height == 96
        assert stream.average_rate == 24  # the source's frame rate, from the reader's metadata
