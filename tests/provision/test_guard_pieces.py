"""Tokens, firewalls, host keys and the server API URL, through the real client and emulator."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
import requests
import yaml

from launcher.config import lease_seconds
from provision import firewall, hostkey, tokens
from provision.cloud import LinodeCloud
from provision.errors import ProvisionError
from provision.token import server_api_url


@pytest.fixture
def cloud(fake_linode) -> LinodeCloud:
    return LinodeCloud(fake_linode.master_token, fake_linode.url, poll_interval_s=0.05)


def test_lease_token_is_scoped_expires_and_revokes(cloud, fake_linode) -> None:
    tok = tokens.create_lease_token(cloud, "run-1", 900)
    assert "secret" not in repr(tok) and tok.secret not in repr(tok)
    minted = next(t for t in fake_linode.tokens() if t.id == tok.id)
    assert minted.scopes == "linodes:read_write" and minted.label == "juliafarm-lease-run-1"
    left = (minted.expiry - datetime.now(UTC)).total_seconds()
    assert 880 < left < 905
    url = f"{fake_linode.url}/linode/instances"
    assert requests.get(url, headers={"Authorization": f"Bearer {tok.secret}"},
                        timeout=5).status_code == 200
    tokens.revoke_token(cloud, tok.id)
    assert requests.get(url, headers={"Authorization": f"Bearer {tok.secret}"},
                        timeout=5).status_code == 401
    tokens.revoke_token(cloud, tok.id)  # twice is fine


def test_revoke_run_tokens_keeps_others(cloud, fake_linode) -> None:
    a = tokens.create_lease_token(cloud, "run-a", 900)
    b = tokens.create_lease_token(cloud, "run-b", 900)
    keep = tokens.create_lease_token(cloud, "run-a", 900)
    assert tokens.revoke_run_tokens(cloud, "run-a", keep=(keep.id,)) == [a.id]
    alive = {t.id for t in fake_linode.tokens() if not t.revoked}
    assert b.id in alive and keep.id in alive and a.id not in alive


def test_missing_scopes() -> None:
    assert tokens.missing_scopes("*", tokens=True, firewall=True) == []
    miss = tokens.missing_scopes("linodes:read_write", tokens=True, firewall=True)
    assert len(miss) == 2 and "--no-cloud-firewall" in miss[1]
    assert tokens.missing_scopes("linodes:read_write account:read_write", tokens=True,
                                 firewall=False) == []


def test_run_firewall_rules_create_find_delete(cloud, fake_linode) -> None:
    assert firewall.normalise_cidrs(["203.0.113.7", "10.0.0.0/8,203.0.113.7"]) == \
        ("203.0.113.7/32", "10.0.0.0/8")
    with pytest.raises(ValueError):
        firewall.normalise_cidrs(["2001:db8::1"])
    with pytest.raises(ValueError):
        firewall.normalise_cidrs(["not-an-address"])
    fid = firewall.create_run_firewall(cloud, "20260101-000000-abcdef", ("203.0.113.1/32",))
    fw = fake_linode.firewalls()[0]
    assert fw["id"] == fid and fw["label"] == "jf-20260101-000000-abcdef"
    assert fw["rules"]["inbound_policy"] == "DROP"
    assert fw["rules"]["inbound"][0]["ports"] == "22"
    assert fw["rules"]["inbound"][0]["addresses"]["ipv4"] == ["203.0.113.1/32"]
    assert "juliafarm-run-20260101-000000-abcdef" in fw["tags"]
    assert [f["id"] for f in firewall.run_firewalls(cloud)] == [fid]
    assert firewall.run_firewalls(cloud, "other-run") == []
    # A multi-node run then opens the Dask ports to exactly its nodes, SSH staying as it was.
    rules = firewall.cluster_rules(("203.0.113.1/32",), ["198.51.100.3", "198.51.100.2"],
                                   "8786-8789")
    firewall.update_rules(cloud, fid, rules)
    inbound = fake_linode.firewalls()[0]["rules"]["inbound"]
    assert [(r["ports"], r["addresses"]["ipv4"]) for r in inbound] == [
        ("22", ["203.0.113.1/32"]), ("8786-8789", ["198.51.100.2/32", "198.51.100.3/32"])]
    assert fake_linode.firewalls()[0]["rules"]["inbound_policy"] == "DROP"
    firewall.delete_firewall(cloud, fid)
    firewall.delete_firewall(cloud, fid)  # already gone is fine
    assert fake_linode.firewalls() == []


def test_address_detection_failure_says_what_to_do() -> None:
    with pytest.raises(firewall.AddressUnknown, match="--ssh-from"):
        firewall.detect_public_cidr(timeout_s=0.5, services=("http://127.0.0.1:9/",))


def test_host_key_cloud_config_carries_the_pair() -> None:
    key = hostkey.generate()
    assert key.public_line.startswith("ssh-ed25519 ") and key.key_type == "ssh-ed25519"
    assert key.user_data_b64 not in repr(key)
    doc = yaml.safe_load(base64.b64decode(key.user_data_b64))
    assert doc["ssh_keys"]["ed25519_public"] == key.public_line
    assert "OPENSSH PRIVATE KEY" in doc["ssh_keys"]["ed25519_private"]
    assert doc["ssh_genkeytypes"] == [] and doc["ssh_deletekeys"] is True
    assert hostkey.generate().public_line != key.public_line


def test_user_data_support_follows_capabilities(cloud, monkeypatch) -> None:
    assert hostkey.user_data_supported(cloud, "linode/debian12", ["us-east", "us-central"])
    assert not hostkey.user_data_supported(cloud, "linode/nonexistent", ["us-east"])
    from tests.fakelinode import catalog

    region = next(r for r in catalog.REGIONS if r["id"] == "us-central")
    monkeypatch.setitem(region, "capabilities", ["Linodes", "Block Storage"])
    assert not hostkey.user_data_supported(cloud, "linode/debian12", ["us-east", "us-central"])


def test_server_api_url() -> None:
    assert server_api_url({}) == "https://api.linode.com/v4"
    emu = {"LINODE_API_URL": "http://127.0.0.1:8000/v4"}
    assert server_api_url({**emu, "JULIAFARM_SERVER_API_URL": "http://203.0.113.1:8000/v4/"}) \
        == "http://203.0.113.1:8000/v4"
    with pytest.raises(ProvisionError, match="clear text"):
        server_api_url({"JULIAFARM_SERVER_API_URL": "http://203.0.113.1:8000/v4"})
    with pytest.raises(ProvisionError):
        server_api_url({"JULIAFARM_SERVER_API_URL": "ftp://x"})


def test_default_lease_length() -> None:
    assert lease_seconds(600) == 600 * 2 + 1800
    assert lease_seconds(None) == 4 * 3600
