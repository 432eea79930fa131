"""Tests for project folders: lossless round trip, atomic save, error handling, autosave."""

import errno
import json

import numpy as np
import pytest

from napari_hotspot.annotations import project as project_module
from napari_hotspot.annotations.model import AnnotationStore, Hotspot, Provenance
from napari_hotspot.annotations.project import (
    PROJECT_FILE,
    Autosaver,
    is_project_dir,
    load_project,
    save_project,
)
from napari_hotspot.errors import ProjectIOError

H, W, T = 40, 60, 12


def make_store(seed=0):
    rng = np.random.default_rng(seed)
    s = AnnotationStore(T, H, W)
    s.add_object("swan")
    s.add_object("boat", color=(10, 20, 30))
    s.add_object("empty one")  # an object without any entries
    for t in range(T):
        s.set_frame(
            1, t, mask=rng.random((H, W)) > 0.7, hotspot=Hotspot(t + 0.125, 2 * t + 1 / 3, t % 3 != 0),
            confidence=float(rng.random()), provenance=Provenance.PROPAGATED, annotator="model",
        )
    s.set_frame(1, 0, provenance=Provenance.KEYFRAME, annotator="alice")
    s.set_frame(2, 3, mask=np.zeros((H, W), bool))  # empty mask, distinct from no mask
    s.set_frame(2, 4, hotspot=(59.5, -0.5), confidence=None, provenance="user_corrected")
    s.set_frame(2, 5, mask=np.ones((H, W), bool), provenance=Provenance.DERIVED)
    s.set_annotator_hotspot("alice", 1, 2, (3.5, 4.25), Provenance.USER_CORRECTED, seconds_spent=2.75)
    s.set_annotator_hotspot("bob", 1, 2, None, "automatic")
    s.set_annotator_hotspot("bob", 2, 7, Hotspot(1.0, 2.0, visible=False), "imported")
    return s


def assert_same_store(a: AnnotationStore, b: AnnotationStore):
    assert a.shape == b.shape
    assert a.objects == b.objects
    assert [(o, f) for o, f, _ in a.iter_entries()] == [(o, f) for o, f, _ in b.iter_entries()]
    for obj_id, frame, entry in a.iter_entries():
        other = b.get(obj_id, frame)
        assert entry.packed_mask == other.packed_mask
        if entry.has_mask:
            assert np.array_equal(entry.mask, other.mask)
        assert entry.hotspot == other.hotspot
        assert entry.confidence == other.confidence
        assert entry.provenance is other.provenance
        assert entry.annotator == other.annotator
        assert entry.timestamp == other.timestamp
    assert a.annotators() == b.annotators()
    for name in a.annotators():
        assert a.annotator_hotspots(name) == b.annotator_hotspots(name)


def test_round_trip_is_lossless(tmp_path):
    store = make_store()
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    path = save_project(store, tmp_path / "proj", video_source=video, extra={"adapted_state": "m.pt"})
    assert is_project_dir(path) and not is_project_dir(tmp_path)
    loaded, meta = load_project(path)
    assert_same_store(store, loaded)
    assert meta["video_path"] == str(video.resolve())
    assert meta["extra"] == {"adapted_state": "m.pt"}
    assert meta["version"] == 1  # no frame kept as tracked: older versions read it too
    assert not loaded.can_undo and loaded.revision == 0
    assert sorted(p.name for p in (path / "masks").iterdir()) == ["object_00001.npz", "object_00002.npz"]


def test_video_path_is_found_relative_to_a_moved_project(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "clip.mp4").write_bytes(b"x")
    save_project(make_store(), tmp_path / "a" / "proj", video_source=tmp_path / "a" / "clip.mp4")
    (tmp_path / "a").rename(tmp_path / "b")
    _, meta = load_project(tmp_path / "b" / "proj")
    assert meta["video_path"] == str((tmp_path / "b" / "clip.mp4").resolve())


def test_resave_replaces_old_content_and_keeps_foreign_files(tmp_path):
    path = tmp_path / "proj"
    save_project(make_store(), path, extra_files={"models/adapted.pt": b"weights-v1"})
    (path / "notes.txt").write_text("kept")
    smaller = AnnotationStore(T, H, W)
    smaller.add_object()
    smaller.set_frame(1, 1, hotspot=(1, 1))
    save_project(smaller, path)
    loaded, _ = load_project(path)
    assert_same_store(smaller, loaded)
    assert not (path / "masks" / "object_00002.npz").exists()  # stale mask file gone
    assert (path / "notes.txt").read_text() == "kept"
    assert (path / "models" / "adapted.pt").read_bytes() == b"weights-v1"
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]  # no temp or old folders left


def test_crash_mid_write_leaves_old_project_loadable(tmp_path, monkeypatch):
    path = tmp_path / "proj"
    original = make_store(seed=1)
    save_project(original, path)
    real_write = project_module._write_file
    calls = []

    def write_then_crash(target, data):
        calls.append(target)
        if len(calls) == 2:
            raise RuntimeError("simulated crash mid-save")
        real_write(target, data)

    monkeypatch.setattr(project_module, "_write_file", write_then_crash)
    changed = make_store(seed=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        save_project(changed, path)
    monkeypatch.undo()
    loaded, _ = load_project(path)
    assert_same_store(original, loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]


def test_crash_during_swap_is_recovered_on_next_load(tmp_path, monkeypatch):
    path = tmp_path / "proj"
    original = make_store(seed=1)
    save_project(original, path)
    real_rename = project_module.os.rename

    def rename_then_die(src, dst):
        real_rename(src, dst)
        if ".old-" in str(dst):  # the old project was just moved away
            raise KeyboardInterrupt  # process killed before the new one is moved in

    monkeypatch.setattr(project_module.os, "rename", rename_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_project(make_store(seed=2), path)
    monkeypatch.undo()
    # State of a process killed between the two renames: only the moved-away old project exists.
    assert not path.exists()
    assert [p.name.startswith(".proj.old-") for p in tmp_path.iterdir()] == [True]
    loaded, _ = load_project(path)
    assert_same_store(original, loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]


def test_disk_full_raises_project_error_and_keeps_everything(tmp_path, monkeypatch):
    path = tmp_path / "proj"
    original = make_store(seed=1)
    save_project(original, path)
    changed = make_store(seed=3)
    revision = changed.revision

    def disk_full(target, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(project_module, "_write_file", disk_full)
    with pytest.raises(ProjectIOError, match=r"disk full") as info:
        save_project(changed, path)
    assert str(path) in str(info.value) and "object_00001.npz" in str(info.value)
    monkeypatch.undo()
    assert changed.revision == revision and changed.can_undo
    loaded, _ = load_project(path)
    assert_same_store(original, loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]


def test_non_writable_location_raises_project_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")  # root ignores chmod, but nobody can create a folder inside a file
    with pytest.raises(ProjectIOError, match=r"a_file"):
        save_project(make_store(), blocker / "proj")
    with pytest.raises(ProjectIOError, match="is a file, not a folder"):
        save_project(make_store(), blocker)


def test_permission_denied_is_reported(tmp_path, monkeypatch):
    def denied(target, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(target))

    monkeypatch.setattr(project_module, "_write_file", denied)
    with pytest.raises(ProjectIOError, match="not writable"):
        save_project(make_store(), tmp_path / "proj")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_non_project_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(ProjectIOError, match="not empty"):
        save_project(make_store(), folder)
    assert (folder / "holiday.jpg").exists()


def test_extra_must_be_json(tmp_path):
    with pytest.raises(ProjectIOError, match="JSON-serialisable"):
        save_project(make_store(), tmp_path / "proj", extra={"bad": object()})
    assert not (tmp_path / "proj").exists()


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda text: text[: len(text) // 2], "invalid JSON"),
        (lambda text: "[]", "not a napari-hotspot project file"),
        (lambda text: text.replace('"version": 1', '"version": 99'), "version 99"),
        (lambda text: text.replace('"num_frames"', '"n_frames"'), "missing field 'num_frames'"),
        (lambda text: text.replace('"provenance": "propagated"', '"provenance": "magic"', 1), "magic"),
        (lambda text: text.replace('"x": 0.125', '"x": 1000.0', 1), "outside the image"),
    ],
    ids=["truncated", "not-a-project", "newer-version", "missing-field", "bad-provenance", "bad-hotspot"],
)
def test_corrupt_project_json_names_the_file(tmp_path, corrupt, message):
    path = save_project(make_store(), tmp_path / "proj")
    project_file = path / PROJECT_FILE
    project_file.write_text(corrupt(project_file.read_text()))
    with pytest.raises(ProjectIOError, match=message) as info:
        load_project(path)
    assert str(project_file) in str(info.value)


def test_missing_or_corrupt_mask_file(tmp_path):
    path = save_project(make_store(), tmp_path / "proj")
    mask_file = path / "masks" / "object_00001.npz"
    mask_file.write_bytes(mask_file.read_bytes()[:100])
    with pytest.raises(ProjectIOError, match="object_00001.npz"):
        load_project(path)
    mask_file.unlink()
    with pytest.raises(ProjectIOError, match="missing"):
        load_project(path)
    with pytest.raises(ProjectIOError, match="no project folder"):
        load_project(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ProjectIOError, match="project.json is missing"):
        load_project(tmp_path / "plain")


def test_mask_arrays_and_json_are_consistent(tmp_path):
    path = save_project(make_store(), tmp_path / "proj")
    document = json.loads((path / PROJECT_FILE).read_text())
    assert document["num_frames"] == T and document["height"] == H and document["width"] == W
    assert len(document["frames"]) == T + 3
    with np.load(path / "masks" / "object_00002.npz") as archive:
        assert archive["frames"].tolist() == [3, 5]
        assert archive["bboxes"][0].tolist() == [-1, -1, -1, -1]  # the empty mask


def test_autosaver_saves_only_when_dirty_and_interval_elapsed(tmp_path):
    store = make_store()
    clock = [1000.0]
    saver = Autosaver(store, tmp_path / "proj", interval_s=120, extra=lambda: {"n": len(store)},
                      clock=lambda: clock[0])
    assert not saver.dirty and not saver.maybe_save()
    store.set_frame(3, 1, hotspot=(1, 1))
    assert saver.dirty
    assert not saver.maybe_save(now=1060.0)  # interval not yet elapsed
    assert saver.maybe_save(now=1121.0)
    assert not saver.dirty and is_project_dir(tmp_path / "proj")
    loaded, meta = load_project(tmp_path / "proj")
    assert_same_store(store, loaded) and meta["extra"] == {"n": len(store)}
    assert not saver.maybe_save(now=5000.0)  # clean: nothing to do
    store.undo()
    saver.save_now()
    assert_same_store(store, load_project(tmp_path / "proj")[0])


def test_autosaver_failure_keeps_dirty_and_reports(tmp_path, monkeypatch):
    store = make_store()
    saver = Autosaver(store, tmp_path / "proj", interval_s=0)
    store.set_frame(3, 1, hotspot=(1, 1))

    def disk_full(target, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(project_module, "_write_file", disk_full)
    with pytest.raises(ProjectIOError, match="disk full"):
        saver.maybe_save()
    assert saver.dirty and isinstance(saver.last_error, ProjectIOError)
    monkeypatch.undo()
    assert saver.maybe_save()
    assert not saver.dirty and saver.last_error is None


def test_replace_dirs_hold_exactly_what_the_save_writes(tmp_path):
    path = tmp_path / "proj"
    store = make_store()
    files = {"adaptation/object_00001.pt": b"one", "adaptation/object_00002.pt": b"two"}
    save_project(store, path, extra_files=files, replace_dirs=["adaptation"])
    (path / "notes.txt").write_text("kept")
    save_project(store, path, extra_files={"adaptation/object_00002.pt": b"two-v2"}, replace_dirs=["adaptation"])
    assert not (path / "adaptation" / "object_00001.pt").exists()  # no longer written: dropped
    assert (path / "adaptation" / "object_00002.pt").read_bytes() == b"two-v2"
    assert (path / "notes.txt").read_text() == "kept"  # outside the replaced folder: carried over
    save_project(store, path, replace_dirs=["adaptation"])
    assert not (path / "adaptation").exists() and (path / "notes.txt").exists()
    for bad in ("masks", "../outside", ""):
        with pytest.raises(ProjectIOError, match="relative path inside the project"):
            save_project(store, path, replace_dirs=[bad])
    assert_same_store(store, load_project(path)[0])


def test_autosaver_writes_extra_files_and_saves_after_mark_dirty(tmp_path, monkeypatch):
    store = make_store()
    weights = {"adaptation/object_00001.pt": b"v1"}
    saver = Autosaver(store, tmp_path / "proj", interval_s=0, extra_files=lambda: dict(weights),
                      replace_dirs=("adaptation",))
    store.set_frame(3, 1, hotspot=(1, 1))
    assert saver.maybe_save()
    assert (tmp_path / "proj" / "adaptation" / "object_00001.pt").read_bytes() == b"v1"
    assert not saver.dirty and not saver.maybe_save()
    weights["adaptation/object_00001.pt"] = b"v2"  # changed outside the store: only mark_dirty tells
    saver.mark_dirty()
    assert saver.dirty

    def disk_full(target, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(project_module, "_write_file", disk_full)
    with pytest.raises(ProjectIOError):
        saver.maybe_save()
    assert saver.dirty  # a failed save keeps the outside change pending
    monkeypatch.undo()
    assert saver.maybe_save()
    assert (tmp_path / "proj" / "adaptation" / "object_00001.pt").read_bytes() == b"v2"
    weights.clear()
    saver.mark_dirty()
    saver.save_now()
    assert not (tmp_path / "proj" / "adaptation").exists()


def test_a_project_with_frames_kept_as_tracked_is_version_2_and_round_trips(tmp_path):
    store = make_store()
    oid = store.object_ids[0]
    frame = store.frames_with(oid)[0]
    store.set_frame(oid, frame, provenance=Provenance.ACCEPTED)
    path = save_project(store, tmp_path / "proj")
    loaded, meta = load_project(path)
    assert meta["version"] == project_module.FORMAT_VERSION == 2
    assert loaded.get(oid, frame).provenance is Provenance.ACCEPTED and frame in loaded.keyframes(oid)


def test_a_damaged_adapted_tracker_file_is_a_problem_not_garbage_weights(tmp_path):
    import torch

    from napari_hotspot.annotations.project import WIDGET_EXTRA_KEY, load_adaptation_states

    store = make_store()
    state = {"model": {"w": torch.arange(4096, dtype=torch.float32)}, "frames": [0, 5]}
    for oid in (1, 2):
        torch.save(state, tmp_path / f"tracker_{oid}.pt")
    damaged = bytearray((tmp_path / "tracker_2.pt").read_bytes())
    middle = len(damaged) // 2  # inside the tensor's bytes: torch.load still reads the file
    damaged[middle: middle + 64] = bytes(64)
    (tmp_path / "tracker_2.pt").write_bytes(bytes(damaged))
    assert torch.load(tmp_path / "tracker_2.pt", weights_only=True)["frames"] == [0, 5]
    extra = {WIDGET_EXTRA_KEY: {"adaptation": {str(o): {"file": f"tracker_{o}.pt"} for o in (1, 2)}}}
    states, problems = load_adaptation_states(tmp_path, extra, store)
    assert list(states) == [1] and torch.equal(states[1]["model"]["w"], state["model"]["w"])
    assert len(problems) == 1 and "boat" in problems[0] and "damaged" in problems[0]
