"""evaluate_predictions / write_results on a tiny DAVIS-layout folder written by the test."""

import csv
import math

import numpy as np
import pytest
from PIL import Image

from napari_hotspot.errors import AnnotationError, ProjectIOError
from napari_hotspot.evaluation import davis
from napari_hotspot.evaluation.report import evaluate_predictions, read_label_png, write_results

SHAPE = (48, 64)
N_FRAMES = 6


def binary_masks(offset=0):
    masks = []
    for t in range(N_FRAMES):
        mask = np.zeros(SHAPE, dtype=bool)
        mask[10 + t:30 + t, 10 + 2 * t + offset:30 + 2 * t + offset] = True
        masks.append(mask)
    return masks


def save_binary(path, mask):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def save_indexed(path, labels):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [255, 255, 255] * 253)
    image.save(path)


@pytest.fixture
def davis_tree(tmp_path):
    """GT for 'single' (binary 0/255) and 'pair' (indexed, objects 1 and 2, void 255 border)."""
    root = tmp_path / "davis"
    for t, mask in enumerate(binary_masks()):
        save_binary(root / "Annotations/480p/single" / f"{t:05d}.png", mask)
    for t in range(N_FRAMES):
        labels = np.zeros(SHAPE, dtype=np.uint8)
        labels[5:20, 5:20] = 1
        labels[25:45, 30 + t:50 + t] = 2
        labels[0, :] = 255  # void line: treated as background
        save_indexed(root / "Annotations/480p/pair" / f"{t:05d}.png", labels)
    return root


def test_read_label_png_maps_binary_to_object_one(tmp_path, davis_tree):
    labels = read_label_png(davis_tree / "Annotations/480p/single/00000.png", ground_truth=True)
    assert set(np.unique(labels)) == {0, 1}
    indexed = read_label_png(davis_tree / "Annotations/480p/pair/00000.png", ground_truth=True)
    assert set(np.unique(indexed)) == {0, 1, 2}


def test_perfect_predictions_score_one_for_every_object(tmp_path, davis_tree):
    pred = tmp_path / "pred"
    for t, mask in enumerate(binary_masks()):
        save_binary(pred / "single" / f"{t:05d}.png", mask)
    for t in range(N_FRAMES):
        labels = read_label_png(davis_tree / f"Annotations/480p/pair/{t:05d}.png", ground_truth=True)
        save_indexed(pred / "pair" / f"{t:05d}.png", labels)
    rows = evaluate_predictions(davis_tree, pred)
    assert [(r["sequence"], r["object_id"]) for r in rows] == [("pair", 1), ("pair", 2), ("single", 1)]
    for row in rows:
        assert row["J_mean"] == 1.0 and row["F_mean"] == 1.0 and row["J_recall"] == 1.0
        assert row["n_frames"] == N_FRAMES - 2 and row["missing_frames"] == 0


def test_scores_match_the_metric_functions_and_missing_frames_warn(tmp_path, davis_tree):
    pred = tmp_path / "pred"
    shifted = binary_masks(offset=3)
    for t, mask in enumerate(shifted):
        if t != 2:  # frame 2 is missing
            save_binary(pred / "single" / f"{t:05d}.png", mask)
    with pytest.warns(UserWarning, match="00002.png"):
        rows = evaluate_predictions(davis_tree, pred, sequences=["single"])
    expected_pred = [m if t != 2 else np.zeros_like(m) for t, m in enumerate(shifted)]
    expected = davis.sequence_scores(expected_pred, binary_masks())
    assert len(rows) == 1
    for key in ("J_mean", "J_recall", "J_decay", "F_mean", "F_recall", "F_decay"):
        assert rows[0][key] == pytest.approx(expected[key])
    assert rows[0]["missing_frames"] == 1
    assert rows[0]["J_mean"] == pytest.approx((3 * 340 / 460) / 4)  # 20x20 squares shifted 3 px; one empty


def test_one_object_missed_in_indexed_predictions(tmp_path, davis_tree):
    pred = tmp_path / "pred"
    for t in range(N_FRAMES):
        labels = read_label_png(davis_tree / f"Annotations/480p/pair/{t:05d}.png", ground_truth=True)
        labels[labels == 2] = 0
        save_indexed(pred / "pair" / f"{t:05d}.png", labels)
    with pytest.warns(UserWarning, match="single"):  # GT sequence without predictions is named
        rows = evaluate_predictions(davis_tree, pred)
    by_id = {r["object_id"]: r for r in rows}
    assert by_id[1]["J_mean"] == 1.0
    assert by_id[2]["J_mean"] == 0.0 and by_id[2]["F_mean"] == 0.0


def test_write_results_csv_summary_and_line(tmp_path):
    rows = [
        {"sequence": "a", "object_id": 1, "J_mean": 0.8, "J_recall": 1.0, "J_decay": 0.1,
         "F_mean": 0.6, "F_recall": 0.5, "F_decay": 0.0, "fps": 25.0},
        {"sequence": "b", "object_id": 1, "J_mean": 0.4, "J_recall": 0.0, "J_decay": 0.3,
         "F_mean": 0.2, "F_recall": 0.0, "F_decay": float("nan"), "fps": 15.0, "hs_pck10": 0.5},
    ]
    line = write_results(rows, tmp_path / "out")
    assert line == "J_mean=0.600 F_mean=0.400 JF_mean=0.500"
    with open(tmp_path / "out" / "results.csv", newline="") as stream:
        table = list(csv.DictReader(stream))
    assert list(table[0])[:8] == ["sequence", "object_id", "J_mean", "J_recall", "J_decay",
                                  "F_mean", "F_recall", "F_decay"]
    assert "fps" in table[0] and "hs_pck10" in table[0]
    assert float(table[1]["J_mean"]) == pytest.approx(0.4)
    assert math.isnan(float(table[1]["F_decay"]))
    assert table[0]["hs_pck10"] == ""
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| sequence | object_id | J_mean" in summary
    assert "| **mean** |  | **0.600** |" in summary
    assert "**20.000**" in summary  # mean fps
    assert line in summary


def test_bad_inputs_are_clear_errors(tmp_path, davis_tree):
    with pytest.raises(ProjectIOError, match="prediction folder"):
        evaluate_predictions(davis_tree, tmp_path / "nowhere")
    (tmp_path / "empty_pred").mkdir()
    with pytest.raises(ProjectIOError, match="no sub-folder"):
        evaluate_predictions(davis_tree, tmp_path / "empty_pred")
    with pytest.raises(ProjectIOError, match="no prediction folder"):
        evaluate_predictions(davis_tree, tmp_path / "empty_pred", sequences=["single"])
    with pytest.raises(ProjectIOError, match="no ground truth"):
        evaluate_predictions(davis_tree, tmp_path / "empty_pred", sequences=["unknown"])
    with pytest.raises(ProjectIOError, match="Annotations"):
        evaluate_predictions(tmp_path, tmp_path / "empty_pred")
    small = tmp_path / "small"
    for t in range(N_FRAMES):
        save_binary(small / "single" / f"{t:05d}.png", np.zeros((10, 10), bool))
    with pytest.raises(AnnotationError, match="00001.png"):
        evaluate_predictions(davis_tree, small, sequences=["single"])
    extra = tmp_path / "extra"
    for t in range(N_FRAMES):
        save_indexed(extra / "pair" / f"{t:05d}.png", np.full(SHAPE, 3, np.uint8))
    with pytest.raises(AnnotationError, match=r"ids \[3\]"):
        evaluate_predictions(davis_tree, extra, sequences=["pair"])
    (tmp_path / "corrupt" / "single").mkdir(parents=True)
    for t in range(N_FRAMES):
        (tmp_path / "corrupt" / "single" / f"{t:05d}.png").write_bytes(b"not a png")
    with pytest.raises(ProjectIOError, match="cannot read"):
        evaluate_predictions(davis_tree, tmp_path / "corrupt", sequences=["single"])
    with pytest.raises(ProjectIOError, match="no result rows"):
        write_results([], tmp_path / "out")
