"""Where one tracking step's time goes: encoder, matching keys, one weighted correlation, the decoder,
and the whole `track_step`, on a random 480p frame at a working size (ms, mean of 10 after warm-up).

    python benchmarks/profile_track_step.py [--long-side 448]        # this CPU's inference dtype
    NAPARI_HOTSPOT_FP32=1 python benchmarks/profile_track_step.py     # float32 everywhere
    python benchmarks/profile_track_step.py --widths 48/16 32/16      # + slimmer decoders, speed only

`--widths MID/FINE ...` adds the tracker decoder as a sweep's tracking thread runs it (one thread, the
inference dtype, channels-last, the whole frame) for the shipped widths and for decoders whose stride-16
and stride-8 blocks have MID channels and stride-4 block FINE (`WCSTracker(fine_channels, mid_channels)`),
with random weights: what a slimmer decoder would save, before anyone trains one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_hotspot.models import tracking
from napari_hotspot.models.backbone import frame_to_tensor
from napari_hotspot.models.heads import WCSTracker, matching_keys, weighted_correlation
from napari_hotspot.models.precision import inference_autocast, inference_dtype
from napari_hotspot.models.resolution import DEFAULT_LONG_SIDE, working_size
from napari_hotspot.models.weights import ModelBundle

sys.path.insert(0, str(Path(__file__).parent))
from bench_track import machine  # noqa: E402


def mean_ms(fn, n: int = 10) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return 1000 * (time.perf_counter() - t0) / n


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--long-side", type=int, default=DEFAULT_LONG_SIDE)
    ap.add_argument("--widths", nargs="*", default=[], metavar="MID/FINE",
                    help="also time decoders of these widths (random weights), one thread, as a sweep runs them")
    args = ap.parse_args(argv)
    widths = []
    for w in args.widths:
        try:
            mid, fine = (int(v) for v in w.split("/"))
        except ValueError:
            ap.error(f"--widths takes MID/FINE channel counts such as 48/16, not {w!r}")
        widths.append((mid, fine))
    models = ModelBundle.load()
    size = working_size(480, 854, args.long_side)
    rng = np.random.default_rng(0)
    x = frame_to_tensor(rng.integers(0, 255, (480, 854, 3), dtype=np.uint8), size)
    mask = torch.zeros(size)
    mask[size[0] // 3 : 2 * size[0] // 3, size[1] // 3 : size[1] // 2] = 1
    with torch.no_grad():
        feats = models.encoder(x)
        ref = tracking.make_reference(feats, mask, (size[1] * 0.4, size[0] * 0.5))
        prev = tracking.make_reference(feats, mask, (size[1] * 0.4, size[0] * 0.5))  # another template
        keys = matching_keys(feats)
        corr = tracking.correlation_input(keys, ref, prev)
        rows = {
            "encoder": mean_ms(lambda: models.encoder(x)),
            "encoder to s16 (a sweep's pass)": mean_ms(lambda: models.encoder(x, upto="s16")),
            "matching keys": mean_ms(lambda: matching_keys(feats)),
            # a previous-frame template's: its ordered keys made afresh, as every frame
            "one weighted correlation": mean_ms(lambda: weighted_correlation(keys, prev.keys, prev.mask, prev.hotspot,
                                                                             weight=prev.weight)),
            "tracker decoder": mean_ms(lambda: models.tracker(feats, corr, ref.mask_map)),
            "track_step (2 correlations + decoder + hotspot + confidence)":
                mean_ms(lambda: tracking.track_step(models.tracker, feats, ref, prev, size)),
        }
        if widths:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # the tracking thread's share while the encoding thread runs
            try:
                shipped = (models.tracker.mid_channels, models.tracker.fine_channels)
                for mid, fine in [shipped] + widths:
                    dec = models.tracker if (mid, fine) == shipped else \
                        WCSTracker(fine_channels=fine, mid_channels=mid).eval().to(memory_format=torch.channels_last)
                    name = "shipped" if (mid, fine) == shipped else "random weights"
                    n_par = sum(p.numel() for p in dec.parameters()) / 1e6

                    def run(dec=dec):
                        with inference_autocast():
                            dec(feats, corr, ref.mask_map)

                    rows[f"tracker decoder {mid}/{fine} ({name}, {n_par:.2f} M parameters), one thread"] = mean_ms(run)
            finally:
                torch.set_num_threads(threads)
    print(f"Command: `python benchmarks/{Path(__file__).name} {' '.join(argv or sys.argv[1:])}`  ")
    print(f"Working size {size[0]}x{size[1]}, inference dtype {inference_dtype()}  ")
    print(f"Machine: {machine()}\n")
    print("| part | ms |\n|---|---|")
    for k, v in rows.items():
        print(f"| {k} | {v:.1f} |")


if __name__ == "__main__":
    main()
