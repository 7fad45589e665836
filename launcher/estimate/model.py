"""Time and cost model of a run: the scene's measured work x this machine's speeds x the plan,
under Linode's billing.

A row is the whole pipeline, term by term, each from a measurement:

- setup: create, boot, ssh, bootstrap: earlier runs' records, the newest weighted most
  (`recent_level`; of the same plan and region when there are some), else DEFAULT_PHASES_S;
- upload: the project's bytes after exclude.txt at the rate earlier runs' syncs measured, else a
  home uplink;
- render: the scene's executed kernel iterations and samples (`sampling.sample_work`), colour
  per sample and x264 CPU per megapixel at the scene's size and settings (`sampling` probes it),
  at this machine's calibrated speeds (`calibration`), overlapped as the renderer overlaps them,
  plus a renderer's start-up (and, on a fresh server, its first-use compile);
- pull: the MP4's bytes (bytes per pixel from the encoder probe) at the rate earlier pulls
  measured, else a typical downlink;
- delete: records, else DEFAULT_PHASES_S.

A plan's vCPU runs at `plan_speed_factor` x a core here: learnt from finished runs on the plan
(scene-independent, see plan_speed_factor), else the assumption PLAN_VCPU_FACTOR. Cost:
`provision.billing.cost_usd` over the instance's lifetime (create .. confirmed delete).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from launcher.estimate.calibration import PIPELINE_REFS, Calibration, calibrate
from launcher.estimate.learning import LocalLearning
from launcher.estimate.sampling import WorkSample, encoder_processes_cpu_s, sample_work
from provision.billing import billed_hours, cost_usd
from provision.plans import Plan
from renderer.encode import direct_input
from renderer.scene import Scene, parse_scene

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
# The model's own error, measured (benchmarks/RESULTS.md, "Estimate"): predicted vs measured
# render time of 11 scenes of different kinds (mirror on and off, ss2, 4K, 100 to 5000
# iterations, short and long) on this machine: 18.7% and 21.2% RMS in two runs of an earlier
# model, 12.5% RMS (worst -20.9%) in the last, most of it x264 (its CPU per frame, probed on a
# few dozen frames, is 15-20% under what the renders of spiral-like scenes spend).
# Taken as 20% (1 sigma) until the user's own renders measure it (learning).
MODEL_REL_ERROR = 0.20
# A plan without runs rests on PLAN_VCPU_FACTOR, an assumption: its speed is taken as uncertain
# by 30% (1 sigma) on top, until a run measures it.
UNMEASURED_PLAN_REL_ERROR = 0.30
# The interval printed is the central 80%: +/- 1.28 sigma of a normal error.
INTERVAL_Z = 1.2816
# The part of a render's start-up taken as not scaling with a plan's speed when a run's factor is
# learnt (calibration.DEFAULT_START_S; measured start-ups here are 0.8-1.5 s).
RENDER_START_S = 1.5

# --- overheads (seconds), used when no run record has the phase ------------------------------
# From the e2e runs against the local emulator plus Linode's documented provisioning times,
# rounded up: create (API until the instance exists), boot (until 'running'), ssh (sshd answers
# with the pinned key), bootstrap (apt ffmpeg/rsync, venv, pip numba+numpy wheels), delete (API
# confirms the instance is gone; billed until then).
DEFAULT_PHASES_S: Mapping[str, float] = {
    "create": 20.0, "boot": 45.0, "ssh": 15.0, "lease": 2.0, "bootstrap": 150.0, "delete": 10.0,
}
UPLOAD_BYTES_DEFAULT = 3_000_000        # the project after exclude.txt, when not measured
UPLOAD_BYTES_PER_S = 10e6               # a home uplink of ~100 Mbit/s
DOWNLOAD_BYTES_PER_S = 25e6             # Linode egress is fast; the user's downlink is the limit
RSYNC_START_S = 3.0                     # ssh handshake and file list, per transfer
# MP4 size per pixel per frame: 86.9 MB for 1800 frames of 1080x1080 at crf 18 (RESULTS.md,
# Pipeline) is 0.041 B/px; rounded up.
OUTPUT_BYTES_PER_PX = 0.05
# Overheads come from this many newest runs of the closest kind (see recent_level).
RECENT_RUNS = 5
# A lifetime this close below a whole billed hour earns a warning: setup is that variable.
NEAR_HOUR_S = 300.0
# Setup's uncertainty (1 sigma, relative to the estimate). From the defaults: a real Linode's
# documented times, not this user's runs. From one run: what one run says about the next, where
# the test hosts' setups (RESULTS.md, "Cloud runs") moved by 15-40% from one run to the next. From
# several: their scatter, but never below the floor (a few flat runs prove no steadier provider).
SETUP_REL_ERROR_DEFAULTS = 0.5
SETUP_REL_ERROR_ONE_RUN = 0.3
SETUP_REL_ERROR_FLOOR = 0.1
SETUP_PHASES = ("create", "boot", "ssh", "lease", "bootstrap")


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
    lease_s: float = 0.0  # starting the server's lease watchdog (ssh, a token, a timer)
    setup_sigma_s: float = 0.0  # 1 sigma of create .. bootstrap (setup_sigma_s)

    @property
    def setup_s(self) -> float:
        return (self.create_s + self.boot_s + self.ssh_s + self.lease_s + self.bootstrap_s
                + self.upload_s)


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
    upload_s: float = 0.0     # the part of setup_s spent sending the project
    setup_error_s: float = 0.0  # half-width of setup's 80% interval, as render_error_s
    # Half-width of total_s's 80% interval: the render's and setup's, independent.
    total_error_s: float = 0.0

    @property
    def is_local(self) -> bool:
        return self.plan == "local"

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 4 if k.endswith("usd") else 1)
        return d


# --- speed -----------------------------------------------------------------------------------

def efficiency(cores: int, slope: float = EFFICIENCY_SLOPE) -> float:
    """Documented parallel-efficiency model: 1 / (1 + slope (cores - 1))."""
    return 1.0 / (1.0 + slope * (max(1, cores) - 1))


# x264's lookahead by preset (its preset table): the frames it still holds when the last frame
# is in, which it encodes after the kernel has finished, with nothing to overlap them.
X264_LOOKAHEAD = {"ultrafast": 0, "superfast": 0, "veryfast": 10, "faster": 20, "fast": 30,
                  "medium": 40, "slow": 50, "slower": 60, "veryslow": 60, "placebo": 60}
# Cores x264's threads spread that drain over (frame threads, a few at a time): an assumption.
DRAIN_CORES = 4


def final_drain_s(work: WorkSample, scene: Scene, cores: int) -> float:
    """Seconds x264 takes after the last frame to encode what its lookahead holds."""
    held = min(X264_LOOKAHEAD.get(scene.encoding.preset, 40), scene.frames)
    frame_cpu = scene.width * scene.height / 1e6 * work.encode_cpu_s_per_mpx
    return held * frame_cpu / max(1, min(cores, DRAIN_CORES))


def colour_s_per_msample(scene: Scene, cal: Calibration) -> float:
    """This machine's colour cost per M samples for the scene's supersampling and pixel format.

    A supersampled pixel's samples are each taken to linear light before their average: 2.3x a
    plain sample's cost (the 2 x 2 rate was taken for every supersampled scene before, and the
    spiral at 720 x 720 ss2 came out 20% low); 3 x 3 lies between the 2 x 2 and 4 x 4 rates."""
    ss2, ss4 = cal.colour_ss2_s_per_msample, cal.colour_ss4_s_per_msample
    if scene.supersample >= 2 and ss2:
        ss4 = ss4 or ss2
        return ss2 + (ss4 - ss2) * (min(scene.supersample, 4) - 2) / 2
    # The render colours straight to the planes x264 takes where the pixel format allows.
    if direct_input(scene.encoding) == "yuv420p" and cal.colour_yuv_s_per_msample:
        return cal.colour_yuv_s_per_msample
    return cal.colour_s_per_msample


def core_seconds(work: WorkSample, scene: Scene, cal: Calibration
                 ) -> tuple[float, float, float]:
    """(kernel, colour, encode) single-core seconds of the whole render on this machine."""
    kernel = work.executed_giter * cal.kernel_s_per_giter + \
        work.computed_msamples * cal.kernel_s_per_msample
    colour = work.samples_per_frame * work.frames / 1e6 * colour_s_per_msample(scene, cal)
    encode = scene.width * scene.height * work.frames / 1e6 * work.encode_cpu_s_per_mpx
    encode += encoder_processes_cpu_s(scene)
    return kernel, colour, encode


def _cpu_bound_s(work: WorkSample, scene: Scene, cal: Calibration, eff: float) -> float:
    """Single-core seconds the render's critical resource needs: the kernel alone at its
    parallel efficiency, or kernel, colour and x264 together (they share the cores, and x264
    fills the kernel's idle threads)."""
    kernel, colour, encode = core_seconds(work, scene, cal)
    return max(kernel / eff, kernel + colour + encode)


_REFERENCE_SCENES: dict[int, Scene] = {}


def _reference_scene(i: int) -> Scene:
    if i not in _REFERENCE_SCENES:
        _REFERENCE_SCENES[i] = parse_scene(PIPELINE_REFS[i])
    return _REFERENCE_SCENES[i]


def pipeline_terms(cal: Calibration) -> tuple[float, float]:
    """(fixed seconds per render, pipeline factor), fitted to the calibration's reference renders.

    The stage costs are measured one at a time; inside the pipeline they lose some of the cores
    to each other (caches, a thread waiting for a core, x264's threads woken for every frame):
    the factor on the shared work. And a render pays once what the 2-frame start-up render did
    not: x264's final drain (final_drain_s, taken out of the measurements first) and whatever
    else is fixed. A tiny reference render fixes the second, a spiral-sized one the first:
    solved exactly (two equations), then held to plausible ranges so a disturbed calibration
    cannot run away.
    (Earlier forms: a per-frame cost in place of the fixed one, fitted to 500 tiny frames and 120
    mid-size ones, which cannot tell it from the factor, said 1.3 where scenes of 900 spiral
    frames or 4000 small ones measured 1.05-1.15; a per-segment cost, now that x264's flush at a
    segment's end overlaps the next segment (render._Drain), is the same collinear trap.)
    """
    if len(cal.pipeline_refs) < 2:
        return 0.0, 1.0
    rows = []
    for i, fields, measured in cal.pipeline_refs[:2]:
        scene = _reference_scene(i)
        work = WorkSample(**{**fields, "sample_side_px": tuple(fields["sample_side_px"])})
        cpu = _cpu_bound_s(work, scene, cal, cal.local_efficiency) / cal.local_cores
        drain = final_drain_s(work, scene, cal.local_cores)
        rows.append((cpu, max(0.0, measured - cal.start_s - drain)))
    (c1, m1), (c2, m2) = sorted(rows)
    if c2 - c1 <= 1e-9:
        return 0.0, 1.0
    factor = min(max((m2 - m1) / (c2 - c1), 0.7), 2.0)
    fixed = min(max(m1 - factor * c1, 0.0), 2.0)
    return fixed, factor


def render_seconds(work: WorkSample, scene: Scene, cal: Calibration, cores: int,
                   core_speed: float = 1.0, eff: float | None = None, cold: bool = False
                   ) -> float:
    """Wall seconds to render on `cores` cores each `core_speed` times a core here.

    The pipeline overlaps the kernel with colour and x264 on the same cores, so the render takes
    its core-seconds over the cores; but never less than the kernel alone at its parallel
    efficiency. The kernel's idle thread time (imbalance, per-frame fixed costs) is filled by the
    encoder, which is why efficiency is not simply applied to the sum. On top, what the pipeline
    measurably costs beyond its stages (`pipeline_terms`): a fixed cost per render, at the
    core's speed, and a factor on the shared work.
    `cold`: numba's cache is empty (a fresh server), so the first frame waits for the compile,
    which runs on one core at that core's speed.
    """
    fixed, factor = pipeline_terms(cal)
    start = cal.start_s + (cal.compile_s / core_speed if cold else 0.0)
    bound = _cpu_bound_s(work, scene, cal, efficiency(cores) if eff is None else eff)
    return (start + (fixed + final_drain_s(work, scene, cores)) / core_speed
            + factor * bound / (cores * core_speed))


def interval_rel(sampling_rel: float, plan_rel: float = 0.0,
                 model_rel: float = MODEL_REL_ERROR) -> float:
    """Half-width of the printed 80% interval, relative: the work sample's error, the model's
    measured error (the benchmark's, or what the user's own renders measured) and the plan's
    speed uncertainty, independent, so added in quadrature."""
    return INTERVAL_Z * math.sqrt(sampling_rel**2 + model_rel**2 + plan_rel**2)


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
            and _node_count(r) == 1
            and isinstance(r.get("plan_speed_factor"), int | float)
            and r["plan_speed_factor"] > 0]


# --- overheads ---------------------------------------------------------------------------------

def _node_count(r: Mapping[str, Any]) -> int:
    """How many nodes a recorded run had (records from before `--nodes` have no count: one)."""
    n = r.get("nodes")
    return n if isinstance(n, int) and n > 0 else 1


def _finished(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Completed runs that recorded their phases, oldest first."""
    return sorted((r for r in records if r.get("status") == "completed"
                   and isinstance(r.get("phases_s"), Mapping)),
                  key=lambda r: str(r.get("started_at") or ""))


def _completed(records: Sequence[Mapping[str, Any]], plan: str | None,
               region: str | None = None) -> list[Mapping[str, Any]]:
    """Completed one-node runs' records, the closest kind there is: on `plan` in `region`, else
    on `plan`, else in `region` (transfers go the same way), else all of them (a plan's setup and
    transfers resemble another's far more than the defaults resemble either).

    Runs on several nodes only when there is no one-node run at all: their phases are the
    slowest of N nodes set up at once (a 4-node run's setup had made the next one-node estimate
    the slowest of four)."""
    done = _finished(records)
    done = [r for r in done if _node_count(r) == 1] or done

    def where(same_plan: bool, same_region: bool) -> list[Mapping[str, Any]]:
        return [r for r in done
                if (not same_plan or (plan is not None and r.get("plan") == plan))
                and (not same_region or (region is not None and r.get("region") == region))]

    chosen = where(True, True) or where(True, False) or where(False, True) or done
    # The newest runs: setup drifts (images, mirrors, the provider's load), and a median over
    # every run ever lags behind it.
    return chosen[-RECENT_RUNS:]


def recorded_cluster_start_s(records: Sequence[Mapping[str, Any]], plan: str | None
                             ) -> float | None:
    """What starting the Dask cluster (scheduler, workers, tunnel, client) took in earlier
    multi-node runs, the plan's first (recent_level); None without such a run."""
    started = [(r, v) for r in _finished(records)
               if _node_count(r) > 1 and (v := _phase(r, "cluster")) is not None]
    vals = [v for r, v in started if r.get("plan") == plan] or [v for _, v in started]
    return recent_level(vals) if vals else None


def recorded_nodes_setup_s(records: Sequence[Mapping[str, Any]], plan: str | None
                           ) -> dict[int, float]:
    """By node count above one: create .. sync (upload included, as a row's setup_s) as earlier
    completed runs of `plan` on that many nodes took it, their recent_level. Their phases are the
    slowest node's (the nodes are set up at once), which is what the next such run waits for."""
    by_count: dict[int, list[float]] = {}
    for r in _finished(records):
        phases = [_phase(r, n) for n in (*SETUP_PHASES, "sync")]
        if r.get("plan") == plan and _node_count(r) > 1 and None not in phases:
            by_count.setdefault(_node_count(r), []).append(sum(p or 0.0 for p in phases))
    return {n: recent_level(v) for n, v in by_count.items()}


def recent_level(values: Sequence[float]) -> float:
    """The time the next run will likely take, from earlier runs' times, oldest first: the
    newest, pulled halfway to the median of the RECENT_RUNS newest.

    Setup drifts (a provider's images grow, a mirror slows, the hosts of the local cloud warm
    up): a median of five runs lags a series that rises run by run (on the test hosts it put the
    fourth of 18.7, 21.1, 24.4, 26.7 s at -21%), the newest alone follows it; one slow run (an
    apt mirror's bad minute) moves this by half of its excess, not all of it.
    """
    recent = list(values)[-RECENT_RUNS:]
    return (recent[-1] + statistics.median(recent)) / 2.0


def _phase(r: Mapping[str, Any], name: str) -> float | None:
    v = r["phases_s"].get(name)
    return float(v) if isinstance(v, int | float) and v >= 0 else None


def pulled_bytes(r: Mapping[str, Any]) -> int | None:
    """Bytes a run pulled: its outputs with a size (the MP4, not a frames directory)."""
    sizes = [o["bytes"] for o in r.get("outputs") or () if isinstance(o, Mapping)
             and isinstance(o.get("bytes"), int)]
    return sum(sizes) if sizes else None


def transfer_s(records: Sequence[Mapping[str, Any]], phase: str, size_of: Any, nbytes: float
               ) -> float | None:
    """Seconds to move `nbytes` as earlier runs moved theirs: each record's phase time, its
    first RSYNC_START_S kept as the fixed handshake and the rest scaled by the byte ratio;
    their recent_level (records oldest first). None if no record measured both the phase and
    its bytes."""
    preds = []
    for r in records:
        t, b = _phase(r, phase), size_of(r)
        if t is None or not b:
            continue
        fixed = min(t, RSYNC_START_S)
        preds.append(fixed + (t - fixed) * nbytes / b)
    return recent_level(preds) if preds else None


def _upload_bytes_of(r: Mapping[str, Any]) -> int | None:
    v = r.get("upload_bytes")
    return v if isinstance(v, int) and v > 0 else None


def overheads(records: Sequence[Mapping[str, Any]], output_bytes: float,
              upload_bytes: int | None = None, plan: str | None = None,
              region: str | None = None) -> Overheads:
    """Phase times: recent_level of earlier runs' records (of `plan` in `region` if any, see
    _completed) where present, else DEFAULT_PHASES_S; transfers at the rates those runs
    measured, else the default rates."""
    done = _completed(records, plan, region)
    used_records = used_defaults = False
    got: dict[str, float] = {}
    for name in (*SETUP_PHASES, "delete"):
        vals = [v for r in done if (v := _phase(r, name)) is not None]
        if vals:
            got[name] = recent_level(vals)
            used_records = True
        else:
            got[name] = DEFAULT_PHASES_S[name]
            used_defaults = True
    setups = [sum(got[n] if (v := _phase(r, n)) is None else v for n in SETUP_PHASES)
              for r in done if any(_phase(r, n) is not None for n in SETUP_PHASES)]
    up = UPLOAD_BYTES_DEFAULT if upload_bytes is None else upload_bytes
    upload = transfer_s(done, "sync", _upload_bytes_of, up)
    download = transfer_s(done, "pull", pulled_bytes, output_bytes)
    used_records |= upload is not None or download is not None
    used_defaults |= upload is None or download is None
    source = ("records+defaults" if used_records and used_defaults
              else "records" if used_records else "defaults")
    return Overheads(
        create_s=got["create"], boot_s=got["boot"], ssh_s=got["ssh"], lease_s=got["lease"],
        bootstrap_s=got["bootstrap"],
        upload_s=upload if upload is not None else RSYNC_START_S + up / UPLOAD_BYTES_PER_S,
        download_s=(download if download is not None
                    else RSYNC_START_S + output_bytes / DOWNLOAD_BYTES_PER_S),
        delete_s=got["delete"], source=source,
        setup_sigma_s=setup_sigma_s(setups, sum(got[n] for n in SETUP_PHASES)))


def setup_sigma_s(setups: Sequence[float], level: float) -> float:
    """Setup's uncertainty in seconds (1 sigma) around `level`, from the setups (create ..
    bootstrap) of the earlier runs the estimate used: see SETUP_REL_ERROR_*."""
    if not setups:
        return SETUP_REL_ERROR_DEFAULTS * level
    if len(setups) == 1:
        return SETUP_REL_ERROR_ONE_RUN * level
    return max(SETUP_REL_ERROR_FLOOR * level, statistics.stdev(setups))


def output_bytes(scene: Scene, work: WorkSample | None = None) -> float:
    """The MP4's size: the encoder probe's bytes per pixel-frame when measured."""
    per_px = (work.output_bytes_per_px if work is not None and work.output_bytes_per_px
              else OUTPUT_BYTES_PER_PX)
    return scene.width * scene.height * scene.frames * per_px


# --- rows ----------------------------------------------------------------------------------------

def local_model_s(work: WorkSample, scene: Scene, cal: Calibration) -> float:
    """The model's render time on this machine, before what local renders taught."""
    return render_seconds(work, scene, cal, cal.local_cores, 1.0, eff=cal.local_efficiency)


def local_row(work: WorkSample, scene: Scene, cal: Calibration,
              learnt: LocalLearning | None = None) -> PlanEstimate:
    """This machine: no setup, no transfer, $0; corrected by the user's own local renders."""
    r = local_model_s(work, scene, cal)
    rel = interval_rel(work.rel_error)
    source = "calibration"
    if learnt is not None:
        r *= learnt.factor
        rel = interval_rel(work.rel_error, model_rel=learnt.rel_error)
        source = f"calibration x {learnt.factor:.2f}: {learnt.describe()}"
    return PlanEstimate(
        plan="local", type_id=None, vcpus=cal.local_cores, price_hourly_usd=0.0,
        setup_s=0.0, render_s=r, render_error_s=r * rel,
        download_s=0.0, total_s=r, total_error_s=r * rel,
        lifetime_s=0.0, billed_hours=0, cost_usd=0.0, speed_source=source,
        overhead_source="none")


def plan_row(plan: Plan, work: WorkSample, scene: Scene, cal: Calibration, oh: Overheads,
             records: Sequence[Mapping[str, Any]] = ()) -> PlanEstimate:
    """One plan's row: records' throughput if any, else calibration x plan factor x efficiency."""
    factors = recorded_factors(records, plan.alias)
    if factors:
        factor = statistics.median(factors)
        spread = (statistics.stdev(factors) / factor) if len(factors) > 1 else MODEL_REL_ERROR
        rel = interval_rel(work.rel_error, spread / math.sqrt(len(factors)))
        render = render_seconds(work, scene, cal, plan.vcpus, factor, cold=True)
        source = (f"{len(factors)} run record(s) on {plan.alias}: {factor:.2f}x this machine's "
                  "per-core speed")
    else:
        render = render_seconds(work, scene, cal, plan.vcpus, PLAN_VCPU_FACTOR, cold=True)
        source = (f"no runs on {plan.alias} yet: assumes {PLAN_VCPU_FACTOR:g}x this machine's "
                  "per-core speed")
        rel = interval_rel(work.rel_error, UNMEASURED_PLAN_REL_ERROR)
    total = oh.setup_s + render + oh.download_s
    lifetime = total + oh.delete_s
    # Upload is in setup_s too; its scatter is small next to the bootstrap's (RESULTS.md).
    setup_err = INTERVAL_Z * oh.setup_sigma_s
    return PlanEstimate(
        plan=plan.alias, type_id=plan.type_id, vcpus=plan.vcpus,
        price_hourly_usd=plan.price_hourly_usd, setup_s=oh.setup_s, render_s=render,
        render_error_s=render * rel, download_s=oh.download_s, total_s=total,
        lifetime_s=lifetime, billed_hours=billed_hours(lifetime), cost_usd=cost_usd(plan, lifetime),
        speed_source=source, overhead_source=oh.source, upload_s=oh.upload_s,
        setup_error_s=setup_err, total_error_s=math.hypot(render * rel, setup_err))


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
    local_model_s: float = 0.0  # the local row's render before learning: what a render meets

    @property
    def all_rows(self) -> tuple[PlanEstimate, ...]:
        return (self.local, *self.rows)


def estimate_scene(scene: Scene, plans: Sequence[Plan], *,
                   records: Sequence[Mapping[str, Any]] = (), upload_bytes: int | None = None,
                   calibration: Calibration | None = None,
                   work: WorkSample | None = None,
                   local_learnt: LocalLearning | None = None) -> Estimate:
    """Sample the scene, calibrate (cached), and make the local row and one row per plan."""
    work = work or sample_work(scene)
    cal = calibration or calibrate()
    out = output_bytes(scene, work)
    rows = tuple(plan_row(p, work, scene, cal,
                          overheads(records, out, upload_bytes, p.alias, p.region), records)
                 for p in plans)
    src = plans[0].source if plans else "none"
    date = plans[0].snapshot_date if plans else None
    return Estimate(work, cal, local_row(work, scene, cal, local_learnt), rows, src, date,
                    local_model_s(work, scene, cal))
