"""Agreement of evaluate_predictions with an independent J/F implementation on real DAVIS-2016 data,
and the DIS optical-flow baseline as an integration test. Skipped when ../shared/data is absent.

The reference implementation below deliberately takes other code paths than evaluation/davis.py:
J from a confusion-matrix bincount; boundaries as inner contours (object pixels with a 4-neighbour
outside the object, via scipy erosion) instead of seg2bmap; matching with a Euclidean distance
transform instead of disk dilation. The boundary definitions differ by about a pixel, hence F +-0.02.
"""

import math

import cv2
import numpy as np

from napari_hotspot.data_paths import davis_root
import pytest
from PIL import Image
from scipy import ndimage

from napari_hotspot.evaluation.baselines import propagate_mask_dis
from napari_hotspot.evaluation.davis import sequence_scores
from napari_hotspot.evaluation.report import evaluate_predictions

DAVIS_ROOT = davis_root()

pytestmark = [
    pytest.mark.data,
    pytest.mark.skipif(
        not (DAVIS_ROOT / "Annotations" / "480p").is_dir(),
        reason=f"DAVIS-2016 data not found at {DAVIS_ROOT} (set NAPARI_HOTSPOT_DATA)",
    ),
]


def load_gt(sequence):
    files = sorted((DAVIS_ROOT / "Annotations" / "480p" / sequence).glob("*.png"))
    return files, [np.array(Image.open(f)) > 127 for f in files]


def reference_jaccard(pred, gt):
    counts = np.bincount(gt.ravel().astype(np.int64) * 2 + pred.ravel().astype(np.int64), minlength=4)
    true_pos, false_pos, false_neg = counts[3], counts[1], counts[2]
    denominator = true_pos + false_pos + false_neg
    return 1.0 if denominator == 0 else true_pos / denominator


def reference_boundary(mask):
    # border_value=1: the image border is not an object boundary
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1), border_value=1)


def reference_f(pred, gt, bound_th=0.008):
    tolerance = math.ceil(bound_th * math.hypot(*gt.shape))
    pred_b, gt_b = reference_boundary(pred), reference_boundary(gt)
    if not pred_b.any() and not gt_b.any():
        return 1.0
    if not pred_b.any() or not gt_b.any():
        return 0.0
    distance_to_gt = ndimage.distance_transform_edt(~gt_b)
    distance_to_pred = ndimage.distance_transform_edt(~pred_b)
    precision = np.mean(distance_to_gt[pred_b] <= tolerance)
    recall = np.mean(distance_to_pred[gt_b] <= tolerance)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def shift(mask, dx, dy):
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h + min(-dy, 0),
                                                                      max(-dx, 0):w + min(-dx, 0)]
    return out


PERTURBATIONS = {
    "blackswan": lambda m: cv2.erode(m.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))) > 0,
    "car-shadow": lambda m: shift(m, 12, -5),
}


def test_evaluate_predictions_agrees_with_independent_implementation(tmp_path):
    expected = {}
    for sequence, perturb in PERTURBATIONS.items():
        files, gts = load_gt(sequence)
        preds = [perturb(g) for g in gts]
        for f, p in zip(files, preds):
            out = tmp_path / sequence / f.name
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(p.astype(np.uint8) * 255).save(out)
        scored = slice(1, len(gts) - 1)
        j = [reference_jaccard(p, g) for p, g in zip(preds[scored], gts[scored])]
        f = [reference_f(p, g) for p, g in zip(preds[scored], gts[scored])]
        expected[sequence] = (float(np.mean(j)), float(np.mean(f)))
    rows = evaluate_predictions(DAVIS_ROOT, tmp_path, sequences=list(PERTURBATIONS))
    assert [r["sequence"] for r in rows] == list(PERTURBATIONS)
    for row in rows:
        j_ref, f_ref = expected[row["sequence"]]
        assert row["J_mean"] == pytest.approx(j_ref, abs=0.002), row["sequence"]
        assert row["F_mean"] == pytest.approx(f_ref, abs=0.02), row["sequence"]
        assert 0.3 < row["J_mean"] < 0.95  # the perturbations are neither perfect nor hopeless


@pytest.mark.slow
@pytest.mark.parametrize("sequence", ["blackswan", "car-shadow"])
def test_dis_baseline_propagates_real_sequences(sequence):
    files, gts = load_gt(sequence)
    frames = (np.array(Image.open(DAVIS_ROOT / "JPEGImages" / "480p" / sequence / f"{f.stem}.jpg")) for f in files)
    preds = list(propagate_mask_dis(frames, gts[0]))
    assert len(preds) == len(gts)
    scores = sequence_scores(preds, gts)
    assert scores["J_mean"] > 0.2, scores
    assert scores["F_mean"] > 0.1, scores
