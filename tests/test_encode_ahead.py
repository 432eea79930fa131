"""Encoding the next frame on a second thread while the heads track this one (encode_ahead.py)."""

import threading

import numpy as np
import pytest
import torch

from napari_hotspot.encode_ahead import EncodeAhead, ThreadBalance, ahead_threads, split_threads
from napari_hotspot.session import HotspotSession


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_frames_asked_for_ahead_are_encoded_on_another_thread_with_the_threads_given(two_threads):
    calls = []

    def encode(frame):
        calls.append((threading.current_thread().name, torch.get_num_threads()))
        return frame * 10

    with EncodeAhead(encode, threads=1) as ahead:
        ahead.request(3)
        ahead.request(3)  # asked twice, encoded once
        assert ahead.take(3) == 30
        assert ahead.take(3) is None and ahead.take(4) is None  # taken already / never asked for
    assert calls == [("napari-hotspot-encode_0", 1)]
    assert torch.get_num_threads() == 2  # the caller's own count is never touched


def test_split_threads_gives_the_count_back_even_on_error(two_threads):
    with pytest.raises(RuntimeError):
        with split_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("a step failed")
    assert torch.get_num_threads() == 2
    assert ahead_threads() == 1


def test_an_encoding_error_is_raised_where_the_frame_is_taken(two_threads):
    def encode(frame):
        raise OSError(f"frame {frame} is corrupt")

    with EncodeAhead(encode, threads=1) as ahead:
        ahead.request(7)
        with pytest.raises(OSError, match="frame 7 is corrupt"):
            ahead.take(7)


def test_one_thread_is_not_split():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert ahead_threads() == 0
    finally:
        torch.set_num_threads(before)


def _masks(sample, models, ahead: bool, stop_after=None):
    s = HotspotSession(sample.frames[:12], models, long_side=256)
    s.encode_ahead = ahead
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    s.add_prompt(0, 2, mask=sample.masks[0] == 2)
    encoder_threads = set()
    real = s.models.encoder.forward

    def spy(x, **kwargs):
        encoder_threads.add(threading.current_thread().name)
        return real(x, **kwargs)

    s.models.encoder.forward = spy
    try:
        out = {}
        for r in s.propagate():
            out[(r.frame, r.object_id)] = r.mask
            if stop_after is not None and len(out) == stop_after:
                break
    finally:
        del s.models.encoder.forward
    return out, encoder_threads


def test_a_sweep_encoding_ahead_tracks_as_one_that_does_not(sample, models, two_threads):
    plain, plain_threads = _masks(sample, models, ahead=False)
    ahead, ahead_threads = _masks(sample, models, ahead=True)
    assert plain_threads == {threading.current_thread().name}
    assert "napari-hotspot-encode_0" in ahead_threads
    assert ahead.keys() == plain.keys() and len(plain) == 22  # frames 1..11, two objects
    # One thread per op instead of two may round differently; the masks stay the same object.
    for k in plain:
        inter, union = (plain[k] & ahead[k]).sum(), (plain[k] | ahead[k]).sum()
        assert union == 0 or inter / union > 0.98, k
    assert torch.get_num_threads() == 2


def test_the_sweeps_steps_run_on_half_the_threads_and_its_caller_keeps_its_own(sample, models, two_threads,
                                                                              monkeypatch):
    from napari_hotspot import session as session_module

    counts = []
    real_step = session_module.track_step
    monkeypatch.setattr(session_module, "track_step",
                        lambda *a, **kw: counts.append(torch.get_num_threads()) or real_step(*a, **kw))
    s = HotspotSession(sample.frames[:8], models, long_side=256)
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    between = [torch.get_num_threads() for _ in s.propagate()]
    assert len(counts) >= 7 and set(counts) == {1}  # (the anchor's distractor passes are steps too)
    assert between == [2] * 7


def test_a_sweep_left_suspended_on_a_model_thread_changes_no_threads_count(sample, models, two_threads):
    # The dock steps a sweep on its model thread, one `next` at a time; its Cancel leaves the generator
    # suspended, and it is collected later on any thread.
    from napari_hotspot.compute import ComputeThread

    model_thread = ComputeThread("test-model-thread")
    model_thread.run(torch.set_num_threads, 2)
    s = HotspotSession(sample.frames[:12], models, long_side=256)
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    sweep = s.propagate()
    for _ in range(3):
        model_thread.run(next, sweep)
    assert model_thread.run(torch.get_num_threads) == 2  # suspended between two steps
    # A new sweep of the same session while the old one is still suspended, then the old one dropped.
    second = s.propagate(end_frame=5)
    assert [r.frame for r in model_thread.run(list, second)] == [1, 2, 3, 4, 5]
    del sweep
    import gc

    gc.collect()
    assert model_thread.run(torch.get_num_threads) == 2 and torch.get_num_threads() == 2
    assert not any(t.name.startswith("napari-hotspot-encode") for t in threading.enumerate())


def test_a_frame_encoded_past_a_sweeps_end_is_kept_and_never_encoded_twice(sample, models, two_threads):
    s = HotspotSession(sample.frames[:12], models, long_side=256)
    encoded = []
    real = s._encode_frame
    s._encode_frame = lambda f, **kw: encoded.append(f) or real(f, **kw)  # both threads encode through it
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    s.add_prompt(6, 1, mask=sample.masks[6] == 1)
    for _ in range(5):
        assert [r.frame for r in s.propagate(stop_at_keyframe=True)] == [1, 2, 3, 4, 5]
        # Frame 7 is asked for on reaching keyframe 6: the sweep ends before it is used. Encoded by
        # then, it is kept; still queued, it is never encoded (which of the two is a race).
        assert (7 in s._features) == (7 in encoded)
    assert [r.frame for r in s.propagate(start_frame=6, end_frame=8)] == [7, 8]
    assert sorted(encoded) == list(range(12))[:9] and len(encoded) == len(set(encoded)), encoded


def test_drain_keeps_what_was_encoded_and_drops_a_failure(two_threads):
    def encode(frame):
        if frame == 2:
            raise OSError("corrupt")
        return frame

    ahead = EncodeAhead(encode, threads=1)
    ahead.request(1)
    ahead.request(2)
    import time

    time.sleep(0.2)  # both done
    assert ahead.drain() == {1: 1}
    ahead.request(3)  # closed: ignored
    assert ahead.take(3) is None


def test_the_encoding_thread_correlates_the_next_frame_with_each_anchor(sample, models, two_threads, monkeypatch):
    """The anchor correlation depends on the frame and the anchor only: the encoding thread computes it
    for the next frame, once per anchor, and the tracking step uses it (equal to its own, as computed
    by the same function)."""
    from napari_hotspot import session as session_module
    from napari_hotspot.models import tracking

    by_thread = []
    real = tracking.anchor_correlation

    def spy(keys, anchor):
        by_thread.append(threading.current_thread().name.startswith("napari-hotspot-encode"))
        return real(keys, anchor)

    monkeypatch.setattr(tracking, "anchor_correlation", spy)  # a step's own, where none was prepared
    monkeypatch.setattr(session_module, "anchor_correlation", spy)  # the encoding thread's
    # The encoding thread keeps the shared work here (which thread should is ThreadBalance's, tested below:
    # with the search window the tracking thread can be the lighter one on these small objects).
    monkeypatch.setattr(session_module.ThreadBalance, "ahead", lambda self: True)
    s = HotspotSession(sample.frames[:8], models, long_side=256)
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    s.add_prompt(0, 2, mask=sample.masks[0] == 2)
    s.preflight([1, 2])
    by_thread.clear()
    out = list(s.propagate(preflight=False))
    assert len(out) == 14
    # Frames 2-7 came with both objects' correlations; frame 1 was asked for before the sweep met its
    # anchors, and the distractor memory's passes over the anchor frame run on the sweep's thread.
    assert by_thread.count(True) == 12
    assert by_thread.count(False) == 2 + 2 * session_module.DISTRACTOR_PASSES
    assert s.timings["heads_ahead"] > 0


def test_the_shared_work_goes_to_the_thread_with_less_of_its_own(monkeypatch):
    from napari_hotspot import encode_ahead

    clock = [0.0]
    monkeypatch.setattr(encode_ahead.time, "perf_counter", lambda: clock[0])
    balance = ThreadBalance()
    assert balance.ahead()  # nothing measured yet: the encoding thread, as before

    def frame(encode_s, track_s, shared_here=0.0):
        balance.started()
        balance.encoded(encode_s)
        clock[0] += track_s + shared_here
        balance.shared_here(shared_here)
        balance.finished()

    for _ in range(10):  # the decoder is the heavier: the encoding thread takes the shared work
        frame(0.015, 0.023)
    assert balance.ahead()
    for _ in range(10):  # the tracking thread's own work got lighter (its shared work not counted)
        frame(0.015, 0.010, shared_here=0.004)
    assert not balance.ahead() and abs(balance.track_s - 0.010) < 1e-3
    balance.finished()  # a second call without a frame started measures nothing
    assert abs(balance.track_s - 0.010) < 1e-3
    balance.started()
    clock[0] += 0.050  # an anchor's own frame (encoded here, its distractor passes): not a sample
    balance.skip()
    balance.finished()
    assert abs(balance.track_s - 0.010) < 1e-3
    before = balance.track_s
    frame(0.015, 5.0)  # a sweep left paused for seconds counts as a slow frame, not as 500 of them
    assert balance.track_s <= before * (1 + 2 * ThreadBalance.SMOOTHING) + 1e-9


def test_a_sweep_tracks_the_same_whichever_thread_runs_the_anchor_correlations(sample, models, two_threads,
                                                                               monkeypatch):
    from napari_hotspot import session as session_module

    runs = {}
    for ahead in (True, False):
        monkeypatch.setattr(ThreadBalance, "ahead", lambda self, ahead=ahead: ahead)
        where = []
        real = session_module.anchor_correlation
        monkeypatch.setattr(session_module, "anchor_correlation",
                            lambda *a, **kw: where.append(threading.current_thread().name) or real(*a, **kw))
        s = HotspotSession(sample.frames[:10], models, long_side=256)
        s.add_prompt(0, 1, mask=sample.masks[0] == 1)
        s.mark_absent(4, 1)  # frames 5-9 search for the object again (`_search_step`) until found
        runs[ahead] = {r.frame: r.mask for r in s.propagate()}
        on_encoder = sum(name.startswith("napari-hotspot-encode") for name in where)
        assert (on_encoder >= 7) if ahead else (on_encoder == 0 and len(where) >= 7), where
        monkeypatch.setattr(session_module, "anchor_correlation", real)
    assert runs[True].keys() == runs[False].keys() and len(runs[True]) == 8  # frame 4: absent, no result
    assert all(np.array_equal(runs[True][f], runs[False][f]) for f in runs[True])
    assert any(runs[True][f].any() for f in range(5, 10))  # found again
