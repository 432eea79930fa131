"""The inference session: prompts on any frame, propagation as a generator, corrections that re-anchor.

Shaped like SAM2's video predictor. Coordinates in and out are pixels of the original frames
(x = column, y = row); the networks run at a working resolution (long side 448 by default).
One encoder pass per frame serves every head and every object; features are kept in a small LRU
cache so a new click on an encoded frame re-runs only the Gaze2Mask decoder and the tracker passes
that refine its mask (no encoder pass). An interactive caller can take the decoder's answer first and
the refined one a moment later (`add_prompt(refine_later=True)`, then `refine_prompt`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .boxes import normalize_box
from .encode_ahead import EncodeAhead, ThreadBalance, ahead_threads, split_threads
from .errors import PromptError
from .mask_geometry import centroid, edge_snap_subsample, snap_to_edges, steady_hotspot
from .models.adaptation import ADAPTED_PARTS, TrackerAdapter
from .models.backbone import FrameFeatures, frame_to_tensor
from .models.guidance import make_guidance
from .models.heads import key_rows, matching_keys
from .models.precision import inference_autocast
from .models.resolution import working_size
from .models.tracking import (Reference, anchor_correlation, deepest_point, make_reference, mask_core,
                              mask_to_grid, track_step)
from .models.weights import ModelBundle
from .prompt_masks import _honours_clicks, _inside, _misses_prompt, _near_clicked_parts
# The defaults live in the torch-free options module (the command line's help reads them there).
from .options import (ADAPT_REACH_FRAMES, COMPLETION_FRAMES, DEFAULT_ADAPT_SECONDS, DEFAULT_ADAPT_STEPS,
                      TrackingOptions)
from .video.frames import ArrayFrames

# Radius of the disks around positive clicks (or gaze fixations) that seed `_prompt_seeded_mask`, as a
# share of the working image's diagonal (16 px at 256x448).
CLICK_SEED_RADIUS = 0.031
# Tracker passes that refine a click, box, gaze or Auto answer on its own frame (`_refine_with_tracker`).
# One, chosen on the 12 validation-split sequences (twentieth session): against three, one click +0.004 J,
# box +0.002, Auto +0.004, and half the click latency (docs/benchmarks.md, "Refinement passes").
REFINE_PASSES = 1
# A box prompt's answer is kept inside the box widened by this share of the working diagonal.
BOX_MARGIN = 0.02
# Prompts whose masks completion may revise: clicks and boxes, where it was measured. Not Auto (more
# hotspots outside the object) nor gaze fixations (unmeasured; a gaze file often prompts every frame);
# docs/benchmarks.md, "Completing a prompt's mask by a round trip".
SPARSE_SOURCES = ("click", "box")

# Output masks snapped to the frame's edges: on the 12 validation-split sequences of davis2016-train J
# rose on every one (mean +0.0075 from the frame-0 mask), F moved -0.001 (docs/benchmarks.md, "Output
# masks snapped to the frame's edges"). NAPARI_HOTSPOT_SNAP_EDGES=0 turns it off (for measuring it).
SNAP_EDGES = os.environ.get("NAPARI_HOTSPOT_SNAP_EDGES", "1").lower() not in ("0", "false", "no")

SOURCES = ("click", "box", "mask", "gaze", "auto", "correction", "kept")
# Anchors that restart the previous-frame chain but leave the object's appearance to the nearest prompt
# (`_template_for_correction`): corrections, and tracked masks the user kept as they are ("kept", which
# adaptation does not learn either: it gained nothing on the validation split, docs/benchmarks.md,
# "Keep as keyframe").
CORRECTION_SOURCES = ("correction", "kept")
# Tracker passes over an anchor's own frame, each from the union so far, whose growth beyond the anchor
# mask is remembered as the distractors a sweep keeps out (`_anchor_reference`, tracking.distractor_gate).
DISTRACTOR_PASSES = 3
# The adaptation guard (`adaptation_verdict`): an adapted copy tracks only if it carries its anchor masks
# this many frames away and back at least as well as the base tracker does, less ADAPT_GUARD_MARGIN IoU.
# Chosen on the validation split of davis2016-train, never on the test sequences (docs/benchmarks.md,
# "Adaptation guard").
ADAPT_GUARD_FRAMES = 10
ADAPT_GUARD_MARGIN = 0.0


@dataclass
class PromptResult:
    """The mask and hotspot a prompt produced on its frame (original-frame pixels)."""

    frame: int
    object_id: int
    mask: np.ndarray  # (H, W) bool
    hotspot: tuple[float, float] | None
    confidence: float
    source: str
    # Not None: the mask is Gaze2Mask-Net's first answer, whose tracker refinement is still to come;
    # `HotspotSession.refine_prompt(object_id, frame, refine_token)` gives the refined prompt.
    refine_token: int | None = None


@dataclass
class TrackResult:
    """One propagated frame of one object."""

    frame: int
    object_id: int
    mask: np.ndarray  # (H, W) bool
    hotspot: tuple[float, float] | None
    confidence: float
    evidence: dict | None = None  # the step's own evidence (tracking.step_evidence), where collect_evidence
    found_again: bool = False  # the first mask of an object found again past a frame where it was absent


class _SteadyHotspots:
    """A sweep's hotspot smoothing (`TrackingOptions.hotspot_smoothing`): per object, the smoothed offset of
    its hotspot from its centroid (working pixels), carried from frame to frame in the sweep's direction.
    An output filter: the tracker's next template keeps each frame's own heat-map peak. On the validation
    split, keep 0.3 took about 30% off the hotspot's jitter and left it on the object at least as often
    for every prompt (docs/benchmarks.md, "A steadier hotspot")."""

    def __init__(self, keep: float) -> None:
        self.keep = float(keep)
        self._offsets: dict[int, np.ndarray | None] = {}

    def start_at(self, object_id: int, anchor: _Anchor) -> None:
        """A sweep leaves a keyframe: smooth from its own hotspot's offset (the prompt's, or a correction's)."""
        centre = None if anchor.hotspot_work is None else centroid((anchor.mask_work > 0.5).numpy())
        if centre is None:
            self._offsets.pop(object_id, None)
            return
        self._offsets[object_id] = np.asarray(anchor.hotspot_work, float) - centre

    def forget(self, object_id: int) -> None:
        """The object left (or was found again): its next hotspot starts afresh."""
        self._offsets.pop(object_id, None)

    def step(self, object_id: int, r) -> tuple[float, float] | None:
        """The hotspot (working pixels) to output for a tracking step `r` (`tracking.StepResult`)."""
        if self.keep <= 0 or r.core is None:
            self.forget(object_id)
            return r.hotspot_xy
        xy, self._offsets[object_id] = steady_hotspot(r.hotspot_xy, r.foreground, r.core,
                                                      self._offsets.get(object_id), self.keep)
        return xy


@dataclass
class _Anchor:
    mask_work: torch.Tensor  # (h, w) float in [0, 1]
    hotspot_work: tuple[float, float] | None
    source: str
    # What a sparse prompt asked for (working pixels), which its completed mask must still honour.
    positive: tuple = ()
    negative: tuple = ()
    box_work: tuple | None = None
    completed: bool = True  # False: a sparse prompt's mask that `complete_prompt` has not seen yet
    # Set while the mask is the decoder's first answer (`add_prompt(refine_later=True)`): what
    # `_refine_with_tracker` needs (the hotspot it refines around, the hotspot asked for, gaze fixations)
    # and the token `refine_prompt` is asked with.
    unrefined: tuple | None = None


@dataclass
class AdaptationVerdict:
    """Whether an object's adapted tracker copy is used (`HotspotSession.adaptation_verdict`): the mean IoU
    between its anchor masks and what each tracker brings back to them after a round trip."""

    kept: bool
    adapted_iou: float
    base_iou: float
    steps: int  # the adapter's steps when judged (a later `adapt` call is judged again)

    def describe(self, reach: int | None = None) -> str:
        """reach: the session's `adapt_reach`, which limits where a kept copy tracks (None: anywhere)."""
        where = f" (within {reach} frames of the frames it learnt)" if reach else ""
        word = f"kept{where}" if self.kept else "not kept (the base tracker is used)"
        return (f"adaptation {word}: round-trip IoU {self.adapted_iou:.3f} adapted vs {self.base_iou:.3f} base")


@dataclass(frozen=True)
class PreflightStep:
    """One lock-sized piece of `HotspotSession.preflight_steps`.

    phase "completed": a prompt's mask was completed (`result` is its new mask, None when it stayed
    as it was); "frames": anchor frames taken into the object's adaptation (`frames`, so far);
    "training": a chunk of optimiser steps (`steps` and training `seconds` so far, `fraction` of the
    budget); "adapted": the object's adaptation is done (`frames`: every frame it has learnt).
    `index` / `total` count the objects being adapted."""

    phase: str
    object_id: int
    result: PromptResult | None = None
    frames: tuple[int, ...] = ()
    steps: int = 0
    seconds: float = 0.0
    fraction: float = 0.0
    index: int = 0
    total: int = 1


@dataclass
class _ObjectState:
    anchors: dict[int, _Anchor] = field(default_factory=dict)
    # Frames where the user said the object is not there (it left the view, or hides): a sweep gives
    # nothing there, and after it nothing until the object's next anchor or until the sweep finds it
    # again (`_Search`). Not anchors: nothing learns from them.
    absent: set[int] = field(default_factory=set)


# A sweep's state of an object past a frame where it is absent: nothing to track until its next anchor
# (backward, or where the sweep does not look for it again: `_Search`).
_ABSENT = "absent"

# A sweep looking for an object past an absence takes the tracker's answer (from the object's look alone)
# as the object found again when, on REACQUIRE_FRAMES frames in a row, at least REACQUIRE_AGREEMENT of it
# (IoU) is what the anchor's label propagation calls object, and its cells match the anchor's object cells
# with a mean best similarity of at least REACQUIRE_SIMILARITY (`tracking.step_evidence`'s agree_anchor
# and fg_sim). The tracker alone finds some salient object on almost every frame, so its confidence is no
# test (at 0.8 on 2 frames in a row it took another video's object in 148 of 348 short cut-aways; this
# rule in 4). Chosen on cut-away videos of the 12 validation-split sequences, without adaptation
# (benchmarks/reacquire_study.py; docs/benchmarks.md, "Finding an object again after an absence").
REACQUIRE_AGREEMENT = 0.5
REACQUIRE_SIMILARITY = 0.5
REACQUIRE_FRAMES = 2


@dataclass
class _Search:
    """A sweep's state of an object past a frame where it is absent (forward; backward where no anchor
    comes before that frame), where the sweep looks for it again (`TrackingOptions.reacquire`): each frame is tracked from the object's look alone (`anchor`; an
    empty previous-frame template, `prev`, as the tracker trained with a lost previous mask), and the
    answer is taken once it looks like the object on REACQUIRE_FRAMES frames in a row (`_looks_found`)."""

    anchor: Reference
    prev: Reference | None = None  # the frame before's keys with an empty mask (None: not made yet)
    streak: int = 0  # frames in a row whose answer looked like the object (`_looks_found`)


def _looks_found(evidence: dict) -> bool:
    """Whether a search step's answer looks like the object (REACQUIRE_AGREEMENT, REACQUIRE_SIMILARITY)."""
    return evidence["agree_anchor"] >= REACQUIRE_AGREEMENT and evidence["fg_sim"] >= REACQUIRE_SIMILARITY


class HotspotSession:
    """Prompt objects on any frame and propagate their masks and hotspots through a video."""

    def __init__(self, source, models: ModelBundle | None = None, long_side: int | None = None,
                 feature_cache_frames: int = 48, threads: int | None = None,
                 options: TrackingOptions | None = None):
        """`options` say what `propagate` does first (`preflight`: completion, adaptation) and the working
        size; without them the session only propagates. `long_side`, when given, overrides theirs."""
        # a numpy video (T, H, W, 3) goes through the one frame adapter (video.frames), as a layer's data does
        self.source = ArrayFrames(source, rgb=True) if isinstance(source, np.ndarray) else source
        self.models = models or ModelBundle.load()
        if threads:
            torch.set_num_threads(threads)
        self.options = (options or TrackingOptions.propagate_only()).with_(long_side=long_side)
        self.num_frames = int(self.source.num_frames)
        self.frame_size = (int(self.source.height), int(self.source.width))
        self.work_size = working_size(*self.frame_size, long_side=self.options.long_side)
        self._features: OrderedDict[int, FrameFeatures] = OrderedDict()
        self._cache_frames = feature_cache_frames
        self._objects: dict[int, _ObjectState] = {}
        self._adapters: dict[int, object] = {}  # object id -> TrackerAdapter (per-video fine-tuned copy)
        self._adapted_frames: dict[int, set[int]] = {}
        self.adapt_parts = ADAPTED_PARTS  # what adaptation fine-tunes (None: the whole tracker head)
        self.refine_prompts = True  # refine click/box/gaze/auto masks (see _refine_with_tracker)
        # A sweep from a correction keeps the nearest prompt as its template (`_template_for_correction`):
        # partial click corrections cost far less J so (docs/benchmarks.md, "Corrective clicks").
        self.corrections_keep_anchor = True
        self.guard_adaptation = True  # an adapted copy tracks only if it passes `adaptation_verdict`
        self.adapt_reach = ADAPT_REACH_FRAMES  # ...and only this near its learnt frames (None: anywhere)
        # (object, frame) -> (the anchor they were computed for, its grown grid cells: (M,) bool)
        self._distractors: dict[tuple[int, int], tuple[_Anchor, torch.Tensor]] = {}
        self._verdicts: dict[int, AdaptationVerdict] = {}
        # (object, frame) -> (the anchor mask it was computed for, the base tracker's round-trip IoU)
        self._base_round_trips: dict[tuple[int, int], tuple[torch.Tensor, float]] = {}
        # heads_ahead: the heads' work a sweep's encoding thread does beside the encoder (keys, anchor correlations)
        self.timings = {"decode": 0.0, "encoder": 0.0, "heads": 0.0, "heads_ahead": 0.0}
        self._refine_tokens = 0
        # Encode the next frame on a second thread while the heads track this one (`encode_ahead.py`).
        self.encode_ahead = True
        # Each TrackResult of a sweep carries the step's evidence (`tracking.step_evidence`; for studies
        # of it such as benchmarks/confidence_study.py; off, the tracking thread does not compute it).
        self.collect_evidence = False
        # Output masks follow the frame's edges (`mask_geometry.snap_to_edges`; the templates and
        # everything the models see stay as they were; NAPARI_HOTSPOT_SNAP_EDGES=0 starts sessions without it).
        self.snap_edges = SNAP_EDGES
        # Above 480p the snapping works on the frame shrunk to about 360p (`edge_snap_subsample`).
        self.snap_subsample = edge_snap_subsample(self.frame_size, self.work_size)
        self._refined: dict[tuple[int, int, int], PromptResult] = {}  # settled, not yet asked for
        self.preflight_seconds = 0.0  # time `preflight` spent adapting and judging (not tracking)

    # ---- frames and features -------------------------------------------------------------
    def _check_frame(self, frame: int) -> int:
        if not 0 <= int(frame) < self.num_frames:
            raise PromptError(f"frame {frame} is out of range: the video has frames 0..{self.num_frames - 1}")
        return int(frame)

    def features(self, frame: int) -> FrameFeatures:
        """The encoder's features of a frame, every level (computed once, then cached)."""
        feats = self._tracking_features(frame)
        if not feats.complete:  # a sweep encoded it to s16 only: the last blocks now
            t0 = time.perf_counter()
            feats = self.models.encoder.finish(feats)
            self.timings["encoder"] += time.perf_counter() - t0
            self._features[frame] = feats
        return feats

    def prefetch(self, frame: int) -> None:
        """Have the frame's features ready for a click: encoded whole unless cached (a frame a sweep left
        at s16 stays so: its click adds s32 in a quarter of a pass, and an annotator stepping through
        tracked frames starts no model work)."""
        if self._check_frame(frame) not in self._features:
            self.features(frame)

    def _tracking_features(self, frame: int) -> FrameFeatures:
        """What a tracking step reads (s4-s16): cached features as they are, else a pass that stops at
        s16 (a quarter of the encoder's time; `features` adds s32 when a prompt needs it)."""
        frame = self._check_frame(frame)
        if frame in self._features:
            self._features.move_to_end(frame)
            return self._features[frame]
        return self._keep_features(frame, self._encode_frame(frame, upto="s16"))

    def _keep_features(self, frame: int, encoded: tuple[FrameFeatures, float, float]) -> FrameFeatures:
        """Cache an `_encode_frame` result (from this thread or a sweep's encode-ahead thread)."""
        feats, decode_s, encode_s = encoded[:3]
        self.timings["decode"] += decode_s
        self.timings["encoder"] += encode_s
        self._features[frame] = feats
        while len(self._features) > self._cache_frames:
            self._features.popitem(last=False)
        return feats

    def _encode_frame(self, frame: int, upto: str = "s32") -> tuple[FrameFeatures, float, float]:
        """Decode and encode a frame (to level `upto`): its features and the seconds each took. Runs on the sweep's
        encode-ahead thread too, so it touches no session state; the frame source is then read from two
        threads (the sweep's may read an anchor frame): `open_source`'s sources hold a lock, and
        `ArrayFrames` only indexes an array."""
        t0 = time.perf_counter()
        x = frame_to_tensor(self.source.get_frame(frame), self.work_size)
        t1 = time.perf_counter()
        with torch.no_grad():
            feats = self.models.encoder(x, upto=upto)
        return feats, t1 - t0, time.perf_counter() - t1

    def _encode_for_tracking(self, frame: int, anchors: tuple[Reference, ...] = ()) -> tuple:
        """A sweep's encoding thread: the frame encoded to s16, and the work of its tracking steps that
        does not wait for the step before: the matching keys and each anchor template's correlation.
        Returns (features, decode s, encode s, (keys, {id(anchor): (anchor, its correlation)}, s, keys' s))."""
        feats, decode_s, encode_s = self._encode_frame(frame, upto="s16")
        t0 = time.perf_counter()
        with torch.no_grad():  # grad mode is per thread
            keys = matching_keys(feats)
            keys_s = time.perf_counter() - t0
            corrs = {id(a): (a, anchor_correlation(keys, a)) for a in anchors}
        return feats, decode_s, encode_s, (keys, corrs, time.perf_counter() - t0, keys_s)

    def _ahead_threads(self) -> int:
        """Torch threads for the sweep and for its encode-ahead thread each; 0: no encoding ahead."""
        if not self.encode_ahead or next(self.models.encoder.parameters()).device.type != "cpu":
            return 0
        return ahead_threads()

    # ---- coordinates ------------------------------------------------------------------------
    def _to_work(self, x: float, y: float) -> tuple[float, float]:
        (H, W), (h, w) = self.frame_size, self.work_size
        return (x + 0.5) * w / W - 0.5, (y + 0.5) * h / H - 0.5

    def _to_frame(self, xy):
        if xy is None:
            return None
        (H, W), (h, w) = self.frame_size, self.work_size
        return (float((xy[0] + 0.5) * W / w - 0.5), float((xy[1] + 0.5) * H / h - 0.5))

    def _mask_to_frame(self, mask_prob: torch.Tensor, frame: int | None = None) -> np.ndarray:
        """A working-size mask probability as a frame-size bool mask (`_frame_probability` > 0.5)."""
        return self._frame_probability(mask_prob, frame) > 0.5

    def _frame_probability(self, mask_prob: torch.Tensor, frame: int | None = None) -> np.ndarray:
        """A working-size mask probability at frame size (float32), snapped to the edges of `frame`'s
        image (`mask_geometry.snap_to_edges`) where `snap_edges` is on and the frame is given."""
        # OpenCV's bilinear resize samples as torch's with align_corners=False, in a fifth of the time.
        H, W = self.frame_size
        prob = cv2.resize(np.ascontiguousarray(mask_prob.float().numpy()), (W, H), interpolation=cv2.INTER_LINEAR)
        if frame is not None and self.snap_edges:
            read = getattr(self.source, "get_frame_readonly", self.source.get_frame)  # no copy where it can
            prob = snap_to_edges(prob, read(frame), subsample=self.snap_subsample, in_place=True)
        return prob

    def _mask_to_work(self, mask: np.ndarray) -> torch.Tensor:
        m = torch.from_numpy(mask.astype(np.float32))[None, None]
        return F.interpolate(m, size=self.work_size, mode="area")[0, 0]

    def _box_on_image(self, box) -> tuple[float, float, float, float]:
        """The box (the rule of every entry point, `normalize_box`) clipped to the image; PromptError when
        nothing of it is on the image."""
        x0, y0, x1, y1 = normalize_box(box)
        H, W = self.frame_size
        x0, x1 = sorted((np.clip(x0, 0, W - 1), np.clip(x1, 0, W - 1)))
        y0, y1 = sorted((np.clip(y0, 0, H - 1), np.clip(y1, 0, H - 1)))
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise PromptError(f"box {tuple(box)} lies off the image of size {W}x{H}")
        return x0, y0, x1, y1

    def _check_point(self, x: float, y: float, what: str) -> None:
        H, W = self.frame_size
        if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x <= W - 1 and 0 <= y <= H - 1):
            raise PromptError(f"{what} ({x:g}, {y:g}) is off the image: x must be in [0, {W - 1}], y in [0, {H - 1}]")

    def check_prompt(self, frame: int, points: Sequence[Sequence[float]] = (),
                     box: Sequence[float] | None = None, negative: Sequence[Sequence[float]] = ()) -> None:
        """Raise PromptError for what `add_prompt` would refuse before running a model: a frame off the
        video, a click (or `negative` click) off the image, a box with nothing on the image (the same
        rules, so a command can refuse a prompt before it announces work)."""
        self._check_frame(frame)
        for x, y in np.asarray(points, float).reshape(-1, 2):
            self._check_point(x, y, "click")
        for x, y in np.asarray(negative, float).reshape(-1, 2):
            self._check_point(x, y, "negative click")
        if box is not None:
            self._box_on_image(box)

    # ---- prompts -----------------------------------------------------------------------------
    @property
    def object_ids(self) -> list[int]:
        return sorted(self._objects)

    def anchors(self, object_id: int) -> list[int]:
        """Frames where the object has a prompt or correction (keyframes propagation never overwrites)."""
        return sorted(self._objects[object_id].anchors) if object_id in self._objects else []

    def absent_frames(self, object_id: int) -> list[int]:
        """Frames where the object was marked absent (`mark_absent`)."""
        return sorted(self._objects[object_id].absent) if object_id in self._objects else []

    def mark_absent(self, frame: int, object_id: int, absent: bool = True) -> None:
        """Say the object is not on `frame` (it left the view, or something hides it), or take that back
        (`absent` False). A forward sweep leaves that frame as it is; after it, it looks for the object on
        every frame and tracks it again once found (`_search_step`; with `TrackingOptions.reacquire` off it
        gives empty masks until the object's next anchor, where tracking starts again). A backward sweep
        (from a later anchor) tracks down to it and gives nothing before it, which is the forward sweep's
        from the anchor before; where no anchor comes before it, the backward sweep looks for the object
        before it the same way. With `stop_at_keyframe` a sweep stops there, as at any keyframe. It
        replaces an anchor on that frame; a prompt there later replaces it. Nothing is learnt from it
        (adaptation, completion and the guard use anchors)."""
        frame = self._check_frame(frame)
        state = self._objects.setdefault(int(object_id), _ObjectState())
        if absent:
            if frame in state.anchors:
                self.remove_anchor(int(object_id), frame)
            state.absent.add(frame)
        else:
            state.absent.discard(frame)

    def gaze_map(self, frame: int) -> np.ndarray:
        """EG-Net's eye-gaze distribution on a frame, (H, W) float32 summing to 1."""
        logits = self._gaze_logits(frame)
        prob = torch.softmax(logits.flatten(), 0).reshape(1, 1, *logits.shape[-2:])
        up = F.interpolate(prob, size=self.frame_size, mode="bilinear", align_corners=False)[0, 0].clamp_min(0)
        return (up / up.sum()).numpy().astype(np.float32)

    def _gaze_logits(self, frame: int) -> torch.Tensor:
        """EG-Net's gaze-map logits of a frame at stride 8, (1, 1, h/8, w/8) float32."""
        feats = self.features(frame)
        with torch.no_grad(), inference_autocast():
            return self.models.egnet(feats).float()

    def _segment(self, frame: int, guidance: np.ndarray) -> torch.Tensor:
        feats = self.features(frame)
        t0 = time.perf_counter()
        with torch.no_grad():
            with inference_autocast():  # bfloat16 where this CPU runs it fast, as the encoder and tracker
                out, _ = self.models.gaze2mask(feats, torch.from_numpy(guidance)[None])
            prob = torch.sigmoid(F.interpolate(out.float(), size=self.work_size, mode="bilinear", align_corners=False))[0, 0]
        self.timings["heads"] += time.perf_counter() - t0
        return prob

    def _refine_with_tracker(self, frame: int, mask_work: torch.Tensor, hot_work, pos=(), neg=(),
                             box_w=None, gaze_w=(), should_stop=None) -> torch.Tensor | None:
        """Tracker passes over the prompted frame itself, each with the previous answer as its template.

        Gaze2Mask-Net often stops at part of an object; the tracker, trained to segment whole objects
        from a template, completes it (REFINE_PASSES passes; more completed further with the models
        trained on the 12 development sequences, not with today's: docs/benchmarks.md, "Refinement
        passes"). A pass is kept only
        if it still honours every click (positives inside, negatives out); parts far from the clicked
        ones are then dropped (`_near_clicked_parts`). When the first pass leaves a positive click out,
        or there is nothing to refine, the further passes start from `_prompt_seeded_mask` instead (and
        then stay inside the prompt's box, if it has one). None when `should_stop()` said so before a pass.
        """
        if not self.refine_prompts:
            return mask_work
        region = None if box_w is None else self._box_region(box_w)
        mask = mask_work
        for i in range(REFINE_PASSES):
            if should_stop is not None and should_stop():
                return None
            before, kept = mask, False
            if bool(mask.any()):
                mask, kept = self._tracker_pass(frame, mask, hot_work, pos, neg)
            if i == 0 and _misses_prompt(mask, pos, region):
                mask, kept = self._prompt_seeded_mask(frame, hot_work, pos, neg, box_w, gaze_w), True
            elif region is not None:  # a box bounds its object
                clipped = mask * region
                if bool(clipped.any()):
                    mask = clipped
                else:  # this pass left the box entirely: keep the previous answer
                    mask, kept = before, False
            if not kept:  # the pass returned its template: another would compute the same again
                break
        return mask

    def _track_own_frame(self, frame: int, template: torch.Tensor, hot_work) -> torch.Tensor:
        """The tracker's (h, w) bool mask of `frame`, with `template` on that same frame as its reference."""
        feats = self.features(frame)
        t0 = time.perf_counter()
        ref = make_reference(feats, template, hot_work)
        mask = track_step(self.models.tracker, feats, ref, ref, self.work_size).mask_prob > 0.5
        self.timings["heads"] += time.perf_counter() - t0
        return mask

    def _tracker_pass(self, frame: int, template: torch.Tensor, hot_work, pos=(), neg=()):
        """One refinement pass with `template` as its reference: (mask, whether the pass was kept)."""
        refined = self._track_own_frame(frame, template, hot_work).float()
        kept = _honours_clicks(refined, pos, neg)
        return _near_clicked_parts(refined if kept else template, pos), kept

    def _grid(self) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.work_size
        return torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                              indexing="ij")

    def _box_region(self, box_w) -> torch.Tensor:
        """The box (working pixels) widened by BOX_MARGIN of the diagonal: a hand-drawn box is often tight."""
        yy, xx = self._grid()
        m = BOX_MARGIN * float(np.hypot(*self.work_size))
        x0, y0, x1, y1 = box_w
        return ((xx >= x0 - m) & (xx <= x1 + m) & (yy >= y0 - m) & (yy <= y1 + m)).float()

    def _click_zones(self, pos, neg, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels within `radius` of a positive click that no negative click is closer to, and within
        `radius` of a negative click that is closer than every positive one: two clicks close
        together split the space between them instead of one erasing the other."""
        yy, xx = self._grid()
        inf = torch.full_like(xx, float("inf"))

        def nearest(points):
            d = inf.clone()
            for x, y in points:
                d = torch.minimum(d, torch.sqrt((xx - x) ** 2 + (yy - y) ** 2))
            return d

        d_pos, d_neg = nearest(pos), nearest(neg)
        return (d_pos <= radius) & (d_pos <= d_neg), (d_neg <= radius) & (d_neg < d_pos)

    def _prompt_seeded_mask(self, frame: int, hot_work, pos=(), neg=(), box_w=None, gaze_w=()) -> torch.Tensor:
        """The prompted object found by one tracker pass from a seed drawn from the prompt itself.

        The fallback when Gaze2Mask-Net's answer, after a first tracker pass, leaves a positive click
        out or is empty: on an object unlike its training objects it can answer a click with a
        confident mask elsewhere (fold C on scooter-black: probability 4e-5 under the click), or a box
        or gaze prompt with nothing. The tracker only matches features to the seed, so it generalises
        further. Seeds: disks around the positive clicks (where no negative click is nearer), else the
        central half of the box, else disks at the gaze fixations. Every positive click ends up inside
        the mask, every negative one outside, and a box's mask inside its box; an empty tracker answer
        falls back to the seed itself.
        """
        h, w = self.work_size
        r = CLICK_SEED_RADIUS * float(np.hypot(h, w))
        in_box = None if box_w is None else self._box_region(box_w) > 0.5
        if pos:
            seed, _ = self._click_zones(pos, neg, r)
        elif in_box is not None:  # the ellipse inscribed in the box's central half
            yy, xx = self._grid()
            x0, y0, x1, y1 = box_w
            cx, cy, ax, ay = (x0 + x1) / 2, (y0 + y1) / 2, max((x1 - x0) / 4, 1.0), max((y1 - y0) / 4, 1.0)
            seed = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0
        else:
            seed, _ = self._click_zones(gaze_w, (), r)
        if not bool(seed.any()):
            return seed.float()
        mask = self._track_own_frame(frame, seed.float(), hot_work)
        if in_box is not None:
            mask &= in_box
        if not bool(mask.any()):
            mask = seed
        must, must_not = self._click_zones(pos, neg, r / 2)
        mask = (mask & ~must_not) | must
        mask = _near_clicked_parts(mask.float(), pos) > 0.5
        if in_box is not None:
            mask &= in_box
        return mask.float()

    def _choose_hotspot(self, frame: int, mask_work: torch.Tensor):
        """The hotspot of a mask no click or fixation marks: EG-Net's peak in its core (else its deepest point)."""
        return self._egnet_peak_inside(frame, mask_work) or deepest_point(mask_work.numpy() > 0.5)

    def _egnet_peak_inside(self, frame: int, mask_work: torch.Tensor):
        logits = self._gaze_logits(frame)
        heat = F.interpolate(logits, size=self.work_size, mode="bilinear", align_corners=False)[0, 0]
        fg = (mask_work > 0.5).numpy()
        if not fg.any():
            return None
        inside = torch.from_numpy(mask_core(fg))  # the object's core, as in tracking
        heat = heat.masked_fill(~inside, float("-inf"))
        y, x = divmod(int(torch.argmax(heat)), self.work_size[1])
        return float(x), float(y)

    def add_prompt(
        self,
        frame: int,
        object_id: int,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
        box: Sequence[float] | None = None,
        mask: np.ndarray | None = None,
        gaze: Sequence[Sequence[float]] | None = None,
        hotspot: Sequence[float] | None = None,
        source: str | None = None,
        refine_later: bool = False,
    ) -> PromptResult:
        """Prompt object `object_id` on `frame`; the frame becomes one of its anchors (keyframes).

        points: (N, 2) clicks (x, y) with labels 1 (positive) / 0 (negative); box: (x0, y0, x1, y1);
        mask: (H, W) bool, used as is; gaze: (N, 2) fixations (x, y). An explicit `hotspot` (x, y)
        overrides the hotspot chosen from the prompt.

        `refine_later`: return Gaze2Mask-Net's answer without the tracker passes that refine it (a
        quarter of a click's cost), with a `refine_token`; `refine_prompt` runs them later, and anything
        that tracks from the anchor first (propagation, completion, adaptation) runs them itself, so
        the refined anchor is exactly the one `add_prompt` would have made (except where that would
        have refused the prompt for an empty refinement: the first answer then stays). An answer that
        misses the prompt is refined at once (its refinement replaces it with another object).
        """
        frame = self._check_frame(frame)
        object_id = int(object_id)
        if object_id < 1:
            raise PromptError(f"object id must be a positive integer, got {object_id}")
        n_kinds = sum(v is not None for v in (points, box, mask, gaze))
        if n_kinds == 0:
            raise PromptError("a prompt needs clicks, a box, a mask or gaze fixations")
        hot_work = None
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != self.frame_size:
                raise PromptError(f"mask shape {mask.shape} does not match the frame size {self.frame_size}")
            mask = mask.astype(bool)
            if not mask.any():
                raise PromptError(f"the mask for object {object_id} on frame {frame} is empty")
            mask_work = self._mask_to_work(mask)
            if float(mask_work.max()) < 0.5:  # a sliver thinner than a working pixel
                mask_work = (mask_work > 0).float()
            kind = source or "mask"
        else:
            pos, neg, box_w, gaze_map, gaze_w = [], [], None, None, []
            if points is not None:
                pts = np.asarray(points, float).reshape(-1, 2)
                lab = np.ones(len(pts), int) if labels is None else np.asarray(labels, int).reshape(-1)
                if len(lab) != len(pts):
                    raise PromptError(f"{len(pts)} clicks but {len(lab)} labels")
                for (x, y), lb in zip(pts, lab):
                    self._check_point(x, y, "click" if lb > 0 else "negative click")
                    (pos if lb > 0 else neg).append(self._to_work(x, y))
                if not pos:
                    raise PromptError("at least one positive click is needed to pick an object")
                hot_work = pos[0]  # the first positive click marks the salient spot (paper, supp. 1)
            if box is not None:
                x0, y0, x1, y1 = self._box_on_image(box)
                box_w = (*self._to_work(x0, y0), *self._to_work(x1, y1))
            if gaze is not None:
                from .models.guidance import click_sigma, gaussian_points

                g = np.asarray(gaze, float).reshape(-1, 2)
                H, W = self.frame_size
                g = g[(g[:, 0] >= 0) & (g[:, 0] <= W - 1) & (g[:, 1] >= 0) & (g[:, 1] <= H - 1)]
                if len(g) == 0:
                    raise PromptError("no gaze fixation lies on the image")
                gw = np.array([self._to_work(x, y) for x, y in g])
                gaze_w = [tuple(p) for p in gw]
                gaze_map = gaussian_points(gw, self.work_size, 2 * click_sigma(self.work_size))
                if hot_work is None:
                    hot_work = tuple(np.unravel_index(np.argmax(gaze_map), gaze_map.shape)[::-1])
            guidance = make_guidance(self.work_size, pos, neg, box_w, gaze_map)
            mask_work = (self._segment(frame, guidance) > 0.5).float()
            refine_hot = hot_work
            refine_later = (refine_later and self.refine_prompts and bool(mask_work.any())
                            and not _misses_prompt(mask_work, pos, None if box_w is None else self._box_region(box_w)))
            if not refine_later:
                mask_work = self._refine_with_tracker(frame, mask_work, hot_work, pos, neg, box_w, gaze_w)
            if not bool(mask_work.any()):
                raise PromptError(f"the prompt on frame {frame} produced an empty mask: click inside the object")
            kind = source or ("click" if points is not None else "box" if box is not None else "gaze")
        if hotspot is not None:
            self._check_point(hotspot[0], hotspot[1], "hotspot")
            hot_work = self._to_work(*hotspot)
        asked_hot = hot_work
        if hot_work is None or not _inside(mask_work, hot_work):
            hot_work = self._choose_hotspot(frame, mask_work)
        anchor = _Anchor(mask_work, hot_work, kind)
        token = None
        if mask is None:
            if refine_later:
                self._refine_tokens += 1
                token = self._refine_tokens
            anchor = _Anchor(mask_work, hot_work, kind, tuple(pos), tuple(neg), box_w, completed=kind not in SPARSE_SOURCES,
                             unrefined=(refine_hot, asked_hot, tuple(gaze_w), token) if refine_later else None)
        self._objects.setdefault(object_id, _ObjectState()).anchors[frame] = anchor
        self._objects[object_id].absent.discard(frame)
        self._forget_refined(object_id, frame)
        # A mask given is the answer on its own frame as given, not its working-size copy brought back
        # (which moved a few hundred boundary pixels of a 480p mask).
        answer = mask.copy() if mask is not None else self._mask_to_frame(mask_work, frame)
        return PromptResult(frame, object_id, answer, self._to_frame(hot_work), 1.0, kind, refine_token=token)

    def refine_prompt(self, object_id: int, frame: int, token: int, should_stop=None) -> PromptResult | None:
        """The prompt that `add_prompt(refine_later=True)` answered with `token`, refined by the tracker
        passes (run now unless propagation, completion or adaptation ran them first); None when that
        prompt is no longer the object's anchor on `frame` (prompted again, corrected or removed), or
        when `should_stop()` said so between two passes (the refinement is then still to do)."""
        key = (int(object_id), int(frame), int(token))
        if key not in self._refined:
            state = self._objects.get(key[0])
            a = None if state is None else state.anchors.get(key[1])
            if a is None or a.unrefined is None or a.unrefined[3] != key[2]:
                return None
            self._settle(key[0], key[1], should_stop)
        return self._refined.pop(key, None)

    def _forget_refined(self, object_id: int, frame: int) -> None:
        """Drop refined prompts of a frame whose anchor was replaced (nobody will ask for them)."""
        for key in [k for k in self._refined if k[:2] == (object_id, frame)]:
            del self._refined[key]

    def _settle(self, object_id: int, frame: int | None = None, should_stop=None) -> None:
        """Run the pending tracker refinement of the object's anchor on `frame` (None: on every frame)."""
        state = self._objects.get(object_id)
        if state is None:
            return
        frames = [frame] if frame is not None else list(state.anchors)
        for t in frames:
            a = state.anchors.get(t)
            if a is None or a.unrefined is None:
                continue
            refine_hot, asked_hot, gaze_w, token = a.unrefined
            mask = self._refine_with_tracker(t, a.mask_work, refine_hot, a.positive, a.negative, a.box_work,
                                             list(gaze_w), should_stop)
            if mask is None:
                return  # stopped: still to refine
            if not bool(mask.any()):
                # A plain add_prompt would refuse the prompt here ("produced an empty mask"); the user
                # already has the decoder's answer, which holds the prompt: keep it.
                mask = a.mask_work
            hot = asked_hot
            if hot is None or not _inside(mask, hot):
                hot = self._choose_hotspot(t, mask)
            state.anchors[t] = replace(a, mask_work=mask, hotspot_work=hot, unrefined=None)
            self._refined[(object_id, t, token)] = PromptResult(t, object_id, self._mask_to_frame(mask, t),
                                                                self._to_frame(hot), 1.0, a.source)

    def auto_prompt(self, frame: int = 0, object_id: int = 1) -> PromptResult:
        """Automatic target selection: EG-Net's gaze map guides Gaze2Mask-Net (no user input)."""
        frame = self._check_frame(frame)
        logits = self._gaze_logits(frame)
        prob = torch.softmax(logits.flatten(), 0).reshape(1, 1, *logits.shape[-2:])
        gm = F.interpolate(prob, size=self.work_size, mode="bilinear", align_corners=False)[0, 0].numpy()
        mask_work = (self._segment(frame, make_guidance(self.work_size, gaze_map=gm)) > 0.5).float()
        if bool(mask_work.any()):
            mask_work = self._refine_with_tracker(frame, mask_work, None)
        peak_y, peak_x = np.unravel_index(int(np.argmax(gm)), gm.shape)
        peak = (float(peak_x), float(peak_y))
        if self.refine_prompts and not _inside(mask_work, peak):
            # The answer misses EG-Net's own peak (or is empty): seed the tracker there, as for a gaze
            # fixation (it raised Auto's IoU: docs/benchmarks.md, "Measurements that stood in code comments").
            mask_work = self._refine_with_tracker(frame, torch.zeros_like(mask_work), peak, gaze_w=[peak])
        if not bool(mask_work.any()):
            raise PromptError(f"EG-Net found no salient object on frame {frame}; prompt it with a click or box")
        hot = self._choose_hotspot(frame, mask_work)
        self._objects.setdefault(int(object_id), _ObjectState()).anchors[frame] = _Anchor(
            mask_work, hot, "auto", completed="auto" not in SPARSE_SOURCES)
        self._objects[int(object_id)].absent.discard(frame)
        self._forget_refined(int(object_id), frame)
        return PromptResult(frame, int(object_id), self._mask_to_frame(mask_work, frame), self._to_frame(hot), 1.0, "auto")

    # ---- completing sparse prompts ----------------------------------------------------------------
    def pending_completions(self, object_id: int) -> list[int]:
        """Anchor frames of the object whose masks came from a click or box prompt (`SPARSE_SOURCES`)
        and that `complete_prompt` has not seen yet."""
        state = self._objects.get(int(object_id))
        return [] if state is None else sorted(t for t, a in state.anchors.items() if not a.completed)

    def complete_prompt(self, object_id: int, frame: int, frames: int = COMPLETION_FRAMES) -> PromptResult | None:
        """Complete a sparse prompt's mask by a round trip before tracking from it; returns the new
        mask (None when it is kept as it was).

        A click's (or box's) mask often covers only part of its object (the shirt the click landed on), and the
        tracker, once the object has moved a little, tends to find the rest of it. So the mask is
        tracked `frames` frames away (forward, or backward when the video ends sooner) without
        adaptation, and tracked back to its own frame with the far frame's answer as the template.
        The answer replaces the mask only if it still honours the prompt (positive clicks and the
        hotspot inside, negative clicks outside, a box's mask inside its box); parts far from the
        clicked ones are dropped, as for the prompt itself. Each anchor is completed once: prompt it
        again to start over. Masks given as masks (a user's drawing, a correction) are never changed.
        """
        object_id, frame = int(object_id), self._check_frame(frame)
        state = self._objects.get(object_id)
        if state is None or frame not in state.anchors:
            raise PromptError(f"object {object_id} has no prompt on frame {frame}")
        self._settle(object_id, frame)
        a = state.anchors[frame]
        if a.completed:
            return None
        a.completed = True
        ahead, behind = self.num_frames - 1 - frame, frame
        k = min(int(frames), max(ahead, behind))
        if k <= 0 or not self.refine_prompts:
            return None
        step = 1 if ahead >= k else -1
        tracker = self.models.tracker  # not an adapted copy: it may have learnt this very mask
        t0 = time.perf_counter()
        with torch.no_grad():
            anchor = prev = make_reference(self.features(frame), a.mask_work, a.hotspot_work)
            for t in range(frame + step, frame + step * (k + 1), step):
                prev = track_step(tracker, self._tracking_features(t), anchor, prev, self.work_size).reference
            far = prev  # the far frame's answer is the template of the way back
            for t in range(frame + step * (k - 1), frame - step, -step):
                r = track_step(tracker, self._tracking_features(t), far, prev, self.work_size)
                prev = r.reference
        self.timings["heads"] += time.perf_counter() - t0
        mask = (r.mask_prob > 0.5).float()
        if a.box_work is not None:
            # Clipped to the box, not refused when mostly outside it as the prompt's answer is: the way
            # back often spreads over look-alikes next to the object (drift-straight's second car), and
            # refusing those cost box J (docs/benchmarks.md, "Measurements that stood in code comments").
            mask = mask * self._box_region(a.box_work)
        if not (_honours_clicks(mask, a.positive, a.negative)
                and (a.hotspot_work is None or _inside(mask, a.hotspot_work))):
            return None
        mask = _near_clicked_parts(mask, a.positive)
        state.anchors[frame] = replace(a, mask_work=mask)
        return PromptResult(frame, object_id, self._mask_to_frame(mask, frame), self._to_frame(a.hotspot_work), 1.0, a.source)

    def complete_prompts(self, object_id: int, frames: int = COMPLETION_FRAMES) -> list[PromptResult]:
        """`complete_prompt` on each of the object's pending anchors; returns the masks that changed."""
        results = (self.complete_prompt(object_id, t, frames) for t in self.pending_completions(object_id))
        return [r for r in results if r is not None]

    def remove_anchor(self, object_id: int, frame: int) -> None:
        self._objects[object_id].anchors.pop(frame, None)
        self._forget_refined(object_id, frame)
        self._distractors.pop((object_id, frame), None)

    def reset_object(self, object_id: int) -> None:
        self._objects.pop(object_id, None)
        self._refined = {k: v for k, v in self._refined.items() if k[0] != object_id}
        self._distractors = {k: v for k, v in self._distractors.items() if k[0] != object_id}
        self.reset_adaptation(object_id)

    def reset(self) -> None:
        self._objects.clear()
        self._refined.clear()
        self._distractors.clear()
        self._adapters.clear()
        self._adapted_frames.clear()
        self._verdicts.clear()
        self._base_round_trips.clear()

    # ---- per-video adaptation ------------------------------------------------------------------
    def adapt(self, object_id: int, seconds: float = DEFAULT_ADAPT_SECONDS, should_stop=None, progress=None,
              max_steps: int | None = DEFAULT_ADAPT_STEPS) -> int:
        """Fine-tune this object's own copy of the tracker on its anchor frames (prompts and
        corrections) with synthetic motion, for about `seconds` and at most `max_steps` optimiser steps
        (None: no cap). Returns the steps run.

        The base weights never change; later propagation of this object uses the adapted copy.
        Every anchor added since the last call joins the training set first.
        """
        if seconds <= 0:
            return 0
        anchors = self._objects.get(object_id)
        if not anchors or not anchors.anchors:
            raise PromptError(f"object {object_id} has no prompt to adapt to")
        self.add_adaptation_frames(object_id)
        adapter = self._adapters.get(object_id)
        if adapter is None:  # every anchor still waits for its completion
            return 0
        return adapter.fit(seconds, should_stop=should_stop, progress=progress, max_steps=max_steps)

    def pending_adaptation_frames(self, object_id: int) -> list[int]:
        """Anchor frames of the object that its adaptation has not taken in yet (all of its anchors
        before the first `adapt`, but those kept as tracked, source "kept"); `adapt` adds them before it trains. A click's or box's mask waits
        until `complete_prompt` has seen it (`complete_prompts(object_id, 0)` lets it through as is), so
        adaptation never learns a mask that is about to change."""
        learnt = self._adapted_frames.get(object_id, set())
        state = self._objects.get(object_id)
        return [f for f in self.anchors(object_id)
                if f not in learnt and state.anchors[f].completed and state.anchors[f].source != "kept"]

    def add_adaptation_frames(self, object_id: int, max_frames: int | None = None) -> list[int]:
        """Add up to `max_frames` of `pending_adaptation_frames` to the object's adaptation set
        (one encoder pass over each frame's synthetic views), without training; returns the frames
        added. Lets a caller that shares the session between threads add frames one short lock hold
        at a time, then train in chunks with `adapt(..., max_steps=...)`."""
        pending = self.pending_adaptation_frames(object_id)[:max_frames]
        if not pending:
            return []
        if self._adapters.get(object_id) is None:
            self._adapters[object_id] = TrackerAdapter(self.models.tracker, self.work_size, seed=object_id,
                                                       parts=self.adapt_parts)
            self._adapted_frames[object_id] = set()
        adapter = self._adapters[object_id]
        h, w = self.work_size
        for frame in pending:
            self._settle(object_id, frame)
            anchor = self._objects[object_id].anchors[frame]
            img = cv2.resize(self.source.get_frame(frame), (w, h), interpolation=cv2.INTER_AREA)
            adapter.add_frame(self.models.encoder, img, anchor.mask_work.numpy() > 0.5, anchor.hotspot_work)
            self._adapted_frames[object_id].add(frame)
        return pending

    def is_adapted(self, object_id: int) -> bool:
        return object_id in self._adapters and self._adapters[object_id].steps > 0

    def reset_adaptation(self, object_id: int) -> None:
        """Back to the base tracker for this object."""
        self._adapters.pop(object_id, None)
        self._adapted_frames.pop(object_id, None)
        self._verdicts.pop(object_id, None)

    def _round_trip_iou(self, tracker, object_id: int, frame: int, frames: int, back_tracker=None,
                        outward: list | None = None) -> float:
        """IoU between an anchor's mask and what `tracker` brings back to the anchor's frame after
        tracking it `frames` frames away (forward, or backward near the video's end) and back, the far
        answer as the template of the way back: real neighbouring frames, not views of the anchor.
        Without the distractor memory: it compares the two trackers themselves (as chosen on the split).
        back_tracker: another tracker for the way back (benchmarks/guard_signals.py); outward: a list that
        receives the (h, w) bool masks of the way out."""
        self._settle(object_id, frame)
        a = self._objects[object_id].anchors[frame]
        ahead, behind = self.num_frames - 1 - frame, frame
        k = min(int(frames), max(ahead, behind))
        if k <= 0:
            return 1.0
        step = 1 if ahead >= k else -1
        with torch.no_grad():
            anchor = prev = make_reference(self.features(frame), a.mask_work, a.hotspot_work)
            for t in range(frame + step, frame + step * (k + 1), step):
                r = track_step(tracker, self._tracking_features(t), anchor, prev, self.work_size)
                prev = r.reference
                if outward is not None:
                    outward.append((r.mask_prob > 0.5).numpy())
            far = prev
            for t in range(frame + step * (k - 1), frame - step, -step):
                r = track_step(back_tracker or tracker, self._tracking_features(t), far, prev, self.work_size)
                prev = r.reference
        back, given = r.mask_prob > 0.5, a.mask_work > 0.5
        union = int((back | given).sum())
        return 1.0 if union == 0 else int((back & given).sum()) / union

    def adaptation_verdict(self, object_id: int, judge: bool = True) -> AdaptationVerdict | None:
        """Judge the object's adapted copy (None when it has none, or no training step yet): kept when
        its round trips from the anchors it learnt (`_round_trip_iou`, ADAPT_GUARD_FRAMES frames) end
        no worse than the base tracker's, less ADAPT_GUARD_MARGIN, and bring something back. Adaptation
        that overfits the prompted frame's look loses the object on the real frames next to it and is dropped; propagation then
        uses the base tracker. Judged once per adaptation (a later `adapt` call is judged again); with
        `judge=False` only a verdict already reached for the current adaptation is returned (no tracking:
        cheap enough for a GUI thread)."""
        object_id = int(object_id)
        adapter = self._adapters.get(object_id)
        if adapter is None or adapter.steps == 0:
            return None
        verdict = self._verdicts.get(object_id)
        if verdict is not None and verdict.steps == adapter.steps:
            return verdict
        if not judge:
            return None
        frames = sorted(f for f in self._adapted_frames.get(object_id, ()) if f in self._objects[object_id].anchors)
        frames = frames[:: -(-len(frames) // 3)] if frames else frames  # at most 3, spread: a bounded cost
        t0 = time.perf_counter()
        if not frames:  # its anchors were removed since: nothing left to judge it on
            adapted = base = float("nan")
            kept = False
        else:
            adapted = float(np.mean([self._round_trip_iou(adapter.model, object_id, f, ADAPT_GUARD_FRAMES)
                                     for f in frames]))
            base = float(np.mean([self._base_round_trip(object_id, f) for f in frames]))
            # A copy that brings nothing back (a speck of a mask, lost by both) earns nothing: base tracker.
            kept = adapted > 0.0 and adapted >= base - ADAPT_GUARD_MARGIN
        self.timings["heads"] += time.perf_counter() - t0
        verdict = AdaptationVerdict(kept, adapted, base, adapter.steps)
        self._verdicts[object_id] = verdict
        return verdict

    def _base_round_trip(self, object_id: int, frame: int) -> float:
        key = (object_id, frame)
        self._settle(object_id, frame)
        mask = self._objects[object_id].anchors[frame].mask_work
        cached = self._base_round_trips.get(key)
        if cached is None or cached[0] is not mask:  # a new prompt or completion on that frame
            cached = (mask, self._round_trip_iou(self.models.tracker, object_id, frame, ADAPT_GUARD_FRAMES))
            self._base_round_trips[key] = cached
        return cached[1]

    def adaptation_state(self, object_id: int) -> dict | None:
        """The adapted weights of an object (to save with a project), or None."""
        a = self._adapters.get(object_id)
        return None if a is None else {**a.state_dict(), "frames": sorted(self._adapted_frames[object_id])}

    def load_adaptation_state(self, object_id: int, state: dict) -> None:
        a = TrackerAdapter(self.models.tracker, self.work_size, seed=object_id, parts=self.adapt_parts)
        a.load_state_dict(state)
        self._adapters[object_id] = a
        # Frames already learnt are not re-added; their views are not stored, only the weights.
        self._adapted_frames[object_id] = set(state.get("frames", []))

    def _tracker_for(self, object_id: int, frame: int):
        """The tracker for the object on `frame`: its adapted copy where it has one that passes the
        guard and the frame lies within `adapt_reach` frames of a frame it learnt."""
        a = self._adapters.get(object_id)
        if a is None or a.steps == 0:
            return self.models.tracker
        if self.guard_adaptation and not self.adaptation_verdict(object_id).kept:
            return self.models.tracker
        if self.adapt_reach is not None and not any(
                abs(frame - f) < self.adapt_reach for f in self._adapted_frames.get(object_id, ())):
            return self.models.tracker
        return a.model

    # ---- preflight: what propagation does first ---------------------------------------------------
    def needs_adaptation(self, object_id: int) -> bool:
        """Whether `preflight` adapts the object: a budget (`options.adapt_seconds`), anchors its
        adaptation has not taken in yet, and a frame left to track (not every frame is an anchor)."""
        return (self.options.adapt_seconds > 0 and bool(self.pending_adaptation_frames(object_id))
                and len(self.anchors(object_id)) < self.num_frames)

    def preflight(self, object_ids: Sequence[int] | None = None) -> list[PromptResult]:
        """Prepare objects for tracking as `options` say, as SAM2's `propagate_in_video_preflight` does:
        complete the masks of their click and box prompts (`complete_prompts` over
        `options.complete_frames`; 0 lets them through as they are), then adapt the tracker of each
        object that `needs_adaptation` (`adapt` for `options.adapt_seconds`, at most
        `options.adapt_steps` steps) and judge the adapted copy (`adaptation_verdict`). `propagate`
        runs it first; a second call finds nothing left to do. Returns the prompt masks that changed."""
        return [s.result for s in self.preflight_steps(object_ids) if s.phase == "completed" and s.result is not None]

    def preflight_steps(self, object_ids: Sequence[int] | None = None, *, complete: bool = True,
                        adapt: bool = True, adapt_ids: Sequence[int] | None = None, should_stop=None,
                        chunk_seconds: float | None = None) -> Iterator[PreflightStep]:
        """`preflight` one step at a time, for a caller that shares the session between threads and
        holds its lock for one step (the tracking dock; `_napari.workers`). `complete` / `adapt` pick
        the phases; `adapt_ids` adapts these objects whether or not they `need_adaptation` (the dock's
        "Adapt now"); `should_stop` ends the adaptation early (no "adapted" step then; what was learnt
        is kept); `chunk_seconds` trains in chunks of about that long (None: one `adapt` call)."""
        ids = [int(i) for i in (self.object_ids if object_ids is None else object_ids)]
        if complete:
            for oid in ids:
                for frame in self.pending_completions(oid):
                    yield PreflightStep("completed", oid, self.complete_prompt(oid, frame, self.options.complete_frames))
        if not adapt or self.options.adapt_seconds <= 0:
            return
        learn = [int(i) for i in adapt_ids] if adapt_ids is not None else [i for i in ids if self.needs_adaptation(i)]
        for index, oid in enumerate(learn):
            t0 = time.perf_counter()
            yield from self._adaptation_steps(oid, index, len(learn), should_stop, chunk_seconds)
            self.preflight_seconds += time.perf_counter() - t0

    def _adaptation_steps(self, oid: int, index: int, total: int, should_stop, chunk_seconds) -> Iterator[PreflightStep]:
        def stopped() -> bool:
            return should_stop is not None and should_stop()

        seconds, max_steps = self.options.adapt_seconds, self.options.adapt_steps
        added: list[int] = []
        while not stopped():
            new = self.add_adaptation_frames(oid, max_frames=1)
            if not new:
                break
            added.extend(new)
            yield PreflightStep("frames", oid, frames=tuple(added), index=index, total=total)
        steps, spent = 0, 0.0
        while spent < seconds and (max_steps is None or steps < max_steps) and not stopped():
            t0 = time.perf_counter()
            n = self.adapt(oid, seconds - spent if chunk_seconds is None else min(chunk_seconds, seconds - spent),
                           should_stop=should_stop, max_steps=None if max_steps is None else max_steps - steps)
            spent += time.perf_counter() - t0
            if n == 0:
                break  # nothing to learn from (or stopped mid-chunk)
            steps += n
            fraction = spent / seconds if max_steps is None else max(spent / seconds, steps / max_steps)
            yield PreflightStep("training", oid, steps=steps, seconds=spent, fraction=min(fraction, 1.0),
                                index=index, total=total)
            if chunk_seconds is None:
                break  # the whole budget in one call
        if stopped():
            return
        self.adaptation_verdict(oid)  # the guard's round trips count as adaptation, not tracking
        state = self.adaptation_state(oid)
        yield PreflightStep("adapted", oid, frames=tuple(state["frames"]) if state is not None else (),
                            steps=steps, seconds=spent, fraction=1.0, index=index, total=total)

    # ---- propagation -------------------------------------------------------------------------
    def propagate(
        self,
        object_ids: Sequence[int] | None = None,
        start_frame: int | None = None,
        end_frame: int | None = None,
        direction: str = "forward",
        stop_at_keyframe: bool = False,
        preflight: bool = True,
    ) -> Iterator[TrackResult]:
        """Yield TrackResults frame by frame, after the objects' `preflight` (unless `preflight` is
        False: a caller that ran `preflight_steps` itself, as the dock does between its jobs).

        direction "forward" sweeps from `start_frame` (default: each object's first anchor) to
        `end_frame` (default: the last frame); "backward" sweeps the other way; "both" runs forward
        from the first anchor, then backward from it to frame 0. Anchor frames are never overwritten:
        reaching one re-anchors the sweep (or stops it, with `stop_at_keyframe`).
        Objects are stepped inside each frame so each frame is encoded once for all of them.
        """
        if direction not in ("forward", "backward", "both"):
            raise ValueError(f"direction must be forward, backward or both, not {direction!r}")
        # By default the objects with a prompt (one marked absent somewhere and prompted nowhere has none).
        ids = [int(i) for i in (object_ids if object_ids is not None else
                                [o for o in self.object_ids if self._objects[o].anchors])]
        for i in ids:
            if not self._objects.get(i) or not self._objects[i].anchors:
                raise PromptError(f"object {i} has no prompt yet: click, draw a box or give a mask first")
        if preflight:
            self.preflight(ids)
        if direction == "both":
            yield from self._sweep(ids, start_frame, end_frame, +1, stop_at_keyframe)
            firsts = {i: min(self._objects[i].anchors) for i in ids}
            yield from self._sweep(ids, start_frame if start_frame is not None else max(firsts.values()),
                                   0, -1, stop_at_keyframe)
            return
        step = +1 if direction == "forward" else -1
        yield from self._sweep(ids, start_frame, end_frame, step, stop_at_keyframe)

    def _sweep(self, ids, start_frame, end_frame, step, stop_at_keyframe) -> Iterator[TrackResult]:
        last = self.num_frames - 1
        for i in ids:
            self._settle(i)
        if start_frame is None:
            firsts = [min(self._objects[i].anchors) if step > 0 else max(self._objects[i].anchors) for i in ids]
            start_frame = min(firsts) if step > 0 else max(firsts)
        start_frame = self._check_frame(start_frame)
        end = (last if step > 0 else 0) if end_frame is None else self._check_frame(end_frame)
        memory = self.distractor_memory  # read once: the dock may change its settings while a run goes on
        # Per object: (anchor reference, previous reference), set once the sweep meets an anchor.
        # (`_ABSENT` past a frame where the object is absent, until its next anchor)
        # (`_Search` instead where the sweep looks for it again there: `_searches_past`)
        state: dict[int, tuple[Reference, Reference] | _Search | str | None] = {i: None for i in ids}
        active = set(ids)
        # The next frame is encoded on a thread of the sweep's own while this one is tracked; each
        # frame's steps run with half the threads (split_threads), the caller's count is back at a yield.
        threads = self._ahead_threads()
        ahead = EncodeAhead(self._encode_for_tracking, threads) if threads else None
        balance = ThreadBalance()  # which of the two threads computes the anchor correlations
        searching = self.options.reacquire  # past an absence, look for the object again (`_absent_state`)
        # Each object's smoothed hotspot offset from its centroid, carried frame to frame (`_SteadyHotspots`).
        steady = _SteadyHotspots(self.options.hotspot_smoothing)
        try:
            for t in range(start_frame, end + step, step):
                if not active:
                    break
                with split_threads(threads) if ahead else contextlib.nullcontext():
                    prepared = None
                    if ahead is not None:
                        # Not for objects absent until an anchor further on: their frames need no
                        # encoding. A sweep looking for them again needs every frame from the absence
                        # on (its first search compares with the absence's frame), unless it stops there.
                        # Nor for objects with no anchor behind yet (a backward sweep from the video's
                        # end over frames after an object's last anchor): nothing tracks them there.
                        def needs(i):  # frame t + step, for object i
                            obj = self._objects[i]
                            if t + step in obj.anchors:
                                return True
                            if state[i] is _ABSENT:
                                return False
                            if state[i] is None and t != start_frame and t not in obj.anchors and t not in obj.absent:
                                return False  # still nothing behind after t: t + step is not tracked either
                            return not any(a in obj.absent and (stop_at_keyframe or
                                                                not self._searches_past(i, a, step, searching))
                                           for a in (t, t + step))

                        wanted = any(needs(i) for i in active)
                        if t != end and t + step not in self._features and wanted:
                            # The anchors as they stand: an object re-anchored on frame t computes its own.
                            anchors = {id(a): a for a in (st[0] if isinstance(st, tuple) else st.anchor
                                                          for i, st in state.items()
                                                          if i in active and isinstance(st, (tuple, _Search)))}
                            ahead.request(t + step, tuple(anchors.values()) if balance.ahead() else ())
                        balance.finished()
                        encoded = ahead.take(t)
                        balance.started()
                        if encoded is not None:
                            self._keep_features(t, encoded)
                            balance.encoded(encoded[1] + encoded[2] + encoded[3][3])  # its own: not the anchors
                            prepared = encoded[3]
                            self.timings["heads_ahead"] += prepared[2]
                    results = self._track_frame(t, step, active, state, memory, stop_at_keyframe, prepared,
                                                searching, balance if ahead is not None else None, steady)
                yield from results
            if ahead is not None:  # a frame encoded past the sweep's end (it stopped at a keyframe) is kept
                for f, encoded in ahead.drain().items():
                    if f not in self._features:
                        self._keep_features(f, encoded)
        finally:
            if ahead is not None:
                ahead.close()

    def _track_frame(self, t, step, active, state, memory, stop_at_keyframe, prepared=None,
                     searching=False, balance: ThreadBalance | None = None,
                     steady: _SteadyHotspots | None = None) -> list[TrackResult]:
        """One frame of `_sweep`: re-anchor the objects whose anchor it is, track the others. prepared:
        the encoding thread's keys and anchor correlations for this frame (`_encode_for_tracking`);
        searching: past an absence, look for the object again (`TrackingOptions.reacquire`, read once
        per sweep); balance: told how long the anchor correlations the encoding thread left took here;
        steady: the sweep's hotspot smoothing (None: each frame's own hotspot)."""
        steady = steady or _SteadyHotspots(0.0)
        keys, corrs = (prepared[0], prepared[1]) if prepared is not None else (None, {})
        results = []
        for i in sorted(active):
            anchors = self._objects[i].anchors
            if t in anchors or t in self._objects[i].absent:
                if state[i] is not None and stop_at_keyframe:
                    active.discard(i)
                    continue
                if t not in anchors:
                    # The object is not here: nothing to track until its next anchor, or until it is found again.
                    state[i] = self._absent_state(i, t, step, memory, searching, state[i])
                    steady.forget(i)
                    continue
                state[i] = self._leaving_anchor(i, t, step, memory)
                steady.start_at(i, anchors[t])
                if balance is not None:
                    balance.skip()
                continue
            if state[i] is None:
                state[i] = self._state_from_behind(i, t, step, memory, searching)
                if state[i] is None:
                    continue  # no anchor behind t in this direction: nothing to propagate from
            if state[i] is _ABSENT:
                # Forward: absent until its next anchor, as the user said, so an empty mask (what an
                # earlier run tracked here would otherwise stay). Backward, the frames before an absence
                # are the forward sweep's from the anchor before it (or not looked at): nothing here.
                if step > 0:
                    results.append(TrackResult(t, i, np.zeros(self.frame_size, bool), None, 1.0))
                continue
            if isinstance(state[i], _Search):
                results.append(self._search_step(i, t, step, state, keys, corrs, balance))
                steady.forget(i)  # found again, its own hotspot starts afresh
                continue
            anchor_ref, prev_ref = state[i]
            feats = self._tracking_features(t)
            t0 = time.perf_counter()
            anchor_corr = self._anchor_correlation(anchor_ref, keys, corrs, balance)
            r = track_step(self._tracker_for(i, t), feats, anchor_ref, prev_ref, self.work_size, keys=keys,
                           anchor_corr=anchor_corr, evidence=self.collect_evidence, windowed=self.search_window)
            hotspot = steady.step(i, r)
            self.timings["heads"] += time.perf_counter() - t0
            state[i] = (anchor_ref, r.reference)  # the next step's template keeps the heat map's own peak
            mask = self._mask_to_frame(r.mask_prob, t)
            # A mask that vanishes at the frame's size (a frame smaller than the working size) has no hotspot.
            results.append(TrackResult(t, i, mask, self._to_frame(hotspot) if mask.any() else None,
                                       r.confidence, r.evidence))
        return results

    @staticmethod
    def _anchor_correlation(anchor: Reference, keys, corrs: dict, balance: ThreadBalance | None):
        """A tracking step's anchor correlation: the encoding thread's (`corrs`, `_encode_for_tracking`);
        else, where the sweep balances its threads (`ThreadBalance` left it to this one), computed here
        and its time told to `balance`; else None (`track_step` computes it)."""
        done = corrs.get(id(anchor))
        if done is not None and done[0] is anchor:
            return done[1]
        if balance is None or keys is None:
            return None
        t0 = time.perf_counter()
        with torch.no_grad():
            corr = anchor_correlation(keys, anchor)
        balance.shared_here(time.perf_counter() - t0)
        return corr

    def _absent_state(self, object_id: int, t: int, step: int, memory: bool | None, searching: bool,
                      current=None):
        """A sweep's state of an object past frame `t`, where it is absent: `_Search` (with the template of
        its nearest anchor behind `t`: `current`'s, the sweep's state before `t`, where it has one) where
        the sweep looks for it again (`_searches_past`), else `_ABSENT`."""
        if not self._searches_past(object_id, t, step, searching):
            return _ABSENT
        if isinstance(current, (tuple, _Search)):  # the template the sweep tracks it with (and correlates ahead)
            return _Search(current[0] if isinstance(current, tuple) else current.anchor)
        behind = [f for f in self._objects[object_id].anchors if (f < t if step > 0 else f > t)]
        a = max(behind) if step > 0 else min(behind)
        return _Search(self._leaving_anchor(object_id, a, step, self.distractor_memory if memory is None else memory)[0])

    def _empty_reference(self, keys: torch.Tensor) -> Reference:
        """A previous-frame template with these keys and an empty mask: what a search tracks from."""
        return make_reference(None, torch.zeros(self.work_size), None, keys=keys)

    def _searches_past(self, object_id: int, t: int, step: int, searching: bool) -> bool:
        """Whether a sweep (`step` +1 / -1; `searching`: `TrackingOptions.reacquire`) looks for the object
        past its absence on frame `t`: with the look of an anchor behind `t` in the sweep's direction, and
        backward only where no anchor comes before `t` (those frames are the forward sweep's from it)."""
        anchors = self._objects[object_id].anchors
        if not searching or not any((f < t if step > 0 else f > t) for f in anchors):
            return False
        return step > 0 or not any(f < t for f in anchors)

    def _search_step(self, object_id: int, t: int, step: int, state: dict, keys, corrs,
                     balance: ThreadBalance | None = None) -> TrackResult:
        """One frame of a sweep looking for an object past an absence (`_Search`): the tracker's answer from
        the object's look alone, taken once it looks like the object on REACQUIRE_FRAMES frames in a row
        (the sweep then tracks it from there); else an empty mask, whose confidence is 1 - the answer's
        where the answer looked like the object (so a frame it may be back on shows as low), else 1."""
        search = state[object_id]
        feats = self._tracking_features(t)
        keys = matching_keys(feats) if keys is None else keys
        if search.prev is None:
            search.prev = self._empty_reference(matching_keys(self._tracking_features(t - step)))
        t0 = time.perf_counter()
        anchor_corr = self._anchor_correlation(search.anchor, keys, corrs, balance)
        r = track_step(self._tracker_for(object_id, t), feats, search.anchor, search.prev, self.work_size, keys=keys,
                       anchor_corr=anchor_corr, evidence=True)
        self.timings["heads"] += time.perf_counter() - t0
        evidence = r.evidence if self.collect_evidence else None
        looks_found = r.evidence["area"] > 0 and _looks_found(r.evidence)
        search.streak = search.streak + 1 if looks_found else 0
        if search.streak >= REACQUIRE_FRAMES or self.collect_evidence:  # a study sees every answer
            mask = self._mask_to_frame(r.mask_prob, t)  # snapped to the frame's edges: only where it is used
        if search.streak >= REACQUIRE_FRAMES:
            state[object_id] = (search.anchor, r.reference)  # found again: tracked from here on
            return TrackResult(t, object_id, mask, self._to_frame(r.hotspot_xy) if mask.any() else None, r.confidence,
                               evidence, found_again=True)
        # Still away: the next frame's search compares with this frame's keys, again with an empty mask.
        search.prev = self._empty_reference(keys)
        return TrackResult(t, object_id, np.zeros(self.frame_size, bool), None,
                           1.0 - r.confidence if looks_found else 1.0, evidence)

    def _template_for_correction(self, object_id: int, t: int, step: int, memory: bool | None = None) -> Reference | None:
        """For a sweep leaving a corrected frame `t`: the template of the nearest prompt (a keyframe that
        is not itself a correction) on either side, behind it on a tie, so that a correction restarts the
        previous-frame chain without replacing the prompt the user gave as the object's appearance. A
        backward sweep from a correction after the prompt keeps that prompt too: the anchor template is
        the object's appearance, which does not depend on the direction (on the validation split, using
        the correction as the backward anchor cost up to 0.98 J-frames per click; docs/benchmarks.md,
        "Corrective clicks"). None: no such prompt, or `corrections_keep_anchor` is off (the correction
        is the anchor)."""
        anchors = self._objects[object_id].anchors
        if not self.corrections_keep_anchor or anchors[t].source not in CORRECTION_SOURCES:
            return None
        prompts = [f for f, a in anchors.items() if a.source not in CORRECTION_SOURCES]
        if not prompts and anchors[t].source == "kept":
            # An object started by painting (a correction to the session): its masks given by hand are its look.
            prompts = [f for f, a in anchors.items() if a.source != "kept"]
        if not prompts:
            return None
        f = min(prompts, key=lambda f: (abs(f - t), 0 if (f < t if step > 0 else f > t) else 1))
        return self._anchor_reference(object_id, f, memory)

    @property
    def distractor_memory(self) -> bool:
        """Whether a sweep keeps out what looks like the regions the tracker would wrongly add to an
        anchor's mask on its own frame (`_anchor_reference`; `options.distractor_memory`, chosen on the
        validation split: docs/benchmarks.md, "Part prompts and look-alikes")."""
        return self.options.distractor_memory

    @distractor_memory.setter
    def distractor_memory(self, on: bool) -> None:
        self.options = replace(self.options, distractor_memory=bool(on))

    @property
    def search_window(self) -> bool:
        """Whether a sweep's steps look for each object in a window around it (`tracking.search_window`;
        `options.search_window`) rather than on the whole frame."""
        return self.options.search_window

    @search_window.setter
    def search_window(self, on: bool) -> None:
        self.options = replace(self.options, search_window=bool(on))

    def _anchor_reference(self, object_id: int, t: int, distractors: bool | None = None) -> Reference:
        """The template of anchor `t`, with its distractors when `distractors` (default: `distractor_memory`)
        says so: the grid cells that DISTRACTOR_PASSES base-tracker passes over the anchor's own frame add
        to its mask (each pass from the union so far). A whole object's mask grows little (a rim, a
        look-alike beside it); part of an object grows into the rest, which the sweep then keeps out.
        Computed when a sweep first meets the anchor, then cached for that `_Anchor` (every change of an
        anchor's mask makes a new one). Other objects' anchor masks on the same frame join them. `distractors` False: a reference only used as the previous-frame
        template (which never gates). None also when no grid cell is mostly the object (a small or thin
        object): `distractor_gate` compares with the template's object cells, and without one it would
        keep nothing."""
        a = self._objects[object_id].anchors[t]
        keys = matching_keys(self._tracking_features(t))
        ref = make_reference(None, a.mask_work, a.hotspot_work, keys=keys)
        if not (self.distractor_memory if distractors is None else distractors) or not bool((ref.mask_map > 0.5).any()):
            return ref
        grid = tuple(ref.mask_map.shape[-2:])
        cached = self._distractors.get((object_id, t))
        if cached is None or cached[0] is not a:
            mask = a.mask_work > 0.5
            grown = mask
            for _ in range(DISTRACTOR_PASSES):
                grown = grown | self._track_own_frame(t, grown.float(), a.hotspot_work)
            cached = (a, mask_to_grid((grown & ~mask).float(), grid)[0, 0].flatten() > 0.5)
            self._distractors[(object_id, t)] = cached
        cells = cached[1]
        # The other objects prompted on this frame are distractors too: two look-alike animals, each
        # an object, each keeps out of the other's mask.
        for other_id, other in self._objects.items():
            if other_id != object_id and t in other.anchors:
                cells = cells | (mask_to_grid(other.anchors[t].mask_work.float(), grid)[0, 0].flatten() > 0.5)
        cells = cells & ~(ref.mask_map.flatten() > 0.5)
        ref.distractors = key_rows(keys)[cells].t() if bool(cells.any()) else None
        return ref

    def _state_from_behind(self, object_id: int, t: int, step: int, memory: bool | None = None,
                           searching: bool = False):
        """Start a sweep at a non-anchor frame: re-anchor on the nearest anchor behind it (in the
        sweep direction) and seed the previous template with it (its anchor template chosen as a sweep
        leaving that anchor would, `_template_for_correction`); when the nearest keyframe behind it is a
        frame where the object is absent, the state past that absence (`_absent_state`: `_Search` or
        `_ABSENT`)."""
        obj = self._objects[object_id]
        behind = [a for a in (*obj.anchors, *obj.absent) if (a < t if step > 0 else a > t)]
        if not behind:
            return None
        a = max(behind) if step > 0 else min(behind)
        if a not in obj.anchors:
            return self._absent_state(object_id, a, step, memory, searching)  # the object left before t
        return self._leaving_anchor(object_id, a, step, self.distractor_memory if memory is None else memory)

    def _leaving_anchor(self, object_id: int, a: int, step: int, memory: bool) -> tuple[Reference, Reference]:
        """A sweep's state leaving anchor `a`: the anchor template (the nearest prompt's where `a` is a
        correction, `_template_for_correction`; else `a`'s own, with its distractors where `memory`
        says so) and the previous-frame template (`a`'s own)."""
        template = self._template_for_correction(object_id, a, step, memory)
        ref = self._anchor_reference(object_id, a, distractors=memory and template is None)
        return template or ref, ref

