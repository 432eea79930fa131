"""The training entry point runs end to end on a tiny DAVIS-layout set (2 steps per head, CPU)."""

import json

import cv2
import numpy as np
import pytest
import torch

from napari_hotspot.models.heads import EGNet
from napari_hotspot.models.weights import DEFAULT_WEIGHTS, ModelBundle, load_heads_into
from napari_hotspot.sample_data import make_sample_video, write_sample
from napari_hotspot.train import main as train_main


@pytest.fixture(scope="module")
def tiny_davis(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    sample = make_sample_video(num_frames=4)
    for name in ("a", "b"):
        paths = write_sample(root / "raw" / name, "folder", sample, name=name)
        for kind, src in (("JPEGImages", paths.frames), ("Annotations", paths.annotations)):
            dst = root / kind / "480p" / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    return root, sample


def test_train_all_heads_writes_loadable_weights_and_a_report(tiny_davis, tmp_path):
    root, _ = tiny_davis
    out = tmp_path / "run"
    train_main(["--davis-root", str(root), "--val-sequences", "b", "--steps-tracker", "2", "--steps-gaze2mask", "2",
                "--steps-egnet", "2", "--batch-size", "2", "--cache", str(tmp_path / "cache"), "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert report["train_sequences"] == ["a"] and report["val_sequences"] == ["b"]
    assert set(report["validation"]["b"]) == {"tracker_J", "tracker_hotspot_inside", "click_J", "egnet_peak_inside"}
    bundle = ModelBundle.load(out / "weights.pt")
    assert bundle.meta["val_sequences"] == ["b"]


def test_egnet_retrains_on_real_fixation_data(tiny_davis, tmp_path):
    root, sample = tiny_davis
    fix = tmp_path / "fixations"
    (fix / "images").mkdir(parents=True)
    (fix / "fixations").mkdir()
    for i in range(2):
        cv2.imwrite(str(fix / "images" / f"{i}.jpg"), cv2.cvtColor(sample.frames[i], cv2.COLOR_RGB2BGR))
        x, y = sample.hotspots[i, 0, :2]
        np.savetxt(fix / "fixations" / f"{i}.csv", [[x, y], [x + 2, y + 1]], delimiter=",", header="x,y", comments="")
    out = tmp_path / "run"
    # Through the documented command line (`napari-hotspot train ...`), options first.
    from napari_hotspot.cli import main as cli_main

    assert cli_main(["train", "--davis-root", str(root), "--head", "egnet", "--steps-egnet", "2", "--batch-size", "2",
                     "--fixations-root", str(fix), "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 0
    net = EGNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    load_heads_into({"egnet": net}, out / "weights.pt")
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_missing_fixation_files_fail_clearly(tiny_davis, tmp_path):
    root, sample = tiny_davis
    (tmp_path / "fx" / "images").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "fx" / "images" / "0.jpg"), sample.frames[0])
    with pytest.raises(FileNotFoundError, match="no fixation map"):
        train_main(["--davis-root", str(root), "--head", "egnet", "--steps-egnet", "1", "--fixations-root",
                    str(tmp_path / "fx"), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "o")])


def test_composite_pastes_the_object_moves_it_and_targets_it_alone():
    from napari_hotspot.models.training.composites import make_composite, paste_affine
    from napari_hotspot.models.training.samplers import map_point

    rng = np.random.default_rng(0)
    size = (64, 96)
    obj = np.zeros((*size, 3), np.uint8)
    obj[20:40, 30:60] = (250, 20, 20)
    obj[28:32, 43:47] = (20, 250, 20)  # a green spot to follow
    mask = np.zeros(size, bool)
    mask[20:40, 30:60] = True
    bg = np.full((*size, 3), 40, np.uint8)
    assert paste_affine(rng, np.zeros(size, bool), size) is None  # nothing to paste
    made = followed = 0
    for _ in range(20):
        comp = make_composite(rng, obj, mask, bg, size, n_views=3)
        if comp is None:
            continue
        made += 1
        images, masks, affines = comp
        assert len(images) == len(masks) == len(affines) == 3
        np.testing.assert_allclose(affines[0], np.eye(3)[:2])
        green = [(im[..., 1].astype(int) - im[..., 0].astype(int) > 100) for im in images]
        for img, target, g in zip(images, masks, green):
            assert img.shape == (*size, 3) and target.shape == size and target.any()
            # The pasted object's pixels are red (or the green spot), the rest the grey background.
            obj_px = (img[..., 0].astype(int) - img[..., 1].astype(int) > 60) | g
            assert (obj_px & target).sum() / target.sum() > 0.8 and (obj_px & ~target).sum() < 0.1 * target.sum()
        if all(g.sum() >= 4 for g in green):
            # The affines carry the green spot from pseudo-frame 0 to where it is drawn in the others.
            followed += 1
            y0, x0 = np.argwhere(green[0]).mean(0)
            for v in (1, 2):
                x, y = map_point(affines[0], affines[v], (x0, y0))
                yv, xv = np.argwhere(green[v]).mean(0)
                assert abs(x - xv) < 2 and abs(y - yv) < 2
    assert made >= 5 and followed >= 5


def test_training_with_composites_caches_them(tiny_davis, tmp_path):
    root, _ = tiny_davis
    args = ["--davis-root", str(root), "--val-sequences", "b", "--steps-gaze2mask", "2", "--steps-tracker", "2",
            "--steps-egnet", "1", "--batch-size", "4", "--composites", "6", "--cache", str(tmp_path / "cache")]
    train_main(args + ["--out", str(tmp_path / "run")])
    cached = list((tmp_path / "cache").glob("composites_6x3_*.pt"))
    assert len(cached) == 1
    enc = torch.load(cached[0], weights_only=False)
    assert enc.num_frames == 6 and enc.num_views == 3 and enc.meta["sources"] == ["a"]  # validation never pasted
    assert enc.masks.shape[:2] == (6, 3) and enc.masks.any(axis=(2, 3)).all()


def test_tracker_pairs_frames_of_real_videos_only():
    """Composites' "frames" are unrelated pictures: only their pseudo-frames (views) pair up."""
    from napari_hotspot.models.backbone import FrameFeatures
    from napari_hotspot.models.training.data import EncodedSequence
    from napari_hotspot.models.training.samplers import _pick_sequence, tracker_batch

    size = (32, 32)
    feats = FrameFeatures(torch.zeros(1, 24, 8, 8), torch.zeros(1, 40, 4, 4), torch.zeros(1, 112, 2, 2),
                          torch.zeros(1, 320, 1, 1))

    def seq(name, synthetic, box):
        masks = np.zeros((20, 2, *size), bool)
        masks[:, :, box[0]:box[1], box[0]:box[1]] = True  # each sequence's object where no other's is
        return EncodedSequence(name, size, [[feats, feats] for _ in range(20)], masks,
                               np.tile(np.float32([[1, 0, 0], [0, 1, 0]]), (20, 2, 1, 1)),
                               meta={"synthetic_only": True} if synthetic else {})

    seqs = [seq("real", False, (2, 10)), seq("composites", True, (20, 30))]
    rng = np.random.default_rng(0)
    assert {_pick_sequence(seqs, rng, real_only=True).name for _ in range(50)} == {"real"}
    assert {_pick_sequence(seqs, rng).name for _ in range(50)} == {"real", "composites"}
    with pytest.raises(ValueError, match="no real video"):
        _pick_sequence(seqs[1:], rng, real_only=True)
    # Frame pairs (no synthetic samples): every target is the real sequence's object.
    *_, target, _, _ = tracker_batch(seqs, rng, batch_size=16, synthetic_rate=0.0)
    assert target[:, 0, 2:10, 2:10].all() and not target[:, 0, 20:30, 20:30].any()
    # Synthetic samples may come from either.
    *_, target, _, _ = tracker_batch(seqs, rng, batch_size=32, synthetic_rate=1.0)
    assert target[:, 0, 20:30, 20:30].any()


def test_random_affine_rotation_range():
    from napari_hotspot.models.augment import random_affine

    def angles(max_rotation):
        rng = np.random.default_rng(0)
        out = []
        for _ in range(200):
            a = (random_affine(rng, (64, 96)) if max_rotation is None
                 else random_affine(rng, (64, 96), max_rotation=max_rotation))
            lin = a[:, :2] @ np.diag([np.sign(np.linalg.det(a[:, :2])), 1.0])  # undo the mirror flip
            out.append(abs(np.degrees(np.arctan2(lin[1, 0], lin[0, 0]))))
        return np.array(out)

    assert angles(None).max() < 25  # small rotations when not asked otherwise
    assert angles(180).max() > 150  # upside-down views when asked for


def test_composite_views_below_two_cannot_train_the_tracker(tiny_davis, tmp_path):
    root, _ = tiny_davis
    with pytest.raises(SystemExit):
        train_main(["--davis-root", str(root), "--head", "tracker", "--composites", "4", "--composite-views", "1",
                    "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run")])
    assert not (tmp_path / "cache").exists()  # refused before any encoding


def test_online_gaze2mask_training_encodes_only_the_held_out_frames(tiny_davis, tmp_path):
    root, _ = tiny_davis
    out = tmp_path / "run"
    train_main(["--davis-root", str(root), "--head", "gaze2mask", "--online", "--val-sequences", "b",
                "--steps-gaze2mask", "3", "--batch-size", "2", "--single-click-rate", "0.5", "--aug-strength", "1.5",
                "--cache", str(tmp_path / "cache"), "--out", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert report["gaze2mask_steps"] == 3 and set(report["validation"]["b"]) == {"click_J"}
    # No cached training views: only the held-out sequence, encoded once without views, to score it.
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["b_v0_512.pt"]
    assert ModelBundle.load(out / "weights.pt").meta["train_sequences"] == ["a"]
    # With nothing held out (the shipped weights' setting) nothing is encoded ahead at all.
    train_main(["--davis-root", str(root), "--head", "gaze2mask", "--online", "--steps-gaze2mask", "1",
                "--batch-size", "2", "--cache", str(tmp_path / "cache_all"), "--out", str(tmp_path / "run_all")])
    assert not list((tmp_path / "cache_all").glob("*.pt"))


@pytest.mark.parametrize("args, message", [
    (["--head", "gaze2mask", "--online", "--composites", "2"], "real sequences only"),
    (["--head", "all", "--online", "--composites", "2"], "real sequences only"),
    (["--head", "all", "--backbone", "lite2"], "trains Gaze2Mask-Net alone"),  # the others share Lite0
    (["--head", "gaze2mask", "--aug-strength", "2"], "scales the --online views"),
    (["--head", "gaze2mask", "--online", "--time-budget", "0"], "positive number of seconds"),
    (["--head", "gaze2mask", "--val-sequences", "a", "b"], "nothing is left to train on"),
    (["--sequences", "a", "nosuch"], "no sequence nosuch"),
    (["--val-sequences", "gone"], "no sequence gone"),
    (["--head", "egnet", "--fixations-root", "/nonexistent/fix"], "is not a folder"),
    (["--head", "tracker", "--init", str(DEFAULT_WEIGHTS), "--tracker-mid-channels", "48"], "trains from scratch"),
])
def test_training_option_conflicts_are_refused_clearly(tiny_davis, tmp_path, capsys, args, message):
    root, _ = tiny_davis
    with pytest.raises(SystemExit):
        train_main(["--davis-root", str(root), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "r")]
                   + args)
    assert message in capsys.readouterr().err
    assert not list((tmp_path / "cache").glob("*.pt"))  # refused before any encoding


def test_augmented_frames_keep_image_and_mask_aligned_and_streams_reproducible():
    from napari_hotspot.models.training.online import AugmentedFrames

    h, w = 64, 96
    frames = np.zeros((3, h, w, 3), np.uint8)
    masks = np.zeros((3, h, w), bool)
    masks[:, 20:44, 30:70] = True
    frames[masks] = 230  # a bright object on black
    ds = AugmentedFrames([frames], [masks], seed=3, strength=1.5, max_rotation=30, keep_original=0.0)
    samples = [s for _, s in zip(range(12), iter(ds))]
    for image, guidance, mask in samples:
        assert image.shape == (3, h, w) and guidance.shape == (3, h, w) and mask.shape == (1, h, w)
        inside, outside = image.mean(0)[mask[0] > 0], image.mean(0)[mask[0] == 0]
        # The warped mask covers the warped object: bright inside, dark outside (colour jitter aside).
        assert inside.mean() > outside.mean() + 0.8
        assert guidance.amax() > 0  # every sample has a prompt
    again = [s for _, s in zip(range(12), iter(AugmentedFrames([frames], [masks], seed=3, strength=1.5,
                                                                 max_rotation=30, keep_original=0.0)))]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) for a, b in zip(samples, again))
    other = next(iter(AugmentedFrames([frames], [masks], seed=4, keep_original=0.0)))
    assert not torch.equal(other[0], samples[0][0])


def test_single_click_prompts_are_one_positive_click_only():
    from napari_hotspot.models.training.samplers import simulate_prompt

    mask = np.zeros((64, 96), bool)
    mask[10:50, 20:80] = True
    rng = np.random.default_rng(0)
    for _ in range(10):
        g = simulate_prompt(mask, rng, mask.shape, single_click_rate=1.0)
        assert not g[1].any() and not g[2].any()  # no negative click, no box
        ys, xs = np.nonzero(g[0] > 0.5)  # one click blob (radius about 2.3 px here), inside the object
        assert len(ys) and np.ptp(xs) <= 8 and np.ptp(ys) <= 8
        assert mask[int(ys.mean()), int(xs.mean())]


def test_one_cycle_follows_torchs_one_cycle_lr_and_the_time_budget(monkeypatch):
    from napari_hotspot.models.training import train as train_mod
    from napari_hotspot.models.training.train import fit, one_cycle

    # The time-budget schedule is torch's OneCycleLR (rate and Adam beta1) as a function of progress.
    probe = torch.nn.Linear(1, 1)
    opt = torch.optim.AdamW(probe.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=1000, pct_start=0.1)
    for i in range(1000):
        # (torch counts phase ends as step N-1, progress here runs to 1: they differ by under 1.5%)
        rate, beta1 = one_cycle(i / 1000, 2e-3)
        assert rate == pytest.approx(opt.param_groups[0]["lr"], abs=0.015 * 2e-3)
        assert beta1 == pytest.approx(opt.param_groups[0]["betas"][0], abs=2e-3)
        opt.step()
        sched.step()
    assert one_cycle(1.0, 1.0)[0] == pytest.approx(1 / 25 / 1e4)

    model = torch.nn.Linear(2, 1)
    before = model.weight.detach().clone()

    def batch_loss():
        return model(torch.ones(4, 2)).pow(2).mean()

    # A budget already spent stops before the first step and leaves the model as it was.
    assert fit(model, 5, 1e-2, "cpu", lambda m: None, "toy", batch_loss, time_budget=1e-9) == 0
    assert torch.equal(model.weight, before)
    assert fit(model, 5, 1e-2, "cpu", lambda m: None, "toy", batch_loss, time_budget=60.0) == 5
    assert fit(model, 5, 1e-2, "cpu", lambda m: None, "toy", batch_loss) == 5
    assert not torch.equal(model.weight, before)
    with pytest.raises(ValueError, match="positive"):
        fit(model, 5, 1e-2, "cpu", lambda m: None, "toy", batch_loss, time_budget=0)

    # A clock that advances 1 s per reading: a 10 s budget ends a 100-step run about a tenth of the way.
    clock = iter(range(10_000))
    monkeypatch.setattr(train_mod.time, "perf_counter", lambda: float(next(clock)))
    logged = []
    steps = fit(model, 100, 1e-2, "cpu", logged.append, "toy", batch_loss, time_budget=10.0)
    assert 3 <= steps <= 10 and any("time budget of 10s reached" in m for m in logged)


def test_merge_keeps_each_heads_run_report_also_from_a_merged_file(tmp_path):
    from napari_hotspot.models.heads import Gaze2MaskNet, WCSTracker
    from napari_hotspot.models.training.merge import merge
    from napari_hotspot.models.training.train import save_weights

    heads = {"egnet": EGNet(), "gaze2mask": Gaze2MaskNet(), "tracker": WCSTracker()}
    for name in heads:
        save_weights(tmp_path / f"{name}.pt", heads, {"command": f"train {name}"})
    merge({n: tmp_path / f"{n}.pt" for n in heads}, tmp_path / "merged.pt")
    new_g2m = Gaze2MaskNet()
    torch.nn.init.constant_(new_g2m.out.bias, 0.5)
    save_weights(tmp_path / "new.pt", {**heads, "gaze2mask": new_g2m}, {"command": "train again"})
    meta = merge({"egnet": tmp_path / "merged.pt", "gaze2mask": tmp_path / "new.pt",
                  "tracker": tmp_path / "merged.pt"}, tmp_path / "merged2.pt")
    assert {n: m["command"] for n, m in meta["runs"].items()} == {
        "egnet": "train egnet", "gaze2mask": "train again", "tracker": "train tracker"}
    bundle = ModelBundle.load(tmp_path / "merged2.pt")
    assert float(bundle.gaze2mask.out.bias) == 0.5


def test_merge_averages_several_trackers_and_keeps_what_each_trained_on(tmp_path, capsys):
    from napari_hotspot.models.heads import Gaze2MaskNet, WCSTracker
    from napari_hotspot.models.training.merge import main as merge_main
    from napari_hotspot.models.training.train import save_weights

    files = []
    for i, (bias, seqs) in enumerate(((0.2, ["bear"]), (0.6, ["bear", "boat"]))):
        tracker = WCSTracker()
        for param in tracker.parameters():
            torch.nn.init.constant_(param, bias)
        save_weights(tmp_path / f"t{i}.pt", {"egnet": EGNet(), "gaze2mask": Gaze2MaskNet(), "tracker": tracker},
                     {"command": f"round {i}", "train_sequences": seqs})
        files.append(str(tmp_path / f"t{i}.pt"))
    merge_main(["--egnet", files[0], "--gaze2mask", files[0], "--tracker", *files, "--out", str(tmp_path / "avg.pt")])
    bundle = ModelBundle.load(tmp_path / "avg.pt")
    values = torch.cat([p.float().flatten() for p in bundle.tracker.parameters()])
    assert torch.allclose(values, torch.full_like(values, 0.4), atol=1e-3)  # stored in the files' dtype
    assert [r["command"] for r in bundle.meta["runs"]["tracker"]["averaged"]] == ["round 0", "round 1"]
    assert bundle.trained_sequences() == {"bear", "boat"}
    slim = WCSTracker(fine_channels=16)
    save_weights(tmp_path / "slim.pt", {"egnet": EGNet(), "gaze2mask": Gaze2MaskNet(), "tracker": slim}, {})
    save_weights(tmp_path / "no_tracker.pt", {"egnet": EGNet()}, {})
    for trackers, message in (([files[0], str(tmp_path / "slim.pt")], "shapes differ"),
                              ([str(tmp_path / "no_tracker.pt")], "holds no tracker head")):
        with pytest.raises(SystemExit):  # argparse's one-line error, not a traceback
            merge_main(["--egnet", files[0], "--gaze2mask", files[0], "--tracker", *trackers,
                        "--out", str(tmp_path / "bad.pt")])
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad.pt").exists()


def test_partial_masks_are_parts_around_the_click_never_empty():
    from napari_hotspot.models.training.samplers import partial_mask

    mask = np.zeros((72, 128), bool)
    mask[10:60, 30:90] = True
    rng = np.random.default_rng(0)
    covered, outside = [], []
    for _ in range(200):
        part = partial_mask(mask, rng, (60.0, 35.0))
        assert part.any()
        covered.append((part & mask).sum() / mask.sum())
        outside.append((part & ~mask).sum())
    covered = np.array(covered)
    # Mostly strict parts of the object (what completion has to fill in), some nearly whole.
    assert np.median(covered) < 0.9 and covered.min() < 0.1 and covered.max() > 0.8
    # Background only from the seed disks and the stray blobs, not every time.
    assert 0 < np.mean(np.array(outside) > 0) < 0.6


def test_completion_samples_use_one_template_and_target_the_whole_object():
    from napari_hotspot.models.backbone import FrameFeatures
    from napari_hotspot.models.training.data import EncodedSequence
    from napari_hotspot.models.training.samplers import tracker_batch

    size = (32, 32)
    masks = np.zeros((6, 2, *size), bool)
    masks[:, :, 4:28, 6:26] = True
    frames = [[FrameFeatures(torch.full((1, 24, 8, 8), float(t)), torch.zeros(1, 40, 4, 4),
                             torch.zeros(1, 112, 2, 2), torch.zeros(1, 320, 1, 1))] * 2 for t in range(6)]
    seq = EncodedSequence("s", size, frames, masks, np.tile(np.float32([[1, 0, 0], [0, 1, 0]]), (6, 2, 1, 1)))
    rng = np.random.default_rng(1)
    feats, refs_a, refs_p, target, _, hot_valid = tracker_batch([seq], rng, batch_size=12, completion_rate=1.0)
    assert all(a is p for a, p in zip(refs_a, refs_p))  # anchor and previous: the one partial template
    assert torch.equal(target[:, 0], torch.from_numpy(masks[0, 0]).float().expand(12, *size))
    assert not hot_valid.any()
    # Template masks are parts: on average less than the object's share of the stride-8 grid.
    grid_share = float(torch.stack([r.mask.mean() for r in refs_a]).mean())
    assert grid_share < masks[0, 0].mean()


def test_part_samples_track_the_part_through_the_views_known_warps():
    """Issue 19, item 4: a part prompt's sample targets that part, moved as its view was, not the object."""
    import cv2

    from napari_hotspot.models.backbone import FrameFeatures
    from napari_hotspot.models.training.data import EncodedSequence
    from napari_hotspot.models.training.samplers import object_part, part_sample, tracker_batch

    size = (48, 64)
    # Views 1 and 2 of each frame are view 0 shifted by 6 and -4 pixels (affines map view-0 px to view px).
    affines = np.float32([[[1, 0, 0], [0, 1, 0]], [[1, 0, 6], [0, 1, 2]], [[1, 0, -4], [0, 1, 0]]])
    base = np.zeros(size, bool)
    base[8:40, 12:52] = True
    masks = np.stack([[cv2.warpAffine(base.astype(np.uint8), a, size[::-1], flags=cv2.INTER_NEAREST).astype(bool)
                       for a in affines]] * 4)
    frames = [[FrameFeatures(torch.zeros(1, 24, 12, 16), torch.zeros(1, 40, 6, 8), torch.zeros(1, 112, 3, 4),
                             torch.zeros(1, 320, 2, 2))] * 3 for _ in range(4)]
    seq = EncodedSequence("s", size, frames, masks, np.tile(affines, (4, 1, 1, 1)))
    rng = np.random.default_rng(3)
    samples = [part_sample([seq], rng) for _ in range(30)]
    samples = [x for x in samples if x is not None]  # None: the cut left no part (the batch draws a pair then)
    assert len(samples) >= 15
    for _, ref, _, target, (hx, hy), valid in samples:
        tgt = target.numpy() > 0.5
        assert valid and 0.05 < tgt.sum() / base.sum() < 0.85  # a part, not the whole object
        # the target is the anchor's part moved by one of the two shifts, inside the object there
        anchor_part = ref.mask_map[0, 0].numpy() > 0.5
        assert any(((cv2.warpAffine(tgt.astype(np.uint8), np.float32([[1, 0, -dx], [0, 1, -dy]]), size[::-1],
                                    flags=cv2.INTER_NEAREST) > 0) & base).sum() >= 0.9 * tgt.sum()
                   for dx, dy in ((6, 2), (-4, 0)))
        assert tgt[int(hy), int(hx)]  # the hotspot target lies on the part
        assert anchor_part.sum() < base.sum() / 64  # the template is a part too (stride-8 cells)
    # In a batch, part_rate of the samples are parts (the rest whole objects of ordinary pairs).
    target = tracker_batch([seq], np.random.default_rng(4), batch_size=16, part_rate=1.0)[3]
    shares = target[:, 0].flatten(1).sum(1) / base.sum()
    assert int((shares < 0.85).sum()) >= 8
    # A cut that leaves (nearly) the whole object is not a part.
    assert all(object_part(base, np.random.default_rng(k), (32.0, 24.0)) is None or
               object_part(base, np.random.default_rng(k), (32.0, 24.0)).sum() <= 0.8 * base.sum() for k in range(20))


def test_training_inputs_that_do_not_exist_are_refused_clearly(tiny_davis, tmp_path, capsys):
    from napari_hotspot.cli import main as cli_main

    root, _ = tiny_davis
    with pytest.raises(SystemExit):
        cli_main(["train", "--davis-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")])
    assert "expected a DAVIS-layout root" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit):
        cli_main(["train", "--davis-root", str(root), "--out", str(blocker)])
    assert "is a file" in capsys.readouterr().err
    # A weights file that is not one, through the CLI: one line, exit 2.
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    assert cli_main(["train", "--davis-root", str(root), "--head", "egnet", "--steps-egnet", "1", "--init", str(bad),
                     "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "r")]) == 2
    assert "not a readable napari-hotspot weights file" in capsys.readouterr().err
