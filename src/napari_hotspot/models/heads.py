"""The three heads over the shared encoder: EG-Net, Gaze2Mask-Net and the WCS tracker.

All heads take FrameFeatures (see backbone.py) so one encoder pass per frame serves them all.
"""

from __future__ import annotations

import threading

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backbone import LEVEL_CHANNELS, FrameFeatures
from .guidance import GUIDANCE_CHANNELS
from .precision import inference_dtype


class ResidualBlock(nn.Module):
    """conv-GN-ReLU-conv-GN plus a (projected) skip: the decoder block of all three heads."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        groups = 8 if cout % 8 == 0 else 1
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.gn1 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.gn2 = nn.GroupNorm(groups, cout)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        h = F.relu(self.gn1(self.conv1(x)))
        h = self.gn2(self.conv2(h))
        return F.relu(h + self.skip(x))


def _up(x, ref):
    return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=False)


def _resize(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class EGNet(nn.Module):
    """Eye-gaze head: 3 residual decoder blocks (s32 -> s16 -> s8) predicting a gaze map (logits at s8)."""

    def __init__(self):
        super().__init__()
        c = LEVEL_CHANNELS
        self.block32 = ResidualBlock(c["s32"], 96)
        self.block16 = ResidualBlock(96 + c["s16"], 64)
        self.block8 = ResidualBlock(64 + c["s8"], 32)
        self.out = nn.Conv2d(32, 1, 3, padding=1)

    def forward(self, f: FrameFeatures) -> torch.Tensor:
        h = self.block32(f.s32)
        h = self.block16(torch.cat([_up(h, f.s16), f.s16], 1))
        h = self.block8(torch.cat([_up(h, f.s8), f.s8], 1))
        return self.out(h)  # (B, 1, h/8, w/8) logits; softmax over pixels gives the gaze distribution


class Gaze2MaskNet(nn.Module):
    """Frame features + guidance map -> object mask; 5 residual decoder blocks, coarse (s32) to fine (s2)."""

    def __init__(self, channels: dict | None = None):
        """channels: the encoder's per-level channels (default the shared Lite0's)."""
        super().__init__()
        c, g = channels or LEVEL_CHANNELS, GUIDANCE_CHANNELS
        self.block32 = ResidualBlock(c["s32"] + g, 128)
        self.block16 = ResidualBlock(128 + c["s16"] + g, 96)
        self.block8 = ResidualBlock(96 + c["s8"] + g, 64)
        self.block4 = ResidualBlock(64 + c["s4"] + g, 32)
        self.block2 = ResidualBlock(32 + g, 16)
        self.aux8 = nn.Conv2d(64, 1, 1)
        self.out = nn.Conv2d(16, 1, 3, padding=1)

    def forward(self, f: FrameFeatures, guidance: torch.Tensor):
        """guidance: (B, 3, h, w) at the working resolution. Returns (logits at s2, aux logits at s8)."""

        def g_at(x):
            return F.adaptive_max_pool2d(guidance, x.shape[-2:])

        h = self.block32(torch.cat([f.s32, g_at(f.s32)], 1))
        h = self.block16(torch.cat([_up(h, f.s16), f.s16, g_at(f.s16)], 1))
        h = self.block8(torch.cat([_up(h, f.s8), f.s8, g_at(f.s8)], 1))
        aux = self.aux8(h)
        h = self.block4(torch.cat([_up(h, f.s4), f.s4, g_at(f.s4)], 1))
        size2 = (f.s4.shape[-2] * 2, f.s4.shape[-1] * 2)
        g2 = F.adaptive_max_pool2d(guidance, size2)
        h = self.block2(torch.cat([_resize(h, size2), g2], 1))
        return self.out(h), aux


def matching_keys(f: FrameFeatures) -> torch.Tensor:
    """Fixed (untrained) matching keys at s8: unit-norm s8 and upsampled s16 features, concatenated.

    Keeping the keys untrained is deliberate: with a dozen training videos, learned keys overfit.
    """
    # Channels-last: the norm over channels reads contiguous memory (1.2 -> 0.26 ms at 256x448), and the
    # correlation's (pixels, channels) matrix is a view of it.
    k8 = F.normalize(f.s8.float().contiguous(memory_format=torch.channels_last), dim=1)
    k16 = F.normalize(_up(f.s16.float().contiguous(memory_format=torch.channels_last), f.s8), dim=1)
    return torch.cat([k8, k16], 1).mul_(0.5**0.5)


def key_rows(keys: torch.Tensor) -> torch.Tensor:
    """(1, D, h, w) matching keys as an (h*w, D) matrix, one row per pixel (a view of channels-last keys)."""
    return keys[0].permute(1, 2, 0).reshape(-1, keys.shape[1])


CORR_CHANNELS = 4  # per reference: attention-propagated mask, max fg sim, max bg sim, hotspot affinity
CORRELATION_TEMPERATURE = 0.05  # the softmax temperature of the label propagation


def weighted_correlation(
    search_keys: torch.Tensor,
    ref_keys: torch.Tensor,
    ref_mask: torch.Tensor,
    ref_hotspot: torch.Tensor,
    temperature: float = CORRELATION_TEMPERATURE,
    *,
    weight: torch.Tensor | None = None,
    cache: dict | None = None,
) -> torch.Tensor:
    """The Weighted Correlation Block: pixel-wise correlation of search and template features,
    weighted by the template mask and hotspot.

    search_keys (B, D, h, w); ref_keys (B, D, M) (M reference pixels, any subset);
    ref_mask, ref_hotspot (B, M) in [0, 1]. Returns (B, 4, h, w).
    weight: (B, M) how many template cells each column stands for (`tracking.compact_template`; its exp
    counts that many times in the softmax; 0: a padding column, left out); None: one each.
    cache: a dict that lives as long as this one template (batch 1) and its tensors do not change;
    inference keeps the template's ordered keys there between frames (the anchor's, every frame).
    """
    if temperature < 0.03:  # exp(1/T) must stay far inside the float range (see _weighted_correlation_single)
        raise ValueError(f"temperature must be at least 0.03, not {temperature}")
    if not torch.is_grad_enabled():  # inference, adaptation and validation inputs: no gradient needed
        if ref_keys.shape[0] > 1:
            cache = None  # one cache holds one template
        return torch.cat([_weighted_correlation_single(search_keys[i : i + 1], ref_keys[i : i + 1], ref_mask[i : i + 1],
                                                       ref_hotspot[i : i + 1], temperature, cache,
                                                       None if weight is None else weight[i : i + 1])
                          for i in range(search_keys.shape[0])], 0)
    b, d, h, w = search_keys.shape
    q = search_keys.reshape(b, d, h * w)
    sim = torch.einsum("bdn,bdm->bnm", q, ref_keys)  # cosine similarity (B, N, M)
    logits = sim / temperature
    real = torch.ones_like(ref_mask) if weight is None else (weight > 0).float()
    if weight is not None:  # a column of weight c counts c times: log c added to its logit (0: left out)
        logits = logits + torch.where(weight > 0, weight.clamp_min(1e-12).log(), float("-inf"))[:, None, :]
    attn = torch.softmax(logits, dim=2)
    fg_prop = torch.einsum("bnm,bm->bn", attn, ref_mask)
    hot_w = ref_hotspot / ref_hotspot.sum(1, keepdim=True).clamp_min(1e-6)
    # Hotspot affinity: similarity to the hotspot region of the template, hotspot-weighted.
    hot_aff = torch.einsum("bdn,bd->bn", q, torch.einsum("bdm,bm->bd", ref_keys, hot_w))
    fg = ((ref_mask > 0.5).float() * real)[:, None, :]
    bg = ((ref_mask <= 0.5).float() * real)[:, None, :]
    max_fg = (sim - 2.0 * (1 - fg)).amax(2)
    max_bg = (sim - 2.0 * (1 - bg)).amax(2)
    out = torch.stack([fg_prop, max_fg, max_bg, hot_aff], 1)
    return out.reshape(b, CORR_CHANNELS, h, w)


# Per thread and device: the similarity matrix's buffer, reused from call to call (a fresh 6-13 MB
# tensor on every call spent as long in page faults as in arithmetic, and did so unevenly).
_SCRATCH = threading.local()


def _similarity_buffer(n: int, m: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An (n, m) matrix in this thread's buffer for `device`, which only grows: the templates' column
    counts and the search windows' row counts change from frame to frame."""
    buffers = getattr(_SCRATCH, "similarity", None)
    if buffers is None:
        buffers = _SCRATCH.similarity = {}
    buf = buffers.get(device)
    if buf is None or buf.numel() < n * m or buf.dtype != dtype:
        buf = buffers[device] = torch.empty(n * m, dtype=dtype, device=device)
    return buf[: n * m].view(n, m)


def _ordered_template(ref_keys: torch.Tensor, ref_mask: torch.Tensor, dtype: torch.dtype, temperature: float,
                      cache: dict | None, weight: torch.Tensor | None = None):
    """The template's keys (D, M) scaled by 1/T in `dtype`, and the softmax's two right-hand columns
    (M, 2) in `dtype` (mask x weight, weight), its columns ordered foreground first (padding columns of
    weight 0 left out), and the foreground count; kept in `cache` (the caller's, one per template)."""
    key = (dtype, temperature)
    if cache is not None and key in cache:
        return cache[key]
    fg = ref_mask > 0.5
    real = torch.ones_like(fg) if weight is None else weight > 0
    order = torch.argsort((~fg).to(torch.uint8), stable=True)  # foreground columns first
    order = order[real[order]]
    keys = (ref_keys.t()[order] * (1.0 / temperature)).to(dtype).t()  # row gather: contiguous reads
    wt = torch.ones(len(order)) if weight is None else weight[order].float()
    sums = torch.stack([ref_mask[order].float() * wt, wt], 1).to(dtype)
    entry = (keys, sums, int((fg & real).sum()))
    if cache is not None:
        cache[key] = entry
    return entry


def _weighted_correlation_single(search_keys, ref_keys, ref_mask, ref_hotspot, temperature, cache=None, weight=None):
    """No-gradient path of weighted_correlation for one batch element, equal to it up to the rounding of
    the inference dtype but several times faster:
    - the reference columns are ordered foreground first, so one similarity matrix holds both blocks
      side by side, and the per-block maxima need no masked copies; the matmul's shape is (N, D) x (D, M)
      whatever the mask, so oneDNN builds its kernel once per video, not once per foreground size;
    - the keys carry the 1/T of the softmax, and the matrix stays in the inference dtype, in one buffer
      reused from call to call: the exponentials are taken in place, and one matmul gives the softmax's
      two sums (sum of w * mask, sum of w)."""
    h, w = search_keys.shape[-2:]
    lowp = inference_dtype()
    q = key_rows(search_keys)  # (N, D)
    keys, sums, n_fg = _ordered_template(ref_keys[0], ref_mask[0], lowp, temperature, cache,
                                         None if weight is None else weight[0])
    sim = torch.mm(q.to(lowp), keys, out=_similarity_buffer(q.shape[0], keys.shape[1], lowp, q.device))  # sim / T
    # The maxima of the float32 copy: the same numbers (a max does not round), and on a CPU without AMX
    # converting first and reducing in float32 took half the time of reducing in bf16.
    max_fg = sim[:, :n_fg].float().amax(1) * temperature if n_fg > 0 else None
    max_bg = sim[:, n_fg:].float().amax(1) * temperature if n_fg < sim.shape[1] else None
    if max_fg is None or max_bg is None:  # no pixel of a kind: the reference formula gives (max over all) - 2
        row_max = max_fg if max_bg is None else max_bg
        max_fg, max_bg = (row_max - 2.0, max_bg) if max_fg is None else (max_fg, row_max - 2.0)
    # Keys are unit vectors, so sim / T lies in [-1/T, 1/T] and exp() of it stays far inside the float
    # (and bfloat16) range: the softmax needs no row-max subtraction.
    num_den = (sim.exp_() @ sums).float()  # (N, 2)
    fg_prop = num_den[:, 0] / num_den[:, 1]
    hot_w = ref_hotspot[0] / ref_hotspot[0].sum().clamp_min(1e-6)
    hot_aff = q @ (ref_keys[0] @ hot_w)
    out = torch.stack([fg_prop, max_fg, max_bg, hot_aff], 0)
    return out.reshape(1, CORR_CHANNELS, h, w)


def one_output_conv3x3(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv` (3x3, padding 1, one output channel) in float32 as nine 1x1 taps, shifted and summed: for
    inference, where oneDNN's kernel for one output channel ran 3x slower (16 channels at 64x112, one
    thread: 0.37 ms in bf16 against 0.13). Equal to the float32 convolution up to rounding."""
    h, w = x.shape[-2:]
    weight = conv.weight.float()  # (1, C, 3, 3)
    taps = weight[0].permute(1, 2, 0).reshape(9, -1)[:, :, None, None]  # (9, C, 1, 1), row-major taps
    with torch.autocast(x.device.type, enabled=False):
        y = F.pad(F.conv2d(x.float(), taps), (1, 1, 1, 1))  # (B, 9, h + 2, w + 2)
        out = y[:, 0:1, 0:h, 0:w] + conv.bias.float().view(1, 1, 1, 1)
        for k in range(1, 9):
            dy, dx = divmod(k, 3)
            out = out + y[:, k : k + 1, dy : dy + h, dx : dx + w]
    return out


class WCSTracker(nn.Module):
    """Weighted Correlation Siamese tracker head.

    Inputs: the search frame's features, correlation maps against two templates (the anchor frame with
    its mask/hotspot, and the previous frame with its predicted mask/hotspot) and the previous mask.
    Outputs mask logits (at s4) and hotspot heat-map logits (at s8).
    """

    N_REFS = 2
    FINE_CHANNELS = 32  # the stride-4 block's width (16: a slimmer block, 43% of its work)
    MID_CHANNELS = 64  # the stride-16 and stride-8 blocks' width (48: 56% of their work)

    def __init__(self, fine_channels: int = FINE_CHANNELS, mid_channels: int = MID_CHANNELS):
        super().__init__()
        c = LEVEL_CHANNELS
        self.fine_channels, self.mid_channels = fine_channels, mid_channels
        mid = mid_channels
        cc = CORR_CHANNELS * self.N_REFS + 1  # + previous mask
        self.proj16 = nn.Conv2d(c["s16"], 64, 1)
        self.proj8 = nn.Conv2d(c["s8"], 32, 1)
        self.proj4 = nn.Conv2d(c["s4"], 16, 1)
        self.block16 = ResidualBlock(64 + cc, mid)
        self.block8a = ResidualBlock(mid + 32 + cc, mid)
        self.block8b = ResidualBlock(mid, mid)
        self.block4 = ResidualBlock(mid + 16 + 1, fine_channels)
        self.mask8 = nn.Conv2d(mid, 1, 1)
        self.mask4 = nn.Conv2d(fine_channels, 1, 3, padding=1)
        self.hot_block = ResidualBlock(mid + cc, 32)
        self.hot_out = nn.Conv2d(32, 1, 3, padding=1)

    @classmethod
    def for_state(cls, state: dict | None) -> "WCSTracker":
        """A tracker shaped as the weights `state` (its blocks' widths), default without one."""
        fine = None if state is None else state.get("block4.conv1.weight")
        mid = None if state is None else state.get("block16.conv1.weight")
        return cls(cls.FINE_CHANNELS if fine is None else int(fine.shape[0]),
                   cls.MID_CHANNELS if mid is None else int(mid.shape[0]))

    def forward(self, f: FrameFeatures, corr: torch.Tensor, prev_mask8: torch.Tensor):
        """corr: (B, 8, h8, w8) from weighted_correlation for both refs; prev_mask8: (B, 1, h8, w8)."""
        x8 = torch.cat([corr, prev_mask8], 1)
        x16 = F.adaptive_avg_pool2d(x8, f.s16.shape[-2:])
        h16 = self.block16(torch.cat([self.proj16(f.s16), x16], 1))
        h8 = self.block8a(torch.cat([_up(h16, f.s8), self.proj8(f.s8), x8], 1))
        h8 = self.block8b(h8)
        m8 = self.mask8(h8)
        m8_up = _up(m8, f.s4)
        h4 = self.block4(torch.cat([_up(h8, f.s4), self.proj4(f.s4), m8_up], 1))
        h_hot = self.hot_block(torch.cat([h8, x8], 1))
        if torch.is_grad_enabled():
            return self.mask4(h4) + m8_up, m8, self.hot_out(h_hot)
        return one_output_conv3x3(self.mask4, h4) + m8_up, m8, one_output_conv3x3(self.hot_out, h_hot)
