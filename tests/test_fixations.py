"""Eye-tracker fixation import: time base, malformed files, density maps, candidates, gaze prompts."""

import numpy as np
import pytest

from napari_hotspot.annotations import io_fixations as fx
from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.errors import AnnotationError, ProjectIOError

H, W = 60, 80


def write(tmp_path, text, name="fix.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_frame_based_csv_with_duration_and_observer(tmp_path):
    path = write(tmp_path, "Frame,X,Y,Duration,Subject\n0,10,20,200,s1\n0,12.5,21,100,s2\n3,40,30,,s1\n")
    fixations = fx.read_fixations_csv(path, num_frames=5, frame_size=(H, W))
    assert fixations.frames.tolist() == [0, 0, 3]
    assert fixations.xy.tolist() == [[10, 20], [12.5, 21], [40, 30]]
    assert np.isnan(fixations.durations[2]) and fixations.durations[0] == 200
    assert fixations.observers == ("s1", "s2", "s1") and fixations.observer_names == ["s1", "s2"]
    assert fixations.weights.tolist() == [1, 1, 1]  # one duration missing: weights fall back to 1
    assert fixations.points_tyx()[1].tolist() == [0, 21, 12.5]
    xy, _ = fixations.select(1, window=2)
    assert len(xy) == 3


def test_time_base_seconds_and_milliseconds_with_offset(tmp_path):
    # fps 10, frame 0 shown at t = 2.0 s on the eye tracker's clock
    seconds = write(tmp_path, "time,x,y\n2.0,1,1\n2.05,2,2\n2.1,3,3\n2.999,4,4\n1.5,5,5\n9.0,6,6\n")
    fixations = fx.read_fixations_csv(seconds, fx.TimeBase(fps=10, offset=2.0), num_frames=20)
    assert fixations.frames.tolist() == [0, 0, 1, 9]
    assert fixations.dropped == {"no_position": 0, "off_image": 0, "out_of_range": 2}
    millis = write(tmp_path, "timestamp_ms;x;y\n2000;1;1\n2100;3;3\n", "ms.csv")
    assert fx.read_fixations_csv(millis, fx.TimeBase(10, 2.0, "ms")).frames.tolist() == [0, 1]
    with pytest.raises(ProjectIOError, match="in ms but the time base says s"):
        fx.read_fixations_csv(millis, fx.TimeBase(10, 2.0, "s"))
    tabs = write(tmp_path, "t\tgaze_x\tgaze_y\n0.25\t0.5\t0.5\n", "tabs.tsv")
    fixations = fx.read_fixations_csv(tabs, fx.TimeBase(24), frame_size=(H, W), normalized=True)
    assert fixations.frames.tolist() == [6] and fixations.xy.tolist() == [[39.5, 29.5]]


def test_lost_tracking_and_off_image_rows_are_dropped_and_counted(tmp_path):
    path = write(tmp_path, "frame,x,y\n0,,\n1,5,5\n2,-20,5\n3,5,500\n\n4,6,6\n")
    fixations = fx.read_fixations_csv(path, frame_size=(H, W))
    assert fixations.frames.tolist() == [1, 4]
    assert fixations.dropped == {"no_position": 1, "off_image": 2, "out_of_range": 0}


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("", {}, "is empty"),
        ("frame,a,b\n0,1,2\n", {}, "no x/y columns"),
        ("x,y\n1,2\n", {}, "needs a 'frame' or a 'time' column"),
        ("time,x,y\n1,2,3\n", {}, "no time base was given"),
        ("frame,x,y\n0,abc,2\n", {}, r"line 2: x 'abc' is not a number"),
        ("frame,x,y\n0.5,1,2\n", {}, "is not an integer"),
        ("frame,x,y\n0,1,\n", {}, "both be given"),
        ("frame,x,y,duration\n0,1,2,-5\n", {}, "negative"),
        ("frame,x,y\n0,1,2,9\n", {}, "more fields than the header"),
        ("frame,x,y\n0,nan,2\n", {}, "finite"),
        ("frame,x,y\n50,1,2\n", {"num_frames": 10}, r"none of its 1 fixations is usable.*time base"),
        ("frame,x,y\n0,1,2\n", {"normalized": True}, "need the frame size"),
    ],
)
def test_malformed_files_raise_clear_errors(tmp_path, text, kwargs, message):
    path = write(tmp_path, text)
    with pytest.raises(ProjectIOError, match=message) as info:
        fx.read_fixations_csv(path, **kwargs)
    if "normalised" not in str(info.value):
        assert str(path) in str(info.value)


def test_missing_file_and_bad_time_base(tmp_path):
    with pytest.raises(ProjectIOError, match="does not exist"):
        fx.read_fixations_csv(tmp_path / "nope.csv")
    with pytest.raises(AnnotationError, match="fps must be a positive"):
        fx.TimeBase(0)
    with pytest.raises(AnnotationError, match="time unit"):
        fx.TimeBase(25, unit="min")


def test_write_read_round_trip(tmp_path):
    original = fx.read_fixations_csv(write(tmp_path, "frame,x,y,duration,observer\n2,1.25,3,40,a\n5,7,8,,b\n"))
    again = fx.read_fixations_csv(fx.write_fixations_csv(tmp_path / "out.csv", original))
    assert again.frames.tolist() == original.frames.tolist()
    np.testing.assert_array_equal(again.xy, original.xy)
    np.testing.assert_array_equal(again.durations, original.durations)
    assert again.observers == original.observers


def test_density_map_sums_to_one_and_peaks_at_the_fixations():
    density = fx.fixation_density([(20, 30), (21, 30)], (H, W), sigma=3.0, weights=[1, 3])
    assert density.dtype == np.float32 and density.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.unravel_index(np.argmax(density), density.shape) == (30, 21)
    assert not fx.fixation_density(np.zeros((0, 2)), (H, W)).any()
    with pytest.raises(AnnotationError, match="sigma"):
        fx.fixation_density([(1, 1)], (H, W), sigma=0)
    fixations = fx.Fixations(np.array([1, 1, 3]), np.array([[5.0, 5], [6, 5], [50, 40]]), np.full(3, np.nan),
                             ("a", "a", "b"))
    volume = fx.density_volume(fixations, 5, (H, W), sigma=2.0)
    assert volume.shape == (5, H, W)
    assert [float(v.sum()) for v in volume] == pytest.approx([0, 1, 0, 1, 0], abs=1e-5)


def test_clusters_and_hotspot_candidates():
    xy = np.array([[10, 10], [12, 10], [11, 12], [60, 40], [61, 41]], float)
    weights = np.array([1, 1, 1, 5, 5], float)
    clusters = fx.fixation_clusters(xy, radius=5, weights=weights)
    assert [c.count for c in clusters] == [2, 3]  # heaviest first: 10 > 3
    assert (clusters[0].x, clusters[0].y) == pytest.approx((60.5, 40.5))
    fixations = fx.Fixations(np.zeros(5, int), xy, weights, ("o",) * 5)
    mask = np.zeros((H, W), bool)
    mask[5:20, 5:20] = True
    (inside,) = fx.hotspot_candidates(fixations, 0, (H, W), radius=5, mask=mask)
    assert (inside.x, inside.y) == pytest.approx((11, 32 / 3))
    assert fx.hotspot_candidates(fixations, 3, (H, W)) == []
    points = fx.gaze_prompt_points(fixations, 0, (H, W), radius=5)
    assert points.tolist() == [[60, 40], [61, 41]]
    with pytest.raises(AnnotationError, match="no fixation on frame 7"):
        fx.gaze_prompt_points(fixations, 7, (H, W))


def test_fixation_csv_initialises_an_object_through_the_session(tmp_path):
    from napari_hotspot.sample_data import make_sample_video
    from napari_hotspot.session import HotspotSession

    sample = make_sample_video(num_frames=3, height=96, width=128)
    hx, hy = sample.hotspots[1, 1, :2]  # the bird's head on frame 1
    rows = [f"{1 / 24 + 0.001 + 0.004 * k:.4f},{hx + dx:.2f},{hy + dy:.2f},{150 + k},obs{k}"
            for k, (dx, dy) in enumerate([(0, 0), (1.5, -1), (-1, 1), (0.5, 0.5)])]
    rows.append(f"{1 / 24 + 0.01:.4f},5,90,100,obs9")  # a stray glance far away
    path = write(tmp_path, "time,x,y,duration,observer\n" + "\n".join(rows) + "\n")
    fixations = fx.read_fixations_csv(path, fx.TimeBase(24.0), num_frames=3, frame_size=(96, 128))
    assert fixations.frames.tolist() == [1] * 5
    store = AnnotationStore(3, 96, 128)
    session = HotspotSession(sample.frames, long_side=256)
    result = fx.init_object_from_gaze(session, store, fixations, frame=1)
    assert store.object_ids == [1] and session.anchors(1) == [1]
    entry = store.get(1, 1)
    assert entry.provenance == Provenance.KEYFRAME and entry.annotator == "gaze"
    assert entry.mask.shape == (96, 128) and entry.mask.any()
    assert np.array_equal(entry.mask, result.mask)
    assert entry.hotspot is not None and entry.hotspot.in_image(96, 128)
    assert result.source == "gaze"
    # hotspot candidates from the same fixations: the head cluster wins over the stray glance
    best = fx.hotspot_candidates(fixations, 1, (96, 128))[0]
    assert np.hypot(best.x - hx, best.y - hy) < 2.0
    with pytest.raises(AnnotationError, match="no fixation on frame 0"):
        fx.init_object_from_gaze(session, store, fixations, frame=0)
    assert store.object_ids == [1]  # the failed initialisation added nothing
