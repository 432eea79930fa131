"""GUI tests of per-video adaptation in the hotspot dock (napari_hotspot._napari.controller / widget / workers):
the "Adapt (s)" budget, "Adapt now", "Reset adaptation", adaptation before a run, Cancel, and the adapted
trackers saved with and restored from a project (a corrupt file falls back to the base model).

Headless: ``xvfb-run -a python -m pytest tests/_napari/test_widget_adaptation.py``. Budgets are tiny (a few
optimiser steps via ``adapt_max_steps``) on a small synthetic video at working size 256, so each
adaptation takes about a second.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_hotspot._napari.controller import adaptation_file_name
from napari_hotspot._napari.widget import HotspotWidget
from napari_hotspot.annotations import load_project
from napari_hotspot.errors import ProjectIOError, PromptError
from napari_hotspot.sample_data import make_sample_video

pytestmark = pytest.mark.gui

T, H, W = 8, 96, 128
LONG_SIDE = 256
BUDGET_S = 30.0  # never reached: adapt_max_steps ends each adaptation first
STEPS = 2


@pytest.fixture(scope="module")
def sample():
    return make_sample_video(num_frames=T, height=H, width=W)




def open_with_widget(viewer, models, path, autosave_dir, adapt_seconds=BUDGET_S):
    viewer.open(str(path), plugin="napari-hotspot")
    widget = HotspotWidget(viewer, models=models, long_side=LONG_SIDE, autosave_dir=autosave_dir,
                           adapt_seconds=adapt_seconds)
    viewer.window.add_dock_widget(widget, name="Hotspot tracking")
    widget.controller.adapt_max_steps = STEPS
    assert widget.controller.ready
    return widget, widget.controller


@pytest.fixture
def setup(make_napari_viewer, models, sample_folder, tmp_path, monkeypatch):
    from napari_hotspot._napari import workers

    monkeypatch.setattr(workers, "ADAPT_CHUNK_SECONDS", 1e-6)  # one optimiser step per lock hold
    viewer = make_napari_viewer()
    widget, c = open_with_widget(viewer, models, sample_folder.frames, tmp_path / "autosave")
    yield viewer, widget, c
    widget.shutdown()


def paint(c, sample, frame):
    """Paint object 1's ground-truth mask on ``frame`` (a USER_CORRECTED keyframe, as a brush would)."""
    ys, xs = np.nonzero(sample.masks[frame] == 1)
    c.layer("masks").data_setitem((np.full_like(ys, frame), ys, xs), 1)
    assert c.last_error is None and c.store.get(1, frame).is_keyframe, c.last_error


def masks_of(c, oid=1):
    return np.stack([c.store.mask(oid, t) if c.store.get(oid, t) is not None else np.zeros((H, W), bool)
                     for t in range(T)])


def track(widget, c):
    widget.direction_combo.setCurrentText("forward")
    widget.track_button.click()
    assert c.wait(120) and c.last_error is None, c.last_error


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_adapt_now_in_a_worker_with_progress_prompts_meanwhile_then_reset(setup, sample):
    viewer, widget, c = setup
    paint(c, sample, 0)
    assert widget.adapt_spin.value() == BUDGET_S
    assert widget.adapt_label.text() == "base model (1 new keyframe to learn before tracking)"
    assert c.adaptation_pending(1) == [0]
    events = []

    def on_progress(p):
        events.append(p)
        if p.phase == "training" and p.steps == 1:  # the lock is free between chunks: a correction gets in
            paint(c, sample, 3)

    c.adapt_progress.connect(on_progress)
    widget.adapt_button.click()
    assert c.adapting and c.job("adapt") is not None and c.job("adapt").state["pbar"].total == 100  # napari's progress bar
    from qtpy.QtCore import QThread, QThreadPool

    from napari_hotspot._napari.workers import POOL_HEADROOM

    # spare pool threads for Qt's own tasks: a pool full of workers waiting for the GIL deadlocks
    assert QThreadPool.globalInstance().maxThreadCount() >= QThread.idealThreadCount() + POOL_HEADROOM
    assert widget.cancel_button.isEnabled() and not widget.track_button.isEnabled()
    assert not widget.adapt_button.isEnabled() and widget.add_button.isEnabled()
    assert c.wait(120) and c.last_error is None, c.last_error
    assert [p.phase for p in events][:2] == ["frames", "training"] and events[-1].done
    assert events[-1].steps == STEPS and [p.steps for p in events if p.phase == "training"] == [1, 2]
    assert 3 in c.store.keyframes(1)  # the correction made while adapting
    assert c.session.is_adapted(1) and widget.cancel_button.isEnabled() is False
    learnt = set(events[-1].learnt)
    assert 0 in learnt and (3 in learnt) == (c.adaptation_pending(1) == [])  # learnt now, or next time
    summary = c.adaptation_summary(1)
    assert summary["steps"] == STEPS
    assert widget.adapt_label.text().startswith(f"adapted: {STEPS} steps, ")
    assert c.autosaver.dirty  # the adapted weights go into the next autosave
    # Reset: back to the base model; the label says so and the keyframes wait to be learnt again
    widget.reset_adapt_button.click()
    assert not c.session.is_adapted(1) and c.adaptation_summary(1) is None
    assert c.adaptation_pending(1) == [0, 3]
    assert widget.adapt_label.text().startswith("base model")
    # budget 0 = off: nothing to adapt with, and Adapt now says why
    widget.adapt_spin.setValue(0)
    assert c.adapt_seconds == 0 and widget.adapt_spin.text() == "off"
    assert widget.adapt_label.text() == "base model"
    widget.adapt_button.click()
    assert not c.adapting and isinstance(c.last_error, PromptError) and "0 s" in str(c.last_error)


def test_cancel_keeps_what_was_learnt_and_tracking_still_works_then_reset_gives_base(setup, sample):
    viewer, widget, c = setup
    paint(c, sample, 0)
    widget.adapt_spin.setValue(0)  # budget 0: Track propagates at once, with the base model
    widget.track_button.click()
    assert c.job("track") is not None and not c.adapting
    assert c.wait(120) and c.last_error is None
    base = masks_of(c)
    assert all(c.store.get(1, t) is not None for t in range(T))
    # Track with a budget: the unlearnt keyframe is learnt first; Cancel during it stops the whole run
    widget.adapt_spin.setValue(BUDGET_S)
    c.adapt_max_steps = None
    c.adapt_progress.connect(lambda p: widget.cancel_button.click() if p.phase == "training" else None)
    widget.track_button.click()
    assert c.running and c.adapting and c.job("track") is None
    assert c.wait(120)
    assert not c.running and not c.adapting and "cancelled" in widget.status_label.text()
    assert "tracking not started" in widget.status_label.text()
    assert c.session.is_adapted(1)  # it keeps the steps that finished
    assert c.adaptation_pending(1) == [0]  # the budget was not spent: the next run adapts again
    np.testing.assert_array_equal(masks_of(c), base)  # no propagation ran
    # the session is still usable: propagation with what was learnt
    widget.adapt_spin.setValue(0)
    track(widget, c)
    assert all(c.store.get(1, t) is not None for t in range(T))
    # Reset: the base model again, so the same masks as the first run
    widget.reset_adapt_button.click()
    assert not c.session.is_adapted(1)
    track(widget, c)
    np.testing.assert_array_equal(masks_of(c), base)


def test_track_adapts_only_when_keyframes_are_new(setup, sample):
    viewer, widget, c = setup
    paint(c, sample, 0)
    widget.track_button.click()  # adapts first, then propagates
    assert c.adapting and c.running
    assert c.wait(120) and c.last_error is None, c.last_error
    assert c.session.is_adapted(1) and c.adaptation_pending(1) == []
    assert c.adaptation_summary(1)["steps"] == STEPS
    assert all(c.store.get(1, t) is not None for t in range(T))
    widget.track_button.click()  # nothing new: straight to propagation
    assert not c.adapting and c.job("track") is not None
    assert c.wait(120)
    paint(c, sample, 5)  # a correction: learnt before the next run
    assert c.adaptation_pending(1) == [5] and "1 new keyframe" in widget.adapt_label.text()
    widget.track_button.click()
    assert c.adapting
    assert c.wait(120) and c.last_error is None
    summary = c.adaptation_summary(1)
    assert summary["steps"] == 2 * STEPS and summary["frames"] == [0, 5] and summary["seconds"] > 0


def test_project_keeps_the_adapted_tracker(setup, make_napari_viewer, models, tmp_path, sample):
    viewer, widget, c = setup
    paint(c, sample, 0)
    widget.adapt_button.click()
    assert c.wait(120) and c.session.is_adapted(1)
    track(widget, c)
    adapted_masks = masks_of(c)
    weights = {k: v.clone() for k, v in c.session.adaptation_state(1)["model"].items()}
    project = c.save_project(tmp_path / "p.hotspot")
    weight_file = project / adaptation_file_name(1)
    assert weight_file.is_file()
    _store, meta = load_project(project)
    record = meta["extra"]["napari_hotspot_widget"]["adaptation"]["1"]
    assert record["file"] == "adaptation/object_00001.pt" and record["steps"] == STEPS and record["frames"] == [0]
    # the autosave carries it too
    c.autosaver.interval_s = 0.0
    c.autosaver.mark_dirty()
    assert c.autosave_tick() and (c.autosaver.path / adaptation_file_name(1)).is_file()

    # reopen in another viewer: the same weights, nothing pending, and propagation gives the same masks
    other = make_napari_viewer()
    widget2, c2 = open_with_widget(other, models, project, tmp_path / "autosave2")
    assert c2.session.is_adapted(1) and c2.adaptation_pending(1) == []
    assert same_weights(c2.session.adaptation_state(1)["model"], weights)
    assert widget2.adapt_label.text().startswith(f"adapted: {STEPS} steps")
    c2.select_object(1)
    track(widget2, c2)  # no adaptation first: the keyframe was learnt before saving
    assert c2.adaptation_summary(1)["steps"] == STEPS
    np.testing.assert_array_equal(masks_of(c2), adapted_masks)

    # a corrupt weight file: a clear warning, the base model, the annotations intact
    assert c2.save_project() == project  # (else opening autosaves the unsaved run over the broken file)
    weight_file.write_bytes(b"not a torch file")
    before = masks_of(c2)
    assert c2.open_project(project)
    assert isinstance(c2.last_error, ProjectIOError)
    assert "object_00001.pt" in str(c2.last_error) and "base model" in str(c2.last_error)
    assert not c2.session.is_adapted(1) and c2.adaptation_pending(1) == [0]
    np.testing.assert_array_equal(masks_of(c2), before)
    c2.last_error = None
    widget2.adapt_spin.setValue(0)
    track(widget2, c2)  # still usable
    # the next save drops the unreadable file (the object is on the base model)
    assert c2.save_project() == project
    assert not weight_file.exists()
    assert json.loads((project / "project.json").read_text())["extra"]["napari_hotspot_widget"]["adaptation"] == {}
    widget2.shutdown()

    # Reset adaptation removes the weights from the next save
    saved = c.save_project(tmp_path / "q.hotspot")
    assert (saved / adaptation_file_name(1)).is_file()
    c.reset_adaptation()
    c.save_project()
    assert not (saved / adaptation_file_name(1)).exists() and not (saved / "adaptation").exists()


# ---------------------------------------------------------------------------- completing prompt masks
def click_object_1(c, sample, frame=0):
    ys, xs = np.nonzero(sample.masks[frame] == 1)
    k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    c.add_click(frame, float(xs[k]), float(ys[k]), positive=True)
    assert c.last_error is None and c.store.get(1, frame).is_keyframe, c.last_error
    # The mask the click ends with once its refinement (in a thread) is in: a plain prompt's.
    from napari_hotspot.session import HotspotSession

    session = HotspotSession(c._source, c.session.models, long_side=LONG_SIDE)
    return session.add_prompt(frame, 1, points=[(float(xs[k]), float(ys[k]))]).mask


def test_a_click_mask_is_completed_once_before_adaptation_and_undoes_apart(setup, sample, monkeypatch):
    from napari_hotspot.session import PromptResult

    viewer, widget, c = setup
    assert widget.complete_spin.value() == c.complete_frames == 5
    clicked = click_object_1(c, sample)
    assert c.completion_pending(1) == [0]
    completed = sample.masks[0] == 1  # what the (patched) round trip answers: the whole object
    order = []
    real_complete, real_add = c.session.complete_prompt, c.session.add_adaptation_frames

    def complete(oid, frame, frames):
        order.append(("complete", frame, frames))
        real_complete(oid, frame, frames)  # marks it done
        return PromptResult(frame, oid, completed, c.session._to_frame((10.0, 10.0)), 1.0, "click")

    monkeypatch.setattr(c.session, "complete_prompt", complete)
    monkeypatch.setattr(c.session, "add_adaptation_frames",
                        lambda oid, max_frames=None: order.append(("adapt", oid)) or real_add(oid, max_frames))
    widget.direction_combo.setCurrentText("forward")
    widget.track_button.click()
    assert c.running and c.busy and c.job("complete") is not None and not widget.track_button.isEnabled()
    assert c.wait(120) and c.last_error is None, c.last_error
    assert order[0] == ("complete", 0, 5) and order[1][0] == "adapt"  # adaptation learns the completed mask
    entry = c.store.get(1, 0)
    assert entry.is_keyframe and np.array_equal(entry.mask, completed)
    assert np.array_equal(c.layer("masks").data[0] == 1, completed)
    assert c.completion_pending(1) == [] and all(c.store.get(1, t) is not None for t in range(T))
    widget.track_button.click()  # completed once: straight to propagation
    assert c.job("complete") is None and c.job("track") is not None
    assert c.wait(120) and [o for o in order if o[0] == "complete"] == [("complete", 0, 5)]
    c.undo()  # the second run
    c.undo()  # the first run
    assert c.store.frames_with(1) == [0] and np.array_equal(c.store.mask(1, 0), completed)
    c.undo()  # the completion: back to the click's own mask
    assert np.array_equal(c.store.mask(1, 0), clicked)


def test_cancel_while_completing_then_completion_off(setup, sample):
    viewer, widget, c = setup
    widget.complete_spin.setValue(3)
    click_object_1(c, sample)
    assert c.completion_pending(1) == [0]
    widget.track_button.click()
    assert c.job("complete") is not None and c.running and widget.cancel_button.isEnabled()
    widget.cancel_button.click()
    assert c.running  # until the worker has stopped
    assert c.wait(120) and not c.running
    assert c.store.frames_with(1) == [0] and c.job("track") is None and not c.adapting  # nothing started after it
    # Off: a new click's mask is tracked and learnt as it is.
    widget.complete_spin.setValue(0)
    assert c.complete_frames == 0 and widget.complete_spin.text() == "off"
    clicked = click_object_1(c, sample, frame=2)
    assert c.completion_pending(1) == []
    track(widget, c)
    assert np.array_equal(c.store.mask(1, 2), clicked) and c.session.pending_completions(1) == []
    assert 2 in c.adaptation_summary(1)["frames"]


def test_an_adaptation_the_guard_does_not_keep_says_so_in_its_message(setup, sample, monkeypatch):
    """The notification at the end of an adaptation named its steps only; a copy the guard rejects now
    says that the base model tracks (as the label under the buttons did)."""
    from napari_hotspot.session import AdaptationVerdict, HotspotSession

    viewer, widget, c = setup
    paint(c, sample, 0)
    monkeypatch.setattr(HotspotSession, "adaptation_verdict",
                        lambda self, oid, judge=True: AdaptationVerdict(False, 0.2, 0.9, STEPS)
                        if self.is_adapted(oid) else None)
    messages = []
    c.status.connect(messages.append)
    widget.adapt_button.click()
    assert c.wait(120) and c.last_error is None, c.last_error
    done = [m for m in messages if m.startswith("adapted the tracker to")]
    assert done and "not kept, the base model tracks it" in done[-1]
