"""Does the tracker regrow an object after losing part of it? Head-level, on held-out training sequences.

    python benchmarks/bench_recovery.py --weights benchmarks/weights/wcs_lite0_split.pt [more weights] \
        --sequences boat dog-agility hockey mallard-water rollerblade swing

A tracker that keeps a part prompt a part must still complete a mask that lost part of its object
(smoke, occlusion, motion blur): the anchor says what the object is. Each trial tracks a sequence from
its frame-0 mask (as `train.validate_tracker`: the tracker head alone on the training cache's view 0,
no adaptation or session rules) and, at frame k, replaces the previous-frame template by a fragment of
the true mask (the object on one side of a line through its centroid, 20-50% of it; for
`--loss-frames` frames in a row, each frame's true mask cut by the same line), then tracks on.
Reported per weights file: mean J over the 10 frames after k with the fragment and without it (the
same run, unharmed), and the share of the object the mask covers 10 frames later. Trials: k at a third
and at two thirds of each sequence, two cuts each (fixed seed). The twenty-second session's part
round passed the validation split's other checks and then lost drift-straight on the test set this way
(docs/benchmarks.md, "Part samples in the tracker's training"); this is the check that was missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from napari_hotspot.evaluation.davis import jaccard
from napari_hotspot.mask_geometry import side_of_line
from napari_hotspot.models.tracking import deepest_point, make_reference, track_step

sys.path.insert(0, str(Path(__file__).parent))
from head_val import head_level_args, held_out_sequences, load_tracker  # noqa: E402

AFTER = 10  # frames scored after the loss


def cut(mask: np.ndarray, theta: float, offset: float) -> np.ndarray:
    """The object on one side of a line through its centroid (offset in units of sqrt(area))."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return mask
    return mask & side_of_line(mask.shape, (xs.mean(), ys.mean()), theta, offset * np.sqrt(len(ys)))


def fragment_cut(mask: np.ndarray, rng) -> tuple[float, float] | None:
    """A line that leaves 20-50% of the object (None if no drawn line does)."""
    if mask.sum() < 50:
        return None
    for _ in range(20):
        theta, offset = rng.uniform(0, 2 * np.pi), rng.uniform(-0.3, 0.0)
        if 0.2 <= cut(mask, theta, offset).sum() / mask.sum() <= 0.5:
            return theta, offset
    return None


@torch.no_grad()
def run(tracker, seq, k: int, line: tuple[float, float] | None, loss_frames: int = 1) -> tuple[list[float], float]:
    """J of the AFTER frames after the loss, and the covered share of the object at the last; from frame
    k on, for `loss_frames` frames, the previous template is the true mask cut by `line` (a part lost
    for that long; None: the unharmed run)."""
    m0 = seq.masks[0, 0]
    anchor = make_reference(seq.feats[0][0].to(torch.float32), torch.from_numpy(m0.astype(np.float32)), deepest_point(m0))
    prev, js, covered = anchor, [], 0.0
    end = k + loss_frames - 1  # the last frame whose template is cut
    for t in range(1, min(seq.num_frames, end + AFTER + 1)):
        r = track_step(tracker, seq.feats[t][0], anchor, prev, seq.size)
        prev = r.reference
        if k <= t <= end and line is not None:
            part = cut(seq.masks[t, 0], *line)
            if part.any():
                feats = seq.feats[t][0].to(torch.float32)
                prev = make_reference(feats, torch.from_numpy(part.astype(np.float32)), deepest_point(part))
        if t > end:
            pred, gt = (r.mask_prob > 0.5).numpy(), seq.masks[t, 0]
            js.append(jaccard(pred, gt))
            covered = float((pred & gt).sum() / max(1, gt.sum()))
    return js, covered


def main(argv=None):
    ap = head_level_args(__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--loss-frames", type=int, default=1, help="frames in a row whose template is the fragment")
    a = ap.parse_args(argv)
    seqs = held_out_sequences(a)
    rng = np.random.default_rng(a.seed)
    trials = []  # (sequence, k, fragment)
    for seq in seqs:
        for k in (seq.num_frames // 3, 2 * seq.num_frames // 3):
            if k + a.loss_frames - 1 + AFTER >= seq.num_frames:
                continue
            for _ in range(2):
                line = fragment_cut(seq.masks[k, 0], rng)
                if line is not None:
                    trials.append((seq, k, line))
    print(f"{len(trials)} trials on {len(seqs)} sequences; part lost for {a.loss_frames} frame(s), "
          f"J over the {AFTER} frames after\n")
    print("| weights | J, unharmed | J, after losing part | covered share 10 frames later | worst trial (sequence, frame k) |")
    print("|---|---|---|---|---|")
    for path in a.weights:
        tracker = load_tracker(path)
        base, hurt, cov, worst = [], [], [], (2.0, "")
        unharmed = {}  # (sequence, k) -> the unharmed run's J: both cuts at k share it
        for seq, k, line in trials:
            if (seq.name, k) not in unharmed:
                unharmed[seq.name, k] = run(tracker, seq, k, None, a.loss_frames)[0]
            j0 = unharmed[seq.name, k]
            j1, c = run(tracker, seq, k, line, a.loss_frames)
            base.append(np.mean(j0))
            hurt.append(np.mean(j1))
            cov.append(c)
            if np.mean(j1) - np.mean(j0) < worst[0]:
                worst = (np.mean(j1) - np.mean(j0), f"{seq.name} {k}")
        print(f"| {path} | {np.mean(base):.3f} | {np.mean(hurt):.3f} | {np.mean(cov):.2f} | "
              f"{worst[0]:+.3f} ({worst[1]}) |", flush=True)


if __name__ == "__main__":
    main()
