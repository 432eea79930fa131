"""Mask losses shared by training (`training/train.py`) and per-video adaptation (`adaptation.py`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    return (1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)).mean()


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + Dice, the logits resized to the target first when their sizes differ."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    return F.binary_cross_entropy_with_logits(logits, target) + dice_loss(logits, target)


def deep_seg_loss(fine: torch.Tensor, coarse: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mask heads' loss: the fine output against the target, plus 0.4 x the coarse auxiliary
    output against the target area-averaged to its size."""
    return seg_loss(fine, target) + 0.4 * seg_loss(coarse, F.adaptive_avg_pool2d(target, coarse.shape[-2:]))
