"""Quick looks at a scene: the same view and c path at fewer pixels, a few frames of many."""

from __future__ import annotations

from dataclasses import replace

from renderer.errors import SceneError
from renderer.scene import MAX_SIDE_PX, Scene, resized


def scaled(scene: Scene, width: int, what: str) -> Scene:
    """The scene at `width` pixels across (height by its aspect), one sample per pixel.

    The view keeps its vertical extent; the horizontal one follows the rounded aspect, as in the
    preview. Everything that decides a pixel's count (c path, iterations, radius) is unchanged.
    """
    if not 1 <= width <= MAX_SIDE_PX:
        raise SceneError(f"{what}: must be between 1 and {MAX_SIDE_PX} pixels, got {width}")
    height = max(1, round(width * scene.height / scene.width))
    return replace(resized(scene, width, height), supersample=1)


def evenly_spaced(frames: int, n: int) -> list[int]:
    """n frame numbers spread evenly from the first frame to the last, both included.

    All frames when there are no more than n. Exact integer rounding, so the picks never depend on
    floating point and are distinct.
    """
    if n < 1:
        raise ValueError(f"need n >= 1, got {n}")
    if frames <= n:
        return list(range(frames))
    if n == 1:
        return [0]
    span = frames - 1
    # round(i * span / (n - 1)), halves rounded up
    return [(2 * i * span + (n - 1)) // (2 * (n - 1)) for i in range(n)]
