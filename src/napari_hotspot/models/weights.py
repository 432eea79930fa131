"""The shipped weights: where they live, how they load into the heads, and their metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import WeightsError
from ..fileio import damaged_zip_member
from .allocator import keep_freed_memory
from .backbone import Encoder
from .heads import EGNet, Gaze2MaskNet, WCSTracker

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_WEIGHTS = WEIGHTS_DIR / "wcs_lite0.pt"


def read_weights(path: Path) -> dict:
    """A weights file's contents ({"heads": {name: state}, "meta": ...}), or a clear error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model weights not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or pickled objects weights_only refuses
        raise WeightsError(f"{path} is not a readable napari-hotspot weights file (corrupt, truncated or "
                           f"not a torch file: {type(exc).__name__})") from exc
    damaged = damaged_zip_member(path)
    if damaged:
        raise WeightsError(f"{path} is damaged: its part {damaged!r} fails its checksum (a bad copy or disk); "
                           "copy the file again (for the shipped weights: reinstall napari-hotspot)")
    if not isinstance(blob, dict) or not isinstance(blob.get("heads"), dict):
        raise WeightsError(f"{path} is not a napari-hotspot weights file (no 'heads'): train one with "
                           "`napari-hotspot train`, or leave --weights out for the shipped weights")
    return blob


def load_heads_into(heads: dict, path: Path, partial: bool = False, blob: dict | None = None) -> dict:
    """Load the state of each head in `heads` (name -> module) from a weights file; returns its meta.
    partial: tensors whose shape differs from the module's are left as they are (a training run that
    starts a reshaped part afresh, e.g. a slimmer tracker decoder, from weights of the usual one).
    blob: the file's `read_weights` where the caller has read it already (to shape a head by it)."""
    blob = read_weights(path) if blob is None else blob
    for name, module in heads.items():
        if name in blob["heads"]:
            state = {k: v.float() for k, v in blob["heads"][name].items()}
            if partial:
                own = module.state_dict()
                state = {k: v if k in own and own[k].shape == v.shape else own[k] for k, v in state.items()
                         if k in own}
            try:
                module.load_state_dict(state)
            except RuntimeError as exc:  # shapes of another network (e.g. trained with --backbone lite2)
                first = str(exc).strip().splitlines()[-1].strip()
                raise WeightsError(f"{path}: its {name} weights do not fit this {name} network (trained with "
                                 f"another --backbone?): {first}") from exc
    return blob.get("meta") or {}


@dataclass
class ModelBundle:
    """The encoder and the three heads, ready for inference (eval mode, float32, CPU)."""

    encoder: Encoder
    egnet: EGNet
    gaze2mask: Gaze2MaskNet
    tracker: WCSTracker
    meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> "ModelBundle":
        path = Path(path) if path else DEFAULT_WEIGHTS
        keep_freed_memory()  # inference's per-frame buffers stay in the heap (allocator.py)
        # The tracker as the file shapes it (its stride-4 block's width): files of either width load.
        blob = read_weights(path)
        tracker = WCSTracker.for_state(blob["heads"].get("tracker"))
        heads = {"egnet": EGNet(), "gaze2mask": Gaze2MaskNet(), "tracker": tracker}
        meta = load_heads_into(heads, path, blob=blob)
        for m in heads.values():
            # Channels-last convolutions, as the encoder's: the tracker decoder 8.2 -> 6.5 ms at 256x448
            # (float32, 2-CPU Xeon; outputs equal to float rounding). Adapted copies inherit it.
            m.eval().requires_grad_(False).to(memory_format=torch.channels_last)
        return cls(Encoder(), heads["egnet"], heads["gaze2mask"], heads["tracker"], meta)

    def trained_sequences(self) -> set[str]:
        """Sequences any head of these weights trained on (from the training reports in the file)."""
        runs = self.meta.get("runs")
        reports = list(runs.values()) if isinstance(runs, dict) else [self.meta]
        return {s for r in reports if isinstance(r, dict) for s in r.get("train_sequences") or []}

    def seen_in_training_note(self, sequences) -> str | None:
        """A warning line when these weights trained on any of `sequences` (None when they did not)."""
        seen = sorted(set(sequences) & self.trained_sequences())
        if not seen:
            return None
        return (f"Warning: these weights trained on {', '.join(seen)}: the scores there are not held-out "
                "numbers (score a model trained without them, e.g. a fold of scripts/gpu_folds.sh, with --weights).")
