"""The simulated-correction protocol (`napari-hotspot eval --corrections K`) on a tiny DAVIS layout."""

import pytest

from napari_hotspot.cli import main
from napari_hotspot.evaluation.tracker_eval import correction_curve
from napari_hotspot.options import TrackingOptions
from napari_hotspot.sample_data import make_sample_video, write_sample


@pytest.fixture(scope="module")
def davis_layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    paths = write_sample(root / "raw", "folder", make_sample_video(num_frames=8))
    (root / "JPEGImages" / "480p").mkdir(parents=True)
    (root / "Annotations" / "480p").mkdir(parents=True)
    (root / "JPEGImages" / "480p" / "s").symlink_to(paths.frames)
    (root / "Annotations" / "480p" / "s").symlink_to(paths.annotations)
    return root


def test_corrections_make_the_corrected_frames_exact(davis_layout, models):
    rows = correction_curve(davis_layout, "s", corrections=2, models=models,
                            options=TrackingOptions(long_side=256, adapt_seconds=0.0))
    assert [r["corrections"] for r in rows if r["object_id"] == 1] == [0, 1, 2]
    for oid in (1, 2):
        js = [r["J_mean"] for r in rows if r["object_id"] == oid]
        # Replacing the worst frame by the ground truth can only raise the mean of the scored frames
        # it touches; re-propagation may move others, so check the curve does not collapse.
        assert js[-1] >= js[0] - 0.05, js


def test_corrections_with_adaptation_use_the_adapted_tracker(davis_layout, models):
    # a small working size: the protocol, not the accuracy, is tested
    rows = correction_curve(davis_layout, "s", corrections=1, models=models,
                            options=TrackingOptions(long_side=256, adapt_seconds=60, adapt_steps=1))
    assert {r["corrections"] for r in rows} == {0, 1}


def test_eval_cli_corrections_writes_csv_and_plot(davis_layout, tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["eval", "--davis-root", str(davis_layout), "--corrections", "1", "--adapt", "0", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "corrections=1 J_mean=" in text
    assert (out / "corrections.csv").is_file() and (out / "corrections.png").stat().st_size > 1000


def test_repropagation_ends_give_each_frame_to_its_nearest_keyframe():
    from napari_hotspot.corrections import repropagation_ends

    assert repropagation_ends([0, 10], 10, 30) == (29, 5)  # no keyframe ahead: to the end; a tie goes to 10
    assert repropagation_ends([0, 10, 20], 10, 30) == (15, 5)
    assert repropagation_ends([0, 9], 9, 30) == (29, 5)  # frame 4 is nearer to 0, frame 5 to 9
    assert repropagation_ends([9], 9, 30) == (29, 0)
