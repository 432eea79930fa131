"""Bookkeeping of the objects' adapted trackers in an annotation project (Qt-free).

The tracking dock adapts each object's own copy of the tracker (``HotspotSession.adapt``) and saves
the adapted weights with the project (``adaptation/object_XXXXX.pt``, listed in the project's
``extra``). ``AdaptedTrackers`` keeps what that needs between a video's session and its store:
which keyframes each object's adaptation has learnt with a full budget (a cancelled adaptation
leaves them pending, so the next run adapts again), the project's records and files while the
session that restores them is not made yet, the records and files to save, and the restoring itself.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from napari_hotspot.annotations.model import AnnotationStore, Provenance
from napari_hotspot.annotations.project import adaptation_file_name
from napari_hotspot.compute import locked_call


class AdaptedTrackers:
    """The adapted trackers of one video's objects: learnt keyframes, project records and files."""

    def __init__(self) -> None:
        #: Per object: the keyframes its adaptation has learnt with a full budget.
        self.learnt: dict[int, set[int]] = {}
        #: (project, records, checked states, problems) from ``load_project``, to restore once the session exists.
        self.unrestored: tuple[Path, dict, dict, list] | None = None

    def clear(self) -> None:
        self.learnt = {}
        self.unrestored = None

    # ------------------------------------------------------------------ learnt keyframes
    def pending(self, store: AnnotationStore | None, obj_id: int) -> list[int]:
        """Keyframes of the object with a mask (prompts and corrections) its adaptation has not learnt yet;
        not those where the object is absent (an empty keyframe: nothing to learn from), nor tracked masks
        kept as they are (ACCEPTED: learning them gained nothing on the validation split)."""
        if store is None or not store.has_object(obj_id):
            return []
        learnt = self.learnt.get(obj_id, set())
        return [t for t in store.object_keyframes(obj_id)
                if t not in learnt and store.get(obj_id, t).provenance is not Provenance.ACCEPTED]

    def add_learnt(self, obj_id: int, frames) -> None:
        self.learnt[obj_id] = set(self.learnt.get(obj_id, set())) | set(frames)

    def forget(self, obj_id: int) -> None:
        self.learnt.pop(obj_id, None)

    @staticmethod
    def summary(session, obj_id: int) -> dict | None:
        """``{"steps", "seconds", "frames"}`` of the object's adapted tracker, None on the base model."""
        if session is None or not session.is_adapted(obj_id):
            return None
        state = session.adaptation_state(obj_id)
        return {"steps": int(state["steps"]), "seconds": float(state["seconds"]), "frames": list(state["frames"])}

    # ------------------------------------------------------------------ the project
    def restore(self, session, store: AnnotationStore, lock=None) -> tuple[list[int], Path | None, list[str]]:
        """Load the adapted trackers saved with the project into ``session`` (read and checked by
        ``load_project``); a file that does not fit leaves that object on the base model. Returns the
        objects restored, the project and the problems to warn about."""
        pending, self.unrestored = self.unrestored, None
        if pending is None or session is None:
            return [], None, []
        lock = lock if lock is not None else contextlib.nullcontext()
        project, records, states, loaded_problems = pending
        problems = list(loaded_problems)
        restored = []
        for oid, state in sorted(states.items()):
            if not store.has_object(oid):
                continue
            name = records.get(str(oid), {}).get("file") if isinstance(records.get(str(oid)), dict) else None
            label = f"{store.get_object(oid).name} ({name or 'no file recorded'})"
            try:
                locked_call(lock, session.load_adaptation_state, oid, state)
                learnt = {int(t) for t in state.get("frames", [])}
            except Exception as err:  # noqa: BLE001 (wrong keys or shapes: made for another tracker)
                locked_call(lock, session.reset_adaptation, oid)
                detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
                problems.append(f"{label}: it does not fit this tracker ({detail})")
                continue
            self.learnt[oid] = learnt
            restored.append(oid)
        return restored, project, problems

    def _unrestored(self) -> tuple[dict, dict[str, Path]]:
        """The project's adaptation records and files while the session that restores them is not made yet."""
        project, records, states, _problems = self.unrestored
        kept, files = {}, {}
        for key, record in records.items():
            name = record.get("file") if isinstance(record, dict) else None
            if name and str(key).isdigit() and int(key) in states:  # unusable files are dropped
                kept[key] = record
                files[str(name)] = project / str(name)
        return kept, files

    def records(self, session, store: AnnotationStore) -> dict:
        """The project's ``adaptation`` records: per adapted object, its file and summary."""
        adaptation = {}
        if session is None and self.unrestored is not None:
            adaptation = dict(self._unrestored()[0])  # models still loading: keep what the project had
        for oid in (store.object_ids if session is not None else []):
            summary = self.summary(session, oid)
            if summary is not None:
                adaptation[str(oid)] = {"file": adaptation_file_name(oid), **summary}
        return adaptation

    def files(self, session, store: AnnotationStore, lock=None) -> dict[str, bytes | Path]:
        """Each adapted object's tracker state (torch.save bytes), by its file name in the project."""
        if session is None and self.unrestored is not None:
            return self._unrestored()[1]
        lock = lock if lock is not None else contextlib.nullcontext()
        files: dict[str, Any] = {}
        for oid in (store.object_ids if session is not None else []):
            # a consistent snapshot: training steps run under the lock
            data = locked_call(lock, _saved_state, session, oid)
            if data is not None:
                files[adaptation_file_name(oid)] = data
        return files


def _saved_state(session, oid: int) -> bytes | None:
    """The object's adapted tracker state as torch.save bytes (None when it is not adapted)."""
    import torch

    if not session.is_adapted(oid):
        return None
    buffer = io.BytesIO()
    torch.save(session.adaptation_state(oid), buffer)
    return buffer.getvalue()

