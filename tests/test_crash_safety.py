"""Nothing lost: kills at random points of a project save and of a `track` commit, full disks, truncated
videos, one box rule, adapted-tracker files checked by the Qt-free loader.

Kills are real SIGKILLs of child processes (benchmarks/bench_crash_safety.py's children, which write
through the product's own save and commit code); full disks are simulated by an os.write or a file
object that raises ENOSPC, as a full file system does."""

from __future__ import annotations

import errno
import importlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from napari_hotspot import fileio, track_output
from napari_hotspot.annotations.project import (
    PROJECT_FILE,
    adaptation_file_name,
    load_project,
    save_project,
)
from napari_hotspot.errors import ProjectIOError, PromptError, VideoError

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("bench_crash_safety")
    finally:
        sys.path.remove(str(BENCHMARKS))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------------------- project save leftovers
def test_recovery_takes_the_newest_complete_leftover_and_never_a_part_deleted_one(tmp_path, bench):
    path = tmp_path / "proj"
    dead = _dead_pid()
    # Three complete saves, oldest first, left beside a missing project as killed saves leave them;
    # their names sort against their age.
    for gen, name in ((1, f".proj.saving-{dead}-zzz"), (2, f".proj.old-{dead}-bbb"), (3, f".proj.saving-{dead}-aaa")):
        save_project(bench.make_store(gen), tmp_path / "tmp", extra={"gen": gen})
        os.rename(tmp_path / "tmp", tmp_path / name)
    # and a newer one cut short mid-delete: project.json still there, a mask file gone
    save_project(bench.make_store(4), tmp_path / "tmp", extra={"gen": 4})
    shutil.rmtree(tmp_path / "tmp" / "masks")
    os.rename(tmp_path / "tmp", tmp_path / f".proj.old-{dead}-000")
    store, meta = load_project(path)
    assert meta["extra"]["gen"] == 3
    assert [o.name for o in store.objects] == [o.name for o in bench.make_store(3).objects]
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]  # every leftover removed by the load


def test_a_live_saves_temporary_folder_is_left_alone(tmp_path, bench):
    save_project(bench.make_store(1), tmp_path / "proj", extra={"gen": 1})
    live = tmp_path / f".proj.saving-{os.getppid()}-abc"  # owned by a running process
    live.mkdir()
    load_project(tmp_path / "proj")
    assert live.is_dir()


def test_kills_at_random_points_of_a_project_save(tmp_path, bench):
    rng = random.Random(1)
    path = tmp_path / "proj"
    save_project(bench.make_store(0), path, extra={"gen": 0})
    on_disk, start = 0, 1
    for point in [None, None, None, *bench.SAVE_POINTS]:
        done, tried = bench.kill_once("save", path, start, rng, point, 0.3, on_disk)
        broken, left, detail, on_disk = bench.check_project(path, done, tried)
        assert not broken, f"{point}: {detail}"
        assert left == [], f"{point}: leftovers {left}"
        start = tried + 1


# ---------------------------------------------------------------------------- track commits
def test_kills_at_random_points_of_a_track_commit_including_the_swap(tmp_path, bench):
    rng = random.Random(2)
    out = tmp_path / "out"
    bench.write_track_output(out, 0)
    on_disk, start = 0, 1
    for point in [None, None, *bench.TRACK_POINTS]:
        done, tried = bench.kill_once("track-output", out, start, rng, point, 0.3, on_disk)
        broken, left, detail, on_disk = bench.check_track(out, done, tried)
        assert not broken, f"{point}: {detail}"
        assert left == [], f"{point}: leftovers {left}"
        start = tried + 1


def test_a_reader_finishes_a_commit_killed_between_masks_and_csv(tmp_path, bench):
    out = tmp_path / "out"
    bench.write_track_output(out, 0)  # 10 frames
    env = dict(os.environ, NAPARI_HOTSPOT_TEST_CRASH_AT="track:masks")
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "bench_crash_safety.py"), "--child", "track-output",
                           str(out), "1"], env=env, capture_output=True, text=True)
    assert proc.returncode == -9
    # killed with the new masks in place and the old CSV beside them, the commit record says so
    assert (out / track_output.COMMIT_FILE).is_file()
    from napari_hotspot.reframe.inputs import load_tracks

    tracks = load_tracks(out, [f"{t:05d}" for t in range(7)], (bench.H, bench.W))  # a reader: the new output
    assert tracks and tracks[0].num_frames == 7
    assert bench.read_track_dir(out)[:2] == (7, 2) and track_output.leftovers(out) == []


def test_an_unusable_commit_record_deletes_nothing(tmp_path, bench):
    out = tmp_path / "out"
    bench.write_track_output(out, 0)
    for text in ("{not json", json.dumps({"format": "napari-hotspot-track-commit", "partial": "", "old": ".."})):
        (out / track_output.COMMIT_FILE).write_text(text)
        track_output.recover_track_dir(out)
        assert bench.read_track_dir(out)[:2] == (10, 1) and track_output.leftovers(out) == []


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    from napari_hotspot.sample_data import make_sample_video, write_sample

    root = tmp_path_factory.mktemp("tiny")
    sample = make_sample_video(num_frames=6, height=120, width=160, seed=1)
    paths = write_sample(root, "folder", sample)
    cv2.imwrite(str(root / "mask.png"), (sample.masks[0] == 1).astype(np.uint8) * 255)
    return paths.frames, root / "mask.png"


def test_the_track_command_killed_at_the_swap_leaves_a_complete_output(tmp_path, bench, tiny_video):
    frames, mask = tiny_video
    out = tmp_path / "out"
    bench.write_track_output(out, 0)  # an earlier output of 10 frames
    env = dict(os.environ, NAPARI_HOTSPOT_TEST_CRASH_AT="track:masks")
    proc = subprocess.run([sys.executable, "-m", "napari_hotspot.cli", "track", str(frames), "--out", str(out),
                           "--mask", str(mask), "--adapt", "0", "--complete", "0", "--long-side", "256"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    got = bench.read_track_dir(out)  # the reader's recovery completes the commit
    assert got[0] == 6 and track_output.leftovers(out) == []


# ---------------------------------------------------------------------------- full disk
class _DiskFull:
    """os.write that fails with ENOSPC after `allowed` calls, as a full file system does."""

    def __init__(self, allowed: int = 0):
        self.allowed = allowed
        self.real = os.write

    def __call__(self, fd, data):
        if self.allowed <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.allowed -= 1
        return self.real(fd, data)


def test_checked_writes_raise_on_a_full_disk_where_imwrite_would_not(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "write", _DiskFull())
    with pytest.raises(ProjectIOError, match="disk full"):
        fileio.write_png_checked(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    monkeypatch.setattr(os, "write", lambda fd, data: 0)  # a write that writes nothing
    with pytest.raises(OSError):
        fileio.write_bytes_checked(tmp_path / "b.bin", b"abc")


def test_a_full_disk_mid_track_output_keeps_the_earlier_output(tmp_path, monkeypatch, bench):
    out = tmp_path / "out"
    bench.write_track_output(out, 0)
    monkeypatch.setattr(os, "write", _DiskFull(allowed=3))  # three PNGs fit, then the disk is full
    with pytest.raises(ProjectIOError, match="disk full"):
        bench.write_track_output(out, 1)
    monkeypatch.undo()
    assert bench.read_track_dir(out)[:2] == (10, 1) and track_output.leftovers(out) == []


def test_the_track_command_on_a_full_disk_fails_and_keeps_the_earlier_output(tmp_path, monkeypatch, bench,
                                                                            tiny_video, capsys):
    from napari_hotspot.cli import main

    frames, mask = tiny_video
    out = tmp_path / "out"
    bench.write_track_output(out, 0)
    monkeypatch.setattr(os, "write", _DiskFull(allowed=2))
    code = main(["track", str(frames), "--out", str(out), "--mask", str(mask), "--adapt", "0", "--complete", "0",
                 "--long-side", "256"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and "disk full" in err and len(err.strip().splitlines()) == 1
    assert bench.read_track_dir(out)[:2] == (10, 1) and track_output.leftovers(out) == []


def _track_args(frames, mask, out):
    return ["track", str(frames), "--out", str(out), "--mask", str(mask), "--adapt", "0", "--complete", "0",
            "--long-side", "256"]


def test_a_label_the_disk_fails_to_sync_fails_the_track_and_keeps_the_earlier_output(tmp_path, monkeypatch, bench,
                                                                                     tiny_video, capsys):
    # The label PNGs are fsynced on a thread of their own (pipeline.SyncBehind); a failure there (EIO at
    # writeback) must still stop the run before its commit.
    from napari_hotspot.cli import main

    frames, mask = tiny_video
    out = tmp_path / "out"
    bench.write_track_output(out, 0)
    real_fsync = os.fsync

    def failing_fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("00003.png"):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    code = main(_track_args(frames, mask, out))
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and "cannot write" in err and "00003.png" in err, err
    assert bench.read_track_dir(out)[:2] == (10, 1) and track_output.leftovers(out) == []


def test_every_label_is_on_disk_before_the_run_commits(tmp_path, monkeypatch, tiny_video):
    from napari_hotspot.cli import main

    frames, mask = tiny_video
    events = []
    real_fsync, real_commit = os.fsync, track_output.commit

    def recording_fsync(fd):
        real_fsync(fd)
        events.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(track_output, "commit", lambda *a: events.append("commit") or real_commit(*a))
    assert main(_track_args(frames, mask, tmp_path / "out")) == 0
    monkeypatch.undo()
    synced_pngs = {e for e in events[: events.index("commit")] if e.endswith(".png")}
    assert synced_pngs == {f"{i:05d}.png" for i in range(6)}, events


def test_labels_are_encoded_and_written_off_the_tracking_thread_and_their_failures_still_surface(tmp_path,
                                                                                                  monkeypatch):
    # track_video hands each label to SyncBehind, whose thread encodes, writes and fsyncs it; a failed
    # write (here: its folder is gone) is raised by wait() as the checked write's error, and at most
    # MAX_PENDING labels wait for the thread.
    import threading

    from napari_hotspot import pipeline

    writers, real_write = [], pipeline.write_png_checked

    def recording_write(path, image, **kw):
        writers.append(threading.current_thread().name)
        real_write(path, image, **kw)

    monkeypatch.setattr(pipeline, "write_png_checked", recording_write)
    label = np.zeros((12, 16), np.uint8)
    label[3:7, 4:9] = 2
    with pipeline.SyncBehind() as syncing:
        for i in range(pipeline.SyncBehind.MAX_PENDING + 4):
            syncing.add(tmp_path / f"{i:05d}.png", label)
            assert len(syncing._pending) <= pipeline.SyncBehind.MAX_PENDING
        syncing.wait()
    assert all(name.startswith("napari-hotspot-fsync") for name in writers) and len(writers) == 20
    assert np.array_equal(cv2.imread(str(tmp_path / "00019.png"), cv2.IMREAD_UNCHANGED), label)
    with pipeline.SyncBehind() as syncing:
        syncing.add(tmp_path / "gone" / "00000.png", label)
        with pytest.raises(ProjectIOError, match="cannot write .*00000.png"):
            syncing.wait()


def test_a_full_disk_during_a_project_save_keeps_the_earlier_project(tmp_path, monkeypatch, bench):
    path = tmp_path / "proj"
    save_project(bench.make_store(1), path, extra={"gen": 1})
    monkeypatch.setattr(os, "write", _DiskFull(allowed=1))
    with pytest.raises(ProjectIOError, match="disk full"):
        save_project(bench.make_store(2), path, extra={"gen": 2})
    monkeypatch.undo()
    assert load_project(path)[1]["extra"]["gen"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]


def test_a_full_disk_when_taking_the_batch_lock_leaves_no_lock(tmp_path, monkeypatch):
    from napari_hotspot.batch.runner import LOCK_FILE, batch_lock

    monkeypatch.setattr(os, "write", _DiskFull())
    with pytest.raises(ProjectIOError, match="disk full"):
        with batch_lock(tmp_path):
            pass
    assert not (tmp_path / LOCK_FILE).exists()


class _FullFile(io.RawIOBase):
    """A file object on a full disk: every write raises ENOSPC."""

    def writable(self):
        return True

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def _exports(bench):
    from napari_hotspot.annotations.io_coco import export_coco
    from napari_hotspot.annotations.io_davis import write_label_png
    from napari_hotspot.annotations.io_hotspot_maps import _write_png as write_map_png
    from napari_hotspot.annotations.io_hotspots import export_hotspots_csv, export_hotspots_json

    store = bench.make_store(5)
    return {
        "coco.json": lambda p: export_coco(store, p),
        "hotspots.csv": lambda p: export_hotspots_csv(store, p),
        "hotspots.json": lambda p: export_hotspots_json(store, p),
        "00000.png": lambda p: write_label_png(p, np.ones((4, 4), np.uint8)),
        "map.png": lambda p: write_map_png(p, np.ones((4, 4), np.uint8)),
    }


@pytest.mark.parametrize("name", ["coco.json", "hotspots.csv", "hotspots.json", "00000.png", "map.png"])
def test_every_export_on_a_full_disk_raises_and_keeps_the_earlier_file(tmp_path, monkeypatch, bench, name):
    target = tmp_path / name
    target.write_bytes(b"earlier output")
    real_open = open

    def full_open(file, mode="r", *args, **kwargs):
        if "w" in mode:
            handle = _FullFile()
            return io.TextIOWrapper(io.BufferedWriter(handle), encoding="utf-8") if "b" not in mode else \
                io.BufferedWriter(handle, buffer_size=1)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(fileio, "open", full_open, raising=False)
    with pytest.raises(ProjectIOError, match="No space left"):
        _exports(bench)[name](target)
    monkeypatch.undo()
    assert target.read_bytes() == b"earlier output" and [p.name for p in tmp_path.iterdir()] == [name]


def test_reframe_on_a_full_disk_keeps_the_earlier_video(tmp_path):
    from napari_hotspot.reframe.path import CropPath
    from napari_hotspot.reframe.render import render_reframed

    n = 6
    frames = np.random.default_rng(0).integers(0, 255, (n, 64, 80, 3), dtype=np.uint8)
    path = CropPath(np.tile([[40.0, 31.5]], (n, 1)), np.full(n, 64.0), 1.0, (64, 80))
    out = tmp_path / "out.mp4"
    render_reframed(iter(frames), path, out)
    before = out.read_bytes()

    def frames_then_full():
        yield from frames[:3]
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(ProjectIOError):
        render_reframed(frames_then_full(), path, out)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


# ---------------------------------------------------------------------------- truncated videos
@pytest.fixture(scope="module")
def truncated_mp4(tmp_path_factory):
    import av

    root = tmp_path_factory.mktemp("trunc")
    full = root / "full.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(full), "w", options={"movflags": "faststart"}) as container:  # the index comes first
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for _ in range(30):
            frame = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cut = root / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 3])
    return full, cut


def test_a_truncated_video_is_an_error_unless_accepted(truncated_mp4):
    from napari_hotspot.video import open_source, require_complete

    full, cut = truncated_mp4
    with open_source(full) as src:
        require_complete(src)  # a whole video passes
    with open_source(cut) as src:
        assert src.truncated and src.expected_frames == 30 and 0 < src.num_frames < 30
        with pytest.raises(VideoError, match=rf"lists 30 frames but only {src.num_frames} are readable.*--accept-truncated"):
            require_complete(src)
        with pytest.warns(UserWarning, match="truncated"):
            require_complete(src, accept_truncated=True)


def test_track_refuses_a_truncated_video_and_keeps_the_earlier_output(tmp_path, truncated_mp4, bench, capsys):
    from napari_hotspot.cli import main

    out = tmp_path / "out"
    bench.write_track_output(out, 0)
    assert main(["track", str(truncated_mp4[1]), "--out", str(out), "--box", "10,10,40,40"]) == 2
    assert "frames but only" in capsys.readouterr().err
    assert bench.read_track_dir(out)[:2] == (10, 1)


# ---------------------------------------------------------------------------- one box rule
def test_one_box_rule_for_cli_manifest_and_session(tmp_path):
    import argparse

    from napari_hotspot.batch.manifest import read_manifest
    from napari_hotspot.boxes import normalize_box
    from napari_hotspot.pipeline import prompt_from_args

    assert normalize_box((100, 100, 50, 60)) == (50.0, 60.0, 100.0, 100.0)
    with pytest.raises(PromptError, match="zero area"):
        normalize_box((10, 10, 10.5, 40))
    args = argparse.Namespace(mask=None, click=None, box=(100.0, 100.0, 50.0, 60.0), frame=0)
    assert prompt_from_args(args, (200, 200)).box == (50.0, 60.0, 100.0, 100.0)
    manifest = tmp_path / "m.csv"
    manifest.write_text('source,prompt,frame,value\na.mp4,box,0,"100,100,50,60"\n')
    assert read_manifest(manifest)[0].box == (50.0, 60.0, 100.0, 100.0)
    manifest.write_text('source,prompt,frame,value\na.mp4,box,0,"10,10,10,40"\n')
    with pytest.raises(ProjectIOError, match="zero area"):
        read_manifest(manifest)


# ---------------------------------------------------------------------------- adapted-tracker files
def test_the_qt_free_loader_reads_and_checks_adapted_tracker_files(tmp_path, bench):
    import torch

    store = bench.make_store(1)
    good = io.BytesIO()
    torch.save({"model": {"w": torch.ones(2)}, "steps": 3, "seconds": 1.0, "frames": [0]}, good)
    records = {"1": {"file": adaptation_file_name(1)}, "2": {"file": adaptation_file_name(2)},
               "3": {"file": adaptation_file_name(3)}}
    path = save_project(store, tmp_path / "p", extra={"napari_hotspot_widget": {"adaptation": records}},
                        extra_files={adaptation_file_name(1): good.getvalue(),
                                     adaptation_file_name(2): b"not a torch file"})
    with pytest.warns(UserWarning, match=r"object_00002\.pt.*corrupt.*object_00003\.pt.*missing.*base model"):
        _store, meta = load_project(path)
    assert list(meta["adaptation"]) == [1] and meta["adaptation"][1]["steps"] == 3
    assert len(meta["adaptation_problems"]) == 2
    json.loads((path / PROJECT_FILE).read_text())  # the project itself is untouched
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a project without adapted trackers loads without a warning
        load_project(save_project(store, tmp_path / "q"))


def test_folder_exports_on_a_disk_that_fills_halfway_keep_every_earlier_file(tmp_path, monkeypatch, bench):
    """The DAVIS PNG folder and the hotspot-map folder are staged: new files replace the earlier ones only
    once all are written, so a full disk after a few files leaves the earlier export whole."""
    from napari_hotspot.annotations.io_davis import export_davis_png

    store = bench.make_store(5)
    out = tmp_path / "davis"
    export_davis_png(store, out)
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    assert len(earlier) == store.num_frames
    (out / "notes.txt").write_text("a user's own file")
    real_open = open
    opened = []

    def filling_open(file, mode="r", *args, **kwargs):
        if "w" in mode:
            opened.append(file)
            if len(opened) > 2:  # two new PNGs fit, then the disk is full
                return io.BufferedWriter(_FullFile(), buffer_size=1)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(fileio, "open", filling_open, raising=False)
    with pytest.raises(ProjectIOError, match="No space left"):
        export_davis_png(bench.make_store(6), out)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".png"} == earlier
    assert sorted(p.name for p in out.iterdir()) == sorted([*earlier, "notes.txt"])  # no staging folder left
    # A staging folder a killed export left behind goes with the next export.
    (out / f".staging-{_dead_pid()}-deadbeef").mkdir()
    export_davis_png(store, out)
    assert not [p for p in out.iterdir() if p.name.startswith(".staging-")]
