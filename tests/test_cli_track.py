"""`napari-hotspot track` and `eval` end to end on the sample video (real models, real files)."""

import csv
import subprocess
import sys

import cv2
import numpy as np
import pytest

from napari_hotspot.cli import main
from napari_hotspot.sample_data import make_sample_video, write_sample


@pytest.fixture(scope="module")
def short_sample():
    return make_sample_video(num_frames=12)


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory, short_sample):
    return write_sample(tmp_path_factory.mktemp("sample"), "folder", short_sample)


@pytest.fixture(scope="module")
def sample_mp4(tmp_path_factory, short_sample):
    return write_sample(tmp_path_factory.mktemp("sample_mp4"), "mp4", short_sample)


def read_hotspots(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_track_folder_with_mask(tmp_path, sample_folder):
    out = tmp_path / "out"
    mask = sample_folder.annotations / "00000.png"
    assert main(["track", str(sample_folder.frames), "--out", str(out), "--mask", str(mask), "--adapt", "0"]) == 0
    pngs = sorted((out / "masks").glob("*.png"))
    assert [p.stem for p in pngs] == [f"{i:05d}" for i in range(12)]
    m = cv2.imread(str(pngs[5]), cv2.IMREAD_UNCHANGED)
    assert m.dtype == np.uint8 and m.shape == (240, 320) and set(np.unique(m)) <= {0, 1}
    given = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED).any(axis=-1)  # colour PNG: non-zero = object
    assert np.array_equal(cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED) > 0, given)  # the prompt as given
    rows = read_hotspots(out / "hotspots.csv")
    assert [int(r["frame"]) for r in rows] == list(range(12))
    assert {"frame", "object_id", "x", "y", "confidence"} <= set(rows[0])


def test_track_mp4_with_click_on_a_later_frame_goes_both_ways(tmp_path, sample_mp4, short_sample):
    out = tmp_path / "out"
    x, y = short_sample.hotspots[6, 0, :2]
    assert main(["track", str(sample_mp4.frames), "--out", str(out), "--frame", "6", "--click", f"{x},{y}", "--adapt", "0"]) == 0
    assert len(list((out / "masks").glob("*.png"))) == 12
    rows = read_hotspots(out / "hotspots.csv")
    assert sorted(int(r["frame"]) for r in rows) == list(range(12))
    assert [r["source"] for r in rows if int(r["frame"]) == 6] == ["click"]


def test_track_box_and_auto(tmp_path, sample_folder, short_sample):
    ys, xs = np.nonzero(short_sample.masks[0] == 1)
    assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "b"),
                 "--box", f"{xs.min()},{ys.min()},{xs.max()},{ys.max()}", "--adapt", "0"]) == 0
    assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "a"), "--auto", "--adapt", "0"]) == 0
    assert len(list((tmp_path / "a" / "masks").glob("*.png"))) == 12


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--click", "999,5"], "off the image"),
        (["--box", "10,10,10,40"], "zero area"),
        (["--box", "500,500,600,600"], "off the image"),
        (["--click", "5,5", "--frame", "40"], "out of range"),
        (["--mask", "missing.png"], "not found"),
        (["--mask", "."], "is a folder"),
        (["--click", "-5,100"], "off the image"),  # a value with a minus sign is a value, not an option
        (["--click", "-inf,3"], "off the image"),
        (["--click", "5,5", "--negative", "-1,3"], "off the image"),
        (["--box", "-50,-50,-10,-10"], "off the image"),
    ],
)
def test_track_bad_prompts_fail_clearly(tmp_path, sample_folder, extra, message, capsys):
    assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "adapting" not in err  # refused before the adaptation is announced


def test_track_empty_and_wrong_size_masks(tmp_path, sample_folder, capsys):
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.zeros((240, 320), np.uint8))
    assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "o"), "--mask", str(empty)]) == 2
    assert "empty" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # a failed first run leaves no empty output folder
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), np.ones((10, 10), np.uint8))
    assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "o"), "--mask", str(small)]) == 2
    assert "size" in capsys.readouterr().err


def test_track_corrupt_video_and_unwritable_output(tmp_path, sample_folder, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 100)
    assert main(["track", str(bad), "--out", str(tmp_path / "o"), "--auto"]) == 2
    assert "bad.mp4" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    mask = sample_folder.annotations / "00000.png"
    assert main(["track", str(sample_folder.frames), "--out", str(blocker / "o"), "--mask", str(mask)]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["corrections", "hotspot-maps", "tracker"])
def test_eval_refuses_an_unwritable_out_before_any_work(tmp_path, sample_folder, capsys, monkeypatch, mode):
    """--corrections and --hotspot-maps wrote their results only after all the work, and an --out they
    could not create ended in a traceback: now every eval checks it first, with a one-line error."""
    import napari_hotspot.evaluation.tracker_eval as tracker_eval
    from napari_hotspot.annotations import io_hotspot_maps

    def no_work(*args, **kwargs):
        raise AssertionError("work started before --out was checked")

    for module, name in ((tracker_eval, "correction_curve"), (tracker_eval, "evaluate_tracker"),
                         (io_hotspot_maps, "score_hotspot_csv")):
        monkeypatch.setattr(module, name, no_work)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    args = {"corrections": ["--corrections", "1"], "tracker": [],
            "hotspot-maps": ["--hotspot-maps", str(tmp_path), "--hotspots", str(tmp_path / "h.csv")]}[mode]
    assert main(["eval", "--davis-root", str(tmp_path), *args, "--out", str(blocker / "ev")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the --out folder" in err and "a parent of this path is a file" in err
    assert "Traceback" not in err


def test_an_unanticipated_os_error_ends_in_one_line(tmp_path, sample_folder, capsys, monkeypatch):
    import errno

    import napari_hotspot.pipeline as pipeline

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "o" / "x.png"))

    monkeypatch.setattr(pipeline, "track_video", read_only)
    mask = sample_folder.annotations / "00000.png"
    assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "o"), "--mask", str(mask),
                 "--adapt", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"napari-hotspot track: error: {tmp_path / 'o' / 'x.png'}: Read-only file system"


def test_console_script_usage_error_exits_nonzero():
    r = subprocess.run([sys.executable, "-m", "napari_hotspot.cli", "track", "x", "--out", "y"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "one of the arguments" in r.stderr


def test_eval_tracker_and_predictions_on_a_davis_layout(tmp_path, sample_folder, capsys):
    root = tmp_path / "davis"
    (root / "JPEGImages" / "480p").mkdir(parents=True)
    (root / "Annotations" / "480p").mkdir(parents=True)
    (root / "JPEGImages" / "480p" / "sample").symlink_to(sample_folder.frames)
    (root / "Annotations" / "480p" / "sample").symlink_to(sample_folder.annotations)
    out = tmp_path / "eval"
    assert main(["eval", "--davis-root", str(root), "--init", "mask", "--adapt", "0", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("J_mean=") and "JF_mean=" in line
    assert (out / "results.csv").is_file() and (out / "summary.md").is_file()
    assert "not held-out" not in (out / "summary.md").read_text()
    assert len(list((out / "predictions" / "sample").glob("*.png"))) == 12
    # Re-scoring the written predictions gives the same summary line.
    out2 = tmp_path / "eval2"
    assert main(["eval", "--davis-root", str(root), "--predictions", str(out / "predictions"), "--out", str(out2)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == line



def test_eval_refuses_unknown_sequences_and_an_empty_first_frame_clearly(tmp_path, sample_folder, capsys):
    import cv2
    import numpy as np

    root = tmp_path / "davis"
    (root / "JPEGImages" / "480p").mkdir(parents=True)
    (root / "Annotations" / "480p" / "late").mkdir(parents=True)
    (root / "JPEGImages" / "480p" / "sample").symlink_to(sample_folder.frames)
    (root / "Annotations" / "480p" / "sample").symlink_to(sample_folder.annotations)
    (root / "JPEGImages" / "480p" / "late").symlink_to(sample_folder.frames)
    for i, png in enumerate(sorted(sample_folder.annotations.glob("*.png"))):  # the object only from frame 1
        labels = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(root / "Annotations" / "480p" / "late" / png.name), labels if i else np.zeros_like(labels))
    base = ["eval", "--davis-root", str(root), "--adapt", "0", "--out", str(tmp_path / "o")]
    assert main([*base, "--hotspots", str(tmp_path / "h.csv")]) == 2
    assert "--hotspots is scored against --hotspot-maps" in capsys.readouterr().err
    assert main([*base, "--sequences", "sample", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "nosuch" in err and "Traceback" not in err and not (tmp_path / "o" / "predictions" / "sample").exists()
    for extra in ([], ["--corrections", "1"]):
        assert main([*base, "--sequences", "late", *extra]) == 2
        err = capsys.readouterr().err
        assert "contains no object" in err and "Traceback" not in err

def test_eval_warns_when_the_weights_trained_on_a_scored_sequence(tmp_path, sample_folder, capsys):
    from napari_hotspot.models.weights import ModelBundle

    trained = sorted(ModelBundle.load().trained_sequences())
    assert trained, "the shipped weights name their training sequences"
    root = tmp_path / "davis"
    for sub, src in (("JPEGImages", sample_folder.frames), ("Annotations", sample_folder.annotations)):
        (root / sub / "480p").mkdir(parents=True)
        (root / sub / "480p" / trained[0]).symlink_to(src)
    out = tmp_path / "eval"
    assert main(["eval", "--davis-root", str(root), "--init", "mask", "--adapt", "0", "--out", str(out)]) == 0
    assert f"trained on {trained[0]}" in capsys.readouterr().err
    assert "not held-out numbers" in (out / "summary.md").read_text()


def test_track_with_adaptation_matches_outputs_contract(tmp_path, sample_folder):
    out = tmp_path / "out"
    mask = sample_folder.annotations / "00000.png"
    assert main(["track", str(sample_folder.frames), "--out", str(out), "--mask", str(mask), "--adapt", "1"]) == 0
    assert len(list((out / "masks").glob("*.png"))) == 12
    assert len(read_hotspots(out / "hotspots.csv")) == 12


def test_adapt_help_states_the_session_defaults():
    """Every command's --adapt help is written once (options.add_adapt_arg) from the defaults the session uses."""
    import argparse

    from napari_hotspot.options import add_adapt_arg, adapt_seconds
    from napari_hotspot.session import DEFAULT_ADAPT_SECONDS, DEFAULT_ADAPT_STEPS

    p = argparse.ArgumentParser()
    add_adapt_arg(p)
    help_text = p._option_string_actions["--adapt"].help
    assert f"default {DEFAULT_ADAPT_SECONDS:g} s, at most {DEFAULT_ADAPT_STEPS} steps" in help_text
    assert adapt_seconds(p.parse_args([])) == DEFAULT_ADAPT_SECONDS
    assert adapt_seconds(p.parse_args(["--adapt", "0"])) == 0.0
    with pytest.raises(SystemExit):  # a negative budget is refused, not read as "off"
        p.parse_args(["--adapt", "-3"])


def test_complete_help_states_the_session_default():
    import argparse

    from napari_hotspot.options import add_complete_arg, complete_frames
    from napari_hotspot.session import COMPLETION_FRAMES

    p = argparse.ArgumentParser()
    add_complete_arg(p)
    assert f"default {COMPLETION_FRAMES};" in p._option_string_actions["--complete"].help
    assert complete_frames(p.parse_args([])) == COMPLETION_FRAMES
    assert complete_frames(p.parse_args(["--complete", "0"])) == 0
    with pytest.raises(SystemExit):
        p.parse_args(["--complete", "-1"])


def test_no_distractor_memory_reaches_the_session(tmp_path, sample_folder, monkeypatch):
    """track --no-distractor-memory: the session tracks without the distractor memory (on by default)."""
    from napari_hotspot import pipeline

    seen = []
    real = pipeline.track_video
    monkeypatch.setattr(pipeline, "track_video",
                        lambda session, *a, **k: seen.append(session.distractor_memory) or real(session, *a, **k))
    mask = sample_folder.annotations / "00000.png"
    for extra, expected in (([], True), (["--no-distractor-memory"], False)):
        out = tmp_path / f"out{len(seen)}"
        args = ["track", str(sample_folder.frames), "--out", str(out), "--mask", str(mask), "--adapt", "0"]
        assert main(args + extra) == 0
        assert seen[-1] is expected


def test_track_writes_the_completed_click_mask_on_the_prompted_frame(tmp_path, sample_folder, monkeypatch):
    """The prompted frame's PNG is the completed mask (what propagation starts from), asked for with
    --complete's frame count; --complete 0 keeps the click's own mask."""
    from napari_hotspot import session as session_module

    gt = cv2.imread(str(sample_folder.annotations / "00000.png")).max(axis=2) > 0
    ys, xs = np.nonzero(gt)
    x, y = int(np.median(xs)), int(np.median(ys))
    asked = []

    def complete(self, object_id, frame, frames=5):  # the round trip's answer: the true mask
        asked.append(frames)
        self._objects[object_id].anchors[frame].completed = True
        if frames == 0:  # off: the mask stays as it is
            return None
        return session_module.PromptResult(frame, object_id, gt, (x, y), 1.0, "click")

    monkeypatch.setattr(session_module.HotspotSession, "complete_prompt", complete)
    for n in ("3", "0"):
        out = tmp_path / n
        assert main(["track", str(sample_folder.frames), "--out", str(out), "--click", f"{x},{y}",
                     "--adapt", "0", "--complete", n, "--long-side", "256"]) == 0
        first = cv2.imread(str(sorted((out / "masks").glob("*.png"))[0]), cv2.IMREAD_UNCHANGED) > 0
        assert first[y, x]
        if n == "3":
            assert asked == [3] and np.array_equal(first, gt)
    assert asked == [3, 0]  # --complete 0 asks for 0 frames: the mask is kept, then learnt as it is


def test_track_mask_png_variants(tmp_path, sample_folder, capsys):
    gt = cv2.imread(str(sample_folder.annotations / "00000.png")).max(axis=2) > 0  # colour-coded objects
    # RGBA with a transparent background (an image editor's export): the opaque pixels are the object,
    # whatever colour the transparent ones have.
    rgba = np.zeros((*gt.shape, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[gt, 3] = 255
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    out = tmp_path / "o"
    assert main(["track", str(sample_folder.frames), "--out", str(out), "--mask", str(tmp_path / "rgba.png"),
                 "--adapt", "0"]) == 0
    first = cv2.imread(str(out / "masks" / "00000.png"), cv2.IMREAD_UNCHANGED) > 0
    assert (first & gt).sum() / (first | gt).sum() > 0.9
    # A mask that covers the whole frame (inverted, or an opaque picture) is refused.
    cv2.imwrite(str(tmp_path / "full.png"), np.full(gt.shape, 255, np.uint8))
    assert main(["track", str(sample_folder.frames), "--out", str(out), "--mask", str(tmp_path / "full.png")]) == 2
    assert "whole frame" in capsys.readouterr().err
    # A JPEG's compression noise around the object is not object.
    cv2.imwrite(str(tmp_path / "mask.jpg"), gt.astype(np.uint8) * 255, [cv2.IMWRITE_JPEG_QUALITY, 60])
    from napari_hotspot.video.masks import read_prompt_mask as read_mask_png

    assert (read_mask_png(tmp_path / "mask.jpg") ^ gt).mean() < 0.01


def test_a_failed_track_keeps_the_previous_output_and_a_new_one_replaces_it_whole(tmp_path, sample_folder,
                                                                                  short_sample, capsys):
    out = tmp_path / "o"
    mask = sample_folder.annotations / "00000.png"
    assert main(["track", str(sample_folder.frames), "--out", str(out), "--mask", str(mask), "--adapt", "0"]) == 0
    before = {p.name: p.read_bytes() for p in (out / "masks").iterdir()}
    csv_before = (out / "hotspots.csv").read_bytes()
    (out / "masks" / "99999.png").write_bytes(b"stale")  # as from an earlier, longer video
    # A corrupt frame in the middle: the run fails, and nothing of it lands in the output.
    frames = tmp_path / "frames"
    frames.mkdir()
    for p in sorted(sample_folder.frames.iterdir()):
        (frames / p.name).write_bytes(p.read_bytes())
    sorted(frames.iterdir())[6].write_bytes(b"not an image")
    assert main(["track", str(frames), "--out", str(out), "--mask", str(mask), "--adapt", "0"]) == 2
    capsys.readouterr()
    assert {p.name for p in (out / "masks").iterdir()} == set(before) | {"99999.png"}
    assert (out / "hotspots.csv").read_bytes() == csv_before
    assert not (out / ".masks.partial").exists()
    # A successful run replaces masks/ as a whole: no stale PNG stays.
    assert main(["track", str(sample_folder.frames), "--out", str(out), "--mask", str(mask), "--adapt", "0"]) == 0
    assert {p.name for p in (out / "masks").iterdir()} == set(before)



def test_track_refuses_an_output_folder_that_is_a_project_or_holds_other_masks(tmp_path, sample_folder, capsys):
    """Replacing masks/ and hotspots.csv is only for an earlier track output: a project folder (its
    annotations) or a masks/ holding other files is refused before any work, and left as it was."""
    args = ["track", str(sample_folder.frames), "--mask", str(sample_folder.annotations / "00000.png"), "--adapt", "0"]
    project = tmp_path / "project"
    (project / "masks").mkdir(parents=True)
    (project / "project.json").write_text("{}")
    (project / "masks" / "object_00001.npz").write_bytes(b"annotations")
    assert main([*args, "--out", str(project)]) == 2
    assert "is a napari-hotspot project folder" in capsys.readouterr().err
    assert (project / "masks" / "object_00001.npz").read_bytes() == b"annotations"
    mine = tmp_path / "mine"
    (mine / "masks").mkdir(parents=True)
    (mine / "masks" / "important.txt").write_text("keep")
    assert main([*args, "--out", str(mine)]) == 2
    assert "holds files a track output does not (important.txt)" in capsys.readouterr().err
    assert (mine / "masks" / "important.txt").read_text() == "keep"
    as_file = tmp_path / "as_file"
    as_file.mkdir()
    (as_file / "masks").write_text("a file")
    assert main([*args, "--out", str(as_file)]) == 2
    assert "is a file, not an earlier track output" in capsys.readouterr().err
    assert (as_file / "masks").read_text() == "a file"

def test_bad_weights_and_numeric_options_fail_clearly(tmp_path, sample_folder, capsys):
    import torch

    mask = sample_folder.annotations / "00000.png"
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    other = tmp_path / "other.pt"
    torch.save({"state": 1}, other)
    from napari_hotspot.models.weights import DEFAULT_WEIGHTS

    zeroed = tmp_path / "zeroed.pt"  # a bad copy: torch.load reads it, its weights are garbage
    data = bytearray(DEFAULT_WEIGHTS.read_bytes())
    data[len(data) // 2: len(data) // 2 + 100] = bytes(100)
    zeroed.write_bytes(bytes(data))
    for weights, message in ((empty, "not a readable napari-hotspot weights file"),
                             (other, "not a napari-hotspot weights file"), (zeroed, "is damaged")):
        assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "o"), "--mask", str(mask),
                     "--weights", str(weights)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    for option, value in (("--long-side", "100000"), ("--long-side", "8"), ("--adapt", "-5")):
        with pytest.raises(SystemExit) as exc:
            main(["track", str(sample_folder.frames), "--out", str(tmp_path / "o"), "--mask", str(mask), option, value])
        assert exc.value.code == 2
        assert option in capsys.readouterr().err


def test_a_point_both_positive_and_negative_is_refused(tmp_path, sample_folder, capsys):
    assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "o"), "--click", "100,100",
                 "--negative", "100,100"]) == 2
    assert "both as --click and as --negative" in capsys.readouterr().err
    assert main(["track", str(sample_folder.frames), "--out", str(tmp_path / "o"), "--click", "100,100",
                 "--negative", "9999,3"]) == 2
    assert "negative click (9999, 3) is off the image" in capsys.readouterr().err


def test_a_one_frame_video_is_not_adapted(tmp_path, sample_folder, capsys):
    one = tmp_path / "one"
    one.mkdir()
    first = sorted(sample_folder.frames.iterdir())[0]
    (one / first.name).write_bytes(first.read_bytes())
    assert main(["track", str(one), "--out", str(tmp_path / "o"), "--mask",
                 str(sample_folder.annotations / "00000.png")]) == 0
    out = capsys.readouterr().out
    assert "tracked 1 frame in" in out and "adapted" not in out


def test_track_absent_frames_are_empty_and_the_object_is_found_again(tmp_path, sample_folder, capsys):
    """--absent FRAME: the object's mask is empty there (its hotspot row says "absent"); forward from there
    it is looked for and found again (it never left this video), or with --no-reacquire it stays absent."""
    mask = sample_folder.annotations / "00000.png"
    args = ["track", str(sample_folder.frames), "--mask", str(mask), "--adapt", "0", "--absent", "4"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "found again on frame 6" in capsys.readouterr().out
    labels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / "a" / "masks").glob("*.png"))]
    assert [bool(m.any()) for m in labels] == [True] * 4 + [False, False] + [True] * 6
    rows = {int(r["frame"]): r for r in read_hotspots(tmp_path / "a" / "hotspots.csv")}
    assert rows[4]["source"] == "absent" and rows[4]["x"] == "" and rows[5]["x"] == ""
    assert main([*args, "--no-reacquire", "--out", str(tmp_path / "b")]) == 0
    assert "found again" not in capsys.readouterr().out
    labels = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / "b" / "masks").glob("*.png"))]
    assert [bool(m.any()) for m in labels] == [True] * 4 + [False] * 8


def test_track_absent_before_the_prompt_looks_back_or_writes_untracked_rows(tmp_path, sample_folder, short_sample,
                                                                            capsys):
    """Before an --absent frame that lies before the prompt, the backward sweep looks for the object (found
    again on the second frame); with --no-reacquire no sweep reaches those frames, and each still gets an
    empty label and a row that says it was not tracked."""
    x, y = short_sample.hotspots[6, 0, :2]
    args = ["track", str(sample_folder.frames), "--frame", "6", "--click", f"{x},{y}", "--adapt", "0", "--absent", "2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert "found again on frame 0" in capsys.readouterr().out
    rows = {int(r["frame"]): r for r in read_hotspots(tmp_path / "a" / "hotspots.csv")}
    assert [(rows[t]["source"], rows[t]["visible"]) for t in (0, 1, 2)] == \
        [("propagated", "1"), ("propagated", "0"), ("absent", "0")]
    assert main([*args, "--no-reacquire", "--out", str(tmp_path / "o")]) == 0
    rows = {int(r["frame"]): r for r in read_hotspots(tmp_path / "o" / "hotspots.csv")}
    assert sorted(rows) == list(range(12))
    assert [rows[t]["source"] for t in (0, 1, 2)] == ["untracked", "untracked", "absent"]
    assert rows[0]["visible"] == "0" and float(rows[0]["confidence"]) == 0.0
    assert all(rows[t]["visible"] == "1" for t in range(3, 12))


def test_track_video_refuses_an_absence_of_an_object_without_a_prompt(tmp_path, short_sample):
    from napari_hotspot.errors import PromptError
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.pipeline import Prompt, track_video
    from napari_hotspot.session import HotspotSession

    session = HotspotSession(short_sample.frames, ModelBundle.load(), long_side=256)
    with pytest.raises(PromptError, match="object 2 is marked absent but has no prompt"):
        track_video(session, [Prompt("mask", 0, 1, mask=short_sample.masks[0] == 1)], tmp_path / "o", absent={2: [3]})
    assert not (tmp_path / "o" / "masks").exists()


@pytest.mark.parametrize("frame, message", [("0", "is the prompt's frame"), ("40", "--absent 40 is out of range"),
                                            ("-1", "must be")])
def test_track_refuses_an_absent_frame_it_cannot_use(tmp_path, sample_folder, frame, message, capsys):
    mask = sample_folder.annotations / "00000.png"
    argv = ["track", str(sample_folder.frames), "--mask", str(mask), "--out", str(tmp_path / "o"), f"--absent={frame}"]
    if frame.startswith("-"):  # refused by the parser (exit status 2 too)
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    else:
        assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "masks").exists()
