"""Which layer a dock's layer picker starts on: the tracker's own output before anything else.

The hotspot dock tags its layers (``metadata["napari_hotspot"]["role"]``: video, masks, hotspots,
clicks, ...); the reader tags ground truth. A picker that nobody has set yet starts on the best
ranked layer of its kind, so the reframe and labelling docks pick the tracker's masks and hotspots,
never the ground truth or the clicks, and never "(none)" while such a layer exists.
"""

from __future__ import annotations

from napari_hotspot._napari.reader import is_ground_truth

#: Per picker kind: the tracker role ranked first; layers without a role come next, other roles last.
PREFERRED_ROLE = {"image": "video", "labels": "masks", "points": "hotspots"}


def _role(layer):
    meta = (getattr(layer, "metadata", None) or {}).get("napari_hotspot")
    return meta.get("role") if isinstance(meta, dict) else None


def layer_rank(layer, kind: str) -> int:
    """0 for the tracker's layer of this kind, 1 for a user's own layer, 2 for ground truth, clicks,
    boxes, gaze maps and other helper layers."""
    role = _role(layer)
    if role == PREFERRED_ROLE[kind]:
        return 0
    if role is None and not is_ground_truth(layer):
        return 1
    return 2


def best_layer_name(layers, kind: str) -> str | None:
    """The name of the best ranked layer (the newest among equals: the video worked on last), or None."""
    ranked = [(layer_rank(layer, kind), -i, layer.name) for i, layer in enumerate(layers)]
    return min(ranked)[2] if ranked else None
