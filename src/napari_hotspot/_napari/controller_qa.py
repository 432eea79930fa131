"""Quality checks in the tracking dock: confidence and J (against a ground-truth layer) per frame, and
jumping between keyframes and low-confidence frames.

``QAMixin`` is a part of ``HotspotController`` (the QA plot and the keyboard shortcuts use it).
"""

from __future__ import annotations

import numpy as np


class QAMixin:
    """Per-frame quality series and frame jumps (a part of ``HotspotController``)."""

    # ------------------------------------------------------------------ QA
    def _qa_ids(self) -> list[int]:
        if self.store is None:
            return []
        if self.selected_id and self.store.has_object(self.selected_id):
            return [self.selected_id]
        return self.store.object_ids

    def confidence_series(self) -> dict[int, np.ndarray]:
        """Per object: (T,) confidence per frame, NaN where the object has no entry or no confidence."""
        out = {}
        for oid in (self.store.object_ids if self.store is not None else []):
            values = np.full(self.num_frames, np.nan)
            for t, entry in self.store.entries(oid).items():
                if entry.confidence is not None:
                    values[t] = entry.confidence
            out[oid] = values
        return out

    def ground_truth_layer(self):
        """A Labels layer named '... ground truth' with the video's shape, if the viewer has one."""
        if self.store is None:
            return None
        for layer in self.viewer.layers:
            if type(layer).__name__ == "Labels" and layer.name.endswith("ground truth") and \
                    tuple(layer.data.shape) == self.store.shape:
                return layer
        return None

    def jaccard_series(self) -> dict[int, np.ndarray] | None:
        """Per object: (T,) region similarity J against the ground-truth layer (label = object id); None
        without ground truth. Cached per entry, so only changed frames are recomputed."""
        from napari_hotspot.evaluation.davis import jaccard

        gt = self.ground_truth_layer()
        if gt is None:
            return None
        out = {}
        gt_frames: dict[int, np.ndarray] = {}
        for oid in self.store.object_ids:
            values = np.full(self.num_frames, np.nan)
            for t, entry in self.store.entries(oid).items():
                if entry.packed_mask is None:
                    continue
                cached = self._j_cache.get((oid, t))
                if cached is not None and cached[0] is entry:
                    values[t] = cached[1]
                    continue
                if t not in gt_frames:
                    gt_frames[t] = np.asarray(gt.data[t])
                values[t] = self._cache_jaccard(oid, t, entry, gt_frames[t])
            out[oid] = values
        return out

    def _cache_jaccard(self, oid: int, t: int, entry, gt_frame: np.ndarray, mask: np.ndarray | None = None) -> float:
        """J of one stored entry against its ground-truth frame, kept until the entry changes. A run
        computes it frame by frame as results come in (a few ms each), so its end does not freeze the
        viewer computing them all at once."""
        from napari_hotspot.evaluation.davis import jaccard

        j = float(jaccard(entry.mask if mask is None else mask, np.asarray(gt_frame) == oid))
        self._j_cache[(oid, t)] = (entry, j)
        return j

    def keyframes(self) -> list[int]:
        frames: set[int] = set()
        for oid in self._qa_ids():
            frames.update(self.store.keyframes(oid))
        return sorted(frames)

    def low_confidence_frames(self) -> list[int]:
        series = self.confidence_series()
        ids = self._qa_ids()
        low = set()
        for oid in ids:
            values = series.get(oid)
            if values is not None:
                low.update(np.flatnonzero(values < self.low_confidence_threshold).tolist())
        return sorted(low)

    def _jump(self, frames: list[int], step: int, what: str) -> int | None:
        t = self.current_frame
        candidates = [f for f in frames if (f > t if step > 0 else f < t)]
        if not candidates:
            self.status.emit(f"no {what} {'after' if step > 0 else 'before'} frame {t}")
            return None
        target = min(candidates) if step > 0 else max(candidates)
        self.go_to_frame(target)
        return target

    def next_keyframe(self) -> int | None:
        return self._jump(self.keyframes(), +1, "keyframe")

    def previous_keyframe(self) -> int | None:
        return self._jump(self.keyframes(), -1, "keyframe")

    def next_low_confidence(self) -> int | None:
        return self._jump(self.low_confidence_frames(), +1, "low-confidence frame")

    def previous_low_confidence(self) -> int | None:
        return self._jump(self.low_confidence_frames(), -1, "low-confidence frame")
