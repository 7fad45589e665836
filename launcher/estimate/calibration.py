"""This machine's measured speeds: the kernel, colour and a renderer process's start-up.

Measured once per machine and renderer source (about six seconds) and cached under
~/.cache/juliafarm, so estimates after the first cost only their sampling.

- Kernel: two fixed frames on one thread (a long-orbit one and a fast-escape one) solve for
  seconds per G executed iterations and seconds per M computed samples.
- Colour: the smooth colouring of one such frame, seconds per M samples, to RGBA, to yuv420p
  planes, and as a supersampled frame (2 x 2 and 4 x 4 samples a pixel).
- Efficiency: the all-threads speed-up on a full-size frame, over the cores.
- Start-up: `renderer render` of a two-frame scene in a fresh process, twice. The second run
  (numba's cache warm) is what every local render pays before its first frame: interpreter,
  imports, cache load, palette, ffmpeg start, the final rename. The first run also compiles
  every kernel: that is what a fresh server pays, where the cache starts empty.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from launcher.estimate.sampling import encoder_processes_cpu_s, sample_work
from renderer.local_record import load_local_renders
from renderer.machine import machine_key, renderer_version
from renderer.scene import parse_scene

# Calibration frames: the spiral's view, 400 x 400, 500 iterations. A long-orbit c (work mostly
# iterations) and a fast-escape c (work mostly per-sample costs) separate the two rates.
_CAL_SIDE = 400
_CAL_ITER = 500
_CAL_LONG = complex(-0.62772, -0.42)
_CAL_SHORT = complex(-0.62772, -0.70)
# Below this, a measured all-threads efficiency says more about another user's job on a core
# during the measurement than about the kernel (RESULTS.md, Kernel: 2 threads scale 1.7-1.9x).
MIN_LOCAL_EFFICIENCY = 0.6
# Used when the start-up cannot be measured (no ffmpeg, a sandbox without subprocesses): a
# 2-frame `renderer render` took 1.2 s with a warm cache and 4.4 s cold on this 2-core machine.
DEFAULT_START_S = 1.5
DEFAULT_COMPILE_S = 3.5
_SCENE = """\
[frame]
width = {side}
height = {side}
[view]
center = [0.0, 0.0]
half_height = 1.8
[iteration]
max_iterations = {iterations}
[c]
start = [-0.62772, -0.42]
end = [-0.62772, -0.38]
[timing]
fps = 30
frames = {frames}
[colour]
colormap = "magma"
mode = "smooth"
[output]
path = "ref.mp4"
"""
_START_SCENE = _SCENE.format(side=32, iterations=50, frames=2)
# Reference renders of the whole pipeline (kernel, colour thread, x264, hand-offs), timed for
# real: a tiny one, whose time beyond the start-up is mostly what every render pays once more than
# a 2-frame one (x264's lookahead filled and drained, the last segment's flush that nothing
# overlaps), and a spiral-sized one, where the sharing of the cores between the kernel, colour
# and x264 does. The model fits that fixed cost and its pipeline factor to them
# (model.pipeline_terms).
PIPELINE_REFS = (_SCENE.format(side=360, iterations=100, frames=60),
                 _SCENE.format(side=1080, iterations=500, frames=150))


@dataclass(frozen=True)
class Calibration:
    """This machine's measured speeds (one thread unless named otherwise)."""

    kernel_s_per_giter: float     # per G executed iterations
    kernel_s_per_msample: float   # per M computed samples (init, compaction, writes)
    colour_s_per_msample: float   # counts to RGBA (PNG frames, pixel formats other than 4:2:0)
    local_cores: int
    local_efficiency: float       # all-threads speed-up / cores, measured on the kernel
    machine: str
    kernel_version: str
    measured_at: str
    start_s: float = DEFAULT_START_S      # a render's fixed cost with numba's cache warm
    compile_s: float = DEFAULT_COMPILE_S  # added when the cache is cold (a fresh server)
    colour_yuv_s_per_msample: float | None = None  # counts to yuv420p planes (None: as RGBA)
    # Supersampled colouring (2 x 2 and 4 x 4 samples a pixel), per M samples: each sample is
    # coloured and taken to linear light before the average, 2.3x a plain sample's cost here,
    # for RGBA and yuv420p alike (None: as a plain sample).
    colour_ss2_s_per_msample: float | None = None
    colour_ss4_s_per_msample: float | None = None
    # (PIPELINE_REFS index, the sampled WorkSample's fields, measured render s): see model.
    pipeline_refs: tuple[tuple[int, dict[str, Any], float], ...] = ()


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "juliafarm"


def kernel_version() -> str:
    """A hash of the renderer's timed source: a change invalidates the calibration."""
    return renderer_version()


def best_s(fn: Any, repeats: int = 3) -> float:
    """The fastest of `repeats` calls: other load only ever adds time."""
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_kernel(cores: int) -> dict[str, float]:
    """The Calibration's speeds, by field name: s per G executed iterations, s per M computed
    samples, colour s per M samples (RGBA, yuv420p planes, supersampled 2 x 2 and 4 x 4), local
    efficiency at `cores` threads."""
    from renderer.colour import colourise, colourise_yuv420, make_palette
    from renderer.grid import sample_grid
    from renderer.kernel import escape_counts, set_threads

    xs, ys = sample_grid(0.0, 0.0, 1.8, 1.8, _CAL_SIDE, _CAL_SIDE, 1)
    computed = _CAL_SIDE * (_CAL_SIDE // 2) / 1e6  # the mirror computes half the rows
    pts = []
    try:
        set_threads(1)
        for c in (_CAL_LONG, _CAL_SHORT):
            st: dict[str, int] = {}
            escape_counts(xs, ys, c, _CAL_ITER, 2.0, want_final_modulus=True, stats=st)
            t = best_s(lambda c=c: escape_counts(xs, ys, c, _CAL_ITER, 2.0,
                                                 want_final_modulus=True))
            pts.append((st["iterations"] / 1e9, t))
        (g1, t1), (g2, t2) = pts
        # t = a g + b computed: two equations, two unknowns; clamp to non-negative.
        b = max(0.0, (t2 - t1 * g2 / g1) / computed / (1 - g2 / g1)) if g1 > g2 else 0.0
        a = max(1e-3, (t1 - b * computed) / g1)
        counts, fmod = escape_counts(xs, ys, _CAL_LONG, _CAL_ITER, 2.0, want_final_modulus=True)
        pal = make_palette("viridis", "smooth", _CAL_ITER, 2.0, False)
        msamples = counts.size / 1e6
        colour = best_s(lambda: colourise(pal, counts, fmod, 1)) / msamples
        colour_yuv = best_s(lambda: colourise_yuv420(pal, counts, fmod, 1)) / msamples
        # The same samples as a frame of 2 x 2 (4 x 4) samples a pixel: 400 / 8 is whole.
        ss2 = best_s(lambda: colourise_yuv420(pal, counts, fmod, 2)) / msamples
        ss4 = best_s(lambda: colourise_yuv420(pal, counts, fmod, 4)) / msamples
        eff = 1.0
        if cores > 1:
            # Efficiency on a full-size frame: small ones exaggerate the fixed per-call costs.
            # One and all threads alternate, best of each: measured back to back, a disturbance
            # (another process, a neighbour on the host) had pushed this from 0.92-1.0 to 0.72.
            # (The loss per frame, many - one / cores, in place of the efficiency was tried:
            # 1.5 ms on this frame, which 4000 frames of 360 x 360 did not lose, x264 filling
            # the kernel's idle threads; +28% there.)
            bx, by = sample_grid(0.0, 0.0, 1.8, 1.8, 1080, 1080, 1)
            one = many = math.inf
            for _ in range(3):
                set_threads(1)
                one = min(one, best_s(lambda: escape_counts(bx, by, _CAL_LONG, _CAL_ITER, 2.0), 1))
                set_threads(cores)
                many = min(many, best_s(lambda: escape_counts(bx, by, _CAL_LONG, _CAL_ITER, 2.0),
                                        2))
            eff = min(1.0, one / many / cores)
    finally:
        set_threads(cores)
    return {"kernel_s_per_giter": a, "kernel_s_per_msample": b, "colour_s_per_msample": colour,
            "colour_yuv_s_per_msample": colour_yuv, "colour_ss2_s_per_msample": ss2,
            "colour_ss4_s_per_msample": ss4, "local_efficiency": max(MIN_LOCAL_EFFICIENCY, eff)}


def _render_s(scene_text: str, d: Path, env: dict[str, str]) -> tuple[float, float | None]:
    """Wall seconds of `renderer render` of the scene text in a fresh process, and its ffmpeg
    CPU seconds (from the local render record it leaves in env's state directory)."""
    scene = d / "ref.toml"
    scene.write_text(scene_text, encoding="utf-8")
    argv = [sys.executable, "-m", "renderer.cli", "render", str(scene), "-o", str(d / "ref.mp4")]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    wall = time.perf_counter() - t0
    records = load_local_renders(Path(env["XDG_STATE_HOME"]) / "juliafarm")
    x264 = records[-1].get("encode_cpu_s") if records else None
    return wall, float(x264) if isinstance(x264, int | float) else None


def measure_start() -> tuple[float, float, tuple[tuple[int, dict[str, Any], float], ...]]:
    """(start-up s with numba's cache warm, compile s added when it is cold, the reference
    renders), from `renderer render` runs in fresh processes sharing a cache that starts empty.

    A reference's x264 cost per megapixel is what its render spent, not what the probe says:
    the fit is then of the pipeline alone (the probe's own error on one reference, 13% under
    on the spiral-sized one, had gone into the factor and from there into every estimate)."""
    with tempfile.TemporaryDirectory(prefix="juliafarm-start-") as tmp:
        d = Path(tmp)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(d / "numba"),
               "XDG_STATE_HOME": str(d / "state")}
        cold, _ = _render_s(_START_SCENE, d, env)
        warm, _ = _render_s(_START_SCENE, d, env)
        refs = []
        for i, text in enumerate(PIPELINE_REFS):
            measured, x264 = _render_s(text, d, env)
            scene = parse_scene(text)
            work = sample_work(scene)
            if x264 is not None:
                steady = max(0.0, x264 - encoder_processes_cpu_s(scene))
                work = replace(work, encode_cpu_s_per_mpx=steady / (
                    scene.width * scene.height * scene.frames / 1e6))
            refs.append((i, asdict(work), measured))
    return warm, max(0.0, cold - warm), tuple(refs)


def _measured_start() -> tuple[float, float, tuple[tuple[int, dict[str, Any], float], ...]]:
    try:
        return measure_start()
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_START_S, DEFAULT_COMPILE_S, ()


def _optional(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and v > 0 else None


def calibrate(*, cores: int | None = None, cache: Path | None = None,
              refresh: bool = False) -> Calibration:
    """This machine's speeds, from the cache when the machine and renderer match, else
    measured."""
    from renderer.cores import available_cores

    n = cores or available_cores()
    key = f"{machine_key(n)}-{kernel_version()}"
    path = (cache or cache_dir()) / f"calibration-{key}.json"
    data: dict[str, Any] = {}
    if not refresh:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
    # A cache from before a speed was measured is measured again (the keys it lacks).
    if not {"kernel_s_per_giter", "pipeline_refs", "colour_ss2_s_per_msample"} <= data.keys():
        data.update(measure_kernel(n))
        start, compile_s, refs = _measured_start()
        data.update(pipeline_refs=refs, local_cores=n, start_s=start, compile_s=compile_s,
                    measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    return Calibration(
        kernel_s_per_giter=float(data["kernel_s_per_giter"]),
        kernel_s_per_msample=float(data["kernel_s_per_msample"]),
        colour_s_per_msample=float(data["colour_s_per_msample"]),
        local_cores=int(data["local_cores"]),
        local_efficiency=float(data["local_efficiency"]), machine=key.split("-")[0],
        kernel_version=key.split("-")[1], measured_at=str(data.get("measured_at", "")),
        start_s=float(data["start_s"]), compile_s=float(data["compile_s"]),
        colour_yuv_s_per_msample=float(data.get("colour_yuv_s_per_msample")
                                       or data["colour_s_per_msample"]),
        colour_ss2_s_per_msample=_optional(data.get("colour_ss2_s_per_msample")),
        colour_ss4_s_per_msample=_optional(data.get("colour_ss4_s_per_msample")),
        pipeline_refs=tuple((int(i), dict(w), float(m)) for i, w, m in data["pipeline_refs"]))
