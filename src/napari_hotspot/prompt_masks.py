"""Checks and clean-ups of a prompt's mask at the working resolution (no Qt): whether an answer honours
the clicks and box that asked for it, and which of its parts the clicks are on. Used by the session."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def _near_clicked_parts(mask_work: torch.Tensor, pos, reach: float = 0.05) -> torch.Tensor:
    """Drop the mask's parts that lie far (over `reach` x the image diagonal) from the parts the positive
    clicks are on: look-alike objects elsewhere in the frame (breakdance: spectators in the dancer's red)
    are not the clicked object (it raised one-click IoU on held-out DAVIS, no sequence worse:
    docs/benchmarks.md, "Measurements that stood in code comments"; on the validation split 1-3% and 5%
    differ on one sequence of twelve: "The far-parts reach of a click's mask")."""
    if not pos:
        return mask_work
    m = (mask_work > 0.5).numpy().astype(np.uint8)
    _, parts = cv2.connectedComponents(m, connectivity=8)
    h, w = m.shape
    clicked = {int(parts[min(max(int(round(y)), 0), h - 1), min(max(int(round(x)), 0), w - 1)]) for x, y in pos} - {0}
    if not clicked:
        return mask_work
    r = max(1, int(reach * float(np.hypot(h, w))))
    near = cv2.dilate(np.isin(parts, list(clicked)).astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
    keep = np.isin(parts, [i for i in np.unique(parts[near]) if i != 0])
    return torch.from_numpy(keep.astype(np.float32))


def _misses_prompt(mask_work: torch.Tensor, pos, box_region: torch.Tensor | None) -> bool:
    """An answer that cannot be the prompted object: empty, a positive click outside it, or for a box
    prompt less than half of it inside the box."""
    if not bool(mask_work.any()) or not all(_inside(mask_work, p) for p in pos):
        return True
    return box_region is not None and float((mask_work * box_region).sum()) < 0.5 * float(mask_work.sum())


def _honours_clicks(mask_work: torch.Tensor, pos, neg) -> bool:
    """A non-empty mask with every positive click inside and every negative one outside."""
    return bool(mask_work.any()) and all(_inside(mask_work, p) for p in pos) and not any(_inside(mask_work, p) for p in neg)


def _inside(mask_work: torch.Tensor, xy) -> bool:
    x, y = int(round(xy[0])), int(round(xy[1]))
    h, w = mask_work.shape
    return 0 <= x < w and 0 <= y < h and bool(mask_work[y, x] > 0.5)
