"""Segments: the unit of work, resume and sharding — consecutive frames encoded to their own MP4.

Finished segments live in a parts directory beside the output, with a manifest that fingerprints
everything that changes pixels or encoding, so a resume only reuses segments of the same scene.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from renderer.scene import Scene

# Default segment length in seconds of video: short enough that an interrupted render loses
# little, long enough that per-segment encoder start-up stays negligible.
SEGMENT_SECONDS = 5.0
# A segment is also one ffmpeg process, and x264 pays for each: its start and its lookahead's
# ramp, measured here as about 0.07 s plus some 30 frames' worth of encoding, at 360 x 360 as at
# 1080 x 1080. Small frames at a low frame rate paid that every few dozen frames (quick.toml at
# 360 x 360 and 5 fps: a process per 25 frames, twice x264's steady CPU). So a segment also
# holds at least MIN_SEGMENT_MPX megapixels, unless that left fewer than MIN_SEGMENTS segments
# (the unit of resume: an interrupt loses at most one).
MIN_SEGMENT_MPX = 100.0
MIN_SEGMENTS = 8
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Segment:
    index: int
    first: int  # first frame number
    stop: int   # one past the last frame

    @property
    def frames(self) -> int:
        return self.stop - self.first

    @property
    def name(self) -> str:
        return f"seg-{self.index:05d}.mp4"


def default_segment_frames(scene: Scene) -> int:
    """Frames per segment: SEGMENT_SECONDS of video, more for small frames (MIN_SEGMENT_MPX)."""
    by_time = math.ceil(scene.fps * SEGMENT_SECONDS)
    by_pixels = math.ceil(MIN_SEGMENT_MPX * 1e6 / (scene.width * scene.height))
    floor = min(by_pixels, math.ceil(scene.frames / MIN_SEGMENTS))
    return max(1, min(scene.frames, max(by_time, floor)))


def plan_segments(frames: int, segment_frames: int) -> list[Segment]:
    if frames < 1 or segment_frames < 1:
        raise ValueError(f"need frames >= 1 and segment_frames >= 1, got {frames}, "
                         f"{segment_frames}")
    return [Segment(i, first, min(first + segment_frames, frames))
            for i, first in enumerate(range(0, frames, segment_frames))]


def fingerprint(scene: Scene, segment_frames: int) -> str:
    """Hash of what determines the segments' bytes (not the output path or cloud settings)."""
    doc = asdict(scene)
    for key in ("output", "source", "cloud"):
        doc.pop(key, None)
    doc["segment_frames"] = segment_frames
    blob = json.dumps(doc, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


class PartsDir:
    """`.<output name>.parts/` beside the output: the finished segments of one scene."""

    def __init__(self, output: Path, scene: Scene, segment_frames: int) -> None:
        self.path = output.with_name(f".{output.name}.parts")
        self.fingerprint = fingerprint(scene, segment_frames)
        self.segment_frames = segment_frames

    def prepare(self) -> bool:
        """Create the directory; returns True when it already held this scene's segments.

        A parts directory of another scene (or setting) is emptied: its segments cannot be used.
        """
        manifest = self.path / MANIFEST
        if manifest.is_file():
            try:
                same = json.loads(manifest.read_text()).get("fingerprint") == self.fingerprint
            except (OSError, ValueError):
                same = False
            if same:
                return True
            shutil.rmtree(self.path)
        elif self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fingerprint": self.fingerprint,
                                   "segment_frames": self.segment_frames}))
        os.replace(tmp, manifest)
        return False

    def file(self, segment: Segment) -> Path:
        return self.path / segment.name

    def finished(self, segments: list[Segment]) -> set[int]:
        """Indices of segments whose file is complete (files appear only when ffmpeg succeeded)."""
        return {s.index for s in segments if self.file(s).is_file()}

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
