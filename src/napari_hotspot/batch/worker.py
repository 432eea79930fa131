"""One batch video, as a Dask task: prompt, track both ways, write a complete project folder atomically.

Runs inside a worker process. The models are loaded once per process and kept in a module global;
frames are decoded lazily and features kept in a small cache, so a worker's memory stays bounded
whatever the video's length. Outputs are written to a hidden temporary folder beside the final one
(same filesystem), the completion marker last, then the folder is renamed into place: a folder under
the output directory with a valid marker is always complete, and a crash at any point leaves only a
temporary folder that the next run deletes.

Bad input (missing or corrupt video, bad prompt) is an expected outcome: it becomes a `failed`
result. Any other exception propagates so Dask can retry the task (`retries=`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from napari_hotspot.annotations.io_davis import export_davis_png
from napari_hotspot.annotations.io_hotspots import export_hotspots_csv
from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.annotations.project import PROJECT_FILE, save_project
from napari_hotspot.batch.manifest import BatchItem
from napari_hotspot.errors import HotspotError, ProjectIOError, PromptError
from napari_hotspot.fileio import fsync_dir
from napari_hotspot.options import TrackingOptions

#: A batch's tracking when its caller names none: the command line's, without adaptation (reproducible on
#: any machine; `napari-hotspot batch` adapts by default, as `track` does).
BATCH_OPTIONS = TrackingOptions(adapt_seconds=0.0)

MARKER_FILE = "batch_complete.json"
MARKER_FORMAT = "napari-hotspot-batch-result"
DAVIS_DIR = "davis"
HOTSPOTS_CSV = "hotspots.csv"
TEMP_PREFIX = ".batch-tmp-"
OLD_PREFIX = ".batch-old-"
OBJECT_ID = 1
#: Test-only: a path; the first task to reach the middle of a video creates it and kills its own
#: worker process (os._exit), as a crashed or OOM-killed worker would die.
KILL_ONCE_ENV = "NAPARI_HOTSPOT_BATCH_TEST_KILL_ONCE"

_SOURCE_CACHE_BYTES = 32 * 2**20
_FEATURE_CACHE_FRAMES = 16
_models_lock = threading.Lock()
_models: dict = {}  # (weights path, threads) -> ModelBundle, one per worker process


@dataclass
class VideoResult:
    """What happened to one video: status is done, failed or skipped."""

    source: str
    name: str
    status: str
    frames: int = 0
    seconds: float = 0.0
    error: str = ""


# ---------------------------------------------------------------------------- models
def worker_models(weights: str | None = None, threads: int = 1):
    """The process's ModelBundle (loaded on first use, then reused by every task in this process)."""
    import torch

    from napari_hotspot.models.weights import ModelBundle

    key = (str(weights) if weights else None, int(threads))
    with _models_lock:
        if key not in _models:
            torch.set_num_threads(int(threads))
            _models.clear()  # at most one model instance per process
            _models[key] = ModelBundle.load(Path(weights) if weights else None)
        return _models[key]


# ---------------------------------------------------------------------------- completion marker
def read_marker(project_dir: Path) -> dict | None:
    """The completion marker of a finished batch project folder, or None when absent/invalid."""
    try:
        marker = json.loads((Path(project_dir) / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT:
        return None
    if not (Path(project_dir) / PROJECT_FILE).is_file():
        return None
    return marker


def completed_result(item: BatchItem, out_dir: Path) -> VideoResult | None:
    """`skipped` when the video's folder is already complete for this very row, `failed` when it is
    complete for a different row (changed prompt), None when it must be (re)done."""
    final = Path(out_dir) / item.name
    marker = read_marker(final)
    if marker is None:
        return None
    if marker.get("fingerprint") != item.fingerprint:
        return VideoResult(  # no frames of its own: the folder's frames belong to the other row
            item.source, item.name, "failed", 0, 0.0,
            f"{final} holds a finished result made from a different manifest row ("
            f"{marker.get('prompt')} on frame {marker.get('frame')}, value {marker.get('value')!r}); "
            f"delete that folder to redo it, or use another --out",
        )
    return VideoResult(item.source, item.name, "skipped", int(marker.get("frames", 0)), 0.0, "")


# ---------------------------------------------------------------------------- prompts
def read_fixations(path: Path, frame: int, frame_size: tuple[int, int]) -> list[tuple[float, float]]:
    """Fixations (x, y) on `frame` from a gaze prompt file (``io_fixations.read_frame_fixations``, the
    reader of the tracking dock's gaze files too: columns ``frame`` or ``t`` (a frame index), ``x``, ``y``)."""
    from napari_hotspot.annotations.io_fixations import read_frame_fixations

    rows = read_frame_fixations(path).get(int(frame))
    if not rows:
        raise PromptError(f"fixation CSV {path} has no fixation on frame {frame}")
    return rows


def build_prompt(item: BatchItem, frame_size: tuple[int, int]):
    """The pipeline Prompt for a manifest row (reads the mask PNG / fixation CSV it names)."""
    from napari_hotspot.pipeline import Prompt
    from napari_hotspot.video.masks import read_prompt_mask

    if item.prompt == "mask":
        return Prompt("mask", item.frame, OBJECT_ID, mask=read_prompt_mask(item.value_path, frame_size))
    if item.prompt == "click":
        return Prompt("click", item.frame, OBJECT_ID, points=[item.point])
    if item.prompt == "box":
        return Prompt("box", item.frame, OBJECT_ID, box=item.box)
    if item.prompt == "gaze":
        return Prompt("gaze", item.frame, OBJECT_ID, gaze=read_fixations(item.value_path, item.frame, frame_size))
    return Prompt("auto", item.frame, OBJECT_ID)


# ---------------------------------------------------------------------------- tracking
def _hotspot(xy, height: int, width: int):
    if xy is None:
        return None
    x = min(max(float(xy[0]), -0.5), width - 0.5)  # the tracker may land a hair outside the image
    y = min(max(float(xy[1]), -0.5), height - 0.5)
    return (x, y)


def _confidence(value) -> float | None:
    value = float(value)
    return min(max(value, 0.0), 1.0) if math.isfinite(value) else None


def _maybe_die_for_test() -> None:
    marker = os.environ.get(KILL_ONCE_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os._exit(17)


def track_into_store(session, prompt, absent: tuple[int, ...] = ()) -> AnnotationStore:
    """Apply the prompt, mark the object absent on the `absent` frames (empty keyframes, as erasing it in
    the dock makes: tracking looks for it again past them), prepare the object as the session's
    options say (`HotspotSession.preflight`: a click's or box's mask completed, the tracker adapted to
    this video), propagate both ways, and collect masks and hotspots in an AnnotationStore."""
    H, W = session.frame_size
    store = AnnotationStore(session.num_frames, H, W)
    store.add_object(obj_id=OBJECT_ID)
    r = prompt.apply(session)
    for t in absent:
        try:
            session.mark_absent(t, OBJECT_ID)  # a frame off the video fails this video alone
        except PromptError as err:
            raise PromptError(f"the manifest's absent frame {t}: {err}") from None
        store.set_frame(OBJECT_ID, t, mask=np.zeros((H, W), bool), hotspot=None, confidence=1.0,
                        provenance=Provenance.KEYFRAME)
    # A given mask is the annotator's keyframe; a mask the model made from a click/box/gaze is not.
    provenance = Provenance.KEYFRAME if prompt.kind == "mask" else Provenance.AUTOMATIC
    for c in [r, *session.preflight([OBJECT_ID])]:  # a completed mask replaces the prompt's
        store.set_frame(OBJECT_ID, c.frame, mask=c.mask, hotspot=_hotspot(c.hotspot, H, W),
                        confidence=_confidence(c.confidence), provenance=provenance)
    halfway = session.num_frames // 2
    for n, tr in enumerate(session.propagate(direction="both"), start=1):
        store.set_frame(tr.object_id, tr.frame, mask=tr.mask, hotspot=_hotspot(tr.hotspot, H, W),
                        confidence=_confidence(tr.confidence), provenance=Provenance.PROPAGATED)
        if n == halfway:
            _maybe_die_for_test()
    store.clear_history()
    return store


# ---------------------------------------------------------------------------- writing
def _write_marker(folder: Path, content: dict) -> None:
    with open(folder / MARKER_FILE, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())


def _is_replaceable(final: Path) -> bool:
    """An existing folder at the final place may be replaced only if it is empty or an unfinished
    batch project (its project.json carries our `batch` metadata but it has no valid marker)."""
    if not final.is_dir():
        return False
    try:
        if not any(final.iterdir()):
            return True
        document = json.loads((final / PROJECT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "batch" in (document.get("extra") or {})


def move_into_place(temp: Path, final: Path) -> bool:
    """Rename the finished temporary folder to `final`; False (temp removed) if another attempt of
    the same video got there first."""
    if read_marker(final) is not None:
        shutil.rmtree(temp, ignore_errors=True)
        return False
    if final.exists() or final.is_symlink():
        if not _is_replaceable(final):
            raise ProjectIOError(
                f"{final} already exists and is not a batch result of this manifest; move it away or use another --out"
            )
        old = final.parent / f"{OLD_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
        os.rename(temp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        try:
            os.rename(temp, final)
        except OSError:
            if read_marker(final) is not None:  # a concurrent attempt finished in between
                shutil.rmtree(temp, ignore_errors=True)
                return False
            raise
    fsync_dir(final.parent)
    return True


def _relative_to(path: Path, folder: Path) -> str | None:
    try:
        return os.path.relpath(path, folder)
    except ValueError:  # another drive (Windows)
        return None


def write_outputs(store: AnnotationStore, item: BatchItem, source, out_dir: Path, frames: int, seconds: float,
                  settings: dict | None = None) -> Path:
    """Write the project folder, DAVIS PNGs, hotspot CSV and (last) the marker, then move it in."""
    out_dir = Path(out_dir)
    final = out_dir / item.name
    temp = out_dir / f"{TEMP_PREFIX}{item.name}-{uuid.uuid4().hex[:8]}"  # same depth: relative paths hold
    extra = {"batch": item.describe()}
    try:
        save_project(store, temp, video_source=item.source_path, extra=extra)
        export_davis_png(store, temp / DAVIS_DIR, frame_names=list(source.frame_names))
        export_hotspots_csv(store, temp / HOTSPOTS_CSV)
        fsync_dir(temp / DAVIS_DIR)
        marker = {"format": MARKER_FORMAT, "version": 1, **item.describe(),
                  "source_relative": _relative_to(item.source_path, final), "frames": frames,
                  "seconds": round(seconds, 3), "finished_at": time.time(),
                  "settings": dict(settings or {}),
                  "davis": DAVIS_DIR, "hotspots": HOTSPOTS_CSV}
        _write_marker(temp, marker)  # last: a folder with a valid marker is complete
        fsync_dir(temp)
        move_into_place(temp, final)
    except OSError as err:
        raise ProjectIOError(f"cannot write the results of {item.source} to {final}: {err.strerror or err}") from err
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)
    return final


def remove_temporaries(out_dir: Path) -> list[Path]:
    """Delete temporary folders a crashed or interrupted run left in the output folder."""
    removed = []
    try:
        entries = list(Path(out_dir).iterdir())
    except OSError:
        return removed
    for entry in entries:
        # save_project's own temporary sibling of a temp folder is ".{name}.saving-...".
        if entry.name.startswith((TEMP_PREFIX, OLD_PREFIX, "." + TEMP_PREFIX)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


# ---------------------------------------------------------------------------- the task
def process_video(item: BatchItem, out_dir: str | os.PathLike, weights: str | None = None,
                  options: TrackingOptions | None = None, threads: int = 1,
                  accept_truncated: bool = False) -> VideoResult:
    """Pre-annotate one video into `out_dir/<item.name>/`; idempotent (a complete folder is skipped).

    `options`: how to track (None: `BATCH_OPTIONS`); adaptation (`adapt_seconds` > 0, at most
    `adapt_steps` steps) fine-tunes the tracker to the video first, and its result repeats wherever those
    steps fit in the time, and with adapt_seconds=0 anywhere; `reacquire` applies past the row's absent
    frames. A truncated video fails unless `accept_truncated` (`video.require_complete`)."""
    from napari_hotspot.session import HotspotSession
    from napari_hotspot.video import open_source, require_complete

    out_dir = Path(out_dir)
    done = completed_result(item, out_dir)
    if done is not None:
        return done
    t0 = time.perf_counter()
    source = None
    try:
        models = worker_models(weights, threads)
        source = open_source(item.source_path, cache_bytes=_SOURCE_CACHE_BYTES)
        require_complete(source, accept_truncated)
        options = options or BATCH_OPTIONS
        session = HotspotSession(source, models, options=options, feature_cache_frames=_FEATURE_CACHE_FRAMES)
        prompt = build_prompt(item, session.frame_size)
        store = track_into_store(session, prompt, item.absent)
        seconds = time.perf_counter() - t0
        write_outputs(store, item, source, out_dir, session.num_frames, seconds,
                      {"weights": weights, **asdict(options)})
        return VideoResult(item.source, item.name, "done", session.num_frames, time.perf_counter() - t0)
    except HotspotError as err:
        return VideoResult(item.source, item.name, "failed", 0, time.perf_counter() - t0, str(err))
    finally:
        if source is not None:
            source.close()

