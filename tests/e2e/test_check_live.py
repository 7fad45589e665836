"""`launcher check --live` against the local Linode cloud with a real host (root only): the
cheapest type is rented, its host key comes through user_data, ufw is on, root and password
logins are refused, and it is deleted (confirmed) — one billed hour of the cheapest type."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.test_launcher_run import SSH_FROM, _env, _launcher

pytestmark = [pytest.mark.root, pytest.mark.slow]


def test_check_live_round_trip(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    done = subprocess.run(_launcher("check", "--live", "--yes", *SSH_FROM),
                          env=_env(fake, tmp_path), capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    for item in ("host key", "ufw", "root login", "password login"):
        assert any(line.startswith("ok ") and item in line for line in done.stdout.splitlines()), \
            log[-3000:]
    assert "pinned through user_data" in done.stdout
    entries = fake.ledger.entries()
    assert len(entries) == 1 and entries[0].type_id == "g6-nanode-1"
    assert fake.ledger.running() == [] and fake.instances() == [] and fake.firewalls() == []
    assert "live check passed" in done.stdout and "$0.0075" in done.stdout
