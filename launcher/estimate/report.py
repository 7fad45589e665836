"""The estimate as the CLI uses it: `launcher estimate`'s output, and one line for `launcher run`.

Nothing here touches the network or creates anything: plans come in as arguments (the CLI passes
API prices or the offline snapshot), the work is sampled and the speed calibrated locally.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from launcher.config import RunConfig
from launcher.estimate.calibration import calibrate
from launcher.estimate.learning import local_learning, local_ratios, save_prediction
from launcher.estimate.model import (
    MODEL_REL_ERROR,
    Estimate,
    PlanEstimate,
    estimate_scene,
    local_is_nearly_as_fast,
    render_seconds,
)
from launcher.estimate.sampling import WorkSample, sample_work
from launcher.estimate.view import fmt_s, print_json, print_table
from launcher.history import load_history
from launcher.run.record import load_records
from launcher.run.spec import default_state_dir
from provision.plans import Plan, offline_plans, resolve_plan
from renderer.scene import Scene

# One scene's sampled work per process: `launcher run` asks for a line and a verdict.
_WORK: dict[Any, WorkSample] = {}


def _work(scene: Scene) -> WorkSample:
    try:
        return _WORK.setdefault(scene, _WORK.get(scene) or sample_work(scene))
    except TypeError:  # an unhashable scene: just sample
        return sample_work(scene)


def run_records(output_dir: Path | None) -> list[dict[str, Any]]:
    """Every run this machine recorded (the state directory), and any under output_dir/runs
    (older runs, or records copied from another machine); each run once."""
    found = {r["run_id"]: r for r in load_records(output_dir)} if output_dir is not None else {}
    for rec in load_history(default_state_dir()):
        found.setdefault(rec.run_id, asdict(rec))
    return list(found.values())


def model_render_seconds(scene: Scene, plan: Plan) -> float:
    """The model's render time for `plan` at this machine's per-core speed (factor 1): what a
    finished run compares its measured render time with (model.plan_speed_factor). Cold: the
    server's numba cache starts empty, as every rented server's does."""
    work = _work(scene)
    return render_seconds(work, scene, calibrate(), plan.vcpus, 1.0, cold=True)


def build_estimate(scene: Scene, plans: Sequence[Plan], output_dir: Path | None = None,
                   upload_bytes: int | None = None) -> Estimate:
    """The Estimate over plans, using run records under output_dir when there are any and what
    this machine's local renders measured; leaves the local prediction for a render to meet."""
    cal = calibrate()
    learnt = local_learning(local_ratios(cal), MODEL_REL_ERROR)
    est = estimate_scene(scene, plans, records=run_records(output_dir), upload_bytes=upload_bytes,
                         work=_work(scene), calibration=cal, local_learnt=learnt)
    save_prediction(scene, cal, est.local_model_s)
    return est


def print_estimate(scene: Scene, cfg: RunConfig, *, only_plan: str | None = None,
                   deadline_s: float | None = None, as_json: bool = False,
                   plans: Sequence[Plan] | None = None, out: TextIO | None = None,
                   nodes: dict[str, Any] | None = None) -> Estimate:
    """`launcher estimate`: the table (or JSON rows) over the plans, this machine first. With
    `nodes` (an N-node estimate as JSON) the JSON is {"rows": [...], "nodes": {...}}."""
    pool = list(plans) if plans is not None else offline_plans()
    chosen = [resolve_plan(only_plan, pool)] if only_plan else pool
    chosen = [p.in_region(cfg.region) for p in chosen]
    est = build_estimate(scene, chosen, cfg.output_dir)
    if as_json:
        print_json(est, deadline_s, out, extra=None if nodes is None else {"nodes": nodes})
    else:
        print_table(est, deadline_s, out)
    return est


def plan_estimate(scene: Scene, plan: Plan, output_dir: Path | None = Path("output"),
                  upload_bytes: int | None = None) -> PlanEstimate:
    """The plan's row alone: for --max-cost (costguard.check_before_start(row.cost_usd, cap))."""
    return build_estimate(scene, [plan], output_dir, upload_bytes).rows[0]


def line_of(est: Estimate) -> str:
    """One line for `launcher run`: the plan's time and cost, and this machine's, with advice."""
    r, loc = est.rows[0], est.local
    line = (f"estimate on {r.plan}: setup ~{fmt_s(r.setup_s)}, render ~{fmt_s(r.render_s)}, "
            f"total ~{fmt_s(r.total_s)}, billed {r.billed_hours} h = ${r.cost_usd:.2f}; "
            f"this machine: ~{fmt_s(loc.total_s)}, $0")
    if local_is_nearly_as_fast(loc, r):
        line += f" -> render locally: ~{loc.total_s:.0f} s, $0"
    return line


def local_wins(est: Estimate) -> bool:
    """True when this machine finishes first or nearly as fast: `launcher run` should ask."""
    return local_is_nearly_as_fast(est.local, est.rows[0])
