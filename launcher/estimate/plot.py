"""`launcher estimate SCENE --plot cost.png`: cost against time for every plan (and the N-node
table of one), this machine marked, the --deadline and --max-cost lines drawn, and the plans
another beats on both time and cost greyed out (matplotlib, off-screen, written atomically)."""

from __future__ import annotations

from pathlib import Path

from launcher.estimate.model import Estimate, PlanEstimate
from launcher.estimate.nodes import NodesEstimate
from renderer.atomic import atomic_target


def dominated(rows: list[PlanEstimate]) -> set[str]:
    """Plans some other plan beats: no slower and no dearer, and better on one of the two."""
    out = set()
    for r in rows:
        for o in rows:
            if o is not r and o.total_s <= r.total_s and o.cost_usd <= r.cost_usd and (
                    o.total_s < r.total_s or o.cost_usd < r.cost_usd):
                out.add(r.plan)
                break
    return out


def plot_estimate(est: Estimate, path: Path, *, deadline_s: float | None = None,
                  max_cost_usd: float | None = None, nodes: NodesEstimate | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display needed: the plot only goes to a file
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6), dpi=100, layout="constrained")
    ax = fig.subplots()
    rows = list(est.rows)
    beaten = dominated(rows)
    for r in rows:
        grey = r.plan in beaten
        colour = "0.7" if grey else "tab:blue"
        ax.errorbar(r.total_s / 60, r.cost_usd, xerr=r.total_error_s / 60, fmt="o",
                    color=colour, ecolor=colour, markersize=5, capsize=2, zorder=2 if grey else 3)
        ax.annotate(r.plan, (r.total_s / 60, r.cost_usd), textcoords="offset points",
                    xytext=(5, 4), fontsize=7, color="0.55" if grey else "black")
    loc = est.local
    ax.errorbar(loc.total_s / 60, 0.0, xerr=loc.total_error_s / 60, fmt="*", color="tab:green",
                markersize=14, capsize=2, zorder=4, label="this machine ($0)")
    if nodes is not None:
        table = nodes.suggestion.table
        xs = [c.total_s / 60 for c in table]
        ys = [c.cost_usd for c in table]
        ax.errorbar(xs, ys, xerr=[c.total_error_s / 60 for c in table], fmt="s-",
                    color="tab:orange", markersize=4, linewidth=1, capsize=2, zorder=3,
                    label=f"{nodes.plan} on 1..{len(table)} nodes")
        for c in table:
            ax.annotate(f"{c.nodes}x", (c.total_s / 60, c.cost_usd), textcoords="offset points",
                        xytext=(4, -10), fontsize=7, color="tab:orange")
    if deadline_s is not None:
        ax.axvline(deadline_s / 60, color="tab:red", linestyle="--", linewidth=1,
                   label=f"--deadline {deadline_s / 60:.0f} min")
    if max_cost_usd is not None:
        ax.axhline(max_cost_usd, color="tab:purple", linestyle="--", linewidth=1,
                   label=f"--max-cost ${max_cost_usd:.2f}")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _pos: ""))
    ax.set_xlabel("time until the video is here (minutes, log; bars: 80% interval)")
    ax.set_ylabel("cost (USD, whole billed hours)")
    ax.set_title("Each plan: time against cost (grey: another plan is faster and no dearer)",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    with atomic_target(path) as tmp:
        fig.savefig(tmp, format="png")
