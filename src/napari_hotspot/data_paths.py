"""Where the development data lives: $NAPARI_HOTSPOT_DATA, else ../shared/data beside the repository,
and the folders of a DAVIS-layout root (480p for the benchmark's folders, 360p for the training copy)."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    return Path(os.environ.get("NAPARI_HOTSPOT_DATA", _REPO.parent / "shared" / "data"))


def davis_root() -> Path:
    """The 12 DAVIS-2016 validation sequences the project is scored on (the test set)."""
    return data_root() / "davis2016-dev"


def davis_train_root() -> Path:
    """The 30 DAVIS-2016 training sequences (640x360), the data every model trains on."""
    return data_root() / "davis2016-train"


def duts_root() -> Path:
    """499 DUTS-TR still images with salient-object masks (images/*.jpg, masks/*.png)."""
    return data_root() / "duts-tr-subset"


def davis_resolution(root: Path) -> str:
    """The resolution folder of a DAVIS-layout root: ``480p`` where it exists (the benchmark's own),
    else the only folder under ``Annotations`` (``360p`` in davis2016-train)."""
    annotations = Path(root) / "Annotations"
    if (annotations / "480p").is_dir() or not annotations.is_dir():
        return "480p"
    found = sorted(p.name for p in annotations.iterdir() if p.is_dir())
    if len(found) != 1:
        raise FileNotFoundError(f"{annotations} holds {', '.join(found) or 'no folder'}: expected one resolution "
                                "folder (480p, or e.g. 360p)")
    return found[0]


def davis_frames_dir(root: Path, sequence: str = "") -> Path:
    """``ROOT/JPEGImages/<resolution>/<sequence>`` (the resolution folder alone without a sequence)."""
    path = Path(root) / "JPEGImages" / davis_resolution(root)
    return path / sequence if sequence else path


def davis_annotations_dir(root: Path, sequence: str = "") -> Path:
    """``ROOT/Annotations/<resolution>/<sequence>`` (the resolution folder alone without a sequence)."""
    path = Path(root) / "Annotations" / davis_resolution(root)
    return path / sequence if sequence else path
