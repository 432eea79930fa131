"""Benchmark export of labelled hotspots: tables, consensus, hotspot-map PNGs, loaders and scoring."""

import csv
import json

import cv2
import numpy as np
import pytest

from napari_hotspot.annotations.io_hotspot_maps import (
    export_benchmark,
    load_hotspot_map_set,
    load_hotspot_maps,
    read_track_csv,
    score_hotspot_csv,
    score_hotspot_track,
)
from napari_hotspot.annotations.io_hotspots import import_hotspots_json, read_hotspots_csv
from napari_hotspot.annotations.labelling import KeyframeLabeller
from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.errors import AnnotationError, ProjectIOError
from napari_hotspot.evaluation import saliency
from napari_hotspot.evaluation.hotspot import hotspot_scores

T, H, W = 21, 60, 80


def truth_track():
    t = np.arange(T, dtype=float)
    return np.column_stack([15 + 2 * t, 30 + 8 * np.sin(t / 4)])


@pytest.fixture
def labelled_store():
    """Object 1 tracked by a slightly wrong tracker; three annotators label every 5th frame."""
    truth = truth_track()
    store = AnnotationStore(T, H, W)
    store.add_object(name="ball", obj_id=1)
    for t in range(T):
        mask = np.zeros((H, W), bool)
        x, y = truth[t].round().astype(int)
        mask[y - 8: y + 9, x - 8: x + 9] = True
        store.set_frame(1, t, mask=mask, hotspot=tuple(truth[t] + (3.0, -2.0)), provenance="propagated")
    rng = np.random.default_rng(1)
    for name, noise in (("ann one", 0.8), ("ann/two", 1.2), ("C", 1.0)):
        clock = iter(np.arange(0, 100, 1.5))
        lab = KeyframeLabeller(store, name, every=5, clock=lambda: next(clock))
        while not lab.done:
            x, y = truth[lab.current.frame] + rng.normal(0, noise, 2)
            lab.move(x, y)
            lab.accept()
    return store


def test_export_writes_annotator_and_consensus_tables(tmp_path, labelled_store):
    out = export_benchmark(labelled_store, tmp_path / "bench")
    records = read_hotspots_csv(out.annotators_csv)
    keyframes = [r for r in records if r.source != Provenance.DERIVED]
    assert len(keyframes) == 3 * 5 and {r.annotator for r in records} == {"ann one", "ann/two", "C"}
    assert len(records) == 3 * T  # keyframes plus derived in-between frames, with their provenance
    assert set(out.per_annotator) == {"ann one", "ann/two", "C"}
    csv_path, json_path = out.per_annotator["ann/two"]
    assert csv_path.name == "annotator_ann_two.csv"
    assert {r.annotator for r in read_hotspots_csv(csv_path)} == {"ann/two"}
    document = json.loads(json_path.read_text())
    assert all(h["seconds_spent"] == pytest.approx(1.5) for h in document["hotspots"] if h["source"] != "derived")
    # the per-annotator JSON restores into a fresh store without touching the others
    restored = import_hotspots_json(json_path)
    assert restored.annotators() == ["ann/two"]

    consensus = read_hotspots_csv(out.consensus_csv)
    assert [r.frame for r in consensus] == [0, 5, 10, 15, 20]
    assert all(r.annotator == "consensus" for r in consensus)
    truth = truth_track()
    for r in consensus:
        assert np.hypot(r.x - truth[r.frame, 0], r.y - truth[r.frame, 1]) < 3.0
    frames = json.loads(out.consensus_json.read_text())["frames"]
    assert frames[0]["annotators"] == ["C", "ann one", "ann/two"] and frames[0]["pck"] is not None
    with open(out.agreement_csv) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5 and rows[0]["n_annotators"] == "3"
    summary = json.loads(out.summary_json.read_text())
    assert [a["keyframes"] for a in summary["annotators"]] == [5, 5, 5]
    assert summary["objects"]["1"]["frames_compared"] == 5


@pytest.mark.parametrize("bit_depth, dtype", [(8, np.uint8), (16, np.uint16)])
def test_hotspot_map_pngs_score_directly_with_the_saliency_metrics(tmp_path, labelled_store, bit_depth, dtype):
    out = export_benchmark(labelled_store, tmp_path, bit_depth=bit_depth, sigma=4.0)
    root = out.map_dirs[1]
    assert root == tmp_path / "maps" / "object_1"
    files = sorted(p.name for p in (root / "maps").iterdir())
    assert files == ["00000.png", "00005.png", "00010.png", "00015.png", "00020.png"]
    gt_map = cv2.imread(str(root / "maps" / "00010.png"), cv2.IMREAD_UNCHANGED)
    fixations = cv2.imread(str(root / "fixations" / "00010.png"), cv2.IMREAD_UNCHANGED)
    assert gt_map.dtype == dtype and gt_map.max() == np.iinfo(dtype).max and gt_map.shape == (H, W)
    assert fixations.dtype == np.uint8 and set(np.unique(fixations)) == {0, 255}
    assert 1 <= (fixations > 0).sum() <= 3
    # no conversion step: the PNG arrays go straight into the metrics
    truth = truth_track()
    good = saliency.hotspot_map([truth[10]], (H, W), 4.0)
    bad = saliency.hotspot_map([truth[10] + (30, 15)], (H, W), 4.0)
    assert saliency.auc_judd(good, fixations) > 0.95 > saliency.auc_judd(bad, fixations)
    assert saliency.nss(good, fixations) > 5 > saliency.nss(bad, fixations)
    assert saliency.cc(good, gt_map) > 0.9 > saliency.cc(bad, gt_map)
    assert saliency.sim(good, gt_map) > saliency.sim(bad, gt_map)
    assert saliency.kld(good, gt_map) < saliency.kld(bad, gt_map)
    others = saliency.other_fixations_map(
        [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((root / "fixations").iterdir())], 2)
    assert saliency.auc_shuffled(good, fixations, others) > saliency.auc_shuffled(bad, fixations, others)

    maps = load_hotspot_maps(root)
    assert maps.frames == [0, 5, 10, 15, 20] and maps.saliency.shape == (5, H, W)
    assert maps.saliency.max() == pytest.approx(1.0) and maps.fixations.dtype == bool
    assert maps.masks is not None and maps.masks[2].sum() == 17 * 17
    assert maps.annotator_tracks.shape == (3, T, 2) and np.isnan(maps.annotator_tracks[:, 1]).all()
    # the hotspot metrics take the loaded annotator tracks as they are
    scores = hotspot_scores(truth[maps.frames], maps.annotator_tracks[:, maps.frames], list(maps.masks))
    assert scores["hs_pck10"] == 1.0


def test_score_hotspot_track_ranks_the_truth_above_a_biased_track(tmp_path, labelled_store):
    out = export_benchmark(labelled_store, tmp_path)
    truth = truth_track()
    good = score_hotspot_track(truth, out.map_dirs[1])
    bad = score_hotspot_track(truth + (12.0, -9.0), out.map_dirs[1])
    for key in ("auc_judd", "auc_shuffled", "nss", "cc", "sim"):
        assert good[key] > bad[key], key
    assert good["kld"] < bad["kld"]
    assert good["hs_pck10"] == 1.0 and bad["hs_pck10"] < 0.5
    assert good["n_frames"] == 5 and good["n_scored"] == 5 and good["object_id"] == 1
    # missing predictions: not scored as saliency, counted as misses by the hotspot metrics
    partial = truth.copy()
    partial[[0, 5]] = np.nan
    scores = score_hotspot_track(np.column_stack([truth, np.ones(T)]), out.map_dirs[1])
    assert scores["auc_judd"] == pytest.approx(good["auc_judd"])
    missing = score_hotspot_track(partial, out.map_dirs[1])
    assert missing["n_scored"] == 3 and missing["hs_n_missing"] == 2 and missing["hs_pck10"] == pytest.approx(0.6)
    with pytest.raises(AnnotationError, match="20 frames but"):
        score_hotspot_track(truth[:20], out.map_dirs[1])


def test_score_prediction_csv_against_a_whole_export(tmp_path, labelled_store):
    out = export_benchmark(labelled_store, tmp_path / "bench")
    truth = truth_track()
    pred = tmp_path / "hotspots.csv"  # the layout napari-hotspot track writes
    with open(pred, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["frame", "object_id", "x", "y", "visible", "confidence", "source"])
        for t in range(T):
            writer.writerow([t, 1, f"{truth[t, 0]:.2f}", f"{truth[t, 1]:.2f}", 1, "0.9", "propagated"])
    tracks = read_track_csv(pred, T)
    assert list(tracks) == [1] and tracks[1].shape == (T, 2)
    results = score_hotspot_csv(pred, out.root)
    assert list(results) == [1] and results[1]["hs_pck10"] == 1.0
    assert list(load_hotspot_map_set(out.root)) == [1]


def test_loader_errors(tmp_path, labelled_store):
    with pytest.raises(ProjectIOError, match="no manifest.json"):
        load_hotspot_maps(tmp_path)
    out = export_benchmark(labelled_store, tmp_path / "bench")
    with pytest.raises(ProjectIOError, match="looks like a whole export"):
        load_hotspot_maps(out.root)
    (out.map_dirs[1] / "maps" / "00005.png").unlink()
    with pytest.raises(ProjectIOError, match="00005.png is missing"):
        load_hotspot_maps(out.map_dirs[1])
    (out.map_dirs[1] / "manifest.json").write_text("{broken")
    with pytest.raises(ProjectIOError, match="not valid JSON"):
        load_hotspot_maps(out.map_dirs[1])
    with pytest.raises(ProjectIOError, match="bit depth must be 8 or 16"):
        export_benchmark(labelled_store, tmp_path / "x", bit_depth=12)
    with pytest.raises(ProjectIOError, match="no annotator has labelled"):
        export_benchmark(AnnotationStore(3, H, W), tmp_path / "empty")
    with pytest.raises(ProjectIOError, match="missing column"):
        bad = tmp_path / "bad.csv"
        bad.write_text("frame,x,y\n0,1,2\n")
        read_track_csv(bad, T)


def test_eval_cli_scores_a_track_csv_against_the_export_without_conversion(tmp_path, labelled_store, capsys):
    from napari_hotspot.cli import main

    out = export_benchmark(labelled_store, tmp_path / "bench")
    pred = tmp_path / "hotspots.csv"
    truth = truth_track()
    with open(pred, "w", newline="") as fh:  # the columns `napari-hotspot track` writes
        w = csv.writer(fh)
        w.writerow(["frame", "object_id", "x", "y", "visible", "confidence", "source"])
        for t in range(T):
            w.writerow([t, 1, f"{truth[t, 0]:.2f}", f"{truth[t, 1]:.2f}", 1, "0.9", "propagated"])
    assert main(["eval", "--hotspot-maps", str(out.root), "--hotspots", str(pred), "--out", str(tmp_path / "ev")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("hs_pck10=1.000") and "nss=" in line
    assert (tmp_path / "ev" / "hotspot_results.csv").is_file()


@pytest.mark.parametrize("row, message", [("3.5,1,2,3", "not a whole number"), ("1,,2,3", "whole numbers"),
                                          ("1,1,abc,3", "x and y numbers"), ("1,0,2,3", "not an object id"),
                                          ("1,-3,2,3", "not an object id"), ("1,1,nan,3", "finite numbers"),
                                          ("1,1,2,inf", "finite numbers"), ("1,1,2,-Infinity", "finite numbers")])
def test_track_csv_rows_that_are_not_whole_frames_or_numbers_are_refused_clearly(tmp_path, row, message):
    bad = tmp_path / "h.csv"
    bad.write_text(f"frame,object_id,x,y\n{row}\n")
    with pytest.raises(ProjectIOError, match=message):
        read_track_csv(bad, 5)


def test_track_csv_takes_spreadsheet_integers_short_rows_and_hidden_frames(tmp_path):
    path = tmp_path / "h.csv"
    # as a spreadsheet saves it: a byte-order mark and CRLF line ends
    path.write_bytes("frame,object_id,x,y,visible\r\n1.0,2,4.5,6,1\r\n2,2\r\n3,2,7,8,0\r\n4,2,nan,nan,0\r\n"
                     .encode("utf-8-sig"))
    track = read_track_csv(path, 5)[2]
    assert track[1].tolist() == [4.5, 6.0]
    assert np.isnan(track[[0, 2, 3, 4]]).all()  # not given, a short row, hidden
