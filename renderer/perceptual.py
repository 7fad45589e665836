"""How different two frames look: CIELAB colour and the mean CIE76 difference (ΔE) between
frames, on the colours the video shows. Lab is built so equal distances look about equally
different; one unit is about a just-noticeable difference."""

from __future__ import annotations

import numpy as np


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(…, 3) uint8 sRGB → (…, 3) CIELAB (D65), float32."""
    c = rgb.astype(np.float32) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]], dtype=np.float32)
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    eps, kappa = 216 / 24389, 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def visual_change(a_lab: np.ndarray, b_lab: np.ndarray) -> float:
    """Mean CIE76 ΔE between two frames already in Lab."""
    return float(np.sqrt(((a_lab - b_lab) ** 2).sum(axis=-1)).mean())
