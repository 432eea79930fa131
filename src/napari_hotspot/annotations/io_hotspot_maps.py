"""Benchmark export of labelled hotspots and its loaders: per-annotator and consensus tables, hotspot maps.

``export_benchmark(store, out_dir)`` writes::

    annotators.csv / annotators.json        every annotator label (io_hotspots "annotators" layer;
                                            the JSON keeps seconds_spent per keyframe)
    annotator_<name>.csv / .json            the same, one annotator per file
    consensus.csv                           geometric-median hotspot per (object, frame), hotspot CSV
                                            format, annotator "consensus"
    consensus.json                          the same plus agreement statistics and outlier names
    agreement.csv                           one row per (object, frame): annotators, distances, PCK
    summary.json                            per-annotator counts and timing, per-object agreement
    maps/object_<id>/manifest.json          frame size, sigma, frames, annotator points, consensus
    maps/object_<id>/maps/<frame>.png       Gaussian (std ``sigma`` px) around each annotator's click,
                                            peak = 255 (8-bit) or 65535 (16-bit)
    maps/object_<id>/fixations/<frame>.png  binary fixation points (255 at each click, 0 elsewhere)
    maps/object_<id>/masks/<frame>.png      the store's object mask (255 inside) where it has one

Frame files are named ``<frame:05d>.png``. The PNGs feed ``evaluation.saliency`` as they are read
(``auc_judd(pred, fixation_png)``, ``cc(pred, map_png)``...: the metrics threshold fixation maps at 0
and are scale-free on continuous maps). ``load_hotspot_maps(dir)`` reads one object's directory and
``score_hotspot_track(track, dir)`` scores a predicted hotspot track against it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from napari_hotspot.annotations.io_hotspots import (
    HotspotRecord,
    _write_atomic_text,
    export_hotspots_csv,
    export_hotspots_json,
    write_hotspots_csv,
)
from napari_hotspot.annotations.labelling import (
    FrameAgreement,
    annotator_labels,
    annotator_summary,
    frame_agreements,
    object_agreement,
)
from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.errors import AnnotationError, HotspotError, ProjectIOError
from napari_hotspot.fileio import atomic_write, encode_png, staged_files
from napari_hotspot.evaluation.hotspot import DEFAULT_PCK_THRESHOLDS, hotspot_scores, temporal_jitter
from napari_hotspot.evaluation.saliency import (
    auc_judd,
    auc_shuffled,
    cc,
    hotspot_map,
    kld,
    nss,
    other_fixations_map,
    sim,
)

MAPS_FORMAT = "napari-hotspot-hotspot-maps"
CONSENSUS_FORMAT = "napari-hotspot-consensus"
FORMAT_VERSION = 1
BIT_DEPTHS = {8: np.uint8, 16: np.uint16}
SALIENCY_METRICS = ("auc_judd", "auc_shuffled", "nss", "cc", "sim", "kld")
AGREEMENT_COLUMNS = (
    "object_id", "frame", "n_annotators", "annotators", "not_visible", "consensus_x", "consensus_y",
    "mean_pairwise_px", "spread_px", "mean_pairwise_norm", "pck", "object_size_px", "outliers",
)


def default_map_sigma(shape: tuple[int, int]) -> float:
    """Gaussian std of the hotspot maps: 2.5% of the frame diagonal."""
    return 0.025 * math.hypot(int(shape[0]), int(shape[1]))


def object_dir_name(obj_id: int) -> str:
    return f"object_{int(obj_id)}"


def frame_file(frame: int) -> str:
    return f"{int(frame):05d}.png"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "annotator"


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _write_png(path: Path, image: np.ndarray) -> None:
    # Encoded in memory and written atomically through a checked path: cv2.imwrite reports success on
    # a full disk, leaving a 0-byte PNG in place of the earlier one.
    data = encode_png(image, path)
    with atomic_write(path, "wb", what="hotspot map", parents=True) as handle:
        handle.write(data)


def _read_png(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ProjectIOError(f"hotspot map file {path} is missing")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ProjectIOError(f"{path} is not a readable PNG image")
    if image.ndim != 2:
        raise ProjectIOError(f"{path} must be a single-channel PNG, got shape {image.shape}")
    return image


# ---------------------------------------------------------------------------- export
def export_hotspot_maps(
    store: AnnotationStore,
    obj_id: int,
    out_dir: str | os.PathLike,
    *,
    annotators: Sequence[str] | None = None,
    include_derived: bool = False,
    sigma: float | None = None,
    bit_depth: int = 8,
    pck_threshold: float = 0.10,
    outlier_threshold: float = 0.20,
) -> Path:
    """Write one object's per-frame hotspot maps, fixation PNGs, masks and manifest into ``out_dir``.

    A frame gets maps when at least one annotator marked a visible hotspot there (derived points only
    with ``include_derived``). Returns ``out_dir``.
    """
    if bit_depth not in BIT_DEPTHS:
        raise ProjectIOError(f"bit depth must be 8 or 16, got {bit_depth!r}")
    shape = (store.height, store.width)
    sigma = default_map_sigma(shape) if sigma is None else float(sigma)
    if not sigma > 0:
        raise ProjectIOError(f"map sigma must be positive, got {sigma}")
    info = store.get_object(obj_id)
    out_dir = Path(out_dir)
    dtype = BIT_DEPTHS[bit_depth]
    peak = np.iinfo(dtype).max
    labels = annotator_labels(store, obj_id, annotators, include_derived)
    agreement = {row.frame: row for row in frame_agreements(
        store, obj_id, annotators, include_derived=include_derived,
        pck_threshold=pck_threshold, outlier_threshold=outlier_threshold)}
    names = store.annotators() if annotators is None else list(annotators)
    points: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, float | None] = {}
    consensus: dict[str, list[float]] = {}
    # Staged: a full disk halfway leaves an earlier export in the folder as it was, not half replaced.
    with staged_files(out_dir, "hotspot-map export") as stage:
        frames = []
        for frame, records in labels.items():
            marks = {n: r.hotspot for n, r in records.items() if r.hotspot is not None and r.hotspot.visible}
            if not marks:
                continue
            frames.append(frame)
            xy = np.array([(h.x, h.y) for h in marks.values()], dtype=float)
            saliency = hotspot_map(xy, shape, sigma)  # float32, peak 1
            _write_png(stage / "maps" / frame_file(frame), np.round(saliency * peak).astype(dtype))
            fixations = np.zeros(shape, dtype=np.uint8)
            for x, y in xy:
                col = int(min(max(round(x), 0), store.width - 1))
                row = int(min(max(round(y), 0), store.height - 1))
                fixations[row, col] = 255
            _write_png(stage / "fixations" / frame_file(frame), fixations)
            mask = store.mask(obj_id, frame)
            if mask is not None:
                _write_png(stage / "masks" / frame_file(frame), mask.astype(np.uint8) * 255)
            points[str(frame)] = {n: [h.x, h.y] for n, h in sorted(marks.items())}
            sizes[str(frame)] = _finite_or_none(agreement[frame].object_size_px)
            consensus[str(frame)] = list(agreement[frame].consensus)
        manifest = {
            "format": MAPS_FORMAT,
            "version": FORMAT_VERSION,
            "object_id": info.id,
            "object_name": info.name,
            "num_frames": store.num_frames,
            "height": store.height,
            "width": store.width,
            "sigma": sigma,
            "bit_depth": bit_depth,
            "include_derived": include_derived,
            "annotators": names,
            "frames": frames,
            "points": points,
            "object_size_px": sizes,
            "consensus": consensus,
            "has_masks": {str(f): (stage / "masks" / frame_file(f)).is_file() for f in frames},
        }
        _write_atomic_text(stage / "manifest.json", lambda h: json.dump(manifest, h, indent=1, allow_nan=False))
    return out_dir


def consensus_records(rows: Sequence[FrameAgreement]) -> list[HotspotRecord]:
    """Consensus rows as hotspot records (annotator "consensus"; source KEYFRAME, DERIVED if any
    derived point went into it)."""
    return [
        HotspotRecord(
            frame=row.frame,
            object_id=row.object_id,
            x=row.consensus[0],
            y=row.consensus[1],
            visible=True,
            confidence=None,
            source=Provenance.DERIVED if row.derived else Provenance.KEYFRAME,
            annotator="consensus",
        )
        for row in rows
        if row.consensus is not None
    ]


def _agreement_json(row: FrameAgreement) -> dict:
    return {
        "object_id": row.object_id,
        "frame": row.frame,
        "x": None if row.consensus is None else row.consensus[0],
        "y": None if row.consensus is None else row.consensus[1],
        "annotators": list(row.annotators),
        "not_visible": list(row.not_visible),
        "mean_pairwise_px": _finite_or_none(row.mean_pairwise_px),
        "spread_px": _finite_or_none(row.spread_px),
        "mean_pairwise_norm": _finite_or_none(row.mean_pairwise_norm),
        "pck": _finite_or_none(row.pck),
        "object_size_px": _finite_or_none(row.object_size_px),
        "outliers": list(row.outliers),
        "derived": row.derived,
    }


def _fmt(value: float) -> str:
    return "" if value is None or not math.isfinite(value) else repr(float(value))


def write_agreement_csv(path: str | os.PathLike, rows: Sequence[FrameAgreement]) -> Path:
    """One row per (object, frame); lists of names are ``;``-separated."""
    path = Path(path)
    table = [
        [
            str(r.object_id), str(r.frame), str(r.n_annotators), ";".join(r.annotators), ";".join(r.not_visible),
            "" if r.consensus is None else repr(r.consensus[0]), "" if r.consensus is None else repr(r.consensus[1]),
            _fmt(r.mean_pairwise_px), _fmt(r.spread_px), _fmt(r.mean_pairwise_norm), _fmt(r.pck),
            _fmt(r.object_size_px), ";".join(r.outliers),
        ]
        for r in rows
    ]

    def dump(handle) -> None:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(AGREEMENT_COLUMNS)
        writer.writerows(table)

    _write_atomic_text(path, dump)
    return path


@dataclass(frozen=True)
class BenchmarkExport:
    """Paths written by ``export_benchmark``."""

    root: Path
    annotators_csv: Path
    annotators_json: Path
    per_annotator: dict[str, tuple[Path, Path]]
    consensus_csv: Path
    consensus_json: Path
    agreement_csv: Path
    summary_json: Path
    map_dirs: dict[int, Path]


def export_benchmark(
    store: AnnotationStore,
    out_dir: str | os.PathLike,
    *,
    object_ids: Sequence[int] | None = None,
    annotators: Sequence[str] | None = None,
    include_derived: bool = False,
    sigma: float | None = None,
    bit_depth: int = 8,
    pck_threshold: float = 0.10,
    outlier_threshold: float = 0.20,
) -> BenchmarkExport:
    """Write the whole benchmark export (see the module docstring) into ``out_dir``.

    ``include_derived`` makes the derived in-between points count as labels for the consensus,
    agreement and maps (the annotator tables always hold everything, with its provenance).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ProjectIOError(f"cannot create export folder {out}: {err.strerror or err}") from err
    names = store.annotators() if annotators is None else list(annotators)
    if not names:
        raise ProjectIOError("nothing to export: no annotator has labelled a hotspot yet")
    ids = store.object_ids if object_ids is None else [int(i) for i in object_ids]
    options = dict(include_derived=include_derived, pck_threshold=pck_threshold,
                   outlier_threshold=outlier_threshold)
    rows = [row for obj_id in ids for row in frame_agreements(store, obj_id, names, **options)]

    annotators_csv = export_hotspots_csv(store, out / "annotators.csv", "annotators", names)
    annotators_json = export_hotspots_json(store, out / "annotators.json", "annotators", names)
    per_annotator = {}
    used: set[str] = set()
    for name in names:
        stem = _safe_name(name)
        while stem in used:  # two names that sanitise alike still get their own files
            stem += "_"
        used.add(stem)
        per_annotator[name] = (
            export_hotspots_csv(store, out / f"annotator_{stem}.csv", "annotators", [name]),
            export_hotspots_json(store, out / f"annotator_{stem}.json", "annotators", [name]),
        )
    consensus_csv = write_hotspots_csv(out / "consensus.csv", consensus_records(rows))
    consensus_doc = {
        "format": CONSENSUS_FORMAT,
        "version": FORMAT_VERSION,
        "num_frames": store.num_frames,
        "height": store.height,
        "width": store.width,
        "annotators": names,
        "include_derived": include_derived,
        "pck_threshold": pck_threshold,
        "outlier_threshold": outlier_threshold,
        "objects": [{"id": o.id, "name": o.name} for o in store.objects if o.id in ids],
        "frames": [_agreement_json(r) for r in rows],
    }
    consensus_json = out / "consensus.json"
    _write_atomic_text(consensus_json, lambda h: json.dump(consensus_doc, h, indent=1, allow_nan=False))
    agreement_csv = write_agreement_csv(out / "agreement.csv", rows)

    objects_summary = {}
    for obj_id in ids:
        try:
            seq = object_agreement(store, obj_id, names, include_derived=include_derived,
                                   pck_threshold=pck_threshold, outlier_threshold=outlier_threshold)
        except AnnotationError:
            continue  # nobody labelled this object
        objects_summary[str(obj_id)] = {
            "name": store.get_object(obj_id).name,
            "mean_pairwise_px": _finite_or_none(seq["mean_pairwise_px"]),
            "spread_px": _finite_or_none(seq["spread_px"]),
            "mean_pairwise_norm": _finite_or_none(seq["mean_pairwise_norm"]),
            "pck": _finite_or_none(seq["pck"]),
            "frames_compared": seq["n_frames"],
            "outlier_rate": {n: _finite_or_none(v) for n, v in zip(seq["annotators"], seq["outlier_rate"])},
        }
    summary = {
        "annotators": [_json_safe(annotator_summary(store, n)) for n in names],
        "objects": objects_summary,
    }
    summary_json = out / "summary.json"
    _write_atomic_text(summary_json, lambda h: json.dump(summary, h, indent=1, allow_nan=False))

    map_dirs = {}
    for obj_id in ids:
        map_dirs[obj_id] = export_hotspot_maps(
            store, obj_id, out / "maps" / object_dir_name(obj_id), annotators=names, sigma=sigma,
            bit_depth=bit_depth, **options,
        )
    return BenchmarkExport(out, annotators_csv, annotators_json, per_annotator, consensus_csv,
                           consensus_json, agreement_csv, summary_json, map_dirs)


def _json_safe(values: dict) -> dict:
    return {k: (_finite_or_none(v) if isinstance(v, float) else v) for k, v in values.items()}


# ---------------------------------------------------------------------------- loading
@dataclass(frozen=True)
class HotspotMaps:
    """One object's exported hotspot maps, as the evaluation tools take them.

    ``saliency[i]`` / ``fixations[i]`` / ``masks[i]`` belong to frame ``frames[i]``; ``masks`` is None
    when no frame has a mask (frames without one hold an empty mask). ``annotator_tracks`` is
    (A, T, 2) with NaN where an annotator has no visible point; ``consensus_track`` is (T, 2).
    """

    root: Path
    object_id: int
    object_name: str
    num_frames: int
    height: int
    width: int
    sigma: float
    bit_depth: int
    frames: list[int]
    saliency: np.ndarray  # (F, H, W) float32, peak 1
    fixations: np.ndarray  # (F, H, W) bool
    masks: np.ndarray | None  # (F, H, W) bool
    annotators: list[str]
    annotator_tracks: np.ndarray
    consensus_track: np.ndarray
    object_sizes: np.ndarray  # (F,) px, NaN where unknown

    def index(self, frame: int) -> int:
        try:
            return self.frames.index(int(frame))
        except ValueError:
            raise AnnotationError(f"frame {frame} has no hotspot map in {self.root}; frames: {self.frames}") from None


def load_hotspot_maps(directory: str | os.PathLike) -> HotspotMaps:
    """Read one object's export directory (``maps/object_<id>``) written by ``export_hotspot_maps``."""
    root = Path(directory)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        hint = ""
        if (root / "maps").is_dir() and any((root / "maps").glob("object_*")):
            hint = f"; this looks like a whole export: pass {root / 'maps' / 'object_<id>'}"
        raise ProjectIOError(f"{root} has no manifest.json: not a hotspot-map directory{hint}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ProjectIOError(f"{manifest_path} is not valid JSON (line {err.lineno}: {err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProjectIOError(f"cannot read {manifest_path}: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MAPS_FORMAT:
        raise ProjectIOError(f"{manifest_path} is not a napari-hotspot hotspot-map manifest")
    try:
        height, width = int(manifest["height"]), int(manifest["width"])
        num_frames = int(manifest["num_frames"])
        frames = [int(f) for f in manifest["frames"]]
        names = [str(n) for n in manifest["annotators"]]
        bit_depth = int(manifest["bit_depth"])
        sigma = float(manifest["sigma"])
        points = manifest["points"]
        consensus = manifest["consensus"]
        sizes_doc = manifest.get("object_size_px", {})
    except (KeyError, TypeError, ValueError) as err:
        raise ProjectIOError(f"{manifest_path} is malformed: {err!r}") from None
    if bit_depth not in BIT_DEPTHS:
        raise ProjectIOError(f"{manifest_path}: bit depth {bit_depth} is not 8 or 16")
    peak = float(np.iinfo(BIT_DEPTHS[bit_depth]).max)
    saliency = np.zeros((len(frames), height, width), dtype=np.float32)
    fixations = np.zeros((len(frames), height, width), dtype=bool)
    masks = np.zeros((len(frames), height, width), dtype=bool)
    any_mask = False
    for i, frame in enumerate(frames):
        for kind, target in (("maps", saliency), ("fixations", fixations)):
            image = _read_png(root / kind / frame_file(frame))
            if image.shape != (height, width):
                raise ProjectIOError(
                    f"{root / kind / frame_file(frame)} is {image.shape[1]}x{image.shape[0]}, "
                    f"the manifest says {width}x{height}"
                )
            target[i] = image / peak if kind == "maps" else image > 0
        mask_path = root / "masks" / frame_file(frame)
        if mask_path.is_file():
            masks[i] = _read_png(mask_path) > 0
            any_mask = True
    tracks = np.full((len(names), num_frames, 2), np.nan)
    consensus_track = np.full((num_frames, 2), np.nan)
    sizes = np.full(len(frames), np.nan)
    try:
        for i, frame in enumerate(frames):
            for a, name in enumerate(names):
                if name in points.get(str(frame), {}):
                    tracks[a, frame] = points[str(frame)][name]
            if str(frame) in consensus:
                consensus_track[frame] = consensus[str(frame)]
            if sizes_doc.get(str(frame)) is not None:
                sizes[i] = float(sizes_doc[str(frame)])
    except (TypeError, ValueError, IndexError) as err:
        raise ProjectIOError(f"{manifest_path} has malformed points: {err}") from None
    return HotspotMaps(
        root=root,
        object_id=int(manifest.get("object_id", 0)),
        object_name=str(manifest.get("object_name", "")),
        num_frames=num_frames,
        height=height,
        width=width,
        sigma=sigma,
        bit_depth=bit_depth,
        frames=frames,
        saliency=saliency,
        fixations=fixations,
        masks=masks if any_mask else None,
        annotators=names,
        annotator_tracks=tracks,
        consensus_track=consensus_track,
        object_sizes=sizes,
    )


def load_hotspot_map_set(export_dir: str | os.PathLike) -> dict[int, HotspotMaps]:
    """Every object of a whole export (``<export_dir>/maps/object_<id>``), by object id."""
    root = Path(export_dir)
    maps_root = root / "maps" if (root / "maps").is_dir() else root
    dirs = sorted(p for p in maps_root.glob("object_*") if (p / "manifest.json").is_file())
    if not dirs:
        raise ProjectIOError(f"{root} holds no hotspot maps (expected maps/object_<id>/manifest.json)")
    loaded = [load_hotspot_maps(d) for d in dirs]
    return {m.object_id: m for m in loaded}


def _whole(text) -> int:
    """An integer written as ``3`` or ``3.0`` (a spreadsheet's export); ``3.5`` or nothing is refused."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def read_track_csv(path: str | os.PathLike, num_frames: int) -> dict[int, np.ndarray]:
    """Hotspot tracks ``{object_id: (T, 2)}`` from a CSV with columns frame, object_id, x, y[, visible].

    Reads both ``napari-hotspot track`` output and io_hotspots CSVs; other columns are ignored;
    empty x/y or visible = 0 give NaN; a visible row's x or y written as nan or inf is refused.
    """
    path = Path(path)
    if (path.parent / ".track-commit.json").exists():  # a `track` folder a killed run left mid-commit
        from napari_hotspot.track_output import recover_track_dir

        recover_track_dir(path.parent)
    tracks: dict[int, np.ndarray] = {}
    try:
        # utf-8-sig: a CSV saved by a spreadsheet often starts with a byte-order mark
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("frame", "object_id", "x", "y") if c not in (reader.fieldnames or [])]
            if missing:
                raise ProjectIOError(f"{path}: missing column(s) {missing}; expected frame,object_id,x,y[,visible]")
            for row in reader:
                where = f"{path} line {reader.line_num}"
                try:
                    frame, obj_id = _whole(row["frame"]), _whole(row["object_id"])
                    visible = (row.get("visible") or "1").strip().lower() not in ("0", "false", "no")
                    x, y = ((float(v) if (v := (row[c] or "").strip()) else math.nan) for c in ("x", "y"))
                except (TypeError, ValueError) as err:  # a short row leaves fields None
                    raise ProjectIOError(f"{where}: frame and object_id must be whole numbers, x and y numbers "
                                         f"({err})") from None
                if not 0 <= frame < num_frames:
                    raise ProjectIOError(f"{where}: frame {frame} is outside 0..{num_frames - 1}")
                if obj_id < 1:  # 0 is the background of every label image
                    raise ProjectIOError(f"{where}: object_id {obj_id} is not an object id (1 or more)")
                # An empty x or y means no hotspot on that frame; a written "nan" or "inf" is a broken
                # export, not an absence, and would quietly fall back to the mask's hotspot.
                if visible and any(not math.isfinite(v) for v, c in ((x, "x"), (y, "y")) if (row[c] or "").strip()):
                    raise ProjectIOError(f"{where}: x and y must be finite numbers or empty (no hotspot), "
                                         f"got x={row['x']!r}, y={row['y']!r}")
                track = tracks.setdefault(obj_id, np.full((num_frames, 2), np.nan))
                track[frame] = (x, y) if visible else (math.nan, math.nan)
    except FileNotFoundError:
        raise ProjectIOError(f"hotspot track CSV {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ProjectIOError(f"cannot read hotspot track CSV {path}: {err}") from None
    return tracks


# ---------------------------------------------------------------------------- scoring
def score_hotspot_track(
    track,
    maps_dir: str | os.PathLike | HotspotMaps,
    *,
    sigma: float | None = None,
    pck_thresholds: Sequence[float] = DEFAULT_PCK_THRESHOLDS,
    n_splits: int = 100,
    seed: int = 0,
) -> dict:
    """Score a predicted hotspot track of one object against its exported hotspot maps.

    ``track`` is (T, 2) (x, y) or (T, 3) (x, y, visible), NaN (or visible = 0) where the model has no
    hotspot, T = the video's frame count. Each labelled frame with a prediction is scored as a
    saliency map (a Gaussian of std ``sigma``, default the export's, at the predicted point):
    ``auc_judd``, ``nss`` (against the fixation PNG), ``auc_shuffled`` (other frames' fixations as
    negatives), ``cc``, ``sim``, ``kld`` (against the hotspot-map PNG); the result holds their means
    over those frames. The hotspot metrics of ``evaluation.hotspot.hotspot_scores`` (``hs_*``: distance
    to the nearest annotator and to the consensus, PCK normalised by the exported object masks) use
    the labelled frames, a missing prediction counting as a miss; ``hs_jitter_px`` uses the whole track.
    Also returns ``object_id``, ``n_frames`` (labelled frames) and ``n_scored`` (with a prediction).
    """
    maps = maps_dir if isinstance(maps_dir, HotspotMaps) else load_hotspot_maps(maps_dir)
    pred = np.asarray(track, dtype=float)
    if pred.ndim != 2 or pred.shape[1] not in (2, 3):
        raise AnnotationError(f"the hotspot track must be (T, 2) or (T, 3); got shape {pred.shape}")
    if pred.shape[0] != maps.num_frames:
        raise AnnotationError(
            f"the hotspot track has {pred.shape[0]} frames but {maps.root} was labelled on a "
            f"{maps.num_frames}-frame video"
        )
    if pred.shape[1] == 3:
        hidden = ~(pred[:, 2] > 0.5)
        pred = pred[:, :2].copy()
        pred[hidden] = np.nan
    if not maps.frames:
        raise AnnotationError(f"{maps.root} has no labelled frame to score against")
    sigma = maps.sigma if sigma is None else float(sigma)
    shape = (maps.height, maps.width)
    per_metric: dict[str, list[float]] = {name: [] for name in SALIENCY_METRICS}
    for i, frame in enumerate(maps.frames):
        point = pred[frame]
        if not np.all(np.isfinite(point)):
            continue
        predicted = hotspot_map(point[None], shape, sigma)
        fixation = maps.fixations[i]
        per_metric["auc_judd"].append(auc_judd(predicted, fixation))
        per_metric["nss"].append(nss(predicted, fixation))
        per_metric["cc"].append(cc(predicted, maps.saliency[i]))
        per_metric["sim"].append(sim(predicted, maps.saliency[i]))
        per_metric["kld"].append(kld(predicted, maps.saliency[i]))
        if len(maps.frames) > 1:
            others = other_fixations_map(maps.fixations, i)
            if others.any():
                per_metric["auc_shuffled"].append(
                    auc_shuffled(predicted, fixation, others, n_splits=n_splits, seed=seed))
    scores: dict = {"object_id": maps.object_id, "n_frames": len(maps.frames),
                    "n_scored": len(per_metric["auc_judd"])}
    for name, values in per_metric.items():
        finite = [v for v in values if math.isfinite(v)]
        scores[name] = float(np.mean(finite)) if finite else float("nan")
    labelled = np.asarray(maps.frames)
    gt = maps.annotator_tracks[:, labelled, :]
    masks = None if maps.masks is None else list(maps.masks)
    scores.update(hotspot_scores(pred[labelled], gt, masks, pck_thresholds=pck_thresholds))
    scores["hs_jitter_px"] = temporal_jitter(pred)
    return scores


def score_hotspot_csv(pred_csv: str | os.PathLike, export_dir: str | os.PathLike, **options) -> dict[int, dict]:
    """Score every object of a prediction CSV (``read_track_csv``) against a whole benchmark export.

    Objects of the export the prediction lacks are scored as all-missing. For ``napari-hotspot eval``.
    """
    map_set = load_hotspot_map_set(export_dir)
    num_frames = {m.num_frames for m in map_set.values()}
    if len(num_frames) != 1:
        raise ProjectIOError(f"{export_dir}: objects disagree on the frame count {sorted(num_frames)}")
    tracks = read_track_csv(pred_csv, num_frames.pop())
    results = {}
    for obj_id, maps in map_set.items():
        track = tracks.get(obj_id, np.full((maps.num_frames, 2), np.nan))
        try:
            results[obj_id] = score_hotspot_track(track, maps, **options)
        except HotspotError as err:
            raise ProjectIOError(f"object {obj_id}: {err}") from None
    return results
