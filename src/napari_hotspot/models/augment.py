"""Synthetic motion and appearance changes (random affine views, colour jitter), used by training and
by per-video adaptation at run time."""

from __future__ import annotations

import cv2
import numpy as np


def random_affine(rng: np.random.Generator, size: tuple[int, int], strength: float = 1.0,
                  max_rotation: float = 15.0) -> np.ndarray:
    """A random 2x3 affine (scale, rotation up to `max_rotation` degrees x strength, shear,
    translation, flip) about the image centre."""
    h, w = size
    s = np.exp(rng.uniform(-0.25, 0.25) * strength)
    a = np.deg2rad(rng.uniform(-max_rotation, max_rotation) * strength)
    sh = rng.uniform(-0.1, 0.1) * strength
    tx, ty = rng.uniform(-0.12, 0.12, 2) * strength * np.array([w, h])
    flip = -1.0 if rng.random() < 0.5 else 1.0
    lin = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[1, sh], [0, 1]])
    lin = lin @ np.diag([flip, 1.0])
    c = np.array([w / 2, h / 2])
    t = c - lin @ c + np.array([tx, ty])
    return np.concatenate([lin, t[:, None]], 1).astype(np.float32)


def colour_jitter(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    x = img.astype(np.float32)
    x = x * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)  # contrast, brightness
    grey = x.mean(2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.6, 1.4)  # saturation
    x = x * rng.uniform(0.9, 1.1, size=3)  # white balance
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    return np.clip(x, 0, 255).astype(np.uint8)


def augmented_views(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, n_views: int,
                    strength: float = 1.0, max_rotation: float = 15.0):
    """The image and its mask (same size) plus `n_views` random affine + colour views of both.

    Returns (images, masks, affines): view 0 is the input itself with the identity affine; each
    affine (2x3) maps view-0 pixels to that view's (synthetic motion with known correspondence)."""
    h, w = mask.shape
    images, masks, affines = [image], [mask.astype(bool)], [np.float32([[1, 0, 0], [0, 1, 0]])]
    for _ in range(n_views):
        a = random_affine(rng, (h, w), strength=strength, max_rotation=max_rotation)
        warped = cv2.warpAffine(image, a, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        images.append(colour_jitter(rng, warped))
        masks.append(cv2.warpAffine(mask.astype(np.uint8), a, (w, h), flags=cv2.INTER_NEAREST) > 0)
        affines.append(a)
    return images, masks, affines
