"""Encoding the next frame on a second thread while the heads track this one (encode_ahead.py)."""

import threading

import numpy as np
import pytest
import torch

from napari_hotspot.encode_ahead import EncodeAhead, worth_encoding_ahead
from napari_hotspot.session import HotspotSession


@pytest.fixture()
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_frames_asked_for_ahead_are_encoded_on_another_thread(two_threads):
    callers = []

    def encode(frame):
        callers.append(threading.current_thread().name)
        return frame * 10

    with EncodeAhead(encode) as ahead:
        assert torch.get_num_threads() == 1  # the two threads share the two cores
        ahead.request(3)
        ahead.request(3)  # asked twice, encoded once
        assert ahead.take(3) == 30
        assert ahead.take(3) is None and ahead.take(4) is None  # taken already / never asked for
    assert callers == ["napari-hotspot-encode_0"]
    assert torch.get_num_threads() == 2


def test_the_threads_come_back_once_the_last_user_closes(two_threads):
    a = EncodeAhead(lambda f: f)
    b = EncodeAhead(lambda f: f)
    assert torch.get_num_threads() == 1 and worth_encoding_ahead()
    a.close()
    assert torch.get_num_threads() == 1
    b.close()
    b.close()  # twice is harmless
    assert torch.get_num_threads() == 2


def test_an_encoding_error_is_raised_where_the_frame_is_taken(two_threads):
    def encode(frame):
        raise OSError(f"frame {frame} is corrupt")

    with EncodeAhead(encode) as ahead:
        ahead.request(7)
        with pytest.raises(OSError, match="frame 7 is corrupt"):
            ahead.take(7)
    assert torch.get_num_threads() == 2


def test_one_thread_is_not_split():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert not worth_encoding_ahead()
    finally:
        torch.set_num_threads(before)


def _masks(sample, models, ahead: bool, stop_after=None):
    s = HotspotSession(sample.frames[:12], models, long_side=256)
    s.encode_ahead = ahead
    s.add_prompt(0, 1, mask=sample.masks[0] == 1)
    s.add_prompt(0, 2, mask=sample.masks[0] == 2)
    encoder_threads = set()
    real = s.models.encoder.forward

    def spy(x):
        encoder_threads.add(threading.current_thread().name)
        return real(x)

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


def test_a_sweep_left_early_gives_the_threads_back(sample, models, two_threads):
    out, _ = _masks(sample, models, ahead=True, stop_after=3)
    assert len(out) == 3
    import gc

    gc.collect()  # the abandoned generator is closed: its finally block shuts the worker down
    assert torch.get_num_threads() == 2
    assert not any(t.name.startswith("napari-hotspot-encode") for t in threading.enumerate())
