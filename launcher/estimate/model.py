"""Time and cost model of a render: sampled work x calibrated speed x plan, under Linode's billing.

How a row is made (every constant below says where its number comes from):

- Work: `sample_work` renders a stratified sample of frames at reduced resolution with the real
  kernel (same exact symmetry and periodicity savings as the full render) and counts the
  iterations it executes; per-sample counts are resolution-independent to first order, so they
  scale by (full samples / sample samples). The error is half the spread between two interleaved
  halves of the frame sample (the standard error of their mean), combined with the change seen
  when the sample resolution is halved (resolution bias).
- Speed: `calibrate` times two fixed frames on one thread (a long-orbit one and a fast-escape one)
  and solves for seconds per G executed iterations and seconds per M computed samples, times the
  colour step, and measures ffmpeg CPU per megapixel for the scene's codec and preset. The result
  is cached under ~/.cache/juliafarm, keyed by machine and kernel source, so only the first
  estimate on a machine pays for it (about a second).
- Scaling: core-seconds are spread over N cores at parallel efficiency `efficiency(N)`; on this
  machine the all-threads efficiency is measured in the calibration, elsewhere it is the
  documented model below. A plan's vCPU runs at `PLAN_VCPU_FACTOR` of a core here.
- Run records of earlier runs on the same plan (their measured G iterations/s) take precedence
  over the calibrated speed, and their phase times over the overhead defaults.
- Cost: `provision.billing.cost_usd` over the instance's lifetime (create .. confirmed delete).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provision.billing import billed_hours, cost_usd
from provision.plans import Plan
from renderer.scene import Scene

# --- work sampling ---------------------------------------------------------------------------
SAMPLE_FRAMES = 24          # frames sampled, spread evenly over the animation (stratified)
SAMPLE_MAX_SAMPLES = 96_000  # samples per sampled frame (about 310 x 310): ~1 ms each here

# --- scaling ---------------------------------------------------------------------------------
# Parallel efficiency of the kernel at N cores where it cannot be measured: eff = 1/(1 + a(N-1)).
# a = 0.01 gives 0.94 at 8 and 0.68 at 48 cores: per-frame fixed costs (thread start, the shuffled
# chunk split, the serial colour-and-hand-off between frames) weigh more as frames get shorter.
# Run records replace it once a plan has been used.
EFFICIENCY_SLOPE = 0.01
# One Linode dedicated vCPU is one hyperthread of an AMD EPYC core (two vCPUs share a core's
# vector units) and those cores have AVX2, not the AVX-512 of the Zen 4 build machine: for this
# SIMD-bound kernel one vCPU is taken as 0.6 of one core here. An assumption until run records
# on the plan exist; it is the first number to replace with a measured one.
PLAN_VCPU_FACTOR = 0.6
# The model's own error, measured (benchmarks/RESULTS.md, "Estimate accuracy"): predicted vs
# measured render time of the four example scenes in two full runs on this machine was -10.7,
# +0.2, +1.6, -14.0, -10.0, +3.0, +7.0, +16.7%: 9.7% RMS. Taken as 10% (1 sigma).
MODEL_REL_ERROR = 0.10
# A plan without runs rests on PLAN_VCPU_FACTOR, an assumption: its speed is taken as uncertain
# by 30% (1 sigma) on top, until a run measures it.
UNMEASURED_PLAN_REL_ERROR = 0.30
# The interval printed is the central 80%: +/- 1.28 sigma of a normal error.
INTERVAL_Z = 1.2816
# Process start, imports, numba cache load, palette, ffmpeg start and the final join: a 2-frame
# `renderer render` takes 1.2 s of wall time here.
RENDER_START_S = 1.5

# --- overheads (seconds), used when no run record has the phase ------------------------------
# From the e2e runs against the local emulator plus Linode's documented provisioning times,
# rounded up: create (API until the instance exists), boot (until 'running'), ssh (sshd answers
# with the pinned key), bootstrap (apt ffmpeg/rsync, venv, pip numba+numpy wheels), delete (API
# confirms the instance is gone; billed until then).
DEFAULT_PHASES_S: Mapping[str, float] = {
    "create": 20.0, "boot": 45.0, "ssh": 15.0, "bootstrap": 150.0, "delete": 10.0,
}
UPLOAD_BYTES_DEFAULT = 3_000_000        # the project after exclude.txt, when not measured
UPLOAD_BYTES_PER_S = 10e6               # a home uplink of ~100 Mbit/s
DOWNLOAD_BYTES_PER_S = 25e6             # Linode egress is fast; the user's downlink is the limit
RSYNC_START_S = 3.0                     # ssh handshake and file list, per transfer
# MP4 size per pixel per frame: 86.9 MB for 1800 frames of 1080x1080 at crf 18 (RESULTS.md,
# Pipeline) is 0.041 B/px; rounded up.
OUTPUT_BYTES_PER_PX = 0.05
# A lifetime this close below a whole billed hour earns a warning: setup is that variable.
NEAR_HOUR_S = 300.0

KERNEL_VERSION_FILES = ("kernel.py", "grid.py")
# Encoder probe: consecutive frames of the scene at about 480 x 480 (x264's per-pixel cost is the
# same at 480 and 1080 px here, measured: 0.058 vs 0.065 CPU s per Mpx on 24 frames).
ENCODE_PROBE_FRAMES = 48
ENCODE_PROBE_SAMPLES = 230_000


@dataclass(frozen=True)
class WorkSample:
    """The scene's work, scaled from a reduced sample to the full render."""

    frames: int
    samples_per_frame: int
    executed_giter: float        # z-steps the real kernel executes (after exact savings)
    useful_giter: float          # sum of counts: what run records' throughput is measured in
    computed_msamples: float     # samples actually iterated (the mirror computes about half)
    rel_error: float             # expected relative error of executed_giter (1 sigma)
    sampled_frames: int
    sample_side_px: tuple[int, int]
    encode_cpu_s_per_mpx: float  # ffmpeg CPU s per megapixel-frame, probed on this scene
    sample_s: float              # wall time the sampling took


@dataclass(frozen=True)
class Calibration:
    """This machine's measured speeds (one thread unless named otherwise)."""

    kernel_s_per_giter: float     # per G executed iterations
    kernel_s_per_msample: float   # per M computed samples (init, compaction, writes)
    colour_s_per_msample: float
    local_cores: int
    local_efficiency: float       # all-threads speed-up / cores, measured on the kernel
    machine: str
    kernel_version: str
    measured_at: str


@dataclass(frozen=True)
class Overheads:
    """Seconds of each phase outside the render, and where each number came from."""

    create_s: float
    boot_s: float
    ssh_s: float
    bootstrap_s: float
    upload_s: float
    download_s: float
    delete_s: float
    source: str  # "records" | "defaults" | "records+defaults"

    @property
    def setup_s(self) -> float:
        return self.create_s + self.boot_s + self.ssh_s + self.bootstrap_s + self.upload_s


@dataclass(frozen=True)
class PlanEstimate:
    """One row: a plan (or this machine) with its time and cost."""

    plan: str                 # alias, or "local" for this machine
    type_id: str | None       # the Linode type; None for this machine (it is no type)
    vcpus: int
    price_hourly_usd: float
    setup_s: float
    render_s: float
    render_error_s: float
    download_s: float
    total_s: float            # until the MP4 is on this machine
    lifetime_s: float         # create .. confirmed delete: what is billed
    billed_hours: int
    cost_usd: float
    speed_source: str         # "calibration" | "records" | "calibration x plan factor"
    overhead_source: str

    @property
    def is_local(self) -> bool:
        return self.plan == "local"

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 4 if k.endswith("usd") else 1)
        return d


# --- work ------------------------------------------------------------------------------------

def sample_frame_indices(frames: int, n: int = SAMPLE_FRAMES) -> list[int]:
    """n frame numbers, one from the middle of each of n equal stretches (all if frames <= n)."""
    if frames <= n:
        return list(range(frames))
    return [min(frames - 1, int((i + 0.5) * frames / n)) for i in range(n)]


def sample_size(width: int, height: int, max_samples: int = SAMPLE_MAX_SAMPLES
                ) -> tuple[int, int]:
    """A reduced (w, h) with the frame's aspect, at most max_samples, parity kept (so a centred
    view stays mirror-symmetric in the same way)."""
    f = min(1.0, math.sqrt(max_samples / (width * height)))
    w, h = max(8, round(width * f)), max(8, round(height * f))
    w += (w - width) % 2
    h += (h - height) % 2
    return min(w, width), min(h, height)


def _frame_work(scene: Scene, ks: Sequence[int], w: int, h: int) -> list[tuple[int, int]]:
    """(executed, useful) iterations of frames ks rendered at w x h with the real kernel."""
    from renderer.grid import sample_grid
    from renderer.kernel import escape_counts

    v = scene.view
    xs, ys = sample_grid(v.center_x, v.center_y, v.half_width, v.half_height, w, h, 1)
    out = []
    for k in ks:
        st: dict[str, int] = {}
        counts, _ = escape_counts(xs, ys, scene.c_at_frame(k), scene.max_iterations,
                                  scene.escape_radius, stats=st)
        out.append((st["iterations"], int(counts.sum(dtype="int64"))))
    return out


def sample_work(scene: Scene, n_frames: int = SAMPLE_FRAMES,
                max_samples: int = SAMPLE_MAX_SAMPLES, probe_encoder: bool = True) -> WorkSample:
    """Count the scene's iterations on a sparse, reduced sample and scale to the full render."""
    t0 = time.perf_counter()
    full_w, full_h = scene.width * scene.supersample, scene.height * scene.supersample
    w, h = sample_size(full_w, full_h, max_samples)
    ks = sample_frame_indices(scene.frames, n_frames)
    work = _frame_work(scene, ks, w, h)
    # Resolution bias: every other sampled frame again at half the sample's side.
    hw, hh = sample_size(full_w, full_h, max_samples // 4)
    coarse = _frame_work(scene, ks[::2], hw, hh) if (hw, hh) != (w, h) else []
    scale = (full_w * full_h) / (w * h)
    executed = [e for e, _ in work]
    mean_exec = statistics.fmean(executed)
    rel_sampling = 0.0
    if len(executed) >= 4 and mean_exec > 0:
        a, b = statistics.fmean(executed[0::2]), statistics.fmean(executed[1::2])
        rel_sampling = abs(a - b) / 2 / mean_exec
    rel_resolution = 0.0
    if coarse and mean_exec > 0:
        fine_px = statistics.fmean(executed[0::2]) / (w * h)
        coarse_px = statistics.fmean(e for e, _ in coarse) / (hw * hh)
        # Halving the side moved the per-sample work by d; the sample is assumed to sit within
        # about half that of the full resolution (first-order convergence in the pixel size).
        rel_resolution = abs(coarse_px - fine_px) / fine_px / 2 if fine_px > 0 else 0.0
    mirrored = scene.view.centred_on_origin
    computed_per_frame = (full_w * ((full_h + 1) // 2) if mirrored else full_w * full_h)
    return WorkSample(
        frames=scene.frames,
        samples_per_frame=full_w * full_h,
        executed_giter=mean_exec * scale * scene.frames / 1e9,
        useful_giter=statistics.fmean(u for _, u in work) * scale * scene.frames / 1e9,
        computed_msamples=computed_per_frame * scene.frames / 1e6,
        rel_error=math.hypot(rel_sampling, rel_resolution),
        sampled_frames=len(ks),
        sample_side_px=(w, h),
        encode_cpu_s_per_mpx=measure_encode(scene) if probe_encoder else 0.0,
        sample_s=time.perf_counter() - t0,
    )


# --- speed -----------------------------------------------------------------------------------

def efficiency(cores: int, slope: float = EFFICIENCY_SLOPE) -> float:
    """Documented parallel-efficiency model: 1 / (1 + slope (cores - 1))."""
    return 1.0 / (1.0 + slope * (max(1, cores) - 1))


def core_seconds(work: WorkSample, scene: Scene, cal: Calibration
                 ) -> tuple[float, float, float]:
    """(kernel, colour, encode) single-core seconds of the whole render on this machine."""
    kernel = work.executed_giter * cal.kernel_s_per_giter + \
        work.computed_msamples * cal.kernel_s_per_msample
    colour = work.samples_per_frame * work.frames / 1e6 * cal.colour_s_per_msample
    encode = scene.width * scene.height * work.frames / 1e6 * work.encode_cpu_s_per_mpx
    return kernel, colour, encode


def render_seconds(work: WorkSample, scene: Scene, cal: Calibration, cores: int,
                   core_speed: float = 1.0, eff: float | None = None) -> float:
    """Wall seconds to render on `cores` cores each `core_speed` times a core here.

    The pipeline overlaps the kernel with colour and x264 on the same cores, so the render takes
    its core-seconds over the cores; but never less than the kernel alone at its parallel
    efficiency. The kernel's idle thread time (imbalance, per-frame fixed costs) is filled by the
    encoder, which is why efficiency is not simply applied to the sum: applied to it with a
    2-thread efficiency of ~0.7 measured on a busy machine, the 1800-frame spiral came out at
    101 s here against ~85 s measured (benchmarks/estimate.py, 900 frames in 42.7 s).
    """
    kernel, colour, encode = core_seconds(work, scene, cal)
    e = efficiency(cores) if eff is None else eff
    capacity = cores * core_speed
    return RENDER_START_S + max(kernel / e, kernel + colour + encode) / capacity


def record_throughput_giter_s(records: Sequence[Mapping[str, Any]], plan: str) -> float | None:
    """Median measured useful G iterations/s of completed earlier runs on this plan (shown for
    information only: useful iterations per kernel second depend on the scene, see below)."""
    vals = [float(r["render_throughput_giter_s"]) for r in records
            if r.get("plan") == plan and r.get("status") == "completed"
            and isinstance(r.get("render_throughput_giter_s"), int | float)
            and r["render_throughput_giter_s"] > 0]
    return statistics.median(vals) if vals else None


def interval_rel(sampling_rel: float, plan_rel: float = 0.0) -> float:
    """Half-width of the printed 80% interval, relative: the work sample's error, the model's
    measured error and the plan's speed uncertainty, independent, so added in quadrature."""
    return INTERVAL_Z * math.sqrt(sampling_rel**2 + MODEL_REL_ERROR**2 + plan_rel**2)


def plan_speed_factor(model_render_s: float, actual_render_s: float) -> float | None:
    """What a finished run teaches, in a scene-independent form: the per-core speed of the plan
    relative to this machine, as the factor that makes the model (whole pipeline, the run's own
    scene sampled) predict the render time the run measured. The model carries the scene (its
    executed iterations, mirror, supersampling, colour, encode), so a factor learnt on one scene
    prices another; useful iterations per kernel second did not (2x off between scenes)."""
    if model_render_s <= RENDER_START_S or actual_render_s <= RENDER_START_S:
        return None
    return (model_render_s - RENDER_START_S) / (actual_render_s - RENDER_START_S)


def recorded_factors(records: Sequence[Mapping[str, Any]], plan: str) -> list[float]:
    """The plan speed factors of completed one-node runs on this plan."""
    return [float(r["plan_speed_factor"]) for r in records
            if r.get("plan") == plan and r.get("status") == "completed"
            and (r.get("nodes") or 1) == 1
            and isinstance(r.get("plan_speed_factor"), int | float)
            and r["plan_speed_factor"] > 0]


# --- overheads ----------------------------------------------------------------------------------

def overheads(records: Sequence[Mapping[str, Any]], output_bytes: float,
              upload_bytes: int | None = None) -> Overheads:
    """Phase times: medians of earlier runs' records where present, else DEFAULT_PHASES_S."""
    used_records = used_defaults = False
    got: dict[str, float] = {}
    for name in ("create", "boot", "ssh", "bootstrap", "delete"):
        vals = [float(r["phases_s"][name]) for r in records
                if isinstance(r.get("phases_s"), Mapping) and r.get("status") == "completed"
                and isinstance(r["phases_s"].get(name), int | float)]
        if vals:
            got[name] = statistics.median(vals)
            used_records = True
        else:
            got[name] = DEFAULT_PHASES_S[name]
            used_defaults = True
    up = UPLOAD_BYTES_DEFAULT if upload_bytes is None else upload_bytes
    source = ("records+defaults" if used_records and used_defaults
              else "records" if used_records else "defaults")
    return Overheads(create_s=got["create"], boot_s=got["boot"], ssh_s=got["ssh"],
                     bootstrap_s=got["bootstrap"], upload_s=RSYNC_START_S + up / UPLOAD_BYTES_PER_S,
                     download_s=RSYNC_START_S + output_bytes / DOWNLOAD_BYTES_PER_S,
                     delete_s=got["delete"], source=source)


def output_bytes(scene: Scene) -> float:
    return scene.width * scene.height * scene.frames * OUTPUT_BYTES_PER_PX


# --- rows ----------------------------------------------------------------------------------------

def local_row(work: WorkSample, scene: Scene, cal: Calibration) -> PlanEstimate:
    """This machine: no setup, no transfer, $0."""
    r = render_seconds(work, scene, cal, cal.local_cores, 1.0, eff=cal.local_efficiency)
    return PlanEstimate(
        plan="local", type_id=None, vcpus=cal.local_cores, price_hourly_usd=0.0,
        setup_s=0.0, render_s=r, render_error_s=r * interval_rel(work.rel_error),
        download_s=0.0, total_s=r,
        lifetime_s=0.0, billed_hours=0, cost_usd=0.0, speed_source="calibration",
        overhead_source="none")


def plan_row(plan: Plan, work: WorkSample, scene: Scene, cal: Calibration, oh: Overheads,
             records: Sequence[Mapping[str, Any]] = ()) -> PlanEstimate:
    """One plan's row: records' throughput if any, else calibration x plan factor x efficiency."""
    factors = recorded_factors(records, plan.alias)
    if factors:
        factor = statistics.median(factors)
        spread = (statistics.stdev(factors) / factor) if len(factors) > 1 else MODEL_REL_ERROR
        rel = interval_rel(work.rel_error, spread / math.sqrt(len(factors)))
        render = render_seconds(work, scene, cal, plan.vcpus, factor)
        source = (f"{len(factors)} run record(s) on {plan.alias}: {factor:.2f}x this machine's "
                  "per-core speed")
    else:
        render = render_seconds(work, scene, cal, plan.vcpus, PLAN_VCPU_FACTOR)
        source = (f"no runs on {plan.alias} yet: assumes {PLAN_VCPU_FACTOR:g}x this machine's "
                  "per-core speed")
        rel = interval_rel(work.rel_error, UNMEASURED_PLAN_REL_ERROR)
    total = oh.setup_s + render + oh.download_s
    lifetime = total + oh.delete_s
    return PlanEstimate(
        plan=plan.alias, type_id=plan.type_id, vcpus=plan.vcpus,
        price_hourly_usd=plan.price_hourly_usd, setup_s=oh.setup_s, render_s=render,
        render_error_s=render * rel, download_s=oh.download_s, total_s=total,
        lifetime_s=lifetime, billed_hours=billed_hours(lifetime), cost_usd=cost_usd(plan, lifetime),
        speed_source=source, overhead_source=oh.source)


def cheapest(rows: Sequence[PlanEstimate]) -> PlanEstimate | None:
    """Lowest cost, then fastest (local, at $0, wins whenever it is in the list)."""
    return min(rows, key=lambda r: (r.cost_usd, r.total_s), default=None)


def fastest_within(rows: Sequence[PlanEstimate], deadline_s: float | None
                   ) -> PlanEstimate | None:
    """Fastest row finishing within the deadline (ties: cheaper); None if none does."""
    ok = [r for r in rows if deadline_s is None or r.total_s <= deadline_s]
    return min(ok, key=lambda r: (r.total_s, r.cost_usd), default=None)


def hour_warnings(rows: Sequence[PlanEstimate], near_s: float = NEAR_HOUR_S) -> list[str]:
    """Rows a few minutes from another billed hour, and cheaper plans finishing within the hour."""
    out: list[str] = []
    cloud = [r for r in rows if not r.is_local]
    for r in cloud:
        spare = r.billed_hours * 3600.0 - r.lifetime_s
        if spare < near_s:
            out.append(f"{r.plan}: the instance lives ~{r.lifetime_s / 60:.0f} min, "
                       f"{spare / 60:.0f} min short of billed hour {r.billed_hours + 1}; "
                       f"a slow setup would add ${r.price_hourly_usd:.2f}")
        if r.billed_hours > 1:
            # Fewer billed hours for no more money (ties too: the same bill, an hour sooner).
            better = [o for o in cloud if o.billed_hours < r.billed_hours
                      and o.cost_usd <= r.cost_usd + 1e-9]
            if better:
                b = min(better, key=lambda o: (o.cost_usd, o.total_s))
                out.append(f"{r.plan} bills {r.billed_hours} h (${r.cost_usd:.2f}); {b.plan} "
                           f"finishes within {b.billed_hours} h for ${b.cost_usd:.2f}")
    return out


def local_is_nearly_as_fast(local: PlanEstimate, row: PlanEstimate, slack: float = 1.25) -> bool:
    """Local finishes first, or within 25% (or 2 minutes) of the cloud row's total time."""
    return local.total_s <= max(row.total_s * slack, row.total_s + 120.0)


# --- calibration ------------------------------------------------------------------------------

def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "juliafarm"


def kernel_version() -> str:
    """A hash of the kernel's source: a changed kernel invalidates the calibration."""
    import renderer

    h = hashlib.sha256()
    root = Path(renderer.__file__).parent
    for name in KERNEL_VERSION_FILES:
        h.update((root / name).read_bytes())
    return h.hexdigest()[:12]


def machine_key(cores: int) -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    raw = f"{platform.node()}|{platform.machine()}|{model}|{cores}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _best_s(fn: Any, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# Calibration frames: the spiral's view, 400 x 400, 500 iterations. A long-orbit c (work mostly
# iterations) and a fast-escape c (work mostly per-sample costs) separate the two rates.
_CAL_SIDE = 400
_CAL_ITER = 500
_CAL_LONG = complex(-0.62772, -0.42)
_CAL_SHORT = complex(-0.62772, -0.70)
# RESULTS.md (Kernel): 2 threads scale 1.7-1.9x on a quiet machine.
MIN_LOCAL_EFFICIENCY = 0.6


def measure_kernel(cores: int) -> tuple[float, float, float, float]:
    """(s per G executed iterations, s per M computed samples, colour s per M samples, local
    efficiency at `cores` threads)."""
    import numpy as np

    from renderer.colour import colourise, make_palette
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
            t = _best_s(lambda c=c: escape_counts(xs, ys, c, _CAL_ITER, 2.0,
                                                  want_final_modulus=True))
            pts.append((st["iterations"] / 1e9, t))
        (g1, t1), (g2, t2) = pts
        # t = a g + b computed: two equations, two unknowns; clamp to non-negative.
        b = max(0.0, (t2 - t1 * g2 / g1) / computed / (1 - g2 / g1)) if g1 > g2 else 0.0
        a = max(1e-3, (t1 - b * computed) / g1)
        counts, fmod = escape_counts(xs, ys, _CAL_LONG, _CAL_ITER, 2.0, want_final_modulus=True)
        pal = make_palette("viridis", "smooth", _CAL_ITER, 2.0, False)
        colour = _best_s(lambda: colourise(pal, counts, fmod, 1)) / (counts.size / 1e6)
        eff = 1.0
        if cores > 1:
            # Efficiency on a full-size frame: small ones exaggerate the fixed per-call costs.
            bx, by = sample_grid(0.0, 0.0, 1.8, 1.8, 1080, 1080, 1)
            one = _best_s(lambda: escape_counts(bx, by, _CAL_LONG, _CAL_ITER, 2.0), 2)
            set_threads(cores)
            many = _best_s(lambda: escape_counts(bx, by, _CAL_LONG, _CAL_ITER, 2.0), 3)
            eff = min(1.0, one / many / cores)
    finally:
        set_threads(cores)
    del np
    # Another user's job on a core during the measurement drags it down; below
    # MIN_LOCAL_EFFICIENCY it says more about that job than about the kernel.
    return a, b, colour, max(MIN_LOCAL_EFFICIENCY, eff)


def _encode_cpu_s(imgs: Sequence[Any], encoding: Any, fps: float) -> float:
    from renderer.encode import Encoder

    h, w = imgs[0].shape[:2]
    with tempfile.TemporaryDirectory() as d:
        e = Encoder(Path(d) / "probe.mp4", w, h, fps, encoding)
        with e:
            for img in imgs:
                e.write(img)
    return e.stats.cpu_s


def measure_encode(scene: Scene, frames: int = ENCODE_PROBE_FRAMES,
                   max_samples: int = ENCODE_PROBE_SAMPLES) -> float:
    """ffmpeg CPU seconds per megapixel-frame for this scene's codec, preset and motion.

    x264's cost depends on how much consecutive frames differ, so the probe encodes consecutive
    frames from the middle of the scene itself (reduced size, even sides). Its start-up and the
    costly first key frame are taken out by encoding a short and a long run and keeping the
    difference: what a long render pays per frame.
    """
    from renderer.colour import colourise, make_palette
    from renderer.grid import sample_grid
    from renderer.kernel import escape_counts

    w, h = sample_size(scene.width, scene.height, max_samples)
    w, h = w - w % 2, h - h % 2
    v = scene.view
    xs, ys = sample_grid(v.center_x, v.center_y, v.half_width, v.half_height, w, h, 1)
    pal = make_palette(scene.colormap, scene.colour_mode, scene.max_iterations,
                       scene.escape_radius, scene.reverse_colormap)
    n = max(2, min(frames, scene.frames))
    k0 = max(0, scene.frames // 2 - n // 2)
    imgs = []
    for k in range(k0, k0 + n):
        c = scene.c_at_frame(min(k, scene.frames - 1))
        counts, fmod = escape_counts(xs, ys, c, scene.max_iterations, scene.escape_radius,
                                     want_final_modulus=scene.colour_mode == "smooth")
        imgs.append(colourise(pal, counts, fmod, 1))
    short = max(1, n // 4)
    long_cpu = _encode_cpu_s(imgs, scene.encoding, scene.fps)
    short_cpu = _encode_cpu_s(imgs[:short], scene.encoding, scene.fps)
    per_frame = max(long_cpu - short_cpu, 0.0) / (n - short) if n > short else long_cpu / n
    if per_frame <= 0.0:  # a clock too coarse for the probe: fall back to the plain average
        per_frame = long_cpu / n
    return per_frame / (w * h / 1e6)


def calibrate(*, cores: int | None = None, cache: Path | None = None,
              refresh: bool = False) -> Calibration:
    """This machine's speeds, from the cache when the machine and kernel match, else measured."""
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
    if "kernel_s_per_giter" not in data:
        a, b, colour, eff = measure_kernel(n)
        data.update(kernel_s_per_giter=a, kernel_s_per_msample=b, colour_s_per_msample=colour,
                    local_cores=n, local_efficiency=eff,
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
        kernel_version=key.split("-")[1], measured_at=str(data.get("measured_at", "")))


# --- the whole estimate ------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """Every row for one scene, with what went into it."""

    work: WorkSample
    calibration: Calibration
    local: PlanEstimate
    rows: tuple[PlanEstimate, ...]  # cloud plans, in the order given
    price_source: str
    price_date: str | None

    @property
    def all_rows(self) -> tuple[PlanEstimate, ...]:
        return (self.local, *self.rows)


def estimate_scene(scene: Scene, plans: Sequence[Plan], *,
                   records: Sequence[Mapping[str, Any]] = (), upload_bytes: int | None = None,
                   calibration: Calibration | None = None,
                   work: WorkSample | None = None) -> Estimate:
    """Sample the scene, calibrate (cached), and make the local row and one row per plan."""
    work = work or sample_work(scene)
    cal = calibration or calibrate()
    oh = overheads(records, output_bytes(scene), upload_bytes)
    rows = tuple(plan_row(p, work, scene, cal, oh, records) for p in plans)
    src = plans[0].source if plans else "none"
    date = plans[0].snapshot_date if plans else None
    return Estimate(work, cal, local_row(work, scene, cal), rows, src, date)
