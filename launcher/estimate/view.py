"""How an Estimate is shown: a rich table in a terminal, plain lines when piped, or JSON rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from launcher import units
from launcher.estimate.model import (
    MODEL_REL_ERROR,
    PLAN_VCPU_FACTOR,
    Estimate,
    PlanEstimate,
    cheapest,
    fastest_within,
    hour_warnings,
    local_is_nearly_as_fast,
)

COLUMNS = ("plan", "vCPUs", "$/h", "setup", "render", "total", "billed h", "cost", "")


def fmt_s(seconds: float) -> str:
    """Durations in tables: whole seconds under a minute (units.fmt_s)."""
    return units.fmt_s(seconds, decimals=0)


def cheapest_cloud(est: Estimate) -> PlanEstimate | None:
    """The cheapest rented plan (this machine is always $0, so it is marked apart)."""
    return cheapest(est.rows)


def marks(est: Estimate, deadline_s: float | None) -> dict[str, list[str]]:
    """Row plan -> its marks: 'cheapest' (rented plans) and 'fastest' (within the deadline)."""
    out: dict[str, list[str]] = {r.plan: [] for r in est.all_rows}
    c = cheapest_cloud(est)
    if c is not None:
        out[c.plan].append("cheapest")
    f = fastest_within(est.all_rows, deadline_s)
    if f is not None:
        out[f.plan].append("fastest" if deadline_s is None else "fastest within deadline")
    return out


def local_advice(est: Estimate) -> str | None:
    """'render locally: ~95 s, $0' when this machine beats, or nearly matches, every plan."""
    if not est.rows:
        return None
    best = min(est.rows, key=lambda r: r.total_s)
    if not local_is_nearly_as_fast(est.local, best):
        return None
    verdict = ("faster than" if est.local.total_s <= best.total_s else "nearly as fast as")
    return (f"render locally: ~{est.local.total_s:.0f} s, $0 ({verdict} the fastest plan, "
            f"{best.plan}: ~{best.total_s:.0f} s for ${best.cost_usd:.2f})")


def notes(est: Estimate, deadline_s: float | None) -> list[str]:
    """The lines under the table: what the numbers rest on, advice and warnings."""
    w = est.work
    cal = est.calibration
    date = f", {est.price_date}" if est.price_date else ""
    lines = [
        f"work: {w.executed_giter:.3g} G iterations executed ({w.useful_giter:.3g} G useful) over "
        f"{w.frames} frames, +/-{100 * w.rel_error:.0f}% (from {w.sampled_frames} frames at "
        f"{w.sample_side_px[0]}x{w.sample_side_px[1]})",
        f"speed: {1 / cal.kernel_s_per_giter:.2f} G executed iterations/s per core here "
        f"(calibrated {cal.measured_at})",
        f"prices: {est.price_source}{date}",
    ]
    learnt = [r.speed_source for r in est.rows if "run record" in r.speed_source]
    if learnt:
        lines += [f"learnt: {s}" for s in learnt]
    if est.local.speed_source != "calibration":
        lines.append(f"learnt: this machine: {est.local.speed_source}")
    lines.append(f"intervals (+/-): 80%, from the model's measured error ({MODEL_REL_ERROR:.0%} in "
                 "the accuracy benchmark; this machine's own renders where there are some), "
                 "the work sample's, and each plan's speed uncertainty; setup's from the "
                 "scatter of the runs it came from (50% while it rests on the defaults)")
    if len(learnt) < len(est.rows):
        lines.append(f"plans without runs yet assume {PLAN_VCPU_FACTOR:g}x this machine's "
                     "per-core speed (an assumption until a run measures them)")
    if deadline_s is not None and fastest_within(est.all_rows, deadline_s) is None:
        lines.append(f"no plan finishes within {fmt_s(deadline_s)}")
    advice = local_advice(est)
    if advice:
        lines.append(advice)
    lines += [f"warning: {x}" for x in hour_warnings(est.rows)]
    return lines


def _cells(r: PlanEstimate, mark: Sequence[str]) -> list[str]:
    def pm(error_s: float) -> str:
        return f" +/-{fmt_s(error_s)}" if error_s >= 1 else ""

    return [
        "this machine" if r.is_local else r.plan, str(r.vcpus),
        "-" if r.is_local else f"{r.price_hourly_usd:.3f}",
        "-" if r.is_local else fmt_s(r.setup_s) + pm(r.setup_error_s),
        fmt_s(r.render_s) + pm(r.render_error_s), fmt_s(r.total_s),
        "-" if r.is_local else str(r.billed_hours), f"${r.cost_usd:.2f}", ", ".join(mark),
    ]


def plain_table(est: Estimate, deadline_s: float | None = None) -> str:
    """Aligned text: for pipes, logs and CI."""
    m = marks(est, deadline_s)
    rows = [list(COLUMNS)] + [_cells(r, m[r.plan]) for r in est.all_rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    text = ["  ".join(c.ljust(widths[i]) if i in (0, 8) else c.rjust(widths[i])
                      for i, c in enumerate(row)).rstrip() for row in rows]
    return "\n".join(text + notes(est, deadline_s))


def print_table(est: Estimate, deadline_s: float | None = None, out: TextIO | None = None,
                plain: bool | None = None) -> None:
    """A rich table when out is a terminal, else plain_table."""
    import sys

    out = out or sys.stdout
    if plain is None:
        plain = not (hasattr(out, "isatty") and out.isatty())
    if plain:
        print(plain_table(est, deadline_s), file=out)
        return
    from rich.console import Console
    from rich.table import Table

    m = marks(est, deadline_s)
    t = Table(title="estimate", title_justify="left")
    for i, c in enumerate(COLUMNS):
        t.add_column(c, justify="left" if i in (0, 8) else "right", no_wrap=i < 8)
    for r in est.all_rows:
        style = "bold green" if m[r.plan] else None
        t.add_row(*_cells(r, m[r.plan]), style=style)
    console = Console(file=out)
    console.print(t)
    for line in notes(est, deadline_s):
        console.print(line, highlight=False, markup=False)


def json_rows(est: Estimate, deadline_s: float | None = None) -> list[dict[str, Any]]:
    """One dict per row (local first) with its marks and the prices' source and date."""
    m = marks(est, deadline_s)
    rows = []
    for r in est.all_rows:
        d = r.as_json()
        d["machine"] = "this machine" if r.is_local else "rented"
        d["cheapest"] = "cheapest" in m[r.plan]
        d["fastest_within_deadline"] = any(x.startswith("fastest") for x in m[r.plan])
        d["render_rel_error"] = round(est.work.rel_error, 4)
        d["price_source"] = "none (this machine)" if r.is_local else est.price_source
        d["price_date"] = None if r.is_local else est.price_date
        rows.append(d)
    return rows


def print_json(est: Estimate, deadline_s: float | None = None, out: TextIO | None = None,
               extra: dict[str, Any] | None = None) -> None:
    import sys

    rows = json_rows(est, deadline_s)
    json.dump({"rows": rows, **extra} if extra else rows, out or sys.stdout, indent=2)
    print(file=out or sys.stdout)
