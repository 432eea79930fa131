"""Training data of the benchmark's protocol: DAVIS-layout roots at any one resolution (davis2016-train
is 360p), DUTS-style stills as synthetic-only "sequences", the synthetic pairs they give the tracker,
and weights that infer the same after a save and reload. Synthetic data first; the real folders
(skipped with a reason when absent) last."""

import json

import cv2
import numpy as np
import pytest
import torch

from napari_hotspot.data_paths import (davis_annotations_dir, davis_frames_dir, davis_resolution,
                                       davis_train_root, duts_root)
from napari_hotspot.evaluation.report import list_sequences as eval_sequences
from napari_hotspot.models.training.data import (build_still_cache, list_sequences, list_stills, load_sequence,
                                                 load_still)
from napari_hotspot.models.training.samplers import pair_sample, tracker_batch
from napari_hotspot.sample_data import make_sample_video, write_sample
from napari_hotspot.train import main as train_main


def _davis_at(root, resolution, names=("a", "b"), frames=4):
    sample = make_sample_video(num_frames=frames)
    for name in names:
        paths = write_sample(root / "raw" / name, "folder", sample, name=name)
        for kind, src in (("JPEGImages", paths.frames), ("Annotations", paths.annotations)):
            dst = root / kind / resolution / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    return sample


def _stills_at(root, n=5, size=(90, 120)):
    """n pictures of a bright disk (the object) on noise, masks 0/255, plus one image with no mask."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    h, w = size
    for i in range(n):
        img = rng.integers(0, 80, (h, w, 3), dtype=np.uint8)
        mask = np.zeros((h, w), np.uint8)
        cv2.circle(mask, (int(w * (0.3 + 0.1 * i)), h // 2), 20 + 2 * i, 255, -1)
        img[mask > 0] = (40, 200 - 20 * i, 230)  # BGR, as cv2 writes it: a red object
        cv2.imwrite(str(root / "images" / f"s{i}.jpg"), img)
        cv2.imwrite(str(root / "masks" / f"s{i}.png"), mask)
    cv2.imwrite(str(root / "images" / "no_mask.jpg"), img)
    return root


def test_a_davis_root_at_another_resolution_is_read_by_training_and_evaluation(tmp_path):
    sample = _davis_at(tmp_path, "360p")
    assert davis_resolution(tmp_path) == "360p"
    assert davis_frames_dir(tmp_path, "a") == tmp_path / "JPEGImages" / "360p" / "a"
    assert list_sequences(tmp_path) == eval_sequences(tmp_path) == ["a", "b"]
    frames, masks = load_sequence(tmp_path, "b")
    assert len(frames) == len(masks) == 4 and frames[0].shape[:2] == masks[0].shape
    assert masks[0].any()
    # 480p wins where it exists (the benchmark's own folder); two others are ambiguous.
    _davis_at(tmp_path / "both", "480p", names=("a",))
    (tmp_path / "both" / "Annotations" / "360p").mkdir()
    assert davis_annotations_dir(tmp_path / "both", "a") == tmp_path / "both" / "Annotations" / "480p" / "a"
    (tmp_path / "odd" / "Annotations" / "360p").mkdir(parents=True)
    (tmp_path / "odd" / "Annotations" / "720p").mkdir()
    with pytest.raises(FileNotFoundError, match="360p, 720p"):
        davis_resolution(tmp_path / "odd")
    assert sample.num_frames == 4


def test_stills_are_listed_read_and_checked(tmp_path):
    root = _stills_at(tmp_path / "duts")
    assert list_stills(root) == [f"s{i}" for i in range(5)]  # no_mask.jpg has no mask: skipped
    image, mask = load_still(root, "s2")
    assert image.shape == (90, 120, 3) and mask.shape == (90, 120) and mask.dtype == bool
    assert image[mask].mean(0)[0] > 200  # RGB order: the red channel of the object
    cv2.imwrite(str(root / "masks" / "s4.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="image 120x90 but mask 10x10"):
        load_still(root, "s4")
    with pytest.raises(FileNotFoundError, match="images/ and masks/"):
        list_stills(tmp_path)


def test_stills_become_synthetic_only_sequences_whose_pairs_move_the_hotspot_with_the_object(tmp_path):
    root = _stills_at(tmp_path / "duts", n=5)
    size = (64, 96)
    stills = build_still_cache(root, tmp_path / "cache", n_views=2, chunk=2, size=size, log=lambda m: None)
    assert [s.num_frames for s in stills] == [2, 2, 1]
    assert all(s.meta["synthetic_only"] and s.size == size and s.num_views == 3 for s in stills)
    assert stills[0].feats[0][0].s8.shape[-2:] == (8, 12)
    again = build_still_cache(root, tmp_path / "cache", n_views=2, chunk=2, size=size, log=lambda m: None)
    assert np.array_equal(again[2].masks, stills[2].masks)  # read back from the cache
    # Stills are never paired as video frames...
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="no real video"):
        pair_sample(stills, rng, synthetic_rate=0.0)
    # ...only with their own warped views, where the template's hotspot lands on the object.
    inside = valid = 0
    for _ in range(60):
        feats, ref_a, ref_p, target, hot_t, ok = pair_sample(stills, rng, synthetic_rate=1.0)
        assert feats.s8.shape[-2:] == (8, 12) and target.shape == size
        if ok:
            valid += 1
            x, y = int(round(hot_t[0])), int(round(hot_t[1]))
            inside += bool(target[min(y, size[0] - 1), min(x, size[1] - 1)] > 0)
    assert valid >= 40 and inside >= 0.9 * valid
    *_, targets, hot_xy, hot_valid = tracker_batch(stills, rng, batch_size=6, synthetic_rate=1.0)
    assert targets.shape == (6, 1, *size) and hot_valid.any()


def test_training_with_stills_records_them_and_every_head_learns(tmp_path):
    _davis_at(tmp_path / "davis", "360p", frames=2)
    stills_root = _stills_at(tmp_path / "duts", n=2)
    out = tmp_path / "run"
    train_main(["--davis-root", str(tmp_path / "davis"), "--stills-root", str(stills_root), "--val-sequences", "b",
                "--steps-tracker", "2", "--steps-gaze2mask", "2", "--steps-egnet", "2", "--batch-size", "2",
                "--views", "1", "--cache", str(tmp_path / "cache"), "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert report["train_sequences"] == ["a"] and report["train_stills"] == 2
    assert report["stills_root"] == str(stills_root)
    assert "stills" in (out / "train.log").read_text()


def test_a_missing_stills_folder_is_refused_clearly(tmp_path, capsys):
    _davis_at(tmp_path / "davis", "360p", frames=2)
    with pytest.raises(SystemExit):
        train_main(["--davis-root", str(tmp_path / "davis"), "--stills-root", str(tmp_path / "nope"),
                    "--out", str(tmp_path / "run")])
    assert "images/ and masks/" in capsys.readouterr().err


def test_inference_is_unchanged_after_saving_and_reloading_the_weights(tmp_path, sample, models):
    """save_weights stores fp16, as the shipped file is: reloading it must give the same answers."""
    from napari_hotspot.models.training.train import save_weights
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.session import HotspotSession

    heads = {"egnet": models.egnet, "gaze2mask": models.gaze2mask, "tracker": models.tracker}
    save_weights(tmp_path / "w.pt", heads, {"command": "reload test"})
    reloaded = ModelBundle.load(tmp_path / "w.pt")
    assert reloaded.meta["command"] == "reload test"
    frames = sample.frames[:4]
    answers = []
    for bundle in (models, reloaded):
        session = HotspotSession(frames, bundle)
        oid = 1
        y, x = np.argwhere(sample.masks[0] == oid).mean(0)
        first = session.add_prompt(0, oid, points=[(x, y)], labels=[1])
        tracked = list(session.propagate(start_frame=0, direction="forward"))
        answers.append((first.mask, [r.mask for r in tracked], [r.hotspot for r in tracked],
                        session.gaze_map(2)))
    (m0, tracked0, hot0, gaze0), (m1, tracked1, hot1, gaze1) = answers
    assert m0.any() and np.array_equal(m0, m1)
    assert len(tracked0) == 3 and all(np.array_equal(a, b) for a, b in zip(tracked0, tracked1))
    assert hot0 == hot1
    np.testing.assert_allclose(gaze0, gaze1, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- the real folders (skip without data)
def test_the_davis_training_set_reads_as_30_sequences_at_640x360():
    root = davis_train_root()
    if not root.is_dir():
        pytest.skip(f"davis2016-train not found at {root} (set NAPARI_HOTSPOT_DATA)")
    names = list_sequences(root)
    assert len(names) == 30 and "bear" in names and "train" in names
    assert davis_resolution(root) == "360p"
    frames, masks = load_sequence(root, "bear")
    assert frames[0].shape == (360, 640, 3) and masks[0].shape == (360, 640) and len(frames) == len(masks) == 82
    assert masks[0].any() and not masks[0].all()


def test_the_duts_subset_reads_as_499_stills_with_masks():
    root = duts_root()
    if not root.is_dir():
        pytest.skip(f"duts-tr-subset not found at {root} (set NAPARI_HOTSPOT_DATA)")
    stems = list_stills(root)
    assert len(stems) == 499
    image, mask = load_still(root, stems[0])
    assert image.ndim == 3 and image.shape[:2] == mask.shape and 0 < mask.mean() < 1
