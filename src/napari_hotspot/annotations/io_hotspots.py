"""Hotspot tables: CSV (``frame,object_id,x,y,visible,confidence,source,annotator``) and JSON.

Either the store's main hotspots (``layer="main"``) or the per-annotator hotspot labels
(``layer="annotators"``, the ``annotator`` column names the label's owner) are exported and
imported. Floats are written with ``repr`` so a round trip is exact.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from napari_hotspot.annotations.model import AnnotationStore, Hotspot, Provenance
from napari_hotspot.annotations._parse import parse_float, read_json
from napari_hotspot.errors import AnnotationError, ProjectIOError
from napari_hotspot.fileio import atomic_write

CSV_COLUMNS = ("frame", "object_id", "x", "y", "visible", "confidence", "source", "annotator")
JSON_FORMAT = "napari-hotspot-hotspots"
JSON_VERSION = 1
LAYERS = ("main", "annotators")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


@dataclass(frozen=True)
class HotspotRecord:
    """One hotspot row. ``x``/``y`` are None for an annotator's explicit "no hotspot" label."""

    frame: int
    object_id: int
    x: float | None
    y: float | None
    visible: bool = True
    confidence: float | None = None
    source: Provenance = Provenance.USER_CORRECTED
    annotator: str = ""
    seconds_spent: float | None = None  # annotator layer only; JSON keeps it, CSV does not

    def hotspot(self) -> Hotspot | None:
        return None if self.x is None else Hotspot(self.x, self.y, self.visible)


def _check_layer(layer: str) -> None:
    if layer not in LAYERS:
        raise ProjectIOError(f"layer must be one of {LAYERS}, got {layer!r}")


def hotspot_records(
    store: AnnotationStore, layer: str = "main", annotators: Sequence[str] | None = None
) -> list[HotspotRecord]:
    """The store's hotspots as records, sorted by (frame, object id, annotator).

    ``layer="main"``: one record per entry that has a hotspot. ``layer="annotators"``: every
    annotator label (restricted to ``annotators`` when given).
    """
    _check_layer(layer)
    records = []
    if layer == "main":
        for obj_id, frame, entry in store.iter_entries():
            if entry.hotspot is None:
                continue
            records.append(
                HotspotRecord(
                    frame=frame,
                    object_id=obj_id,
                    x=entry.hotspot.x,
                    y=entry.hotspot.y,
                    visible=entry.hotspot.visible,
                    confidence=entry.confidence,
                    source=entry.provenance,
                    annotator=entry.annotator,
                )
            )
    else:
        names = store.annotators() if annotators is None else list(annotators)
        for name in names:
            for (obj_id, frame), label in store.annotator_hotspots(name).items():
                spot = label.hotspot
                records.append(
                    HotspotRecord(
                        frame=frame,
                        object_id=obj_id,
                        x=None if spot is None else spot.x,
                        y=None if spot is None else spot.y,
                        visible=True if spot is None else spot.visible,
                        confidence=None,
                        source=label.provenance,
                        annotator=name,
                        seconds_spent=label.seconds_spent,
                    )
                )
    records.sort(key=lambda r: (r.frame, r.object_id, r.annotator))
    return records


def apply_hotspot_records(
    store: AnnotationStore,
    records: Iterable[HotspotRecord],
    layer: str = "main",
    *,
    source_name: str = "records",
) -> AnnotationStore:
    """Write records into ``store`` as one undo step, adding unknown objects by id.

    ``layer="main"`` sets hotspot, confidence, source and annotator of each (object, frame) entry
    and keeps its mask; ``layer="annotators"`` sets each record's annotator label.
    """
    _check_layer(layer)
    with store.batch(f"import hotspots from {source_name}"):  # rolled back if any record fails
        for number, record in enumerate(records, start=1):
            try:
                if not store.has_object(record.object_id):
                    store.add_object(obj_id=record.object_id)
                if layer == "main":
                    store.set_frame(
                        record.object_id,
                        record.frame,
                        hotspot=record.hotspot(),
                        confidence=record.confidence,
                        provenance=record.source,
                        annotator=record.annotator,
                    )
                else:
                    store.set_annotator_hotspot(
                        record.annotator,
                        record.object_id,
                        record.frame,
                        record.hotspot(),
                        provenance=record.source,
                        seconds_spent=record.seconds_spent,
                    )
            except AnnotationError as err:
                raise ProjectIOError(f"{source_name}: record {number}: {err}") from None
    return store


# ---------------------------------------------------------------------------- CSV
def _fmt_float(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def write_hotspots_csv(path: str | os.PathLike, records: Iterable[HotspotRecord]) -> Path:
    """Write records as a hotspot CSV (header ``CSV_COLUMNS``); returns the path."""
    path = Path(path)
    rows = [
        [
            str(r.frame),
            str(r.object_id),
            _fmt_float(r.x),
            _fmt_float(r.y),
            "1" if r.visible else "0",
            _fmt_float(r.confidence),
            Provenance.parse(r.source).value,
            r.annotator,
        ]
        for r in records
    ]
    _write_atomic_text(path, lambda handle: _csv_dump(handle, rows))
    return path


def _csv_dump(handle: Any, rows: list[list[str]]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)


def _write_atomic_text(path: Path, dump: Any) -> None:
    with atomic_write(path) as handle:
        dump(handle)


def _parse_int(text: str, what: str, where: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ProjectIOError(f"{where}: {what} {text!r} is not an integer") from None
    if not value.is_integer():
        raise ProjectIOError(f"{where}: {what} {text!r} is not an integer")
    return int(value)


def _parse_bool(text: str, where: str) -> bool:
    value = (text or "").strip().lower()
    if value == "" or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ProjectIOError(f"{where}: visible {text!r} is not a boolean (use 1/0 or true/false)")


def _record_from_fields(fields: dict[str, Any], where: str) -> HotspotRecord:
    x = parse_float(fields.get("x"), "x", where)
    y = parse_float(fields.get("y"), "y", where)
    if (x is None) != (y is None):
        raise ProjectIOError(f"{where}: x and y must both be given or both be empty")
    try:
        source = Provenance.parse(fields.get("source") or Provenance.IMPORTED.value)
    except AnnotationError as err:
        raise ProjectIOError(f"{where}: {err}") from None
    return HotspotRecord(
        frame=_parse_int(str(fields["frame"]), "frame", where),
        object_id=_parse_int(str(fields["object_id"]), "object_id", where),
        x=x,
        y=y,
        visible=_parse_bool(str(fields.get("visible", "")), where),
        confidence=parse_float(fields.get("confidence"), "confidence", where),
        source=source,
        annotator=fields.get("annotator") or "",
    )


def read_hotspots_csv(path: str | os.PathLike) -> list[HotspotRecord]:
    """Parse a hotspot CSV; ``frame``, ``object_id``, ``x``, ``y`` columns are required."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in ("frame", "object_id", "x", "y") if c not in header]
            if missing:
                raise ProjectIOError(
                    f"{path}: missing column(s) {missing}; expected header {','.join(CSV_COLUMNS)}"
                )
            return [
                _record_from_fields(row, f"{path} line {reader.line_num}") for row in reader
            ]
    except FileNotFoundError:
        raise ProjectIOError(f"hotspot CSV {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ProjectIOError(f"cannot read hotspot CSV {path}: {err}") from None


def export_hotspots_csv(
    store: AnnotationStore,
    path: str | os.PathLike,
    layer: str = "main",
    annotators: Sequence[str] | None = None,
) -> Path:
    """Write the store's hotspots (``layer`` "main" or "annotators") to a CSV file."""
    return write_hotspots_csv(path, hotspot_records(store, layer, annotators))


def import_hotspots_csv(
    path: str | os.PathLike, store: AnnotationStore, layer: str = "main"
) -> AnnotationStore:
    """Read a hotspot CSV into ``store`` (one undo step); a CSV holds no frame size, so a store is needed."""
    records = read_hotspots_csv(path)
    return apply_hotspot_records(store, records, layer, source_name=str(path))


# ---------------------------------------------------------------------------- JSON
def _record_to_json(record: HotspotRecord, layer: str) -> dict[str, Any]:
    out = {
        "frame": record.frame,
        "object_id": record.object_id,
        "x": record.x,
        "y": record.y,
        "visible": record.visible,
        "confidence": record.confidence,
        "source": Provenance.parse(record.source).value,
        "annotator": record.annotator,
    }
    if layer == "annotators":
        out["seconds_spent"] = record.seconds_spent
    return out


def export_hotspots_json(
    store: AnnotationStore,
    path: str | os.PathLike,
    layer: str = "main",
    annotators: Sequence[str] | None = None,
) -> Path:
    """Write hotspots as JSON: frame size, objects and the same records as the CSV."""
    path = Path(path)
    records = hotspot_records(store, layer, annotators)
    document = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "layer": layer,
        "num_frames": store.num_frames,
        "height": store.height,
        "width": store.width,
        "objects": [{"id": o.id, "name": o.name, "color": list(o.color)} for o in store.objects],
        "hotspots": [_record_to_json(r, layer) for r in records],
    }
    _write_atomic_text(path, lambda handle: json.dump(document, handle, indent=1, allow_nan=False))
    return path


def import_hotspots_json(
    path: str | os.PathLike, store: AnnotationStore | None = None, layer: str | None = None
) -> AnnotationStore:
    """Read a hotspot JSON into ``store`` (or a new store of the file's frame size).

    ``layer`` defaults to the layer the file was exported from. Objects named in the file are
    added with their names and colours when the store lacks them.
    """
    path = Path(path)
    document = read_json(path, "hotspot JSON")
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
        raise ProjectIOError(f"{path} is not a napari-hotspot hotspot JSON file")
    layer = layer or document.get("layer", "main")
    _check_layer(layer)
    created = store is None
    try:
        if store is None:
            store = AnnotationStore(document["num_frames"], document["height"], document["width"])
        records = []
        for number, item in enumerate(document["hotspots"], start=1):
            where = f"{path} record {number}"
            # str() of a Python float is its shortest exact repr, so parsing back is lossless
            record = _record_from_fields(
                {k: ("" if v is None else str(v)) for k, v in item.items()}, where
            )
            seconds = parse_float(
                None if item.get("seconds_spent") is None else str(item["seconds_spent"]),
                "seconds_spent",
                where,
            )
            records.append(replace(record, seconds_spent=seconds))
        with store.batch(f"import hotspots from {path.name}"):
            for obj in document.get("objects", []):
                if not store.has_object(obj["id"]):
                    store.add_object(name=obj["name"], color=tuple(obj["color"]), obj_id=obj["id"])
            apply_hotspot_records(store, records, layer, source_name=str(path))
    except (KeyError, TypeError, ValueError, AnnotationError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise ProjectIOError(f"{path} is malformed: {detail}") from None
    if created:
        store.clear_history()
    return store

