"""The training entry point runs end to end on a tiny DAVIS-layout set (2 steps per head, CPU)."""

import json

import cv2
import numpy as np
import pytest
import torch

from napari_hotspot.models.heads import EGNet
from napari_hotspot.models.weights import ModelBundle, load_heads_into
from napari_hotspot.sample_data import make_sample_video, write_sample
from napari_hotspot.train import main as train_main


@pytest.fixture(scope="module")
def tiny_davis(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    sample = make_sample_video(num_frames=4)
    for name in ("a", "b"):
        paths = write_sample(root / "raw" / name, "folder", sample, name=name)
        for kind, src in (("JPEGImages", paths.frames), ("Annotations", paths.annotations)):
            dst = root / kind / "480p" / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    return root, sample


def test_train_all_heads_writes_loadable_weights_and_a_report(tiny_davis, tmp_path):
    root, _ = tiny_davis
    out = tmp_path / "run"
    train_main(["--davis-root", str(root), "--val-sequences", "b", "--steps-tracker", "2", "--steps-gaze2mask", "2",
                "--steps-egnet", "2", "--batch-size", "2", "--cache", str(tmp_path / "cache"), "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert report["train_sequences"] == ["a"] and report["val_sequences"] == ["b"]
    assert set(report["validation"]["b"]) == {"tracker_J", "tracker_hotspot_inside", "click_J", "egnet_peak_inside"}
    bundle = ModelBundle.load(out / "weights.pt")
    assert bundle.meta["val_sequences"] == ["b"]


def test_egnet_retrains_on_real_fixation_data(tiny_davis, tmp_path):
    root, sample = tiny_davis
    fix = tmp_path / "fixations"
    (fix / "images").mkdir(parents=True)
    (fix / "fixations").mkdir()
    for i in range(2):
        cv2.imwrite(str(fix / "images" / f"{i}.jpg"), cv2.cvtColor(sample.frames[i], cv2.COLOR_RGB2BGR))
        x, y = sample.hotspots[i, 0, :2]
        np.savetxt(fix / "fixations" / f"{i}.csv", [[x, y], [x + 2, y + 1]], delimiter=",", header="x,y", comments="")
    out = tmp_path / "run"
    # Through the documented command line (`napari-hotspot train ...`), options first.
    from napari_hotspot.cli import main as cli_main

    assert cli_main(["train", "--davis-root", str(root), "--head", "egnet", "--steps-egnet", "2", "--batch-size", "2",
                     "--fixations-root", str(fix), "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    net = EGNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    load_heads_into({"egnet": net}, out / "weights.pt")
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_missing_fixation_files_fail_clearly(tiny_davis, tmp_path):
    root, sample = tiny_davis
    (tmp_path / "fx" / "images").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "fx" / "images" / "0.jpg"), sample.frames[0])
    with pytest.raises(FileNotFoundError, match="no fixation map"):
        train_main(["--davis-root", str(root), "--head", "egnet", "--steps-egnet", "1", "--fixations-root",
                    str(tmp_path / "fx"), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "o")])
