"""npe2 writers: a Labels layer to a folder of DAVIS PNGs, a Points layer to a hotspot CSV.

Both are Qt-free and take the layer's data plus its attribute dict (``layer.as_layer_data_tuple()``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from napari_hotspot.annotations.io_davis import frame_stems, write_label_png
from napari_hotspot.annotations.io_hotspots import HotspotRecord, write_hotspots_csv
from napari_hotspot.annotations.model import Provenance
from napari_hotspot.errors import AnnotationError, ProjectIOError

#: Provenance given to points that carry no ``source`` feature (placed by hand in napari).
DEFAULT_POINT_SOURCE = Provenance.USER_CORRECTED


def _labels_volume(data: Any) -> Any:
    if isinstance(data, (list, tuple)):  # multiscale: the first level is full resolution
        if not data:
            raise ProjectIOError("cannot write Labels: the layer has no data")
        data = data[0]
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) == 2:
        return np.asarray(data)[np.newaxis]
    if len(shape) != 3:
        raise ProjectIOError(
            f"cannot write Labels as DAVIS PNGs: expected (T, H, W) or (H, W) data, got shape {shape}"
        )
    return data


def write_labels(path: str, data: Any, meta: Mapping[str, Any]) -> list[str]:
    """Write a (T, H, W) Labels layer as one DAVIS palette PNG per frame in folder ``path``.

    File names: stems of ``meta["metadata"]["napari_hotspot"]["frame_names"]`` (or
    ``meta["metadata"]["frame_names"]``) when present, else ``00000.png``...
    Label values must be integers 0..255. Returns the written file paths.
    """
    volume = _labels_volume(data)
    dtype = np.dtype(getattr(volume, "dtype", np.int64))
    if not (np.issubdtype(dtype, np.integer) or dtype == bool):
        raise ProjectIOError(f"cannot write Labels as DAVIS PNGs: expected integer labels, got dtype {dtype}")
    num_frames = int(volume.shape[0])
    md = (meta or {}).get("metadata") or {}
    # The reader stores frame names under metadata["napari_hotspot"]; accept the flat key too.
    names = md.get("frame_names") or (md.get("napari_hotspot") or {}).get("frame_names")
    stems = frame_stems(names, num_frames)
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ProjectIOError(f"cannot create folder {folder} for the masks: {err.strerror or err}") from err
    written = []
    for t in range(num_frames):
        frame = np.asarray(volume[t])  # one frame at a time: works for lazy (dask) labels too
        written.append(str(write_label_png(folder / f"{stems[t]}.png", frame)))
    return written


def _feature_columns(meta: Mapping[str, Any], count: int) -> dict[str, list]:
    """Per-point feature columns from ``features`` (DataFrame or dict) or legacy ``properties``."""
    def names_of(table: Any) -> list:
        if table is None:
            return []
        return list(table.columns) if hasattr(table, "columns") else list(table)

    table = meta.get("features")
    if not names_of(table):
        table = meta.get("properties")
    names = names_of(table)
    columns: dict[str, list] = {}
    for name in names:
        values = list(np.asarray(table[name]).tolist())
        if len(values) != count:
            raise ProjectIOError(
                f"cannot write Points: feature {name!r} has {len(values)} values for {count} points"
            )
        columns[str(name)] = values
    return columns


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("1", "true", "yes", "t", "y"):
            return True
        if text in ("0", "false", "no", "f", "n"):
            return False
        raise ValueError(f"visible {value!r} is not a boolean")
    return bool(value)


def write_points(path: str, data: Any, meta: Mapping[str, Any]) -> list[str]:
    """Write an (N, 3) ``[t, y, x]`` Points layer as a hotspot CSV; returns ``[path]``.

    Features used when present: ``object_id`` (default 1), ``confidence``, ``source``
    (default user_corrected), ``visible`` (default True), ``annotator``.
    """
    points = np.asarray(data, dtype=float)
    if points.ndim != 2 or (points.size and points.shape[1] != 3):
        raise ProjectIOError(
            f"cannot write Points as hotspot CSV: expected (N, 3) [t, y, x] data, got shape {points.shape}"
        )
    points = points.reshape(-1, 3)
    if not np.isfinite(points).all():
        bad = int(np.flatnonzero(~np.isfinite(points).all(axis=1))[0])
        raise ProjectIOError(f"cannot write Points: point {bad} has a non-finite coordinate {points[bad].tolist()}")
    columns = _feature_columns(meta or {}, len(points))
    records = []
    for i, (t, y, x) in enumerate(points.tolist()):
        if t < 0 or not float(t).is_integer():
            raise ProjectIOError(f"cannot write Points: point {i} has frame {t}; expected an integer >= 0")

        def feature(name: str, default: Any) -> Any:
            value = columns[name][i] if name in columns else default
            return default if _missing(value) else value

        try:
            object_id = int(feature("object_id", 1))
            if object_id < 1:
                raise ValueError(f"object_id must be >= 1, got {object_id}")
            confidence = feature("confidence", None)
            records.append(
                HotspotRecord(
                    frame=int(t),
                    object_id=object_id,
                    x=float(x),
                    y=float(y),
                    visible=_as_bool(feature("visible", True)),
                    confidence=None if confidence is None else float(confidence),
                    source=Provenance.parse(feature("source", DEFAULT_POINT_SOURCE)),
                    annotator=str(feature("annotator", "")),
                )
            )
        except (TypeError, ValueError, AnnotationError) as err:
            raise ProjectIOError(f"cannot write Points: point {i}: {err}") from None
    target = Path(path)
    if target.parent and not target.parent.is_dir():
        raise ProjectIOError(f"cannot write {target}: folder {target.parent} does not exist or is a file")
    return [str(write_hotspots_csv(target, records))]
