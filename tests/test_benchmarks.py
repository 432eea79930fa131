"""The one-click frame benchmark (benchmarks/bench_noc.py --max-clicks 1) on real DAVIS frames."""

from __future__ import annotations

import importlib
from pathlib import Path

import cv2
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


@pytest.mark.data
def test_adaptation_benchmarks_run_through_the_current_session_api(davis, monkeypatch, tmp_path):
    """bench_adapt.py and ablate_adaptation.py drive track_video and the session through its options;
    a change of that API once broke both unnoticed. One short sequence, a tiny budget."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench_adapt = importlib.import_module("bench_adapt")
    out = tmp_path / "adapt.md"
    bench_adapt.main(["--sequences", "car-shadow", "--budget", "0.5", "--out", str(out)])
    row = next(line for line in out.read_text().splitlines() if line.startswith("| car-shadow"))
    cells = [c.strip() for c in row.split("|")[2:-1]]
    assert float(cells[2]) > 0.5 and float(cells[3]) > 0.5  # J before and after: the car is tracked
    assert float(cells[4]) > 0 and int(cells[6]) >= 1  # it adapted: some time, at least one step
    ablate = importlib.import_module("ablate_adaptation")
    out = tmp_path / "ablate.md"
    ablate.main(["--sequences", "car-shadow", "--steps", "2", "--parts", "late", "--out", str(out)])
    row = next(line for line in out.read_text().splitlines() if line.startswith("| late | 2 |"))
    assert float(row.split("|")[3]) > 0.5


def test_video_open_benchmark_on_a_video_shorter_than_its_backward_window(monkeypatch, tmp_path, capsys):
    """bench_video_open.py reads the last 300 frames backward; a shorter video is read down to frame 0
    (it once asked for stop=-1 and failed)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("bench_video_open")
    bench.main(["--frames", "12", "--width", "96", "--height", "64", "--samples", "3", "--video", str(tmp_path / "v.mp4")])
    assert "backward iter_frames (last 12 frames, step -1)" in capsys.readouterr().out


def test_eval_rule_refuses_a_name_the_session_does_not_have(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    eval_rule = importlib.import_module("eval_rule")
    with pytest.raises(SystemExit, match="no constant 'REFINE_PASES'"):
        eval_rule.main(["REFINE_PASES=1", "--", "--help"])


@pytest.mark.data
def test_box_margin_study_scores_true_and_drawn_boxes(davis, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    study = importlib.import_module("box_margin_study")
    import napari_hotspot.session as session_module

    shipped = session_module.BOX_MARGIN
    study.main(["--davis-root", str(davis), "--sequences", "car-shadow", "--margins", "0.02", "0",
                "--every", "30", "--draws", "1"])
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| true |")
            or line.startswith("| drawn |")]
    assert len(rows) == 4 and all(int(r[3]) == 2 for r in rows)  # frames 0 and 30, each kind and margin
    assert all(float(r[4]) > 0.6 for r in rows)  # a box around a car: mostly right
    assert session_module.BOX_MARGIN == shipped  # the margin it set per prompt is given back


def test_eval_rule_refuses_a_constant_it_cannot_parse(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    eval_rule = importlib.import_module("eval_rule")
    with pytest.raises(SystemExit, match="SPARSE_SOURCES is a tuple"):
        eval_rule.main(["SPARSE_SOURCES=click", "--", "--help"])
    import napari_hotspot.session as session_module

    monkeypatch.setattr(session_module, "SOME_SWITCH", True, raising=False)  # bool("0") would be True
    with pytest.raises(SystemExit, match="SOME_SWITCH is a bool"):
        eval_rule.main(["SOME_SWITCH=0", "--", "--help"])


def test_recovery_benchmark_cuts_parts_and_scores_the_frames_after_the_loss(monkeypatch):
    import numpy as np
    import torch

    from napari_hotspot.models.backbone import FrameFeatures
    from napari_hotspot.models.heads import WCSTracker
    from napari_hotspot.models.training.data import EncodedSequence

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench = importlib.import_module("bench_recovery")
    mask = np.zeros((64, 96), bool)
    mask[10:50, 20:80] = True
    rng = np.random.default_rng(0)
    lines = [bench.fragment_cut(mask, rng) for _ in range(10)]
    for line in lines:
        part = bench.cut(mask, *line)
        assert 0.2 <= part.sum() / mask.sum() <= 0.5 and not (part & ~mask).any()
    assert bench.fragment_cut(np.zeros_like(mask), rng) is None  # no object, no fragment
    # A short synthetic sequence: the harmed run scores the AFTER frames after the lost stretch.
    torch.manual_seed(0)
    n = 20
    feats = [[FrameFeatures(torch.randn(1, 24, 16, 24), torch.randn(1, 40, 8, 12), torch.randn(1, 112, 4, 6),
                            torch.randn(1, 320, 2, 3))] for _ in range(n)]
    seq = EncodedSequence("s", (64, 96), feats, np.stack([[mask]] * n), np.tile(np.float32([[1, 0, 0], [0, 1, 0]]), (n, 1, 1, 1)))
    tracker = WCSTracker().eval()
    js0, _ = bench.run(tracker, seq, 5, None, loss_frames=3)
    js1, covered = bench.run(tracker, seq, 5, lines[0], loss_frames=3)
    assert len(js0) == len(js1) == bench.AFTER and 0.0 <= covered <= 1.0


@pytest.mark.data
def test_edge_snap_study_scores_each_variant_from_one_sweep(davis, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    study = importlib.import_module("edge_snap_study")
    study.main(["--davis-root", str(davis), "--weights", str(BENCHMARKS / "weights" / "wcs_lite0_split.pt"),
                "--sequences", "car-shadow", "--variants", "base", "g3:1e-3", "s3:1e-3", "median"])
    rows = {line.split("|")[1].strip(): [float(x) for x in line.split("|")[2:4]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "variant" not in line}
    assert set(rows) == {"base", "g3:1e-3", "s3:1e-3", "median"}
    assert all(0.7 < j <= 1.0 and 0.5 < f <= 1.0 for j, f in rows.values())  # a car on a road: mostly right
    assert rows["g3:1e-3"] != rows["base"]  # the snapped masks are scored, not the plain ones again


def test_edge_snap_study_scores_an_upscaled_copy_with_the_sessions_subsample(davis, monkeypatch, capsys, tmp_path):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    study = importlib.import_module("edge_snap_study")
    study.main(["--davis-root", str(davis), "--weights", str(BENCHMARKS / "weights" / "wcs_lite0_split.pt"),
                "--sequences", "car-shadow", "--upscale", "2", "--upscaled-root", str(tmp_path),
                "--variants", "g3:1e-3", "f3:1e-3"])
    frames = sorted((tmp_path / "x2" / "JPEGImages" / "x2" / "car-shadow").glob("*.jpg"))
    assert frames and cv2.imread(str(frames[0])).shape[:2] == (960, 1708)
    rows = {line.split("|")[1].strip(): [float(x) for x in line.split("|")[2:4]]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "variant" not in line}
    assert set(rows) == {"g3:1e-3", "f3:1e-3"}
    assert all(0.7 < j <= 1.0 for j, _f in rows.values())
    assert rows["f3:1e-3"] != rows["g3:1e-3"]  # at 960p the session's rule shrinks the frame 3 times


def test_reacquire_study_scores_cut_aways_and_records_the_search_evidence(davis, monkeypatch, capsys, tmp_path):
    """Off, the frames back score 0; on, the object is found again and the other video gets no mask. The
    evidence mode records every search answer past the absence, away and back."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    study = importlib.import_module("reacquire_study")
    weights = str(BENCHMARKS / "weights" / "wcs_lite0_split.pt")
    study.main(["--davis-root", str(davis), "--weights", weights, "--sequences", "car-shadow", "dog",
                "--away", "6", "--variants", "off", "on", "--threads", "2"])
    rows = {line.split("|")[1].strip(): line.split("|")[2:] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| ") and "variant" not in line}
    assert set(rows) == {"off", "on"}
    assert float(rows["off"][2]) == 0.0 and float(rows["on"][2]) > 0.5  # back J
    assert rows["on"][0].strip().startswith("0 (10)")  # no cut-away frame (5 of each video) given a mask
    out = tmp_path / "evidence.json"
    study.main(["--davis-root", str(davis), "--weights", weights, "--sequences", "car-shadow",
                "--evidence", "2", "--threads", "2", "--out", str(out)])
    import json

    from napari_hotspot import session

    assert session.REACQUIRE_FRAMES == 2  # the study's setting is the session's again
    kinds = [row[0] for row in json.loads(out.read_text())["car-shadow"]]
    assert kinds.count("away") == 2 * 11 - 1 and kinds.count("back") > 10 and "before" in kinds


def test_step_profile_times_slimmer_decoders_and_refuses_a_bad_width(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    profile = importlib.import_module("profile_track_step")
    profile.main(["--widths", "32/16"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.endswith(" |") and ", one thread |" in line]
    # The shipped decoder and the slimmer one, each with its size and a time.
    assert [r.split(" (")[0] for r in rows] == ["| tracker decoder 64/32", "| tracker decoder 32/16"]
    assert "shipped, 0.34 M parameters" in rows[0] and "random weights, 0.13 M parameters" in rows[1]
    assert all(float(r.rsplit("|", 2)[1]) > 0 for r in rows)
    with pytest.raises(SystemExit):
        profile.main(["--widths", "wide"])
    assert "MID/FINE" in capsys.readouterr().err


def test_hotspot_smoothing_study_steadies_a_jittering_hotspot_and_keeps_it_on_the_object(monkeypatch, tmp_path, capsys):
    """A square moving right with a hotspot jumping between its left and right thirds: smoothing its offset
    from the mask's centre lowers the jitter, alpha 1 is the track as it was, and every point stays inside."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    study = importlib.import_module("hotspot_smoothing_study")
    import numpy as np

    from napari_hotspot.evaluation.hotspot import temporal_jitter

    root, pred = tmp_path / "davis", tmp_path / "run" / "predictions" / "square"
    (root / "Annotations" / "480p" / "square").mkdir(parents=True)
    pred.mkdir(parents=True)
    rows = ["frame,object_id,x,y,visible,confidence,source"]
    raw = []
    for t in range(8):
        m = np.zeros((60, 100), np.uint8)
        m[20:41, 10 + 3 * t : 31 + 3 * t] = 1
        cv2.imwrite(str(root / "Annotations" / "480p" / "square" / f"{t:05d}.png"), m * 255)
        cv2.imwrite(str(pred / f"{t:05d}.png"), m)
        x = 10 + 3 * t + (5 if t % 2 else 15)  # the left third, then the right third, ...
        raw.append((x, 30.0))
        rows.append(f"{t},1,{x},30,1,0.9,propagated")
    (pred / "hotspots.csv").write_text("\n".join(rows) + "\n")
    same = study.smoothed_track(pred, 8, 1.0)
    assert same == [(float(x), y) for x, y in raw]
    steady = study.smoothed_track(pred, 8, 0.5)
    assert temporal_jitter(np.array(steady)) < 0.6 * temporal_jitter(np.array(raw))
    study.main([str(tmp_path / "run"), "--davis-root", str(root), "--alphas", "1", "0.5"])
    mean = capsys.readouterr().out.strip().splitlines()[-1]
    assert mean.count("/ 1.0000 (1.000)") == 2  # every hotspot on the square, smoothed or not
