"""One markdown table of several `napari-hotspot eval` runs: J / F per sequence and prompt, the mean, and
the hotspot-inside rate, with the published methods' J beside them where the sequences have published
numbers (evaluation/published.py).

    python benchmarks/prompt_table.py runs/davis_train/dev mask click box auto
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from napari_hotspot.evaluation.published import METHODS, PUBLISHED_J


def per_sequence(run: Path) -> dict[str, dict]:
    rows: dict[str, list[dict]] = {}
    with open(run / "results.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            rows.setdefault(r["sequence"], []).append(r)

    def mean(rs, key):
        vals = [float(r[key]) for r in rs if r.get(key) not in (None, "")]
        vals = [v for v in vals if math.isfinite(v)]
        return sum(vals) / len(vals) if vals else float("nan")

    return {s: {k: mean(rs, k) for k in ("J_mean", "F_mean", "hs_inside_rate", "fps", "encoder_ms")}
            for s, rs in rows.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path, help="folder holding one eval output folder per run")
    ap.add_argument("runs", nargs="+", help="run folder names (e.g. mask click box auto)")
    args = ap.parse_args(argv)
    data = {run: per_sequence(args.folder / run) for run in args.runs}
    seqs = sorted(set().union(*(d.keys() for d in data.values())))
    published = all(s in PUBLISHED_J for s in seqs)
    head = ["sequence", *(f"{r} J / F" for r in args.runs)] + (list(METHODS[:4]) if published else [])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for s in seqs:
        cells = [s] + [f"{data[r][s]['J_mean']:.3f} / {data[r][s]['F_mean']:.3f}" if s in data[r] else ""
                       for r in args.runs]
        if published:
            cells += [f"{v:.3f}" for v in PUBLISHED_J[s][:4]]
        print("| " + " | ".join(cells) + " |")

    def avg(run, key):
        vals = [v[key] for v in data[run].values() if math.isfinite(v[key])]
        return sum(vals) / len(vals) if vals else float("nan")

    cells = ["**mean**"] + [f"**{avg(r, 'J_mean'):.3f} / {avg(r, 'F_mean'):.3f}**" for r in args.runs]
    if published:
        cells += [f"**{sum(PUBLISHED_J[s][i] for s in seqs) / len(seqs):.3f}**" for i in range(4)]
    print("| " + " | ".join(cells) + " |")
    cells = ["hotspot inside the true mask"] + [f"{avg(r, 'hs_inside_rate'):.3f}" for r in args.runs]
    print("| " + " | ".join(cells) + (" |" + " |" * 4 if published else " |"))
    cells = ["fps (encoder ms / frame)"] + [f"{avg(r, 'fps'):.1f} ({avg(r, 'encoder_ms'):.0f})" for r in args.runs]
    print("| " + " | ".join(cells) + (" |" + " |" * 4 if published else " |"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
