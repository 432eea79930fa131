"""Per-video adaptation: fine-tune a per-object copy of the tracker on the user's own masks.

Each prompted or corrected frame is warped into a few random affine + colour views (synthetic motion
with known correspondence), encoded once, and the copy is trained on (anchor view, previous view,
search view) triples of those frames for a time budget and at most a number of steps. The base
weights are never touched.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch

from .augment import augmented_views
from .backbone import Encoder, FrameFeatures, encode_views
from .heads import WCSTracker, matching_keys
from .losses import deep_seg_loss
from .tracking import correlation_input, deepest_point, hotspot_weights, make_reference, stack_references

DEFAULT_VIEWS = 6
# The parts of the tracker head a per-object copy fine-tunes: the second stride-8 block, the
# stride-4 block and the mask and hotspot outputs (the projections and first blocks stay frozen).
# On held-out DAVIS this scored as the whole head did and lost less with more steps, at a cheaper
# step (docs/benchmarks.md, "Adaptation: parts and steps").
ADAPTED_PARTS = ("block8b", "block4", "mask8", "mask4", "hot_block", "hot_out")

# With several learnt frames (a prompt and corrections), this share of the training triples takes its
# template from another learnt frame than its search view: tracking's own situation, the object's
# real change of look between frames, which views of one frame cannot show. Chosen on the validation
# split's corrections curves (0 / 0.5: +0.004-0.009 J from the second correction on, docs/benchmarks.md,
# "Cross-frame triples"); with the prompt alone nothing changes.
CROSS_FRAME_SHARE = 0.5


@dataclass
class _Example:
    feats: list[FrameFeatures]  # view 0 = the frame itself
    keys: list[torch.Tensor]  # matching keys per view (fixed functions of the features: computed once)
    masks: list[np.ndarray]  # bool (h, w) per view
    affines: list[np.ndarray]  # view-0 px -> view px
    hotspot: tuple[float, float] | None  # in view 0


def _map(a_from, a_to, xy):
    m_from, m_to = np.vstack([a_from, [0, 0, 1]]), np.vstack([a_to, [0, 0, 1]])
    p = m_to @ np.linalg.inv(m_from) @ np.array([xy[0], xy[1], 1.0])
    return float(p[0]), float(p[1])


def _perturb(mask: np.ndarray, rng) -> np.ndarray:
    m = mask.astype(np.uint8)
    h, w = m.shape
    k = int(rng.integers(1, 10))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    m = cv2.dilate(m, kernel) if rng.random() < 0.5 else cv2.erode(m, kernel)
    dx, dy = rng.normal(0, 0.02, 2) * np.array([w, h])
    m = cv2.warpAffine(m, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_NEAREST)
    return m.astype(bool)


class TrackerAdapter:
    """A per-object copy of the tracker head and the examples it learns from."""

    def __init__(self, base: WCSTracker, size: tuple[int, int], seed: int = 0, lr: float = 5e-4,
                 parts: tuple[str, ...] | None = ADAPTED_PARTS, cross_frame: float | None = None):
        """parts: top-level module names of the tracker head to fine-tune (None: all of it);
        cross_frame: the share of training triples whose template is another learnt frame
        (None: CROSS_FRAME_SHARE)."""
        self.size = size
        self.cross_frame = CROSS_FRAME_SHARE if cross_frame is None else float(cross_frame)
        self.model = copy.deepcopy(base)
        self.model.requires_grad_(False)
        trained = [p for name, p in self.model.named_parameters() if parts is None or name.split(".")[0] in parts]
        for p in trained:
            p.requires_grad_(True)
        self.examples: list[_Example] = []
        self.rng = np.random.default_rng(seed)
        self.opt = torch.optim.AdamW(trained, lr=lr, weight_decay=1e-4)
        self.steps = 0
        self.seconds = 0.0

    def add_frame(self, encoder: Encoder, frame_work: np.ndarray, mask_work: np.ndarray,
                  hotspot_work=None, n_views: int = DEFAULT_VIEWS) -> None:
        """Add a frame (RGB at working size) and its mask as a training example with n_views views."""
        views, masks, affs = augmented_views(self.rng, frame_work, mask_work, n_views, strength=0.6)
        feats = encode_views(encoder, views, self.size)
        keys = [matching_keys(ft) for ft in feats]
        self.examples.append(_Example(feats, keys, masks, affs, hotspot_work or deepest_point(mask_work.astype(bool))))

    def _batch(self, batch_size: int):
        feats, keys, refs_a, refs_p, targets, hot_xy, hot_ok = [], [], [], [], [], [], []
        for _ in range(batch_size):
            i = int(self.rng.integers(len(self.examples)))
            ex = src = self.examples[i]
            if self.cross_frame > 0 and len(self.examples) > 1 and self.rng.random() < self.cross_frame:
                # Another learnt frame is the template, as in tracking: the object's real change in look.
                src = self.examples[(i + int(self.rng.integers(1, len(self.examples)))) % len(self.examples)]
            n = len(ex.feats)
            va = 0 if self.rng.random() < 0.7 else int(self.rng.integers(len(src.feats)))
            vp, vt = (int(v) for v in self.rng.integers(0, n, 2))
            prev = _perturb(ex.masks[vp], self.rng)
            hot_a = _map(src.affines[0], src.affines[va], src.hotspot) if src.hotspot else None
            hot_p = _map(ex.affines[0], ex.affines[vp], ex.hotspot) if ex.hotspot else None
            hot_t = _map(ex.affines[0], ex.affines[vt], ex.hotspot) if ex.hotspot else None
            refs_a.append(make_reference(src.feats[va], torch.from_numpy(src.masks[va].astype(np.float32)), hot_a,
                                         keys=src.keys[va]))
            refs_p.append(make_reference(ex.feats[vp], torch.from_numpy(prev.astype(np.float32)), hot_p,
                                         keys=ex.keys[vp]))
            feats.append(ex.feats[vt])
            keys.append(ex.keys[vt])
            targets.append(torch.from_numpy(ex.masks[vt].astype(np.float32)))
            ok = hot_t is not None and 0 <= hot_t[0] < self.size[1] and 0 <= hot_t[1] < self.size[0]
            hot_xy.append(hot_t if ok else (0.0, 0.0))
            hot_ok.append(ok)
        return (FrameFeatures.stack(feats), torch.cat(keys, 0), stack_references(refs_a), stack_references(refs_p),
                torch.stack(targets)[:, None], torch.tensor(hot_xy, dtype=torch.float32), torch.tensor(hot_ok))

    def fit(self, seconds: float, batch_size: int = 4, should_stop: Callable[[], bool] | None = None,
            progress: Callable[[float], None] | None = None, max_steps: int | None = None) -> int:
        """Train for about `seconds` (0 = nothing; any budget runs at least one step) and at most
        `max_steps` steps (None: no cap); returns the steps run. Cancellable via should_stop."""
        if seconds <= 0 or not self.examples or (max_steps is not None and max_steps <= 0):
            return 0
        self.model.train()
        t0 = time.perf_counter()
        steps = 0
        # At least one step: a budget shorter than the clock's own tick (a dock's small chunk on a busy
        # machine) must not end a chunked adaptation as if there were nothing to learn.
        while (steps == 0 or time.perf_counter() - t0 < seconds) and (max_steps is None or steps < max_steps):
            if should_stop and should_stop():
                break
            feats, keys, ref_a, ref_p, target, hot_xy, hot_ok = self._batch(batch_size)
            with torch.no_grad():
                corr = correlation_input(keys, ref_a, ref_p)
            m4, m8, hot = self.model(feats, corr, ref_p.mask_map)
            loss = deep_seg_loss(m4, m8, target)
            if hot_ok.any():
                tgt = torch.stack([hotspot_weights(tuple(p.tolist()), hot.shape[-2:]) for p in hot_xy[hot_ok]])
                tgt = tgt / tgt.sum(1, keepdim=True).clamp_min(1e-8)
                loss = loss - 0.5 * (tgt * torch.log_softmax(hot[hot_ok].flatten(1), 1)).sum(1).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            steps += 1
            if progress:
                progress(min(1.0, (time.perf_counter() - t0) / seconds))
        self.model.eval()
        self.steps += steps
        self.seconds += time.perf_counter() - t0
        return steps

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "steps": self.steps, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.steps, self.seconds = int(state.get("steps", 0)), float(state.get("seconds", 0.0))
