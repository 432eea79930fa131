"""Shapes and guidance handling of the encoder and the three heads (untrained weights suffice)."""

import numpy as np
import pytest
import torch

from napari_hotspot.models.backbone import LEVEL_CHANNELS, Encoder, FrameFeatures, frame_to_tensor
from napari_hotspot.models.guidance import make_guidance
from napari_hotspot.models.heads import (CORR_CHANNELS, EGNet, Gaze2MaskNet, WCSTracker, matching_keys,
                                         weighted_correlation)
from napari_hotspot.models.resolution import working_size
from napari_hotspot.models.tracking import deepest_point, hotspot_from_heat, make_reference


def fake_features(b=1, h=96, w=128):
    return FrameFeatures(*(torch.randn(b, LEVEL_CHANNELS[k], h // s, w // s)
                           for k, s in (("s4", 4), ("s8", 8), ("s16", 16), ("s32", 32))))


def test_working_size_keeps_aspect_and_multiples_of_32():
    assert working_size(480, 854) == (256, 448)  # default long side 448
    assert working_size(480, 854, long_side=512) == (288, 512)
    assert working_size(240, 320, long_side=512) == (384, 512)
    h, w = working_size(1080, 1920)
    assert h % 32 == 0 and w % 32 == 0 and w == 448


def test_encoder_levels_and_strides():
    enc = Encoder()
    f = enc(frame_to_tensor(np.zeros((100, 150, 3), np.uint8), (96, 128)))
    for level, stride in (("s4", 4), ("s8", 8), ("s16", 16), ("s32", 32)):
        assert f[level].shape == (1, LEVEL_CHANNELS[level], 96 // stride, 128 // stride)
    assert not any(p.requires_grad for p in enc.parameters())


def test_folded_batch_norms_give_the_unfolded_encoders_features(monkeypatch):
    """The encoder folds each frozen batch norm into its convolution; float32 features must not change,
    and the bf16 trunk (where the CPU runs bf16 fast) must stay within bf16 rounding of them."""
    from napari_hotspot.models import backbone

    torch.manual_seed(0)
    x = torch.randn(1, 3, 96, 128)
    folded = Encoder()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    monkeypatch.setattr(backbone, "_fold_batch_norms", lambda encoder: None)
    unfolded = Encoder()
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in unfolded.modules())
    monkeypatch.setattr(backbone, "inference_dtype", lambda: torch.float32)
    ref, got = unfolded(x), folded(x)
    monkeypatch.setattr(backbone, "inference_dtype", lambda: torch.bfloat16)
    low = folded(x)
    for level in ("s4", "s8", "s16", "s32"):
        scale = float(ref[level].abs().max())
        assert float((got[level] - ref[level]).abs().max()) < 1e-5 * scale, level
        assert low[level].dtype == torch.float32
        rel = (low[level] - ref[level]).norm() / ref[level].norm()
        assert float(rel) < 0.05, level
    assert set(folded._lowp) == {torch.float32, torch.bfloat16}  # built once per dtype, then reused
    trunk = folded._lowp[torch.bfloat16]
    assert isinstance(trunk, backbone._FusedTrunk) and trunk.stem[1].dtype == torch.bfloat16
    # New weights make a new copy: the bf16 features follow them, not the weights it was made from.
    state = {k: v * 0.5 if k.endswith("stem.weight") else v for k, v in folded.state_dict().items()}
    folded.load_state_dict(state)
    assert not folded._lowp
    halved = folded(x)
    assert float((halved["s4"] - low["s4"]).abs().max()) > 1e-2
    folded(x)
    folded.to(torch.float32)
    assert not folded._lowp


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_streamlined_encoder_gives_the_librarys_features_exactly(monkeypatch, dtype):
    """Symmetric "same" padding moved into the convolutions and ReLU6 in place: the same numbers as the
    library's modules (pad copy, out-of-place ReLU6), in float32 and in the bf16 trunk."""
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    from napari_hotspot.models import backbone

    torch.manual_seed(0)
    x = torch.randn(1, 3, 96, 160)
    fast = Encoder()
    moved = [m for m in fast.modules() if isinstance(m, Conv2dStaticSamePadding) and m.padding != (0, 0)]
    assert moved and all(isinstance(m.static_padding, torch.nn.Identity) for m in moved)
    assert all(m.inplace for m in fast.modules() if isinstance(m, torch.nn.ReLU6))
    monkeypatch.setattr(backbone, "_streamline", lambda encoder: None)
    library = Encoder()
    assert not any(m.inplace for m in library.modules() if isinstance(m, torch.nn.ReLU6))
    monkeypatch.setattr(backbone, "inference_dtype", lambda: dtype)
    monkeypatch.setattr(backbone._FusedTrunk, "build", classmethod(lambda cls, encoder, dtype: None))  # the modules
    ref, got = library(x), fast(x)
    for level in ("s4", "s8", "s16", "s32"):
        assert torch.equal(ref[level], got[level]), level


@pytest.mark.parametrize("threads", [1, 2])
def test_fused_encoder_gives_the_modules_features(monkeypatch, threads):
    """ReLU6 fused into oneDNN's convolutions: bf16 features equal to the bit to the bf16 modules', float32
    ones to float rounding (at one thread the modules' 1x1 convolutions sum in another order); and an
    encoder whose torch lacks the op falls back to its modules."""
    from napari_hotspot.models import backbone

    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        x = torch.randn(2, 3, 96, 160)  # a batch, as adaptation's views
        enc = Encoder()
        for dtype in (torch.float32, torch.bfloat16):
            monkeypatch.setattr(backbone, "inference_dtype", lambda: dtype)
            got = enc(x)
            assert isinstance(enc._lowp[dtype], backbone._FusedTrunk)
            ref = enc._forward(x) if dtype == torch.float32 else backbone._LowPrecisionTrunk(enc, dtype)(x.to(dtype))
            for level in ("s4", "s8", "s16", "s32"):
                if dtype == torch.bfloat16:
                    assert torch.equal(got[level], ref[level].float()), level
                else:
                    assert float((got[level] - ref[level]).abs().max()) < 1e-5 * float(ref[level].abs().max()), level

        def no_op(*args, **kwargs):
            raise RuntimeError("no such op")

        monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", no_op)
        plain = Encoder()
        assert torch.equal(plain(x).s8, backbone._LowPrecisionTrunk(plain, torch.bfloat16)(x.to(torch.bfloat16)).s8.float())
        assert isinstance(plain._lowp[torch.bfloat16], backbone._LowPrecisionTrunk)
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_backbone_variants_give_their_level_channels_and_feed_gaze2mask(variant):
    from napari_hotspot.models.backbone import BACKBONES

    enc = Encoder(pretrained=False, variant=variant)  # the architecture alone: no weights package needed
    f = enc(frame_to_tensor(np.zeros((96, 128, 3), np.uint8), (96, 128)))
    for level, stride in (("s4", 4), ("s8", 8), ("s16", 16), ("s32", 32)):
        assert f[level].shape == (1, BACKBONES[variant][1][level], 96 // stride, 128 // stride)
    out, aux = Gaze2MaskNet(enc.channels)(f, torch.zeros(1, 3, 96, 128))
    assert out.shape == (1, 1, 48, 64) and aux.shape == (1, 1, 12, 16)


def test_unknown_backbone_is_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        Encoder(pretrained=False, variant="lite9")


def test_frame_to_tensor_rejects_grey_frames():
    with pytest.raises(ValueError, match="RGB"):
        frame_to_tensor(np.zeros((10, 10), np.uint8), (32, 32))


def test_heads_output_shapes():
    f = fake_features(2)
    assert EGNet()(f).shape == (2, 1, 12, 16)
    out, aux = Gaze2MaskNet()(f, torch.zeros(2, 3, 96, 128))
    assert out.shape == (2, 1, 48, 64) and aux.shape == (2, 1, 12, 16)
    keys = matching_keys(f)
    corr = torch.cat([weighted_correlation(keys, keys.flatten(2), torch.rand(2, 192), torch.rand(2, 192))] * 2, 1)
    assert corr.shape == (2, 2 * CORR_CHANNELS, 12, 16)
    m4, m8, hot = WCSTracker()(f, corr, torch.zeros(2, 1, 12, 16))
    assert m4.shape == (2, 1, 24, 32) and m8.shape == (2, 1, 12, 16) and hot.shape == (2, 1, 12, 16)


def test_guidance_channels():
    g = make_guidance((64, 80), positive_xy=[(10, 20)], negative_xy=[(70, 50)], box_xyxy=(5, 6, 30, 40))
    assert g.shape == (3, 64, 80)
    assert g[0, 20, 10] == pytest.approx(1.0) and g[0, 50, 70] < 1e-3
    assert g[1, 50, 70] == pytest.approx(1.0)
    assert g[2, 10, 10] == 1.0 and g[2, 50, 50] == 0.0
    gaze = np.zeros((64, 80), np.float32)
    gaze[30, 40] = 5.0
    assert make_guidance((64, 80), gaze_map=gaze)[0, 30, 40] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="gaze map shape"):
        make_guidance((64, 80), gaze_map=np.zeros((10, 10)))


def test_weighted_correlation_propagates_the_template_mask():
    # Search == template: the attention-propagated mask reproduces the template mask.
    f = fake_features(1)
    keys = matching_keys(f)
    mask = torch.zeros(1, 12 * 16)
    mask[0, :50] = 1
    c = weighted_correlation(keys, keys.flatten(2), mask, torch.zeros(1, 192))
    prop = c[0, 0].flatten()
    assert float(prop[:50].mean()) > 0.9 and float(prop[50:].mean()) < 0.1


@pytest.mark.parametrize("fg_fraction", [0.0, 0.3, 1.0])
def test_fast_weighted_correlation_matches_the_batched_formula(fg_fraction, monkeypatch):
    """Inference (batch 1, no grad) takes a faster path; it must give the training formula's output:
    exactly in float32, within bf16 rounding where this CPU's fast dtype is bfloat16."""
    from napari_hotspot.models import heads

    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(1, 24, 9, 12), dim=1)
    k = torch.nn.functional.normalize(torch.randn(1, 24, 90), dim=1)
    mask = (torch.rand(1, 90) < fg_fraction).float() * 0.9 + 0.05
    hot = torch.rand(1, 90)
    with torch.enable_grad():
        reference = weighted_correlation(q, k, mask, hot)
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        monkeypatch.setattr(heads, "inference_dtype", lambda dtype=dtype: dtype)
        with torch.no_grad():
            fast = weighted_correlation(q, k, mask, hot)
        assert fast.shape == reference.shape
        assert float((fast - reference).abs().max()) < tol, dtype


def test_deepest_point_and_hotspot_inside_object():
    m = np.zeros((40, 60), bool)
    m[10:30, 20:50] = True
    x, y = deepest_point(m)
    assert 28 <= x <= 41 and 17 <= y <= 22  # any point on the medial ridge
    assert deepest_point(np.zeros((5, 5), bool)) is None
    heat = torch.zeros(5, 8)
    heat[0, 0] = 10.0  # the heat peak lies outside the object
    mask_prob = torch.zeros(40, 64)
    mask_prob[16:32, 32:56] = 1.0
    _, xy = hotspot_from_heat(heat, mask_prob)
    assert mask_prob[int(round(xy[1])), int(round(xy[0]))] > 0.5


def test_snap_into_keeps_a_point_inside_and_moves_one_outside_to_the_nearest_pixel():
    from napari_hotspot.mask_geometry import snap_into

    m = np.zeros((20, 30), bool)
    m[5:10, 10:20] = True
    assert snap_into(m, (12.3, 7.6)) == (12.3, 7.6)
    assert snap_into(m, (2.0, 7.0)) == (10.0, 7.0)  # left of the mask: its left column
    assert snap_into(m, (-50.0, 99.0)) == (10.0, 9.0)  # far off the image: the nearest corner
    # A mask along the image's border: a point off the image is never kept, even where the rounded
    # pixel it would clip to is on the mask.
    edge = np.zeros((20, 30), bool)
    edge[5:15, 0:3] = True
    assert snap_into(edge, (-4.3, 10.0)) == (0.0, 10.0)
    assert snap_into(edge, (-0.4, 10.0)) == (-0.4, 10.0)  # within pixel 0


def test_steady_hotspot_smooths_the_offset_from_the_centroid_and_stays_in_the_core():
    from napari_hotspot.mask_geometry import steady_hotspot

    m = np.zeros((40, 80), bool)
    m[10:30, 10:70] = True  # centroid (39.5, 19.5)
    core = m.copy()
    # No previous offset: the point itself.
    xy, off = steady_hotspot((20.0, 19.5), m, core, None, 0.3)
    assert xy == (20.0, 19.5) and np.allclose(off, (-19.5, 0.0))
    # A hotspot hopping between two spots of the object: with keep 0 it hops all the way, with 0.5 by a
    # third of the distance once settled (the offset's fixed points: -/+ d / 3 for a hop of 2 d).
    spots = [(20.0, 19.5), (59.0, 19.5)] * 10
    for keep, hop in ((0.0, 39.0), (0.5, 13.0)):
        off, track = None, []
        for p in spots:
            xy, off = steady_hotspot(p, m, core, off, keep)
            track.append(xy[0])
        assert abs(abs(track[-1] - track[-2]) - hop) < 0.1, (keep, track[-4:])
    # The mask moves: the smoothed point moves with it (its offset, not its place, is smoothed).
    shifted = np.roll(m, 5, axis=1)
    xy, _ = steady_hotspot((45.0, 19.5), shifted, shifted, np.array([0.0, 0.0]), 0.9)
    assert xy == (44.5 + 0.1 * 0.5, 19.5)
    # A smoothed point off the core is put back on its nearest core pixel.
    thin = np.zeros((40, 80), bool)
    thin[10:30, 10:20] = thin[10:30, 60:70] = True  # two parts, the centroid between them
    xy, off = steady_hotspot((15.0, 20.0), thin, thin, np.array([25.0, 0.5]), 0.5)
    assert thin[int(round(xy[1])), int(round(xy[0]))] and np.allclose(off, np.array(xy) - (39.5, 19.5))
    # An object at the image's border with an offset pointing out of the image: the point stays on it.
    strip = np.zeros((40, 80), bool)
    strip[10:30, 0:6] = True
    xy, off = steady_hotspot((3.0, 20.0), strip, strip, np.array([-25.0, 0.0]), 0.3)
    assert 0 <= xy[0] <= 5 and strip[int(round(xy[1])), int(round(xy[0]))]
    assert steady_hotspot(None, m, core, off, 0.3) == (None, None)
    assert steady_hotspot((1.0, 1.0), np.zeros_like(m), core, off, 0.3) == (None, None)


def test_make_reference_shapes():
    f = fake_features(1)
    ref = make_reference(f, torch.ones(96, 128), (64.0, 48.0), compact=False)
    assert ref.keys.shape == (1, 152, 192) and ref.mask.shape == (1, 192) and ref.mask_map.shape == (1, 1, 12, 16)
    y, x = divmod(int(ref.hotspot.argmax()), 16)
    assert (x, y) in {(7, 5), (8, 5), (7, 6), (8, 6)}  # the cell holding working pixel (64, 48)


def _blocky_keys(h8, w8, d=24, seed=0):
    """Unit keys (1, d, h8, w8) equal within each 2x2 block: pooling a block's background loses nothing."""
    g = torch.Generator().manual_seed(seed)
    k = torch.nn.functional.normalize(torch.randn(1, d, (h8 + 1) // 2, (w8 + 1) // 2, generator=g), dim=1)
    return k.repeat_interleave(2, 2).repeat_interleave(2, 3)[..., :h8, :w8].contiguous()


@pytest.mark.parametrize("grid", [(12, 16), (9, 13)])  # an odd grid pads its last blocks
def test_a_compact_template_keeps_the_object_and_counts_its_pooled_background(grid):
    """The object's stride-8 cells are kept as they are; each 2x2 block's background cells become one
    column of their summed, renormalised keys counted as that many cells. Where a block's keys are equal
    (no detail lost) the correlation is the full template's, on both the inference and the gradient path."""
    from napari_hotspot.models.tracking import compact_template, hotspot_weights

    h8, w8 = grid
    keys = _blocky_keys(h8, w8)
    m8 = torch.zeros(1, 1, h8, w8)
    m8[..., 3:7, 5:8] = 1.0  # the object, cutting through 2x2 blocks
    m8[..., 8, 1] = 0.3  # a soft background cell: its mask value is averaged into its block's
    hot = hotspot_weights((50.0, 40.0), grid)
    k, m, h, wt = compact_template(keys, m8, hot, hard_share=0.0)
    n_fg = int((m8 > 0.5).sum())
    assert torch.equal(k[0, :, :n_fg], keys.flatten(2)[0][:, (m8 > 0.5).flatten()])
    assert float(wt.sum()) == h8 * w8 and torch.equal(wt[0, :n_fg], torch.ones(n_fg))
    assert k.shape[-1] == n_fg + int((wt[0, n_fg:] > 0).sum()) < h8 * w8 // 2
    assert float(h.sum()) == pytest.approx(float(hot.sum()), rel=1e-5)
    assert float((m[0, n_fg:] * wt[0, n_fg:]).sum()) == pytest.approx(0.3)  # the soft cell, in its block's mean
    q = torch.nn.functional.normalize(torch.randn(1, 24, 7, 9), dim=1)
    full = make_reference(None, torch.zeros(1), None, keys=keys, compact=False)
    full.mask[:] = m8.flatten(1)
    full.hotspot[:] = hot
    with torch.no_grad():  # the inference path, in the inference dtype
        fast = weighted_correlation(q, k, m, h, weight=wt)
    with torch.enable_grad():  # the training path, float32
        exact = weighted_correlation(q, full.keys, full.mask, full.hotspot)
        grad_path = weighted_correlation(q, k, m, h, weight=wt)
    assert float((grad_path - exact).abs().max()) < 1e-4
    assert float((fast - exact).abs().max()) < 0.02  # the inference dtype's rounding
    # The hardest background cells (most like the object) keep columns of their own, first after the object's.
    k2, m2, h2, wt2 = compact_template(keys, m8, hot, hard_share=0.2)
    n_bg = h8 * w8 - n_fg
    n_hard = int(np.ceil(0.2 * n_bg))
    assert torch.equal(wt2[0, : n_fg + n_hard], torch.ones(n_fg + n_hard)) and float(wt2.sum()) == h8 * w8
    flat = keys.flatten(2)[0]
    fg_keys, bg_keys = flat[:, (m8 > 0.5).flatten()], flat[:, ~(m8 > 0.5).flatten()]
    likeness = (bg_keys.t() @ fg_keys).amax(1)
    hard_likeness = (k2[0, :, n_fg : n_fg + n_hard].t() @ fg_keys).amax(1)
    assert float(hard_likeness.min()) >= float(torch.topk(likeness, n_hard).values.min()) - 1e-6
    with torch.enable_grad():
        assert float((weighted_correlation(q, k2, m2, h2, weight=wt2) - exact).abs().max()) < 1e-4


def test_templates_of_different_sizes_stack_with_padding_that_changes_nothing():
    from napari_hotspot.models.tracking import correlation_input, stack_references

    refs = []
    for i, (y0, y1) in enumerate([(2, 5), (1, 9)]):  # two objects: two column counts
        mask = torch.zeros(96, 128)
        mask[y0 * 8 : y1 * 8, 16:72] = 1.0
        refs.append(make_reference(None, mask, (40.0, 30.0), keys=_blocky_keys(12, 16, seed=i), compact=True))
    assert refs[0].keys.shape[-1] != refs[1].keys.shape[-1]
    batch = stack_references(refs)
    assert batch.keys.shape[-1] == max(r.keys.shape[-1] for r in refs)
    q = torch.nn.functional.normalize(torch.randn(2, 24, 12, 16), dim=1)
    with torch.no_grad():
        together = correlation_input(q, batch, batch)
        alone = [correlation_input(q[i : i + 1], refs[i], refs[i]) for i in range(2)]
    with torch.enable_grad():
        grad_path = correlation_input(q, batch, batch)
    for i in range(2):
        assert float((together[i : i + 1] - alone[i]).abs().max()) < 1e-5
        assert float((grad_path[i : i + 1] - alone[i]).abs().max()) < 0.02


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_an_encoder_pass_stopped_at_s16_and_finished_later_gives_the_full_pass(monkeypatch, dtype):
    """A sweep encodes to s16 (the tracker reads no more); `finish` adds s32 when a prompt needs it."""
    from napari_hotspot.models import backbone

    monkeypatch.setattr(backbone, "inference_dtype", lambda: dtype)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 96, 160)
    enc = Encoder()
    full, part = enc(x), enc(x, upto="s16")
    assert part.s32 is None and not part.complete and full.complete
    for level in ("s4", "s8", "s16"):
        assert torch.equal(part[level], full[level]), level
    done = enc.finish(part)
    assert done.complete and enc.finish(done) is done
    assert float((done.s32 - full.s32).abs().max()) <= 1e-5 * float(full.s32.abs().max())
    assert part.nbytes < done.nbytes and part.to(torch.float64).s32 is None
    # the modules' own path (no CPU inference copy), as on a GPU
    monkeypatch.setattr(enc, "_trunk", lambda device: None)
    assert float((enc.finish(enc(x, upto="s16")).s32 - enc._forward(x).s32).abs().max()) < 1e-5 * float(full.s32.abs().max())


def test_a_slimmer_tracker_decoder_loads_from_its_file_and_trains_from_the_usual_one(tmp_path):
    from napari_hotspot.models.training.train import save_weights
    from napari_hotspot.models.weights import ModelBundle, load_heads_into

    slim = WCSTracker(16)
    assert slim.block4.conv1.weight.shape[0] == 16 and WCSTracker.for_state(slim.state_dict()).fine_channels == 16
    heads = {"egnet": EGNet(), "gaze2mask": Gaze2MaskNet(), "tracker": slim}
    save_weights(tmp_path / "slim.pt", heads, {})
    assert ModelBundle.load(tmp_path / "slim.pt").tracker.fine_channels == 16
    usual = WCSTracker()
    save_weights(tmp_path / "usual.pt", {"egnet": EGNet(), "gaze2mask": Gaze2MaskNet(), "tracker": usual}, {})
    fresh = WCSTracker(16)
    block4 = fresh.block4.conv1.weight.clone()
    with pytest.raises(Exception, match="do not fit"):
        load_heads_into({"tracker": WCSTracker(16)}, tmp_path / "usual.pt")
    load_heads_into({"tracker": fresh}, tmp_path / "usual.pt", partial=True)
    assert torch.equal(fresh.block4.conv1.weight, block4)  # another shape: started afresh
    assert torch.equal(fresh.block8b.conv1.weight, usual.block8b.conv1.weight.half().float())  # the rest from the file


def test_a_tracker_with_slimmer_middle_blocks_is_shaped_by_its_file(tmp_path):
    from napari_hotspot.models.training.train import save_weights
    from napari_hotspot.models.weights import ModelBundle

    slim = WCSTracker(16, 48)
    assert slim.block8b.conv1.weight.shape[:2] == (48, 48) and slim.hot_block.conv1.weight.shape[1] == 48 + 9
    assert sum(p.numel() for p in slim.parameters()) < 0.65 * sum(p.numel() for p in WCSTracker().parameters())
    save_weights(tmp_path / "slim.pt", {"egnet": EGNet(), "gaze2mask": Gaze2MaskNet(), "tracker": slim}, {})
    loaded = ModelBundle.load(tmp_path / "slim.pt").tracker
    assert (loaded.fine_channels, loaded.mid_channels) == (16, 48)
    f = FrameFeatures(s4=torch.randn(1, 24, 16, 24), s8=torch.randn(1, 40, 8, 12), s16=torch.randn(1, 112, 4, 6))
    m4, m8, hot = loaded(f, torch.randn(1, 8, 8, 12), torch.rand(1, 1, 8, 12))
    assert m4.shape == (1, 1, 16, 24) and m8.shape == hot.shape == (1, 1, 8, 12)


def test_the_trackers_one_channel_outputs_at_inference_equal_its_convolutions():
    from napari_hotspot.models.heads import one_output_conv3x3

    torch.manual_seed(0)
    tracker = WCSTracker().eval()
    f = FrameFeatures(s4=torch.randn(1, 24, 16, 24), s8=torch.randn(1, 40, 8, 12), s16=torch.randn(1, 112, 4, 6))
    args = (f, torch.randn(1, 8, 8, 12), torch.rand(1, 1, 8, 12))
    trained = tracker(*args)  # gradients on: the modules' own convolutions
    with torch.no_grad():
        inferred = tracker(*args)
    for a, b in zip(trained, inferred):
        a = a.detach()
        assert float((a - b).abs().max()) < 1e-4 * (1 + float(a.abs().max()))
    conv = torch.nn.Conv2d(5, 1, 3, padding=1)
    x = torch.randn(2, 5, 7, 9)
    with torch.no_grad():
        assert torch.allclose(one_output_conv3x3(conv, x), conv(x), atol=1e-5)


def test_one_template_as_anchor_and_previous_correlates_once_with_the_same_result():
    import dataclasses

    from napari_hotspot.models.tracking import correlation_input

    f = fake_features(1)
    mask = torch.zeros(96, 128)
    mask[20:60, 30:90] = 1
    ref = make_reference(f, mask, (60.0, 40.0))
    twin = dataclasses.replace(ref)  # equal content, another object: the general path
    keys = matching_keys(f)
    import napari_hotspot.models.tracking as tracking

    calls = []
    real = tracking.weighted_correlation
    tracking.weighted_correlation = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        same, general = correlation_input(keys, ref, ref), correlation_input(keys, ref, twin)
    finally:
        tracking.weighted_correlation = real
    assert calls == [1, 1, 1] and torch.equal(same, general)


def test_confidence_is_the_chance_a_mask_is_right_from_its_certainty():
    from napari_hotspot.models.tracking import CONFIDENCE_CERTAINTY_AT_HALF, confidence_score, mask_certainty

    empty = torch.zeros(32, 32)
    assert confidence_score(empty) == 0.0 and mask_certainty(empty) == 0.0
    sure, unsure = torch.zeros(32, 32), torch.zeros(32, 32)
    sure[8:24, 8:24], unsure[8:24, 8:24] = 0.999, 0.8
    assert confidence_score(sure) > 0.9 > 0.1 > confidence_score(unsure)
    half = torch.zeros(32, 32)
    half[8:24, 8:24] = (1 + CONFIDENCE_CERTAINTY_AT_HALF) / 2  # 2p - 1 = the certainty at 0.5
    assert abs(confidence_score(half) - 0.5) < 1e-3


def test_track_step_in_bf16_stays_within_rounding_of_float32_and_returns_float32(monkeypatch):
    """Where the CPU runs bf16 fast, the tracker decoder runs under bf16 autocast; its answer must stay
    close to float32's and come back as float32 (the heads and the session expect it)."""
    from napari_hotspot.models import precision
    from napari_hotspot.models.tracking import track_step

    torch.manual_seed(0)
    f = fake_features(1)
    tracker = WCSTracker().eval().to(memory_format=torch.channels_last)
    mask = torch.zeros(96, 128)
    mask[20:60, 30:90] = 1
    ref = make_reference(f, mask, (60.0, 40.0))
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        monkeypatch.setattr(precision, "_CHOSEN", [dtype])
        results[dtype] = track_step(tracker, f, ref, ref, (96, 128))
    low, full = results[torch.bfloat16], results[torch.float32]
    assert low.mask_prob.dtype == torch.float32 and low.heat.dtype == torch.float32
    assert float((low.mask_prob - full.mask_prob).abs().max()) < 0.05
    assert float((low.mask_prob - full.mask_prob).abs().mean()) < 0.005


def test_a_templates_correlation_cache_gives_the_uncached_result_and_stays_with_its_reference():
    """Inference keeps a template's ordered keys on its Reference between frames: the answer must be the
    uncached one, and a copy of the Reference (another device, a changed template) starts afresh."""
    from napari_hotspot.models.tracking import Reference, correlation_cache, correlation_input, reference_to

    torch.manual_seed(1)
    q = torch.nn.functional.normalize(torch.randn(1, 24, 9, 12), dim=1)
    keys = torch.nn.functional.normalize(torch.randn(1, 24, 108), dim=1)
    mask = torch.zeros(1, 108)
    mask[0, :30] = 1
    ref = Reference(keys, mask, torch.rand(1, 108), mask.reshape(1, 1, 9, 12))
    other = Reference(-keys, 1 - mask, ref.hotspot, ref.mask_map)
    with torch.no_grad():
        uncached = weighted_correlation(q, keys, mask, ref.hotspot)
        first = correlation_input(q, ref, other)
        assert len(correlation_cache(ref)) == 1 and not correlation_cache(other)  # only the anchor keeps one
        again = correlation_input(q, ref, other)
        swapped = correlation_input(q, other, ref)
    assert torch.equal(first, again) and torch.equal(first[:, :CORR_CHANNELS], uncached)
    assert float((swapped[:, :CORR_CHANNELS] - first[:, CORR_CHANNELS:]).abs().max()) < 1e-6
    assert not correlation_cache(reference_to(ref, "cpu"))


def test_the_similarity_buffer_is_per_device_and_only_grows():
    import threading

    from napari_hotspot.models import heads

    heads._SCRATCH.__dict__.clear()
    cpu = torch.device("cpu")
    a = heads._similarity_buffer(4, 6, torch.float32, cpu)
    assert a.shape == (4, 6) and a.is_contiguous()
    smaller = heads._similarity_buffer(3, 5, torch.float32, cpu)  # a window, a smaller template: same memory
    assert smaller.shape == (3, 5) and smaller.is_contiguous() and smaller.data_ptr() == a.data_ptr()
    b = heads._similarity_buffer(5, 6, torch.float32, cpu)
    assert b.shape == (5, 6) and heads._similarity_buffer(4, 6, torch.float32, cpu).data_ptr() == b.data_ptr()
    assert heads._similarity_buffer(4, 6, torch.bfloat16, cpu).dtype == torch.bfloat16
    meta = heads._similarity_buffer(5, 6, torch.float32, torch.device("meta"))
    assert meta.device.type == "meta" and meta.shape == (5, 6)
    other = []  # another thread has its own
    t = threading.Thread(target=lambda: other.append(heads._similarity_buffer(4, 6, torch.bfloat16, cpu).data_ptr()))
    t.start()
    t.join()
    assert other[0] != heads._similarity_buffer(4, 6, torch.bfloat16, cpu).data_ptr()


def test_matching_keys_are_unit_channel_vectors_of_both_levels():
    f = fake_features(1)
    keys = matching_keys(f)
    up16 = torch.nn.functional.interpolate(f.s16, size=f.s8.shape[-2:], mode="bilinear", align_corners=False)
    want = torch.cat([torch.nn.functional.normalize(f.s8, dim=1),
                      torch.nn.functional.normalize(up16, dim=1)], 1) * 0.5**0.5
    assert keys.shape == want.shape and float((keys - want).abs().max()) < 1e-6
    assert torch.allclose(keys.norm(dim=1), torch.ones(1, *f.s8.shape[-2:]), atol=1e-5)


def test_allocator_tuning_is_set_once_and_can_be_turned_off(monkeypatch):
    import sys

    from napari_hotspot.models import allocator

    monkeypatch.setattr(allocator, "_STATE", [])
    monkeypatch.setenv("NAPARI_HOTSPOT_MALLOC_TUNING", "0")
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(allocator, "_STATE", [])
    monkeypatch.delenv("NAPARI_HOTSPOT_MALLOC_TUNING")
    import platform

    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert allocator.keep_freed_memory() is on_glibc
