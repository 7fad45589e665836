"""Everyday operations against the local Linode API (real client, no hosts): `history` and `cost`
from the state directory's records (totals equal the emulator's ledger), `ls` with run, price,
lease and mode, `cleanup` sparing a leased run unless --all, `down` leaving other runs alive."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from launcher.cli import app
from launcher.history import cost_report, history_rows, load_history
from launcher.run.record import RunRecord
from launcher.run.spec import TAG, new_run_id, run_label, run_tag
from provision.cloud import InstanceRequest, LinodeCloud
from renderer.local_record import LOCAL_RENDERS
from tests.launcher.test_fault_matrix import make_run


@pytest.fixture
def env(fake_linode, tmp_path, monkeypatch):
    monkeypatch.setenv("LINODE_API_URL", fake_linode.url)
    monkeypatch.setenv("LINODE_TOKEN", fake_linode.master_token)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "juliafarm" / "runs"


def cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_history_and_cost_come_from_the_state_directory_and_match_the_ledger(
        fake_linode, tmp_path, env) -> None:
    for nodes in (1, 2):
        (tmp_path / f"r{nodes}").mkdir()
        run = make_run(fake_linode, tmp_path / f"r{nodes}", "render", "none", nodes)
        run.state_dir = env / run.run_id
        run.run()
    records = load_history(env)
    assert sorted(r.nodes for r in records) == [1, 2]  # started in the same second, maybe
    rows = history_rows(records)
    assert all(r["status"] == "completed" and r["deleted"] is True for r in rows)
    total = sum(c.cost_usd for c in cost_report(records))
    assert total == pytest.approx(fake_linode.ledger.total_usd())
    assert sum(c.node_hours for c in cost_report(records)) == 3
    res = cli("history")
    assert res.exit_code == 0 and all(r.run_id in res.stdout for r in records)
    data = json.loads(cli("history", "--json").stdout)
    assert [d["run_id"] for d in data] == [r.run_id for r in records]
    cost = json.loads(cli("cost", "--json").stdout)
    assert sum(c["cost_usd"] for c in cost) == pytest.approx(fake_linode.ledger.total_usd())
    assert "total" in cli("cost").stdout


def test_history_lists_this_machines_renders_beside_the_cloud_runs(tmp_path, monkeypatch
                                                                    ) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "xdg" / "juliafarm"
    # A cloud run whose delete was never confirmed, and two local renders around it.
    RunRecord("20261130-cloud", "2026-11-30T10:00:00Z", {}, "dedicated-2", "g6-dedicated-2",
              0.054, status="failed").save(root / "runs" / "20261130-cloud" / "record.json")
    renders = root / LOCAL_RENDERS
    renders.mkdir(parents=True)
    for stem, finished, wall in (("20261130T095000-1", "2026-11-30T09:50:00Z", 60.0),
                                 ("20261130T110000-2", "2026-11-30T11:00:00Z", 30.5)):
        (renders / f"{stem}.json").write_text(json.dumps({
            "kind": "local-render", "id": f"local-{stem}", "finished_at": finished,
            "wall_s": wall, "output": f"/videos/{stem}.mp4"}))
    (renders / "20261130T120000-3.json").write_text('{"kind": "local-render"}')  # no times
    data = json.loads(cli("history", "--json").stdout)
    assert [(d["run_id"], d["kind"]) for d in data] == [
        ("local-20261130T095000-1", "local"), ("20261130-cloud", "cloud"),
        ("local-20261130T110000-2", "local")]
    first = data[0]
    assert first["started_at"] == "2026-11-30T09:49:00Z" and first["duration_s"] == 60.0
    assert (first["plan"], first["cost_usd"], first["output"]) == (
        "this machine", 0.0, "/videos/20261130T095000-1.mp4")
    lines = cli("history").stdout.splitlines()
    flagged = [line for line in lines if "NOT confirmed deleted" in line]
    assert len(flagged) == 1 and "20261130-cloud" in flagged[0]  # never a local render
    assert any("local-20261130T110000-2" in line and "$0.00" in line for line in lines)


def _instance(fake, run_id: str, region: str = "us-east"):
    cloud = LinodeCloud(fake.master_token, fake.url, poll_interval_s=0.05, delete_timeout_s=10)
    return cloud.create(InstanceRequest(run_label(run_id), "g6-dedicated-2", region,
                                        "linode/debian12", "Pw-123456789-x!",
                                        ("ssh-ed25519 AAAA",), (TAG, run_tag(run_id))))


def _detached_record(state_root, run_id: str, iid: int) -> None:
    deadline = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    rec = RunRecord(run_id, "2026-11-30T00:00:00Z", {}, "dedicated-2", "g6-dedicated-2", 0.054,
                    status="detached", instance_id=iid,
                    lease={"deadline": deadline, "lease_s": 3600})
    rec.save(state_root / run_id / "record.json")


def test_ls_cleanup_spares_a_leased_run_and_down_takes_only_its_own(fake_linode, env) -> None:
    fake = fake_linode
    leased, orphan, other = new_run_id(), new_run_id(), new_run_id()
    a = _instance(fake, leased)
    b = _instance(fake, orphan, region="br-gru")
    _instance(fake, other)
    _detached_record(env, leased, a.id)
    rows = {r["run_id"]: r for r in json.loads(cli("ls", "--json").stdout)}
    assert rows[leased]["mode"] == "detached" and rows[leased]["lease_live"] is True
    assert rows[orphan]["mode"] == "unknown" and rows[orphan]["price_hourly_usd"] == 0.076
    assert "lease until" in cli("ls").stdout
    # down: one run, the others untouched
    res = cli("down", other, "--yes")
    assert res.exit_code == 0, res.output
    assert {i["id"] for i in fake.instances()} == {a.id, b.id}
    # cleanup spares the leased (detached) run
    res = cli("cleanup", "--yes")
    assert res.exit_code == 0, res.output
    assert "spared" in res.stdout and leased in res.stdout
    assert {i["id"] for i in fake.instances()} == {a.id}
    res = cli("cleanup", "--yes", "--all")
    assert res.exit_code == 0, res.output
    assert fake.instances() == [] and fake.ledger.running() == []


def test_cleanup_older_than_spares_young_instances(fake_linode, env) -> None:
    _instance(fake_linode, new_run_id())
    res = cli("cleanup", "--yes", "--older-than", "2h")
    assert res.exit_code == 0 and "younger than 2h" in res.stdout
    assert len(fake_linode.instances()) == 1
    assert cli("cleanup", "--yes").exit_code == 0
    assert fake_linode.instances() == []


def test_check_says_each_item_in_one_line(fake_linode, env) -> None:
    res = cli("check")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    for name in ("ssh", "rsync", "ffmpeg", "token", "api", "scopes"):
        assert any(line.startswith("ok ") and f" {name} " in f"{line} " for line in lines), name


def test_check_names_what_is_missing(fake_linode, env, monkeypatch) -> None:
    monkeypatch.setenv("LINODE_TOKEN", fake_linode.mint_token(scopes="linodes:read_write"))
    res = cli("check")
    assert res.exit_code == 1
    assert any(line.startswith("NO ") and "scopes" in line for line in res.stdout.splitlines())
    monkeypatch.delenv("LINODE_TOKEN")
    monkeypatch.setenv("LINODE_TOKEN_FILE", "/nonexistent/token")
    res = cli("check")
    assert res.exit_code == 1 and "NO  token" in res.stdout


def test_logs_prints_and_follows_the_kept_render_output(env, tmp_path) -> None:
    import threading
    import time as _time

    from launcher.run.runlog import RunLog

    run_id = new_run_id()
    state = env / run_id
    rec = RunRecord(run_id, "2026-11-30T00:00:00Z", {}, "dedicated-2", "g6-dedicated-2", 0.054,
                    status="rendering")
    rec.save(state / "record.json")
    log = RunLog(state)
    log.write("frame 1/4  1.0 fps")
    res = cli("logs", run_id)
    assert res.exit_code == 0 and "frame 1/4" in res.stdout

    def finish() -> None:
        _time.sleep(0.6)
        log.write("frame 4/4  1.0 fps")
        rec.status = "completed"
        rec.save(state / "record.json")

    threading.Thread(target=finish).start()
    res = cli("logs", run_id, "--follow")
    assert res.exit_code == 0 and "frame 4/4" in res.stdout
    assert cli("logs", "no-such-run").exit_code == 1


def test_cleanup_takes_an_orphan_of_a_killed_launcher_and_spares_a_live_one(fake_linode,
                                                                            env) -> None:
    """Both runs still have a live lease; the one whose launcher process is gone (SIGKILL, a
    lost laptop) is cleanup's to delete, the one whose launcher still runs here is not."""
    import os
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    deadline = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    ids = {}
    for run_id, pid in ((new_run_id(), dead.pid), (new_run_id(), os.getpid())):
        ids[run_id] = _instance(fake_linode, run_id).id
        RunRecord(run_id, "2026-11-30T00:00:00Z", {}, "dedicated-2", "g6-dedicated-2", 0.054,
                  status="rendering", lease={"deadline": deadline}, launcher_pid=pid,
                  launcher_host=socket.gethostname()).save(env / run_id / "record.json")
    rows = {r["run_id"]: r for r in json.loads(cli("ls", "--json").stdout)}
    orphan, alive = list(ids)
    assert rows[orphan]["mode"] == "orphaned" and rows[alive]["mode"] == "attached"
    res = cli("cleanup", "--yes")
    assert res.exit_code == 0, res.output
    assert [i["id"] for i in fake_linode.instances()] == [ids[alive]]
