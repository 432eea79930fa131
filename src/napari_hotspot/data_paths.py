"""Where the development data lives: $NAPARI_HOTSPOT_DATA, else ../shared/data beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    return Path(os.environ.get("NAPARI_HOTSPOT_DATA", _REPO.parent / "shared" / "data"))


def davis_root() -> Path:
    """The DAVIS-2016 development sequences (DAVIS layout)."""
    return data_root() / "davis2016-dev"
