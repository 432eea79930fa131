"""Tests for the npe2 reader and sample-data contributions (napari_hotspot._napari.reader / .sample)."""

from __future__ import annotations


import numpy as np

from napari_hotspot.data_paths import davis_root
import pytest

from napari_hotspot._napari.reader import get_reader, read_video
from napari_hotspot._napari.sample import make_sample_video as sample_layers
from napari_hotspot.errors import VideoError
from napari_hotspot.sample_data import make_sample_video, write_sample
from napari_hotspot.video import LazyVideoArray

DAVIS_SEQ = davis_root() / "JPEGImages" / "480p" / "blackswan"


@pytest.fixture(scope="module")
def small_sample():
    return make_sample_video(num_frames=8, height=96, width=128)


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory, small_sample):
    return write_sample(tmp_path_factory.mktemp("folder"), "folder", sample=small_sample)


@pytest.fixture(scope="module")
def sample_mp4(tmp_path_factory, small_sample):
    return write_sample(tmp_path_factory.mktemp("mp4"), "mp4", sample=small_sample)


# -- Qt-free: the reader function itself ---------------------------------------------------------------
def test_get_reader_accepts_only_what_it_handles(tmp_path, sample_folder, sample_mp4):
    assert get_reader(str(sample_folder.frames)) is read_video
    assert get_reader(str(sample_mp4.frames)) is read_video
    assert get_reader([str(sample_mp4.frames)]) is read_video
    assert get_reader([str(sample_mp4.frames), str(sample_mp4.frames)]) is None
    (tmp_path / "notes.txt").write_text("x")
    assert get_reader(str(tmp_path / "notes.txt")) is None
    (tmp_path / "empty").mkdir()
    assert get_reader(str(tmp_path / "empty")) is None
    assert get_reader(str(tmp_path / "missing.mp4")) is read_video  # opening reports it clearly


def test_read_folder_gives_image_and_ground_truth(sample_folder, small_sample):
    layers = read_video(str(sample_folder.frames))
    assert [layer_type for _, _, layer_type in layers] == ["image", "labels"]
    (video, kwargs, _), (labels, label_kwargs, _) = layers
    assert isinstance(video, LazyVideoArray) and video.shape == (8, 96, 128, 3)
    assert kwargs["name"] == "sample" and kwargs["rgb"] is True
    meta = kwargs["metadata"]["napari_hotspot"]
    assert meta == {
        "source": str(sample_folder.frames),
        "fps": None,
        "frame_names": [f"{i:05d}" for i in range(8)],
        "num_frames": 8,
    }
    assert label_kwargs["name"] == "sample ground truth"
    np.testing.assert_array_equal(labels[5], small_sample.masks[5])


def test_read_mp4_and_errors(sample_mp4, tmp_path):
    layers = read_video(str(sample_mp4.frames))
    assert len(layers) == 1
    data, kwargs, layer_type = layers[0]
    assert layer_type == "image" and data.shape == (8, 96, 128, 3)
    assert kwargs["metadata"]["napari_hotspot"]["fps"] == pytest.approx(24.0)
    with pytest.raises(VideoError, match=r"missing\.mp4"):
        read_video(str(tmp_path / "missing.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    with pytest.raises(VideoError, match=r"broken\.mp4.*corrupt"):
        read_video(str(broken))


def test_sample_layers(small_sample):
    layers = sample_layers()
    assert [t for _, _, t in layers] == ["image", "labels", "points"]
    (frames, image_kwargs, _), (masks, _, _), (points, point_kwargs, _) = layers
    assert frames.shape == (48, 240, 320, 3) and image_kwargs["rgb"] is True
    assert masks.shape == (48, 240, 320)
    assert points.shape == (96, 3)
    ids = point_kwargs["features"]["object_id"]
    for (t, y, x), object_id in zip(points, ids, strict=True):
        assert masks[int(t), int(y), int(x)] == object_id


# -- GUI: through napari's plugin machinery -------------------------------------------------------------
@pytest.mark.gui
def test_viewer_opens_frame_folder(make_napari_viewer, sample_folder, small_sample):
    viewer = make_napari_viewer()
    layers = viewer.open(str(sample_folder.frames), plugin="napari-hotspot")
    image, labels = layers
    assert image.data.shape == (8, 96, 128, 3) and image.rgb
    assert labels.data.shape == (8, 96, 128)
    source = image.data.source
    viewer.dims.set_current_step(0, 6)
    assert 6 in source._cache  # napari asked for frame 6 ...
    assert len(source._cache) < 8  # ... without reading the whole video
    np.testing.assert_array_equal(np.asarray(labels.data[6]), small_sample.masks[6])


@pytest.mark.gui
def test_viewer_opens_mp4(make_napari_viewer, sample_mp4):
    viewer = make_napari_viewer()
    (image,) = viewer.open(str(sample_mp4.frames), plugin="napari-hotspot")
    assert image.data.shape == (8, 96, 128, 3) and image.rgb
    assert image.metadata["napari_hotspot"]["num_frames"] == 8
    viewer.dims.set_current_step(0, 7)
    np.testing.assert_array_equal(image.data[7], image.data.source.get_frame(7))


@pytest.mark.gui
def test_viewer_reports_corrupt_video(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        viewer.open(str(broken), plugin="napari-hotspot")
    assert len(viewer.layers) == 0


@pytest.mark.gui
def test_viewer_sample_data(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-hotspot", "sample_video")
    assert [type(layer).__name__ for layer in layers] == ["Image", "Labels", "Points"]
    assert list(layers[2].features["object_id"][:2]) == [1, 2]


@pytest.mark.gui
@pytest.mark.data
@pytest.mark.skipif(not DAVIS_SEQ.is_dir(), reason=f"DAVIS-2016 data not found at {DAVIS_SEQ} (set NAPARI_HOTSPOT_DATA)")
def test_viewer_opens_davis_sequence(make_napari_viewer):
    viewer = make_napari_viewer()
    image, labels = viewer.open(str(DAVIS_SEQ), plugin="napari-hotspot")
    assert image.name == "blackswan" and labels.name == "blackswan ground truth"
    assert image.data.shape == (50, 480, 854, 3)
    assert labels.data.shape == (50, 480, 854)
    mask = np.asarray(labels.data[10])
    assert set(np.unique(mask)) == {0, 1}
    assert 0.01 < mask.mean() < 0.5  # the swan, not the whole frame


def test_unreadable_prompt_records_are_skipped_and_named():
    from napari_hotspot._napari.layer_data import PromptGroup, prompt_records

    good = {"frame": 2, "object_id": 1, "clicks": [[3.0, 4.0, 1]], "box": None}
    found, problems = prompt_records({"prompts": [good, {"frame": 40, "object_id": 1}, {"object_id": 1},
                                                  {"frame": 1, "object_id": 1, "clicks": [[1, 2]]}]}, 10)
    assert list(found) == [(2, 1)] and found[(2, 1)][0] == PromptGroup(((3.0, 4.0, 1),), None)
    assert [p.split(" of ")[0] for p in problems] == ["prompt record 1", "prompt record 2", "prompt record 3"]
    assert "outside the video's 10 frames" in problems[0]
    assert prompt_records({"prompts": "x"}, 10) == ({}, ["the project's prompt records are not a list; none were loaded"])
