"""`launcher estimate` as a user runs it (offline: the snapshot's prices): the JSON says which row
is this machine without abusing `type_id`, carries the N-node table, and the N-node split gives
every task slot a segment; bad input is one line and exit 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from launcher.cli import app
from launcher.cluster.dask_cluster import cluster_segment_frames


def run(*args: str):
    return CliRunner().invoke(app, ["estimate", *args])


def test_json_rows_say_which_is_this_machine() -> None:
    res = run("examples/quick.toml", "--plan", "dedicated-4", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    local, cloud = rows[0], rows[1]
    assert local["machine"] == "this machine" and local["type_id"] is None
    assert cloud["machine"] == "rented" and cloud["type_id"] == "g6-dedicated-4"


def test_json_with_nodes_keeps_the_node_table() -> None:
    res = run("examples/4k-keyframes.toml", "--plan", "dedicated-48", "--nodes", "4", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["rows"] and data["nodes"]["chosen"]["nodes"] == 4
    assert [r["nodes"] for r in data["nodes"]["table"]] == list(range(1, 9))
    chosen = data["nodes"]["chosen"]
    slots = 4 * chosen["tasks_per_node"]
    assert chosen["segments"] >= slots  # 6 segments on 4 nodes was 25% efficiency
    assert min(chosen["segments_per_node"]) > 0
    # Row N of the table is what `run --nodes N` estimates: the same cut, the same numbers.
    assert data["nodes"]["table"][3] == chosen
    # Every node row has the one-node row's intervals: the same relative render interval and
    # the same setup interval, combined.
    plan_row = next(r for r in data["rows"] if r["plan"] == "dedicated-48")
    one = data["nodes"]["table"][0]
    assert plan_row["setup_error_s"] > 0
    assert one["setup_error_s"] == pytest.approx(plan_row["setup_error_s"], abs=0.1)
    for r in data["nodes"]["table"]:
        rel = r["render_error_s"] / r["render_s"]
        assert rel == pytest.approx(plan_row["render_error_s"] / plan_row["render_s"], rel=0.02)
        assert r["total_error_s"] == pytest.approx(
            math.hypot(r["render_error_s"], r["setup_error_s"]), rel=1e-6)


def test_node_rows_start_the_cluster_as_earlier_multi_node_runs_did(monkeypatch) -> None:
    """Without a multi-node run the N-node rows assume CLUSTER_START_S; with one, its measured
    "cluster" phase: every row above one node moves by exactly the difference."""
    from launcher.estimate import nodes as N
    from launcher.estimate.cluster import CLUSTER_START_S
    from provision.plans import offline_plans, resolve_plan
    from renderer.scene import Overrides, load_scene

    scene = load_scene(Path("examples/quick.toml"), Overrides(num_frames=40))
    plan = resolve_plan("dedicated-4", offline_plans())
    before = N.estimate(scene, plan, None, None, 3)
    measured = {"plan": "dedicated-4", "status": "completed", "nodes": 3,
                "started_at": "2026-12-01T10:00:00Z", "phases_s": {"cluster": 4.0}}
    monkeypatch.setattr(N, "run_records", lambda output_dir: [measured])
    after = N.estimate(scene, plan, None, None, 3)
    assert after.chosen.setup_s == pytest.approx(before.chosen.setup_s - CLUSTER_START_S + 4.0)
    assert after.suggestion.table[0].setup_s == before.suggestion.table[0].setup_s
    # With its setup phases too, 3-node rows wait for what that run's slowest node took.
    measured["phases_s"].update(create=1.0, boot=6.0, ssh=0.5, lease=0.5, bootstrap=40.0,
                                sync=2.0)
    again = N.estimate(scene, plan, None, None, 3)
    assert again.chosen.setup_s == pytest.approx(50.0 + 4.0)
    assert again.suggestion.table[2] == again.chosen
    assert again.suggestion.table[1].setup_s == after.suggestion.table[1].setup_s


def test_node_rows_stand_on_the_one_node_row_the_caller_already_built() -> None:
    """`launcher run --nodes` passes preflight's one-node row rather than building another."""
    from dataclasses import replace

    from launcher.estimate import nodes as N
    from launcher.estimate.report import plan_estimate
    from provision.plans import offline_plans, resolve_plan
    from renderer.scene import Overrides, load_scene

    scene = load_scene(Path("examples/quick.toml"), Overrides(num_frames=40))
    plan = resolve_plan("dedicated-4", offline_plans())
    row = plan_estimate(scene, plan, None, None)
    assert N.estimate(scene, plan, None, None, 3, row=row) == N.estimate(scene, plan, None, None, 3)
    slower = N.estimate(scene, plan, None, None, 3, row=replace(row, setup_s=row.setup_s + 60))
    assert slower.chosen.setup_s == pytest.approx(
        N.estimate(scene, plan, None, None, 3, row=row).chosen.setup_s + 60)


def test_segments_cover_every_slot_but_stay_local_length_when_they_can() -> None:
    assert cluster_segment_frames(1800, 150, nodes=1, tasks_per_node=1) == 150
    assert cluster_segment_frames(600, 150, nodes=4, tasks_per_node=6) == 25
    assert cluster_segment_frames(10, 150, nodes=4, tasks_per_node=6) == 1
    # Whole rounds of equal segments: 24 of 42 frames (one round), not 25 of 41 (two).
    assert cluster_segment_frames(1000, 150, nodes=4, tasks_per_node=6) == 42
    # 16 segments of 113 fill two rounds of 8 slots; 12 of 150 left half the second idle.
    assert cluster_segment_frames(1800, 150, nodes=4, tasks_per_node=2) == 113
    # 9 frames on 4 slots: 5 of 2 frames end as soon as 3 of 3 and leave no slot idle.
    assert cluster_segment_frames(9, 150, nodes=4, tasks_per_node=1) == 2
    # 20 frames on 6 slots: 5 of 4 (one round, 4 frames' time) beat 7 of 3 (two, 5).
    assert cluster_segment_frames(20, 150, nodes=6, tasks_per_node=1) == 4
    for frames in range(1, 400, 7):
        for slots in (1, 2, 3, 8, 24):
            per = cluster_segment_frames(frames, 60, nodes=slots, tasks_per_node=1)
            took, segments = _makespan(frames, per, slots), -(-frames // per)
            # Never slower than the cut before (frames // slots, capped at the local length),
            # and within a frame a round of a perfect balance.
            before = max(1, min(60, frames // slots or 1))
            assert 1 <= per <= 60 and took <= _makespan(frames, before, slots), (frames, slots)
            assert took <= -(-frames // slots) + -(-segments // slots), (frames, slots)
            if frames % slots == 0 and frames // slots <= 60:
                assert -(-frames // per) == slots  # one segment a slot when they divide


def _makespan(frames: int, per: int, slots: int) -> int:
    """Frames' time of segments of `per` frames list-scheduled onto `slots` (plain loop)."""
    free = [0] * slots
    for first in range(0, frames, per):
        i = free.index(min(free))
        free[i] += min(per, frames - first)
    return max(free)


def test_bad_input_is_one_line_and_exit_2() -> None:
    for args in (("--deadline", "-5m"), ("--plan", "dedicated-3")):
        res = run("examples/quick.toml", *args)
        assert res.exit_code == 2, (args, res.output)


def test_plot_draws_every_plan_and_bad_paths_write_nothing(tmp_path) -> None:
    from PIL import Image

    target = tmp_path / "cost.png"
    res = run("examples/quick.toml", "--nodes", "3", "--deadline", "10m", "--max-cost", "2",
              "--plot", str(target))
    assert res.exit_code == 0, res.output
    with Image.open(target) as im:
        assert im.format == "PNG" and im.size[0] > 400
    for bad in (tmp_path / "cost.txt", Path("/proc/nope/cost.png")):
        res = run("examples/quick.toml", "--plot", str(bad))
        assert res.exit_code == 2 and not bad.exists(), res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cost.png"]  # no temp files left


def test_dominated_plans_are_the_beaten_ones() -> None:
    from launcher.estimate.plot import dominated

    class R:
        def __init__(self, plan, t, c):
            self.plan, self.total_s, self.cost_usd = plan, t, c

    rows = [R("a", 100, 1.0), R("b", 100, 2.0), R("c", 50, 2.0), R("d", 200, 0.5)]
    assert dominated(rows) == {"b"}
