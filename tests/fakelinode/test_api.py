"""The emulator through the real linode_api4 client: shapes, auth, lifecycle, faults, ledger."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from linode_api4 import ApiError, Instance, LinodeClient, Type

from tests.fakelinode.server import FakeLinode

PW = "Str0ng-Passw0rd-xyz"


def client(fake: FakeLinode, token: str | None = None) -> LinodeClient:
    return LinodeClient(token or fake.master_token, base_url=fake.url, retry=False)


def create(c: LinodeClient, label: str = "juliafarm-t1", **kw) -> Instance:
    kw.setdefault("root_pass", PW)
    return c.linode.instance_create("g6-dedicated-2", kw.pop("region", "us-east"),
                                    image="linode/debian12", label=label,
                                    tags=["juliafarm", f"juliafarm-run-{label}"], **kw)


def test_lifecycle_provisioning_booting_running_then_gone(fake_linode) -> None:
    fake_linode.provision_delay_s = fake_linode.boot_delay_s = 0.3
    c = client(fake_linode)
    inst = create(c)
    assert inst.status == "provisioning" and inst.ipv4 == ["203.0.113.10"]
    seen = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status = c.load(Instance, inst.id).status
        seen.add(status)
        if status == "running":
            break
        time.sleep(0.05)
    assert {"provisioning", "booting", "running"} <= seen
    assert fake_linode.backend.running == {inst.id}
    inst.delete()
    fake_linode.wait_status(inst.id, "gone")
    with pytest.raises(ApiError) as info:
        c.load(Instance, inst.id)
    assert info.value.status == 404
    assert fake_linode.backend.running == set()


def test_wrong_or_missing_token_is_401_but_types_are_public(fake_linode) -> None:
    with pytest.raises(ApiError) as info:
        list(client(fake_linode, "nope").linode.instances())
    assert info.value.status == 401 and "Invalid Token" in str(info.value)
    r = requests.get(f"{fake_linode.url}/linode/instances", timeout=5)
    assert r.status_code == 401 and r.json() == {"errors": [{"reason": "Invalid Token"}]}
    r = requests.get(f"{fake_linode.url}/linode/types", timeout=5)
    assert r.status_code == 200 and r.json()["results"] == 37
    assert len(client(fake_linode, "nope").linode.types(Type.type_class == "dedicated")) == 9


@pytest.mark.parametrize("kw, field", [
    ({"root_pass": "short"}, "root_pass"),
    ({"root_pass": "alllowercaseletters"}, "root_pass"),
    ({"label": "9starts-with-digit"}, "label"),
    ({"label": "a--b-c"}, "label"),
    ({"region": "mars-north"}, "region"),
])
def test_validation_names_the_field(fake_linode, kw, field) -> None:
    with pytest.raises(ApiError) as info:
        create(client(fake_linode), **kw)
    assert info.value.status == 400
    assert any(e.get("field") == field for e in info.value.json["errors"])
    assert fake_linode.ledger.entries() == []


def test_unknown_type_and_missing_credentials(fake_linode) -> None:
    body = {"type": "g6-nope", "region": "us-east", "image": "linode/debian12"}
    r = requests.post(f"{fake_linode.url}/linode/instances", json=body, timeout=5,
                      headers={"Authorization": f"Bearer {fake_linode.master_token}"})
    reasons = {e["reason"] for e in r.json()["errors"]}
    assert r.status_code == 400
    assert "A valid plan type by that ID was not found" in reasons
    assert "Must provide valid root_pass, authorized_keys, or authorized_users" in reasons


def test_filters_and_pagination(fake_linode) -> None:
    c = client(fake_linode)
    for k in range(30):
        create(c, label=f"node-{k:02d}")
    mine = c.linode.instances(Instance.tags.contains("juliafarm-run-node-07"))
    assert [i.label for i in mine] == ["node-07"]
    assert len(c.linode.instances(Instance.label == "node-12")) == 1
    r = requests.get(f"{fake_linode.url}/linode/instances?page=2&page_size=25", timeout=5,
                     headers={"Authorization": f"Bearer {fake_linode.master_token}"})
    page = r.json()
    assert (page["page"], page["pages"], page["results"], len(page["data"])) == (2, 2, 30, 5)
    r = requests.get(f"{fake_linode.url}/linode/instances", timeout=5,
                     headers={"Authorization": f"Bearer {fake_linode.master_token}",
                              "X-Filter": '{"root_pass": "x"}'})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "X-Filter"
    assert len(list(c.linode.instances())) == 30  # the SDK walks both pages


def test_rate_limit_then_success(fake_linode) -> None:
    fake_linode.faults.rate_limit("POST", "linode/instances", count=2, retry_after_s=7)
    c = client(fake_linode)
    for _ in range(2):
        with pytest.raises(ApiError) as info:
            create(c)
        assert info.value.status == 429
    assert fake_linode.ledger.entries() == []
    r_headers = requests.post(f"{fake_linode.url}/linode/instances", json={}, timeout=5,
                              headers={"Authorization": "Bearer x"}).headers
    assert r_headers.get("X-Spec-Version")
    assert create(c).id  # the third attempt goes through


def test_429_carries_the_real_headers(fake_linode) -> None:
    fake_linode.faults.rate_limit("GET", "linode/instances", retry_after_s=5)
    r = requests.get(f"{fake_linode.url}/linode/instances", timeout=5,
                     headers={"Authorization": f"Bearer {fake_linode.master_token}"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "5"
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(r.headers)
    assert r.json() == {"errors": [{"reason": "Too many requests"}]}


def test_ambiguous_5xx_after_the_create_took_effect(fake_linode) -> None:
    fake_linode.faults.server_error("POST", "linode/instances", status=502, after_effect=True)
    c = client(fake_linode)
    with pytest.raises(ApiError) as info:
        create(c, label="ghost-1")
    assert info.value.status == 502
    assert [i.label for i in c.linode.instances(Instance.label == "ghost-1")] == ["ghost-1"]
    assert len(fake_linode.ledger.running()) == 1


def test_no_capacity_in_a_region(fake_linode) -> None:
    fake_linode.faults.no_capacity("us-east")
    c = client(fake_linode)
    with pytest.raises(ApiError) as info:
        create(c)
    assert info.value.status == 400 and "capacity" in str(info.value).lower()
    assert create(c, region="us-central").region.id == "us-central"


def test_disappear_fault(fake_linode) -> None:
    c = client(fake_linode)
    inst = create(c)
    fake_linode.disappear(inst.id)
    with pytest.raises(ApiError):
        c.load(Instance, inst.id)
    assert fake_linode.ledger.entry(inst.id).deleted_by == "outside"


def test_ledger_bills_started_hours_capped_at_monthly() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with FakeLinode("t", clock=lambda: now[0], provision_delay_s=0, boot_delay_s=0) as fake:
        c = client(fake)
        a = create(c, label="a-one")
        b = create(c, label="b-two")
        now[0] += timedelta(minutes=61)
        a.delete()
        e = fake.ledger.entry(a.id)
        assert e.billed_hours(now[0]) == 2 and e.charge_usd(now[0]) == pytest.approx(0.108)
        now[0] += timedelta(days=40)  # b is still running: capped at the monthly price
        assert fake.ledger.entry(b.id).charge_usd(now[0]) == pytest.approx(36.0)
        assert [x.instance_id for x in fake.ledger.running()] == [b.id]
        b.delete()
        assert fake.ledger.running() == []


def test_short_lived_instance_costs_one_hour(fake_linode) -> None:
    inst = create(client(fake_linode))
    inst.delete()
    e = fake_linode.ledger.entry(inst.id)
    assert e.billed_hours(fake_linode.clock()) == 1


def test_metadata_and_keys_reach_the_host(fake_linode) -> None:
    c = client(fake_linode)
    meta = c.linode.build_instance_metadata(user_data="#cloud-config\n")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTestsOnly0000000000000000000 t"
    inst = c.linode.instance_create("g6-dedicated-4", "us-east", image="linode/debian12",
                                    authorized_keys=[key], metadata=meta, private_ip=True,
                                    label="meta-1")
    fake_linode.wait_status(inst.id, "running")
    spec = fake_linode.backend.started[0]
    assert spec.user_data == b"#cloud-config\n" and spec.authorized_keys == (key,)
    assert spec.private_ipv4 == "198.51.100.10" and spec.root_pass is None
    assert base64.b64decode(meta["user_data"]) == b"#cloud-config\n"


def test_events_follow_the_lifecycle(fake_linode) -> None:
    c = client(fake_linode)
    inst = create(c)
    fake_linode.wait_status(inst.id, "running")
    actions = {(e.action, e.status) for e in c.account.events()}
    assert {("linode_create", "finished"), ("linode_boot", "finished")} <= actions


def test_scoped_tokens_expire_and_can_be_revoked() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with FakeLinode("master-token", clock=lambda: now[0]) as fake:
        c = client(fake)
        expiry = now[0] + timedelta(hours=1)
        tok = c.profile.token_create(label="lease", scopes="linodes:read_write", expiry=expiry)
        scoped = client(fake, tok.token)
        assert list(scoped.linode.instances()) == []
        with pytest.raises(ApiError) as info:  # no firewall scope
            list(scoped.networking.firewalls())
        assert info.value.status == 401
        now[0] = expiry + timedelta(seconds=1)
        with pytest.raises(ApiError):
            list(scoped.linode.instances())
        now[0] = datetime(2026, 1, 1, tzinfo=UTC)
        tok2 = c.profile.token_create(label="x", scopes="linodes:read_write")
        requests.delete(f"{fake.url}/profile/tokens/{tok2.id}", timeout=5,
                        headers={"Authorization": "Bearer master-token"}).raise_for_status()
        with pytest.raises(ApiError):
            list(client(fake, tok2.token).linode.instances())


def test_firewall_create_attach_delete(fake_linode) -> None:
    c = client(fake_linode)
    inst = create(c)
    rules = {"inbound_policy": "DROP", "outbound_policy": "ACCEPT",
             "inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "22",
                          "addresses": {"ipv4": ["203.0.113.1/32"]}, "label": "ssh"}],
             "outbound": []}
    fw = c.networking.firewall_create("jf-run-1", rules, devices={"linodes": [inst.id]})
    assert [d.entity.id for d in fw.devices] == [inst.id]
    fw.delete()
    assert fake_linode.firewalls() == []


def test_firewall_rules_update_replaces_them_and_reaches_the_machines(fake_linode) -> None:
    c = client(fake_linode)
    inst = create(c)
    fake_linode.wait_status(inst.id, "running")
    ssh_only = {"inbound_policy": "DROP", "outbound_policy": "ACCEPT", "outbound": [],
                "inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "22",
                             "addresses": {"ipv4": ["203.0.113.1/32"]}}]}
    fw = c.networking.firewall_create("jf-run-2", ssh_only, devices={"linodes": [inst.id]})
    wider = {**ssh_only, "inbound": [*ssh_only["inbound"], {
        "action": "ACCEPT", "protocol": "TCP", "ports": "8786-8789",
        "addresses": {"ipv4": ["198.51.100.2/32"]}}]}
    fw.update_rules(wider)
    now = c.get(f"/networking/firewalls/{fw.id}/rules")
    assert now["inbound"] == wider["inbound"] and now["version"] == 2
    assert fake_linode.backend.firewall_updates[-1][0] == inst.id
    assert fake_linode.backend.firewall_updates[-1][1]["inbound"] == wider["inbound"]
    with pytest.raises(ApiError) as bad:
        fw.update_rules({"inbound": [{"action": "ALLOW", "protocol": "TCP"}],
                         "inbound_policy": "DROP", "outbound_policy": "ACCEPT"})
    assert bad.value.status == 400 and "inbound[0]" in str(bad.value.json)
    assert c.get(f"/networking/firewalls/{fw.id}/rules")["version"] == 2  # unchanged


def test_the_real_catalogue_regions_and_region_prices(fake_linode) -> None:
    c = client(fake_linode)
    regions = {r.id: r for r in c.regions()}
    assert len(regions) == 34
    # Every region the test suite creates in is a real one that takes Linodes.
    for rid in ("us-east", "us-central", "us-west", "us-southeast", "eu-west", "eu-central",
                "ap-south", "ca-central", "br-gru", "id-cgk"):
        assert "Linodes" in regions[rid].capabilities, rid
    assert regions["eu-west"].label == "London, UK" and regions["br-gru"].country == "br"
    resolvers = ",".join(f"{r.resolvers.ipv4},{r.resolvers.ipv6}" for r in regions.values())
    assert {a.strip().split("::")[0].rsplit(".", 1)[0] for a in resolvers.split(",")} \
        == {"192.0.2", "2001:db8"}  # documentation addresses only
    t = c.load(Type, "g6-dedicated-48")
    assert t.price.hourly == 1.296
    assert {rp.id: rp.hourly for rp in t.region_prices} == {"id-cgk": 1.555, "br-gru": 1.814}


def test_an_instance_is_billed_at_its_regions_price(fake_linode) -> None:
    c = client(fake_linode)
    c.linode.instance_create("g6-dedicated-48", "br-gru", image="linode/debian12",
                             root_pass=PW, label="sao-paulo")
    c.linode.instance_create("g6-dedicated-48", "us-east", image="linode/debian12",
                             root_pass=PW, label="newark")
    hourly = {e.label: e.price_hourly_usd for e in fake_linode.ledger.entries()}
    assert hourly == {"sao-paulo": 1.814, "newark": 1.296}


def test_a_region_without_linodes_refuses_the_create(fake_linode, monkeypatch) -> None:
    from tests.fakelinode import catalog

    region = next(r for r in catalog.REGIONS if r["id"] == "us-west")
    monkeypatch.setitem(region, "capabilities",
                        [x for x in region["capabilities"] if x != "Linodes"])
    with pytest.raises(ApiError) as info:
        create(client(fake_linode), region="us-west")
    assert info.value.status == 400
    assert [e.get("field") for e in info.value.json["errors"]] == ["region"]
    assert "us-west" in info.value.json["errors"][0]["reason"]
    assert fake_linode.ledger.entries() == []


def test_instance_ips_has_ipv6_and_account_exists(fake_linode) -> None:
    c = client(fake_linode)
    inst = create(c)
    ips = inst.ips  # raised TypeError while the emulator answered "ipv6": null
    assert [a.address for a in ips.ipv4.public] == inst.ipv4
    assert ips.ipv6.slaac.address == inst.ipv6.split("/")[0]
    assert ips.ipv6.slaac.address.startswith("2001:db8:")
    assert ips.ipv6.link_local.address.startswith("fe80::")
    account = c.account()
    assert account.email.endswith("@example.com")
    assert account.balance_uninvoiced == round(fake_linode.ledger.total_usd(), 2) == 0.05


def test_instances_filter_on_ipv4(fake_linode) -> None:
    c = client(fake_linode)
    first, second = create(c, label="one"), create(c, label="two")
    r = requests.get(f"{fake_linode.url}/linode/instances", timeout=5,
                     headers={"Authorization": f"Bearer {fake_linode.master_token}",
                              "X-Filter": json.dumps({"ipv4": second.ipv4[0]})})
    assert r.status_code == 200
    assert [i["label"] for i in r.json()["data"]] == ["two"] and first.ipv4 != second.ipv4
