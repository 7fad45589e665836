"""Even visual speed along the c path: `renderer retime`.

A straight c path at constant speed barely moves the picture for most of the run and then
changes it violently where the path crosses the set's boundary. Retiming measures how much the
picture changes along the path — at low resolution, on the colours the viewer will see — and
writes a scene whose keyframes move c so that every frame changes the picture by about the same
amount, within a speed limit so quiet stretches still pass.

The metric is the mean CIE76 colour difference (ΔE in CIELAB) between the two frames' pixels:
Lab is built to make equal distances look about equally different, so a change from black to
dark blue counts less than one from black to yellow, as the eye sees it; one unit is about a
just-noticeable difference.

The new scene is an ordinary scene: linear keyframes at exact times whose first and last c are
the source's first and last c, bit for bit (so its first and last frames equal the source's).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from renderer.atomic import write_text_atomically
from renderer.errors import SceneError
from renderer.lowres import scaled
from renderer.perceptual import srgb_to_lab, visual_change
from renderer.scene import SCHEMA, Overrides, Scene, load_document, scene_from_dict
from renderer.toml_text import dumps

DEFAULT_PREVIEW_PX = 200
DEFAULT_MAX_SPEEDUP = 20.0
# Keyframes of the new path: between two, c moves at a constant speed. 240 knots put a knot
# every ~8 frames of a one-minute scene, fine enough that the per-frame change stays even.
KNOTS = 240


def frame_changes(scene: Scene) -> np.ndarray:
    """Visual change between each pair of consecutive frames of `scene` (len frames - 1; a
    loop's seam, last frame to first, counts too)."""
    from renderer.render import FrameRenderer, rgb

    fr = FrameRenderer(scene)
    first = prev = None
    out = []
    for k in range(scene.frames):
        lab = srgb_to_lab(rgb(fr.rgba(k)))
        if prev is not None:
            out.append(visual_change(prev, lab))
        else:
            first = lab
        prev = lab
    if scene.path.loop and first is not None and prev is not None:
        out.append(visual_change(prev, first))  # the seam: the last frame flows into the first
    return np.asarray(out, dtype=np.float64)


def busiest_share(changes: np.ndarray, fraction: float = 0.1) -> float:
    """The share of all visual change carried by the busiest `fraction` of transitions
    (uniform: `fraction`; the source dark-to-yellow: about 0.6)."""
    total = float(changes.sum())
    if total <= 0 or len(changes) == 0:
        return fraction
    n = max(1, math.ceil(fraction * len(changes)))
    return float(np.sort(changes)[::-1][:n].sum() / total)


def probe(scene: Scene, width: int, samples: int) -> Scene:
    """The scene at `width` px with `samples` frames: frame j shows path position j/(samples-1)."""
    low = scaled(scene, width, "--preview-size")
    # Sampled end to end even for a loop: its last sample is its start, so the seam is measured.
    return replace(low, frames=samples, fps=scene.fps * samples / scene.frames,
                   path=replace(low.path, loop=False))


@dataclass(frozen=True)
class Knots:
    """The new path: at new time times[j], c is the source's c at position positions[j]."""

    times: tuple[Fraction, ...]
    positions: tuple[float, ...]


def check_max_speedup(max_speedup: float) -> None:
    if not max_speedup > 1 or not math.isfinite(max_speedup):
        raise SceneError(f"--max-speedup: must be more than 1, got {max_speedup:g}")


def even_knots(changes: np.ndarray, max_speedup: float, knots: int = KNOTS) -> Knots:
    """Knots that spend on each stretch of the path time in proportion to its visual change,
    each stretch at least 1/max_speedup of its share at constant speed (the speed limit)."""
    check_max_speedup(max_speedup)
    n = len(changes)
    if changes.sum() <= 0:
        floor = 1.0  # nothing changes anywhere: constant speed
    else:
        # A stretch's time share is max(change, floor) / total; at constant speed it is 1/n. So
        # the speed limit is total / (n * floor) <= max_speedup, a fixed point found by iteration
        # (floor only grows, and stops once the limit holds).
        floor = float(changes.mean()) / max_speedup
        for _ in range(100):
            needed = float(np.maximum(changes, floor).sum()) / (n * max_speedup)
            if needed <= floor * (1 + 1e-12):
                break
            floor = needed
    cost = np.maximum(changes, max(floor, 1e-12))
    cum = np.concatenate([[0.0], np.cumsum(cost)])
    cum /= cum[-1]                           # new time at each sample position, 0..1
    grid = np.linspace(0.0, 1.0, n + 1)      # the sample positions along the source path
    k = max(2, min(knots, n + 1))
    targets = [Fraction(j, k - 1) for j in range(k)]
    positions = np.interp([float(t) for t in targets], cum, grid)
    positions[0], positions[-1] = 0.0, 1.0   # the source's own ends, exactly
    return Knots(tuple(targets), tuple(float(p) for p in positions))


def retimed_document(doc: Mapping[str, Any], scene: Scene, knots: Knots,
                     scene_path: Path) -> dict[str, Any]:
    """The source document with its c path replaced by the knots (linear keyframes, exact
    times), its video named after the new scene."""
    new = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in doc.items()}
    c_table = {k: v for k, v in (new.get("c") or {}).items()
               if k not in ("start", "end", "easing", "keyframes", "window", "shape", "centre",
                            "radius", "start_angle")}
    if scene.path.loop:
        c_table["loop"] = True  # a circle's loop is implied; keyframes must say it
    frames = []
    for t, s in zip(knots.times, knots.positions, strict=True):
        c = scene.path.at(Fraction(s))
        frames.append({"t": float(t), "c": [c.real, c.imag]})  # floats round-trip exactly
    c_table["keyframes"] = frames
    new["c"] = c_table
    video = scene.output.with_name(f"{scene_path.stem}{scene.output.suffix or '.mp4'}")
    new.setdefault("output", {})["path"] = str(video)
    return new


@dataclass(frozen=True)
class Retimed:
    target: Path
    frames: int
    before: float      # busiest 10% share of the source's per-frame change
    after: float       # the same, for the new scene
    median_before: float
    median_after: float

    def summary(self) -> str:
        return (f"wrote {self.target}: {self.frames} frames, the busiest 10% of transitions "
                f"carry {self.before:.0%} of the visual change before and {self.after:.0%} "
                f"after (uniform: 10%); median change per frame {self.median_before:.2f} -> "
                f"{self.median_after:.2f} ΔE")


def retime(source: Path, overrides: Overrides, target: Path, *,
           preview_px: int = DEFAULT_PREVIEW_PX, max_speedup: float = DEFAULT_MAX_SPEEDUP,
           samples: int | None = None) -> Retimed:
    """Write to `target` the scene `source` retimed for even visual speed. Checked first,
    written under a temporary name and renamed: bad input leaves nothing behind."""
    from renderer.render import _check_writable
    from renderer.window import check_target

    check_max_speedup(max_speedup)  # before any work: bad input writes nothing
    doc = load_document(source, overrides)
    scene = scene_from_dict(doc, source=source)
    check_target(target, source)
    _check_writable(target, "-o/--output")
    if scene.frames < 3:
        raise SceneError("retime: the scene needs at least 3 frames")
    # Measured: dark-to-yellow (150 frames) keeps 21% in its busiest tenth at 4 samples a frame,
    # 19% at 8, 18% at 16; the cap bounds a long scene's measuring pass to about a minute here.
    n = samples or min(2400, max(8 * scene.frames, 400))
    if n < 3:
        raise SceneError(f"--samples: must be at least 3, got {n}")
    changes = frame_changes(probe(scene, preview_px, n))
    knots = even_knots(changes, max_speedup, knots=min(max(KNOTS, scene.frames // 2), 1000))
    new_doc = retimed_document(doc, scene, knots, target)
    header = (f"# Written by `renderer retime` from {scene.source or 'the embedded scene'}: the "
              f"same c path, paced for even visual change\n# (measured at {preview_px} px on "
              f"{n} samples, mean CIE76 colour difference; at most {max_speedup:g}x faster "
              "than constant speed).\n")
    text = header + "\n" + dumps(new_doc, table_order=tuple(SCHEMA))
    new_scene = scene_from_dict(tomllib.loads(text), source=target)  # our output must load
    before = frame_changes(scaled(scene, preview_px, "--preview-size"))
    after = frame_changes(scaled(new_scene, preview_px, "--preview-size"))
    write_text_atomically(target, text)
    return Retimed(target, new_scene.frames, busiest_share(before), busiest_share(after),
                   float(np.median(before)), float(np.median(after)))
