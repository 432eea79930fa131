"""Copy a DAVIS-layout root at the networks' training size (every frame resized to --size, default
512x288: DAVIS 480p's working size at long side 512; JPEG quality 88), small enough to travel to a
borrowed GPU machine (12 sequences: about 35 MB). Frames are area-averaged and masks
nearest-neighbour resized, as training/data.py resizes them, so training reads the copy as it would
the original.

    python scripts/make_small_davis.py ../shared/data/davis2016-dev .devcarry/davis
"""

import argparse
from pathlib import Path

import cv2

from napari_hotspot.data_paths import davis_resolution


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--size", default="512x288", help="WxH of the copy (default 512x288, DAVIS 480p's working size)")
    ap.add_argument("--quality", type=int, default=88)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    res = davis_resolution(a.src)  # the copy keeps the source's folder name (360p for davis2016-train)
    seqs = sorted(p for p in (a.src / "JPEGImages" / res).iterdir() if p.is_dir())
    if not seqs:
        raise SystemExit(f"no sequences under {a.src / 'JPEGImages' / res}")
    for seq in seqs:
        for kind in ("JPEGImages", "Annotations"):
            (a.dst / kind / res / seq.name).mkdir(parents=True, exist_ok=True)
        for p in sorted(seq.glob("*.jpg")):
            img = cv2.imread(str(p))
            if img is None:
                raise SystemExit(f"unreadable frame {p}")
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(a.dst / "JPEGImages" / res / seq.name / p.name), img, [cv2.IMWRITE_JPEG_QUALITY, a.quality])
            mask = cv2.imread(str(a.src / "Annotations" / res / seq.name / (p.stem + ".png")), cv2.IMREAD_GRAYSCALE)
            if mask is None:
                raise SystemExit(f"missing or unreadable mask for {p}")
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(a.dst / "Annotations" / res / seq.name / (p.stem + ".png")), mask)
    print(f"wrote {len(seqs)} sequences to {a.dst}")


if __name__ == "__main__":
    main()
