"""Instants of an animation as users write them ("4.5s", "120f", "25%") → exact positions 0..1,
and the way the explore tools print instants and values of c.

A position is where an instant falls between the first frame (0) and the last (1), the same
measure `Scene.exact_frame_position` uses, kept as an exact fraction so that an instant on a frame
maps to exactly that frame's position. Frame k is shown at k / fps seconds.
"""

from __future__ import annotations

import re
from fractions import Fraction

from renderer.errors import SceneError
from renderer.scene import Scene

# A decimal number with an optional unit: s (seconds), f (frame number) or % (of the animation,
# first frame 0 %, last frame 100 %). A bare integer is a frame number.
_INSTANT = re.compile(r"^\s*(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<unit>s|f|%)?\s*$")

UNITS_HELP = 'seconds ("4.5s"), a frame number ("120f" or "120") or a percentage ("25%")'


def parse_instant(text: str, scene: Scene, flag: str) -> Fraction:
    """The exact position in `scene` of the instant `text`; SceneError naming `flag` if invalid."""
    m = _INSTANT.match(text)
    if m is None:
        raise SceneError(f"{flag}: cannot read {text!r}; give {UNITS_HELP}")
    num = Fraction(m["num"])  # exact decimal, so "4.1s" is 41/10 s and not a binary neighbour
    unit = m["unit"]
    if unit is None:
        if num.denominator != 1:
            raise SceneError(f"{flag}: {text!r} needs a unit: {text}s or {text}% "
                             "(a bare number is a frame number, a whole one)")
        unit = "f"
    last = scene.frames - 1
    if last == 0:
        raise SceneError(f"{flag}: the scene has a single frame, so it has no time to choose from")
    if unit == "%":
        position = num / 100
        limits = "0% and 100%"
    elif unit == "f":
        position = num / last
        limits = f"frame 0 and frame {last}"
    else:
        position = num * scene_fps(scene) / last
        limits = f"0s and {float(last / scene_fps(scene)):g}s (the last frame; or say 100%)"
    if not 0 <= position <= 1:
        raise SceneError(f"{flag}: {text.strip()} is outside the animation; it runs between "
                         f"{limits}")
    return position


def scene_fps(scene: Scene) -> Fraction:
    """The frame rate as the decimal the user wrote (30, 29.97), not its binary approximation."""
    return Fraction(repr(scene.fps))


def source_frame(scene: Scene, position: Fraction) -> Fraction:
    """The (possibly fractional) frame number at a position."""
    return position * (scene.frames - 1)


def fmt_frame(frame: Fraction) -> str:
    return str(frame.numerator) if frame.denominator == 1 else f"{float(frame):.6g}"


def fmt_seconds(scene: Scene, position: Fraction) -> str:
    return f"{float(source_frame(scene, position) / scene_fps(scene)):.6g}s"


def fmt_percent(position: Fraction) -> str:
    return f"{float(position * 100):.6g}%"


def fmt_c(c: complex, digits: int = 6) -> str:
    sign = "+" if c.imag >= 0 else "-"
    return f"{c.real:.{digits}g} {sign} {abs(c.imag):.{digits}g}i"
