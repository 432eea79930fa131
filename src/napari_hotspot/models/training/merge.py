"""Combine heads trained by separate runs into one weights file (meta keeps each run's report).

    python -m napari_hotspot.models.training.merge --egnet A/weights.pt --gaze2mask B/weights.pt \
        --tracker C/weights.pt --out src/napari_hotspot/models/weights/wcs_lite0.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .data import torch_save_atomic


def merge(parts: dict[str, Path], out: Path) -> dict:
    heads, meta = {}, {"runs": {}}
    for name, path in parts.items():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        heads[name] = blob["heads"][name]
        part_meta = blob.get("meta", {})
        # A head taken from an already merged file keeps its own run's report, not the whole file's.
        meta["runs"][name] = part_meta["runs"].get(name, {}) if "runs" in part_meta else part_meta
    torch_save_atomic({"heads": heads, "meta": meta}, out)
    return meta


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("egnet", "gaze2mask", "tracker"):
        ap.add_argument(f"--{name}", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    merge({"egnet": a.egnet, "gaze2mask": a.gaze2mask, "tracker": a.tracker}, a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
