"""The process's one model thread and the session lock that sends work to it (napari_hotspot.compute)."""

import threading
import time

import numpy as np
import pytest

from napari_hotspot.compute import ComputeThread, SessionLock


def test_run_returns_the_result_from_one_thread_whoever_calls():
    compute = ComputeThread(name="test-compute")
    seen = []

    def where(tag):
        seen.append(threading.current_thread().name)
        return tag * 2

    callers = [threading.Thread(target=lambda i=i: compute.run(where, i)) for i in range(4)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert compute.run(where, 21) == 42
    assert set(seen) == {"test-compute"} and len(seen) == 5


def test_run_raises_the_callers_exception_and_the_thread_goes_on():
    compute = ComputeThread(name="test-compute")

    def fail():
        raise ValueError("bad frame")

    with pytest.raises(ValueError, match="bad frame"):
        compute.run(fail)
    assert compute.run(lambda: "still here") == "still here"


def test_run_inside_run_does_not_deadlock():
    compute = ComputeThread(name="test-compute")
    assert compute.run(lambda: compute.run(lambda: 7) + 1) == 8


def test_session_lock_run_waits_for_a_holder_and_runs_on_the_model_thread():
    compute = ComputeThread(name="test-compute")
    lock = SessionLock(compute)
    order = []
    with lock:  # held here: a run from another thread must wait for the release
        caller = threading.Thread(target=lambda: order.append(lock.run(lambda: threading.current_thread().name)))
        caller.start()
        time.sleep(0.05)
        assert order == [] and caller.is_alive()
        order.append("released")
    caller.join(5)
    assert order == ["released", "test-compute"]
    assert not lock.locked()
    assert lock.run(lambda: lock.run(lambda: 3)) == 3  # a run inside a run: the caller holds the lock


def test_locked_call_sends_work_to_the_model_thread_only_for_a_session_lock():
    from napari_hotspot.compute import locked_call

    compute = ComputeThread(name="test-compute")
    assert locked_call(SessionLock(compute), lambda: threading.current_thread().name) == "test-compute"
    # a plain lock (job bodies iterated directly): the step runs here, holding it
    plain = threading.Lock()
    assert locked_call(plain, lambda: (threading.current_thread().name, plain.locked())) == (
        threading.current_thread().name, True)


def test_the_dock_tracks_on_the_model_thread(monkeypatch):
    """The tracking job's model work lands on the process's model thread (one OpenMP team)."""
    import napari_hotspot.session as session_module
    from napari_hotspot._napari.workers import Sweep, propagation_batches
    from napari_hotspot.compute import compute_thread
    from napari_hotspot.models.weights import ModelBundle
    from napari_hotspot.session import HotspotSession

    calls = []
    real = session_module.track_step

    def spy(*args, **kwargs):
        calls.append(threading.current_thread() is compute_thread().thread)
        return real(*args, **kwargs)

    frames = np.zeros((4, 64, 96, 3), np.uint8)
    frames[:, 20:44, 30:60] = 200
    session = HotspotSession(frames, ModelBundle.load())
    mask = np.zeros((64, 96), bool)
    mask[20:44, 30:60] = True
    SessionLock().run(session.add_prompt, 0, 1, mask=mask)
    monkeypatch.setattr(session_module, "track_step", spy)
    batches = list(propagation_batches(session, SessionLock(), [Sweep({"direction": "forward"})]))
    assert sum(len(b) for b in batches) == 3
    assert calls and all(calls)


def test_a_run_sent_by_other_code_still_takes_the_lock():
    compute = ComputeThread(name="test-compute")
    lock = SessionLock(compute)
    # on the model thread, but not inside this lock's own run: the lock is taken for fn
    assert compute.run(lambda: lock.run(lock.locked)) is True
    assert not lock.locked()


def test_on_model_thread_moves_method_calls_only():
    from napari_hotspot.compute import OnModelThread

    compute = ComputeThread(name="test-compute")

    class Session:
        num_frames = 5

        def where(self, x):
            return threading.current_thread().name, x

    proxy = OnModelThread(Session(), compute)
    assert proxy.num_frames == 5
    assert proxy.where(3) == ("test-compute", 3)
