"""The dock's deferred layer refresh: requests merge into one run after the delay, ``flush`` runs a pending
one at once, a hold (a hotspot drag in progress) postpones it, ``cancel`` drops it."""

from __future__ import annotations

from napari_hotspot._napari.deferred import DeferredRefresh


def test_requests_merge_and_run_once_after_the_delay(qtbot):
    runs = []
    later = DeferredRefresh(lambda: runs.append(1), delay_ms=30)
    for _ in range(5):
        later.request()
    assert runs == [] and later.pending
    qtbot.waitUntil(lambda: runs == [1], timeout=2000)
    qtbot.wait(80)
    assert runs == [1] and not later.pending


def test_flush_runs_now_hold_postpones_and_cancel_drops(qtbot):
    runs, held = [], [True]
    later = DeferredRefresh(lambda: runs.append(1), delay_ms=30, hold=lambda: held[0])
    later.flush()
    assert runs == []  # nothing pending: nothing to run
    later.request()
    later.flush()
    assert runs == [] and later.pending  # held (a drag): it waits
    qtbot.wait(80)
    assert runs == []  # still held when it came due
    held[0] = False
    qtbot.waitUntil(lambda: runs == [1], timeout=2000)
    later.request()
    later.cancel()
    qtbot.wait(80)
    assert runs == [1] and not later.pending
