"""The dock's job record and its one finish path (controller_jobs), without Qt: a fake controller."""

from __future__ import annotations

from types import SimpleNamespace

from napari_hotspot._napari.controller_jobs import Job, JobsMixin
from napari_hotspot.annotations import AnnotationStore
from napari_hotspot.errors import PromptError


class FakeDock(JobsMixin):
    def __init__(self):
        self._jobs = {}
        self._muted = False
        self.session = object()
        self.store = AnnotationStore(3, 4, 5)
        self.store.add_object(obj_id=1)
        self.video_layer = "video"
        self.viewer = SimpleNamespace(layers=["video"])
        self.ended, self.reported, self.told = [], [], []

    def _report(self, err, warning=False):
        self.reported.append(str(err))

    def _info(self, text):
        self.told.append(text)

    def _end_complete(self, job, current):
        self.ended.append((job, current, self._muted, self.store.in_batch))
        if current and not self._job_went_wrong(job, "cancelled"):
            self._then(job)


def test_every_job_ends_through_one_path():
    dock = FakeDock()
    started = []
    job = dock._start_job("complete", batch="complete prompt masks", then=lambda: started.append(1), changed=False)
    assert dock.job("complete") is job and dock.store.in_batch and job.state == {"changed": False}
    dock.store.set_frame(1, 0, hotspot=(1.0, 1.0))  # a result inside the job's batch
    signals = dock._job_signals(job, yielded=lambda j, value: j.state.update(value=value))
    signals["yielded"](7)
    assert job.state["value"] == 7
    signals["finished"]()
    # forgotten, its batch closed (one undo step, muted), its kind's ending told it is current, next step run
    assert dock.job("complete") is None and not dock.store.in_batch
    assert dock.ended == [(job, True, False, False)] and started == [1]
    assert dock.store.undo() and dock.store.get(1, 0) is None


def test_a_failed_cancelled_or_stale_job_starts_nothing():
    dock = FakeDock()
    started = []
    failed = dock._start_job("complete", batch="x", then=lambda: started.append("failed"))
    dock._job_signals(failed)["errored"](PromptError("boom"))
    dock._finish_job(failed)
    cancelled = dock._start_job("complete", then=lambda: started.append("cancelled"))
    dock.cancel_worker = SimpleNamespace(quit=lambda: None)
    cancelled.worker = dock.cancel_worker
    dock.cancel()
    assert cancelled.cancelled and cancelled.then is None
    dock._finish_job(cancelled)
    stale = dock._start_job("complete", then=lambda: started.append("stale"))
    dock.session = object()  # another video's session meanwhile
    dock._finish_job(stale)
    assert started == [] and dock.reported == ["boom"] and dock.told == ["cancelled"]
    assert [current for _job, current, _m, _b in dock.ended] == [True, True, False]
    assert dock._jobs == {} and isinstance(stale, Job)
