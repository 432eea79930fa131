"""Shared fixtures: the sample video, the shipped models, and the DAVIS data (skipped when absent)."""

from __future__ import annotations

import pytest

from napari_hotspot.data_paths import davis_root


@pytest.fixture(scope="session")
def sample():
    from napari_hotspot.sample_data import make_sample_video

    return make_sample_video()


@pytest.fixture(scope="session")
def models():
    from napari_hotspot.models.weights import ModelBundle

    return ModelBundle.load()


@pytest.fixture(scope="session")
def davis():
    root = davis_root()
    if not (root / "JPEGImages" / "480p").is_dir():
        pytest.skip(f"DAVIS-2016 data not found at {root} (set NAPARI_HOTSPOT_DATA)")
    return root
