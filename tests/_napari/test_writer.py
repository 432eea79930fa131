"""Tests for the npe2 writers: Labels -> DAVIS PNG folder, Points -> hotspot CSV (no Qt needed)."""

import numpy as np
import pandas as pd
import pytest

from napari_hotspot._napari.writer import write_labels, write_points
from napari_hotspot.annotations.io_davis import import_davis_png, read_label_png
from napari_hotspot.annotations.io_hotspots import read_hotspots_csv
from napari_hotspot.annotations.model import Provenance
from napari_hotspot.errors import ProjectIOError

T, H, W = 4, 40, 60


def label_volume():
    labels = np.zeros((T, H, W), dtype=np.uint8)
    for t in range(T):
        labels[t, 5 + t : 15 + t, 10:20] = 1
        labels[t, 25:35, 30 + t : 45 + t] = 2
    return labels


def test_write_labels_writes_one_davis_png_per_frame(tmp_path):
    labels = label_volume()
    written = write_labels(str(tmp_path / "masks"), labels, {})
    assert [p.rsplit("/", 1)[-1] for p in written] == [f"{t:05d}.png" for t in range(T)]
    for t, file in enumerate(written):
        assert np.array_equal(read_label_png(file), labels[t])
    store = import_davis_png(tmp_path / "masks")
    assert np.array_equal(store.label_frame(2), labels[2])


def test_write_labels_uses_frame_names_and_accepts_lazy_and_multiscale(tmp_path):
    dask_array = pytest.importorskip("dask.array")
    labels = label_volume()
    names = [f"img_{t}.jpg" for t in range(T)]
    written = write_labels(
        str(tmp_path / "m"), [dask_array.from_array(labels, chunks=(1, H, W)), labels[:, ::2, ::2]],
        {"metadata": {"frame_names": names}},
    )
    assert [p.rsplit("/", 1)[-1] for p in written] == [f"img_{t}.png" for t in range(T)]
    assert np.array_equal(read_label_png(written[3]), labels[3])


@pytest.mark.parametrize(
    "data, message",
    [
        (np.zeros((2, 3, 4, 5), np.uint8), r"expected \(T, H, W\)"),
        (np.zeros(5, np.uint8), r"expected \(T, H, W\)"),
        (np.zeros((2, 4, 4), np.float32), "integer labels"),
        (np.full((1, 4, 4), 300, np.uint16), "0..255"),
    ],
)
def test_write_labels_rejects_bad_data(tmp_path, data, message):
    with pytest.raises(ProjectIOError, match=message):
        write_labels(str(tmp_path / "m"), data, {})


def test_write_labels_to_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProjectIOError, match="cannot create folder"):
        write_labels(str(blocker / "masks"), label_volume(), {})


def test_write_points_with_features(tmp_path):
    data = np.array([[0, 10.5, 20.25], [2, 5.0, 6.0], [2, 7.0, 8.0]])
    features = pd.DataFrame(
        {
            "object_id": [1, 1, 2],
            "confidence": [0.9, np.nan, 0.25],
            "source": ["propagated", "keyframe", "automatic"],
            "visible": [True, False, True],
            "annotator": ["model", "alice", "model"],
        }
    )
    (path,) = write_points(str(tmp_path / "h.csv"), data, {"features": features})
    records = read_hotspots_csv(path)
    assert [(r.frame, r.object_id, r.x, r.y, r.visible) for r in records] == [
        (0, 1, 20.25, 10.5, True), (2, 1, 6.0, 5.0, False), (2, 2, 8.0, 7.0, True)
    ]
    assert [r.confidence for r in records] == [0.9, None, 0.25]
    assert [r.source for r in records] == [Provenance.PROPAGATED, Provenance.KEYFRAME, Provenance.AUTOMATIC]
    assert [r.annotator for r in records] == ["model", "alice", "model"]


def test_write_points_without_features_uses_defaults(tmp_path):
    (path,) = write_points(str(tmp_path / "h.csv"), np.array([[1, 2.0, 3.0]]), {"features": pd.DataFrame()})
    (record,) = read_hotspots_csv(path)
    assert (record.frame, record.object_id, record.x, record.y) == (1, 1, 3.0, 2.0)
    assert record.source is Provenance.USER_CORRECTED and record.visible and record.confidence is None
    (path,) = write_points(str(tmp_path / "empty.csv"), np.zeros((0, 3)), {})
    assert read_hotspots_csv(path) == []


def test_write_points_accepts_legacy_properties(tmp_path):
    (path,) = write_points(
        str(tmp_path / "h.csv"), np.array([[0, 1.0, 1.0]]), {"properties": {"object_id": np.array([3])}}
    )
    assert read_hotspots_csv(path)[0].object_id == 3


@pytest.mark.parametrize(
    "data, meta, message",
    [
        (np.zeros((2, 2)), {}, r"expected \(N, 3\)"),
        (np.zeros((2, 4)), {}, r"expected \(N, 3\)"),
        (np.array([[0.5, 1, 1]]), {}, "frame 0.5"),
        (np.array([[-1, 1, 1]]), {}, "frame -1"),
        (np.array([[0, np.nan, 1]]), {}, "non-finite"),
        (np.array([[0, 1, 1]]), {"features": pd.DataFrame({"object_id": [0]})}, "object_id must be >= 1"),
        (np.array([[0, 1, 1]]), {"features": pd.DataFrame({"source": ["guess"]})}, "unknown provenance"),
        (np.array([[0, 1, 1]]), {"features": pd.DataFrame({"visible": ["maybe"]})}, "visible 'maybe'"),
        (np.array([[0, 1, 1]]), {"features": {"object_id": [1, 2]}}, "2 values for 1 points"),
    ],
)
def test_write_points_rejects_bad_data(tmp_path, data, meta, message):
    with pytest.raises(ProjectIOError, match=message):
        write_points(str(tmp_path / "h.csv"), data, meta)
    assert not (tmp_path / "h.csv").exists()


def test_write_points_to_unwritable_path(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProjectIOError, match="is a file"):
        write_points(str(blocker / "h.csv"), np.array([[0, 1.0, 1.0]]), {})


def test_writers_round_trip_real_napari_layers(tmp_path):
    layers = pytest.importorskip("napari.layers")
    labels_layer = layers.Labels(label_volume())
    data, meta, _ = labels_layer.as_layer_data_tuple()
    written = write_labels(str(tmp_path / "masks"), data, meta)
    assert len(written) == T
    points_layer = layers.Points(
        np.array([[0, 10.0, 20.0], [3, 1.0, 2.0]]),
        features=pd.DataFrame({"object_id": [1, 2], "confidence": [0.5, 0.75]}),
    )
    data, meta, _ = points_layer.as_layer_data_tuple()
    (path,) = write_points(str(tmp_path / "h.csv"), data, meta)
    records = read_hotspots_csv(path)
    assert [(r.frame, r.object_id, r.x, r.y, r.confidence) for r in records] == [
        (0, 1, 20.0, 10.0, 0.5), (3, 2, 2.0, 1.0, 0.75)
    ]


def test_writers_are_reached_through_the_npe2_manifest(tmp_path):
    npe2 = pytest.importorskip("npe2")
    layers = pytest.importorskip("napari.layers")
    manager = npe2.PluginManager.instance()
    manager.discover()
    try:
        manager.get_manifest("napari-hotspot")
    except KeyError:
        pytest.skip("napari-hotspot is not installed as a plugin (pip install -e .)")
    labels = layers.Labels(label_volume())
    written = npe2.write(str(tmp_path / "masks"), [labels.as_layer_data_tuple()], plugin_name="napari-hotspot")
    assert len(written) == T and written[0].endswith("00000.png")
    points = layers.Points(np.array([[1, 2.0, 3.0]]))
    (path,) = npe2.write(str(tmp_path / "h.csv"), [points.as_layer_data_tuple()], plugin_name="napari-hotspot")
    assert read_hotspots_csv(path)[0].frame == 1
