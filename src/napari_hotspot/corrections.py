"""Corrective clicks that refine the mask already on a frame (no Qt).

A click prompt on an empty frame picks an object (``HotspotSession.add_prompt``). On a frame that
already has a mask (propagated, painted or prompted), clicks correct that mask instead, the way
SAM2 feeds the current mask back with the new clicks: a negative click removes the part of the
mask it points at, a positive click adds the part it points at, and everything else stays. A
negative click alone is therefore a complete correction (it used to be refused: "at least one
positive click is needed"), and a correction can no longer swap the whole mask for another
object's.

What a click "points at" comes from the prompt decoder, asked through a scratch object of the
session so the real object's anchors are untouched, with a positive click at the mask's core so it
answers for this object; an answer that would remove or add too much is not trusted (only the
click's surroundings change then), and what it changes is cut to the click's reach (`REACH`). The
result always honours the clicks: positives inside, negatives outside.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from napari_hotspot.errors import PromptError

#: Object id the scratch prompts use (far above any real object; removed again at once).
SCRATCH_OBJECT = 2**30
#: Radius around a click that is forced inside (positive) or outside (negative) the result, as a
#: share of the frame's diagonal; a negative click with nothing better to remove removes twice that.
CLICK_RADIUS = 0.01


def _disk(shape: tuple[int, int], x: float, y: float, radius: float) -> np.ndarray:
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius**2


def _pixel(mask_shape, x: float, y: float) -> tuple[int, int]:
    return (int(np.clip(round(y), 0, mask_shape[0] - 1)), int(np.clip(round(x), 0, mask_shape[1] - 1)))


def _scratch_segment(session, frame: int, points, labels) -> np.ndarray | None:
    """The decoder's answer to clicks on ``frame``, without touching any real object's anchors."""
    try:
        return np.asarray(session.add_prompt(frame, SCRATCH_OBJECT, points=points, labels=labels).mask, bool)
    except PromptError:
        return None  # e.g. an empty answer: the click points at nothing the decoder can find
    finally:
        session.reset_object(SCRATCH_OBJECT)


def _parts_at(mask: np.ndarray, points) -> np.ndarray:
    """The connected parts of ``mask`` that contain one of ``points`` (x, y)."""
    parts, _n = ndimage.label(mask)
    ids = {int(parts[_pixel(mask.shape, x, y)]) for x, y in points} - {0}
    return np.isin(parts, sorted(ids)) if ids else np.zeros_like(mask)


def _largest_part(mask: np.ndarray) -> int:
    parts, n = ndimage.label(mask)
    return int(np.bincount(parts.ravel())[1:].max()) if n else 0


def _core_point(mask: np.ndarray, away_from=None, radius: float = 0.0):
    """(x, y) deepest inside ``mask`` (outside ``radius`` of ``away_from``), or None."""
    inside = mask if away_from is None else mask & ~_disk(mask.shape, *away_from, radius)
    if not inside.any():
        return None
    depth = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(x), float(y)


#: A negative click removes at most this share of the piece it is on, a positive one adds at most
#: this share of the mask's area; a decoder answer beyond that is taken as wrong (on DAVIS, a click
#: on a fringe next to the object often gets the object itself as the answer) and only the click's
#: surroundings change.
MAX_REMOVE_SHARE = 0.5
MAX_ADD_SHARE = 1.0
#: A click changes the mask only within REACH times its distance to the mask's edge (a user clicks
#: in the middle of the part that is wrong, so that distance is about half the part's width): the
#: decoder's answer to a positive click often spills into the background beside the missed part.
#: Chosen on the validation split (docs/benchmarks.md, "Corrective clicks"): mean IoU change of the
#: clicked frame +0.023 without a limit, +0.025 / +0.0254 / +0.0256 / +0.0255 at 1.5 / 2 / 3 / 5,
#: worst -0.067 without, -0.023 with. None: no limit.
REACH: float | None = 3.0


def _within_reach(region: np.ndarray, mask: np.ndarray, x: float, y: float, inside: bool) -> np.ndarray:
    """``region`` cut to the disk of REACH times the click's distance to the edge of ``mask`` (from
    inside it for a negative click, from outside for a positive one)."""
    if REACH is None:
        return region
    side = mask if inside else ~mask
    if side.all():
        return region
    depth = ndimage.distance_transform_edt(side)[_pixel(mask.shape, x, y)]
    return region & _disk(mask.shape, x, y, max(REACH * float(depth), 1.0))


def refine_mask(session, frame: int, base: np.ndarray, clicks: Sequence[tuple[float, float, int]]) -> np.ndarray:
    """``base`` (H, W) corrected by ``clicks`` ``(x, y, label)`` (1 positive, 0 negative) on ``frame``.

    Negative click: remove the connected piece of the mask under it when that is not the mask's main
    piece (the look-alike object the mask spread onto). Else ask the decoder for the object with a
    positive click at the piece's core and the negative one: the part of the piece it leaves out that
    holds the click goes (at most MAX_REMOVE_SHARE of the piece; else a disk around the click).
    Positive click: add the part of the decoder's answer (the clicks plus the mask's core) outside
    the mask that holds the click (at most MAX_ADD_SHARE of the mask's area; else a disk).
    Raises PromptError when nothing of the object would be left.
    """
    base = np.asarray(base, bool)
    shape = base.shape
    radius = max(2.0, CLICK_RADIUS * float(np.hypot(*shape)))
    pos = [(float(x), float(y)) for x, y, label in clicks if label > 0]
    neg = [(float(x), float(y)) for x, y, label in clicks if label <= 0]
    mask = base.copy()
    for x, y in neg:
        if not mask[_pixel(shape, x, y)]:
            continue  # already outside; the final step keeps it out
        piece = _parts_at(mask, [(x, y)])
        if piece.sum() < mask.sum() and piece.sum() < _largest_part(mask):
            mask &= ~piece  # a separate piece, not the object's main one: the look-alike it spread onto
            continue
        remove = None
        core = _core_point(piece, (x, y), 4 * radius)
        if core is not None:
            answer = _scratch_segment(session, frame, [core, (x, y)], [1, 0])
            if answer is not None:
                left_out = piece & ~answer
                if left_out[_pixel(shape, x, y)]:
                    region = _parts_at(left_out, [(x, y)])
                    if region.sum() <= MAX_REMOVE_SHARE * piece.sum():
                        remove = _within_reach(region, mask, x, y, inside=True)
        mask &= ~(_disk(shape, x, y, 2 * radius) if remove is None else remove)
    for x, y in pos:
        if mask[_pixel(shape, x, y)]:
            continue  # already inside
        core = _core_point(mask)
        points = [(x, y)] + ([core] if core is not None else [])
        answer = _scratch_segment(session, frame, points + neg, [1] * len(points) + [0] * len(neg))
        if answer is not None:
            added = answer & ~mask
            if added[_pixel(shape, x, y)]:
                region = _parts_at(added, [(x, y)])
                if region.sum() <= MAX_ADD_SHARE * max(int(mask.sum()), 1):
                    mask |= _within_reach(region, mask, x, y, inside=False)
    for x, y in neg:  # the clicks are honoured whatever the decoder said
        mask &= ~_disk(shape, x, y, radius)
    for x, y in pos:
        if not mask[_pixel(shape, x, y)]:
            mask |= _disk(shape, x, y, radius)
    if not mask.any():
        raise PromptError(f"these clicks would remove the whole object on frame {frame}; to remove it there, "
                          f"erase its mask or undo")
    return mask


def repropagation_ends(keyframes: Sequence[int], frame: int, num_frames: int) -> tuple[int, int]:
    """(last frame forward, last frame backward) that re-propagation from a corrected ``frame`` should
    rewrite: the frames nearer to it than to any other keyframe (ties go to the corrected one), up to
    the video's ends where no keyframe lies beyond. The others keep the answer of the keyframe they are
    nearest to, which a correction elsewhere should not overwrite."""
    after = [k for k in keyframes if k > frame]
    before = [k for k in keyframes if k < frame]
    forward = (frame + min(after)) // 2 if after else num_frames - 1
    backward = -((-(frame + max(before))) // 2) if before else 0  # ceil: ties go to `frame`
    return forward, backward


def click_polarity(clicks) -> str | None:
    """How a click correction may change the frames re-propagated from it (`combine_repropagated`):
    "remove" when every click is negative, "add" when every click is positive, None (the new answer
    replaces the old) for mixed clicks or none."""
    labels = {1 if label > 0 else 0 for *_xy, label in clicks}
    return {frozenset({0}): "remove", frozenset({1}): "add"}.get(frozenset(labels))


def combine_repropagated(old: np.ndarray | None, new: np.ndarray, polarity: str | None) -> np.ndarray:
    """A frame's mask after re-propagation from a click correction: negative clicks only remove (the old
    mask cut to the new answer), positive clicks only add (their union); otherwise, or where the frame had
    no mask, the new answer.

    Why: a one-click correction fixes only part of the worst frame, and re-propagating that still
    partly wrong mask overwrote better frames beside it. Chosen on the validation split of
    davis2016-train (docs/benchmarks.md, "Corrective clicks", fourteenth session): mean J after 0..5
    simulated clicks 0.7906 -> 0.7969 -> 0.7973 -> 0.7998 -> 0.8021 -> 0.8031 (third-round split model),
    against 0.7906 -> ... -> 0.7803 (after the 3rd click) -> 0.7834 when the new answer replaced the old."""
    new = np.asarray(new, bool)
    if old is None or polarity is None:
        return new
    old = np.asarray(old, bool)
    if old.shape != new.shape:
        raise ValueError(f"masks of different shapes: {old.shape} and {new.shape}")
    if polarity == "add":
        return old | new
    kept = old & new
    # No overlap at all: the two answers disagree about where the object is, and cutting one to the
    # other would erase it from the frame; the new answer stands, as without a polarity.
    return kept if kept.any() else new


def _first_inside(mask: np.ndarray, candidates) -> tuple[float, float] | None:
    """The first of ``candidates`` (x, y; None skipped) inside ``mask``, or None."""
    for xy in candidates:
        if xy is not None and mask[_pixel(mask.shape, *xy)]:
            return (float(xy[0]), float(xy[1]))
    return None


def combined_hotspot(mask: np.ndarray, *candidates) -> tuple[float, float] | None:
    """The first of ``candidates`` (x, y) inside ``mask``, else its deepest point (None: empty mask)."""
    inside = _first_inside(mask, candidates)
    return inside if inside is not None else _core_point(np.asarray(mask, bool))


def clicks_hotspot(mask: np.ndarray, clicks, previous: tuple[float, float] | None):
    """The hotspot of a click-corrected mask: the first positive click, else the previous hotspot if it is
    still inside, else None (the session picks one)."""
    return _first_inside(mask, [(x, y) for x, y, label in clicks if label > 0] + [previous])
