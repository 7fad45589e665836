"""`launcher cleanup`: delete what killed launchers left, run by run with the same teardown as
`launcher down`, sparing runs whose lease is still live (a healthy detached run) and instances
younger than --older-than; orphaned firewalls and lease tokens go once nothing needs them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import LauncherError, one_line
from launcher.inventory import Row, inventory
from launcher.run.down import take_down
from provision import firewall
from provision.cloud import Cloud
from provision.tokens import revoke_run_tokens


@dataclass
class CleanupPlan:
    doomed: list[Row] = field(default_factory=list)
    spared: list[str] = field(default_factory=list)           # why, one line each
    orphan_firewalls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.doomed and not self.orphan_firewalls


def plan_cleanup(cloud: Cloud, state_root: Path, *, all_runs: bool, min_age_s: float,
                 older_than: str | None) -> CleanupPlan:
    rows = inventory(cloud, state_root)
    plan = CleanupPlan()
    for row in rows:
        if row.age_s < min_age_s:
            plan.spared.append(f"{row.id} ({row.label}): younger than {older_than}")
        elif row.lease_live and not all_runs:
            plan.spared.append(f"{row.id} ({row.label}): run {row.run_id} has a live lease until "
                               f"{row.lease_deadline} (`launcher down {row.run_id}` or --all)")
        else:
            plan.doomed.append(row)
    plan.orphan_firewalls = [f for f in firewall.run_firewalls(cloud)
                             if not any(r.run_id and r.run_id in f.get("label", "")
                                        for r in rows)]
    return plan


def carry_out(cloud: Cloud, plan: CleanupPlan, state_root: Path,
              say: Callable[[str], None]) -> list[str]:
    """Delete what the plan dooms; returns what failed (then firewalls and tokens are kept)."""
    failed = []
    for run_id in sorted({r.run_id for r in plan.doomed if r.run_id}):
        try:  # a run at a time: its firewall and tokens go once its deletes are sure
            take_down(cloud, run_id, state_root, say=say)
        except LauncherError as exc:
            failed.append(f"run {run_id}: {exc}")
    for r in plan.doomed:
        if not r.run_id:  # tagged juliafarm but no run tag: delete it on its own
            try:
                cloud.delete(r.id)
                say(f"deleted {r.id} ({r.label})")
            except Exception as exc:  # noqa: BLE001 - keep deleting the others
                failed.append(f"{r.id}: {one_line(exc)}")
    if failed:
        return failed
    for f in plan.orphan_firewalls:
        try:
            firewall.delete_firewall(cloud, int(f["id"]))
            say(f"deleted firewall {f['id']} ({f['label']})")
        except Exception as exc:  # noqa: BLE001 - keep going
            failed.append(f"firewall {f['id']}: {one_line(exc)}")
    if not plan.spared:
        revoke_all_lease_tokens(cloud, say)
    return failed


def revoke_all_lease_tokens(cloud: Cloud, say: Callable[[str], None]) -> None:
    try:
        revoked = revoke_run_tokens(cloud)
    except Exception as exc:  # noqa: BLE001 - tokens expire by themselves
        say(f"warning: lease tokens not checked: {one_line(exc)}")
        return
    if revoked:
        say(f"revoked {len(revoked)} lease token(s)")
