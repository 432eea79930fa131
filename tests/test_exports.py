"""Tests for the DAVIS PNG, hotspot CSV/JSON and COCO exports and imports."""

import json

import numpy as np
import pytest
from PIL import Image

from napari_hotspot.annotations.io_coco import export_coco, import_coco
from napari_hotspot.annotations.io_davis import (
    export_davis_png,
    import_davis_png,
    read_label_png,
    write_label_png,
)
from napari_hotspot.annotations.io_hotspots import (
    CSV_COLUMNS,
    export_hotspots_csv,
    export_hotspots_json,
    hotspot_records,
    import_hotspots_csv,
    import_hotspots_json,
    read_hotspots_csv,
)
from napari_hotspot.annotations.model import AnnotationStore, Hotspot, Provenance
from napari_hotspot.annotations.palette import davis_palette
from napari_hotspot.errors import ProjectIOError

H, W, T = 40, 60, 6


def ellipse(cy, cx, ry, rx):
    yy, xx = np.mgrid[:H, :W]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1


def dense_store():
    """Every object has a mask in every frame (what DAVIS PNGs can represent), plus hotspots."""
    s = AnnotationStore(T, H, W)
    s.add_object("swan")
    s.add_object("boat")
    s.add_object("tiny")
    for t in range(T):
        s.set_frame(1, t, mask=ellipse(10 + t, 15 + 2 * t, 6, 9), hotspot=Hotspot(15 + 2 * t + 0.1, 10 + t / 3),
                    confidence=0.5 + t / 20, provenance=Provenance.PROPAGATED, annotator="model")
        s.set_frame(2, t, mask=ellipse(28, 40 - t, 7, 12))  # overlaps nothing of object 1
        s.set_frame(3, t, mask=np.zeros((H, W), bool) if t % 2 else ellipse(35, 5, 2, 2))
    s.set_frame(2, 2, hotspot=Hotspot(40.0, 28.0, visible=False), provenance=Provenance.KEYFRAME, annotator="alice")
    return s


def sparse_store():
    s = dense_store()
    s.set_frame(1, 3, mask=None)  # hotspot without mask
    s.clear_frame(3, 4)  # no entry
    s.set_annotator_hotspot("alice", 1, 2, (5.25, 6.5), seconds_spent=1.5)
    s.set_annotator_hotspot("bob", 1, 2, None, "automatic")
    s.set_annotator_hotspot("bob", 2, 5, Hotspot(7.0, 8.0, False), "imported")
    return s


def masks_equal(a, b):
    for obj_id, frame, entry in a.iter_entries():
        other = b.get(obj_id, frame)
        assert other is not None, (obj_id, frame)
        assert (entry.mask is None) == (other.mask is None), (obj_id, frame)
        if entry.mask is not None:
            assert np.array_equal(entry.mask, other.mask), (obj_id, frame)
    assert len(a) == len(b)


# ---------------------------------------------------------------- DAVIS
def test_davis_export_writes_palette_pngs_named_by_frame(tmp_path):
    store = dense_store()
    names = [f"frame_{i:03d}.jpg" for i in range(T)]
    files = export_davis_png(store, tmp_path / "out", frame_names=names)
    assert [f.name for f in files] == [f"frame_{i:03d}.png" for i in range(T)]
    with Image.open(files[2]) as image:
        assert image.mode == "P"
        palette = np.array(image.getpalette()[: 4 * 3]).reshape(4, 3)
        assert np.array_equal(palette, davis_palette()[:4])
        assert np.array_equal(np.array(image), store.label_frame(2))
    default = export_davis_png(store, tmp_path / "default")
    assert [f.name for f in default] == [f"{i:05d}.png" for i in range(T)]


def test_davis_round_trip(tmp_path):
    store = dense_store()
    export_davis_png(store, tmp_path / "out")
    imported = import_davis_png(tmp_path / "out")
    assert imported.shape == store.shape and imported.object_ids == [1, 2, 3]
    masks_equal(store, imported)
    assert imported.get(1, 0).provenance is Provenance.IMPORTED
    assert not imported.can_undo


def test_davis_import_into_existing_store_is_one_undo_step(tmp_path):
    store = dense_store()
    export_davis_png(store, tmp_path / "out")
    target = AnnotationStore(T, H, W)
    target.add_object("mine")
    import_davis_png(tmp_path / "out", target, annotator="importer")
    assert target.object_ids == [1, 2, 3] and target.get_object(1).name == "mine"
    masks_equal(store, target)
    assert target.get(2, 0).annotator == "importer"
    target.undo()
    assert target.object_ids == [1] and len(target) == 0


def test_davis2016_binary_pngs_import_as_object_one(tmp_path):
    folder = tmp_path / "blackswan"
    folder.mkdir()
    truth = [ellipse(20, 20 + t, 8, 10) for t in range(3)]
    for t, mask in enumerate(truth):
        Image.fromarray((mask * 255).astype(np.uint8)).save(folder / f"{t:05d}.png")  # mode "L"
    store = import_davis_png(folder)
    assert store.object_ids == [1] and store.num_frames == 3
    for t, mask in enumerate(truth):
        assert np.array_equal(store.mask(1, t), mask)


def test_davis_import_maps_numbered_and_named_frames(tmp_path):
    store = dense_store()
    export_davis_png(store, tmp_path / "sparse", frames=[0, 4])
    imported = import_davis_png(tmp_path / "sparse", num_frames=T)
    assert imported.frames_with(1) == [0, 4]
    assert np.array_equal(imported.mask(1, 4), store.mask(1, 4))
    names = [f"img{c}.jpg" for c in "abcdef"]
    export_davis_png(store, tmp_path / "named", frame_names=names, frames=[1, 5])
    imported = import_davis_png(tmp_path / "named", frame_names=names)
    assert imported.frames_with(2) == [1, 5]
    with pytest.raises(ProjectIOError, match="match no frame name"):
        import_davis_png(tmp_path / "named", frame_names=[f"x{i}.jpg" for i in range(T)])


def test_read_label_png_maps_rgb_through_the_palette(tmp_path):
    labels = np.zeros((H, W), np.uint8)
    labels[5:10, 5:10] = 2
    labels[20:30, 20:30] = 7
    rgb = davis_palette()[labels]
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.array_equal(read_label_png(tmp_path / "rgb.png"), labels)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "bad.png")
    with pytest.raises(ProjectIOError, match=r"colour \(1, 2, 3\) is not in the DAVIS palette"):
        read_label_png(tmp_path / "bad.png")


def test_davis_errors(tmp_path):
    store = dense_store()
    with pytest.raises(ProjectIOError, match="3 frame names"):
        export_davis_png(store, tmp_path / "x", frame_names=["a", "b", "c"])
    with pytest.raises(ProjectIOError, match="distinct stems"):
        export_davis_png(store, tmp_path / "x", frame_names=["a.jpg", "a.png"] + list("cdef"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProjectIOError, match="file"):
        export_davis_png(store, blocker / "out")
    store.add_object(obj_id=300)
    with pytest.raises(ProjectIOError, match="up to 255"):
        export_davis_png(store, tmp_path / "big")
    assert not (tmp_path / "x").exists()  # bad arguments are caught before anything is written
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProjectIOError, match="no .png mask files"):
        import_davis_png(tmp_path / "empty")
    with pytest.raises(ProjectIOError, match="does not exist"):
        import_davis_png(tmp_path / "missing")
    export_davis_png(dense_store(), tmp_path / "ok")
    with pytest.raises(ProjectIOError, match=r"masks are 40x60 but the video frames are 10x10"):
        import_davis_png(tmp_path / "ok", AnnotationStore(T, 10, 10))
    (tmp_path / "ok" / "00003.png").write_bytes(b"not a png")
    with pytest.raises(ProjectIOError, match="00003.png"):
        import_davis_png(tmp_path / "ok")
    with pytest.raises(ProjectIOError, match="0..255"):
        write_label_png(tmp_path / "neg.png", np.full((3, 3), 256))


@pytest.mark.data
def test_davis2016_real_annotations_import(tmp_path):
    from napari_hotspot.data_paths import data_root

    root = data_root()
    folder = root / "davis2016-dev" / "Annotations" / "480p" / "blackswan"
    if not folder.is_dir():
        pytest.skip(f"DAVIS-2016 data not found at {folder} (set NAPARI_HOTSPOT_DATA)")
    store = import_davis_png(folder)
    assert store.object_ids == [1] and (store.height, store.width) == (480, 854)
    raw = np.array(Image.open(folder / "00000.png"))
    assert np.array_equal(store.mask(1, 0), raw == 255)
    export_davis_png(store, tmp_path / "out")
    assert np.array_equal(read_label_png(tmp_path / "out" / "00000.png"), (raw == 255).astype(np.uint8))


# ---------------------------------------------------------------- hotspot CSV / JSON
def test_hotspot_csv_round_trip_is_exact(tmp_path):
    store = sparse_store()
    path = export_hotspots_csv(store, tmp_path / "hotspots.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == 1 + T + 1  # object 1 every frame + object 2 frame 2
    target = AnnotationStore(T, H, W)
    import_hotspots_csv(path, target)
    assert hotspot_records(target) == hotspot_records(store)
    assert target.hotspot(1, 0).x == store.hotspot(1, 0).x == 15.1
    assert target.hotspot(2, 2) == Hotspot(40.0, 28.0, visible=False)
    assert target.get(1, 4).confidence == store.get(1, 4).confidence
    assert target.get(2, 2).provenance is Provenance.KEYFRAME and target.get(2, 2).annotator == "alice"
    assert read_hotspots_csv(path) == hotspot_records(store)


def test_hotspot_csv_import_keeps_masks_and_is_undoable(tmp_path):
    store = sparse_store()
    path = export_hotspots_csv(store, tmp_path / "h.csv")
    target = dense_store()
    for t in range(T):
        target.set_frame(1, t, hotspot=None)
    import_hotspots_csv(path, target)
    assert np.array_equal(target.mask(1, 0), store.mask(1, 0))
    assert target.hotspot(1, 0) == store.hotspot(1, 0)
    target.undo()
    assert target.hotspot(1, 0) is None


def test_annotator_layer_csv_and_json_round_trip(tmp_path):
    store = sparse_store()
    csv_path = export_hotspots_csv(store, tmp_path / "ann.csv", layer="annotators")
    target = AnnotationStore(T, H, W)
    import_hotspots_csv(csv_path, target, layer="annotators")
    assert target.annotators() == ["alice", "bob"]
    for name in ("alice", "bob"):
        got = {k: (v.hotspot, v.provenance) for k, v in target.annotator_hotspots(name).items()}
        want = {k: (v.hotspot, v.provenance) for k, v in store.annotator_hotspots(name).items()}
        assert got == want
    assert target.frames_with(1) == []  # the main layer is untouched
    json_path = export_hotspots_json(store, tmp_path / "ann.json", layer="annotators", annotators=["alice"])
    restored = import_hotspots_json(json_path)
    assert restored.annotators() == ["alice"]
    assert restored.annotator_hotspots("alice")[(1, 2)].seconds_spent == 1.5


def test_hotspot_json_round_trip_with_objects(tmp_path):
    store = sparse_store()
    path = export_hotspots_json(store, tmp_path / "h.json")
    document = json.loads(path.read_text())
    assert document["objects"][1] == {"id": 2, "name": "boat", "color": [0, 128, 0]}
    restored = import_hotspots_json(path)
    assert restored.shape == store.shape
    assert restored.objects[:2] == store.objects[:2]
    assert hotspot_records(restored) == hotspot_records(store)


@pytest.mark.parametrize(
    "body, message",
    [
        ("frame,object_id,x\n0,1,2\n", r"missing column\(s\) \['y'\]"),
        ("frame,object_id,x,y\nzero,1,2,3\n", r"line 2: frame 'zero' is not an integer"),
        ("frame,object_id,x,y\n0,1,nan,3\n", "finite"),
        ("frame,object_id,x,y,visible\n0,1,2,3,maybe\n", "visible 'maybe'"),
        ("frame,object_id,x,y,source\n0,1,2,3,guess\n", "unknown provenance"),
        ("frame,object_id,x,y\n0,1,2,3\n99,1,2,3\n", r"record 2: frame 99 is out of range"),
        ("frame,object_id,x,y\n0,1,200,3\n", "outside the image"),
        ("frame,object_id,x,y\n0,1,2,\n", "both"),
    ],
)
def test_bad_hotspot_csv_is_rejected_atomically(tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    target = AnnotationStore(T, H, W)
    target.add_object()
    with pytest.raises(ProjectIOError, match=message) as info:
        import_hotspots_csv(path, target)
    assert "bad.csv" in str(info.value)
    assert len(target) == 0 and target.object_ids == [1]


def test_hotspot_file_errors(tmp_path):
    with pytest.raises(ProjectIOError, match="does not exist"):
        read_hotspots_csv(tmp_path / "none.csv")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ProjectIOError, match="not valid JSON"):
        import_hotspots_json(tmp_path / "x.json")
    (tmp_path / "y.json").write_text('{"format": "other"}')
    with pytest.raises(ProjectIOError, match="not a napari-hotspot hotspot JSON"):
        import_hotspots_json(tmp_path / "y.json")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProjectIOError, match="cannot write"):
        export_hotspots_csv(sparse_store(), blocker / "h.csv")
    with pytest.raises(ProjectIOError, match="layer must be one of"):
        export_hotspots_csv(sparse_store(), tmp_path / "h.csv", layer="everything")


# ---------------------------------------------------------------- COCO
def test_coco_export_loads_in_pycocotools_and_masks_match(tmp_path):
    from pycocotools.coco import COCO

    store = sparse_store()
    names = [f"{i:05d}.jpg" for i in range(T)]
    path = export_coco(store, tmp_path / "coco.json", frame_names=names)
    coco = COCO(str(path))
    assert sorted(coco.getCatIds()) == [1, 2, 3]
    assert coco.loadCats(1)[0]["keypoints"] == ["hotspot"]
    assert [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)] == names
    checked = 0
    for ann in coco.dataset["annotations"]:
        frame = coco.imgs[ann["image_id"]]["frame_index"]
        entry = store.get(ann["category_id"], frame)
        expected = entry.mask if entry.mask is not None else np.zeros((H, W), bool)
        assert np.array_equal(coco.annToMask(ann).astype(bool), expected)
        assert ann["area"] == expected.sum()
        if entry.mask is not None and expected.any():
            ys, xs = np.nonzero(expected)
            assert ann["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        spot = entry.hotspot
        if spot is None:
            assert ann["keypoints"] == [0, 0, 0] and ann["num_keypoints"] == 0
        else:
            assert ann["keypoints"] == [spot.x, spot.y, 2 if spot.visible else 1]
            assert ann["num_keypoints"] == 1
        checked += 1
    assert checked == len(store)


def test_coco_round_trip_is_lossless(tmp_path):
    store = sparse_store()
    path = export_coco(store, tmp_path / "coco.json")
    restored = import_coco(path)
    assert restored.shape == store.shape and restored.objects == store.objects
    masks_equal(store, restored)
    for obj_id, frame, entry in store.iter_entries():
        other = restored.get(obj_id, frame)
        assert (other.hotspot, other.confidence, other.provenance, other.annotator, other.timestamp) == (
            entry.hotspot, entry.confidence, entry.provenance, entry.annotator, entry.timestamp
        )


def test_coco_import_of_plain_coco_with_polygons(tmp_path):
    document = {
        "images": [
            {"id": 7, "file_name": "b.jpg", "width": W, "height": H},
            {"id": 3, "file_name": "a.jpg", "width": W, "height": H},
        ],
        "categories": [{"id": 4, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 4, "segmentation": [[10, 10, 20, 10, 20, 20, 10, 20]],
             "keypoints": [15, 15, 2], "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 4, "segmentation": [[30, 30, 35, 30, 35, 35, 30, 35]],
             "iscrowd": 0},
            {"id": 3, "image_id": 3, "category_id": 4, "segmentation": [], "keypoints": [0, 0, 0]},
        ],
    }
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(document))
    store = import_coco(path, annotator="coco")
    assert store.num_frames == 2 and store.object_ids == [4] and store.get_object(4).name == "cat"
    mask = store.mask(4, 1)  # b.jpg sorts after a.jpg
    assert mask[15, 15] and mask[32, 32] and not mask[25, 25]
    assert store.hotspot(4, 1) == Hotspot(15, 15) and store.hotspot(4, 0) is None
    assert store.mask(4, 0) is None
    assert store.get(4, 1).provenance is Provenance.IMPORTED and store.get(4, 1).annotator == "coco"


def test_coco_errors(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("{")
    with pytest.raises(ProjectIOError, match="not valid JSON"):
        import_coco(path)
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(ProjectIOError, match="no images"):
        import_coco(path)
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a", "width": W, "height": H},
                                           {"id": 2, "file_name": "b", "width": 10, "height": H}]}))
    with pytest.raises(ProjectIOError, match="different sizes"):
        import_coco(path)
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a", "width": W, "height": H}],
                                "categories": [], "annotations": [{"id": 1, "image_id": 9, "category_id": 1}]}))
    with pytest.raises(ProjectIOError, match="unknown image_id 9"):
        import_coco(path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ProjectIOError, match="cannot write COCO"):
        export_coco(sparse_store(), blocker / "c.json")
