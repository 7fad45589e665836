"""`renderer activity`: the numbers are the counts of the kernel's frames, counted directly."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from renderer.activity import count_metrics, measure_activity
from renderer.grid import sample_grid
from renderer.lowres import evenly_spaced
from tests.renderer.reference import escape_counts as reference_counts


def _direct(counts: list[list[int]], max_iter: int) -> dict[str, float]:
    """The metrics by plain counting over the reference implementation's counts."""
    flat = [n for row in counts for n in row]
    h, w = len(counts), len(counts[0])
    differ = pairs = 0
    for i in range(h):
        for j in range(w):
            for di, dj in ((0, 1), (1, 0)):
                if i + di < h and j + dj < w:
                    pairs += 1
                    differ += counts[i][j] != counts[i + di][j + dj]
    return {"interior_fraction": sum(n == max_iter for n in flat) / len(flat),
            "mean_count": statistics.fmean(flat), "std_count": statistics.pstdev(flat),
            "edge_density": differ / pairs}


def test_activity_matches_counts_computed_directly(scene_factory) -> None:
    scene = scene_factory(w=48, h=32, frames=25)
    act = measure_activity(scene, samples=5, width=18)
    low = act.scene
    assert (low.width, low.height) == (18, 12)
    assert [f.frame for f in act.frames] == evenly_spaced(25, 5)
    xs, ys = sample_grid(low.view.center_x, low.view.center_y, low.view.half_width,
                         low.view.half_height, low.width, low.height)
    for f in act.frames:
        assert f.time_s == f.frame / scene.fps and f.c == scene.c_at_frame(f.frame)
        counts, _ = reference_counts(xs, ys, f.c, scene.max_iterations, scene.escape_radius)
        want = _direct(counts, scene.max_iterations)
        m = f.metrics
        assert m.interior_fraction == want["interior_fraction"]
        assert m.edge_density == want["edge_density"]
        assert m.mean_count == pytest.approx(want["mean_count"], rel=1e-12)
        assert m.std_count == pytest.approx(want["std_count"], rel=1e-12)
    # The path crosses in and out of the connected set, so the frames really differ.
    assert len({f.metrics.interior_fraction for f in act.frames}) > 1


def test_metrics_of_known_patterns() -> None:
    flat = count_metrics(np.full((4, 5), 7, dtype=np.int32), max_iterations=7)
    assert (flat.interior_fraction, flat.mean_count, flat.std_count, flat.edge_density) == (
        1.0, 7.0, 0.0, 0.0)
    checker = (np.indices((4, 4)).sum(axis=0) % 2 * 9).astype(np.int32)  # 0 and 9 alternating
    m = count_metrics(checker, max_iterations=9)
    assert (m.interior_fraction, m.mean_count, m.std_count, m.edge_density) == (
        0.5, 4.5, 4.5, 1.0)
    stripe = np.array([[1, 1, 2, 2]] * 3, dtype=np.int32)  # one vertical edge of 3 pairs
    assert count_metrics(stripe, 100).edge_density == 3 / (3 * 3 + 2 * 4)


def test_every_frame_when_samples_exceed_frames(scene_factory) -> None:
    act = measure_activity(scene_factory(frames=4), samples=200, width=8)
    assert [f.frame for f in act.frames] == [0, 1, 2, 3]
