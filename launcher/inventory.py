"""What is running now: every instance tagged juliafarm, with its run, price, bill so far, and —
from this machine's run records — its lease deadline and whether it is detached. `launcher ls`
shows it; `launcher cleanup` decides from it what it may delete."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from launcher.errors import LauncherError
from launcher.run.detach import locate
from launcher.run.record import RunRecord
from launcher.run.spec import TAG
from launcher.units import fmt_s
from provision import billing
from provision.cloud import Cloud
from provision.lease import parse_deadline
from provision.plans import plans_from_api

RUN_TAG_PREFIX = "juliafarm-run-"
LIVE = ("started", "rendering", "pulling", "detached", "attached")


@dataclass(frozen=True)
class Row:
    id: int
    label: str
    run_id: str | None
    type_id: str
    region: str
    status: str
    age_s: float
    price_hourly_usd: float | None
    cost_so_far_usd: float | None
    lease_deadline: str | None   # from this machine's record of the run (None: unknown)
    mode: str  # attached (its launcher runs here) | detached | orphaned | unknown (no record)
    lease_live: bool


def inventory(cloud: Cloud, state_root: Path) -> list[Row]:
    found = cloud.list_by_tag(TAG)
    if not found:
        return []
    plans = {p.type_id: p for p in plans_from_api(cloud)}
    now = datetime.now(UTC)
    rows = []
    for i in found:
        run_id = next((t[len(RUN_TAG_PREFIX):] for t in i.tags if t.startswith(RUN_TAG_PREFIX)),
                      None)
        record = _record(run_id, state_root) if run_id else None
        age = max(0.0, (now - i.created).total_seconds())
        plan = plans.get(i.type_id)
        priced = plan.in_region(i.region) if plan else None
        deadline = (record.lease or {}).get("deadline") if record else None
        mode = _mode(record)
        # Spared by cleanup: a detached run within its lease, or one whose launcher still runs
        # here. An orphan (its launcher killed) is cleanup's to delete, lease or not.
        live = bool(deadline and _after_now(deadline) and mode in ("detached", "attached"))
        rows.append(Row(i.id, i.label, run_id, i.type_id, i.region, i.status, age,
                        priced.price_hourly_usd if priced else None,
                        round(billing.cost_usd(priced, age), 4) if priced else None,
                        deadline, mode, live))
    return rows


def inventory_lines(rows: list[Row]) -> list[str]:
    out = [f"{'id':>10}  {'run':<24}{'type':<18}{'region':<10}{'status':<11}{'$/h':>7}"
           f"{'age':>8}{'cost':>8}  {'mode':<9}lease until"]
    for r in rows:
        price = f"{r.price_hourly_usd:.3f}" if r.price_hourly_usd is not None else "?"
        cost = f"${r.cost_so_far_usd:.2f}" if r.cost_so_far_usd is not None else "?"
        out.append(f"{r.id:>10}  {r.run_id or r.label:<24}{r.type_id:<18}{r.region:<10}"
                   f"{r.status:<11}{price:>7}{fmt_s(r.age_s, 0):>8}{cost:>8}  {r.mode:<9}"
                   f"{r.lease_deadline or '-'}")
    return out


def _mode(record: RunRecord | None) -> str:
    if record is None:
        return "unknown"
    if record.status == "detached":
        return "detached"
    if record.status in LIVE and record.launcher_pid and record.launcher_host == \
            socket.gethostname() and _alive(record.launcher_pid):
        return "attached"
    return "orphaned"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _record(run_id: str, state_root: Path) -> RunRecord | None:
    try:
        path, _ = locate(run_id, state_root)
        return RunRecord.load(path)
    except (LauncherError, OSError, ValueError, TypeError):
        return None


def _after_now(deadline: str) -> bool:
    try:
        when = parse_deadline(deadline)
    except ValueError:
        return True  # unreadable: assume live, never delete a leased run by mistake
    return when > datetime.now(UTC)
