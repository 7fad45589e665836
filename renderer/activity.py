"""Per-frame activity from a cheap low-resolution pass: what makes frames interesting or expensive.

Measured on the kernel's exact escape counts (interior points count max_iterations):
- interior_fraction: samples that never escaped; large interiors are slow and often dull.
- mean_count, std_count: escape counts over all samples; the mean is the kernel's work per sample
  (before its exact savings), so this is also the cost profile of the animation.
- edge_density: fraction of neighbouring sample pairs (across and down) whose counts differ; the
  detail a viewer sees, since flat regions have equal counts.
- change: how different the frame looks from the next one (mean CIE76 ΔE on the colours shown,
  renderer.perceptual): what `renderer retime` evens out, so its effect shows here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from renderer.errors import SceneError
from renderer.grid import sample_grid
from renderer.kernel import escape_counts
from renderer.lowres import evenly_spaced, scaled
from renderer.perceptual import srgb_to_lab, visual_change
from renderer.scene import Scene


@dataclass(frozen=True)
class CountMetrics:
    interior_fraction: float
    mean_count: float
    std_count: float
    edge_density: float


@dataclass(frozen=True)
class FrameActivity:
    frame: int
    time_s: float
    c: complex
    metrics: CountMetrics
    change: float = 0.0  # mean ΔE to the next frame (the last: to the one before)

    def as_json(self) -> dict[str, Any]:
        m = self.metrics
        return {"frame": self.frame, "time_s": self.time_s, "c": [self.c.real, self.c.imag],
                "interior_fraction": m.interior_fraction, "mean_count": m.mean_count,
                "std_count": m.std_count, "edge_density": m.edge_density,
                "change": self.change}


@dataclass(frozen=True)
class Activity:
    scene: Scene            # the low-resolution scene that was measured
    frames: list[FrameActivity]


def count_metrics(counts: np.ndarray, max_iterations: int) -> CountMetrics:
    """The metrics of one frame's (H, W) escape counts."""
    c = np.asarray(counts)
    across = c[:, 1:] != c[:, :-1]
    down = c[1:, :] != c[:-1, :]
    pairs = across.size + down.size
    return CountMetrics(
        interior_fraction=float(np.count_nonzero(c == max_iterations) / c.size),
        mean_count=float(c.mean(dtype=np.float64)),
        std_count=float(c.std(dtype=np.float64)),
        edge_density=float((np.count_nonzero(across) + np.count_nonzero(down)) / pairs)
        if pairs else 0.0,
    )


def low_resolution(scene: Scene, width: int) -> Scene:
    """The scene measured: `width` pixels across, one sample per pixel (checked, for the CLI)."""
    return scaled(scene, width, "--sample-width")


def check_samples(samples: int) -> None:
    if samples < 1:
        raise SceneError(f"--samples: must be at least 1, got {samples}")


def measure_activity(scene: Scene, samples: int, width: int) -> Activity:
    """Metrics of `samples` frames spread evenly through the scene, at `width` pixels across."""
    check_samples(samples)
    low = low_resolution(scene, width)
    v = low.view
    xs, ys = sample_grid(v.center_x, v.center_y, v.half_width, v.half_height, low.width,
                         low.height)
    from renderer.render import FrameRenderer, rgb

    colours = FrameRenderer(low)
    out = []
    for k in evenly_spaced(scene.frames, samples):
        c = scene.c_at_frame(k)
        counts, _ = escape_counts(xs, ys, c, scene.max_iterations, scene.escape_radius)
        change = 0.0
        if scene.frames > 1:
            other = k + 1 if k + 1 < scene.frames else k - 1
            change = visual_change(srgb_to_lab(rgb(colours.rgba(k))),
                                   srgb_to_lab(rgb(colours.rgba(other))))
        out.append(FrameActivity(k, k / scene.fps, c, count_metrics(counts, scene.max_iterations),
                                 change))
    return Activity(low, out)


def activity_json(activity: Activity) -> str:
    """A JSON array with one object per measured frame, one per line (readable and parseable)."""
    rows = ",\n".join("  " + json.dumps(f.as_json()) for f in activity.frames)
    return f"[\n{rows}\n]"
