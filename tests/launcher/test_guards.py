"""RunGuards against the emulator's API (no hosts): what each step adds to the request and the
record, and that the end revokes and deletes only once the instance is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.run.guards import GuardSpec, RunFirewall, RunGuards
from launcher.run.record import RunRecord
from provision import tokens
from provision.cloud import InstanceRequest, LinodeCloud
from provision.keys import RunKeys


def _setup(fake, spec: GuardSpec) -> tuple[RunGuards, RunRecord, list[str]]:
    cloud = LinodeCloud(fake.master_token, fake.url, poll_interval_s=0.05)
    record = RunRecord("r1", "now", {}, "dedicated-2", "g6-dedicated-2", 0.054)
    said: list[str] = []
    return RunGuards(spec, cloud, "r1", record, said.append), record, said


REQ = InstanceRequest("juliafarm-r1", "g6-dedicated-2", "us-east", "linode/debian12",
                      "pw", ("ssh-ed25519 AAAA",), ("juliafarm",))


def test_no_guards_change_nothing_but_say_first_use(fake_linode) -> None:
    guards, record, _ = _setup(fake_linode, GuardSpec())
    assert guards.prepare(REQ) == REQ
    assert record.host_key_source == "first_use" and record.firewall_id is None
    guards.finish(deleted=True)
    assert fake_linode.firewalls() == []


def test_the_host_key_goes_into_the_request(fake_linode, tmp_path: Path) -> None:
    guards, record, said = _setup(fake_linode, GuardSpec(host_key_user_data=True))
    req = guards.prepare(REQ)
    assert req.user_data_b64 and req.user_data_b64 not in repr(req)  # holds a private key
    assert record.host_key_source == "user_data"
    keys = RunKeys.create(tmp_path / "keys")
    guards.before_first_contact("203.0.113.77", keys)
    assert keys.pinned_lines("203.0.113.77")[0].split()[1] == "ssh-ed25519"
    assert record.host_key == "preinstalled via user_data"


def test_the_run_firewall_is_made_first_and_deleted_last(fake_linode) -> None:
    guards, record, said = _setup(fake_linode, GuardSpec())
    fw = RunFirewall(guards.cloud, "r1", record, said.append)
    fid = fw.create(("203.0.113.1/32",))
    assert fid == record.firewall_id == fake_linode.firewalls()[0]["id"]
    assert record.ssh_from == ["203.0.113.1/32"]
    assert any("inbound SSH only from 203.0.113.1/32" in s for s in said)
    fw.delete()
    assert fake_linode.firewalls() == [] and record.firewall_deleted


@pytest.mark.parametrize("deleted", [True, False])
def test_the_end_revokes_only_when_the_instance_is_gone(fake_linode, deleted: bool) -> None:
    guards, record, said = _setup(fake_linode, GuardSpec(lease_s=60))
    guards.prepare(REQ)
    minted = tokens.create_lease_token(guards.cloud, "r1", 600)  # as a killed launcher left it
    guards.finish(deleted=deleted)
    token = next(t for t in fake_linode.tokens() if t.id == minted.id)
    assert token.revoked is deleted
    if not deleted:
        assert any("watchdog keeps its token" in s for s in said)
