"""Fixtures of the widget tests. Each module defines its own `sample` (video size and length)."""

from __future__ import annotations

import pytest

from napari_hotspot._napari.controller import shared_models
from napari_hotspot.sample_data import write_sample


@pytest.fixture(scope="module")
def models():
    """The bundle the dock widgets load themselves, so tests and widgets share one."""
    return shared_models()


@pytest.fixture(scope="module")
def sample_folder(tmp_path_factory, sample):
    """The module's sample video written as a folder of frames."""
    return write_sample(tmp_path_factory.mktemp("video"), "folder", sample=sample)
