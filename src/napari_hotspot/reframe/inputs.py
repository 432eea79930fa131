"""Where reframing gets its object tracks: saved projects, `napari-hotspot track` output folders, or a
fresh tracker run from a prompt (the I/O edge of the reframe package)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from napari_hotspot.annotations.io_davis import frame_stems, read_davis_folder
from napari_hotspot.annotations.io_hotspot_maps import read_track_csv
from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.errors import ProjectIOError
from napari_hotspot.reframe.tracks import ObjectTrack, track_from_masks, tracks_from_store


def _select(tracks: list[ObjectTrack], object_ids: Sequence[int] | None, where: Path) -> list[ObjectTrack]:
    if not object_ids:
        return tracks
    by_id = {t.object_id: t for t in tracks}
    missing = [o for o in object_ids if o not in by_id]
    if missing:
        raise ProjectIOError(f"{where}: no object(s) {missing}; it holds objects {sorted(by_id)}")
    return [by_id[o] for o in object_ids]


def tracks_from_track_folder(folder: Path, frame_names: Sequence[str], frame_size: tuple[int, int],
                             object_ids: Sequence[int] | None = None) -> list[ObjectTrack]:
    """Tracks from a folder written by ``napari-hotspot track``: ``masks/<frame>.png`` (object ids)
    and ``hotspots.csv``, one PNG per frame of the video. Without the CSV (a folder of masks made
    otherwise) frames may lack a PNG: they have no mask, and hotspots come from the masks' deepest
    interior points."""
    folder = Path(folder)
    num_frames = len(frame_names)
    stems, labels = read_davis_folder(folder / "masks")
    index_of = {s: i for i, s in enumerate(frame_stems(list(frame_names), num_frames))}
    unknown = [s for s in stems if s not in index_of]
    if unknown:
        raise ProjectIOError(f"{folder / 'masks'}: PNGs {unknown[:3]} match no frame of the video")
    if labels and labels[0].shape != tuple(frame_size):
        raise ProjectIOError(f"{folder / 'masks'}: masks are {labels[0].shape[1]}x{labels[0].shape[0]}, the video is "
                             f"{frame_size[1]}x{frame_size[0]}")
    csv_path = folder / "hotspots.csv"
    if csv_path.is_file() and len(stems) != num_frames:  # `track` writes a PNG for every frame
        raise ProjectIOError(f"{folder}: {len(stems)} mask PNGs for a video of {num_frames} frames: was it tracked "
                             "on this video?")
    hotspots = read_track_csv(csv_path, num_frames) if csv_path.is_file() else {}
    ids = sorted({int(v) for lab in labels for v in np.unique(lab) if v != 0} | set(hotspots))
    if not ids:
        raise ProjectIOError(f"{folder}: no object in masks/ or hotspots.csv")
    masks: dict[int, list[CompressedMask | None]] = {oid: [None] * num_frames for oid in ids}
    for stem, lab in zip(stems, labels):
        t = index_of[stem]
        for oid in ids:
            m = lab == oid
            if m.any():
                masks[oid][t] = CompressedMask.from_array(m)
    tracks = [track_from_masks(oid, masks[oid], hotspots.get(oid), frame_size) for oid in ids]
    return _select(tracks, object_ids, folder)


def load_tracks(path: Path, frame_names: Sequence[str], frame_size: tuple[int, int],
                object_ids: Sequence[int] | None = None) -> list[ObjectTrack]:
    """Tracks from a saved project folder (``project.json``) or a ``track`` output folder."""
    from napari_hotspot.annotations.project import is_project_dir, load_project

    path = Path(path)
    if not path.exists():
        raise ProjectIOError(f"--tracks {path} does not exist")
    if not path.is_dir():
        raise ProjectIOError(f"--tracks {path} is a file: give a saved project folder or a track output folder")
    if is_project_dir(path):
        store, _meta = load_project(path)
        if (store.num_frames, store.height, store.width) != (len(frame_names), *frame_size):
            raise ProjectIOError(
                f"{path}: the project is {store.num_frames} frames of {store.width}x{store.height}, the video "
                f"is {len(frame_names)} frames of {frame_size[1]}x{frame_size[0]}")
        return _select(tracks_from_store(store), object_ids, path)
    from napari_hotspot.track_output import recover_track_dir

    recover_track_dir(path)  # a `track` run killed mid-commit: finish it before reading
    if (path / "masks").is_dir():
        return tracks_from_track_folder(path, frame_names, frame_size, object_ids)
    raise ProjectIOError(f"{path} is neither a napari-hotspot project (project.json) nor a track output folder "
                         "(masks/ + hotspots.csv)")


def run_tracker(session, prompts: Sequence, progress: Callable[[int, int], None] | None = None) -> list[ObjectTrack]:
    """Apply ``pipeline.Prompt``s to a ``HotspotSession``, prepare the objects as its options say
    (``HotspotSession.preflight``: completion of sparse prompts' masks, adaptation), propagate both
    ways and return the tracks (masks kept compressed, so long videos fit in memory)."""
    num_frames = session.num_frames
    ids: list[int] = []
    masks: dict[int, list[CompressedMask | None]] = {}
    hot: dict[int, np.ndarray] = {}
    done: set[int] = set()

    def put(oid, frame, mask, hotspot):
        done.add(frame)
        if oid not in masks:
            ids.append(oid)
            masks[oid] = [None] * num_frames
            hot[oid] = np.full((num_frames, 2), np.nan)
        masks[oid][frame] = CompressedMask.from_array(mask) if mask is not None and mask.any() else None
        if hotspot is not None:
            hot[oid][frame] = hotspot

    for prompt in prompts:
        r = prompt.apply(session)
        put(r.object_id, r.frame, r.mask, r.hotspot)
    for c in session.preflight(ids):  # a completed mask replaces its prompt's
        put(c.object_id, c.frame, c.mask, c.hotspot)
    for r in session.propagate(direction="both"):
        put(r.object_id, r.frame, r.mask, r.hotspot)
        if progress is not None:
            progress(len(done), num_frames)
    return [track_from_masks(oid, masks[oid], hot[oid], session.frame_size) for oid in ids]
