"""Cut a stretch of time out of a scene: a new scene whose c path is exactly that stretch.

The new scene keeps the source's c path (start/end or keyframes, with their easing) and narrows
its `c.window` to the chosen stretch, written as exact fractions of the path. Cutting keyframes
at the window's ends instead would have to re-express an eased segment that is cut in two, which
a different easing curve cannot do exactly; narrowing the window is exact for every path, and a
window of a window is simply a narrower window.

Without a new length, the new scene has one frame per source frame in the stretch, so a window
cut on frames shows exactly the source's frames; with a length, its first and last frames are
still exactly the source's at the window's ends.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from renderer.atomic import write_text_atomically
from renderer.errors import SceneError
from renderer.instants import (
    fmt_c,
    fmt_frame,
    fmt_percent,
    fmt_seconds,
    parse_instant,
    source_frame,
)
from renderer.scene import SCHEMA, Overrides, Scene, load_document, scene_from_dict
from renderer.toml_text import dumps


@dataclass(frozen=True)
class Stretch:
    """A stretch of a scene's animation between two exact positions (0 = first frame, 1 = last)."""

    start: Fraction
    end: Fraction

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end <= 1:
            raise ValueError(f"a stretch needs 0 <= start < end <= 1, got {self.start}, "
                             f"{self.end}")


@dataclass(frozen=True)
class NewLength:
    """How long the new scene runs: one of these, or neither (one frame per source frame)."""

    frames: int | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.frames is not None and self.duration_s is not None:
            raise SceneError("--num-frames and --duration both give the window's length; "
                             "choose one")
        if self.frames is not None and self.frames < 1:
            raise SceneError(f"--num-frames: must be at least 1, got {self.frames}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise SceneError(f"--duration: must be > 0 seconds, got {self.duration_s:g}")


@dataclass(frozen=True)
class WrittenWindow:
    path: Path
    source: Scene
    stretch: Stretch
    frames: int  # of the new scene

    def summary(self) -> str:
        s, a, b = self.source, self.stretch.start, self.stretch.end
        return (f"wrote {self.path}: {fmt_seconds(s, a)} .. {fmt_seconds(s, b)} (frames "
                f"{fmt_frame(source_frame(s, a))} .. {fmt_frame(source_frame(s, b))}) of "
                f"{s.source}, c {fmt_c(s.path.at(a))} .. {fmt_c(s.path.at(b))}; "
                f"{self.frames} frames")


def cut_window(source: Path, overrides: Overrides, start: str, end: str, target: Path,
               length: NewLength) -> WrittenWindow:
    """Write to `target` the scene `source` (with `overrides`) narrowed to start..end.

    Everything is checked before the file is written, and it is written under a temporary name
    and renamed, so a mistake leaves no file and an existing one untouched.
    """
    from renderer.render import _check_writable

    doc = load_document(source, overrides)
    scene = scene_from_dict(doc, source=source)
    check_target(target, source)
    if scene.path.loop:
        raise SceneError("renderer window: the scene is a loop (c.loop / shape = \"circle\"); "
                         "a window of it would not be one")
    a, b = parse_instant(start, scene, "--from"), parse_instant(end, scene, "--to")
    if not a < b:
        raise SceneError(f"--to: {end.strip()} is not after --from {start.strip()}")
    stretch = Stretch(a, b)
    new_doc = window_document(doc, scene, stretch, length, target)
    header = provenance(scene, stretch, (start.strip(), end.strip()), overrides)
    text = scene_text(new_doc, header, target)
    _check_writable(target, "-o/--output")
    write_text_atomically(target, text)
    frames = scene_from_dict(new_doc, source=target).frames
    return WrittenWindow(target, scene, stretch, frames)


def window_path_ends(scene: Scene, stretch: Stretch) -> tuple[Fraction, Fraction]:
    """The new c.window: the path times the source shows at the stretch's ends, exactly."""
    w0, w1 = scene.path.window
    return w0 + stretch.start * (w1 - w0), w0 + stretch.end * (w1 - w0)


def frames_in(scene: Scene, stretch: Stretch) -> int:
    """Frames of the source that the stretch spans, ends included (at least 2)."""
    return max(2, round((stretch.end - stretch.start) * (scene.frames - 1)) + 1)


def window_document(doc: Mapping[str, Any], scene: Scene, stretch: Stretch, length: NewLength,
                    scene_path: Path) -> dict[str, Any]:
    """The source document (already overridden) narrowed to the stretch, for writing to scene_path.

    Only c.window, the timing and the video's name change; the video is named after the new
    scene file so rendering it never overwrites the source's video.
    """
    new = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in doc.items()}
    a, b = window_path_ends(scene, stretch)
    new.setdefault("c", {})["window"] = [str(a), str(b)]  # strings keep the fractions exact

    timing = new.setdefault("timing", {})
    timing.pop("frames", None)
    timing.pop("duration_s", None)
    if length.duration_s is not None:
        timing["duration_s"] = length.duration_s
    else:
        timing["frames"] = length.frames or frames_in(scene, stretch)

    video = scene.output.with_name(f"{scene_path.stem}{scene.output.suffix or '.mp4'}")
    new.setdefault("output", {})["path"] = str(video)
    return new


def provenance(scene: Scene, stretch: Stretch, texts: tuple[str, str],
               overrides: Overrides) -> str:
    """The comment that opens the new file: where it came from, in every unit."""
    a, b = stretch.start, stretch.end
    source = scene.source or "the embedded quick scene"
    flags = " ".join(f"--{f.name.replace('_', '-')} {getattr(overrides, f.name)}"
                     for f in fields(overrides) if getattr(overrides, f.name) is not None)
    lines = [
        f"Written by `renderer window`: {texts[0]} .. {texts[1]} of {source}"
        + (f" (with {flags})" if flags else ""),
        f"= {fmt_seconds(scene, a)} .. {fmt_seconds(scene, b)}, frames "
        f"{fmt_frame(source_frame(scene, a))} .. {fmt_frame(source_frame(scene, b))} of "
        f"{scene.frames} at {scene.fps:g} fps, "
        f"{fmt_percent(a)} .. {fmt_percent(b)};",
        f"c from {fmt_c(scene.path.at(a), 10)} to {fmt_c(scene.path.at(b), 10)}.",
        "The c path is the source's, played only inside c.window (exact fractions of the path),",
        "so each frame shows exactly the c the source shows at the same instant.",
    ]
    return "".join(f"# {line}\n" for line in lines)


def scene_text(doc: Mapping[str, Any], header: str, scene_path: Path) -> str:
    """The new file's text, checked to load as a valid scene."""
    text = header + "\n" + dumps(doc, table_order=tuple(SCHEMA))
    scene_from_dict(tomllib.loads(text), source=scene_path)  # our own output must be valid
    return text


def check_target(path: Path, source: Path | None) -> None:
    """Refuse names that would lose work: not a .toml, or the source scene itself."""
    if path.suffix != ".toml":
        raise SceneError(f"-o/--output: the new scene is a TOML file; got {path}")
    if source is not None and path.resolve() == source.resolve():
        raise SceneError(f"-o/--output: {path} is the source scene; choose another name")
