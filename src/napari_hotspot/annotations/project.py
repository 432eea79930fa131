"""Project folders on disk: atomic save, load, and a Qt-free autosaver.

A project folder holds ``project.json`` (format version, video path, frame size, objects, one
record per (object, frame) entry, annotator hotspot records, an ``extra`` dict other modules own)
and ``masks/object_XXXXX.npz`` with each object's compressed masks. Saving writes a complete
temporary sibling folder, fsyncs it, then swaps it into place, so a crash or a full disk mid-save
leaves the previous project intact. Files other modules put in the folder (e.g. adapted model
weights listed in ``extra``) are carried over to the new folder on every save, except in the
folders a save names in ``replace_dirs``: their content is exactly what that save writes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from napari_hotspot.annotations.masks import CompressedMask
from napari_hotspot.annotations.model import AnnotationStore, Hotspot, Provenance
from napari_hotspot.errors import AnnotationError, ProjectIOError
from napari_hotspot.fileio import (crash_point, damaged_zip_member, describe_write_error, fsync_dir, pid_alive,
                                  write_bytes_checked)

PROJECT_FILE = "project.json"
MASK_DIR = "masks"
FORMAT_NAME = "napari-hotspot-project"
# 2: frames may have the provenance "accepted" (kept as tracked); a project without one is saved as 1,
# which older versions read too.
FORMAT_VERSION = 2
_SAVING_TAG = ".saving-"
_OLD_TAG = ".old-"
# A replaced project folder is renamed to this before it is deleted, so a folder cut short by a
# kill mid-delete never looks like a project a recovery could pick.
_TRASH_TAG = ".trash-"
# Temporary siblings are named f".{name}{tag}{pid}-{random}": the pid tells a dead save's leftover
# from a live one's, which a load or save in another process must leave alone.
_active_temps: set[str] = set()  # this process's saves in flight (threads)


#: The dock's key in a project's ``extra``; its ``adaptation`` record lists each object's adapted tracker.
WIDGET_EXTRA_KEY = "napari_hotspot_widget"
#: Folder of a project that holds the adapted tracker of each object (rewritten whole on every save).
ADAPTATION_DIR = "adaptation"


def adaptation_file_name(obj_id: int) -> str:
    """Relative path of an object's adapted tracker state inside a project folder."""
    return f"{ADAPTATION_DIR}/object_{int(obj_id):05d}.pt"


def mask_file_name(obj_id: int) -> str:
    """Relative path of an object's mask archive inside a project folder."""
    return f"{MASK_DIR}/object_{obj_id:05d}.npz"


def is_project_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder holding a napari-hotspot ``project.json``."""
    project_file = Path(path) / PROJECT_FILE
    try:
        with open(project_file, encoding="utf-8") as handle:
            head = handle.read(256)
    except OSError:
        return False
    return f'"format": "{FORMAT_NAME}"' in head


# ---------------------------------------------------------------------------- encoding
def _hotspot_record(hotspot: Hotspot | None) -> dict | None:
    if hotspot is None:
        return None
    return {"x": hotspot.x, "y": hotspot.y, "visible": hotspot.visible}


def _video_record(video_source: Any, project_dir: Path) -> dict | None:
    if video_source is None:
        return None
    source = getattr(video_source, "path", video_source)  # a video-source object or a path
    try:
        absolute = Path(os.fspath(source)).expanduser().absolute()
    except TypeError:
        raise ProjectIOError(
            f"video_source must be a path or an object with a .path, got {video_source!r}"
        ) from None
    try:
        relative = os.path.relpath(absolute, project_dir.absolute())
    except ValueError:  # different drive on Windows
        relative = None
    return {"path": str(absolute), "relative": relative}


def _encode_masks(entries: Mapping[int, Any]) -> bytes | None:
    """One object's masks as .npz bytes (frames, bboxes, areas, offsets, concatenated payloads)."""
    frames, bboxes, areas, chunks = [], [], [], []
    for frame, entry in entries.items():
        packed: CompressedMask | None = entry.packed_mask
        if packed is None:
            continue
        frames.append(frame)
        bboxes.append(packed.bbox if packed.bbox is not None else (-1, -1, -1, -1))
        areas.append(packed.area)
        chunks.append(packed.data)
    if not frames:
        return None
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(c) for c in chunks])
    buffer = io.BytesIO()
    # The payloads are already zlib-compressed; a second compression would only cost time.
    np.savez(
        buffer,
        frames=np.asarray(frames, dtype=np.int64),
        bboxes=np.asarray(bboxes, dtype=np.int64).reshape(-1, 4),
        areas=np.asarray(areas, dtype=np.int64),
        offsets=offsets,
        data=np.frombuffer(b"".join(chunks), dtype=np.uint8),
    )
    return buffer.getvalue()


def _build_payload(
    store: AnnotationStore, path: Path, video_source: Any, extra: Mapping | None
) -> tuple[bytes, dict[str, bytes]]:
    """Serialise the store to (project.json bytes, {relative mask path: npz bytes}); no I/O."""
    from napari_hotspot import __version__

    mask_files: dict[str, bytes] = {}
    mask_index: dict[str, str] = {}
    frame_records = []
    for info in store.objects:
        entries = store.entries(info.id)
        encoded = _encode_masks(entries)
        if encoded is not None:
            name = mask_file_name(info.id)
            mask_files[name] = encoded
            mask_index[str(info.id)] = name
        for frame, entry in entries.items():
            frame_records.append(
                {
                    "object_id": info.id,
                    "frame": frame,
                    "has_mask": entry.has_mask,
                    "hotspot": _hotspot_record(entry.hotspot),
                    "confidence": entry.confidence,
                    "provenance": entry.provenance.value,
                    "annotator": entry.annotator,
                    "timestamp": entry.timestamp,
                }
            )
    annotator_records = []
    for annotator in store.annotators():
        for (obj_id, frame), record in store.annotator_hotspots(annotator).items():
            annotator_records.append(
                {
                    "annotator": annotator,
                    "object_id": obj_id,
                    "frame": frame,
                    "hotspot": _hotspot_record(record.hotspot),
                    "provenance": record.provenance.value,
                    "seconds_spent": record.seconds_spent,
                    "timestamp": record.timestamp,
                }
            )
    accepted = any(r["provenance"] == Provenance.ACCEPTED.value for r in frame_records)
    document = {
        "format": FORMAT_NAME,  # first key: is_project_dir only reads the head of the file
        "version": FORMAT_VERSION if accepted else 1,
        "app_version": __version__,
        "saved_at": time.time(),
        # Nanoseconds: orders saves made within one clock tick of time.time() when a recovery
        # has to choose the newest of several complete leftovers.
        "saved_at_ns": time.time_ns(),
        "video": _video_record(video_source, path),
        "num_frames": store.num_frames,
        "height": store.height,
        "width": store.width,
        "objects": [
            {"id": o.id, "name": o.name, "color": list(o.color)} for o in store.objects
        ],
        "mask_files": mask_index,
        "frames": frame_records,
        "annotator_hotspots": annotator_records,
        "extra": dict(extra) if extra is not None else {},
    }
    try:
        text = json.dumps(document, indent=1, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ProjectIOError(
            f"cannot save project {path}: 'extra' must be JSON-serialisable ({err})"
        ) from None
    return text.encode("utf-8"), mask_files


# ---------------------------------------------------------------------------- low-level I/O
def _write_file(path: Path, data: bytes) -> None:
    """Write bytes, fsync them and check the size (every project file goes through here)."""
    write_bytes_checked(path, data, fsync=True)


_fsync_dir = fsync_dir


def _siblings(path: Path, tag: str) -> list[Path]:
    try:
        return sorted(path.parent.glob(f".{path.name}{tag}*"))
    except OSError:
        return []


def _temp_name(path: Path, tag: str) -> Path:
    return path.parent / f".{path.name}{tag}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _owner_alive(leftover: Path, tag: str, name: str) -> bool:
    """True when the save that made this temporary sibling may still be running."""
    if str(leftover) in _active_temps:
        return True
    rest = leftover.name[len(f".{name}{tag}"):]
    pid, _, _ = rest.partition("-")
    if not pid.isdigit():  # made by an older version (no pid): its save is long over
        return False
    return int(pid) != os.getpid() and pid_alive(int(pid))


def _saved_order(folder: Path) -> tuple[int, float] | None:
    """(saved_at_ns, saved_at) of a complete project folder; None when it is not complete (no
    readable project.json, or a mask file it lists is missing)."""
    try:
        document = json.loads((folder / PROJECT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        return None
    try:
        if not all((folder / str(name)).is_file() for name in (document.get("mask_files") or {}).values()):
            return None
        saved_at = float(document.get("saved_at") or 0.0)
        ns = int(document.get("saved_at_ns") or saved_at * 1e9)
    except (TypeError, ValueError, AttributeError, OSError):
        return None
    return ns, saved_at


def _recover_interrupted_swap(path: Path, wait_s: float = 2.0) -> None:
    """Repair what a killed save left beside ``path``, then remove its leftovers.

    With ``path`` missing (the save died between moving the old folder away and moving the new one
    in), the newest complete folder among the ``.old-`` and finished ``.saving-`` siblings becomes
    ``path``. Leftovers of saves still running in another process are left alone (and a missing
    ``path`` is waited for, up to ``wait_s``, while such a save is between its two renames)."""
    deadline = time.monotonic() + wait_s
    while True:
        busy = False
        candidates = []
        leftovers = []
        for tag in (_OLD_TAG, _SAVING_TAG, _TRASH_TAG):
            for sibling in _siblings(path, tag):
                if _owner_alive(sibling, tag, path.name):
                    busy = True
                    continue
                leftovers.append(sibling)
                if tag != _TRASH_TAG and not path.exists():
                    order = _saved_order(sibling)
                    if order is not None:
                        candidates.append((order, sibling))
        if path.exists() or not busy or time.monotonic() > deadline:
            break
        time.sleep(0.02)  # another process is between its two renames: let it finish
    if not path.exists() and candidates:
        _, newest = max(candidates)
        os.rename(newest, path)
        _fsync_dir(path.parent)
        leftovers.remove(newest)
    for leftover in leftovers:
        _remove_tree(leftover, path)


def _remove_tree(folder: Path, path: Path) -> None:
    """Delete a folder that is not a project any more; first renamed to a ``.trash-`` name so that
    a kill mid-delete leaves nothing a recovery would take for a complete project."""
    if not folder.name.startswith(f".{path.name}{_TRASH_TAG}"):
        trash = _temp_name(path, _TRASH_TAG)
        try:
            os.rename(folder, trash)
        except OSError:
            trash = folder
        folder = trash
        crash_point("save:trash")
    shutil.rmtree(folder, ignore_errors=True)


def _copy_preserved(old_dir: Path, new_dir: Path, written: set[str], replaced: tuple[str, ...] = ()) -> None:
    """Carry files other modules keep in the project folder over to the new folder (not those in
    the ``replaced`` folders, which the save rewrites whole)."""
    for source in old_dir.rglob("*"):
        relative = source.relative_to(old_dir).as_posix()
        if relative == PROJECT_FILE or relative.startswith(MASK_DIR + "/") or relative == MASK_DIR:
            continue
        if relative in written or any(relative == d or relative.startswith(d + "/") for d in replaced):
            continue
        target = new_dir / relative
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)  # cheap; the old folder is deleted after the swap anyway
        except OSError:
            shutil.copy2(source, target)


def save_project(
    store: AnnotationStore,
    path: str | os.PathLike,
    video_source: Any = None,
    extra: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, bytes | str | os.PathLike] | None = None,
    replace_dirs: Iterable[str] = (),
) -> Path:
    """Save ``store`` as a project folder at ``path`` atomically; returns the folder path.

    ``video_source``: the video path (or an object with ``.path``), stored absolute and relative.
    ``extra``: JSON-serialisable dict for other modules (e.g. adapted model state file names).
    ``extra_files``: ``{relative name: bytes or source file path}`` written into the project in
    the same atomic step. Files already in the project folder that this save does not write are
    kept, except under ``replace_dirs`` (relative folder names, e.g. ``["adaptation"]``): there the
    new project holds only the ``extra_files`` of this save, so a module drops a file by no longer
    writing it. On any failure the in-memory store and the old project on disk are untouched.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ProjectIOError(f"cannot save project to {path}: it is a file, not a folder")
    if path.is_dir() and any(path.iterdir()) and not is_project_dir(path):
        raise ProjectIOError(
            f"refusing to save a project into {path}: the folder is not empty and holds no "
            f"{PROJECT_FILE}; choose an empty or new folder"
        )
    project_bytes, mask_files = _build_payload(store, path, video_source, extra)
    extra_items = dict(extra_files or {})
    replaced = tuple(Path(d).as_posix().rstrip("/") for d in replace_dirs)
    for name in [*extra_items, *replaced]:
        relative = Path(name)
        if not relative.parts or relative.is_absolute() or ".." in relative.parts or relative.as_posix() in (
            PROJECT_FILE,
        ) or relative.parts[0] == MASK_DIR:
            raise ProjectIOError(
                f"extra file name {name!r} must be a relative path inside the project, "
                f"not {PROJECT_FILE} or under {MASK_DIR}/"
            )

    temp = _temp_name(path, _SAVING_TAG)
    current = path.parent  # the file or folder being written, for the error message
    _active_temps.add(str(temp))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _recover_interrupted_swap(path)  # and removes the leftovers of crashed earlier saves
        current = temp
        temp.mkdir()
        (temp / MASK_DIR).mkdir()
        for name, data in mask_files.items():
            current = temp / name
            _write_file(current, data)
        for name, content in extra_items.items():
            current = temp / name
            current.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, (bytes, bytearray, memoryview)):
                _write_file(current, bytes(content))
            else:
                _write_file(current, Path(content).read_bytes())
        if path.is_dir():
            _copy_preserved(path, temp, {Path(n).as_posix() for n in extra_items}, replaced)
        current = temp / PROJECT_FILE
        _write_file(current, project_bytes)  # last: a folder with project.json is complete
        _fsync_dir(temp / MASK_DIR)
        _fsync_dir(temp)
        current = path
        _swap_into_place(temp, path)
    except OSError as err:
        shutil.rmtree(temp, ignore_errors=True)
        raise ProjectIOError(
            f"cannot save project {path}: writing {current} failed: {describe_write_error(err)}"
        ) from err
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    finally:
        _active_temps.discard(str(temp))
    return path


def _swap_into_place(temp: Path, path: Path) -> None:
    if not path.exists():
        os.rename(temp, path)
        _fsync_dir(path.parent)
        return
    old = _temp_name(path, _OLD_TAG)
    _active_temps.add(str(old))
    try:
        os.rename(path, old)
        crash_point("save:old")
        try:
            os.rename(temp, path)
        except BaseException:
            os.rename(old, path)
            raise
        _fsync_dir(path.parent)
        crash_point("save:new")
        _remove_tree(old, path)
    finally:
        _active_temps.discard(str(old))


# ---------------------------------------------------------------------------- loading
def _decode_masks(
    data: bytes | Path, obj_id: int, shape: tuple[int, int], source: Path
) -> dict[int, CompressedMask]:
    try:
        with np.load(data, allow_pickle=False) as archive:
            frames = archive["frames"]
            bboxes = archive["bboxes"]
            areas = archive["areas"]
            offsets = archive["offsets"]
            payload = archive["data"].tobytes()
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise ProjectIOError(f"mask file {source} is unreadable or corrupt: {err}") from None
    if not (len(frames) == len(bboxes) == len(areas) == len(offsets) - 1):
        raise ProjectIOError(f"mask file {source} is corrupt: array lengths disagree")
    masks = {}
    for i, frame in enumerate(frames.tolist()):
        bbox = tuple(int(v) for v in bboxes[i])
        chunk = payload[int(offsets[i]) : int(offsets[i + 1])]
        packed = CompressedMask(
            shape=shape, bbox=None if bbox[0] < 0 else bbox, data=chunk, area=int(areas[i])
        )
        if packed.bbox is not None:
            y0, x0, y1, x1 = packed.bbox
            if not (0 <= y0 < y1 <= shape[0] and 0 <= x0 < x1 <= shape[1]):
                raise ProjectIOError(
                    f"mask file {source} is corrupt: frame {frame} box {packed.bbox} lies outside "
                    f"the {shape[0]}x{shape[1]} frame"
                )
            try:  # decompressing is cheap (~10 us) and catches a damaged payload at load time
                expected = ((y1 - y0) * (x1 - x0) + 7) // 8
                if len(zlib.decompress(chunk)) != expected:
                    raise zlib.error("wrong payload length")
            except zlib.error as err:
                raise ProjectIOError(
                    f"mask file {source} is corrupt: object {obj_id} frame {frame}: {err}"
                ) from None
        masks[frame] = packed
    return masks


def _hotspot_from(record: dict | None) -> Hotspot | None:
    if record is None:
        return None
    return Hotspot(record["x"], record["y"], record.get("visible", True))


def _resolve_video(record: dict | None, project_dir: Path) -> str | None:
    if not record:
        return None
    relative = record.get("relative")
    if relative:
        candidate = (project_dir / relative).resolve()
        if candidate.exists():
            return str(candidate)
    return record.get("path")


def load_project(path: str | os.PathLike) -> tuple[AnnotationStore, dict[str, Any]]:
    """Load a project folder; returns ``(store, meta)`` with an empty undo history.

    ``meta`` keys: ``path``, ``version``, ``app_version``, ``saved_at``, ``video_path`` (resolved,
    relative location preferred when it exists; None if the project has no video), ``extra``.
    """
    path = Path(path)
    try:
        _recover_interrupted_swap(path)
    except OSError:
        pass
    project_file = path / PROJECT_FILE
    if not path.is_dir():
        raise ProjectIOError(f"no project folder at {path}")
    try:
        text = project_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectIOError(f"{path} is not a napari-hotspot project: {project_file} is missing") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProjectIOError(f"cannot read {project_file}: {err}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ProjectIOError(
            f"{project_file} is corrupt (invalid JSON at line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ProjectIOError(f"{project_file} is not a napari-hotspot project file")
    version = document.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ProjectIOError(
            f"{project_file} has format version {version!r}; this napari-hotspot reads up to "
            f"version {FORMAT_VERSION} (update napari-hotspot)"
        )
    try:
        store = _build_store(document, path, project_file)
    except ProjectIOError:
        raise
    except (KeyError, TypeError, ValueError, AnnotationError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
        raise ProjectIOError(f"{project_file} is corrupt: {detail}") from None
    extra = document.get("extra") or {}
    states, problems = load_adaptation_states(path, extra, store)
    if problems:
        warnings.warn(adaptation_warning(path, problems), stacklevel=2)
    meta = {
        "path": str(path),
        "version": version,
        "app_version": document.get("app_version"),
        "saved_at": document.get("saved_at"),
        "video_path": _resolve_video(document.get("video"), path),
        "extra": extra,
        "adaptation": states,
        "adaptation_problems": problems,
    }
    return store, meta


def load_project_quietly(path: str | os.PathLike) -> tuple[AnnotationStore, dict[str, Any]]:
    """``load_project`` without its warning about unusable adapted trackers: the dock reports those
    once, when its session restores them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_project(path)


def adaptation_warning(path: Path, problems: list[str]) -> str:
    """The one warning for adapted trackers a project cannot restore (the loader's and the dock's)."""
    return (f"project {path}: cannot restore the adapted tracker of {'; '.join(problems)}. "
            f"{'That object uses' if len(problems) == 1 else 'Those objects use'} the base model (annotations "
            f"are intact; Adapt now learns again); the next save drops the unusable file.")


def load_adaptation_states(path: Path, extra: Any, store: AnnotationStore) -> tuple[dict[int, dict], list[str]]:
    """Read and check the adapted tracker states the project lists (``extra[WIDGET_EXTRA_KEY]["adaptation"]``).

    Returns ``({object id: state dict}, problems)``: a missing, unreadable or malformed file is a
    problem (that object keeps the base model), never an error; objects deleted before the save are
    skipped. Whether a state fits the tracker is checked when a session loads it."""
    records = (extra.get(WIDGET_EXTRA_KEY) or {}).get("adaptation") if isinstance(extra, dict) else None
    if not isinstance(records, dict) or not records:
        return {}, []
    import torch  # only for projects that hold adapted trackers

    states: dict[int, dict] = {}
    problems: list[str] = []
    for key, record in sorted(records.items()):
        name = str(record.get("file")) if isinstance(record, dict) and record.get("file") else None
        if not str(key).isdigit() or not store.has_object(int(key)):
            continue  # an object deleted before the save
        oid = int(key)
        label = f"{store.get_object(oid).name} ({name or 'no file recorded'})"
        if name is None:
            problems.append(f"{label}: the project lists no weight file")
            continue
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            problems.append(f"{label}: the file name points outside the project")
            continue
        try:
            state = torch.load(path / relative, map_location="cpu", weights_only=True)
            if damaged_zip_member(path / relative):  # zeros from a bad copy load as garbage weights
                problems.append(f"{label}: the file is damaged (a checksum fails)")
                continue
        except FileNotFoundError:
            problems.append(f"{label}: the file is missing")
            continue
        except Exception as err:  # noqa: BLE001 (pickle, zip and I/O errors alike: the file is unusable)
            problems.append(f"{label}: the file is unreadable or corrupt ({type(err).__name__})")
            continue
        model = state.get("model") if isinstance(state, dict) else None
        frames = state.get("frames", []) if isinstance(state, dict) else None
        if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()) or \
                not isinstance(frames, (list, tuple)) or not all(isinstance(t, int) for t in frames):
            problems.append(f"{label}: the file is unreadable or corrupt (it holds no adapted tracker state)")
            continue
        states[oid] = state
    return states, problems


def _build_store(document: dict, path: Path, project_file: Path) -> AnnotationStore:
    store = AnnotationStore(document["num_frames"], document["height"], document["width"])
    shape = (store.height, store.width)
    with store.batch("load project"):
        for obj in document["objects"]:
            store.add_object(name=obj["name"], color=tuple(obj["color"]), obj_id=obj["id"])
        masks: dict[int, dict[int, CompressedMask]] = {}
        for key, name in document.get("mask_files", {}).items():
            obj_id = int(key)
            mask_path = path / name
            if not mask_path.is_file():
                raise ProjectIOError(f"{project_file} lists mask file {mask_path}, which is missing")
            masks[obj_id] = _decode_masks(mask_path, obj_id, shape, mask_path)
        for record in document["frames"]:
            obj_id, frame = record["object_id"], record["frame"]
            packed = None
            if record["has_mask"]:
                packed = masks.get(obj_id, {}).pop(frame, None)
                if packed is None:
                    raise ProjectIOError(
                        f"{project_file}: object {obj_id} frame {frame} has a mask but its mask "
                        f"file holds none for that frame"
                    )
            store.set_frame(
                obj_id,
                frame,
                mask=packed,
                hotspot=_hotspot_from(record["hotspot"]),
                confidence=record["confidence"],
                provenance=record["provenance"],
                annotator=record["annotator"],
                timestamp=record["timestamp"],
            )
        for record in document.get("annotator_hotspots", []):
            store.set_annotator_hotspot(
                record["annotator"],
                record["object_id"],
                record["frame"],
                _hotspot_from(record["hotspot"]),
                provenance=record["provenance"],
                seconds_spent=record["seconds_spent"],
                timestamp=record["timestamp"],
            )
    store.clear_history()
    store.revision = 0
    return store


# ---------------------------------------------------------------------------- autosave
class Autosaver:
    """Save a store to a project folder when it changed and ``interval_s`` has passed (no Qt).

    Call ``maybe_save()`` from any timer; ``save_now()`` saves unconditionally. ``extra`` and
    ``extra_files`` may be a dict or a zero-argument callable returning one (called at each save);
    ``replace_dirs`` is passed to ``save_project``. ``mark_dirty()`` asks for a save when state kept
    outside the store (e.g. adapted model weights) changed.
    """

    def __init__(
        self,
        store: AnnotationStore,
        path: str | os.PathLike,
        interval_s: float = 120.0,
        *,
        video_source: Any = None,
        extra: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
        extra_files: Mapping[str, bytes | str | os.PathLike]
        | Callable[[], Mapping[str, bytes | str | os.PathLike]] | None = None,
        replace_dirs: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s}")
        self.store = store
        self.path = Path(path)
        self.interval_s = float(interval_s)
        self.video_source = video_source
        self.extra = extra
        self.extra_files = extra_files
        self.replace_dirs = tuple(replace_dirs)
        self._clock = clock
        self._outside_changes = False
        self._saved_revision = store.revision
        self._last_attempt = clock()
        self.last_saved_at: float | None = None  # clock time of the last successful save
        self.last_error: ProjectIOError | None = None

    @property
    def dirty(self) -> bool:
        """True when the store changed since the last successful save (or since creation), or
        ``mark_dirty`` was called since."""
        return self._outside_changes or self.store.revision != self._saved_revision

    def mark_dirty(self) -> None:
        """Something saved with the project but kept outside the store changed: save it next time."""
        self._outside_changes = True

    def maybe_save(self, now: float | None = None) -> bool:
        """Save if dirty and the interval has elapsed; returns True when it saved.

        A failed save raises ProjectIOError, stays dirty, and is retried after another interval.
        """
        now = self._clock() if now is None else now
        if not self.dirty or now - self._last_attempt < self.interval_s:
            return False
        self._last_attempt = now
        self.save_now()
        return True

    def save_now(self) -> Path:
        revision, outside = self.store.revision, self._outside_changes
        self._outside_changes = False  # a change made while saving marks it again
        extra = self.extra() if callable(self.extra) else self.extra
        files = self.extra_files() if callable(self.extra_files) else self.extra_files
        try:
            saved = save_project(self.store, self.path, video_source=self.video_source, extra=extra,
                                 extra_files=files, replace_dirs=self.replace_dirs)
        except BaseException as err:
            self._outside_changes = self._outside_changes or outside
            if isinstance(err, ProjectIOError):
                self.last_error = err
            raise
        self._saved_revision = revision
        self.last_saved_at = self._clock()
        self.last_error = None
        return saved
