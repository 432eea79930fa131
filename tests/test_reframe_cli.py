"""`napari-hotspot reframe` end to end: tracks in, reframed video + JSON report out (real files, real
encoder; the tracker run uses the shipped weights on a short sample)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from napari_hotspot.annotations.model import AnnotationStore
from napari_hotspot.annotations.project import save_project
from napari_hotspot.errors import HotspotError, ProjectIOError, PromptError
from napari_hotspot.reframe import cli as reframe_cli
from napari_hotspot.reframe.path import CropPath
from napari_hotspot.reframe.render import crop_frame, output_size, render_reframed
from napari_hotspot.sample_data import make_sample_video, write_sample
from napari_hotspot.video import open_source

DATA_ROOT = Path(os.environ.get("NAPARI_HOTSPOT_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DAVIS = DATA_ROOT / "davis2016-dev"


@pytest.fixture(scope="module")
def sample():
    return make_sample_video(num_frames=24)


@pytest.fixture(scope="module")
def sample_mp4(tmp_path_factory, sample):
    return write_sample(tmp_path_factory.mktemp("mp4"), kind="mp4", sample=sample)


@pytest.fixture(scope="module")
def track_folder(tmp_path_factory, sample_mp4):
    """A `napari-hotspot track`-style folder holding the sample's ground truth."""
    folder = tmp_path_factory.mktemp("tracks")
    shutil.copytree(sample_mp4.annotations, folder / "masks")
    shutil.copy(sample_mp4.hotspots_csv, folder / "hotspots.csv")
    return folder


def parse(argv):
    parser = argparse.ArgumentParser()
    reframe_cli.add_arguments(parser)
    return parser.parse_args(argv)


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        return {"width": v.codec_context.width, "height": v.codec_context.height, "frames": frames,
                "rate": v.average_rate, "audio": [s.codec_context.name for s in c.streams.audio]}


# ------------------------------------------------------------------------------------------ render
def test_crop_frame_is_exact_at_unit_scale_and_subpixel_smooth():
    frame = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    # window edges at x 10-0.5 .. 30-0.5 (columns 10..29), rows 5..24
    out = crop_frame(frame, (19.5, 14.5, 20, 20), (20, 20))
    assert np.array_equal(out, frame[5:25, 10:30])
    ramp = np.tile(np.arange(80, dtype=np.uint8)[None, :, None] * 3, (60, 1, 3))
    half = crop_frame(ramp, (20.0, 14.5, 20, 20), (20, 20))  # half a pixel to the right
    assert np.allclose(half[0, 1:-1, 0].astype(float) - ramp[0, 11:29, 0], 1.5, atol=0.51)
    assert output_size((480, 854), 9 / 16) == (270, 480)
    assert output_size((480, 854), 1.0, height=100) == (100, 100)
    assert all(v % 2 == 0 for v in output_size((480, 854), 4 / 3, height=101))  # H.264 needs even sizes


def test_render_keeps_frame_count_rate_and_aspect(tmp_path, sample):
    n = sample.num_frames
    path = CropPath(np.tile([[160.0, 119.5]], (n, 1)), np.full(n, 240.0), 4 / 5, (240, 320))
    done = []
    summary = render_reframed(iter(sample.frames), path, tmp_path / "o.mp4", fps=30.0,
                              progress=lambda d, t: done.append((d, t)))
    info = probe(tmp_path / "o.mp4")
    assert info["frames"] == n and (info["width"], info["height"]) == (192, 240)
    assert info["rate"] == Fraction(30) and done[-1] == (n, n) and summary["audio"] is False
    with pytest.raises(HotspotError, match="frames"):
        render_reframed(iter(sample.frames[:5]), path, tmp_path / "short.mp4")
    assert not (tmp_path / "short.mp4").exists()  # no half-written video left behind
    with pytest.raises(ProjectIOError, match="must be one of"):
        render_reframed(iter(sample.frames), path, tmp_path / "o.gif")


def _video_with_audio(path: Path, codec: str, frames: np.ndarray, fps: int = 24, rate: int = 16000) -> Path:
    n, h, w = frames.shape[:3]
    tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(int(rate * n / fps)) / rate)
    fmt = "s16" if codec.startswith("pcm") else "fltp"
    samples = (tone * 32767).astype(np.int16) if fmt == "s16" else tone.astype(np.float32)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream(codec, rate=rate)
        a.layout = "mono"
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for s in range(0, len(samples), 1024):
            chunk = av.AudioFrame.from_ndarray(samples[None, s:s + 1024], format=fmt, layout="mono")
            chunk.sample_rate, chunk.pts = rate, s
            for p in a.encode(chunk):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        for p in a.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize("codec, ext, expect", [("aac", ".mp4", "copied"), ("pcm_s16le", ".mov", "transcoded")])
def test_audio_is_carried_over(tmp_path, sample, codec, ext, expect):
    frames = sample.frames[:12, :120, :160]
    src = _video_with_audio(tmp_path / f"in{ext}", codec, frames)
    source = open_source(src)
    n = source.num_frames
    path = CropPath(np.tile([[60.0, 59.5]], (n, 1)), np.full(n, 120.0), 1.0, (120, 160))
    summary = render_reframed(source.iter_frames(), path, tmp_path / "out.mp4", fps=source.fps, audio_from=src)
    source.close()
    info = probe(tmp_path / "out.mp4")
    assert info["audio"] == ["aac"] and info["frames"] == 12
    assert any(expect in note for note in summary["notes"])


# ------------------------------------------------------------------------------------------ CLI
def test_cli_reframes_the_sample_mp4_from_a_track_folder(tmp_path, sample_mp4, track_folder, sample):
    out, report_path = tmp_path / "r.mp4", tmp_path / "r.json"
    args = parse([str(sample_mp4.frames), "--out", str(out), "--aspect", "9:16", "--tracks", str(track_folder),
                  "--report", str(report_path)])
    assert reframe_cli.run(args) == 0
    info = probe(out)
    assert info["frames"] == sample.num_frames
    assert abs(info["width"] / info["height"] - 9 / 16) < 0.01 and info["height"] == 240
    report = json.loads(report_path.read_text())
    for key in ("hotspot_in_window", "mask_coverage", "velocity", "acceleration", "jerk"):
        assert isinstance(report[key], float) and isinstance(report["baseline"][key], float)
    assert report["hotspot_in_window"] >= 0.99
    assert report["jerk"] <= report["baseline"]["jerk"] / 5
    assert report["object_ids"] == [1, 2] and len(report["windows"]) == sample.num_frames
    assert report["cuts"] == []


def test_cli_reads_a_project_with_object_priority_and_auto_zoom(tmp_path, sample_mp4, sample):
    store = AnnotationStore(sample.num_frames, 240, 320)
    for oid in (1, 2):
        store.add_object(obj_id=oid)
        for t in range(sample.num_frames):
            x, y, vis = sample.hotspots[t, oid - 1]
            store.set_frame(oid, t, mask=sample.masks[t] == oid, hotspot=(float(x), float(y), bool(vis)))
    project = save_project(store, tmp_path / "proj", video_source=sample_mp4.frames)
    out = tmp_path / "p.mp4"
    args = parse([str(sample_mp4.frames), "--out", str(out), "--aspect", "1:1", "--zoom", "auto", "--mode", "track",
                  "--tracks", str(project), "--objects", "2", "--report", str(tmp_path / "p.json"), "--cuts", "none"])
    assert reframe_cli.run(args) == 0
    report = json.loads((tmp_path / "p.json").read_text())
    assert report["object_ids"] == [2] and report["shots"][0]["mode_x"] == "track"
    assert report["hotspot_in_window"] >= 0.99 and report["mask_coverage"] >= 0.9
    heights = [w[3] for w in report["windows"]]
    assert max(heights) < 240  # the small bird is zoomed in on
    assert probe(out)["frames"] == sample.num_frames


def test_cli_keyframes_pin_the_window(tmp_path, sample_mp4, track_folder):
    args = parse([str(sample_mp4.frames), "--out", str(tmp_path / "k.mp4"), "--aspect", "1:1", "--zoom", "2",
                  "--tracks", str(track_folder), "--cuts", "none", "--keyframe", "10,250,60",
                  "--keyframe", "20,100,100,80", "--report", str(tmp_path / "k.json")])
    assert reframe_cli.run(args) == 0
    windows = json.loads((tmp_path / "k.json").read_text())["windows"]
    assert windows[10][:2] == pytest.approx([250, 60], abs=1.01)
    assert windows[20] == pytest.approx([100, 100, 80, 80], abs=1.01)  # centre and zoom
    assert windows[0][3] == pytest.approx(120, abs=1.0)  # zoom 2 elsewhere
    with pytest.raises(SystemExit):
        parse([str(sample_mp4.frames), "--out", "x.mp4", "--aspect", "1:1", "--auto", "--keyframe", "1,2"])


def test_cli_runs_the_tracker_from_a_mask_prompt(tmp_path, sample_mp4, sample):
    short = tmp_path / "short"
    paths = write_sample(short, kind="mp4", sample=make_sample_video(num_frames=4))  # CPU model work: keep short
    out = tmp_path / "t.mp4"
    args = parse([str(paths.frames), "--out", str(out), "--aspect", "4:5", "--mask",
                  str(paths.annotations / "00000.png"), "--report", str(tmp_path / "t.json"), "--adapt", "0.5"])
    # the GT PNG holds two objects; the prompt mask is "any non-zero pixel"
    assert reframe_cli.run(args) == 0
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["frames"] == 4 and report["object_ids"] == [1]
    assert report["hotspot_in_window"] >= 0.99  # the tracker's own hotspot, kept in view by construction
    assert probe(out)["frames"] == 4



def test_out_and_report_may_not_overwrite_the_source_or_each_other(tmp_path, sample_mp4, track_folder, monkeypatch):
    """Refused before any work, the source left as it was; a bad --cuts or --height fails before tracking."""
    source = tmp_path / "source.mp4"
    shutil.copy(sample_mp4.frames, source)
    before = source.read_bytes()
    tracks = ["--aspect", "1:1", "--tracks", str(track_folder)]
    with pytest.raises(ProjectIOError, match="is the source video"):
        reframe_cli.run(parse([str(source), "--out", str(source), *tracks]))
    with pytest.raises(ProjectIOError, match="is the source video"):
        reframe_cli.run(parse([str(source), "--out", str(tmp_path / "o.mp4"), "--report", str(source), *tracks]))
    with pytest.raises(ProjectIOError, match="is the --out video"):
        reframe_cli.run(parse([str(source), "--out", str(tmp_path / "o.mp4"), "--report", str(tmp_path / "o.mp4"),
                               *tracks]))
    assert source.read_bytes() == before and not (tmp_path / "o.mp4").exists()
    monkeypatch.setattr(reframe_cli, "_tracks", lambda *a: pytest.fail("tracked before checking the options"))
    with pytest.raises(HotspotError, match="--cuts"):
        reframe_cli.run(parse([str(source), "--out", str(tmp_path / "o.mp4"), *tracks, "--cuts", "abc"]))
    with pytest.raises(HotspotError, match="at least 2 pixels"):
        reframe_cli.run(parse([str(source), "--out", str(tmp_path / "o.mp4"), *tracks, "--height", "1"]))
    with pytest.raises(HotspotError, match="less extreme aspect"):
        reframe_cli.run(parse([str(source), "--out", str(tmp_path / "o.mp4"), "--aspect", "1000:1",
                               "--tracks", str(track_folder)]))

def test_cli_errors_are_clear(tmp_path, sample_mp4, track_folder, capsys):
    base = [str(sample_mp4.frames), "--out", str(tmp_path / "x.mp4")]
    with pytest.raises(HotspotError, match="aspect"):
        reframe_cli.run(parse(base + ["--aspect", "wide", "--tracks", str(track_folder)]))
    with pytest.raises(ProjectIOError, match="neither a napari-hotspot project"):
        reframe_cli.run(parse(base + ["--aspect", "1:1", "--tracks", str(tmp_path)]))
    with pytest.raises(ProjectIOError, match="does not exist"):
        reframe_cli.run(parse(base + ["--aspect", "1:1", "--tracks", str(tmp_path / "nothere")]))
    with pytest.raises(PromptError, match="both as --click and as --negative"):  # as track refuses it
        reframe_cli.run(parse(base + ["--aspect", "1:1", "--click", "40,70", "--negative", "40,70"]))
    with pytest.raises(ProjectIOError, match=r"no object\(s\) \[7\]"):
        reframe_cli.run(parse(base + ["--aspect", "1:1", "--tracks", str(track_folder), "--objects", "7"]))
    with pytest.raises(PromptError, match="--frame 99"):
        reframe_cli.run(parse(base + ["--aspect", "1:1", "--tracks", str(track_folder), "--frame", "99"]))
    with pytest.raises(HotspotError, match="--cuts"):
        reframe_cli.run(parse(base + ["--aspect", "1:1", "--tracks", str(track_folder), "--cuts", "0,500"]))
    assert reframe_cli.main([str(sample_mp4.frames), "--out", str(tmp_path / "x.avi"), "--aspect", "1:1",
                             "--tracks", str(track_folder)]) == 2
    assert "use a .mp4" in capsys.readouterr().err
    (tmp_path / "folder.mp4").mkdir()
    with pytest.raises(ProjectIOError, match="is a folder"):
        reframe_cli.run(parse([str(sample_mp4.frames), "--out", str(tmp_path / "folder.mp4"), "--aspect", "1:1",
                               "--tracks", str(track_folder)]))
    # A track folder of another, shorter video: its frame names all exist in this one.
    short = tmp_path / "short_tracks"
    shutil.copytree(track_folder, short)
    sorted((short / "masks").glob("*.png"))[-1].unlink()
    with pytest.raises(ProjectIOError, match="tracked on this video"):
        reframe_cli.run(parse(base + ["--aspect", "1:1", "--tracks", str(short)]))
    with pytest.raises(SystemExit):
        parse(base + ["--aspect", "1:1", "--zoom", "0.5", "--auto"])
    with pytest.raises(SystemExit):
        parse(base + ["--aspect", "1:1"])  # no prompt and no tracks
    for fps in ("0", "-3", "nan"):
        with pytest.raises(SystemExit):
            parse(base + ["--aspect", "1:1", "--tracks", str(track_folder), "--fps", fps])
    tracks = ["--aspect", "1:1", "--tracks", str(track_folder)]
    for keyframe, message in (("3,5000,100", "centre is off the image"), ("99,100,100", "outside the video"),
                              ("3,100,100,1000", "height must be")):
        with pytest.raises(PromptError, match=message):
            reframe_cli.run(parse(base + tracks + ["--keyframe", keyframe]))
    with pytest.raises(PromptError, match="--negative needs"):
        reframe_cli.run(parse(base + tracks + ["--negative", "10,10"]))
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(ProjectIOError, match="it is a file, not a folder"):
        reframe_cli.run(parse([str(sample_mp4.frames), "--out", str(blocker / "r.mp4"), *tracks]))


def test_cli_an_unwritable_report_leaves_the_earlier_video_and_renders_nothing(tmp_path, sample_mp4, track_folder,
                                                                             monkeypatch, capsys):
    """The report is written after the video replaced --out: its folder is checked before any work, so a
    report that cannot be written no longer leaves a new video behind a failed run."""
    import napari_hotspot.reframe.render as render

    out = tmp_path / "r.mp4"
    out.write_bytes(b"the earlier video")
    blocker = tmp_path / "afile"
    blocker.write_text("x")

    def no_render(*args, **kwargs):
        raise AssertionError("rendered before the report's folder was checked")

    monkeypatch.setattr(render, "render_reframed", no_render)
    assert reframe_cli.main([str(sample_mp4.frames), "--out", str(out), "--aspect", "1:1", "--tracks",
                             str(track_folder), "--report", str(blocker / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the --report folder" in err and "Traceback" not in err
    assert out.read_bytes() == b"the earlier video"


@pytest.mark.data
@pytest.mark.skipif(not (DAVIS / "JPEGImages" / "480p" / "car-shadow").is_dir(),
                    reason=f"DAVIS-2016 not found under {DAVIS} (set NAPARI_HOTSPOT_DATA)")
def test_davis_ground_truth_meets_the_acceptance_numbers(tmp_path):
    tracks = tmp_path / "tracks"
    tracks.mkdir()
    (tracks / "masks").symlink_to(DAVIS / "Annotations" / "480p" / "car-shadow")
    args = parse([str(DAVIS / "JPEGImages" / "480p" / "car-shadow"), "--out", str(tmp_path / "c.mp4"),
                  "--aspect", "9:16", "--tracks", str(tracks), "--report", str(tmp_path / "c.json")])
    assert reframe_cli.run(args) == 0
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["cuts"] == []  # one continuous shot: no false cut
    assert report["hotspot_in_window"] >= 0.99
    assert report["mask_coverage_where_fits"] >= 0.9
    assert report["jerk"] <= report["baseline"]["jerk"] / 5
    info = probe(tmp_path / "c.mp4")
    assert info["frames"] == 40 and (info["width"], info["height"]) == (270, 480)
