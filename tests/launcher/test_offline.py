"""Planning without an account or a network: `plans`, `estimate` and `run --dry-run` answer in
seconds from the public endpoints, then cached live prices, then the snapshot, and say which;
`ls` fails fast in one line. The real CLI in a subprocess; "offline" is a closed local port."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launcher.estimate.calibration import calibrate
from tests.e2e.test_launcher_run import SCENE

OFFLINE = "http://127.0.0.1:9/v4"  # discard port: nothing listens, connections are refused


@pytest.fixture(scope="module")
def calibration(tmp_path_factory) -> Path:
    """This machine's calibration, measured once for the module. The first estimate on a machine
    also calibrates it (kernel, colour, a renderer's start-up and first-use compile: several
    seconds, once per machine and renderer version); what these tests time is what the network
    costs, so every test starts with the calibration in its cache."""
    cache = tmp_path_factory.mktemp("calibration")
    calibrate(cache=cache)
    return cache


@pytest.fixture(autouse=True)
def _calibrated(tmp_path: Path, calibration: Path) -> None:
    dest = tmp_path / "cache" / "juliafarm"
    dest.mkdir(parents=True, exist_ok=True)
    for f in calibration.glob("calibration-*.json"):
        shutil.copy(f, dest / f.name)


def launcher(tmp: Path, api: str, *args: str, token: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINODE")}
    env.update(LINODE_API_URL=api, LINODE_TOKEN_FILE=str(tmp / "no-token"),
               XDG_CACHE_HOME=str(tmp / "cache"), XDG_STATE_HOME=str(tmp / "state"))
    if token:
        env["LINODE_TOKEN"] = token
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "from launcher.cli import main; main()", *args],
                          env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, cwd=tmp)
    return proc, time.monotonic() - t0


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(SCENE.format(frames=12))
    return p


def test_plans_offline_say_snapshot_then_cached_live_prices(tmp_path, fake_linode) -> None:
    proc, took = launcher(tmp_path, OFFLINE, "plans")
    assert proc.returncode == 0 and took < 5, proc.stderr
    assert "prices: the 2024-07-19 snapshot (the API did not answer" in proc.stdout
    proc, _ = launcher(tmp_path, fake_linode.url, "plans")  # no token: the public endpoint
    assert proc.returncode == 0 and "prices: live prices from the API" in proc.stdout
    proc, took = launcher(tmp_path, OFFLINE, "plans")
    assert proc.returncode == 0 and took < 5
    assert "prices: cached live prices of " in proc.stdout and "h old" in proc.stdout


def test_estimate_and_dry_run_work_offline_without_a_token(tmp_path, scene) -> None:
    proc, took = launcher(tmp_path, OFFLINE, "estimate", str(scene), "--plan", "dedicated-4")
    assert proc.returncode == 0 and took < 5, proc.stderr
    assert "snapshot" in proc.stdout + proc.stderr
    proc, took = launcher(tmp_path, OFFLINE, "run", str(scene), "--dry-run",
                          "--ssh-from", "198.51.100.7/32")
    assert proc.returncode == 0 and took < 5, proc.stderr
    assert "nothing was created" in proc.stdout
    assert "no Linode API token: its checks are skipped" in proc.stderr
    assert "snapshot" in proc.stderr


def test_dry_run_without_a_token_uses_the_public_endpoints(tmp_path, scene,
                                                          fake_linode) -> None:
    proc, _ = launcher(tmp_path, fake_linode.url, "run", str(scene), "--dry-run",
                       "--region", "br-gru", "--plan", "dedicated-2",
                       "--ssh-from", "198.51.100.7/32")
    assert proc.returncode == 0, proc.stderr
    assert "regions not checked" not in proc.stderr  # GET /regions needs no token
    assert "at $0.076/h in br-gru" in proc.stderr  # the region's own price, live
    assert fake_linode.instances() == [] and fake_linode.ledger.entries() == []


def test_ls_offline_fails_fast_in_one_line(tmp_path) -> None:
    proc, took = launcher(tmp_path, OFFLINE, "ls", token="tok")
    assert proc.returncode == 1 and took < 10
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and len(errors[0]) < 160, proc.stderr
    assert "cannot reach the API" in errors[0]


def test_every_preflight_problem_on_its_own_line(tmp_path, fake_linode) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SCENE.format(frames=12).replace('path = "tiny.mp4"', 'path = "/abs/x.mp4"'))
    proc, _ = launcher(tmp_path, fake_linode.url, "run", str(bad), "--dry-run", "--plan",
                       "dedicated-3", "--ssh-from", "198.51.100.7/32",
                       token=fake_linode.master_token)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert "error: 2 problems:" in lines
    assert any(line.startswith("  - output.path") for line in lines)
    assert any(line.startswith("  - unknown plan 'dedicated-3'") for line in lines)


@pytest.fixture
def unroutable():
    """An address whose connections never complete, as an unroutable one: a listening socket
    that never accepts, its queue already full, so new connection attempts hang (on loopback)."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fill = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fill.append(c)
    time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/v4"
    for c in fill:
        c.close()
    srv.close()


def test_planning_with_the_api_unroutable_answers_in_seconds(tmp_path, scene,
                                                             unroutable) -> None:
    for args in (("plans",), ("estimate", str(scene), "--plan", "dedicated-4"),
                 ("run", str(scene), "--dry-run", "--ssh-from", "198.51.100.7/32")):
        proc, took = launcher(tmp_path, unroutable, *args)
        assert proc.returncode == 0 and took < 5, (args, took, proc.stderr[-500:])
        assert "snapshot" in proc.stdout + proc.stderr, args
    proc, took = launcher(tmp_path, unroutable, "ls", token="tok")
    assert proc.returncode == 1 and took < 10
    assert len([x for x in proc.stderr.splitlines() if x.startswith("error:")]) == 1


def test_dry_run_max_cost_is_checked_against_the_estimate_preflight_made(tmp_path, scene) -> None:
    """--max-cost reads the estimate preflight built for the line (one estimate per run): a cap
    below it refuses in one line, exit 2, before anything is created; a cap above it passes."""
    proc, _ = launcher(tmp_path, OFFLINE, "run", str(scene), "--dry-run", "--plan",
                       "dedicated-4", "--ssh-from", "198.51.100.7/32", "--max-cost", "0.01")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("estimate on dedicated-4:") == 1
    refusal = [ln for ln in proc.stderr.splitlines() if "0.01" in ln]
    assert len(refusal) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "nothing was created" not in proc.stdout
    proc, _ = launcher(tmp_path, OFFLINE, "run", str(scene), "--dry-run", "--plan",
                       "dedicated-4", "--ssh-from", "198.51.100.7/32", "--max-cost", "5")
    assert proc.returncode == 0 and "nothing was created" in proc.stdout, proc.stderr
