"""Batch pre-annotation on a real dask.distributed LocalCluster (2 worker processes) with small
synthetic videos: equality with a sequential run, a corrupt video failing alone, a worker killed
mid-video, Ctrl-C and resume, idempotent re-runs, and the folder napari opens."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from napari_hotspot.annotations.io_davis import read_davis_folder
from napari_hotspot.annotations.project import load_project
from napari_hotspot.batch import cli as batch_cli
from napari_hotspot.batch.manifest import read_manifest
from napari_hotspot.batch.results import batch_failures, is_batch_results_dir, list_batch_projects
from napari_hotspot.batch.runner import REPORT_COLUMNS, REPORT_FILE, read_report, run_batch, run_sequential
from napari_hotspot.batch.worker import KILL_ONCE_ENV, MARKER_FILE, TEMP_PREFIX, process_video
from napari_hotspot.errors import ProjectIOError
from napari_hotspot.options import HOTSPOT_SMOOTHING, TrackingOptions
from napari_hotspot.sample_data import make_sample_video, write_sample

pytest.importorskip("distributed")

FRAMES, HEIGHT, WIDTH = 12, 120, 160
LONG_SIDE = 256  # the networks' working size: the smallest at which clicks still give masks
OPTIONS = TrackingOptions(long_side=LONG_SIDE, adapt_seconds=0.0)  # a batch's defaults, at that size


def _center(mask: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(mask)
    return int(round(xs.mean())), int(round(ys.mean()))


def make_videos(root: Path, count: int, first_seed: int = 0) -> list[str]:
    """Write `count` synthetic videos under root (frame folders and mp4s) with one prompt each;
    returns the manifest rows (no header). Prompts cycle mask, click, box, gaze, auto."""
    rows = []
    for k in range(count):
        seed = first_seed + k
        sample = make_sample_video(FRAMES, HEIGHT, WIDTH, seed=seed)
        kind = "mp4" if k % 2 else "folder"
        paths = write_sample(root, kind, sample, name=f"clip{seed}")
        source = paths.frames.relative_to(root).as_posix()
        animal = sample.masks[2] == 1
        prompt = ("mask", "click", "box", "gaze", "auto")[k % 5]
        if prompt == "mask":
            cv2.imwrite(str(root / f"clip{seed}_mask.png"), (sample.masks[0] == 1).astype(np.uint8) * 255)
            rows.append(f"{source},mask,0,clip{seed}_mask.png")
        elif prompt == "click":
            x, y = _center(animal)
            rows.append(f'{source},click,2,"{x},{y}"')
        elif prompt == "box":
            ys, xs = np.nonzero(animal)
            rows.append(f'{source},box,2,"{xs.min()},{ys.min()},{xs.max()},{ys.max()}"')
        elif prompt == "gaze":
            x, y = _center(animal)
            (root / f"clip{seed}_gaze.csv").write_text(f"t,x,y\n2,{x},{y}\n2,{x + 2},{y + 1}\n5,0,0\n")
            rows.append(f"{source},gaze,2,clip{seed}_gaze.csv")
        else:
            rows.append(f"{source},auto,0,")
    return rows


def write_manifest(path: Path, rows: list[str]) -> Path:
    path.write_text("source,prompt,frame,value\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    rows = make_videos(root, 5)
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))  # corrupt
    rows.insert(2, "broken.mp4,auto,0,")
    return write_manifest(root / "manifest.csv", rows)


@pytest.fixture(scope="module")
def cluster():
    dask_cluster, client = batch_cli.start_local_cluster(2, allowed_failures=3)
    client.wait_for_workers(2)
    yield client
    client.close()
    dask_cluster.close()


@pytest.fixture(scope="module")
def sequential(videos, tmp_path_factory):
    """The reference: the same manifest processed in this process, one video after another."""
    out = tmp_path_factory.mktemp("sequential")
    summary = run_sequential(read_manifest(videos), out, options=OPTIONS)
    return out, summary


def outputs(project: Path):
    """What a batch wrote for one video, in comparable form."""
    stems, labels = read_davis_folder(project / "davis")
    with open(project / "hotspots.csv", newline="") as handle:
        hotspots = [row for row in csv.reader(handle)]
    store, meta = load_project(project)
    masks = np.stack([store.label_frame(t) for t in range(store.num_frames)])
    return stems, np.stack(labels), hotspots, masks, meta


def assert_same_outputs(a: Path, b: Path) -> None:
    stems_a, labels_a, hot_a, masks_a, _ = outputs(a)
    stems_b, labels_b, hot_b, masks_b, _ = outputs(b)
    assert stems_a == stems_b
    np.testing.assert_array_equal(labels_a, labels_b)
    assert hot_a == hot_b
    np.testing.assert_array_equal(masks_a, masks_b)


def hidden_entries(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_dask_batch_equals_sequential_and_a_corrupt_video_fails_alone(videos, cluster, sequential, tmp_path):
    seq_out, seq_summary = sequential
    items = read_manifest(videos)
    lines = []
    summary = run_batch(items, tmp_path, cluster, options=OPTIONS, log=lines.append)

    assert not summary.interrupted
    assert summary.counts == {"done": 5, "failed": 1, "skipped": 0}
    report = read_report(tmp_path / REPORT_FILE)
    assert list(report[0]) == list(REPORT_COLUMNS)
    assert [r["source"] for r in report] == [i.source for i in items]  # manifest order
    broken = report[2]
    assert broken["status"] == "failed" and "broken.mp4" in broken["error"] and "corrupt" in broken["error"]
    assert not (tmp_path / "broken").exists()
    assert all(r["status"] == "done" and r["frames"] == FRAMES and r["seconds"] > 0 for i, r in enumerate(report) if i != 2)
    assert [r.status for r in seq_summary.results] == [r["status"] for r in report]
    assert any("frames/s overall" in line for line in lines)

    for item in items:
        if item.name == "broken":
            continue
        project = tmp_path / item.name
        assert (project / MARKER_FILE).is_file()
        assert_same_outputs(project, seq_out / item.name)
        _, labels, hotspots, masks, meta = outputs(project)
        assert labels.shape == (FRAMES, HEIGHT, WIDTH)
        np.testing.assert_array_equal(labels, masks)  # DAVIS PNGs are the project's masks
        assert len(hotspots) >= 2 and hotspots[0][:2] == ["frame", "object_id"]
        assert Path(meta["video_path"]) == item.source_path
        assert meta["extra"]["batch"]["prompt"] == item.prompt
    assert hidden_entries(tmp_path) == []

    projects = list_batch_projects(tmp_path)
    assert [p.name for p in projects] == sorted(i.name for i in items if i.name != "broken")
    assert all(p.frames == FRAMES and p.video_path.exists() and p.davis_dir.is_dir() for p in projects)
    assert [f["source"] for f in batch_failures(tmp_path)] == ["broken.mp4"]


def test_rerun_skips_finished_videos_and_redoes_missing_ones(videos, cluster, tmp_path):
    items = read_manifest(videos)
    run_batch(items, tmp_path, cluster, options=OPTIONS, log=None)
    stamps = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob(f"*/{MARKER_FILE}")}
    redo = items[0].name
    for path in sorted((tmp_path / redo).rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (tmp_path / redo).rmdir()
    stale = tmp_path / f"{TEMP_PREFIX}{items[1].name}-deadbeef"  # left by a crashed run
    (stale / "masks").mkdir(parents=True)
    (stale / "project.json").write_text("{}")

    summary = run_batch(items, tmp_path, cluster, options=OPTIONS, log=None)
    statuses = {r.name: r.status for r in summary.results}
    assert statuses.pop(redo) == "done"
    assert statuses.pop("broken") == "failed"  # failures are retried on every run
    assert set(statuses.values()) == {"skipped"}
    for name, stamp in stamps.items():
        if name != redo:
            assert (tmp_path / name / MARKER_FILE).stat().st_mtime_ns == stamp  # not redone
    assert (tmp_path / redo / MARKER_FILE).is_file()
    assert hidden_entries(tmp_path) == []

    # A row changed since its folder was finished: refused, said once, counted in the opening line, and
    # reported without the other row's frames.
    k = next(i for i, item in enumerate(items) if item.prompt == "click")
    items[k] = replace(items[k], point=(items[k].point[0] + 3, items[k].point[1]), value="moved")
    lines = []
    summary = run_batch(items, tmp_path, cluster, options=OPTIONS, log=lines.append)
    assert summary.results[k].status == "failed" and summary.results[k].frames == 0
    assert sum(items[k].name in line and "different manifest row" in line for line in lines) == 1
    assert "1 refused (finished for another manifest row), 1 to run" in lines[0]
    assert read_report(tmp_path / REPORT_FILE)[k]["frames"] == 0


def test_killed_worker_is_replaced_and_the_batch_completes(videos, cluster, sequential, tmp_path):
    seq_out, _ = sequential
    items = [i for i in read_manifest(videos) if i.name != "broken"][:3]
    kill_marker = tmp_path / "killed-once"
    out = tmp_path / "out"
    pids_before = set(cluster.run(os.getpid).values())
    # A lambda travels by value; os.environ's own methods would pickle a copy of the mapping.
    marker_text = str(kill_marker)
    cluster.run(lambda: os.environ.update({KILL_ONCE_ENV: marker_text}))
    try:
        summary = run_batch(items, out, cluster, options=OPTIONS, retries=0, log=None)
    finally:
        cluster.run(lambda: os.environ.pop(KILL_ONCE_ENV, None))
    assert kill_marker.is_file(), "no task killed its worker: the hook did not run"
    killed_pid = int(kill_marker.read_text())
    assert killed_pid in pids_before
    cluster.wait_for_workers(2)
    assert killed_pid not in set(cluster.run(os.getpid).values())  # the nanny started a new process
    assert [r.status for r in summary.results] == ["done"] * 3, summary.results
    for item in items:
        assert_same_outputs(out / item.name, seq_out / item.name)
    assert hidden_entries(out) == []


def test_worker_side_errors_fail_the_video_with_a_clear_message(videos, tmp_path):
    items = {i.name: i for i in read_manifest(videos)}
    # An existing folder that is not a batch result is never overwritten.
    mask_item = next(i for i in items.values() if i.prompt == "mask")
    (tmp_path / mask_item.name).mkdir()
    (tmp_path / mask_item.name / "notes.txt").write_text("mine")
    result = process_video(mask_item, tmp_path, options=OPTIONS)
    assert result.status == "failed" and "is not a batch result" in result.error
    assert (tmp_path / mask_item.name / "notes.txt").read_text() == "mine"
    assert hidden_entries(tmp_path) == []
    # A mask PNG of the wrong size names the file and both sizes.
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.full((10, 10), 255, np.uint8))
    wrong = replace(mask_item, value_path=small, name="wrong")
    result = process_video(wrong, tmp_path, options=OPTIONS)
    assert result.status == "failed" and "small.png" in result.error and "10x10" in result.error


def test_finished_folder_from_another_prompt_is_not_overwritten(videos, tmp_path):
    item = next(i for i in read_manifest(videos) if i.prompt == "click")
    assert process_video(item, tmp_path, options=OPTIONS).status == "done"
    assert process_video(item, tmp_path, options=OPTIONS).status == "skipped"
    moved = replace(item, point=(item.point[0] + 3, item.point[1]), value="moved")
    result = process_video(moved, tmp_path, options=OPTIONS)
    assert result.status == "failed" and "different manifest row" in result.error


def test_adaptation_budget_is_used_and_recorded(videos, tmp_path):
    import json

    item = next(i for i in read_manifest(videos) if i.prompt == "mask")
    result = process_video(item, tmp_path, options=OPTIONS.with_(adapt_seconds=0.3))
    assert result.status == "done", result.error
    marker = json.loads((tmp_path / item.name / MARKER_FILE).read_text())
    # every TrackingOptions field it ran with, and the weights
    assert marker["settings"] == {"weights": None, **asdict(TrackingOptions(long_side=LONG_SIDE, adapt_seconds=0.3))}
    assert marker["settings"]["hotspot_smoothing"] == HOTSPOT_SMOOTHING
    assert result.seconds >= 0.3


def test_the_distractor_memory_setting_reaches_the_session_and_is_recorded(videos, tmp_path, monkeypatch):
    import json

    from napari_hotspot.batch import worker

    seen = []
    real = worker.track_into_store
    monkeypatch.setattr(worker, "track_into_store",
                        lambda session, prompt, *rest: seen.append(session.distractor_memory) or real(session, prompt, *rest))
    item = next(i for i in read_manifest(videos) if i.prompt == "mask")
    assert process_video(item, tmp_path, options=replace(OPTIONS, distractor_memory=False)).status == "done"
    assert seen == [False]
    marker = json.loads((tmp_path / item.name / MARKER_FILE).read_text())
    assert marker["settings"]["distractor_memory"] is False


def test_absent_frames_are_empty_keyframes_and_the_object_is_found_again(videos, tmp_path):
    """The manifest's `absent` column: an empty keyframe there (as the dock's erase makes), the object
    looked for and found again after it; a frame off the video fails that video alone."""
    item = next(i for i in read_manifest(videos) if i.prompt == "mask")
    absent = replace(item, absent=(4,), name="absent")
    result = process_video(absent, tmp_path, options=OPTIONS)
    assert result.status == "done", result.error
    store = load_project(tmp_path / "absent")[0]
    gone = store.get(1, 4)
    assert gone.is_keyframe and gone.is_absent and gone.hotspot is None
    assert not store.get(1, 5).mask.any()  # looks like it: taken on the second frame in a row
    assert all(store.get(1, t).mask.any() for t in range(6, FRAMES))
    assert batch_cli.build_parser().parse_args(["m.csv", "--out", "o", "--no-reacquire"]).reacquire is False
    kept = replace(item, absent=(4,), name="kept")  # --no-reacquire: absent to the end
    assert process_video(kept, tmp_path, options=replace(OPTIONS, reacquire=False)).status == "done"
    store = load_project(tmp_path / "kept")[0]
    assert not any(store.get(1, t).mask.any() for t in range(4, FRAMES))
    off = replace(item, absent=(40,), name="off")
    result = process_video(off, tmp_path, options=OPTIONS)
    assert result.status == "failed" and "absent frame 40: frame 40 is out of range" in result.error


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path):
    VIDEOS = 6  # 2 workers: the first finished video is the signal, at least 4 are then left to resume
    root = tmp_path / "videos"
    root.mkdir()
    rows = make_videos(root, VIDEOS, first_seed=20)
    manifest = write_manifest(root / "manifest.csv", rows)
    out = tmp_path / "out"
    command = [str(manifest), "--out", str(out), "--workers", "2", "--long-side", str(LONG_SIDE), "--adapt", "0"]
    # As in a terminal, SIGINT is not ignored in the child: a suite started in the background (`cmd &` in a
    # script) ignores it, which a child inherits and Python then leaves ignored (no KeyboardInterrupt).
    proc = subprocess.Popen([sys.executable, "-m", "napari_hotspot.batch.cli", *command],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 90
        while not list(out.glob(f"*/{MARKER_FILE}")):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no video finished in 90 s"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        log, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == batch_cli.EXIT_INTERRUPTED, log
    assert "Traceback" not in log, log
    report = read_report(out / REPORT_FILE)
    assert len(report) == VIDEOS and {r["status"] for r in report} <= {"done", "failed"}
    done = {r["source"] for r in report if r["status"] == "done"}
    interrupted = [r for r in report if r["status"] == "failed"]
    assert interrupted, "every video finished before the interrupt: nothing left to resume"
    assert all("interrupted" in r["error"] for r in interrupted)
    finished = {p.parent.name for p in out.glob(f"*/{MARKER_FILE}")}
    names = {i.source: i.name for i in read_manifest(manifest)}
    assert finished == {names[s] for s in done}
    assert sorted(p.name for p in out.iterdir()) == sorted(finished | {REPORT_FILE})  # nothing half-written
    stamps = {name: (out / name / MARKER_FILE).stat().st_mtime_ns for name in finished}

    assert batch_cli.main(command) == batch_cli.EXIT_OK
    report = read_report(out / REPORT_FILE)
    status = {r["source"]: r["status"] for r in report}
    assert all(status[s] == "skipped" for s in done)
    assert all(status[r["source"]] == "done" for r in interrupted)
    assert all((out / name / MARKER_FILE).stat().st_mtime_ns == stamp for name, stamp in stamps.items())
    assert len(list_batch_projects(out)) == VIDEOS
    # Everything complete: the same command only reports (no cluster is started).
    assert batch_cli.main(command) == batch_cli.EXIT_OK
    assert {r["status"] for r in read_report(out / REPORT_FILE)} == {"skipped"}


def test_cli_rejects_a_bad_manifest_before_starting_a_cluster(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "m.csv", ["a.mp4,wave,0,"])
    assert batch_cli.main([str(manifest), "--out", str(tmp_path / "out")]) == batch_cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "line 2" in err and "'wave'" in err
    assert not (tmp_path / "out").exists()
    assert batch_cli.main([str(manifest), "--out", str(tmp_path), "--scheduler", "tcp://x:1", "--workers", "2"]) == 2


def test_cli_refuses_an_unwritable_or_locked_out_before_starting_a_cluster(videos, tmp_path, capsys, monkeypatch):
    from napari_hotspot.batch.runner import batch_lock

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster started before --out was checked")

    monkeypatch.setattr(batch_cli, "_start_cluster", no_cluster)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert batch_cli.main([str(videos), "--out", str(blocker / "out")]) == batch_cli.EXIT_BAD_INPUT
    assert "a parent of this path is a file" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    with batch_lock(tmp_path / "busy"):
        assert batch_cli.main([str(videos), "--out", str(tmp_path / "busy")]) == batch_cli.EXIT_BAD_INPUT
    assert "another batch" in capsys.readouterr().err


def test_results_folder_checks(tmp_path):
    assert not is_batch_results_dir(tmp_path)
    with pytest.raises(ProjectIOError, match="holds no napari-hotspot batch results"):
        list_batch_projects(tmp_path)
    with pytest.raises(ProjectIOError, match="does not exist"):
        list_batch_projects(tmp_path / "missing")


def test_one_batch_at_a_time_per_output_folder(tmp_path):
    from napari_hotspot.batch.runner import LOCK_FILE, batch_lock

    with batch_lock(tmp_path):
        with pytest.raises(ProjectIOError, match=f"another batch \\(process {os.getpid()}\\) is writing"):
            with batch_lock(tmp_path):
                pass
    assert not (tmp_path / LOCK_FILE).exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (tmp_path / LOCK_FILE).write_text(f"{socket.gethostname()} {int(dead.stdout)}")  # its batch died
    with batch_lock(tmp_path) as lock:
        assert lock.read_text() == f"{socket.gethostname()} {os.getpid()}"
    (tmp_path / LOCK_FILE).write_text("elsewhere 123")
    with pytest.raises(ProjectIOError, match="process 123 on elsewhere"):
        with batch_lock(tmp_path):
            pass


def test_local_workers_drop_only_the_shutdown_heartbeat_error():
    import logging

    from napari_hotspot.batch.local_worker import _DropShutdownHeartbeat

    def record(msg):
        return logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1, msg, None, None)

    f = _DropShutdownHeartbeat()
    assert not f.filter(record("Failed to communicate with scheduler during heartbeat."))
    assert f.filter(record("Compute Failed"))


def test_ctrl_c_hides_only_distributeds_cancel_race_traceback():
    """distributed's sync() can log a NameError traceback for its own uninitialised future when Ctrl-C
    lands between scheduling a call and starting it; the batch CLI drops that record, nothing else."""
    import logging

    from napari_hotspot.batch.cli import _SyncCancelRace

    def record(exc):
        return logging.LogRecord("tornado.application", logging.ERROR, __file__, 1, "Exception in callback",
                                 None, (type(exc), exc, None))

    race = NameError("cannot access free variable 'future' where it is not associated with a value in "
                     "enclosing scope")
    assert not _SyncCancelRace().filter(record(race))
    assert _SyncCancelRace().filter(record(NameError("name 'frame' is not defined")))
    assert _SyncCancelRace().filter(record(ValueError("a real error")))
