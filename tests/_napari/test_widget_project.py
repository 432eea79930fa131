"""GUI tests of saving, reopening and exporting from the hotspot widget, and of the project reader
(napari_hotspot._napari.controller / widget / project_reader / reader). Headless under ``xvfb-run -a``.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from qtpy.QtWidgets import QApplication
from scipy.ndimage import distance_transform_edt

from napari_hotspot._napari.project_reader import read_project
from napari_hotspot._napari.reader import get_reader, read_project as reader_read_project
from napari_hotspot._napari.widget import HotspotWidget, menu_save_project
from napari_hotspot.annotations import Provenance, is_project_dir, load_project
from napari_hotspot.annotations.io_davis import read_davis_folder
from napari_hotspot.errors import ProjectIOError
from napari_hotspot.sample_data import make_sample_video

pytestmark = pytest.mark.gui

T, H, W = 12, 96, 128


@pytest.fixture(scope="module")
def sample():
    return make_sample_video(num_frames=T, height=H, width=W)




def deepest(mask):
    depth = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]  # the frame border counts as outside
    y, x = np.unravel_index(int(np.argmax(depth)), mask.shape)
    return float(x), float(y)


def open_with_widget(viewer, models, path, autosave_dir, adapt_seconds=0.0):
    viewer.open(str(path), plugin="napari-hotspot")
    widget = HotspotWidget(viewer, models=models, long_side=256, autosave_dir=autosave_dir,
                           adapt_seconds=adapt_seconds)
    viewer.window.add_dock_widget(widget, name="Hotspot tracking")
    return widget, widget.controller


@pytest.fixture
def tracked(make_napari_viewer, models, sample, sample_folder, tmp_path):
    """Two objects prompted (click, box), tracked forward, one frame corrected."""
    viewer = make_napari_viewer()
    widget, c = open_with_widget(viewer, models, sample_folder.frames, tmp_path / "autosave")
    c.add_click(0, *deepest(sample.masks[0] == 1), positive=True)
    c.add_object("bird")
    ys, xs = np.nonzero(sample.masks[0] == 2)
    c.add_box(0, xs.min() - 2.0, ys.min() - 2.0, xs.max() + 2.0, ys.max() + 2.0)
    widget.scope_combo.setCurrentIndex(1)  # all objects
    widget.track_button.click()
    assert c.wait(60) and c.last_error is None, c.last_error
    masks = c.layer("masks")
    masks.brush_size = 7
    masks.paint((6, 8, 8), 1)
    assert c.store.get(1, 6).provenance is Provenance.USER_CORRECTED
    yield viewer, widget, c
    widget.shutdown()


def layer_state(viewer):
    """Comparable content of the hotspot layers, by role."""
    state = {}
    for layer in viewer.layers:
        role = layer.metadata.get("napari_hotspot", {}).get("role")
        if role in ("masks", "hotspots", "hotspot tracks", "clicks", "boxes"):
            data = layer.data if role != "boxes" else np.stack(layer.data)
            state[role] = (layer.name, np.asarray(data, float))
    return state


def test_save_and_reopen_gives_the_same_layers(tracked, make_napari_viewer, models, tmp_path):
    viewer, widget, c = tracked
    tracks = c.layer("hotspot tracks")  # each hotspot track has its object's colour
    for oid in (1, 2):
        rows = tracks.data[:, 0] == oid
        assert rows.any()
        np.testing.assert_allclose(tracks.track_colors[rows, :3],
                                   np.broadcast_to(np.array(c.store.get_object(oid).color) / 255, (rows.sum(), 3)))
    project = c.save_project(tmp_path / "run.hotspot")
    assert project is not None and is_project_dir(project)
    assert widget.project_label.text().endswith("run.hotspot") or "run.hotspot" in widget.project_label.text()
    store, meta = load_project(project)
    assert store.object_ids == [1, 2] and store.get_object(2).name == "bird"
    assert store.get(1, 6).provenance is Provenance.USER_CORRECTED
    assert meta["video_path"] is not None
    saved = layer_state(viewer)
    assert set(saved) == {"masks", "hotspots", "hotspot tracks", "clicks", "boxes"}

    other = make_napari_viewer()
    assert get_reader(str(project)) is reader_read_project
    widget2, c2 = open_with_widget(other, models, project, tmp_path / "autosave2")
    assert c2.project_path == project and c2.video_layer.name == "sample"
    assert [la.name for la in other.layers].count("sample masks") == 1  # adopted, not duplicated
    reopened = layer_state(other)
    assert set(reopened) == set(saved)
    for role, (name, data) in saved.items():
        assert reopened[role][0] == name
        np.testing.assert_allclose(reopened[role][1], data, err_msg=role)
    assert c2.store.object_ids == [1, 2]
    assert [k for k in c2._applied] == [k for k in c._applied]
    # the reopened project goes on: keyframes become session anchors again and stay untouched
    c2.go_to_frame(3)
    c2.select_object(1)
    widget2.direction_combo.setCurrentText("forward")
    widget2.repropagate_button.click()
    assert c2.wait(60) and c2.last_error is None, c2.last_error
    assert c2.session.anchors(1) == [0, 6]
    assert c2.store.get(1, 6).provenance is Provenance.USER_CORRECTED
    np.testing.assert_array_equal(c2.store.mask(1, 6), store.mask(1, 6))
    widget2.shutdown()


def test_open_project_button_path_replaces_layers(tracked, tmp_path):
    viewer, widget, c = tracked
    project = c.save_project(tmp_path / "again.hotspot")
    before = layer_state(viewer)
    assert c.open_project(project)
    after = layer_state(viewer)
    assert [la.name for la in viewer.layers].count("sample masks") == 1
    for role, (_name, data) in before.items():
        np.testing.assert_allclose(after[role][1], data, err_msg=role)
    assert not c.open_project(tmp_path / "nothing-here")
    assert isinstance(c.last_error, ProjectIOError)
    # File > Open on a project of the video the dock shows: the dock opens it there, no second copy
    video = c.video_layer
    c.layer("masks").paint((5, 8, 8), 1)  # an edit since: autosaved into the project first, so it stays
    expected = np.asarray(c.layer("masks").data).copy()
    names = [la.name for la in viewer.layers]
    assert viewer.open(str(project), plugin="napari-hotspot") == []
    QApplication.processEvents()
    assert c.video_layer is video and [la.name for la in viewer.layers].count("sample") == 1
    assert sorted(la.name for la in viewer.layers) == sorted(names)
    np.testing.assert_array_equal(c.layer("masks").data, expected)
    assert expected[5, 8, 8] == 1 and c.project_path == project


def test_exports(tracked, tmp_path):
    viewer, widget, c = tracked
    assert c.export("davis", tmp_path / "davis") is not None
    stems, labels = read_davis_folder(tmp_path / "davis")
    assert stems == [f"{i:05d}" for i in range(T)]
    for t in (0, 6, T - 1):
        np.testing.assert_array_equal(labels[t], c.store.label_frame(t))
    assert c.export("csv", tmp_path / "hot.csv") is not None
    with open(tmp_path / "hot.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(c.layer("hotspots").data)
    assert c.export("json", tmp_path / "hot.json") is not None
    assert json.loads((tmp_path / "hot.json").read_text())["num_frames"] == T
    assert c.export("coco", tmp_path / "coco.json") is not None
    from pycocotools.coco import COCO

    coco = COCO(str(tmp_path / "coco.json"))
    assert len(coco.getImgIds()) == T and sorted(coco.getCatIds()) == [1, 2]
    frames = sorted(p.name for p in c._source.path.iterdir())  # the frame folder's own files
    assert [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)] == frames
    (tmp_path / "blocker").write_text("x")
    assert c.export("davis", tmp_path / "blocker") is None
    assert isinstance(c.last_error, ProjectIOError)


def test_autosave_on_tick_and_on_close(tracked, tmp_path):
    viewer, widget, c = tracked
    target = c.autosaver.path
    assert str(target).startswith(str(tmp_path / "autosave"))
    c.autosaver.interval_s = 0.0
    assert c.autosave_tick() and is_project_dir(target)
    assert not c.autosave_tick()  # nothing changed since
    c.rename_object(2, "swift")
    widget.shutdown()  # closing the widget saves what changed
    store, _ = load_project(target)
    assert store.get_object(2).name == "swift"


@pytest.mark.parametrize("saved", [False, True])
def test_a_dock_reopened_on_the_same_video_carries_on(tracked, models, tmp_path, saved):
    """Closing the dock and opening it again on the same viewer: the new dock took over the old output
    layers with an empty store, emptied the masks and autosaved that over the work. It now carries on
    from what the closed dock saved (its autosave, or the project it was saved to)."""
    viewer, widget, c = tracked
    project = c.save_project(tmp_path / "kept.hotspot") if saved else None
    before = layer_state(viewer)
    store_before = {(oid, t): c.store.mask(oid, t).copy() for oid in c.store.object_ids for t in range(T)}
    applied = list(c._applied)
    video = c.video_layer
    widget.shutdown()
    viewer.window.remove_dock_widget(widget)

    widget2 = HotspotWidget(viewer, models=models, long_side=256, autosave_dir=tmp_path / "autosave")
    viewer.window.add_dock_widget(widget2, name="Hotspot tracking")
    c2 = widget2.controller
    assert c2.video_layer is video and c2.store.object_ids == [1, 2]
    assert c2.project_path == project  # an autosave folder is not taken for the user's project
    for key, mask in store_before.items():
        np.testing.assert_array_equal(c2.store.mask(*key), mask)
    assert list(c2._applied) == applied
    after = layer_state(viewer)
    for role, (_name, data) in before.items():
        np.testing.assert_allclose(after[role][1], data, err_msg=role)
    assert [la.name for la in viewer.layers].count("sample masks") == 1
    widget2.shutdown()  # its autosave keeps the work too
    reloaded, _ = load_project(project if saved else c2.autosaver.path)
    assert reloaded.object_ids == [1, 2]
    np.testing.assert_array_equal(reloaded.mask(1, 6), store_before[(1, 6)])


def test_a_dock_reopened_after_a_failed_save_keeps_the_work_in_memory(tracked, models, tmp_path, monkeypatch):
    """The save on closing fails (a full disk): the next dock takes the store itself, with its clicks and
    boxes, saves it as soon as it can, and a project opened after that is the project, not this store."""
    from napari_hotspot.annotations.project import Autosaver

    viewer, widget, c = tracked
    project = c.save_project(tmp_path / "p.hotspot")
    c.layer("masks").paint((7, 8, 8), 1)  # after the save: only in memory
    painted = c.store.mask(1, 7).copy()
    applied = list(c._applied)

    def disk_full(self):
        raise ProjectIOError("cannot save: disk full")

    monkeypatch.setattr(Autosaver, "save_now", disk_full)
    widget.shutdown()
    viewer.window.remove_dock_widget(widget)

    def reopen():
        w = HotspotWidget(viewer, models=models, long_side=256, autosave_dir=tmp_path / "autosave")
        viewer.window.add_dock_widget(w, name="Hotspot tracking")
        return w, w.controller

    widget2, c2 = reopen()
    assert c2.project_path == project and list(c2._applied) == applied
    np.testing.assert_array_equal(c2.store.mask(1, 7), painted)
    assert c2.autosaver.dirty  # still to be saved
    monkeypatch.undo()
    widget2.shutdown()  # now the save works: the project gets the painted frame
    viewer.window.remove_dock_widget(widget2)
    np.testing.assert_array_equal(load_project(project)[0].mask(1, 7), painted)
    widget3, c3 = reopen()
    np.testing.assert_array_equal(c3.store.mask(1, 7), painted)
    widget3.shutdown()


def test_file_open_of_another_videos_project_adds_it_and_the_dock_follows(tracked, sample_folder, tmp_path):
    """A project of another video (here: the same frames copied elsewhere) still opens through napari as
    its video plus layers, and the dock follows the new video."""
    import shutil

    viewer, widget, c = tracked
    project = c.save_project(tmp_path / "mine.hotspot")
    other_frames = tmp_path / "other_frames"
    shutil.copytree(sample_folder.frames, other_frames)
    from napari_hotspot.annotations.project import save_project

    other_project = tmp_path / "other.hotspot"
    save_project(load_project(project)[0], other_project, video_source=other_frames)
    new_layers = viewer.open(str(other_project), plugin="napari-hotspot")
    QApplication.processEvents()
    assert new_layers and c.video_layer is new_layers[0]
    assert c.layer("masks") is next(la for la in new_layers if la.metadata["napari_hotspot"].get("role") == "masks")


def test_open_project_after_a_failed_save_shows_the_project(tracked, tmp_path, monkeypatch):
    from napari_hotspot.annotations.project import Autosaver

    viewer, widget, c = tracked
    project = c.save_project(tmp_path / "p.hotspot")
    c.layer("masks").paint((7, 8, 8), 1)
    monkeypatch.setattr(Autosaver, "save_now", lambda self: (_ for _ in ()).throw(ProjectIOError("disk full")))
    assert c.open_project(project)
    np.testing.assert_array_equal(c.store.mask(1, 7), load_project(project)[0].mask(1, 7))


def test_an_autosave_of_an_earlier_session_does_not_come_back_into_a_new_dock(make_napari_viewer, models, sample,
                                                                              sample_folder, tmp_path):
    viewer = make_napari_viewer()
    widget, c = open_with_widget(viewer, models, sample_folder.frames, tmp_path / "autosave")
    c.add_click(0, *deepest(sample.masks[0] == 1), positive=True)
    widget.shutdown()  # autosaves the click's mask
    assert is_project_dir(c.autosaver.path)
    other = make_napari_viewer()
    widget2, c2 = open_with_widget(other, models, sample_folder.frames, tmp_path / "autosave")
    assert c2.store.object_ids == []  # a new session starts empty, as before
    video = c2.video_layer
    c2.set_video(None)
    c2.set_video(video)
    assert c2.store.object_ids == []  # and switching away and back does not bring the old autosave in
    widget2.shutdown()


def _reopen(viewer, models, tmp_path):
    widget = HotspotWidget(viewer, models=models, long_side=256, autosave_dir=tmp_path / "autosave")
    viewer.window.add_dock_widget(widget, name="Hotspot tracking")
    return widget, widget.controller


def _close(viewer, widget):
    widget.shutdown()
    viewer.window.remove_dock_widget(widget)


def _disk_full(self):
    raise ProjectIOError("cannot save: disk full")


def test_the_in_memory_hand_over_keeps_adapted_trackers_and_undo(tracked, models, tmp_path, monkeypatch, sample):
    """After a failed save the next dock gets the store itself: its adapted trackers too, and undo there
    moves the clicks with their masks as in one dock."""
    from napari_hotspot.annotations.project import Autosaver

    viewer, widget, c = tracked
    c.set_options(adapt_seconds=30.0)
    c.adapt_max_steps = 2
    c.adapt_now(1)
    assert c.wait(120) and c.session.is_adapted(1)
    project = c.save_project(tmp_path / "p.hotspot")
    c.add_object("third")
    c.add_click(5, *deepest(sample.masks[5] == 2), positive=True)
    monkeypatch.setattr(Autosaver, "save_now", _disk_full)
    _close(viewer, widget)
    monkeypatch.undo()
    widget2, c2 = _reopen(viewer, models, tmp_path)
    assert c2.session.is_adapted(1) and c2.adaptation_summary(1)["steps"] == 2
    assert (5, 3) in c2._applied
    assert c2.undo() and c2.store.get(3, 5) is None and (5, 3) not in c2._applied  # the click left with its mask
    widget2.shutdown()
    assert "1" in load_project(project)[1]["extra"]["napari_hotspot_widget"]["adaptation"]


def test_a_deleted_click_stays_deleted_after_a_reopen(tracked, models, tmp_path):
    viewer, widget, c = tracked
    c.flush_autosave()
    clicks = c.layer("clicks")
    clicks.selected_data = {0}
    clicks.remove_selected()
    assert (0, 1) not in c._applied and c.autosaver.dirty  # a prompt record changed: to be saved
    _close(viewer, widget)
    widget2, c2 = _reopen(viewer, models, tmp_path)
    assert (0, 1) not in c2._applied
    widget2.shutdown()


def test_removing_the_video_and_opening_it_again_brings_the_work_back(tracked, sample, sample_folder):
    viewer, widget, c = tracked
    masks = {t: c.store.mask(1, t).copy() for t in range(T)}
    viewer.layers.remove(c.video_layer)
    assert c.store is None
    layers = viewer.open(str(sample_folder.frames), plugin="napari-hotspot")
    QApplication.processEvents()
    if c.video_layer is None:
        c.set_video(layers[0])
    assert c.store.object_ids == [1, 2]
    for t, mask in masks.items():
        np.testing.assert_array_equal(c.store.mask(1, t), mask)
    assert np.asarray(c.layer("masks").data[6]).max() > 0


def test_another_video_of_the_same_name_does_not_get_the_hand_over(tracked, sample_folder, tmp_path):
    import shutil

    viewer, widget, c = tracked
    name = c.video_layer.name
    other = tmp_path / "elsewhere" / sample_folder.frames.name
    shutil.copytree(sample_folder.frames, other)  # same frames, same name, another file
    viewer.layers.remove(c.video_layer)
    layers = viewer.open(str(other), plugin="napari-hotspot")
    QApplication.processEvents()
    if c.video_layer is None:
        c.set_video(layers[0])
    assert c.video_layer.name == name and c.store.object_ids == []


def test_removing_the_video_during_gaze_prompts_stops_them_and_autosaves(tracked, sample, tmp_path):
    viewer, widget, c = tracked
    x, y = deepest(sample.masks[0] == 1)
    path = tmp_path / "gaze.csv"
    path.write_text("t,x,y\n" + "".join(f"{t},{x},{y}\n" for t in range(T)))
    target = c.autosaver.path
    c.load_gaze(path)
    assert c.job("gaze") is not None
    viewer.layers.remove(c.video_layer)
    assert c.wait(30)
    assert c.video_layer is None and is_project_dir(target)


def test_track_asked_for_while_the_dock_closes_does_not_start(tracked):
    from qtpy.QtCore import QTimer

    viewer, widget, c = tracked
    c.go_to_frame(T - 1)
    c.track("backward")
    assert c.running
    started = []
    QTimer.singleShot(30, lambda: started.append(c.track("forward")))
    widget.shutdown()  # cancels, waits for the run (the timer fires meanwhile), autosaves
    assert started in ([], [None])


def test_switching_to_another_video_and_back_keeps_the_work(tracked, sample):
    viewer, widget, c = tracked
    video = c.video_layer
    masks = {t: c.store.mask(1, t).copy() for t in range(T)}
    other = viewer.add_image(sample.frames[:, ::-1].copy(), rgb=True, name="other video")
    c.set_video(other)
    assert c.store.object_ids == []
    c.set_video(video)
    assert c.store.object_ids == [1, 2] and c.video_layer is video
    for t, mask in masks.items():
        np.testing.assert_array_equal(c.store.mask(1, t), mask)
    assert c.layer("masks").data[6].max() > 0


def test_file_menu_command_saves(tracked, tmp_path):
    viewer, widget, c = tracked
    c.ask_project_path = lambda: ""  # the dialog cancelled: not saved, and not reported as an error
    assert c.save_project() is None and c.last_error is None and c.project_path is None
    c.ask_project_path = lambda: str(tmp_path / "menu.hotspot")
    menu_save_project(viewer)
    assert is_project_dir(tmp_path / "menu.hotspot")


def test_project_reader_layers_and_errors(tmp_path, sample):
    from napari_hotspot.annotations import AnnotationStore, save_project

    store = AnnotationStore(T, H, W)
    store.add_object("animal")
    store.set_frame(1, 2, mask=sample.masks[2] == 1, hotspot=(40.0, 50.0), confidence=0.7,
                    provenance="keyframe")
    extra = {"napari_hotspot_widget": {"video": {"kind": "sample", "name": "clip"},
                                       "prompts": [{"frame": 2, "object_id": 1, "clicks": [[40, 50, 1]],
                                                    "box": None}]}}
    path = save_project(store, tmp_path / "p", extra=extra)
    layers = read_project(str(path))
    kinds = {kw["name"]: kind for _, kw, kind in layers}
    assert kinds == {"clip": "image", "clip ground truth": "labels", "clip masks": "labels",
                     "clip clicks": "points", "clip boxes": "shapes", "clip hotspots": "points",
                     "clip hotspot tracks": "tracks"}
    by_name = {kw["name"]: (data, kw) for data, kw, _ in layers}
    assert by_name["clip"][0].shape == (T, H, W, 3)
    assert by_name["clip"][1]["metadata"]["napari_hotspot"]["project"] == str(path)
    np.testing.assert_array_equal(by_name["clip masks"][0][2], sample.masks[2] == 1)
    np.testing.assert_array_equal(by_name["clip hotspots"][0], [[2, 50.0, 40.0]])
    np.testing.assert_array_equal(by_name["clip clicks"][0], [[2, 50.0, 40.0]])
    # a project whose video is gone says where it looked
    lost = save_project(store, tmp_path / "lost", video_source=tmp_path / "gone.mp4")
    with pytest.raises(ProjectIOError, match="gone.mp4"):
        read_project(str(lost))
