"""`--nodes N` estimates: one plan on N nodes from its one-node estimate, and a suggested N."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from launcher.cluster.dask_cluster import cluster_segment_frames, size_workers
from launcher.estimate.cluster import (
    ClusterEstimate,
    Suggestion,
    estimate_cluster,
    suggest_nodes,
)
from launcher.estimate.model import (
    PlanEstimate,
    recorded_cluster_start_s,
    recorded_nodes_setup_s,
)
from launcher.estimate.report import plan_estimate, run_records
from launcher.units import fmt_s
from provision import billing
from provision.plans import Plan
from renderer.scene import Scene
from renderer.segments import default_segment_frames, plan_segments


@dataclass(frozen=True)
class NodesEstimate:
    chosen: ClusterEstimate
    suggestion: Suggestion
    plan: str


def estimate(scene: Scene, plan: Plan, output_dir: Path | None, upload_bytes: int | None,
             nodes: int, row: PlanEstimate | None = None) -> NodesEstimate:
    """The N-node time and cost from the one-node estimate of the same plan (estimate.model),
    its render spread evenly over the segments; and the node count estimate.cluster suggests.
    `row`: that one-node estimate when the caller has already built it (`launcher run`'s
    preflight has), else it is built here."""
    row = row or plan_estimate(scene, plan, output_dir, upload_bytes)
    tasks = size_workers(plan.vcpus).tasks

    def work(n: int) -> list[float]:  # the run's own split on n nodes (cluster_spec's)
        seg = cluster_segment_frames(scene.frames, default_segment_frames(scene), n, tasks)
        return [row.render_s * s.frames / scene.frames
                for s in plan_segments(scene.frames, seg)]

    # Starting the cluster as earlier multi-node runs measured it, else the assumption.
    records = run_records(output_dir)
    started = recorded_cluster_start_s(records, plan.alias)
    # Setup as earlier runs on as many nodes took it: the slowest of N, not one node's.
    measured = recorded_nodes_setup_s(records, plan.alias)
    kw: dict[str, Any] = dict(node_setup_s=row.setup_s, tasks_per_node=tasks,
                              finish_s=row.download_s, delete_s=row.lifetime_s - row.total_s,
                              render_rel_error=row.render_error_s / row.render_s
                              if row.render_s > 0 else 0.0,
                              setup_error_s=row.setup_error_s)
    if started is not None:
        kw["cluster_start_s"] = started
    chosen = estimate_cluster(work(nodes), nodes, plan, measured_setup_s=measured.get(nodes),
                              **kw)
    # Each row as a run on that many nodes would cut its segments, so row N is what
    # `run --nodes N` estimates.
    suggestion = suggest_nodes(work, plan, max_nodes=max(8, nodes), measured_setup_s=measured,
                               **kw)
    return NodesEstimate(chosen, suggestion, plan.alias)


def estimate_lines(e: NodesEstimate) -> list[str]:
    c = e.chosen
    lines = [
        f"estimate on {c.nodes} x {e.plan}: setup ~{fmt_s(c.setup_s)} (nodes in parallel), "
        f"render ~{fmt_s(c.render_s)}, total ~{fmt_s(c.total_s)} +/- {fmt_s(c.total_error_s)} "
        f"(80%), {c.segments} segments split "
        f"{'/'.join(map(str, c.segments_per_node))}, speedup {c.speedup:.2f}x "
        f"(efficiency {c.efficiency:.0%}); every node billed "
        f"{billing.billed_hours(c.node_lifetime_s)} h = ${c.cost_usd:.2f} in all"]
    if e.suggestion.nodes != c.nodes:
        lines.append(f"suggested: --nodes {e.suggestion.nodes} ({e.suggestion.reason})")
    return lines


def nodes_table_lines(e: NodesEstimate) -> list[str]:
    """`launcher estimate --nodes N`: the plan on 1..max(8, N) nodes; N and the suggestion
    marked."""
    c = e.chosen
    lines = [f"{e.plan} on several nodes ({c.tasks_per_node} segment(s) at once per node, "
             "segments cut as a run on that many nodes cuts them; every node billed for the "
             "whole run):"]
    for row in e.suggestion.table:
        mark = ("<- suggested" if row.nodes == e.suggestion.nodes else "") + (
            " <- --nodes" if row.nodes == c.nodes else "")
        lines.append(f"  {row.row()}  {mark.strip()}".rstrip())
    lines.append(f"suggested: --nodes {e.suggestion.nodes} ({e.suggestion.reason})")
    return lines



def as_json(e: NodesEstimate) -> dict[str, Any]:
    """The N-node estimate and its table, for `launcher estimate --nodes N --json`."""
    return {"plan": e.plan, "chosen": asdict(e.chosen),
            "suggested": {"nodes": e.suggestion.nodes, "reason": e.suggestion.reason},
            "table": [asdict(row) for row in e.suggestion.table]}
