"""The one-click frame benchmark (benchmarks/bench_noc.py --max-clicks 1) on real DAVIS frames."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture()
def bench_noc(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("bench_noc")


@pytest.mark.data
def test_one_click_iou_with_a_swapped_tracker_and_the_seen_warning(davis, bench_noc, tmp_path):
    from napari_hotspot.models.weights import DEFAULT_WEIGHTS

    out = tmp_path / "noc.md"
    bench_noc.main(["--sequences", "car-shadow", "--every", "30", "--max-clicks", "1",
                    "--tracker", str(DEFAULT_WEIGHTS), "--out", str(out)])
    text = out.read_text()
    # The shipped weights trained on car-shadow: the report says so (once per weights file given).
    assert text.startswith("**Warning: these weights trained on car-shadow")
    assert text.count("Warning:") == 2
    row = next(line for line in text.splitlines() if line.startswith("| car-shadow"))
    frames, iou = row.split("|")[2:4]
    assert int(frames) == 2 and 0.5 < float(iou) <= 1.0  # a seen object, one click: mostly right
