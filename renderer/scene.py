"""The scene: the TOML schema as frozen dataclasses, the only place that parses and validates input.

A scene file has these tables (every key optional except where noted; see README for the full
schema and examples/ for real files):

    [frame]   width, height, supersample (1..4)
    [view]    center = [x, y] and half_height, or bounds = [xmin, xmax, ymin, ymax]
    [iteration] max_iterations, escape_radius
    [c]       start, end, easing  — or keyframes = [{t = 0.0, c = [re, im], easing = "linear"}, ...]
              window = [t0, t1]   (optional: play only that part of the path, 0..1; each end a
                                   number or an exact fraction string like "120/599")
    [timing]  fps and one of frames / duration_s
    [colour]  colormap (any matplotlib name), mode ("escape" | "smooth"), reverse
    [encode]  codec, crf, preset, pix_fmt
    [output]  path
    [cloud]   read by the launcher only; the renderer keeps it as an opaque table

CLI overrides (`Overrides`) are applied to the parsed document before validation, so an override
is checked exactly like the same value written in the file.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from renderer.errors import SceneError

EASINGS = ("linear", "ease-in", "ease-out", "ease-in-out")
COLOUR_MODES = ("escape", "smooth")
PIX_FMTS_EVEN = ("yuv420p", "yuv422p", "nv12")  # chroma subsampling needs even sizes
PIX_FMTS = (*PIX_FMTS_EVEN, "yuv444p", "rgb24")
CODECS = ("libx264", "libx265", "h264", "hevc", "mpeg4", "libvpx-vp9")
PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
)
MAX_SIDE_PX = 16384
MAX_FRAMES = 10_000_000
MAX_ITERATIONS = 10_000_000
# Bytes the renderer holds per supersample while a frame is in flight: int32 count, float64
# modulus, float32 colour work, plus a few RGB frames queued for the encoder.
BYTES_PER_SAMPLE_IN_FLIGHT = 48

SCHEMA: dict[str, tuple[str, ...]] = {
    "frame": ("width", "height", "supersample"),
    "view": ("center", "half_height", "bounds"),
    "iteration": ("max_iterations", "escape_radius"),
    "c": ("start", "end", "easing", "keyframes", "window", "loop", "shape", "centre", "radius",
          "start_angle"),
    "timing": ("fps", "frames", "duration_s"),
    "colour": ("colormap", "mode", "reverse"),
    "encode": ("codec", "crf", "preset", "pix_fmt"),
    "output": ("path",),
    "cloud": (),  # validated by the launcher
}
KEYFRAME_KEYS = ("t", "c", "easing")


@dataclass(frozen=True)
class Keyframe:
    """c at normalised animation time t (0..1); `easing` shapes the way to the next keyframe."""

    t: float
    c: complex
    easing: str = "linear"


@dataclass(frozen=True)
class CPath:
    """The path of c through the animation: keyframes, optionally played only inside `window`.

    The window's ends are exact rationals, and a position's path time is the correctly rounded
    value of the exact t0 + s * (t1 - t0). So a window cut from another scene at one of its frames
    lands on exactly the same path time (hence the same c, bit for bit), and windows of windows
    compose without rounding. With the default window the path time is simply s.
    """

    keyframes: tuple[Keyframe, ...]
    window: tuple[Fraction, Fraction] = (Fraction(0), Fraction(1))
    # A closed path: its end is its start, and the frames never show that point twice (the
    # last frame flows into the first when the video loops).
    loop: bool = False
    # shape = "circle": c = centre + radius * e^(i (start_angle + 2 pi t)); keyframes unused.
    circle: tuple[complex, float, float] | None = None  # centre, radius, start angle (radians)

    def at(self, s: float | Fraction) -> complex:
        """c at animation position s in [0, 1] (after applying the window)."""
        return self.at_path_time(self.path_time(s))

    def path_time(self, s: float | Fraction) -> float:
        """Position t of the whole path that animation position s shows."""
        t0, t1 = self.window
        return float(t0 + Fraction(s) * (t1 - t0))

    def at_path_time(self, t: float) -> complex:
        """c at position t of the whole keyframed path, ignoring the window."""
        if self.circle is not None:
            centre, radius, angle = self.circle
            # t = 1 is t = 0 exactly: the loop closes bit for bit, not up to cos(2 pi) rounding.
            a = angle + 2 * math.pi * (0.0 if t >= 1.0 else t)
            return complex(centre.real + radius * math.cos(a), centre.imag + radius * math.sin(a))
        kfs = self.keyframes
        if t <= kfs[0].t:
            return kfs[0].c
        for a, b in zip(kfs, kfs[1:], strict=False):
            if t >= b.t and b is kfs[-1]:
                break
            if t < b.t:
                u = _ease(a.easing, (t - a.t) / (b.t - a.t))
                return complex(
                    a.c.real + (b.c.real - a.c.real) * u, a.c.imag + (b.c.imag - a.c.imag) * u
                )
            if t == b.t:
                return b.c
        return kfs[-1].c


@dataclass(frozen=True)
class View:
    """The rectangle of the complex plane shown; its aspect always equals the frame's."""

    center_x: float
    center_y: float
    half_width: float
    half_height: float

    @property
    def centred_on_origin(self) -> bool:
        return self.center_x == 0.0 and self.center_y == 0.0


@dataclass(frozen=True)
class Encoding:
    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str = "yuv420p"


@dataclass(frozen=True)
class Scene:
    """A validated scene: everything needed to render every frame, and nothing else."""

    width: int
    height: int
    supersample: int
    view: View
    max_iterations: int
    escape_radius: float
    path: CPath
    fps: float
    frames: int
    colormap: str
    colour_mode: str
    reverse_colormap: bool
    encoding: Encoding
    output: Path
    source: Path | None = None
    cloud: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps

    def frame_position(self, k: int) -> float:
        """Position of frame k in the animation, 0..1 (first frame 0, last frame 1)."""
        return float(self.exact_frame_position(k))

    def exact_frame_position(self, k: int) -> Fraction:
        """frame_position as an exact fraction: k / (frames - 1), or k / frames for a loop (its
        last frame is one step before the start, which frame 0 shows)."""
        if self.path.loop:
            return Fraction(k, self.frames)
        return Fraction(0) if self.frames == 1 else Fraction(k, self.frames - 1)

    def c_at_frame(self, k: int) -> complex:
        return self.path.at(self.exact_frame_position(k))

    @property
    def samples_per_frame(self) -> int:
        return self.width * self.height * self.supersample**2


@dataclass(frozen=True)
class Overrides:
    """CLI flags that override values of the scene file (names as in the old argparse script)."""

    num_steps: int | None = None  # square frame of this many pixels per side
    width: int | None = None
    height: int | None = None
    max_iterations: int | None = None
    num_frames: int | None = None
    framerate: float | None = None
    duration: float | None = None
    c_imag_initial: float | None = None
    c_imag_increment: float | None = None  # the sweep of c.imag over the whole animation
    colormap: str | None = None
    mode: str | None = None
    supersample: int | None = None
    output: Path | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def _ease(kind: str, u: float) -> float:
    if kind == "linear":
        return u
    if kind == "ease-in":
        return u * u
    if kind == "ease-out":
        return 1.0 - (1.0 - u) * (1.0 - u)
    # ease-in-out: smoothstep, symmetric around the middle of the segment
    return u * u * (3.0 - 2.0 * u)


# ----------------------------------------------------------------------------- loading


def load_scene(path: str | os.PathLike[str], overrides: Overrides | None = None) -> Scene:
    """Read, override and validate a scene file; raise SceneError with a one-line message."""
    p = Path(path)
    return scene_from_dict(load_document(p, overrides), source=p)


def load_document(path: str | os.PathLike[str],
                  overrides: Overrides | None = None) -> dict[str, Any]:
    """The scene file as parsed TOML with the overrides written in, not yet validated.

    For tools that write a scene back (renderer window): they change the document, not the Scene,
    so everything they do not touch stays as the user wrote it.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SceneError(f"{p}: scene file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise SceneError(f"{p}: cannot read scene file ({exc.__class__.__name__})") from None
    return _document(text, str(p), overrides)


def parse_scene(
    text: str, *, source: Path | None = None, overrides: Overrides | None = None
) -> Scene:
    name = str(source) if source else "<scene>"
    return scene_from_dict(_document(text, name, overrides), source=source)


def _document(text: str, name: str, overrides: Overrides | None) -> dict[str, Any]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SceneError(f"{name}: malformed TOML: {exc}") from None
    if overrides is not None:
        doc = apply_overrides(doc, overrides)
    return doc


def apply_overrides(doc: Mapping[str, Any], ov: Overrides) -> dict[str, Any]:
    """Return a copy of the parsed document with CLI overrides written into it."""
    d: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in doc.items()}

    def put(table: str, key: str, value: Any) -> None:
        d.setdefault(table, {})
        if not isinstance(d[table], dict):
            raise SceneError(f"[{table}] must be a table")
        d[table][key] = value

    if ov.num_steps is not None:
        put("frame", "width", ov.num_steps)
        put("frame", "height", ov.num_steps)
    if ov.width is not None:
        put("frame", "width", ov.width)
    if ov.height is not None:
        put("frame", "height", ov.height)
    if ov.supersample is not None:
        put("frame", "supersample", ov.supersample)
    if ov.max_iterations is not None:
        put("iteration", "max_iterations", ov.max_iterations)
    if ov.framerate is not None:
        put("timing", "fps", ov.framerate)
    if ov.num_frames is not None:
        d.setdefault("timing", {})
        d["timing"].pop("duration_s", None)
        put("timing", "frames", ov.num_frames)
    if ov.duration is not None:
        d.setdefault("timing", {})
        d["timing"].pop("frames", None)
        put("timing", "duration_s", ov.duration)
    if ov.c_imag_initial is not None or ov.c_imag_increment is not None:
        _override_c_imag(d, ov.c_imag_initial, ov.c_imag_increment)
    if ov.colormap is not None:
        put("colour", "colormap", ov.colormap)
    if ov.mode is not None:
        put("colour", "mode", ov.mode)
    if ov.output is not None:
        put("output", "path", str(ov.output))
    return d


def _override_c_imag(d: dict[str, Any], initial: float | None, increment: float | None) -> None:
    """The old script's --c-imag-initial/--c-imag-increment: a straight sweep of c.imag."""
    c = d.setdefault("c", {})
    if not isinstance(c, dict):
        raise SceneError("[c] must be a table")
    if "keyframes" in c:
        raise SceneError(
            "c: --c-imag-initial/--c-imag-increment need a start/end path, not keyframes"
        )
    start = _complex(c.get("start", DEFAULT_C_START), "c.start")
    end = _complex(c.get("end", c.get("start", DEFAULT_C_END)), "c.end")
    re = start.real
    im0 = start.imag if initial is None else float(initial)
    inc = (end.imag - start.imag) if increment is None else float(increment)
    c["start"] = [re, im0]
    c["end"] = [re, im0 + inc]


# ----------------------------------------------------------------------------- validation

DEFAULT_C_START = [-0.62772, -0.42193]
DEFAULT_C_END = [-0.62772, 1.07807]


def scene_from_dict(doc: Mapping[str, Any], *, source: Path | None = None) -> Scene:
    _check_keys(doc, SCHEMA, "")
    frame = _table(doc, "frame")
    view_t = _table(doc, "view")
    it = _table(doc, "iteration")
    c_t = _table(doc, "c")
    timing = _table(doc, "timing")
    colour = _table(doc, "colour")
    enc_t = _table(doc, "encode")
    out_t = _table(doc, "output")
    cloud = doc.get("cloud", {})
    if not isinstance(cloud, Mapping):
        raise SceneError("cloud: must be a table")

    width = _int(frame.get("width", 200), "frame.width", lo=1, hi=MAX_SIDE_PX)
    height = _int(frame.get("height", width), "frame.height", lo=1, hi=MAX_SIDE_PX)
    supersample = _int(frame.get("supersample", 1), "frame.supersample", lo=1, hi=4)

    view = _view(view_t, width, height)
    max_iter = _int(it.get("max_iterations", 20), "iteration.max_iterations", lo=1,
                    hi=MAX_ITERATIONS)
    radius = _float(it.get("escape_radius", 2.0), "iteration.escape_radius")
    if not radius > 0:
        raise SceneError(f"iteration.escape_radius: must be > 0, got {radius}")

    path = _cpath(c_t)

    fps = _float(timing.get("fps", 5), "timing.fps")
    if not 0 < fps <= 1000:
        raise SceneError(f"timing.fps: must be in (0, 1000], got {fps:g}")
    if "frames" in timing and "duration_s" in timing:
        raise SceneError("timing: give either frames or duration_s, not both")
    if "duration_s" in timing:
        duration = _float(timing["duration_s"], "timing.duration_s")
        if not duration > 0:
            raise SceneError(f"timing.duration_s: must be > 0, got {duration:g}")
        frames = round(duration * fps)
        if frames < 1:
            raise SceneError(
                f"timing.duration_s: {duration:g} s at {fps:g} fps gives zero frames"
            )
    else:
        frames = _int(timing.get("frames", 20), "timing.frames", lo=1, hi=MAX_FRAMES)
    if frames > MAX_FRAMES:
        raise SceneError(f"timing: {frames} frames is more than the limit of {MAX_FRAMES}")

    colormap = _colormap(colour.get("colormap", "magma"))
    mode = _choice(colour.get("mode", "escape"), "colour.mode", COLOUR_MODES)
    reverse = colour.get("reverse", False)
    if not isinstance(reverse, bool):
        raise SceneError(f"colour.reverse: must be true or false, got {reverse!r}")

    encoding = Encoding(
        codec=_choice(enc_t.get("codec", "libx264"), "encode.codec", CODECS),
        crf=_int(enc_t.get("crf", 18), "encode.crf", lo=0, hi=63),
        preset=_choice(enc_t.get("preset", "medium"), "encode.preset", PRESETS),
        pix_fmt=_choice(enc_t.get("pix_fmt", "yuv420p"), "encode.pix_fmt", PIX_FMTS),
    )
    if encoding.pix_fmt in PIX_FMTS_EVEN:
        for name, v in (("frame.width", width), ("frame.height", height)):
            if v % 2:
                raise SceneError(
                    f"{name}: {v} is odd, but {encoding.pix_fmt} video needs even dimensions "
                    f"(use {v + 1} or {v - 1}, or encode.pix_fmt = \"yuv444p\")"
                )

    out = out_t.get("path")
    if out is None:
        stem = source.stem if source is not None else "julia"
        out = f"{stem}.mp4"
    if not isinstance(out, str) or not out.strip():
        raise SceneError(f"output.path: must be a non-empty string, got {out!r}")

    scene = Scene(
        width=width, height=height, supersample=supersample, view=view,
        max_iterations=max_iter, escape_radius=radius, path=path, fps=fps, frames=frames,
        colormap=colormap, colour_mode=mode, reverse_colormap=reverse, encoding=encoding,
        output=Path(out).expanduser(), source=source, cloud=dict(cloud),
    )
    check_memory(scene)
    return scene


def check_memory(scene: Scene, available_bytes: int | None = None) -> None:
    """Refuse frames whose in-flight working set cannot fit in this machine's memory."""
    avail = available_bytes if available_bytes is not None else _physical_memory_bytes()
    need = scene.samples_per_frame * BYTES_PER_SAMPLE_IN_FLIGHT
    if avail and need > avail // 2:
        raise SceneError(
            f"frame: {scene.width}x{scene.height} with supersample {scene.supersample} needs "
            f"about {need / 2**30:.1f} GiB per frame; this machine has {avail / 2**30:.1f} GiB"
        )


def _physical_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _check_keys(d: Mapping[str, Any], allowed: Mapping[str, Any] | tuple[str, ...], where: str):
    names = tuple(allowed)
    for key in d:
        if key not in names:
            label = f"{where}.{key}" if where else key
            hint = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
            valid = ", ".join(names)
            extra = f"; did you mean '{hint[0]}'?" if hint else f" (valid: {valid})"
            raise SceneError(f"{label}: unknown key{extra}")


def _table(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    t = doc.get(name, {})
    if not isinstance(t, Mapping):
        raise SceneError(f"{name}: must be a table ([{name}])")
    if name != "cloud":
        _check_keys(t, SCHEMA[name], name)
    return t


def _int(v: Any, name: str, *, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        else:
            raise SceneError(f"{name}: must be a whole number, got {v!r}")
    if not lo <= v <= hi:
        raise SceneError(f"{name}: must be between {lo} and {hi}, got {v}")
    return v


def _float(v: Any, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise SceneError(f"{name}: must be a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise SceneError(f"{name}: must be finite, got {v!r}")
    return f


def _choice(v: Any, name: str, options: tuple[str, ...]) -> str:
    if not isinstance(v, str) or v not in options:
        hint = difflib.get_close_matches(str(v), options, n=1, cutoff=0.5)
        extra = f"; did you mean '{hint[0]}'?" if hint else f" (valid: {', '.join(options)})"
        raise SceneError(f"{name}: unknown value {v!r}{extra}")
    return v


def _complex(v: Any, name: str) -> complex:
    """c values are [re, im] pairs (TOML has no complex numbers) or strings like '-0.6-0.4j'."""
    if isinstance(v, str):
        try:
            return complex(v.replace(" ", "").replace("i", "j"))
        except ValueError:
            raise SceneError(f"{name}: not a complex number: {v!r}") from None
    if isinstance(v, list) and len(v) == 2:
        return complex(_float(v[0], f"{name}[0]"), _float(v[1], f"{name}[1]"))
    raise SceneError(f"{name}: must be [re, im] or a string like \"-0.62772-0.42193j\", got {v!r}")


def _view(t: Mapping[str, Any], width: int, height: int) -> View:
    aspect = width / height
    if "bounds" in t:
        if "center" in t or "half_height" in t:
            raise SceneError("view: give either bounds or center/half_height, not both")
        b = t["bounds"]
        if not isinstance(b, list) or len(b) != 4:
            raise SceneError(f"view.bounds: must be [xmin, xmax, ymin, ymax], got {b!r}")
        xmin, xmax, ymin, ymax = (_float(x, "view.bounds") for x in b)
        if not (xmin < xmax and ymin < ymax):
            raise SceneError("view.bounds: need xmin < xmax and ymin < ymax")
        hw, hh = (xmax - xmin) / 2, (ymax - ymin) / 2
        if not math.isclose(hw / hh, aspect, rel_tol=1e-3):
            raise SceneError(
                f"view.bounds: aspect {hw / hh:.4g} differs from the frame's {aspect:.4g} "
                f"({width}x{height}); the image would be stretched"
            )
        # Centre = exact midpoint; bounds symmetric about 0 give exactly 0 (so symmetry applies).
        return View((xmin + xmax) / 2, (ymin + ymax) / 2, hh * aspect, hh)
    center = t.get("center", [0.0, 0.0])
    if not isinstance(center, list) or len(center) != 2:
        raise SceneError(f"view.center: must be [x, y], got {center!r}")
    cx, cy = (_float(x, "view.center") for x in center)
    hh = _float(t.get("half_height", 1.8), "view.half_height")
    if not hh > 0:
        raise SceneError(f"view.half_height: must be > 0, got {hh:g}")
    return View(cx, cy, hh * aspect, hh)


def _cpath(t: Mapping[str, Any]) -> CPath:
    loop = t.get("loop", False)
    if not isinstance(loop, bool):
        raise SceneError(f"c.loop: must be true or false, got {loop!r}")
    if "shape" in t:
        return _circle(t)
    for k in ("centre", "radius", "start_angle"):
        if k in t:
            raise SceneError(f"c.{k}: only with shape = \"circle\"")
    path = _open_cpath(t)
    if loop:
        if path.window != (Fraction(0), Fraction(1)):
            raise SceneError("c.window: a loop plays its whole path (drop c.window or c.loop)")
        first, last = path.keyframes[0].c, path.keyframes[-1].c
        if first != last or len(path.keyframes) < 3:
            raise SceneError(f"c.loop: the last keyframe's c must equal the first's and the "
                             f"path needs at least 3 keyframes (first {first}, last {last})")
        return CPath(path.keyframes, path.window, loop=True)
    return path


def _circle(t: Mapping[str, Any]) -> CPath:
    """shape = "circle": a closed path, played as a seamless loop."""
    _choice(t["shape"], "c.shape", ("circle",))
    for k in ("start", "end", "easing", "keyframes", "window"):
        if k in t:
            raise SceneError(f"c.{k}: not allowed with shape = \"circle\"")
    if t.get("loop", True) is not True:
        raise SceneError("c.loop: a circle is a loop (drop c.loop = false)")
    if "centre" not in t or "radius" not in t:
        raise SceneError("c.shape = \"circle\" needs c.centre = [re, im] and c.radius")
    centre = _complex(t["centre"], "c.centre")
    radius = _float(t["radius"], "c.radius")
    if not radius > 0:
        raise SceneError(f"c.radius: must be > 0, got {radius:g}")
    angle = math.radians(_float(t.get("start_angle", 0.0), "c.start_angle"))
    start = complex(centre.real + radius * math.cos(angle),
                    centre.imag + radius * math.sin(angle))
    return CPath((Keyframe(0.0, start), Keyframe(1.0, start)), loop=True,
                 circle=(centre, radius, angle))


def _open_cpath(t: Mapping[str, Any]) -> CPath:
    if "keyframes" in t:
        for k in ("start", "end", "easing"):
            if k in t:
                raise SceneError(f"c.{k}: not allowed together with c.keyframes")
        raw = t["keyframes"]
        if not isinstance(raw, list) or len(raw) < 1:
            raise SceneError("c.keyframes: must be a non-empty list of {t, c, easing} tables")
        kfs = []
        for i, kf in enumerate(raw):
            where = f"c.keyframes[{i}]"
            if not isinstance(kf, Mapping):
                raise SceneError(f"{where}: must be a table like {{t = 0.0, c = [re, im]}}")
            _check_keys(kf, KEYFRAME_KEYS, where)
            if "t" not in kf or "c" not in kf:
                raise SceneError(f"{where}: needs both t and c")
            tt = _float(kf["t"], f"{where}.t")
            if not 0.0 <= tt <= 1.0:
                raise SceneError(f"{where}.t: must be between 0 and 1, got {tt:g}")
            if kfs and tt <= kfs[-1].t:
                raise SceneError(f"{where}.t: keyframe times must increase")
            kfs.append(Keyframe(tt, _complex(kf["c"], f"{where}.c"),
                                _choice(kf.get("easing", "linear"), f"{where}.easing", EASINGS)))
        keyframes = tuple(kfs)
    else:
        start = _complex(t.get("start", DEFAULT_C_START), "c.start")
        end = _complex(t.get("end", t.get("start", DEFAULT_C_END)), "c.end")
        easing = _choice(t.get("easing", "linear"), "c.easing", EASINGS)
        keyframes = (Keyframe(0.0, start, easing), Keyframe(1.0, end))
    window = t.get("window", [0.0, 1.0])
    if not isinstance(window, list) or len(window) != 2:
        raise SceneError(f"c.window: must be [t0, t1], got {window!r}")
    w0, w1 = (_fraction(x, "c.window") for x in window)
    if not 0 <= w0 <= 1 or not 0 <= w1 <= 1:
        raise SceneError(f"c.window: both ends must be between 0 and 1, got [{w0}, {w1}]")
    return CPath(keyframes, (w0, w1))


def _fraction(v: Any, name: str) -> Fraction:
    """A number, or a string holding an exact fraction or decimal ("120/599", "0.4")."""
    if isinstance(v, str):
        try:
            return Fraction(v.strip())
        except (ValueError, ZeroDivisionError):
            raise SceneError(f"{name}: not a number or fraction: {v!r}") from None
    return Fraction(_float(v, name))


def _colormap(name: Any) -> str:
    if not isinstance(name, str):
        raise SceneError(f"colour.colormap: must be a string, got {name!r}")
    from matplotlib import colormaps  # imported lazily: matplotlib is slow to import

    if name not in colormaps:
        options = sorted(colormaps)
        hint = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
        extra = f"; did you mean '{hint[0]}'?" if hint else " (any matplotlib colormap name)"
        raise SceneError(f"colour.colormap: unknown colormap {name!r}{extra}")
    return name


def with_output(scene: Scene, output: Path) -> Scene:
    return replace(scene, output=output)


def resized(scene: Scene, width: int, height: int) -> Scene:
    """The scene at width x height pixels: the view keeps its vertical extent, and the horizontal
    one follows the new aspect, so a pixel stays square. Nothing else changes."""
    view = replace(scene.view, half_width=scene.view.half_height * width / height)
    return replace(scene, width=width, height=height, view=view)
