"""The `launcher` command line: parses flags, resolves the run, delegates to launcher.run.single."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from launcher.config import RunConfig, merge
from launcher.errors import ConfigError, Interrupted, Refused, exit_code_for
from provision import billing
from provision.bootstrap import DEPS_MODES
from renderer.cli_common import (
    SceneArg,
    resolve_scene_path,
    scene_overrides,
    tidy_help,
    version_option,
)
from renderer.errors import RenderError
from renderer.scene import Overrides, Scene, load_scene

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    add_completion=True,
    rich_markup_mode=None,  # help texts mention [cloud] tables literally
    help="Render a scene on a rented dedicated-CPU Linode that is always deleted afterwards.\n\n"
    "The API token comes from LINODE_TOKEN or a 0600 token file (LINODE_TOKEN_FILE, default "
    "~/.config/juliafarm/token) — never from the command line.\n\n"
    "Exit codes: 0 done · 1 failed (everything deleted) · 2 bad input or preflight (nothing "
    "created) · 3 declined · 4 an instance may still exist (its delete was not confirmed: run "
    "the printed `launcher down RUN --yes`) · 130 interrupted (everything deleted).",
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    version: Annotated[bool, version_option("launcher")] = False,
) -> None:
    """Shows --version; the commands do the work."""


ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="The scene, as an option (same as the SCENE argument).",
                 show_default=False),
]
PlanOpt = Annotated[str | None, typer.Option("--plan", help="dedicated-N or a Linode type id.")]


def user_errors(func: F) -> F:
    """One line on stderr and an exit code for every expected failure; tracebacks only with
    JULIAFARM_DEBUG=1."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (Interrupted, KeyboardInterrupt) as exc:
            _say(str(exc) or "interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            code = exit_code_for(exc)
            if code is None:
                raise
            _debug_reraise()
            keep_lines = code == 4 or getattr(exc, "multiline", False)
            _say(f"error: {exc}" if keep_lines else f"error: {' '.join(str(exc).split())}")
            raise typer.Exit(code) from None

    return wrapper  # type: ignore[return-value]


def _say(text: str) -> None:
    """The closing line on stderr, best effort: a closed terminal must not turn an exit code
    into a traceback."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _debug_reraise() -> None:
    if os.environ.get("JULIAFARM_DEBUG", "") not in ("", "0"):
        raise


def _scene_path(scene_file: Path | None, config: Path | None) -> Path | None:
    """SCENE as an argument (like `renderer`) or --config (older spelling); not two different
    ones."""
    if scene_file is not None and config is not None and scene_file != config:
        raise ConfigError(f"two scenes given: {scene_file} and --config {config}; pass one")
    return scene_file or config


def _load(config: Path | None, ov: Overrides) -> Scene:
    scene = load_scene(resolve_scene_path(config), ov)
    return scene


def _run_config(scene: Scene, **flags: Any) -> RunConfig:
    return merge(scene.cloud, **flags)


def _override_args(ov: Overrides) -> tuple[str, ...]:
    from launcher.run.spec import render_args_from

    d = {k: v for k, v in asdict(ov).items() if k != "output"}
    return render_args_from(d)


@app.command()
@user_errors
def validate(scene_file: SceneArg = None, config: ConfigOpt = None) -> None:
    """Check a scene and its [cloud] table without touching any API."""
    config = _scene_path(scene_file, config)
    scene = _load(config, Overrides())
    cfg = _run_config(scene)
    from provision.plans import offline_plans, resolve_plan

    plan = resolve_plan(cfg.plan, offline_plans())
    typer.echo(f"ok: {scene.frames} frames of {scene.width}x{scene.height}, plan {plan.alias} "
               f"({plan.type_id}, {plan.vcpus} vCPUs), regions {', '.join(cfg.regions)}, "
               f"image {cfg.image}")


@app.command()
@user_errors
def plans(
    offline: Annotated[bool, typer.Option("--offline", help="Use the shipped price snapshot.")]
    = False,
) -> None:
    """List the dedicated-CPU plans with vCPUs, memory and price."""
    from provision.plans import offline_plans

    if offline:
        plan_list, said = offline_plans(), f"the {offline_plans()[0].snapshot_date} snapshot"
    else:
        source = _price_source(announce=False)
        plan_list, said = source.plans, source.said
    typer.echo(f"{'plan':<14}{'type':<20}{'vCPUs':>6}{'memory':>10}{'$/hour':>9}{'$/month':>9}")
    for p in plan_list:
        monthly = f"{p.price_monthly_usd:.0f}" if p.price_monthly_usd is not None else "-"
        typer.echo(f"{p.alias:<14}{p.type_id:<20}{p.vcpus:>6}{p.memory_mb // 1024:>8}GB"
                   f"{p.price_hourly_usd:>9.3f}{monthly:>9}")
    typer.echo(f"prices: {said} (some regions price higher: br-gru, id-cgk)")


def _price_source(announce: bool = True) -> Any:
    """Plans and where their prices come from: live (no token needed), cached, or the
    snapshot; says which on stderr unless they are live."""
    from provision.plans import current_plans, default_cache_path
    from provision.retry import RetryPolicy

    cloud = _cloud(require_token=False, quick=True)
    cloud.policy = RetryPolicy(attempts=1)  # one try: the cache or the snapshot are right here
    source = current_plans(cloud.types, default_cache_path())
    if announce and not source.live:
        _say(f"prices: {source.said}")
    return source


def _plans_online_or_snapshot() -> list[Any]:
    return list(_price_source().plans)


def _cloud(require_token: bool = True, quick: bool = False) -> Any:
    """The API client. quick: read-only commands fail in seconds (short timeouts, few retries);
    without a token, only the public endpoints (plans, regions) answer."""
    from provision.cloud import LinodeCloud
    from provision.retry import DEFAULT_POLICY, QUICK_POLICY
    from provision.token import api_base_url, load_token

    token = load_token() if require_token else _token_or_none()
    cloud = LinodeCloud(token, base_url=api_base_url(os.environ),
                        policy=QUICK_POLICY if quick else DEFAULT_POLICY,
                        request_timeout_s=5.0 if quick else 30.0,
                        connect_timeout_s=2.0 if quick else 10.0)
    cloud.on_retry = lambda text: _say(f"    {text}")
    return cloud


def _token_or_none() -> str | None:
    from provision.errors import TokenError
    from provision.token import load_token

    try:
        return load_token()
    except TokenError:
        return None


@app.command("ls")
@user_errors
def list_instances(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per instance.")]
    = False,
) -> None:
    """List instances tagged juliafarm: run, plan, $/h, age, cost so far, lease, mode."""
    from launcher.inventory import inventory, inventory_lines

    rows = inventory(_cloud(quick=True), _state_root())
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
    elif not rows:
        typer.echo("no juliafarm instances")
    else:
        for line in inventory_lines(rows):
            typer.echo(line)


@app.command()
@user_errors
def cleanup(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    all_runs: Annotated[bool, typer.Option("--all", help="Also runs whose lease is still live "
                                           "(a healthy detached run, say).")] = False,
    older_than: Annotated[str | None, typer.Option("--older-than", help="Only instances older "
                                                   "than this, e.g. 2h, 30m.")] = None,
) -> None:
    """Delete what killed launchers left: instances tagged juliafarm (sparing runs with a live
    lease unless --all), then the runs' cloud firewalls and lease tokens once nothing needs
    them."""
    from launcher.cleanup import carry_out, plan_cleanup, revoke_all_lease_tokens
    from launcher.config import parse_duration_s

    min_age_s = parse_duration_s(older_than, "--older-than") if older_than else 0.0
    cloud = _cloud()
    plan = plan_cleanup(cloud, _state_root(), all_runs=all_runs, min_age_s=min_age_s,
                        older_than=older_than)
    for line in plan.spared:
        typer.echo(f"spared {line}")
    if plan.empty:
        if not plan.spared:
            revoke_all_lease_tokens(cloud, typer.echo)
        typer.echo("nothing to clean up")
        return
    for r in plan.doomed:
        typer.echo(f"{r.id}  {r.label}  {r.type_id}  {r.region}  {r.status}")
    for f in plan.orphan_firewalls:
        typer.echo(f"firewall {f['id']}  {f['label']}")
    _confirm(f"delete these {len(plan.doomed)} instance(s) and {len(plan.orphan_firewalls)} "
             "firewall(s)?", yes)
    failed = carry_out(cloud, plan, _state_root(), typer.echo)
    for line in failed:
        _say(f"error: {line}")
    if failed:
        raise typer.Exit(4)


@app.command()
@user_errors
def history(
    as_json: Annotated[bool, typer.Option("--json", help="The rows as JSON.")] = False,
) -> None:
    """Every run this machine started, and its own renders: status, plan, region, duration,
    cost, output."""
    from launcher.history import history_lines, history_rows, load_history
    from renderer.local_record import load_local_renders

    rows = history_rows(load_history(_state_root()), load_local_renders())
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo(f"no runs or renders recorded under {_state_root().parent}")
    else:
        for line in history_lines(rows):
            typer.echo(line)


@app.command()
@user_errors
def cost(
    as_json: Annotated[bool, typer.Option("--json", help="The totals as JSON.")] = False,
) -> None:
    """What the runs were billed, by month and plan (from the run records)."""
    from launcher.history import cost_lines, cost_report, load_history

    lines = cost_report(load_history(_state_root()))
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in lines], indent=2))
    else:
        for line in cost_lines(lines):
            typer.echo(line)


@app.command()
@user_errors
def check(
    live: Annotated[bool, typer.Option("--live", help="Also rent the cheapest Linode for a "
                                       "minute: prove host key, ufw and key-only login, delete "
                                       "it (about $0.01).")] = False,
    region: Annotated[str | None, typer.Option("--region", help="Region for --live.")] = None,
    image: Annotated[str, typer.Option("--image", help="Image for --live.")]
    = "linode/debian12",
    ssh_from: Annotated[str | None, typer.Option("--ssh-from", help="CIDR for the cloud "
                                                 "firewall of --live (default: detected).")]
    = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Rent without asking.")] = False,
) -> None:
    """Is this machine ready? Tools, token, API, scopes — one line each; --live: a real round
    trip on the cheapest Linode. Exit 1 if anything is missing."""
    from launcher.check import account_items, live_spec, local_items, run_live
    from launcher.console import ConsoleHooks
    from provision import firewall

    cloud, problem = None, None
    try:
        cloud = _cloud()
    except Exception as exc:  # noqa: BLE001 - reported as the token line
        problem = " ".join(str(exc).split())
    items = [*local_items(), *account_items(cloud, problem)]
    for item in items:
        typer.echo(item.line())
    if not all(i.ok for i in items):
        raise typer.Exit(1)
    if not live:
        typer.echo("ready (`launcher check --live` also proves a real server's lockdown)")
        return
    assert cloud is not None
    sources = firewall.normalise_cidrs([ssh_from or firewall.detect_public_cidr()])
    spec = live_spec(cloud, region or "us-east", image, sources, _state_root() / "check")
    _confirm(f"rent {spec.plan.type_id} in {spec.regions[0]} at "
             f"{billing.fmt_hourly(spec.plan.in_region(spec.regions[0]).price_hourly_usd)}/h "
             "for about a "
             "minute (billed one hour) and delete it?", yes)
    record, checked = run_live(cloud, spec, ConsoleHooks())
    for item in checked:
        typer.echo(item.line())
    typer.echo(f"live check passed: instance {record.instance_id} deleted (confirmed), billed "
               f"{record.billed_hours} h = ${record.cost_usd:.4f}")


@app.command()
@user_errors
def logs(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run id, or the path of its "
                                          "run record.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the "
                                         "render ends (a detached run: from its server).")]
    = False,
) -> None:
    """The render output of a run, kept on this machine for every run (detached or not)."""
    from launcher.run.logs import follow_detached, follow_local, print_log

    if not follow:
        print_log(run_id, _state_root(), typer.echo)
    elif not follow_detached(run_id, _state_root(), typer.echo):
        follow_local(run_id, _state_root(), typer.echo)


def _state_root() -> Path:
    from launcher.run.spec import default_state_dir

    return default_state_dir()


@app.command()
@user_errors
def down(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run id (in its record and "
                                          "in every line about it).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
) -> None:
    """Delete one run's instances (each delete confirmed), then its cloud firewall and lease
    tokens; other runs are left alone. Exit 4 if a delete cannot be confirmed."""
    from launcher.run.down import take_down
    from launcher.run.spec import run_tag

    cloud = _cloud()
    found = cloud.list_by_tag(run_tag(run_id))
    for i in found:
        typer.echo(f"{i.id}  {i.label}  {i.type_id}  {i.region}  {i.status}")
    if found:
        _confirm(f"delete these {len(found)} instance(s) of run {run_id}?", yes)
    take_down(cloud, run_id, _state_root(), say=typer.echo)
    typer.echo(f"run {run_id}: nothing of it is left running")


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise Refused(
            f"{question} — no terminal to ask on; pass --yes to confirm (nothing was created)"
        )
    if not typer.confirm(question, default=False):
        raise Refused("declined; nothing was created")


@app.command()
@user_errors
@scene_overrides
def run(
    scene_file: SceneArg = None,
    config: ConfigOpt = None,
    plan: PlanOpt = None,
    region: Annotated[str | None, typer.Option("--region", help="Linode region id.")] = None,
    fallback_region: Annotated[
        list[str] | None,
        typer.Option("--fallback-region", help="Try these regions if the first has no capacity."),
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="linode/debian12 (default), "
                                              "linode/ubuntu24.04, …")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Local output dir.")]
    = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and estimate; create "
                                          "nothing.")] = False,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="USD cap for the run.")]
    = None,
    max_lifetime: Annotated[str | None, typer.Option(
        "--max-lifetime", help="Lease: the server deletes itself this long after the launcher "
        "last extended it, e.g. 90s, 20m, 2h. Default: the estimate x 2 + 30 min (4h without "
        "an estimate).")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start the render and exit; come "
                                         "back with `launcher attach RUN` before the lease "
                                         "ends, or the instance deletes itself and the results "
                                         "are lost.")] = False,
    ssh_from: Annotated[str | None, typer.Option("--ssh-from", help="CIDR allowed to SSH in "
                                                 "through the cloud firewall (default: this "
                                                 "machine's detected public address).")]
    = None,
    no_cloud_firewall: Annotated[bool, typer.Option("--no-cloud-firewall", help="Do not create "
                                                    "a Linode Cloud Firewall for the run.")]
    = False,
    keep_frames: Annotated[bool, typer.Option("--keep-frames", help="Also pull PNG frames.")]
    = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Rent without asking.")] = False,
    deps: Annotated[Literal[DEPS_MODES] | None, typer.Option(  # type: ignore[valid-type]
        "--deps",
        help="How the server gets the renderer's packages: auto (index if reachable, else "
        "wheels shipped from here), index, wheelhouse/wheels, none.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the server's output.")]
    = False,
    nodes: Annotated[int, typer.Option("--nodes", min=1, help="Render across N Linodes at once "
                                       "(Dask distributed); 1 = one instance.")] = 1,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Render SCENE on a rented Linode: create, bootstrap, sync, render, pull, always delete."""
    from launcher.console import ConsoleHooks
    from launcher.preflight import build_spec, preflight
    from launcher.run.single import Job

    ov = overrides
    config = _scene_path(scene_file, config)
    scene = _load(config, ov)
    cfg = _run_config(
        scene, plan=plan, region=region, fallback_regions=tuple(fallback_region or ()),
        image=image, max_cost_usd=max_cost, max_lifetime=max_lifetime,
        output_dir=str(output) if output else None, deps=deps,
    )
    # A dry run needs no account: it prices from the public plans and skips the token checks.
    account = not dry_run or _token_or_none() is not None
    cloud = _cloud(require_token=account, quick=dry_run)
    prices = None if account else _price_source()
    checked = preflight(scene, cfg, cloud, cloud_firewall=not no_cloud_firewall,
                        ssh_from=ssh_from, account=account,
                        plans=None if prices is None else prices.plans,
                        api_reachable=prices is None or prices.live)
    for note in checked.notes:
        _say(f"note: {note}")
    spec = build_spec(scene, resolve_scene_path(config), cfg, checked, _override_args(ov),
                      keep_frames=keep_frames, detach=detach)
    hooks = ConsoleHooks(verbose=verbose)
    _show_plan(scene, cfg, checked)
    if nodes > 1:
        _run_nodes(scene, cfg, checked, spec, ov, nodes, cloud, hooks, dry_run=dry_run, yes=yes)
        return
    priced = checked.plan.in_region(checked.region)
    if cfg.max_cost_usd is not None:
        from launcher.estimate.report import plan_estimate
        from launcher.run.costguard import check_before_start

        # The estimate preflight built; made again only if that failed, so that its error shows.
        row = (checked.estimate.rows[0] if checked.estimate is not None
               else plan_estimate(scene, priced, cfg.output_dir, checked.upload_bytes))
        check_before_start(row.cost_usd, cfg.max_cost_usd)
    if dry_run:
        typer.echo("dry run: everything checks out; nothing was created")
        return
    from launcher.estimate.report import local_wins

    question = (f"rent {checked.plan.alias} ({checked.plan.type_id}) at "
                f"${priced.price_hourly_usd:.3f}/h now?")
    if checked.estimate is not None and local_wins(checked.estimate):
        question = ("this machine renders it about as fast for $0 (`renderer render`); "
                    + question.replace(" now?", " anyway?"))
    _confirm(question, yes)
    record = Job(spec, cloud, hooks).run()
    if record.status == "detached":
        _print_detached(record)
        return
    _print_done(record)


def _print_done(record: Any) -> None:
    out = record.outputs[0]["path"] if record.outputs else "-"
    typer.echo(
        f"done: {out}  ({record.frames} frames, {record.cores or '?'} cores, "
        f"instance lived {record.lifetime_s:.0f}s, billed {record.billed_hours} h = "
        f"${record.cost_usd:.2f})"
    )


@app.command()
@user_errors
def attach(
    run_id: Annotated[str, typer.Argument(metavar="RUN", help="The run id `launcher run "
                                          "--detach` printed, or the path of its run record.")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the server's output.")]
    = False,
) -> None:
    """Reconnect to a detached run: keep its lease alive, wait for the render, pull the
    results, delete the instance (confirmed), revoke its lease token and delete its firewall."""
    from launcher.attach import attach as attach_run
    from launcher.console import ConsoleHooks

    record = attach_run(run_id, _cloud(), ConsoleHooks(verbose=verbose))
    _print_done(record)


def _run_nodes(scene: Scene, cfg: RunConfig, checked: Any, spec: Any, ov: Overrides, nodes: int,
               cloud: Any, hooks: Any, *, dry_run: bool, yes: bool) -> None:
    """`run --nodes N` (N > 1): the N-node estimate and checks, then launcher.cluster.job."""
    from launcher.cluster import job as multinode
    from launcher.estimate import nodes as nodes_estimate
    from launcher.run.costguard import check_before_start

    priced = checked.plan.in_region(checked.region)
    # On the one-node estimate preflight built for this plan and region, not a second one.
    est = nodes_estimate.estimate(scene, priced, cfg.output_dir, checked.upload_bytes, nodes,
                                  row=checked.estimate.rows[0] if checked.estimate else None)
    for line in nodes_estimate.estimate_lines(est):
        typer.echo(line, err=True)
    if cfg.max_cost_usd is not None:
        check_before_start(est.chosen.cost_usd, cfg.max_cost_usd)
    multinode.require_dask()
    if dry_run:
        typer.echo(f"dry run: everything checks out for {nodes} nodes; nothing was created")
        return
    _confirm(f"rent {nodes} x {checked.plan.alias} ({checked.plan.type_id}) at "
             f"${nodes * priced.price_hourly_usd:.3f}/h in all now?", yes)
    record = multinode.ClusterJob(multinode.cluster_spec(spec, scene, ov, nodes), cloud,
                                  hooks).run()
    if record.status == "detached":
        _print_detached(record)
        return
    out = record.outputs[0]["path"] if record.outputs else "-"
    warned = f"; {len(record.warnings)} warning(s), see above" if record.warnings else ""
    typer.echo(f"done: {out}  ({record.frames} frames on {nodes} nodes of {record.cores or '?'} "
               f"cores, billed {record.billed_hours} node-h = ${record.cost_usd:.2f}{warned})")


def _print_detached(record: Any) -> None:
    where = (f"instance {record.instance_id}" if record.nodes == 1
             else f"{record.nodes} nodes ({', '.join(str(i['id']) for i in record.instances)})")
    typer.echo(f"detached: run {record.run_id} on {where}; the lease deletes "
               f"{'it' if record.nodes == 1 else 'them'} at "
               f"{(record.lease or {}).get('deadline', '?')} unless you run "
               f"`launcher attach {record.run_id}` first")


def _show_plan(scene: Scene, cfg: RunConfig, checked: Any) -> None:
    p = checked.plan.in_region(checked.region)  # the region's own price, where it has one
    typer.echo(
        f"plan {p.alias} = {p.type_id} ({p.vcpus} vCPUs, {p.memory_mb // 1024} GB) at "
        f"{billing.fmt_hourly(p.price_hourly_usd)}/h in {checked.region} (prices: {p.source}), "
        f"image {cfg.image}", err=True)
    typer.echo(f"scene {scene.frames} frames of {scene.width}x{scene.height}, "
               f"upload {checked.upload_bytes / 1e6:.1f} MB after exclude.txt", err=True)
    if checked.estimate_line:
        typer.echo(checked.estimate_line, err=True)


@app.command()
@user_errors
@scene_overrides
def estimate(
    scene_file: SceneArg = None,
    config: ConfigOpt = None,
    plan: PlanOpt = None,
    deadline: Annotated[str | None, typer.Option("--deadline", help="e.g. 10m: mark the "
                                                 "fastest plan finishing within it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Rows as JSON.")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw cost against time for "
                                              "every plan to this PNG.")] = None,
    max_cost: Annotated[float | None, typer.Option("--max-cost", help="Draw this cap on the "
                                                   "plot (USD).")] = None,
    nodes: Annotated[int | None, typer.Option("--nodes", min=1, help="Also: the plan (--plan "
                                              "or the scene's) on 1..N nodes, and a suggested "
                                              "N.")] = None,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Estimate render time and cost on this machine and on each dedicated plan."""
    from launcher.config import parse_duration_s
    from launcher.estimate.report import print_estimate

    ov = overrides
    config = _scene_path(scene_file, config)
    scene = _load(config, ov)
    cfg = _run_config(scene, plan=plan)
    deadline_s = parse_duration_s(deadline, "--deadline") if deadline else None
    if deadline_s is not None and deadline_s <= 0:
        raise ConfigError(f"--deadline: must be positive, got {deadline}")
    if plot is not None:
        from renderer.render import _check_writable

        if plot.suffix.lower() != ".png":
            raise ConfigError(f"--plot: the picture is a PNG file; got {plot}")
        try:
            _check_writable(plot, "--plot")
        except RenderError as exc:
            raise ConfigError(str(exc)) from None
    pool = _plans_online_or_snapshot()
    cluster = None
    if nodes is not None:
        from launcher.estimate import nodes as nodes_estimate
        from provision.plans import resolve_plan

        chosen = resolve_plan(cfg.plan, pool).in_region(cfg.region)
        cluster = nodes_estimate.estimate(scene, chosen, cfg.output_dir, None, nodes)
    est = print_estimate(scene, cfg, only_plan=plan, deadline_s=deadline_s, as_json=as_json,
                         plans=pool, nodes=nodes_estimate.as_json(cluster) if cluster else None)
    if plot is not None:
        from launcher.estimate.plot import plot_estimate

        plot_estimate(est, plot, deadline_s=deadline_s, max_cost_usd=max_cost, nodes=cluster)
        typer.echo(f"wrote {plot}", err=as_json)
    if cluster is not None and not as_json:
        for line in nodes_estimate.nodes_table_lines(cluster):
            typer.echo(line)


def main() -> None:
    try:
        tidy_help(typer.main.get_command(app))(prog_name="launcher")
    except ConfigError as exc:  # pragma: no cover - raised outside commands only
        _say(f"error: {exc}")
        sys.exit(2)
    finally:
        _quiet_broken_streams()


def _quiet_broken_streams() -> None:
    """`launcher run … | head` whose reader is gone: Python's own flush at exit would print a
    traceback and change the exit code; point the dead streams at /dev/null instead."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
            except (OSError, ValueError):
                pass

