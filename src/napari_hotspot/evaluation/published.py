"""Published DAVIS-2016 region similarity J of other methods on the validation sequences the project
is scored on (davis2016-dev), copied from the data README (the DAVIS benchmark's raw per-sequence
evaluation files, github:davisvideochallenge/davisvideochallenge.github.io, json_data/raw_eval/2016/;
frames without the first and the last, as `evaluation.davis` scores them). STM, OSVOS, RGMP and
SiamMask start from the first frame's mask (SiamMask: its box); MATNet and AGS are automatic.
All trained on the 30 DAVIS-2016 training sequences (most on more data besides)."""

from __future__ import annotations

from collections.abc import Sequence

METHODS = ("STM", "OSVOS", "RGMP", "SiamMask", "MATNet", "AGS")

PUBLISHED_J = {
    "blackswan": (0.961, 0.942, 0.960, 0.799, 0.943, 0.944),
    "breakdance": (0.896, 0.708, 0.592, 0.458, 0.731, 0.607),
    "car-shadow": (0.968, 0.937, 0.963, 0.929, 0.951, 0.918),
    "cows": (0.954, 0.946, 0.937, 0.833, 0.917, 0.922),
    "dog": (0.951, 0.907, 0.955, 0.862, 0.929, 0.936),
    "drift-straight": (0.944, 0.676, 0.913, 0.880, 0.915, 0.900),
    "goat": (0.909, 0.880, 0.864, 0.788, 0.846, 0.847),
    "horsejump-high": (0.897, 0.780, 0.869, 0.645, 0.849, 0.840),
    "kite-surf": (0.733, 0.686, 0.615, 0.404, 0.686, 0.687),
    "motocross-jump": (0.894, 0.816, 0.780, 0.704, 0.721, 0.819),
    "parkour": (0.945, 0.856, 0.918, 0.798, 0.915, 0.908),
    "scooter-black": (0.865, 0.711, 0.906, 0.723, 0.858, 0.751),
}


def comparison_rows(rows: Sequence[dict]) -> list[dict]:
    """Our J per sequence (mean over its objects) beside the published J, for the sequences that have
    published numbers; empty when none has."""
    ours: dict[str, list[float]] = {}
    for row in rows:
        if row.get("sequence") in PUBLISHED_J:
            ours.setdefault(row["sequence"], []).append(float(row["J_mean"]))
    return [{"sequence": seq, "J (this run)": sum(js) / len(js), **dict(zip(METHODS, PUBLISHED_J[seq]))}
            for seq, js in ours.items()]
