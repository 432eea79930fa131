"""npe2 sample data: the synthetic hotspot video with ground-truth masks and hotspots as napari layers."""

from __future__ import annotations

import numpy as np

from napari_hotspot.sample_data import make_sample_video as render_sample_video


def make_sample_video() -> list[tuple]:
    """Image (T, H, W, 3) + ground-truth Labels + ground-truth hotspot Points (features: object_id)."""
    sample = render_sample_video()
    frame_names = [f"{i:05d}" for i in range(sample.num_frames)]
    image_meta = {
        "napari_hotspot": {
            "source": "sample",
            "fps": sample.fps,
            "frame_names": frame_names,
            "num_frames": sample.num_frames,
            "object_names": list(sample.object_names),
        }
    }
    # Points are (frame, y, x); only visible hotspots become points.
    frame_idx, obj_idx = np.nonzero(sample.hotspots[..., 2] > 0.5)
    points = np.column_stack(
        [frame_idx, sample.hotspots[frame_idx, obj_idx, 1], sample.hotspots[frame_idx, obj_idx, 0]]
    ).astype(np.float64)
    features = {"object_id": (obj_idx + 1).astype(np.int64)}
    return [
        (sample.frames, {"name": "sample video", "rgb": True, "metadata": image_meta}, "image"),
        (sample.masks, {"name": "sample ground truth", "opacity": 0.5}, "labels"),
        (
            points,
            {"name": "sample ground truth hotspots", "features": features, "size": 7, "face_color": "yellow"},
            "points",
        ),
    ]
