"""A folder of batch results, as napari (or anyone) opens it: the finished project folders it holds.

Each finished video is a project folder (`annotations.project` format: `load_project(path)` gives
its AnnotationStore) with `davis/` PNGs, `hotspots.csv` and the completion marker. Temporary
folders of an unfinished run and folders without a valid marker are not results and are left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from napari_hotspot.batch.runner import REPORT_FILE, read_report
from napari_hotspot.batch.worker import DAVIS_DIR, HOTSPOTS_CSV, read_marker
from napari_hotspot.errors import ProjectIOError


@dataclass(frozen=True)
class BatchProject:
    """One finished video of a batch folder."""

    name: str
    path: Path  # the project folder: annotations.project.load_project(path)
    source: str  # the video as the manifest wrote it
    video_path: Path  # the video, absolute
    prompt: str
    frame: int
    frames: int
    davis_dir: Path
    hotspots_csv: Path


def _video_path(marker: dict, project_dir: Path) -> Path:
    """The video: relative to the project when it is there (the folders were moved together), else absolute."""
    relative = marker.get("source_relative")
    if relative:
        candidate = (project_dir / relative).resolve()
        if candidate.exists():
            return candidate
    return Path(marker.get("source_path", ""))


def is_batch_results_dir(path: str | os.PathLike) -> bool:
    """True for a folder written by `napari-hotspot batch` (it holds batch_report.csv or a finished
    batch project folder)."""
    folder = Path(path)
    if not folder.is_dir():
        return False
    if (folder / REPORT_FILE).is_file():
        return True
    try:
        return any(read_marker(child) is not None for child in folder.iterdir() if child.is_dir())
    except OSError:
        return False


def list_batch_projects(directory: str | os.PathLike) -> list[BatchProject]:
    """The finished project folders of a batch output folder, sorted by name.

    Raises ProjectIOError when `directory` is not a folder or holds no batch results.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ProjectIOError(f"batch results folder {folder} does not exist or is not a folder")
    if not is_batch_results_dir(folder):
        raise ProjectIOError(f"{folder} holds no napari-hotspot batch results (no {REPORT_FILE}, no finished "
                             f"project folders)")
    projects = []
    try:
        children = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as err:
        raise ProjectIOError(f"cannot list batch results folder {folder}: {err.strerror or err}") from err
    for child in children:
        if child.name.startswith(".") or not child.is_dir():
            continue  # temporary folders of a run in progress or one that crashed
        marker = read_marker(child)
        if marker is None:
            continue
        projects.append(
            BatchProject(
                name=child.name,
                path=child,
                source=str(marker.get("source", "")),
                video_path=_video_path(marker, child),
                prompt=str(marker.get("prompt", "")),
                frame=int(marker.get("frame", 0)),
                frames=int(marker.get("frames", 0)),
                davis_dir=child / marker.get("davis", DAVIS_DIR),
                hotspots_csv=child / marker.get("hotspots", HOTSPOTS_CSV),
            )
        )
    return projects


def batch_failures(directory: str | os.PathLike) -> list[dict]:
    """Rows of the folder's batch report whose status is failed (source, error...); [] without a report."""
    report = Path(directory) / REPORT_FILE
    if not report.is_file():
        return []
    return [row for row in read_report(report) if row["status"] == "failed"]
