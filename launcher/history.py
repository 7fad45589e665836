"""`launcher history` and `launcher cost`: every run this machine made, from the state directory's
records (`<state>/<run id>/record.json`), whatever became of their output directories; `history`
lists this machine's own renders too (`renderer render`'s records, at $0)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from launcher.run.record import STATE_RECORD, RunRecord
from launcher.units import fmt_s

LOCAL_PLAN = "this machine"


def load_history(state_root: Path) -> list[RunRecord]:
    """Every readable record under `state_root`, oldest first (unreadable ones are skipped)."""
    records = []
    for path in sorted(state_root.glob(f"*/{STATE_RECORD}")):
        try:
            records.append(RunRecord.load(path))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(records, key=lambda r: (r.started_at, r.run_id))


def duration_s(record: RunRecord) -> float | None:
    """Wall time from start to finish (None while it runs or when it was killed)."""
    if not record.finished_at:
        return None
    try:
        start = datetime.fromisoformat(record.started_at.replace("Z", "+00:00"))
        end = datetime.fromisoformat(record.finished_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, (end - start).total_seconds())


def history_rows(records: list[RunRecord],
                 local: Sequence[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """One row per cloud run, and per local render (`local`: renderer.local_record's records),
    oldest first."""
    rows = []
    for r in records:
        video = next((o["path"] for o in r.outputs if "sha256" in o), None)
        rows.append({"run_id": r.run_id, "kind": "cloud", "started_at": r.started_at,
                     "status": r.status, "plan": r.plan, "nodes": r.nodes, "region": r.region,
                     "duration_s": duration_s(r), "billed_hours": r.billed_hours,
                     "cost_usd": r.cost_usd, "deleted": r.deleted, "output": video})
    rows += [row for rec in local if (row := _local_row(rec)) is not None]
    return sorted(rows, key=lambda row: (row["started_at"], row["run_id"]))


def _local_row(rec: Mapping[str, Any]) -> dict[str, Any] | None:
    """A local render as a history row: it started its wall time before it finished."""
    wall, finished = rec.get("wall_s"), rec.get("finished_at")
    if not isinstance(wall, int | float) or not isinstance(finished, str):
        return None
    try:
        end = datetime.fromisoformat(finished.replace("Z", "+00:00"))
    except ValueError:
        return None
    started = (end - timedelta(seconds=float(wall))).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"run_id": str(rec.get("id") or f"local-{finished}"), "kind": "local",
            "started_at": started, "status": "completed", "plan": LOCAL_PLAN, "nodes": 1,
            "region": None, "duration_s": float(wall), "billed_hours": 0, "cost_usd": 0.0,
            "deleted": None, "output": rec.get("output")}


@dataclass(frozen=True)
class CostLine:
    month: str      # YYYY-MM, from the run's start (UTC)
    plan: str
    runs: int
    node_hours: int
    cost_usd: float


def cost_report(records: list[RunRecord]) -> list[CostLine]:
    """What the runs were billed, by month and plan (runs whose bill is unknown count 0)."""
    runs: dict[tuple[str, str], int] = defaultdict(int)
    hours: dict[tuple[str, str], int] = defaultdict(int)
    cost: dict[tuple[str, str], float] = defaultdict(float)
    for r in records:
        key = (r.started_at[:7], r.plan)
        runs[key] += 1
        hours[key] += r.billed_hours or 0
        cost[key] += r.cost_usd or 0.0
    return [CostLine(m, p, runs[(m, p)], hours[(m, p)], round(cost[(m, p)], 4))
            for m, p in sorted(runs)]


def history_lines(rows: list[dict[str, Any]]) -> list[str]:
    out = [f"{'run':<24}{'status':<13}{'plan':<16}{'region':<11}{'duration':>9}{'cost':>9}  "
           "output"]
    for row in rows:
        plan = row["plan"] + (f" x{row['nodes']}" if row["nodes"] > 1 else "")
        dur = fmt_s(row["duration_s"], 0) if row["duration_s"] is not None else "-"
        cost = f"${row['cost_usd']:.2f}" if row["cost_usd"] is not None else "-"
        settled = row["kind"] == "local" or row["deleted"] is True or row["status"] == "detached"
        flag = "" if settled else "  (NOT confirmed deleted: launcher down " + row["run_id"] + ")"
        out.append(f"{row['run_id']:<24}{row['status']:<13}{plan:<16}{row['region'] or '-':<11}"
                   f"{dur:>9}{cost:>9}  {row['output'] or '-'}{flag}")
    return out


def cost_lines(lines: list[CostLine]) -> list[str]:
    out = [f"{'month':<9}{'plan':<16}{'runs':>5}{'node-h':>8}{'cost':>10}"]
    for c in lines:
        out.append(f"{c.month:<9}{c.plan:<16}{c.runs:>5}{c.node_hours:>8}{c.cost_usd:>10.2f}")
    total = sum(c.cost_usd for c in lines)
    out.append(f"{'total':<25}{sum(c.runs for c in lines):>5}"
               f"{sum(c.node_hours for c in lines):>8}{total:>10.2f}")
    return out
