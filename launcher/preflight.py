"""Checks made before anything is rented (and in --dry-run); each failure is one clear line."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from launcher.config import RunConfig
from launcher.errors import ConfigError, LauncherError
from launcher.project import upload_source
from launcher.run.guards import GuardSpec
from launcher.run.single import JobSpec
from provision.errors import ProvisionError
from provision.plans import Plan, plans_from_api, resolve_plan
from renderer.scene import Scene

# The estimate's modules load the renderer's: a run imports them only when it estimates.
if TYPE_CHECKING:
    from launcher.estimate.model import Estimate

LOCAL_TOOLS = ("ssh", "ssh-keygen", "rsync")
MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # more than this means exclude.txt is missing something


@dataclass(frozen=True)
class Checked:
    plan: Plan
    region: str
    upload_dir: Path
    exclude_file: Path
    upload_bytes: int
    estimate_line: str = ""
    estimate_total_s: float | None = None  # for the default lease length
    ssh_from: tuple[str, ...] | None = None  # cloud firewall sources; None: no cloud firewall
    user_data_ok: bool = False  # image and regions take the host key through user_data
    notes: tuple[str, ...] = ()  # what a dry run without an account or network could not check
    model_render_s: float | None = None  # the model's render time at factor 1 (learning)
    # The plan's and this machine's rows, built once for the line, the lease, --max-cost and the
    # "render locally?" question (None: the estimate failed; the run does not depend on it).
    estimate: Estimate | None = None


class PreflightFailed(LauncherError):  # noqa: N818
    """Every problem found, one per line (the CLI prints the message as it is)."""

    exit_code = 2
    multiline = True

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        text = problems[0] if len(problems) == 1 else \
            f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(text)


def preflight(scene: Scene, cfg: RunConfig, cloud: Any, *, cloud_firewall: bool = False,
              ssh_from: str | None = None, account: bool = True,
              plans: list[Plan] | None = None, api_reachable: bool = True) -> Checked:
    """Validate everything; raise PreflightFailed listing every problem, one per line.
    With `cloud_firewall`, the SSH source is `ssh_from` or this machine's detected address.
    account=False (a dry run without a token): the token is not checked, `plans` price it, and
    what needs the network but cannot reach it becomes a note instead of a problem."""
    notes: list[str] = []
    from provision import firewall, hostkey, tokens
    from provision.sync import upload_size

    problems: list[str] = []
    missing = [t for t in LOCAL_TOOLS if shutil.which(t) is None]
    if missing:
        problems.append(f"local tools missing: {', '.join(missing)} (apt-get install "
                        "openssh-client rsync)")
    if scene.output.is_absolute():
        problems.append("output.path: must be a file name for a cloud run (use --output DIR)")
    upload_dir, exclude_file = upload_source()
    size = 0
    try:
        size = upload_size(upload_dir, exclude_file)
        if size > MAX_UPLOAD_BYTES:
            problems.append(f"upload would be {size / 1e6:.0f} MB after {exclude_file.name}: "
                            "add what should stay local to exclude.txt")
    except ProvisionError as exc:
        problems.append(str(exc))
    sources: tuple[str, ...] | None = None
    if cloud_firewall:
        try:
            sources = firewall.normalise_cidrs([ssh_from or firewall.detect_public_cidr()])
        except ValueError as exc:
            problems.append(f"--ssh-from: {exc}")
        except ProvisionError as exc:
            (problems if account else notes).append(" ".join(str(exc).split()))
    plan: Plan | None = None
    region = cfg.regions[0]
    user_data_ok = False
    try:
        if account:
            cloud.check_access()
            scopes = str(getattr(cloud, "last_headers", {}).get("X-OAuth-Scopes", "*"))
            missing = tokens.missing_scopes(scopes, tokens=True, firewall=cloud_firewall)
            if missing:
                problems.append("the Linode API token lacks " + ", ".join(missing))
        else:
            notes.append("no Linode API token: its checks are skipped (a real run needs one)")
        plan = resolve_plan(cfg.plan, plans if plans is not None else plans_from_api(cloud))
        try:
            if not api_reachable:  # the price lookup found no API: do not wait for it again
                raise ProvisionError("the API did not answer")
            offered = [r for r in cfg.regions if cloud.region_offers(r, plan.type_id)]
            user_data_ok = hostkey.user_data_supported(cloud, cfg.image, cfg.regions)
        except ProvisionError as exc:
            if account:
                raise
            offered = list(cfg.regions)
            notes.append(f"regions not checked ({' '.join(str(exc).split())})")
        if not offered:
            problems.append(f"plan {plan.type_id} is not offered in {', '.join(cfg.regions)}")
        else:
            region = offered[0]
    except (ProvisionError, ConfigError) as exc:
        problems.append(" ".join(str(exc).split()))
    if problems or plan is None:
        raise PreflightFailed(problems or ["no plan could be resolved"])
    est, line, model_s = _estimate(scene, plan.in_region(region), cfg, size)
    return Checked(plan, region, upload_dir, exclude_file, size, line,
                   est.rows[0].total_s if est else None, sources, user_data_ok, tuple(notes),
                   model_s, est)


def _estimate(scene: Scene, plan: Plan, cfg: RunConfig, upload_bytes: int
              ) -> tuple[Estimate | None, str, float | None]:
    """The plan's and this machine's estimate, its one-line form, and the model's render time at
    factor 1 (what the finished run learns from); an estimate never blocks a run."""
    try:
        from launcher.estimate.report import build_estimate, line_of, model_render_seconds

        est = build_estimate(scene, [plan], cfg.output_dir, upload_bytes)
        return est, line_of(est), model_render_seconds(scene, plan)
    except Exception as exc:  # noqa: BLE001 - the run does not depend on the estimate
        return None, f"estimate unavailable: {' '.join(str(exc).split())[:160]}", None


def build_spec(scene: Scene, scene_path: Path, cfg: RunConfig, checked: Checked,
               render_args: tuple[str, ...], keep_frames: bool = False,
               detach: bool = False) -> JobSpec:
    import os

    from launcher.config import lease_seconds
    from provision.token import server_api_url

    regions = (checked.region, *[r for r in cfg.regions if r != checked.region])
    guards = GuardSpec(
        lease_s=cfg.max_lifetime_s or lease_seconds(checked.estimate_total_s),
        server_api_url=server_api_url(os.environ),
        ssh_from=checked.ssh_from,
        host_key_user_data=checked.user_data_ok,
    )
    return JobSpec(
        scene_path=scene_path,
        scene_output_name=scene.output.name,
        frames=scene.frames,
        render_args=render_args,
        plan=checked.plan,
        regions=regions,
        image=cfg.image,
        output_dir=cfg.output_dir,
        project_dir=checked.upload_dir,
        exclude_file=checked.exclude_file,
        user=cfg.user,
        deps=cfg.deps,
        keep_frames=keep_frames,
        max_cost_usd=cfg.max_cost_usd,
        guards=guards,
        detach=detach,
        model_render_s=checked.model_render_s,
        upload_bytes=checked.upload_bytes,
        scene_summary={
            "width": scene.width, "height": scene.height, "frames": scene.frames,
            "fps": scene.fps, "max_iterations": scene.max_iterations,
            "supersample": scene.supersample, "c_first": str(scene.c_at_frame(0)),
            "c_last": str(scene.c_at_frame(scene.frames - 1)),
        },
    )
