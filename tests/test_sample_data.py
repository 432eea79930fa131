"""Tests for napari_hotspot.sample_data: the synthetic sample video, its ground truth and writers."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from napari_hotspot.errors import VideoError
from napari_hotspot.sample_data import SampleVideo, davis_palette, make_sample_video, write_sample
from napari_hotspot.video import open_source, read_mask_png


@pytest.fixture(scope="module")
def sample() -> SampleVideo:
    return make_sample_video()


def test_shapes_and_types(sample):
    assert sample.frames.shape == (48, 240, 320, 3) and sample.frames.dtype == np.uint8
    assert sample.masks.shape == (48, 240, 320) and sample.masks.dtype == np.uint8
    assert sample.hotspots.shape == (48, 2, 3) and sample.hotspots.dtype == np.float32
    assert sample.object_names == ("animal", "bird") and sample.object_ids == (1, 2)
    assert sample.fps == 24.0 and sample.num_frames == 48
    assert set(np.unique(sample.masks)) == {0, 1, 2}


def test_deterministic_and_seeded():
    a = make_sample_video(num_frames=6, height=120, width=160, seed=3)
    b = make_sample_video(num_frames=6, height=120, width=160, seed=3)
    c = make_sample_video(num_frames=6, height=120, width=160, seed=4)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.hotspots, b.hotspots)
    assert not np.array_equal(a.frames, c.frames)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_objects_present_separate_and_object1_larger(seed):
    s = make_sample_video(num_frames=24, seed=seed)
    grow = np.ones((5, 5), np.uint8)
    for f in range(s.num_frames):
        obj1 = (s.masks[f] == 1).astype(np.uint8)
        obj2 = s.masks[f] == 2
        assert obj1.sum() > obj2.sum() > 50, f"frame {f}"
        # Never overlapping, nor even touching: a 2-pixel dilation of object 1 misses object 2.
        assert not (cv2.dilate(obj1, grow).astype(bool) & obj2).any(), f"frame {f}"
        # Each object is one connected region.
        for obj in (obj1, obj2.astype(np.uint8)):
            assert cv2.connectedComponents(obj)[0] == 2, f"frame {f}"


def test_hotspots_inside_their_object_and_moving(sample):
    for f in range(sample.num_frames):
        for k, object_id in enumerate(sample.object_ids):
            x, y, visible = sample.hotspots[f, k]
            assert visible == 1.0
            assert sample.masks[f, int(y), int(x)] == object_id, f"frame {f} object {object_id}"
    travelled = np.linalg.norm(np.diff(sample.hotspots[:, :, :2], axis=0), axis=-1).sum(axis=0)
    assert (travelled > 40).all()  # both objects really move
    steps = np.linalg.norm(np.diff(sample.hotspots[:, :, :2], axis=0), axis=-1)
    # Smooth paths: no teleporting (the animal may turn around, which moves its head across the body).
    assert steps[:, 1].max() < 20


def test_mild_scale_change_and_texture(sample):
    areas = np.array([[(m == i).sum() for i in (1, 2)] for m in sample.masks], float)
    ratio = areas.max(axis=0) / areas.min(axis=0)
    assert (ratio > 1.05).all()  # the objects do change size
    assert ratio[0] < 1.8 and ratio[1] < 2.3  # mildly (the bird's wing beat adds to its area change)
    background = sample.frames[0][sample.masks[0] == 0].astype(float)
    assert background.std(axis=0).min() > 8  # textured, not flat
    animal = sample.frames[0][sample.masks[0] == 1].astype(float)
    assert animal.std(axis=0).min() > 8
    assert np.abs(np.diff(sample.frames.astype(int), axis=0)).mean() > 1  # frames change


def test_bad_arguments():
    with pytest.raises(VideoError, match="num_frames must be an integer >= 1"):
        make_sample_video(num_frames=0)
    with pytest.raises(VideoError, match="height"):
        make_sample_video(height=10)
    with pytest.raises(VideoError, match="kind must be 'folder' or 'mp4'"):
        write_sample("/tmp", kind="gif")


def test_write_sample_folder(tmp_path):
    small = make_sample_video(num_frames=5, height=120, width=160)
    paths = write_sample(tmp_path, "folder", sample=small)
    assert paths.frames == tmp_path / "JPEGImages" / "sample"
    assert sorted(p.name for p in paths.frames.iterdir()) == [f"{i:05d}.jpg" for i in range(5)]
    assert paths.frame_names == [f"{i:05d}" for i in range(5)]
    with open_source(paths.frames) as src:
        assert (src.num_frames, src.height, src.width) == (5, 120, 160)
        assert np.abs(src.get_frame(3).astype(int) - small.frames[3]).mean() < 4  # jpg, quality 95
    for i in range(5):
        np.testing.assert_array_equal(read_mask_png(paths.annotations / f"{i:05d}.png"), small.masks[i])
    with open(paths.hotspots_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["frame", "object_id", "x", "y", "visible"]
    assert len(rows) == 5 * 2
    for row in rows:
        f, k = int(row["frame"]), int(row["object_id"]) - 1
        assert float(row["x"]) == pytest.approx(small.hotspots[f, k, 0], abs=0.006)
        assert float(row["y"]) == pytest.approx(small.hotspots[f, k, 1], abs=0.006)
        assert int(row["visible"]) == 1


def test_write_sample_mp4(tmp_path):
    small = make_sample_video(num_frames=10, height=120, width=160)
    paths = write_sample(tmp_path, "mp4", sample=small, name="demo")
    assert paths.frames == tmp_path / "demo.mp4"
    assert (paths.annotations / "00009.png").is_file() and paths.hotspots_csv.name == "demo_hotspots.csv"
    with open_source(paths.frames) as src:
        assert (src.num_frames, src.height, src.width) == (10, 120, 160)
        assert src.fps == pytest.approx(24.0)
        decoded = np.stack(list(src.iter_frames()))
    assert np.abs(decoded.astype(int) - small.frames).mean() < 6  # lossy, but the same video


def test_davis_palette():
    palette = davis_palette()
    assert palette.shape == (256, 3)
    assert palette[0].tolist() == [0, 0, 0] and palette[1].tolist() == [128, 0, 0] and palette[2].tolist() == [0, 128, 0]
