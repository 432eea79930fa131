"""The tracking dock's background jobs: one record per job and one path by which every job ends.

A tracking run is a chain of jobs, each in a napari thread worker: completing the masks of click and
box prompts, adapting the objects' trackers (``HotspotSession.preflight_steps``, the session's own
preflight, one lock-sized step at a time; ``workers``), then propagating. Prompting with a gaze file
is a job too. Each job is a ``Job`` record (worker, session, store batch, error, cancelled, next
step) and ends through ``JobsMixin._finish_job``: the record is forgotten, its store batch closed (one
undo step), a job of a session since replaced changes nothing more, and its kind's ending
(``_end_<kind>``) reports the error, the cancel, or the result and starts the next step.

``JobsMixin`` is a part of ``HotspotController`` (it uses the controller's store, session, layers and
signals); the adapted trackers' bookkeeping is Qt-free (``annotations.adapted_trackers``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_hotspot._napari.layer_data import (DIRECTIONS, POINTS_REFRESH_SECONDS, REFRESH_SECONDS, ROLE_MASKS,
                                              rgba)
from napari_hotspot.annotations import Provenance
from napari_hotspot.annotations.io_fixations import read_frame_fixations
from napari_hotspot.errors import HotspotError, PromptError

#: What each kind of job is (for its record and the dock's state).
JOB_KINDS = ("complete", "adapt", "track", "gaze")


def process_events() -> None:
    """What one turn of Qt's main loop does, for scripts and tests that wait without running it: pending
    events, then the widgets deleted later (napari's finished progress bars, whose deletion stops the
    status bar's "in progress" animation; ``processEvents`` alone never deletes them)."""
    from qtpy.QtCore import QEvent
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    QApplication.sendPostedEvents(None, QEvent.DeferredDelete)


@dataclass(eq=False)
class Job:
    """One background job of the dock and what its end needs."""

    kind: str  # one of JOB_KINDS
    session: Any  # the session it works for: at its end, a job of a replaced session changes nothing
    worker: Any = None
    exits: ExitStack = field(default_factory=ExitStack)  # holds its open store batch (one undo step)
    error: Exception | None = None
    cancelled: bool = False
    then: Callable[[], Any] | None = None  # the next step once it ends well (completion -> adaptation -> run)
    state: dict = field(default_factory=dict)  # what its kind keeps while it runs


class JobsMixin:
    """Starting, cancelling and ending the dock's background jobs (a part of ``HotspotController``)."""

    _video_removed = False  # the video layer left the viewer while jobs ran (`_on_layer_removed`)
    _waiting_for_cancel = False  # `_let_cancelled_jobs_end` is processing events
    _closed = False  # the dock's `close` has begun: no run starts any more

    # ------------------------------------------------------------------ the job record
    def job(self, kind: str) -> Job | None:
        """The running job of ``kind`` (``JOB_KINDS``), or None."""
        return self._jobs.get(kind)

    def workers(self) -> list:
        """Every thread worker the controller has started and not seen end (jobs, frame encoding, models)."""
        return [job.worker for job in self._jobs.values()] + [self._encode_worker, self._model_worker,
                                                              self._refine_worker]

    def _start_job(self, kind: str, *, batch: str | None = None, then: Callable[[], Any] | None = None,
                   **state) -> Job:
        """Record a job of ``kind`` for the current session (its worker is set by the caller), opening
        a store batch named ``batch`` that its results go into."""
        job = Job(kind, self.session, then=then, state=dict(state))
        if batch is not None:
            job.exits.enter_context(self.store.batch(batch))
        self._jobs[kind] = job
        return job

    def _job_signals(self, job: Job, yielded: Callable[[Job, Any], None] | None = None) -> dict[str, Any]:
        """The worker signals of a job: its results to ``yielded``, its error to the record, its end to
        ``_finish_job``."""
        connect = {"errored": lambda err: setattr(job, "error", err), "finished": lambda: self._finish_job(job)}
        if yielded is not None:
            connect["yielded"] = lambda value: yielded(job, value)
        return connect

    def _finish_job(self, job: Job) -> None:
        """The one end of every job: forget it, close its store batch (the layers already show its
        results: no full refresh for it), then its kind's ending (``_end_<kind>``), told whether the job
        still belongs to the video in use."""
        if self._jobs.get(job.kind) is job:
            del self._jobs[job.kind]
        self._muted = True
        try:
            job.exits.close()
        finally:
            self._muted = False
        current = self.session is not None and job.session is self.session and self.store is not None
        getattr(self, f"_end_{job.kind}")(job, current)
        if self._video_removed and not self._jobs and self.video_layer is not None:
            self._drop_removed_video()  # removed from the viewer while its jobs went on

    def _job_went_wrong(self, job: Job, cancelled_text: str) -> bool:
        """Report a job's error, or say it was cancelled; True when it did either (nothing follows it)."""
        if job.error is not None:
            self._report(job.error)
            return True
        if job.cancelled:
            self._info(cancelled_text)
            return True
        return False

    def _then(self, job: Job) -> None:
        """Start what comes after a job that ended well, if its video is still shown."""
        if job.then is not None and self.video_layer is not None and self.video_layer in self.viewer.layers:
            job.then()

    def cancel(self) -> None:
        """Stop the running propagation (frames done so far are kept, as one undo step) or adaptation
        (what the objects learnt so far is kept; the run it was to start does not start)."""
        for kind in JOB_KINDS:
            job = self._jobs.get(kind)
            if job is None:
                continue
            if kind != "gaze":
                job.cancelled = True
            if kind in ("complete", "adapt"):
                job.then = None  # the run it was to start does not start
            if kind == "adapt":
                job.state["stop"].set()
            if job.worker is not None:
                job.worker.quit()

    def _let_cancelled_jobs_end(self, timeout_s: float = 3.0) -> None:
        """A run the user has just cancelled stops at the end of its current frame (tens of ms): Track
        pressed meanwhile waits for that instead of being refused with "cancel it first"."""
        jobs = list(self._jobs.values())
        if not jobs or not all(job.cancelled for job in jobs) or self._waiting_for_cancel:
            return
        self._waiting_for_cancel = True
        try:
            end = time.monotonic() + timeout_s
            while self._jobs and time.monotonic() < end:
                process_events()
                time.sleep(0.005)
        finally:
            self._waiting_for_cancel = False

    def wait(self, timeout_s: float = 120.0) -> bool:
        """Process Qt events until the running job ends (scripts and tests); True if it ended."""
        end = time.monotonic() + timeout_s
        while (self.busy or self.adapting or self._encode_worker is not None or self._model_worker is not None
               or self._refine_worker is not None) and time.monotonic() < end:
            process_events()
            time.sleep(0.005)
        process_events()
        self.flush_layers()
        return not self.busy and not self.adapting

    def flush_layers(self) -> None:
        """Run the deferred refreshes of the hotspots and tracks layers now (scripts and tests that read
        the layers right after an edit; the viewer runs them a moment after it by itself)."""
        self._points_later.flush()
        self._tracks_later.flush()

    def _refresh_points_if_shown(self) -> None:
        """The deferred hotspots refresh (``_points_later``): the hotspots layer from the store."""
        if self.store is not None and self.video_layer is not None and self.video_layer in self.viewer.layers:
            self._refresh_points(tracks=False)

    def _refresh_tracks_if_shown(self) -> None:
        """The deferred tracks rebuild (``_tracks_later``)."""
        if self.store is not None and self.video_layer is not None and self.video_layer in self.viewer.layers:
            self._refresh_tracks({o.id: rgba(o.color) for o in self.store.objects})

    # ------------------------------------------------------------------ tracking
    def _prompted(self, oid: int) -> bool:
        """Whether the object has a keyframe with a mask to track from (not only frames where it is absent)."""
        return bool(self.store.object_keyframes(oid))

    def _track_ids(self) -> list[int]:
        if self.track_scope == "all":
            ids = [o for o in self.store.object_ids if self._prompted(o)]
            if not ids:
                raise PromptError("no object has a prompt yet: click, draw a box or press Auto first")
            return ids
        oid = self.selected_id
        if not oid or not self.store.has_object(oid):
            raise PromptError("select an object first (or set Objects to 'all')")
        if not self._prompted(oid):
            name = self.store.get_object(oid).name
            raise PromptError(f"{name} has no prompt yet: click, draw a box or press Auto first")
        return [oid]

    def track(self, direction: str | None = None, start_frame: int | None = None,
              stop_at_keyframe: bool = False, summary: str | None = None, combine: dict[int, str] | None = None):
        """Propagate the objects (widget settings) in ``direction``; returns the worker or None.

        With ``start_frame`` the sweep starts there (re-propagation) and, with ``stop_at_keyframe``,
        ends at the next keyframe; otherwise it covers ``track_range`` (all frames by default).
        Results stream into the store (one undo step per run) and the layers while it runs.
        With an adaptation budget (``adapt_seconds`` > 0), objects with keyframes their adaptation has
        not learnt yet are adapted first (the returned worker is then the adaptation's; Cancel stops
        the whole run). ``combine`` (object -> "remove" / "add", re-propagation from a click correction):
        its results only remove pixels from, or add pixels to, the masks already there
        (``corrections.combine_repropagated``).
        """
        direction = direction or self.track_direction
        try:
            if direction not in DIRECTIONS:
                raise PromptError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
            self._let_cancelled_jobs_end()  # first: what it processes may end the run, or the video
            if self._closed:
                return None  # the dock closed meanwhile
            self._require_session()
            self._require_no_jobs("start another run")
            ids = self._track_ids()
            self._sync_anchors(ids)
        except HotspotError as err:
            self._report(err)
            return None
        def adapt_then_propagate():
            learn = [oid for oid in ids if self.adaptation_pending(oid)] if self.adapt_seconds > 0 else []
            if learn:
                def then():
                    return self._start_propagation(direction, start_frame, stop_at_keyframe, ids, summary, combine)

                return self._start_adaptation(learn, then=then)
            return self._start_propagation(direction, start_frame, stop_at_keyframe, ids, summary, combine)

        return self._complete_then_start(ids, adapt_then_propagate)

    def _start_propagation(self, direction: str, start_frame: int | None, stop_at_keyframe: bool, ids: list[int],
                           summary: str | None = None, combine: dict[int, str] | None = None):
        from napari_hotspot._napari.workers import Sweep, start_propagation

        try:
            self._require_session()
            self._require_no_jobs("start another run")
            ids = [oid for oid in ids if self.store.has_object(oid) and self._prompted(oid)]
            if not ids:
                raise PromptError("no object to track is left")
            self._sync_anchors(ids)  # prompts and corrections made while the tracker adapted
        except HotspotError as err:
            self._report(err)
            return None
        last = self.num_frames - 1
        a, b = self.track_range if self.track_range is not None else (0, last)
        a, b = sorted((int(min(max(a, 0), last)), int(min(max(b, 0), last))))
        common = {"object_ids": ids, "stop_at_keyframe": stop_at_keyframe}
        sweeps = []
        if start_frame is not None:
            s = int(start_frame)
            if direction in ("forward", "both"):
                sweeps.append(Sweep({**common, "start_frame": s, "end_frame": b if not stop_at_keyframe else last,
                                     "direction": "forward"}))
            if direction in ("backward", "both"):
                sweeps.append(Sweep({**common, "start_frame": s, "end_frame": a if not stop_at_keyframe else 0,
                                     "direction": "backward"}))
        else:
            if direction in ("forward", "both"):
                sweeps.append(Sweep({**common, "start_frame": a, "end_frame": b, "direction": "forward"}))
            if direction in ("backward", "both"):
                sweeps.append(Sweep({**common, "start_frame": b, "end_frame": a, "direction": "backward"}))
        label = f"track {direction}" if start_frame is None else f"re-propagate {direction} from frame {start_frame}"
        now = time.perf_counter()
        job = self._start_job("track", batch=label, summary=summary, frames=0, last_refresh=now, last_points=now,
                              shown_changed=False, combine=dict(combine or {}))
        self._set_editable(False)
        job.worker = start_propagation(self.session, self.lock, sweeps,
                                       connect=self._job_signals(job, yielded=self._on_run_batch))
        self.run_state_changed.emit(True)
        self.status.emit(f"{label}…")
        return job.worker

    def repropagation_plan(self, object_ids: Iterable[int], frame: int,
                           sides: Sequence[str] = ("forward", "backward")) -> dict[str, tuple[int, int]]:
        """Per side, the first and last frame a re-propagation from ``frame`` can change: the frames up to
        each object's next keyframe on that side, where the object has a keyframe to start from, or
        ``frame`` is one where it is absent and the run looks for it past it (``TrackingOptions.reacquire``,
        as the session's ``_searches_past``). A side with nothing to change (the last frame, forward; a
        keyframe right next to it) is left out."""
        last = self.num_frames - 1
        plan = {}
        for side in sides:
            step = 1 if side == "forward" else -1
            frames: set[int] = set()
            for oid in object_ids:
                keys = {k for k in self.store.keyframes(oid)
                        if (e := self.store.get(oid, k)) is not None and e.packed_mask is not None}
                behind = [k for k in keys if (k <= frame if step > 0 else k >= frame)]
                if not behind:
                    continue  # nothing behind to track from on this side
                start = max(behind) if step > 0 else min(behind)
                if self.store.get(oid, start).is_absent:
                    # Only from the absence itself, where the run looks for the object past it (as the
                    # session's `_searches_past`: with the look of a keyframe behind it on this side;
                    # backward only where no keyframe with a mask comes before it). From a frame after
                    # it, a new search would blank that frame (a search takes its second frame).
                    masks = self.store.object_keyframes(oid)
                    if not (self.options.reacquire and frame == start
                            and any((k < start if step > 0 else k > start) for k in masks)
                            and (step > 0 or not any(k < start for k in masks))):
                        continue
                f = frame
                while 0 <= f <= last and (f == frame or f not in keys):
                    if f not in keys:
                        frames.add(f)
                    f += step
            if frames:
                plan[side] = (min(frames), max(frames)) if step > 0 else (max(frames), min(frames))
        return plan

    def repropagate_from_here(self, direction: str | None = None):
        """Propagate from the current frame up to the next keyframe on each side that has frames to change
        (``direction`` "forward" or "backward" keeps one side). Nothing starts, adaptation included,
        when no frame can change; the status says which frames it runs over."""
        t = self.current_frame
        sides = ("forward", "backward") if direction in (None, "both") else (direction,)
        try:
            if direction not in (None, *DIRECTIONS):
                raise PromptError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
            self._require_session()
            self._require_no_jobs("re-propagate")
            plan = self.repropagation_plan(self._track_ids(), t, sides)
            if not plan:
                where = {"forward": "after it", "backward": "before it"}
                raise PromptError(f"nothing to re-propagate from frame {t}: no frame "
                                  f"{' or '.join(where[s] for s in sides)} can change (a keyframe or the end of the "
                                  f"video is next)")
        except HotspotError as err:
            self._report(err)
            return None
        run = "both" if len(plan) == 2 else next(iter(plan))
        spans = [f"{side} over frames {a}-{b}" if a != b else f"{side} over frame {a}" for side, (a, b) in plan.items()]
        summary = f"re-propagated from frame {t}: " + ", ".join(spans)
        combine = self.click_correction_polarity(t)
        if combine:
            says = {"remove": "only removed pixels (negative clicks)", "add": "only added pixels (positive clicks)"}
            summary += "; " + ", ".join(f"{self.store.get_object(oid).name} {says[p]}" for oid, p in sorted(combine.items()))
        self.status.emit(summary.replace("re-propagated", "re-propagating", 1) + "…")
        return self.track(run, start_frame=t, stop_at_keyframe=True, summary=summary, combine=combine)

    def click_correction_polarity(self, frame: int) -> dict[int, str]:
        """Per object whose mask on ``frame`` is a correction made by clicks alone, all of one kind:
        "remove" (negative clicks) or "add" (positive). Re-propagation from there then only removes or
        only adds (``corrections.combine_repropagated``); a painted, boxed or mixed correction replaces."""
        from napari_hotspot.corrections import click_polarity

        found = {}
        for oid in self._track_ids():
            made = self._prompts_that_made(frame, oid)
            if made is None or made[1] is None or made[0].box is not None:
                continue  # not made by clicks correcting a mask
            polarity = click_polarity(made[0].clicks)
            if polarity is not None:
                found[oid] = polarity
        return found

    def _on_run_batch(self, job: Job, results) -> None:
        """Apply one frame's results (main thread): store first, then the labels slice."""
        frames = set()
        gt = self.ground_truth_layer()
        for r in results:
            if not self.store.has_object(r.object_id):
                continue
            entry = self.store.get(r.object_id, r.frame)
            if entry is not None and entry.is_keyframe:
                continue  # never overwrite what the user made or confirmed
            mask, hotspot, confidence = r.mask, r.hotspot, float(np.clip(r.confidence, 0.0, 1.0))
            polarity = job.state.get("combine", {}).get(r.object_id)
            if polarity is not None and entry is not None and entry.packed_mask is not None:
                from napari_hotspot.corrections import combine_repropagated, combined_hotspot

                mask = combine_repropagated(entry.mask, r.mask, polarity)
                old_hot = (entry.hotspot.x, entry.hotspot.y) if entry.hotspot is not None and entry.hotspot.visible else None
                hotspot = combined_hotspot(mask, r.hotspot, old_hot)
                if entry.confidence is not None:
                    confidence = min(confidence, float(entry.confidence))  # the weaker of the two answers
            self.store.set_frame(r.object_id, r.frame, mask=mask, hotspot=self._clip_hotspot(hotspot),
                                 confidence=confidence, provenance=Provenance.PROPAGATED)
            if r.found_again:
                job.state.setdefault("found_again", []).append((r.object_id, r.frame))
            self._j_cache.pop((r.object_id, r.frame), None)
            if gt is not None:  # the QA plot's J, one frame at a time
                self._cache_jaccard(r.object_id, r.frame, self.store.get(r.object_id, r.frame), gt.data[r.frame],
                                    mask=mask)
            frames.add(r.frame)
        self._refresh_frames(frames)
        job.state["frames"] += 1
        self.run_progress.emit(job.state["frames"])
        # The layers show one frame: redrawing them (a texture upload and a canvas paint, in software
        # under Xvfb) only pays when that frame got a new result; other frames are read afresh when
        # the user goes to them (the masks layer reads the store lazily; the points at the run's end).
        job.state["shown_changed"] |= self.current_frame in frames
        now = time.perf_counter()
        if job.state["shown_changed"] and now - job.state["last_refresh"] >= REFRESH_SECONDS:
            job.state["last_refresh"] = now
            job.state["shown_changed"] = False
            masks = self.layer(ROLE_MASKS)
            if masks is not None:
                masks.refresh()
            self._refresh_points(tracks=False)  # the tracks layer is rebuilt once, when the run ends
        if now - job.state["last_points"] >= POINTS_REFRESH_SECONDS:
            job.state["last_points"] = now
            self.annotations_changed.emit()  # the QA plot and the dock's counts

    def _end_track(self, job: Job, current: bool) -> None:
        from qtpy.QtCore import QTimer

        self._set_editable(True)
        masks = self.layer(ROLE_MASKS)
        if masks is not None:
            masks.refresh()
        self._refresh_points(tracks=False)
        self._tracks_later.request()  # its own turn of the event loop: rebuilding the tracks took 0.1-0.4 s
        # In a turn of the event loop of its own: the QA plot's J of every re-tracked frame against the
        # ground truth costs as much again as the layers' refresh, and the viewer stays responsive between.
        QTimer.singleShot(0, self.annotations_changed.emit)
        self.run_state_changed.emit(False)
        frames, summary = job.state["frames"], job.state["summary"]
        found = "".join(f"; {self.store.get_object(oid).name} found again on frame {t}"
                        for oid, t in job.state.get("found_again", []) if self.store.has_object(oid))
        if not self._job_went_wrong(job, f"tracking cancelled after {frames} frames; they are kept (undo removes them)"):
            self._info((f"{summary} ({frames} frames tracked)" if summary else f"tracked {frames} frames") + found)
        self._request_encode(self.current_frame)

    # ------------------------------------------------------------------ completing sparse prompts
    def completion_pending(self, obj_id: int) -> list[int]:
        """Keyframes of the object whose click or box mask is not completed yet (none when completion
        is off: the next run or adaptation takes them as they are)."""
        if self.session is None or self.complete_frames <= 0:
            return []
        with self.lock:
            return self.session.pending_completions(obj_id)

    def _complete_then_start(self, object_ids: list[int], then: Callable[[], Any]):
        """Complete the objects' pending prompt masks in a thread worker (the session preflight's
        completion phase), then call ``then`` (a run or an adaptation); with nothing pending, call it
        at once. Returns the first worker started."""
        from napari_hotspot._napari.workers import start_completion

        if self.complete_frames <= 0:  # off: the masks stay as they are, and adaptation may learn them
            def settle():
                for _ in self.session.preflight_steps(object_ids, adapt=False):
                    pass

            self.lock.run(settle)
        anchors = {oid: len(self.completion_pending(oid)) for oid in object_ids}
        pending = [oid for oid, n in anchors.items() if n]
        if not pending:
            return then()
        job = self._start_job("complete", batch="complete prompt masks", then=then, changed=False)
        self._set_editable(False)
        job.worker = start_completion(self.session, self.lock, pending, anchors=sum(anchors.values()),
                                      connect=self._job_signals(job, yielded=self._on_completed))
        self.run_state_changed.emit(True)
        self.status.emit("completing the prompt masks…")
        return job.worker

    def _on_completed(self, job: Job, result) -> None:
        if result is None or self.store is None or self.session is not job.session \
                or not self.store.has_object(result.object_id):
            return
        self._write_prompt(result)
        job.state["changed"] = True  # a keyframe's mask changed: refresh the layers at the end
        self._refresh_frames([result.frame])

    def _end_complete(self, job: Job, current: bool) -> None:
        self.run_state_changed.emit(False)
        if not current:
            return  # the video changed or was removed meanwhile
        self._set_editable(True)
        if job.state["changed"]:
            self._refresh_all()
            self.annotations_changed.emit()
        if not self._job_went_wrong(job, "cancelled while completing the prompt masks; nothing else started"):
            self._then(job)

    # ------------------------------------------------------------------ per-video adaptation
    def adaptation_pending(self, obj_id: int) -> list[int]:
        """Keyframes of the object (prompts and corrections) its adaptation has not learnt yet."""
        return self.adapted.pending(self.store, obj_id)

    def adaptation_summary(self, obj_id: int) -> dict | None:
        """``{"steps", "seconds", "frames"}`` of the object's adapted tracker, None on the base model."""
        return self.adapted.summary(self.session, obj_id)

    def adaptation_text(self, obj_id: int | None = None) -> str:
        """One line for the dock: "adapted: 40 steps, 4.8 s" or "base model" (and what is pending)."""
        oid = self.selected_id if obj_id is None else obj_id
        if self.session is None or not oid or self.store is None or not self.store.has_object(oid):
            return ""
        job = self._jobs.get("adapt")
        run = job.state["runs"].get(oid) if job is not None else None
        if run is not None and not run.done:
            if run.phase == "frames":
                return f"adapting: taking in keyframe {run.frames[-1]}…"
            return f"adapting: {run.fraction:.0%} ({run.steps} steps)"
        summary = self.adaptation_summary(oid)
        text = "base model" if summary is None else f"adapted: {summary['steps']} steps, {summary['seconds']:.1f} s"
        verdict = self.session.adaptation_verdict(oid, judge=False)  # reached when adaptation ends
        if verdict is not None and not verdict.kept:
            text += (f"; not kept, the base model tracks (round trip {verdict.adapted_iou:.2f} vs "
                     f"{verdict.base_iou:.2f})")
        elif verdict is not None and self.session.adapt_reach is not None:
            text += f"; tracks within {self.session.adapt_reach} frames of its keyframes, the base model elsewhere"
        pending = self.adaptation_pending(oid)
        if pending and self.adapt_seconds > 0:
            n = len(pending)
            text += f" ({n} new keyframe{'s' if n > 1 else ''} to learn before tracking)"
        return text

    def _adaptation_target(self, obj_id: int | None, what: str, missing: str) -> int:
        """The object an adaptation action applies to (the selected one by default), once the session
        is ready and no job runs; raises a HotspotError saying why not."""
        oid = self.selected_id if obj_id is None else int(obj_id)
        self._require_session()
        self._require_no_jobs(what)
        if not oid or not self.store.has_object(oid):
            raise PromptError(missing)
        return oid

    def adapt_now(self, obj_id: int | None = None):
        """Adapt the selected object's tracker to its prompts and corrections for ``adapt_seconds``,
        in a thread worker; returns the worker or None."""
        try:
            oid = self._adaptation_target(obj_id, "adapt", "select an object to adapt the tracker to")
            if not self._prompted(oid):
                name = self.store.get_object(oid).name
                raise PromptError(f"{name} has no prompt yet: click, draw a box or paint its mask first")
            if self.adapt_seconds <= 0:
                raise PromptError("the adaptation budget is 0 s (off): set 'Adapt (s)' above 0 first")
            self._sync_anchors([oid])
        except HotspotError as err:
            self._report(err)
            return None
        return self._complete_then_start([oid], lambda: self._start_adaptation([oid]))

    def reset_adaptation(self, obj_id: int | None = None) -> bool:
        """Back to the base tracker for the object; its adapted weights leave the project at the next save."""
        try:
            oid = self._adaptation_target(obj_id, "reset the adaptation", "select an object first")
        except HotspotError as err:
            self._report(err)
            return False
        was = self.session.is_adapted(oid)
        with self.lock:
            self.session.reset_adaptation(oid)
        self.adapted.forget(oid)
        if self.autosaver is not None:
            self.autosaver.mark_dirty()
        self.adaptation_changed.emit(oid)
        name = self.store.get_object(oid).name
        self._info(f"{name}: back to the base model" if was else f"{name} already uses the base model")
        return True

    def _start_adaptation(self, object_ids: list[int], then: Callable[[], Any] | None = None):
        """Adapt the objects' trackers in a thread worker (the session preflight's adaptation phase,
        ``options.adapt_seconds`` each); ``then`` (a run) starts when it ends well."""
        from napari.utils import progress

        from napari_hotspot._napari.workers import start_adaptation

        stop = threading.Event()
        job = self._start_job("adapt", then=then, stop=stop, before_run=then is not None, runs={},
                              ids=list(object_ids), ticks=0, pbar=None)
        names = ", ".join(self.store.get_object(oid).name for oid in object_ids)
        job.worker = start_adaptation(self.session, self.lock, object_ids, should_stop=stop.is_set,
                                      connect=self._job_signals(job, yielded=self._on_adapt_progress))
        self.adapt_state_changed.emit(True)
        self.status.emit(f"adapting the tracker to {names}…")
        # napari's progress bar processes Qt events when it changes: make it once the job is set up
        pbar = progress(total=100 * len(object_ids), desc=f"adapting {names}")
        if self._jobs.get("adapt") is job:
            job.state["pbar"] = pbar
        else:  # it ended already
            pbar.close()
        return job.worker

    def _on_adapt_progress(self, job: Job, p) -> None:
        if self.session is None or self.session is not job.session:
            return  # the video changed meanwhile
        job.state["runs"][p.object_id] = p
        if p.done:
            self.adapted.add_learnt(p.object_id, p.learnt)
        self.adapt_progress.emit(p)
        self.adaptation_changed.emit(p.object_id)
        # last: napari's progress bar processes Qt events when it moves, so later progress (and the
        # end of the job) may be handled inside this call
        ticks = int(round(100 * p.total * p.overall))
        if job.state["pbar"] is not None and ticks > job.state["ticks"]:
            delta, job.state["ticks"] = ticks - job.state["ticks"], ticks
            job.state["pbar"].update(delta)

    def _end_adapt(self, job: Job, current: bool) -> None:
        pbar, job.state["pbar"] = job.state["pbar"], None
        if pbar is not None:
            pbar.close()
        runs = job.state["runs"]
        if current and self.autosaver is not None and any(p.steps for p in runs.values()):
            self.autosaver.mark_dirty()
        self.adapt_state_changed.emit(False)
        for oid in runs:
            self.adaptation_changed.emit(oid)
        if not current:
            return
        names = {oid: self.store.get_object(oid).name for oid in runs if self.store.has_object(oid)}
        if not all(oid in runs and runs[oid].done for oid in job.state["ids"]):
            job.cancelled = True  # stopped from napari's activity dock, not our Cancel
        kept = [f"{names.get(oid, oid)} keeps {s['steps']} steps"
                for oid in runs if (s := self.adaptation_summary(oid)) is not None]
        cancelled = ("adaptation cancelled" + (f"; {', '.join(kept)}" if kept else "; the base model stays in use")
                     + ("; tracking not started" if job.state["before_run"] else ""))
        if self._job_went_wrong(job, cancelled):
            return
        done = [p for p in runs.values() if p.done]
        idle = [names.get(p.object_id, p.object_id) for p in done if p.steps == 0]
        def verdict(oid) -> str:  # the guard's, reached as the adaptation ended
            v = self.session.adaptation_verdict(oid, judge=False) if self.session is not None else None
            return "" if v is None or v.kept else "; not kept, the base model tracks it"

        trained = [f"{names.get(p.object_id, p.object_id)} ({p.steps} steps, {p.seconds:.1f} s{verdict(p.object_id)})"
                   for p in done if p.steps]
        if trained:
            self._info("adapted the tracker to " + ", ".join(trained))
        if idle:
            self._info(f"nothing new to learn for {', '.join(map(str, idle))}: its keyframes were learnt before "
                       f"(Reset adaptation to learn them again), or are frames kept as tracked, which adaptation "
                       f"does not learn")
        self._then(job)

    # ------------------------------------------------------------------ gaze prompts
    def load_gaze(self, path) -> None:
        """Prompt the selected object with recorded fixations (CSV ``t,x,y``), in a thread worker."""
        from napari_hotspot._napari.workers import start_gaze_prompts

        try:
            self._require_session()
            self._require_no_jobs("prompt with a gaze file")
            fixations = read_frame_fixations(path)
            bad = [t for t in fixations if not 0 <= t < self.num_frames]
            if bad:
                raise PromptError(f"gaze file {path}: frames {bad[:5]} are outside 0..{self.num_frames - 1}")
            oid = self._ensure_object()
        except HotspotError as err:
            self._report(err)
            return
        job = self._start_job("gaze", batch=f"gaze prompts from {Path(path).name}", errors=[])
        self._set_editable(False)
        job.worker = start_gaze_prompts(self.session, self.lock, oid, fixations,
                                        connect=self._job_signals(job, yielded=self._on_gaze_result))
        self.run_state_changed.emit(True)

    def _on_gaze_result(self, job: Job, value) -> None:
        if isinstance(value, Exception):
            job.state["errors"].append(str(value))
            return
        self._write_prompt(value)
        self._refresh_frames([value.frame])

    def _end_gaze(self, job: Job, current: bool) -> None:
        self._set_editable(True)
        self._refresh_all()
        self.annotations_changed.emit()
        self.run_state_changed.emit(False)
        errors = job.state["errors"] + ([str(job.error)] if job.error is not None else [])
        if errors:
            self._report(PromptError("gaze prompts failed on some frames: " + "; ".join(errors[:3])), warning=True)
