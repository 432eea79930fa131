"""COCO JSON export/import: one image per frame, one category per object with a "hotspot"
keypoint, one annotation per (object, frame) entry with an RLE mask, bbox, area and keypoints.

Extra per-annotation fields (``confidence``, ``provenance``, ``annotator``, ``timestamp``,
``has_mask``) and per-image ``frame_index`` make the round trip lossless; plain COCO files
without them import too (polygon or RLE segmentations, frames in file-name order).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from napari_hotspot.annotations.io_davis import frame_stems
from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.annotations.model import AnnotationStore, Hotspot, Provenance
from napari_hotspot.annotations._parse import read_json
from napari_hotspot.errors import AnnotationError, ProjectIOError
from napari_hotspot.fileio import atomic_write

KEYPOINT_NAMES = ["hotspot"]
# COCO keypoint visibility flags
V_NONE, V_OCCLUDED, V_VISIBLE = 0, 1, 2


def _encode_rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")  # bytes are not JSON
    return rle


def _bbox_xywh(packed: CompressedMask) -> list[float]:
    if packed.bbox is None:
        return [0.0, 0.0, 0.0, 0.0]
    y0, x0, y1, x1 = packed.bbox
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def _keypoints(hotspot: Hotspot | None) -> list[float]:
    if hotspot is None:
        return [0.0, 0.0, V_NONE]  # COCO requires x = y = 0 for an unlabelled keypoint
    return [hotspot.x, hotspot.y, V_VISIBLE if hotspot.visible else V_OCCLUDED]


def coco_document(store: AnnotationStore, frame_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Build the COCO dict for ``store`` (no I/O)."""
    if frame_names is None:
        file_names = [f"{stem}.jpg" for stem in frame_stems(None, store.num_frames)]
    else:
        frame_stems(frame_names, store.num_frames)  # validates count and distinct stems
        file_names = [Path(str(n)).name for n in frame_names]
    images = [
        {"id": i + 1, "file_name": file_names[i], "width": store.width, "height": store.height, "frame_index": i}
        for i in range(store.num_frames)
    ]
    categories = [
        {
            "id": o.id,
            "name": o.name,
            "supercategory": "object",
            "keypoints": list(KEYPOINT_NAMES),
            "skeleton": [],
            "color": list(o.color),
        }
        for o in store.objects
    ]
    empty = np.zeros((store.height, store.width), dtype=bool)
    annotations = []
    for obj_id, frame, entry in store.iter_entries():
        packed = entry.packed_mask
        mask = empty if packed is None else packed.to_array()
        keypoints = _keypoints(entry.hotspot)
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": frame + 1,
                "category_id": obj_id,
                "segmentation": _encode_rle(mask),
                "area": float(0 if packed is None else packed.area),
                "bbox": [0.0, 0.0, 0.0, 0.0] if packed is None else _bbox_xywh(packed),
                "iscrowd": 0,
                "keypoints": keypoints,
                "num_keypoints": int(keypoints[2] > 0),
                "has_mask": packed is not None,
                "confidence": entry.confidence,
                "provenance": entry.provenance.value,
                "annotator": entry.annotator,
                "timestamp": entry.timestamp,
            }
        )
    return {
        "info": {
            "description": "napari-hotspot annotations",
            "date_created": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "licenses": [],
        "images": images,
        "categories": categories,
        "annotations": annotations,
    }


def export_coco(
    store: AnnotationStore, path: str | os.PathLike, frame_names: Sequence[str] | None = None
) -> Path:
    """Write ``store`` as a COCO JSON file (loadable by ``pycocotools.coco.COCO``); returns the path."""
    path = Path(path)
    document = coco_document(store, frame_names)
    with atomic_write(path, what="COCO file") as handle:
        json.dump(document, handle, allow_nan=False)
    return path


def _decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    if isinstance(segmentation, list):  # polygons
        if not segmentation:
            return np.zeros((height, width), dtype=bool)
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)  # uncompressed RLE
    elif isinstance(segmentation, dict):
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    else:
        raise ValueError(f"unsupported segmentation {type(segmentation).__name__}")
    mask = mask_utils.decode(rle)
    if mask.shape != (height, width):
        raise ValueError(f"segmentation decodes to {mask.shape}, expected ({height}, {width})")
    return mask.astype(bool)


def _hotspot_from_keypoints(keypoints: Sequence[float] | None) -> Hotspot | None:
    if not keypoints or len(keypoints) < 3 or keypoints[2] == V_NONE:
        return None
    return Hotspot(keypoints[0], keypoints[1], visible=keypoints[2] == V_VISIBLE)


def import_coco(
    path: str | os.PathLike,
    store: AnnotationStore | None = None,
    *,
    provenance: Provenance | str = Provenance.IMPORTED,
    annotator: str = "",
) -> AnnotationStore:
    """Read a COCO JSON file into ``store`` (or a new store); returns the store.

    Frame of an image: its ``frame_index`` when every image has one, else its position in
    file-name order. Several annotations of one category on one image are merged (mask union,
    first labelled keypoint). ``provenance``/``annotator`` apply where the file has none.
    """
    path = Path(path)
    document = read_json(path, "COCO file")
    created = store is None
    try:
        images = document["images"]
        if not images:
            raise ValueError("it has no images")
        sizes = {(int(im["height"]), int(im["width"])) for im in images}
        if len(sizes) > 1:
            raise ValueError(f"images have different sizes {sorted(sizes)}; one video has one size")
        height, width = sizes.pop()
        if all("frame_index" in im for im in images):
            frame_of = {im["id"]: int(im["frame_index"]) for im in images}
        else:
            ordered = sorted(images, key=lambda im: str(im["file_name"]))
            frame_of = {im["id"]: i for i, im in enumerate(ordered)}
        if store is None:
            store = AnnotationStore(max(frame_of.values()) + 1, height, width)
        elif (store.height, store.width) != (height, width):
            raise ValueError(
                f"images are {height}x{width} but the video frames are {store.height}x{store.width}"
            )
        merged: dict[tuple[int, int], dict[str, Any]] = {}
        for ann in document.get("annotations", []):
            if ann["image_id"] not in frame_of:
                raise ValueError(f"annotation {ann.get('id')} refers to unknown image_id {ann['image_id']}")
            key = (int(ann["category_id"]), frame_of[ann["image_id"]])
            has_mask = ann.get("has_mask", bool(ann.get("segmentation")))
            mask = (
                _decode_segmentation(ann["segmentation"], height, width) if has_mask else None
            )
            slot = merged.get(key)
            if slot is None:
                merged[key] = {"ann": ann, "mask": mask, "hotspot": _hotspot_from_keypoints(ann.get("keypoints"))}
                continue
            if mask is not None:
                slot["mask"] = mask if slot["mask"] is None else slot["mask"] | mask
            if slot["hotspot"] is None:
                slot["hotspot"] = _hotspot_from_keypoints(ann.get("keypoints"))
        with store.batch(f"import COCO {path.name}"):
            for category in document.get("categories", []):
                obj_id = int(category["id"])
                if not store.has_object(obj_id):
                    color = category.get("color")
                    store.add_object(
                        name=str(category.get("name", f"object {obj_id}")),
                        color=None if color is None else tuple(color),
                        obj_id=obj_id,
                    )
            for (obj_id, frame), slot in sorted(merged.items()):
                ann = slot["ann"]
                store.set_frame(
                    obj_id,
                    frame,
                    mask=slot["mask"],
                    hotspot=slot["hotspot"],
                    confidence=ann.get("confidence"),
                    provenance=ann.get("provenance") or provenance,
                    annotator=ann.get("annotator", annotator),
                    timestamp=ann.get("timestamp"),
                )
    except (KeyError, TypeError, ValueError, AnnotationError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise ProjectIOError(f"cannot import COCO file {path}: {detail}") from None
    if created:
        store.clear_history()
    return store
