"""Time and cost of a render split across N nodes, and a suggested N.

The input is what the one-node estimate already knows: the seconds one node of the plan needs to
render each segment (or the total, spread evenly). On N nodes the segments are list-scheduled, in
order, onto N x tasks-per-node slots, as Dask's scheduler does with work stealing; a task on a slot
has 1/tasks of a node's cores, so it takes tasks x its one-node time. Every task also pays the
scheduler's per-task overhead (measured by benchmarks/cluster.py), and the scheduler, being one
process, cannot start more than 1/overhead tasks per second. Nodes are set up in parallel, so setup
costs the slowest node's time, not the sum (as earlier runs on that many nodes measured it, else
one node's plus the creates' stagger); every node is billed for the whole run.

Each row carries the one-node estimate's 80% intervals: the render's relative one (the plan's
per-core speed and the model's error are the same for every node, so N nodes share it rather
than averaging it away) and setup's (nodes set up at once, in the same region, from the same
image: their common level is what is uncertain), combined as the one-node row combines them.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from provision.billing import Priced, cost_usd

# Measured on this project's 2-core build machine with a dask LocalCluster (benchmarks/cluster.py,
# benchmarks/RESULTS.md "## Cluster"): about 11 ms for one empty task's round trip, 1.7 ms per
# task handed out in a batch. Queued tasks hide most of the round trip; between nodes a task also
# crosses the network twice. 10 ms per task is a round, conservative figure for both.
TASK_OVERHEAD_S = 0.010
CLUSTER_START_S = 15.0     # scheduler, workers and the SSH tunnel, after the nodes are set up
CREATE_STAGGER_S = 1.0     # creates are API calls issued one after another
MIN_EFFICIENCY = 0.7       # below this a further node mostly buys idle cores


@dataclass(frozen=True)
class ClusterEstimate:
    nodes: int
    segments: int
    tasks_per_node: int
    setup_s: float           # create ... sync, all nodes in parallel, plus cluster start
    render_s: float          # first task started .. last task finished
    finish_s: float          # pull and join after the render
    total_s: float
    node_lifetime_s: float   # what each node is billed for
    cost_usd: float          # every node, per Linode's billing rule
    segments_per_node: tuple[int, ...]  # the work split: segments each node renders
    speedup: float           # one node's render time / this render time
    efficiency: float        # speedup / nodes
    render_error_s: float = 0.0  # half-widths of the 80% intervals, as in PlanEstimate
    setup_error_s: float = 0.0
    total_error_s: float = 0.0

    def row(self) -> str:
        split = "/".join(str(n) for n in self.segments_per_node)
        return (f"{self.nodes:>3} node(s)  render {self.render_s:8.1f} s  total {self.total_s:8.1f}"
                f" +/- {self.total_error_s:6.1f} s  ${self.cost_usd:8.2f}  speedup "
                f"{self.speedup:5.2f}x  efficiency "
                f"{self.efficiency:4.0%}  split {split}")


def split_segments(segment_s: Sequence[float], nodes: int, tasks_per_node: int = 1,
                   task_overhead_s: float = TASK_OVERHEAD_S) -> tuple[float, tuple[int, ...]]:
    """List-schedule segments (one-node seconds each) in order onto nodes x tasks slots.

    Returns (makespan_s, segments per node). A segment on a slot takes tasks_per_node times its
    one-node time (the slot has that share of the cores) plus the per-task overhead; the
    scheduler starts at most one task per task_overhead_s.
    """
    if nodes < 1 or tasks_per_node < 1:
        raise ValueError(f"need nodes >= 1 and tasks_per_node >= 1, got {nodes}, "
                         f"{tasks_per_node}")
    if any(s < 0 for s in segment_s):
        raise ValueError("segment times must be >= 0")
    slots = [(0.0, node, t) for node in range(nodes) for t in range(tasks_per_node)]
    heapq.heapify(slots)
    per_node = [0] * nodes
    makespan = 0.0
    for i, work in enumerate(segment_s):
        free_at, node, t = heapq.heappop(slots)
        start = max(free_at, i * task_overhead_s)  # the scheduler dispatches one at a time
        end = start + work * tasks_per_node + task_overhead_s
        per_node[node] += 1
        makespan = max(makespan, end)
        heapq.heappush(slots, (end, node, t))
    return makespan, tuple(per_node)


def estimate_cluster(
    segment_s: Sequence[float], nodes: int, plan: Priced, *, node_setup_s: float,
    tasks_per_node: int = 1, finish_s: float = 0.0, delete_s: float = 0.0,
    task_overhead_s: float = TASK_OVERHEAD_S, cluster_start_s: float = CLUSTER_START_S,
    create_stagger_s: float = CREATE_STAGGER_S, render_rel_error: float = 0.0,
    setup_error_s: float = 0.0, measured_setup_s: float | None = None,
) -> ClusterEstimate:
    """The run on `nodes` nodes. One node needs no scheduler: it renders as `launcher run` does
    today, without cluster start or per-task overhead. `render_rel_error` and `setup_error_s`:
    the one-node estimate's render interval (relative) and setup interval (seconds).
    `measured_setup_s`: create .. sync as earlier runs on this many nodes took it (the slowest
    node's, the creates' stagger included), in place of one node's setup plus the stagger."""
    if not segment_s:
        raise ValueError("no segments")
    single = nodes == 1
    overhead = 0.0 if single else task_overhead_s
    render_s, per_node = split_segments(segment_s, nodes, tasks_per_node, overhead)
    one_node_s, _ = split_segments(segment_s, 1, tasks_per_node, 0.0)
    nodes_set_up_s = (node_setup_s + (nodes - 1) * create_stagger_s if measured_setup_s is None
                      else measured_setup_s)
    setup_s = nodes_set_up_s + (0.0 if single else cluster_start_s)
    total_s = setup_s + render_s + finish_s
    lifetime_s = total_s + delete_s
    speedup = one_node_s / render_s if render_s > 0 else float(nodes)
    render_error_s = render_s * render_rel_error
    return ClusterEstimate(
        nodes=nodes, segments=len(segment_s), tasks_per_node=tasks_per_node, setup_s=setup_s,
        render_s=render_s, finish_s=finish_s, total_s=total_s, node_lifetime_s=lifetime_s,
        cost_usd=nodes * cost_usd(plan, lifetime_s), segments_per_node=per_node,
        speedup=speedup, efficiency=speedup / nodes, render_error_s=render_error_s,
        setup_error_s=setup_error_s, total_error_s=math.hypot(render_error_s, setup_error_s))


def even_segments(total_render_s: float, segments: int) -> list[float]:
    """One node's render time spread evenly over the segments (when no per-frame cost is known)."""
    if segments < 1:
        raise ValueError(f"need at least one segment, got {segments}")
    return [total_render_s / segments] * segments


@dataclass(frozen=True)
class Suggestion:
    nodes: int
    reason: str
    table: tuple[ClusterEstimate, ...]  # every candidate, 1..max_nodes


def suggest_nodes(
    segment_s: Sequence[float] | Callable[[int], Sequence[float]], plan: Priced, *,
    node_setup_s: float, max_nodes: int = 8, deadline_s: float | None = None,
    max_cost_usd: float | None = None, min_efficiency: float = MIN_EFFICIENCY,
    measured_setup_s: Mapping[int, float] | None = None, **kw: float,
) -> Suggestion:
    """Pick N: the cheapest (then fewest) that meets the deadline within the budget; without a
    deadline, the fastest whose render still uses at least min_efficiency of its nodes.
    `segment_s`: the segments' one-node seconds, or a function of N giving them as a run on N
    nodes would cut them (a run cuts more segments for more nodes). `measured_setup_s`: by node
    count, the setup earlier runs on that many nodes took (estimate_cluster)."""
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1, got {max_nodes}")
    split = segment_s if callable(segment_s) else (lambda _n: segment_s)
    measured = measured_setup_s or {}
    table = tuple(estimate_cluster(split(n), n, plan, node_setup_s=node_setup_s,
                                   measured_setup_s=measured.get(n),
                                   **kw)  # type: ignore[arg-type]
                  for n in range(1, max_nodes + 1))
    affordable = [e for e in table if max_cost_usd is None or e.cost_usd <= max_cost_usd]
    if not affordable:
        return Suggestion(1, f"no node count fits the budget of ${max_cost_usd:.2f}", table)
    if deadline_s is not None:
        meets = [e for e in affordable if e.total_s <= deadline_s]
        if meets:
            best = min(meets, key=lambda e: (e.cost_usd, e.nodes))
            return Suggestion(best.nodes, f"cheapest to finish within {deadline_s:.0f} s "
                              f"({best.total_s:.0f} s, ${best.cost_usd:.2f})", table)
        fastest = min(affordable, key=lambda e: (e.total_s, e.nodes))
        return Suggestion(fastest.nodes, f"no node count finishes within {deadline_s:.0f} s; "
                          f"fastest is {fastest.total_s:.0f} s", table)
    useful = [e for e in affordable if e.efficiency >= min_efficiency] or affordable[:1]
    best = min(useful, key=lambda e: (e.total_s, e.nodes))
    return Suggestion(best.nodes, f"fastest with at least {min_efficiency:.0%} of the cores busy "
                      f"({best.total_s:.0f} s, ${best.cost_usd:.2f})", table)
