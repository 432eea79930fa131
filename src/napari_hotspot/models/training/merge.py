"""Combine heads trained by separate runs into one weights file (meta keeps each run's report).

    python -m napari_hotspot.models.training.merge --egnet A/weights.pt --gaze2mask B/weights.pt \
        --tracker C/weights.pt [D/weights.pt ...] --out src/napari_hotspot/models/weights/wcs_lite0.pt

Several --tracker files are averaged parameter by parameter (they must share a shape: runs fine-tuned
from one file, e.g. the third training round and a fourth from it; measured, not shipped:
docs/benchmarks.md, "Averaging two training rounds").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ...errors import WeightsError
from ..weights import read_weights
from .data import torch_save_atomic


def merge(parts: dict[str, Path | list[Path]], out: Path) -> dict:
    """parts: per head the file to take it from, or a list of files whose heads are averaged."""
    heads, meta = {}, {"runs": {}}
    for name, paths in parts.items():
        paths = paths if isinstance(paths, (list, tuple)) else [paths]
        taken = [_head_and_report(Path(p), name) for p in paths]
        if len(taken) == 1:
            heads[name], meta["runs"][name] = taken[0]
            continue
        heads[name] = average_states([state for state, _ in taken], paths)
        reports = [report for _, report in taken]
        meta["runs"][name] = {  # what any of the averaged runs trained on, for `seen_in_training_note`
            "averaged": reports,
            "train_sequences": sorted({s for r in reports for s in r.get("train_sequences") or []})}
    torch_save_atomic({"heads": heads, "meta": meta}, out)
    return meta


def _head_and_report(path: Path, name: str) -> tuple[dict, dict]:
    blob = read_weights(path)  # a clear error for a missing, damaged or foreign file
    if name not in blob["heads"]:
        raise WeightsError(f"{path} holds no {name} head (it has {', '.join(sorted(blob['heads'])) or 'none'})")
    part_meta = blob.get("meta", {})
    # A head taken from an already merged file keeps its own run's report, not the whole file's.
    return blob["heads"][name], part_meta["runs"].get(name, {}) if "runs" in part_meta else part_meta


def average_states(states: list[dict], names=None) -> dict:
    """The parameter-wise mean of state dicts of one architecture (computed in float32, stored in the first
    one's dtypes; integer buffers are taken from the first)."""
    names = names or [f"state {i}" for i in range(len(states))]
    first = states[0]
    for other, name in zip(states[1:], names[1:]):
        if other.keys() != first.keys() or any(other[k].shape != v.shape for k, v in first.items()):
            raise ValueError(f"{name}: its parameters' names or shapes differ from {names[0]}'s; only files "
                             "of one architecture can be averaged")
    return {k: (sum(s[k].float() for s in states) / len(states)).to(v.dtype) if torch.is_floating_point(v) else v
            for k, v in first.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("egnet", "gaze2mask"):
        ap.add_argument(f"--{name}", type=Path, required=True)
    ap.add_argument("--tracker", type=Path, nargs="+", required=True,
                    help="the tracker's file, or several whose trackers are averaged")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    try:
        merge({"egnet": a.egnet, "gaze2mask": a.gaze2mask, "tracker": a.tracker}, a.out)
    except (WeightsError, FileNotFoundError, ValueError) as err:  # ValueError: trackers of two shapes
        ap.error(str(err))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
