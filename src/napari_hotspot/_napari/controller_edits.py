"""Edits in the tracking dock: prompts (clicks, boxes, Auto), corrections painted on the masks or made
by moving hotspots, and the session's anchors that follow the store's keyframes.

``EditsMixin`` is a part of ``HotspotController``: it turns layer events into session prompts and store
changes (one undo step each) and keeps the prompt layers in step with undo and redo.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

from napari_hotspot._napari.layer_data import ROLE_BOXES, ROLE_CLICKS, ROLE_HOTSPOTS, ROLE_MASKS, PromptGroup, hotspot_table
from napari_hotspot.annotations import Provenance
from napari_hotspot.errors import HotspotError, PromptError


class EditsMixin:
    """Prompts, corrections and the session's anchors (a part of ``HotspotController``)."""

    # ------------------------------------------------------------------ prompts
    def toggle_click_label(self) -> int:
        """Make the next click negative if it was positive and vice versa; returns the new label."""
        self.set_click_label(0 if self.click_label > 0 else 1)
        return self.click_label

    def set_click_label(self, label: int) -> None:
        if (1 if label else 0) == self.click_label:
            return  # recolouring the clicks for nothing cost a click 17 ms
        self.click_label = 1 if label else 0
        self._color_clicks()
        self.click_label_changed.emit(self.click_label)

    def add_click(self, frame: int, x: float, y: float, positive: bool | None = None) -> None:
        """Click like the user does: add a point to the clicks layer (the layer event prompts)."""
        if positive is not None:
            self.set_click_label(1 if positive else 0)
        layer = self.layer(ROLE_CLICKS)
        if layer is None:
            self._report(PromptError("choose a video layer first"))
            return
        layer.add(np.array([[frame, y, x]], float))

    def add_box(self, frame: int, x0: float, y0: float, x1: float, y1: float) -> None:
        """Draw a box like the user does: add a rectangle to the boxes layer (the layer event prompts)."""
        layer = self.layer(ROLE_BOXES)
        if layer is None:
            self._report(PromptError("choose a video layer first"))
            return
        layer.add_rectangles(np.array([[frame, y0, x0], [frame, y0, x1], [frame, y1, x1], [frame, y1, x0]], float))

    # ------------------------------------------------------------------ keyframes by hand
    def toggle_keyframe(self, frame: int | None = None) -> bool | None:
        """Keep the tracked masks of the selected object (all objects when none is selected) on ``frame``
        (default: the current one) as keyframes, as they are (provenance ACCEPTED, confidence 1):
        re-propagation then stops there and the QA jumps (K) find them; to the tracker they are
        corrections (the object's look still comes from its prompt), and adaptation does not learn them.
        An empty tracked mask kept says the object is absent there (as erasing it entirely does).
        Pressed where every such mask is a keyframe already, it unmarks the ACCEPTED ones (a prompt's, a
        correction's or an imported one stays: Ctrl+Z undoes those), but not an object's only keyframe.
        One undo step. Returns True
        when it marked, False when it unmarked, None when refused (the status says why)."""
        try:
            if self.store is None:
                raise PromptError("choose a video layer first")
            self._require_idle("mark keyframes")
            t = self.current_frame if frame is None else int(frame)
            if not 0 <= t < self.num_frames:
                raise PromptError(f"frame {t} is out of range: the video has frames 0..{self.num_frames - 1}")
            ids = self._qa_ids()
            masks = {oid: e for oid in ids if (e := self.store.get(oid, t)) is not None and e.packed_mask is not None}
            if not masks:
                who = f"{self.store.get_object(ids[0]).name} has no" if len(ids) == 1 else "no object has a"
                raise PromptError(f"{who} mask on frame {t} to keep: prompt or track first")
            names = ", ".join(self.store.get_object(oid).name for oid in masks)
            to_mark = [oid for oid, e in masks.items() if not e.is_keyframe]
            if to_mark:
                # An empty tracked mask kept says the object is absent there (as erasing it does).
                gone = [oid for oid in to_mark if masks[oid].is_absent]
                with self.store.batch(f"mark keyframe {t}"):
                    for oid in to_mark:
                        self.store.set_frame(oid, t, confidence=1.0, provenance=Provenance.ACCEPTED,
                                             **({"hotspot": None} if oid in gone else {}))
                kept = [self.store.get_object(oid).name for oid in to_mark if oid not in gone]
                said = [f"{', '.join(kept)} kept as {'a keyframe' if len(kept) == 1 else 'keyframes'}"] if kept else []
                said += [f"{', '.join(self.store.get_object(o).name for o in gone)} kept as absent"] if gone else []
                self._info(f"frame {t}: {'; '.join(said)} (re-propagation stops here)")
                return True
            marked = [oid for oid, e in masks.items() if e.provenance is Provenance.ACCEPTED]
            alone = [oid for oid in marked if self.store.keyframes(oid) == [t]]
            if alone and len(alone) == len(marked):
                raise PromptError(f"frame {t} is the only keyframe of "
                                  f"{', '.join(self.store.get_object(o).name for o in alone)}: it stays one")
            marked = [oid for oid in marked if oid not in alone]
            if not marked:
                raise PromptError(f"frame {t}'s keyframes of {names} were made by a prompt, a correction or an "
                                  f"import, not by Keep as keyframe, and stay keyframes: Ctrl+Z undoes them")
            with self.store.batch(f"unmark keyframe {t}"):
                for oid in marked:
                    self.store.set_frame(oid, t, provenance=Provenance.PROPAGATED)
            self._info(f"frame {t}: {', '.join(self.store.get_object(o).name for o in marked)} no longer "
                       f"{'a keyframe' if len(marked) == 1 else 'keyframes'} (the next re-propagation may change it)")
            return False
        except HotspotError as err:
            self._report(err)
            return None

    def _on_prompt_data(self, event) -> None:
        if self._updating or self.store is None:
            return
        action = getattr(event, "action", None)
        if action not in (self._action_type.ADDED, self._action_type.REMOVED, self._action_type.CHANGED):
            return
        if self._dragging:
            return  # the mouse release syncs (see _install_drag_guard)
        self._sync_prompts()

    def _layer_groups(self) -> dict[tuple[int, int], PromptGroup]:
        """The prompt groups the clicks and boxes layers hold now (the last box of a group wins)."""
        clicks, boxes = self.layer(ROLE_CLICKS), self.layer(ROLE_BOXES)
        found: dict[tuple[int, int], tuple[list, Any]] = {}
        fallback = self.selected_id
        if clicks is not None and len(clicks.data):
            labels = np.asarray(clicks.features["label"])
            ids = np.asarray(clicks.features["object_id"])
            for (t, y, x), label, oid in zip(clicks.data, labels, ids):
                key = (int(round(t)), int(oid) or fallback)
                found.setdefault(key, ([], None))[0].append((float(x), float(y), 1 if label > 0 else 0))
        if boxes is not None and boxes.nshapes:
            ids = np.asarray(boxes.features["object_id"]) if len(boxes.features) else np.zeros(boxes.nshapes, int)
            for verts, oid, kind in zip(boxes.data, ids, boxes.shape_type):
                if kind != "rectangle":
                    continue  # a box prompt is a rectangle; other shapes are the user's own notes
                verts = np.asarray(verts, float)
                key = (int(round(verts[0, 0])), int(oid) or fallback)
                ys, xs = verts[:, 1], verts[:, 2]
                box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
                entry = found.setdefault(key, ([], None))
                found[key] = (entry[0], box)
        return {k: PromptGroup(tuple(c), b) for k, (c, b) in found.items()}

    def _sync_prompts(self) -> None:
        """Prompt every (frame, object) whose clicks or box changed since it was last applied."""
        if self.store is None:
            return
        groups = self._layer_groups()
        changed = sorted(k for k in set(groups) | set(self._applied) if groups.get(k) != self._applied.get(k))
        if not changed:
            return
        rebuild = any(k[1] == 0 for k in groups)  # clicks made before any object existed
        boxes = self.layer(ROLE_BOXES)
        n_boxes = sum(k == "rectangle" for k in boxes.shape_type) if boxes is not None else 0
        rebuild |= n_boxes != sum(g.box is not None for g in groups.values())  # a box replaced another
        for key in changed:
            group = groups.get(key, PromptGroup())
            t, oid = key
            if group.empty:
                self._applied.pop(key, None)  # prompts deleted: the mask they made stays (undo removes it)
                self._click_bases.pop(key, None)  # new clicks there correct that mask
                if self.autosaver is not None:  # saved with the project, but no change of the store's
                    self.autosaver.mark_dirty()
                continue
            try:
                self._require_session()
                self._require_idle("prompt")
                if not oid or not self.store.has_object(oid):
                    # a click off the image (or a box with nothing on it) is refused before it makes an object
                    self.session.check_prompt(t, [(x, y) for x, y, _ in group.clicks], group.box)
                    oid = self._ensure_object()
                base = self._correction_base(t, oid) if group.box is None else None
                self._interrupt_refinement()
                if base is not None:  # the frame has a mask: the clicks correct it
                    result = self._refine_by_clicks(t, oid, base, group)
                    self._write_prompt(result, correction=True)
                    what = "corrected"
                else:
                    if not any(label > 0 for *_xy, label in group.clicks) and group.box is None:
                        raise PromptError(f"frame {t} has no mask of this object to correct: a positive click "
                                          f"(or a box) picks it first; N switches back to positive clicks")
                    kwargs: dict[str, Any] = {}
                    if group.clicks:
                        kwargs["points"] = [(x, y) for x, y, _ in group.clicks]
                        kwargs["labels"] = [label for *_xy, label in group.clicks]
                    if group.box is not None:
                        kwargs["box"] = group.box
                    # the decoder's answer now, the tracker's refinement in a thread
                    result = self.lock.run(self.session.add_prompt, t, oid, source="click" if group.clicks else "box",
                                           refine_later=True, **kwargs)
                    self._write_prompt(result)
                    if result.refine_token is not None:
                        self._request_refinement(result)
                    what = "prompted"
                self._prompt_history.setdefault((t, oid), []).append(
                    (self.store.get(oid, t), group, self._click_bases.get((t, oid))))
                n = len(group.clicks)
                self.status.emit(f"frame {t}: {self.store.get_object(oid).name} {what} "
                                 f"({n} click{'s' if n != 1 else ''}{' and a box' if group.box else ''})")
            except HotspotError as err:
                self._report(err)
                old = self._applied.get(key)  # back to the prompts that worked (or none)
                if old is None:
                    groups.pop(key, None)
                else:
                    groups[key] = old
                rebuild = True
                continue
            if key[1] != oid:
                groups.pop(key, None)
                rebuild = True
            self._applied[(t, oid)] = group
            groups[(t, oid)] = group
        if rebuild:
            self._rebuild_prompt_layers({k: v for k, v in groups.items() if k[1]})
        else:
            self._color_clicks()
            self._color_boxes()

    def _write_prompt(self, result, correction: bool = False) -> None:
        """Store a prompt's mask and hotspot on its frame as a keyframe."""
        t, oid = result.frame, result.object_id
        prev = self.store.get(oid, t)
        if correction or (prev is not None and prev.provenance not in (Provenance.KEYFRAME,)):
            provenance = Provenance.USER_CORRECTED
        else:
            provenance = Provenance.KEYFRAME
        self.store.set_frame(oid, t, mask=result.mask, hotspot=self._clip_hotspot(result.hotspot),
                             confidence=1.0, provenance=provenance)
        self._anchor_entries[(oid, t)] = self.store.get(oid, t)

    def _request_refinement(self, result) -> None:
        """Refine a click's or box's first mask in a thread (the click answers in a quarter of the time);
        the refined mask amends the store's entry, in the click's own undo step, if it is still there."""
        key = (result.object_id, result.frame)
        self._refinements[key] = (self.session, result.refine_token, self.store.get(*key))
        self._start_next_refinement()

    def _start_next_refinement(self) -> None:
        from napari_hotspot._napari.workers import start_refine

        self._drop_stale_refinements()
        for (oid, t), (session, token, _entry) in list(self._refinements.items()):
            if self._refine_worker is not None:
                return
            if (oid, t, token) in self._refined:
                continue
            self._refine_stop = threading.Event()
            self._refine_worker = start_refine(
                session, self.lock, oid, t, token, self._refined, self._refine_stop,
                connect={"returned": self._apply_refinement, "finished": self._on_refine_finished,
                         "errored": lambda err, k=(oid, t, token): self._on_refine_error(k, err)})

    def _drop_stale_refinements(self) -> None:
        """Forget refinements asked of another session (the video changed meanwhile)."""
        for key in [k for k, (session, *_rest) in self._refinements.items() if session is not self.session]:
            del self._refinements[key]

    def _on_refine_error(self, key, err) -> None:
        oid, t, token = key
        if self._refinements.get((oid, t), (None, None))[1] == token:
            del self._refinements[(oid, t)]  # the first mask stays; tracking refines it once more itself
        self._report(err, warning=True)

    def _interrupt_refinement(self) -> None:
        """A new prompt or correction goes first: the refinement in the thread stops after its current
        pass (it runs again after, unless the new prompt replaced its anchor)."""
        if self._refine_worker is not None:
            self._refine_stop.set()

    def _on_refine_finished(self) -> None:
        self._refine_worker = None
        self._start_next_refinement()

    def _finish_refinements(self) -> None:
        """Refine every first mask still waiting, now (waiting for the one in the thread, if any): before
        a run, an adaptation, undo or a save, so they see the masks the clicks end with."""
        self._drop_stale_refinements()
        def refine(key, session):
            if key not in self._refined:
                self._refined[key] = session.refine_prompt(*key)

        for (oid, t), (session, token, _entry) in list(self._refinements.items()):
            key = (oid, t, token)
            try:
                self.lock.run(refine, key, session)
            except Exception as err:  # noqa: BLE001 - the first mask stays; what was asked goes on
                del self._refinements[(oid, t)]
                self._report(err, warning=True)
                continue
            self._apply_refinement(key)

    def _apply_refinement(self, key) -> None:
        """Amend the store with the refined prompt of ``key`` (object, frame, token) computed in
        ``self._refined``, unless that prompt or the mask it gave was replaced meanwhile."""
        if key not in self._refined:
            return  # stopped before it was done: `_start_next_refinement` runs it again
        result = self._refined.pop(key)
        oid, t, token = key
        pending = self._refinements.get((oid, t))
        if pending is None or pending[1] != token:
            return  # applied already, or prompted again since
        session, _token, expected = self._refinements.pop((oid, t))
        if result is None or session is not self.session or self.store is None or not self.store.has_object(oid):
            return  # corrected, undone or removed meanwhile: that answer stands
        entry = self.store.amend_frame(oid, t, expected, mask=result.mask, hotspot=self._clip_hotspot(result.hotspot))
        if entry is None:
            return
        if self._anchor_entries.get((oid, t)) is expected:
            self._anchor_entries[(oid, t)] = entry
        history = self._prompt_history.get((t, oid))
        if history:
            self._prompt_history[(t, oid)] = [(entry if e is expected else e, g, b) for e, g, b in history]

    def _correction_base(self, t: int, oid: int) -> np.ndarray | None:
        """The mask the clicks of (frame, object) correct: the object's mask on the frame when its first
        click came (None when the frame had none: those clicks pick the object)."""
        key = (t, oid)
        if key in self._click_bases:
            return self._click_bases[key]
        if key in self._applied:
            return None  # clicks reopened from a project picked the object: they still do
        entry = self.store.get(oid, t)
        base = entry.mask if entry is not None and entry.packed_mask is not None else None
        if base is not None and not base.any():
            base = None  # an empty mask (the object absent there) is nothing to correct: the clicks prompt afresh
        self._click_bases[key] = base
        return base

    def _refine_by_clicks(self, t: int, oid: int, base: np.ndarray, group: PromptGroup):
        """The frame's mask corrected by the group's clicks (``corrections.refine_mask``), as the frame's
        new anchor."""
        from napari_hotspot.corrections import clicks_hotspot, refine_mask

        prev = self.store.get(oid, t)
        prev_hot = None
        if prev is not None and prev.hotspot is not None and prev.hotspot.visible:
            prev_hot = (prev.hotspot.x, prev.hotspot.y)
        self._anchor_entries.pop((oid, t), None)
        def correct():
            mask = refine_mask(self.session, t, base, group.clicks)
            hot = clicks_hotspot(mask, group.clicks, prev_hot)
            return self.session.add_prompt(t, oid, mask=mask, hotspot=hot, source="correction")

        return self.lock.run(correct)

    def _prompts_follow_store(self, touched: set[tuple[int, int]]) -> None:
        """After undo or redo: the clicks and boxes of each touched (frame, object) are those that made the
        mask the store shows now, and none when that mask was not made by prompts."""
        changed = False
        for oid, t in touched:
            key = (t, oid)
            if not self._prompt_history.get(key):
                continue
            match = self._prompts_that_made(t, oid)
            if match is None:
                changed |= self._applied.pop(key, None) is not None
                self._click_bases.pop(key, None)
            else:
                group, base = match
                self._click_bases[key] = base
                if self._applied.get(key) != group:
                    self._applied[key] = group
                    changed = True
        if changed:
            self._rebuild_prompt_layers(self._applied)

    def _prompts_that_made(self, t: int, oid: int):
        """(prompt group, the mask its clicks corrected or None) that made the object's entry the store
        holds on frame ``t`` now, or None when prompts did not make it (painted, propagated, none)."""
        entry = self.store.get(oid, t) if self.store.has_object(oid) else None
        if entry is None:
            return None
        return next(((g, b) for e, g, b in reversed(self._prompt_history.get((t, oid), ())) if e is entry), None)

    def _clip_hotspot(self, xy):
        if xy is None:
            return None
        H, W = self.store.height, self.store.width
        return (float(np.clip(xy[0], -0.5, W - 0.5)), float(np.clip(xy[1], -0.5, H - 0.5)))

    def auto_prompt(self, frame: int | None = None) -> None:
        """Auto: EG-Net's gaze map picks the salient object on the frame, for the selected object."""
        t = self.current_frame if frame is None else int(frame)
        try:
            self._require_session()
            self._require_idle("prompt")
            oid = self._ensure_object()
            result = self.lock.run(self.session.auto_prompt, t, oid)
            self._write_prompt(result)
        except HotspotError as err:
            self._report(err)
            return
        self.status.emit(f"Auto: EG-Net picked {self.store.get_object(oid).name} on frame {t}")


    # ------------------------------------------------------------------ corrections
    def _on_paint(self, event) -> None:
        if self._updating or self.store is None:
            return
        frames = self._frames_after_atoms(getattr(event, "value", None) or [])
        self._commit_label_edits(frames)

    def _frames_after_atoms(self, atoms) -> dict[int, np.ndarray]:
        """The frames a paint event changes, as they are once its history atoms are applied.

        napari emits ``paint`` before it writes a single click's pixels (a stroke's are already
        written), so the atoms are replayed on copies; replaying is idempotent either way.
        """
        masks = self.layer(ROLE_MASKS)
        frames: dict[int, np.ndarray] = {}

        def frame(t: int) -> np.ndarray:
            if t not in frames:
                frames[t] = np.array(masks.data[t])
            return frames[t]

        for atom in atoms:
            key = getattr(atom, "slice_key", None)
            try:
                if key is not None:  # napari's _MaskedPaintAtom: a bounding box, a mask, one new label
                    ts = range(*key[0].indices(self.num_frames)) if isinstance(key[0], slice) else [int(key[0])]
                    t0 = ts[0]
                    slab = np.stack([frame(t) for t in ts])
                    local = (slice(0, len(ts)), *key[1:])
                    region = slab[local]
                    if atom.mask is None:
                        region[...] = atom.new_value
                    else:
                        region[atom.mask] = atom.new_value
                    slab[local] = region
                    for t in ts:
                        frames[t] = slab[t - t0]
                else:  # the legacy (indices, old values, new values) atom of data_setitem
                    indices, _old, new = atom
                    ts = np.asarray(indices[0]).reshape(-1)
                    rest = [np.asarray(i).reshape(-1) for i in indices[1:]]
                    values = np.broadcast_to(np.asarray(new), ts.shape)
                    for t in np.unique(ts):
                        sel = ts == t
                        frame(int(t))[tuple(i[sel] for i in rest)] = values[sel]
            except (TypeError, ValueError, IndexError, AttributeError):
                frame(self.current_frame)  # unknown atom: fall back to the layer's current frame
        return frames

    def _commit_label_edits(self, frames: dict[int, np.ndarray]) -> None:
        """Masks painted or erased on the labels layer become USER_CORRECTED keyframes (one undo step
        per frame); an object erased entirely becomes absent there (an empty keyframe: tracking gives it
        no mask there, and after it none until it finds it again or its next prompt). A refused edit is
        shown and the frame restored from the store."""
        for t, new in sorted(frames.items()):
            old = self.store.label_frame(t)
            diff = new != old
            if not diff.any():
                continue
            ids = sorted((set(np.unique(new[diff]).tolist()) | set(np.unique(old[diff]).tolist())) - {0})
            gone: list[int] = []
            try:
                self._require_session()
                self._require_idle("correct masks")
                with self.store.batch(f"correct frame {t}"):
                    for oid in ids:
                        if not self.store.has_object(oid):
                            self.store.add_object(obj_id=int(oid))  # a new label painted: a new object
                        mask = new == oid
                        if not mask.any():
                            # Erased entirely: the object is not on this frame (it left the view, or hides).
                            self._anchor_entries.pop((oid, t), None)
                            self.lock.run(self.session.mark_absent, t, oid)
                            self.store.set_frame(oid, t, mask=mask, hotspot=None, confidence=1.0,
                                                 provenance=Provenance.USER_CORRECTED)
                            gone.append(oid)
                            continue
                        prev = self.store.get(oid, t)
                        hot = None
                        if prev is not None and prev.hotspot is not None:
                            hx, hy = int(round(prev.hotspot.x)), int(round(prev.hotspot.y))
                            if 0 <= hy < mask.shape[0] and 0 <= hx < mask.shape[1] and mask[hy, hx]:
                                hot = (prev.hotspot.x, prev.hotspot.y)
                        self._anchor_entries.pop((oid, t), None)
                        result = self.lock.run(self.session.add_prompt, t, oid, mask=mask, hotspot=hot,
                                               source="correction")
                        self.store.set_frame(oid, t, mask=mask, hotspot=self._clip_hotspot(result.hotspot),
                                             confidence=1.0, provenance=Provenance.USER_CORRECTED)
            except HotspotError as err:
                self._report(err)
                self._restore_frame(t)  # the store rolled back: show it again
                continue
            painted = [oid for oid in ids if (new == oid).any()]
            for oid in painted:
                self._anchor_entries[(oid, t)] = self.store.get(oid, t)
            if gone:
                after = ("runs look for it again past this frame" if self.options.reacquire else
                         "tracking gives no mask after this frame until the next prompt")
                self._info(f"frame {t}: {', '.join(self.store.get_object(o).name for o in gone)} erased entirely, so "
                           f"absent here: {after} (Ctrl+Z undoes)")
            if painted and (not self.selected_id or not self.store.has_object(self.selected_id)):
                self.select_object(painted[0])  # the label just painted, as napari's label picker has it

    def _restore_frame(self, t: int) -> None:
        """Show the store's labels on frame ``t`` again, now and once napari has finished its own write."""
        def restore():
            if self.store is not None and self.layer(ROLE_MASKS) is not None:
                self._refresh_frames([t])
                self.layer(ROLE_MASKS).refresh()

        restore()
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, restore)

    def _on_hotspot_data(self, event) -> None:
        if self._updating or self.store is None:
            return
        if getattr(event, "action", None) not in (self._action_type.ADDED, self._action_type.REMOVED,
                                                  self._action_type.CHANGED):
            return
        if self._dragging:
            return
        self._commit_hotspot_edits()

    def _commit_hotspot_edits(self) -> None:
        """Hotspots dragged (or placed) on a frame become USER_CORRECTED keyframes; removals are undone."""
        layer = self.layer(ROLE_HOTSPOTS)
        if layer is None or self.store is None:
            return
        data = np.asarray(layer.data, float).reshape(-1, 3)
        ids = np.asarray(layer.features["object_id"]) if len(data) else np.zeros(0, int)
        expected, _ = hotspot_table(self.store)
        moves = []
        for (t, y, x), oid in zip(data, ids):
            t, oid = int(round(t)), int(oid) or self.selected_id
            if not oid or not self.store.has_object(oid) or not 0 <= t < self.num_frames:
                continue
            h = self.store.hotspot(oid, t)
            if h is not None and abs(h.x - x) < 1e-6 and abs(h.y - y) < 1e-6:
                continue
            moves.append((t, oid, float(x), float(y)))
        if len(data) < len(expected) and not moves:
            self._report(PromptError("hotspots follow the masks: to remove one, erase the object's mask on that "
                                     "frame or undo"), warning=True)
        done = []
        try:
            if moves:
                self._finish_refinements()  # a hotspot moved on a click's first mask goes on its refined one
                self._require_session()
                self._require_idle("move hotspots")
                with self.store.batch("move hotspot"):
                    for t, oid, x, y in moves:
                        entry = self.store.get(oid, t)
                        if entry is None or entry.packed_mask is None:
                            raise PromptError(f"object {oid} has no mask on frame {t}: prompt or paint it first, "
                                              f"then place its hotspot")
                        self._anchor_entries.pop((oid, t), None)
                        result = self.lock.run(self.session.add_prompt, t, oid, mask=entry.mask, hotspot=(x, y),
                                               source="correction")
                        hx, hy = result.hotspot
                        if abs(hx - x) > 1.5 or abs(hy - y) > 1.5:
                            self._report(PromptError(
                                f"the hotspot of object {oid} on frame {t} must lie inside its mask; "
                                f"placed at ({hx:.0f}, {hy:.0f}) instead of ({x:.0f}, {y:.0f})"), warning=True)
                        self.store.set_frame(oid, t, hotspot=self._clip_hotspot(result.hotspot), confidence=1.0,
                                             provenance=Provenance.USER_CORRECTED)
                        done.append((oid, t))
        except HotspotError as err:
            self._report(err)
            done = []
        for key in done:
            self._anchor_entries[key] = self.store.get(*key)
        self._refresh_points()  # a rejected edit or removal snaps back to the store

    def _set_editable(self, editable: bool) -> None:
        for role in (ROLE_MASKS, ROLE_CLICKS, ROLE_BOXES, ROLE_HOTSPOTS):
            layer = self.layer(role)
            if layer is not None:
                layer.editable = editable

    # ------------------------------------------------------------------ session anchors
    def _sync_anchors(self, object_ids: Iterable[int]) -> None:
        """Make the session's anchors of these objects match the store's keyframes (after undo/load); a
        keyframe with an empty mask is a frame where the object is absent (``session.mark_absent``)."""
        for oid in object_ids:
            keyframes, absent = {}, set()
            for t in self.store.keyframes(oid):
                entry = self.store.get(oid, t)
                if entry is not None and entry.is_absent:
                    absent.add(t)
                elif entry is not None and entry.has_mask:
                    keyframes[t] = entry
            self.lock.run(self._sync_object_anchors, oid, keyframes, absent)

    def _sync_object_anchors(self, oid: int, keyframes: dict, absent: set[int] = frozenset()) -> None:
        """_sync_anchors for one object, on the model thread (``lock.run``)."""
        for t in self.session.absent_frames(oid):
            if t not in absent:
                self.session.mark_absent(t, oid, absent=False)
        for t in absent:
            self.session.mark_absent(t, oid)
            self._anchor_entries.pop((oid, t), None)
        for t in self.session.anchors(oid):
            if t not in keyframes:
                self.session.remove_anchor(oid, t)
                self._anchor_entries.pop((oid, t), None)
        for t, entry in keyframes.items():
            if self._anchor_entries.get((oid, t)) is entry and t in self.session.anchors(oid):
                continue
            hot = None
            if entry.hotspot is not None and entry.hotspot.visible:
                hot = (min(max(entry.hotspot.x, 0), self.store.width - 1),
                       min(max(entry.hotspot.y, 0), self.store.height - 1))
            # A tracked frame kept as it is restarts the previous-frame chain but leaves the object's
            # appearance to its prompt, and adaptation does not learn it (session source "kept"; as the
            # template instead it moved validation-split sequences by -0.008 to +0.010 J, as a correction
            # by at most 0.0006: docs/benchmarks.md, "Keep as keyframe").
            source = "kept" if entry.provenance is Provenance.ACCEPTED else "mask"
            self.session.add_prompt(t, oid, mask=entry.mask, hotspot=hot, source=source)
            self._anchor_entries[(oid, t)] = entry
