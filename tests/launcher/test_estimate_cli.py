"""`launcher estimate` as a user runs it (offline: the snapshot's prices): the JSON says which row
is this machine without abusing `type_id`, carries the N-node table, and the N-node split gives
every task slot a segment; bad input is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_segments_cover_every_slot_but_stay_local_length_when_they_can() -> None:
    assert cluster_segment_frames(1800, 150, nodes=1, tasks_per_node=1) == 150
    assert cluster_segment_frames(600, 150, nodes=4, tasks_per_node=6) == 25
    assert cluster_segment_frames(10, 150, nodes=4, tasks_per_node=6) == 1


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
