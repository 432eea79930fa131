"""DAVIS-format masks: one indexed palette PNG per frame (pixel value = object id), export and import.

Import also reads DAVIS-2016 single-object annotations (greyscale 0/255 PNGs) as object 1.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.annotations.palette import davis_palette_bytes
from napari_hotspot.errors import AnnotationError, ProjectIOError
from napari_hotspot.fileio import atomic_write, staged_files
# The one mask-PNG reader (video/masks.py), named here too: DAVIS folders are read with it.
from napari_hotspot.video.masks import read_label_png  # noqa: F401


def frame_stems(frame_names: Sequence[str] | None, num_frames: int) -> list[str]:
    """File stems for each frame: the stems of ``frame_names`` or ``00000``, ``00001``, ..."""
    if frame_names is None:
        return [f"{i:05d}" for i in range(num_frames)]
    names = list(frame_names)
    if len(names) != num_frames:
        raise ProjectIOError(f"got {len(names)} frame names for a video of {num_frames} frames")
    stems = [Path(str(n)).stem for n in names]
    if len(set(stems)) != len(stems):
        seen: set[str] = set()
        duplicate = next(s for s in stems if s in seen or seen.add(s))
        raise ProjectIOError(f"frame names must have distinct stems; {duplicate!r} repeats")
    return stems


def write_label_png(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write an (H, W) label image with values 0..255 as a DAVIS palette PNG (mode "P").

    The file is written to a temporary name and renamed, so a failure never leaves half a PNG.
    """
    path = Path(path)
    array = np.asarray(labels)
    if array.ndim != 2:
        raise ProjectIOError(f"cannot write {path}: label image must be 2-D (H, W), got {array.shape}")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ProjectIOError(
            f"cannot write {path}: DAVIS PNGs hold object ids 0..255, got values "
            f"{array.min()}..{array.max()}"
        )
    height, width = array.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    image.putpalette(davis_palette_bytes())
    with atomic_write(path, "wb") as handle:
        image.save(handle, format="PNG")
    return path


def export_davis_png(
    store: AnnotationStore,
    out_dir: str | os.PathLike,
    frame_names: Sequence[str] | None = None,
    frames: Sequence[int] | None = None,
) -> list[Path]:
    """Write one DAVIS palette PNG per frame (all frames unless ``frames`` is given).

    File name = stem of ``frame_names[i]`` (default ``f"{i:05d}"``) + ``.png``; pixel value =
    object id (later objects on top), 0 = background. Entries without a mask export as background.
    """
    too_big = [o.id for o in store.objects if o.id > 255]
    if too_big:
        raise ProjectIOError(f"DAVIS PNGs hold object ids up to 255; objects {too_big} are larger")
    stems = frame_stems(frame_names, store.num_frames)
    out = Path(out_dir)
    chosen = range(store.num_frames) if frames is None else [store._check_frame(f) for f in frames]
    # Staged: a full disk halfway leaves the folder's earlier PNGs as they were, not half replaced.
    with staged_files(out, "DAVIS PNG export") as stage:
        for f in chosen:
            write_label_png(stage / f"{stems[f]}.png", store.label_frame(f))
    return [out / f"{stems[f]}.png" for f in chosen]


def _png_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ProjectIOError(f"DAVIS mask folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith("."))
    if not files:
        raise ProjectIOError(f"no .png mask files in {folder}")
    return files


def read_davis_folder(folder: str | os.PathLike) -> tuple[list[str], list[np.ndarray]]:
    """Read every PNG of a DAVIS annotation folder: (sorted file stems, label images).

    A folder whose PNGs only ever contain 0 and 255 (DAVIS-2016 single object) is returned with
    255 mapped to object 1.
    """
    folder = Path(folder)
    files = _png_files(folder)
    labels = [read_label_png(p) for p in files]
    shapes = {lab.shape for lab in labels}
    if len(shapes) > 1:
        raise ProjectIOError(f"mask PNGs in {folder} have different sizes: {sorted(shapes)}")
    values = set()
    for lab in labels:
        values.update(np.unique(lab).tolist())
    if 255 in values and values <= {0, 255}:
        labels = [(lab == 255).astype(np.uint8) for lab in labels]
    return [p.stem for p in files], labels


def import_davis_png(
    folder: str | os.PathLike,
    store: AnnotationStore | None = None,
    *,
    frame_names: Sequence[str] | None = None,
    num_frames: int | None = None,
    provenance: Provenance | str = Provenance.IMPORTED,
    annotator: str = "",
) -> AnnotationStore:
    """Import a folder of DAVIS PNGs as masks; returns the store (a new one unless ``store`` given).

    Frame of each PNG: its position in ``frame_names`` (matched by stem) if given; else the number
    in its name when every stem is an integer; else its sorted position. Every object present in
    the folder gets a mask (possibly empty) in every PNG frame. Into an existing store this is one
    undo step; missing objects are added with their ids.
    """
    folder = Path(folder)
    stems, labels = read_davis_folder(folder)
    if frame_names is not None:
        index_of = {s: i for i, s in enumerate(frame_stems(frame_names, len(frame_names)))}
        unknown = [s for s in stems if s not in index_of]
        if unknown:
            raise ProjectIOError(f"{folder}: PNGs {unknown[:5]} match no frame name")
        frame_of = [index_of[s] for s in stems]
    elif all(s.isdigit() for s in stems):
        frame_of = [int(s) for s in stems]
    else:
        frame_of = list(range(len(stems)))
    height, width = labels[0].shape
    created = store is None
    if store is None:
        total = num_frames if num_frames is not None else (
            len(frame_names) if frame_names is not None else max(frame_of) + 1
        )
        store = AnnotationStore(total, height, width)
    elif (store.height, store.width) != (height, width):
        raise ProjectIOError(
            f"{folder}: masks are {height}x{width} but the video frames are "
            f"{store.height}x{store.width}"
        )
    too_far = [f for f in frame_of if f >= store.num_frames]
    if too_far:
        raise ProjectIOError(
            f"{folder}: mask for frame {too_far[0]} but the video has {store.num_frames} frames"
        )
    ids = sorted({int(v) for lab in labels for v in np.unique(lab).tolist()} - {0})
    try:
        with store.batch(f"import DAVIS masks from {folder.name}"):
            for obj_id in ids:
                if not store.has_object(obj_id):
                    store.add_object(obj_id=obj_id)
            for frame, lab in zip(frame_of, labels):
                for obj_id in ids:
                    store.set_frame(
                        obj_id, frame, mask=lab == obj_id, provenance=provenance, annotator=annotator
                    )
    except AnnotationError as err:
        raise ProjectIOError(f"cannot import {folder}: {err}") from None
    if created:
        store.clear_history()  # a fresh store starts with nothing to undo
    return store
