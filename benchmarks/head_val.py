"""Head-level tracker J on held-out training sequences: `train.validate_tracker` (the training report's
number: frame-0 mask of view 0, no adaptation, no session rules, 288x512) for several weights files on
the same feature cache, so that runs trained elsewhere (a lent GPU's cache of a JPEG copy) are compared
on this machine's cache of the original frames.

    python benchmarks/head_val.py --cache runs/cache --sequences boat dog-agility hockey mallard-water rollerblade swing \
        --weights benchmarks/weights/wcs_lite0_split.pt runs/gpu_r4/m_split_a.pt

The cache is `napari-hotspot train`'s (`<sequence>_v2_512.pt`); a sequence not in it is encoded first
from --davis-root.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from napari_hotspot.data_paths import davis_train_root
from napari_hotspot.models.heads import WCSTracker
from napari_hotspot.models.training.data import build_cache
from napari_hotspot.models.training.train import validate_tracker
from napari_hotspot.models.weights import load_heads_into, read_weights


def head_level_args(description: str) -> argparse.ArgumentParser:
    """The arguments of the head-level benchmarks (this one, bench_recovery.py): weights files and
    held-out training sequences read from the training cache."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--weights", type=Path, nargs="+", required=True)
    ap.add_argument("--sequences", nargs="+", required=True)
    ap.add_argument("--cache", type=Path, default=Path("runs/cache"))
    ap.add_argument("--davis-root", type=Path, default=None, help="default: $NAPARI_HOTSPOT_DATA/davis2016-train")
    ap.add_argument("--threads", type=int, default=1)
    return ap


def held_out_sequences(a: argparse.Namespace) -> list:
    """The cached sequences the arguments name (encoded first where the cache lacks them), with torch
    set to the arguments' thread count."""
    torch.set_num_threads(a.threads)
    return build_cache(a.davis_root or davis_train_root(), a.cache, a.sequences, n_views=2, log=lambda m: None)


def load_tracker(path: Path) -> WCSTracker:
    blob = read_weights(path)
    tracker = WCSTracker.for_state(blob["heads"].get("tracker"))
    load_heads_into({"tracker": tracker}, path, blob=blob)
    return tracker.eval()


def main(argv=None):
    a = head_level_args(__doc__.split("\n")[0]).parse_args(argv)
    seqs = held_out_sequences(a)
    print("| weights | mean J | " + " | ".join(a.sequences) + " |")
    print("|---|---|" + "---|" * len(a.sequences))
    for path in a.weights:
        js = [validate_tracker(load_tracker(path), s)["J"] for s in seqs]
        print(f"| {path} | {np.mean(js):.4f} | " + " | ".join(f"{j:.3f}" for j in js) + " |", flush=True)


if __name__ == "__main__":
    main()
