"""renderer.segments.default_segment_frames: about SEGMENT_SECONDS of video, longer for small
frames (each segment is an ffmpeg process whose start x264 pays), but never so long that a
resume would lose much."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from renderer import segments as G
from renderer.scene import load_scene
from renderer.segments import default_segment_frames, plan_segments

EXAMPLES = Path(__file__).resolve().parents[2] / "renderer" / "examples"


def scene(side: int, fps: float, frames: int):
    base = load_scene(EXAMPLES / "quick.toml")
    return replace(base, width=side, height=side, fps=fps, frames=frames)


@pytest.mark.parametrize("side, fps, frames, expected", [
    (1080, 30, 1800, 150),   # the spiral: 5 s of video, already far above the pixel floor
    (3840, 60, 600, 300),    # 4K: 5 s
    (48, 2, 40, 10),         # a tiny scene: 5 s, the floor would leave fewer than 8 segments
    (360, 5, 4000, 500),     # small frames at 5 fps: 25 frames a process was x264's 2x
    (360, 5, 100_000, 772),  # ... and a very long one: 100 Mpx a segment
])
def test_segments_are_five_seconds_or_enough_pixels(side, fps, frames, expected) -> None:
    assert default_segment_frames(scene(side, fps, frames)) == expected


def test_the_floor_never_leaves_fewer_than_min_segments_where_time_gave_more() -> None:
    for side, fps, frames in [(64, 2, 300), (360, 5, 4000), (200, 10, 2000), (720, 24, 5000)]:
        sc = scene(side, fps, frames)
        by_time = len(plan_segments(frames, max(1, min(frames, int(fps * G.SEGMENT_SECONDS)))))
        n = len(plan_segments(frames, default_segment_frames(sc)))
        assert n >= min(by_time, G.MIN_SEGMENTS)
        seg = default_segment_frames(sc)
        assert seg * side * side >= min(G.MIN_SEGMENT_MPX * 1e6, frames / G.MIN_SEGMENTS
                                        * side * side) - side * side
