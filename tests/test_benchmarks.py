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
    from napari_hotspot.models.training.train import save_weights
    from napari_hotspot.models.weights import ModelBundle

    # The shipped heads, in a file whose training report says they trained on car-shadow (the shipped
    # file itself never saw the test sequences: it is scored without a warning).
    shipped = ModelBundle.load()
    seen = tmp_path / "seen.pt"
    save_weights(seen, {"egnet": shipped.egnet, "gaze2mask": shipped.gaze2mask, "tracker": shipped.tracker},
                 {"train_sequences": ["car-shadow"]})
    out = tmp_path / "noc.md"
    bench_noc.main(["--sequences", "car-shadow", "--every", "30", "--max-clicks", "1",
                    "--tracker", str(seen), "--out", str(out)])
    text = out.read_text()
    # The swapped-in tracker trained on car-shadow: the report says so, once for that file only.
    assert text.startswith("**Warning: these weights trained on car-shadow")
    assert text.count("Warning:") == 1
    row = next(line for line in text.splitlines() if line.startswith("| car-shadow"))
    frames, iou = row.split("|")[2:4]
    assert int(frames) == 2 and 0.5 < float(iou) <= 1.0  # one click on a car: mostly right
