"""One tracking step of the WCS tracker, shared by the inference session and training validation.

Everything here works at the working resolution (h, w); the session maps to and from frame pixels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from ..mask_geometry import boundary_distance, deepest_point, snap_into  # noqa: F401 (this module's names too)
from .backbone import FrameFeatures
from .heads import CORRELATION_TEMPERATURE, WCSTracker, key_rows, matching_keys, weighted_correlation
from .precision import inference_autocast, inference_dtype

HOTSPOT_SIGMA_CELLS = 1.5  # template hotspot weight: Gaussian of 1.5 stride-8 cells
# The hotspot is kept off the mask's rim: at least HOTSPOT_RIM_PX working pixels (or, in a thin
# object, 30% of its greatest depth) from its boundary. Peaks on the rim were the hotspots that fell
# outside the true object when the predicted boundary was a few pixels off (held-out DAVIS).
HOTSPOT_RIM_PX = 4.0
HOTSPOT_RIM_FRACTION = 0.3


def hotspot_weights(xy: tuple[float, float] | None, grid: tuple[int, int], stride: int = 8) -> torch.Tensor:
    """Gaussian weights (h8*w8,) around a working-pixel hotspot on the stride-8 grid."""
    h8, w8 = grid
    if xy is None:
        return torch.zeros(h8 * w8)
    cx, cy = (xy[0] + 0.5) / stride - 0.5, (xy[1] + 0.5) / stride - 0.5
    ys = torch.arange(h8, dtype=torch.float32)[:, None]
    xs = torch.arange(w8, dtype=torch.float32)[None, :]
    g = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * HOTSPOT_SIGMA_CELLS**2))
    return g.flatten()


def mask_to_grid(mask_prob: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(h, w) mask probability -> (1, 1, h8, w8) by area averaging."""
    m = mask_prob.float()[None, None]
    return F.adaptive_avg_pool2d(m, grid)


@dataclass
class Reference:
    """A template for the weighted correlation: M columns of keys with their mask and hotspot weights
    (every stride-8 cell; or the object's, and its background pooled to stride 16: `compact_template`),
    and the mask on the stride-8 grid."""

    keys: torch.Tensor  # (1, D, M)
    mask: torch.Tensor  # (1, M)
    hotspot: torch.Tensor  # (1, M)
    mask_map: torch.Tensor  # (1, 1, h8, w8)
    # (D, K) keys of look-alike regions next to the object that the tracker would wrongly add on the
    # template's own frame (`distractor_gate`); an anchor template's, None elsewhere.
    distractors: torch.Tensor | None = None
    # (1, M) how many stride-8 cells each column stands for (0: padding in a batch); None: one each.
    weight: torch.Tensor | None = None


# Templates keep the object's stride-8 cells and pool most of their background to stride 16
# (`compact_template`; inference, training and adaptation alike): on the validation split every prompt
# within 0.003 J of full templates and part prompts up to 0.008 lower, about 10% more frames/s on a CPU
# without AMX; the test set's J the same (docs/benchmarks.md, "Compact templates").
# NAPARI_HOTSPOT_COMPACT_TEMPLATES=0 keeps every stride-8 cell (the templates before).
COMPACT_TEMPLATES = os.environ.get("NAPARI_HOTSPOT_COMPACT_TEMPLATES", "1").lower() not in ("0", "false", "no")


# The share of a compact template's background cells kept at stride 8, the most object-like: on the
# validation split 0.1 took the mask prompt's J from 0.8145 (none kept) to 0.821 (full templates 0.822).
HARD_NEGATIVE_SHARE = 0.1


def compact_template(keys: torch.Tensor, m8: torch.Tensor, hot: torch.Tensor, hard_share: float | None = None,
                     likeness: torch.Tensor | None = None):
    """A template's columns: each stride-8 cell of the object (mask > 0.5) as it is, and so the
    `hard_share` of its background cells most like the object (by `likeness`, (h8*w8,), else their best
    key match among the object's cells); the other background cells of each 2x2 block pooled into one
    column (their keys summed and renormalised, their mask averaged, their hotspot weights summed) that
    counts as that many cells in the correlation's softmax. keys (1, D, h8, w8) unit-norm, m8 (1, 1, h8,
    w8), hot (h8*w8,). Returns keys (1, D, M), mask (1, M), hotspot (1, M), weight (1, M). The
    correlation's cost is linear in M: 30-40% of the grid for a DAVIS object."""
    h, w = keys.shape[-2:]
    fg = m8[0, 0] > 0.5
    rows = key_rows(keys).float()  # (h8*w8, D): a view of channels-last keys, one row per cell
    kept = fg.flatten().clone()
    share = HARD_NEGATIVE_SHARE if hard_share is None else hard_share
    if share > 0 and bool(fg.any()) and not bool(fg.all()):
        # The background cells that look most like the object (a look-alike, the rest of a prompted
        # part's object) keep their own column: pooled, their peak similarity would fade.
        bg_cells = (~kept).nonzero()[:, 0]
        if likeness is None:
            sim = (rows[bg_cells] @ rows[kept].t()).amax(1)
        else:  # a tracking step's own measure of it (the correlation's best object match), for free
            sim = likeness.flatten()[bg_cells].float()
        n_hard = min(len(bg_cells), int(np.ceil(share * len(bg_cells))))
        if likeness is not None:  # a windowed step measured its window only (-inf elsewhere): hard ones from there
            n_hard = min(n_hard, int(torch.isfinite(sim).sum()))
        kept[bg_cells[torch.topk(sim, n_hard).indices]] = True
    fg_cells = kept.nonzero()[:, 0]  # the object's cells and the hardest background ones
    k_fg = rows[fg_cells]  # (n, D): a row gather reads contiguous memory
    bg = (~kept).float()
    h2, w2 = (h + 1) // 2, (w + 1) // 2

    def block_sum(x):  # (h8*w8, C) -> (h16*w16, C): sums over each 2x2 block (odd edges padded with 0)
        x = F.pad(x.reshape(h, w, -1), (0, 0, 0, w % 2, 0, h % 2)).reshape(h2, 2, 2 * w2, -1)
        x = (x[:, 0] + x[:, 1]).reshape(h2, w2, 2, -1)  # rows, then columns: two strided adds
        return (x[:, :, 0] + x[:, :, 1]).reshape(h2 * w2, -1)

    count = block_sum(bg[:, None])[:, 0]
    keep = count > 0
    k_bg = F.normalize(block_sum(rows * bg[:, None])[keep], dim=1)
    per_cell = torch.stack([m8.flatten().float(), hot.flatten().float()], 1) * bg[:, None]
    m_bg, h_bg = block_sum(per_cell)[keep].unbind(1)
    m_bg = m_bg / count[keep]
    keys_out = torch.cat([k_fg, k_bg], 0).t()[None]  # (1, D, M), a view of (M, D) rows
    mask_out = torch.cat([m8.flatten()[fg_cells].float(), m_bg])[None]
    hot_out = torch.cat([hot.flatten()[fg_cells].float(), h_bg])[None]
    weight = torch.cat([torch.ones(len(fg_cells)), count[keep]])[None]
    return keys_out, mask_out, hot_out, weight


def make_reference(feats: FrameFeatures, mask_prob: torch.Tensor, hotspot_xy, keys: torch.Tensor | None = None,
                   compact: bool | None = None, likeness: torch.Tensor | None = None) -> Reference:
    """keys: matching_keys(feats) when the caller already has them; compact (default COMPACT_TEMPLATES):
    the background pooled to stride 16 (`compact_template`, `likeness` its measure of look-alike cells)."""
    keys = matching_keys(feats) if keys is None else keys
    grid = tuple(keys.shape[-2:])
    m8 = mask_to_grid(mask_prob, grid)
    hot = hotspot_weights(hotspot_xy, grid)
    if COMPACT_TEMPLATES if compact is None else compact:
        k, m, h, wt = compact_template(keys, m8, hot, likeness=likeness)
        return Reference(k, m, h, m8, weight=wt)
    return Reference(keys.flatten(2), m8.flatten(1), hot[None], m8)


def reference_to(ref: Reference, device) -> Reference:
    return Reference(*(None if getattr(ref, f.name) is None else getattr(ref, f.name).to(device)
                       for f in fields(Reference)))


def stack_references(refs: list[Reference]) -> Reference:
    """A batch of references (training, adaptation): distractor keys do not batch and are dropped;
    templates of different column counts are padded with columns of weight 0."""
    m = max(r.keys.shape[-1] for r in refs)
    if all(r.weight is None and r.keys.shape[-1] == m for r in refs):
        return Reference(*(torch.cat([getattr(r, f.name) for r in refs], 0) for f in fields(Reference)
                           if f.name not in ("distractors", "weight")))

    def padded(column):  # (1, ..., M_r) -> (B, ..., m), zero columns after each template's own
        return torch.cat([F.pad(column(r), (0, m - r.keys.shape[-1])) for r in refs], 0)

    return Reference(padded(lambda r: r.keys), padded(lambda r: r.mask), padded(lambda r: r.hotspot),
                     torch.cat([r.mask_map for r in refs], 0),
                     weight=padded(lambda r: r.weight if r.weight is not None else torch.ones_like(r.mask)))


def correlation_cache(ref: Reference) -> dict:
    """What the weighted correlation keeps of this template between frames (its ordered keys). A
    Reference's tensors are never changed in place (a changed template is a new Reference), so the
    cache lives on the Reference and goes with it; not a dataclass field, so copies start empty."""
    return ref.__dict__.setdefault("_correlation_cache", {})


def anchor_correlation(search_keys: torch.Tensor, anchor: Reference) -> torch.Tensor:
    """The anchor template's 4 correlation channels: they depend on the search frame and the anchor
    only, so a sweep computes them for the next frame on its encoding thread (`HotspotSession._sweep`)."""
    return weighted_correlation(search_keys, anchor.keys, anchor.mask, anchor.hotspot, weight=anchor.weight,
                                cache=correlation_cache(anchor))


def correlation_input(search_keys: torch.Tensor, anchor: Reference, prev: Reference,
                      anchor_corr: torch.Tensor | None = None) -> torch.Tensor:
    """anchor_corr: `anchor_correlation(search_keys, anchor)` when the caller already has it."""
    c_anchor = anchor_correlation(search_keys, anchor) if anchor_corr is None else anchor_corr
    if prev is anchor:  # one template as both (a prompt's own frame, its refinement): correlate once
        return torch.cat([c_anchor, c_anchor], 1)
    c_prev = weighted_correlation(search_keys, prev.keys, prev.mask, prev.hotspot, weight=prev.weight)
    return torch.cat([c_anchor, c_prev], 1)


@dataclass
class StepResult:
    mask_prob: torch.Tensor  # (h, w) at working resolution
    hotspot_xy: tuple[float, float] | None  # working pixels
    confidence: float
    reference: Reference  # this frame as the next step's "previous" template
    heat: torch.Tensor  # (h8, w8) hotspot heat map (softmax)
    evidence: dict | None = None  # the tracker's own per-frame evidence (`step_evidence`), where asked for
    core: np.ndarray | None = None  # (h, w) bool: the mask without its rim (`mask_core`), where it has a hotspot
    foreground: np.ndarray | None = None  # (h, w) bool: mask_prob > 0.5, where it has a hotspot


def mask_core(mask: np.ndarray, rim_px: float = HOTSPOT_RIM_PX, rim_fraction: float = HOTSPOT_RIM_FRACTION) -> np.ndarray:
    """A bool mask without its rim: pixels at least min(rim_px, rim_fraction x the greatest depth)
    from the boundary (never empty for a non-empty mask)."""
    dist = boundary_distance(mask, mask_size=3)
    return dist >= min(rim_px, rim_fraction * float(dist.max()))


def hotspot_from_heat(heat_logits: torch.Tensor, mask_prob: torch.Tensor, stride: int = 8):
    """Peak of the hotspot heat map, constrained to the object's core: returns (heat, (x, y) working px)."""
    heat, xy, _core, _fg = hotspot_and_core(heat_logits, mask_prob, stride)
    return heat, xy


def hotspot_and_core(heat_logits: torch.Tensor, mask_prob: torch.Tensor, stride: int = 8):
    """`hotspot_from_heat`, the object's core it chose in (`mask_core` of the mask) and the mask itself
    (mask_prob > 0.5), both None where there is no hotspot: (heat, (x, y) working px, core, mask)."""
    h8, w8 = heat_logits.shape[-2:]
    heat = torch.softmax(heat_logits.flatten(), 0).reshape(h8, w8)
    fg = (mask_prob > 0.5).numpy()
    if not fg.any() or float(mask_to_grid(mask_prob, (h8, w8))[0, 0].max()) < 0.5:
        return heat, None, None, None  # no object (or only a sliver): no hotspot
    core = mask_core(fg)
    inside = mask_to_grid(torch.from_numpy(core).float(), (h8, w8))[0, 0]
    score = heat * (inside >= 0.5 * float(inside.max())).float()
    idx = int(torch.argmax(score))
    y, x = divmod(idx, w8)
    # Sub-cell refinement: heat-weighted centroid of the 3x3 neighbourhood.
    y0, y1, x0, x1 = max(0, y - 1), min(h8, y + 2), max(0, x - 1), min(w8, x + 2)
    win = score[y0:y1, x0:x1]
    yy, xx = torch.meshgrid(torch.arange(y0, y1), torch.arange(x0, x1), indexing="ij")
    s = float(win.sum())
    cy = float((win * yy).sum()) / s if s > 0 else y
    cx = float((win * xx).sum()) / s if s > 0 else x
    xy = ((cx + 0.5) * stride - 0.5, (cy + 0.5) * stride - 0.5)
    # The point must lie in the core at full resolution too.
    return heat, snap_into(core, xy), core, fg


# Confidence = P(IoU >= 0.5) from the mask's certainty, a logistic fitted on the validation split of
# davis2016-train; the certainty ranked bad frames better there than the other evidence of a step
# (docs/benchmarks.md, "Confidence"; benchmarks/confidence_study.py).
CONFIDENCE_SLOPE = 24.56
CONFIDENCE_CERTAINTY_AT_HALF = 0.8527  # certainty where the confidence is 0.5


def _certainty_and_area(mask_prob: torch.Tensor) -> tuple[float, float]:
    """`mask_certainty` and the mask's pixel count, from one pass."""
    p = mask_prob.float()
    fg = (p > 0.5).float()
    n = float(fg.sum())
    # As 2 x mean(p) - 1 over the mask: no boolean-indexed copy (a fifth of the time).
    return (2.0 * float(torch.dot(p.flatten(), fg.flatten())) / n - 1.0 if n > 0 else 0.0), n


def mask_certainty(mask_prob: torch.Tensor) -> float:
    """Mean of 2p - 1 over the mask's pixels (0 for an empty mask)."""
    return _certainty_and_area(mask_prob)[0]


def confidence_from_certainty(certainty: float) -> float:
    """The chance a non-empty mask is right (IoU >= 0.5) given its `mask_certainty` (calibrated above)."""
    return float(1.0 / (1.0 + np.exp(-CONFIDENCE_SLOPE * (certainty - CONFIDENCE_CERTAINTY_AT_HALF))))


def confidence_score(mask_prob: torch.Tensor) -> float:
    """Per-frame confidence in [0, 1]: the chance the mask is right (IoU >= 0.5), from its certainty;
    0 for an empty mask."""
    certainty, area = _certainty_and_area(mask_prob)
    return confidence_from_certainty(certainty) if area > 0 else 0.0


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = float((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def step_evidence(mask_prob: torch.Tensor, corr: torch.Tensor, heat: torch.Tensor, anchor: Reference,
                  prev: Reference) -> dict:
    """What one step says about itself, without ground truth: the mask's certainty, its agreement with
    what pure matching propagates from each template (anchor: channels 0-3, previous frame: 4-7), how
    far it moved from the previous mask, how much of it looks more like the anchor's background than
    its object, and the hotspot heat map's peak. All on the stride-8 grid except the certainty."""
    fg = mask_prob > 0.5
    grid = tuple(corr.shape[-2:])
    grid_prob = mask_to_grid(mask_prob, grid)[0, 0]
    m8 = grid_prob > 0.5
    p8 = prev.mask_map[0, 0] > 0.5
    area8 = float(grid_prob.mean())
    ev = {"area": float(fg.float().mean()), "heat_peak": float(heat.max())}
    # Size change, as |log| of the area ratio to each template (1e-3 of the grid: an empty mask is finite).
    ev["area_vs_anchor"] = abs(float(np.log((area8 + 1e-3) / (float(anchor.mask_map.mean()) + 1e-3))))
    ev["area_vs_prev"] = abs(float(np.log((area8 + 1e-3) / (float(prev.mask_map.mean()) + 1e-3))))
    ev["certainty"] = mask_certainty(mask_prob)
    ev["agree_anchor"] = _iou(corr[0, 0] > 0.5, m8)
    ev["agree_prev"] = _iou(corr[0, 4] > 0.5, m8) if corr.shape[1] > 4 else ev["agree_anchor"]
    ev["moved"] = 1.0 - _iou(m8, p8)
    if bool(m8.any()):
        ev["bg_like"] = float((corr[0, 2][m8] > corr[0, 1][m8]).float().mean())
        ev["fg_sim"] = float(corr[0, 1][m8].mean())
    else:
        ev["bg_like"], ev["fg_sim"] = 1.0, 0.0
    return ev


def object_match(corr: torch.Tensor) -> torch.Tensor:
    """(h8, w8): each search cell's best similarity to either template's object cells (`correlation_input`'s
    channels 1 and 5; the anchor's alone where there is one template)."""
    return torch.maximum(corr[0, 1], corr[0, 5]) if corr.shape[1] > 5 else corr[0, 1]


def distractor_gate(search_keys: torch.Tensor, corr: torch.Tensor, distractors: torch.Tensor,
                    size: tuple[int, int]) -> torch.Tensor:
    """(h, w) 0/1: 0 where a stride-8 cell looks more like one of the anchor's distractors than like the
    object (its best match among either template's object cells, channels 1 and 5 of `corr`).

    The tracker learned whole salient objects; given part of one (a wheel, a bag on a person) or an
    object beside a look-alike, it grows into the rest. The regions it grows into on the template's own
    frame are remembered as distractors, and a later cell whose features match them better than the
    object's is kept out of the mask (docs/benchmarks.md, "Part prompts and look-alikes")."""
    lowp = inference_dtype()
    grid = tuple(search_keys.shape[-2:])
    q = key_rows(search_keys)  # (N, D)
    # Rounded as the correlation rounds its object maxima (similarity / T in the inference dtype, then
    # times T), so that a tie is a tie and not a rounding difference.
    t = CORRELATION_TEMPERATURE
    sim_d = ((q.to(lowp) @ (distractors * (1.0 / t)).to(lowp)).float().amax(1) * t).reshape(grid)
    gate = (object_match(corr) >= sim_d).float()
    return (F.interpolate(gate[None, None], size=size, mode="bilinear", align_corners=False)[0, 0] > 0.5).float()


# A sweep's step looks for the object in a window (`search_window`): the previous-frame template's
# correlation and the decoder run there only, the rest of the frame is background. The window is the
# bounding box of the previous mask and of the cells the anchor template's matching alone marks as the
# object (its propagated mask over 0.5: a part the previous mask lost, found again from the prompt),
# grown by SEARCH_MARGIN_FRACTION of its size and SEARCH_MARGIN_CELLS stride-16 cells each side (and to
# SEARCH_MIN_SIDE_SHARE of the frame's sides at least); a step whose mask comes within SEARCH_EDGE_CELLS
# of a window side inside the frame is run again on the whole frame, and one whose window would cover
# more than SEARCH_WINDOW_MAX_SHARE of it runs on the whole frame at once. (docs/benchmarks.md, "The search window"; `TrackingOptions.search_window` turns it off.)
SEARCH_MARGIN_FRACTION = 0.25
SEARCH_MARGIN_CELLS = 2
SEARCH_EDGE_CELLS = 1
SEARCH_WINDOW_MAX_SHARE = 0.75
SEARCH_MASK_COVER = 0.05  # a stride-8 cell belongs to the previous mask from this much of its area
# Each window side spans at least this share of the frame's: the decoder's group norms take their
# statistics over what they see, and in a window little larger than a small object they shrank it (the
# sample video's small object: J 0.66 -> 0.70 with this floor, whole frame 0.73; on the validation split
# every prompt's mean within 0.002 of the window without it).
SEARCH_MIN_SIDE_SHARE = 0.5

Window = tuple[int, int, int, int]  # rows r0:r1, columns c0:c1 of the stride-16 grid


def search_window(prev_mask_map: torch.Tensor, anchor_corr: torch.Tensor | None = None,
                  margin_fraction: float = SEARCH_MARGIN_FRACTION, margin_cells: float = SEARCH_MARGIN_CELLS,
                  max_share: float = SEARCH_WINDOW_MAX_SHARE,
                  min_side_share: float = SEARCH_MIN_SIDE_SHARE) -> Window | None:
    """The stride-16 cells a step looks in, from the previous mask on the stride-8 grid (1, 1, h8, w8) and
    the anchor's correlation with this frame (1, 4, h8, w8; its channel 0, the propagated mask); None
    (the whole frame) where both are empty or the window would cover more than `max_share`."""
    prev8 = prev_mask_map[0, 0]
    on = prev8 > min(SEARCH_MASK_COVER, 0.5 * float(prev8.max()))  # a sliver thinner than that too
    if anchor_corr is not None:
        on = on | (anchor_corr[0, 0] > 0.5)
    h8, w8 = on.shape
    h16, w16 = (h8 + 1) // 2, (w8 + 1) // 2
    rows, cols = on.any(1).nonzero()[:, 0], on.any(0).nonzero()[:, 0]
    if len(rows) == 0:
        return None
    y0, y1 = float(rows[0]) / 2, float(rows[-1] + 1) / 2  # in stride-16 cells
    x0, x1 = float(cols[0]) / 2, float(cols[-1] + 1) / 2
    my, mx = margin_fraction * (y1 - y0) + margin_cells, margin_fraction * (x1 - x0) + margin_cells
    r0, r1 = _even_span(*_at_least(int(np.floor(y0 - my)), int(np.ceil(y1 + my)), h16, min_side_share), h16)
    c0, c1 = _even_span(*_at_least(int(np.floor(x0 - mx)), int(np.ceil(x1 + mx)), w16, min_side_share), w16)
    if (r1 - r0) * (c1 - c0) > max_share * h16 * w16:
        return None
    return r0, r1, c0, c1


def _at_least(a: int, b: int, n: int, share: float) -> tuple[int, int]:
    """a:b grown about its middle to at least `share` of n cells, kept inside 0:n."""
    need = int(np.ceil(share * n))
    if b - a >= need:
        return a, b
    a = min(max(0, (a + b - need) // 2), max(0, n - need))  # shifted inside the grid
    return a, a + need


def _even_span(a: int, b: int, n: int) -> tuple[int, int]:
    """a:b clipped to 0:n and grown by a cell where its length is odd (towards the side with room): window
    sides in steps of two cells give a video few distinct shapes, and each new shape costs the decoder's
    convolutions their setup again (3-4 ms on a 2-CPU AMD EPYC)."""
    a, b = max(0, a), min(n, b)
    if (b - a) % 2 and b - a < n:
        a, b = (a, b + 1) if b < n else (a - 1, b)
    return a, b


def crop_cells(x: torch.Tensor, window: Window, per_cell: int) -> torch.Tensor:
    """The window of a map whose cells are 1/`per_cell` of a stride-16 cell (2: stride 8, 4: stride 4,
    16: working pixels); a view."""
    r0, r1, c0, c1 = window
    return x[..., r0 * per_cell : r1 * per_cell, c0 * per_cell : c1 * per_cell]


def _reaches_window_side(m4: torch.Tensor, window: Window, grid16: tuple[int, int],
                         cells: int = SEARCH_EDGE_CELLS) -> bool:
    """Whether the windowed mask logits (1, 1, h4, w4) are positive within `cells` stride-16 cells of a
    window side that is not the frame's own: the object may go on past it."""
    pos = m4[0, 0] > 0
    k = 4 * cells
    r0, r1, c0, c1 = window
    return bool((r0 > 0 and pos[:k].any()) or (r1 < grid16[0] and pos[-k:].any())
                or (c0 > 0 and pos[:, :k].any()) or (c1 < grid16[1] and pos[:, -k:].any()))


def _step_in(tracker: WCSTracker, feats: FrameFeatures, anchor: Reference, prev: Reference,
             size: tuple[int, int], keys: torch.Tensor, window: Window, anchor_corr: torch.Tensor | None,
             evidence: bool = False) -> StepResult | None:
    """One tracking step in `window` (the whole grid: the whole frame's step; anchor_corr: the whole
    frame's, or None to compute it here); None where the mask reaches a window side inside the frame
    (the caller then runs the whole frame). Inside a window the correlation is the whole frame's (each
    row is one search cell); outside it the mask and heat are 0 and the evidence reads the previous
    template's correlation as 0."""
    grid8 = tuple(keys.shape[-2:])
    grid16 = ((grid8[0] + 1) // 2, (grid8[1] + 1) // 2)
    keys_w = crop_cells(keys, window, 2)
    corr = correlation_input(keys_w, anchor, prev, None if anchor_corr is None else crop_cells(anchor_corr, window, 2))
    feats_w = FrameFeatures(crop_cells(feats.s4, window, 4), crop_cells(feats.s8, window, 2),
                            crop_cells(feats.s16, window, 1))
    with inference_autocast():  # bfloat16 where this CPU runs it fast, as the encoder
        m4, _m8, hot = tracker(feats_w, corr, crop_cells(prev.mask_map, window, 2))
    if _reaches_window_side(m4, window, grid16):
        return None
    m4, hot = m4.float(), hot.float()
    r0, r1, c0, c1 = window  # in working pixels: (the whole frame's exactly, whatever its size)
    ys = slice(size[0] * r0 // grid16[0], size[0] * r1 // grid16[0])
    xs = slice(size[1] * c0 // grid16[1], size[1] * c1 // grid16[1])
    inside = (ys.stop - ys.start, xs.stop - xs.start)
    prob_w = torch.sigmoid(F.interpolate(m4, size=inside, mode="bilinear", align_corners=False))[0, 0]
    if anchor.distractors is not None:
        prob_w = prob_w * distractor_gate(keys_w, corr, anchor.distractors, inside)
    mask_prob = torch.zeros(size)
    mask_prob[ys, xs] = prob_w
    heat_logits = torch.full(grid8, float("-inf"))
    crop_cells(heat_logits, window, 2).copy_(hot[0, 0])
    heat, xy, core, fg = hotspot_and_core(heat_logits, mask_prob)
    # A compact next template takes its look-alike cells from this step's correlation (in the window).
    likeness = torch.full(grid8, float("-inf"))
    crop_cells(likeness, window, 2).copy_(object_match(corr))
    if evidence:
        corr_frame = corr.new_zeros((1, corr.shape[1]) + grid8)
        crop_cells(corr_frame, window, 2).copy_(corr)
        if anchor_corr is not None:  # the anchor's on the whole frame
            corr_frame[:, : anchor_corr.shape[1]] = anchor_corr
            if prev is anchor:  # one template as both (`correlation_input`)
                corr_frame[:, anchor_corr.shape[1] :] = anchor_corr
        ev = step_evidence(mask_prob, corr_frame, heat, anchor, prev)
        # = confidence_score(mask_prob), from the certainty the evidence already holds
        conf = confidence_from_certainty(ev["certainty"]) if ev["area"] > 0 else 0.0
    else:
        ev, conf = None, confidence_score(mask_prob)
    return StepResult(mask_prob, xy, conf, make_reference(feats, mask_prob, xy, keys=keys, likeness=likeness), heat, ev,
                      core, fg)


@torch.no_grad()
def track_step(tracker: WCSTracker, feats: FrameFeatures, anchor: Reference, prev: Reference,
               size: tuple[int, int], keys: torch.Tensor | None = None,
               anchor_corr: torch.Tensor | None = None, evidence: bool = False,
               windowed: bool = False) -> StepResult:
    """keys: matching_keys(feats), anchor_corr: anchor_correlation(keys, anchor), where the caller has them.
    evidence: also return the step's `step_evidence` (for studies of it; the confidence needs only its
    certainty, and the rest cost a twentieth of a step on the tracking thread). windowed: look for the
    object in its `search_window` only, falling back to the whole frame where the mask reaches a window
    side (a sweep's steps; a prompt's own frame has no previous mask to place a window by)."""
    feats = feats.to(torch.float32)
    keys = matching_keys(feats) if keys is None else keys
    if windowed:
        anchor_corr = anchor_correlation(keys, anchor) if anchor_corr is None else anchor_corr
        window = search_window(prev.mask_map, anchor_corr)
        if window is not None:
            r = _step_in(tracker, feats, anchor, prev, size, keys, window, anchor_corr, evidence)
            if r is not None:
                return r
    h8, w8 = keys.shape[-2:]
    return _step_in(tracker, feats, anchor, prev, size, keys, (0, (h8 + 1) // 2, 0, (w8 + 1) // 2), anchor_corr,
                    evidence)  # a window whose sides are the frame's: never None
