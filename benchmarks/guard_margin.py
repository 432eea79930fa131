"""The adaptation guard at any margin, from two eval runs: one without adaptation (`--adapt 0`) and one
with it and the guard off (`--no-adapt-guard`). Both record, per sequence, the guard's round-trip IoUs
(`adapt_rt_iou`, `base_rt_iou` in results.csv); with the guard a sequence scores the adapted run's J
where adapted >= base - margin, else the run without adaptation's (the base tracker tracks then, and
every step before it is the same).

    python benchmarks/guard_margin.py runs/davis_train/split/mask_adapt0 runs/davis_train/split/mask_noguard

Prints, per margin, mean J without adaptation, with it unguarded and guarded, the worst per-sequence
change against no adaptation, and how many sequences keep their adaptation; then the per-sequence table
at the session's ADAPT_GUARD_MARGIN."""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

MARGINS = (-0.05, -0.02, 0.0, 0.02, 0.05, 0.1, 1.0)


def read_rows(run: Path) -> dict[tuple[str, str], dict]:
    with open(Path(run) / "results.csv", newline="") as fh:
        return {(r["sequence"], r["object_id"]): r for r in csv.DictReader(fh)}


def guarded(no_adapt: dict, adapted: dict, margin: float) -> dict[tuple[str, str], tuple[float, bool]]:
    """Per (sequence, object): the guard's J at `margin` and whether it kept the adaptation."""
    out = {}
    for key, a in adapted.items():
        rt_a, rt_b = float(a["adapt_rt_iou"] or "nan"), float(a["base_rt_iou"] or "nan")
        kept = not (math.isnan(rt_a) or math.isnan(rt_b)) and rt_a >= rt_b - margin
        out[key] = (float(a["J_mean"]) if kept else float(no_adapt[key]["J_mean"]), kept)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("no_adapt", type=Path, help="eval --adapt 0 output folder")
    ap.add_argument("adapted", type=Path, help="eval --no-adapt-guard output folder (default budget)")
    args = ap.parse_args(argv)
    no_adapt, adapted = read_rows(args.no_adapt), read_rows(args.adapted)
    if set(no_adapt) != set(adapted):
        ap.error("the two runs scored different sequences")
    keys = sorted(adapted)
    j0 = {k: float(no_adapt[k]["J_mean"]) for k in keys}
    ja = {k: float(adapted[k]["J_mean"]) for k in keys}
    mean = lambda d: sum(d[k] for k in keys) / len(keys)  # noqa: E731
    print(f"{len(keys)} objects; J without adaptation {mean(j0):.3f}, adapted unguarded {mean(ja):.3f} "
          f"(worst change {min(ja[k] - j0[k] for k in keys):+.3f})\n")
    print("| margin | guarded J | change vs no adaptation | worst sequence change | adaptations kept |")
    print("|---|---|---|---|---|")
    for m in MARGINS:
        g = guarded(no_adapt, adapted, m)
        jg = {k: g[k][0] for k in keys}
        print(f"| {m:g} | {mean(jg):.3f} | {mean(jg) - mean(j0):+.3f} | {min(jg[k] - j0[k] for k in keys):+.3f} | "
              f"{sum(g[k][1] for k in keys)} / {len(keys)} |")
    from napari_hotspot.session import ADAPT_GUARD_MARGIN

    g = guarded(no_adapt, adapted, ADAPT_GUARD_MARGIN)
    print(f"\nPer sequence at the session's margin {ADAPT_GUARD_MARGIN:g}:\n")
    print("| sequence | J, adapt 0 | J, adapted | round trip adapted / base | kept | J, guarded | change |")
    print("|---|---|---|---|---|---|---|")
    for k in keys:
        a = adapted[k]
        print(f"| {k[0]} | {j0[k]:.3f} | {ja[k]:.3f} | {float(a['adapt_rt_iou']):.3f} / {float(a['base_rt_iou']):.3f} | "
              f"{'yes' if g[k][1] else 'no'} | {g[k][0]:.3f} | {g[k][0] - j0[k]:+.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
