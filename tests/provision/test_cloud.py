"""LinodeCloud through the real linode_api4 client over HTTP: failover, retries, leak-proof
create, confirmed delete, tags, token checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provision.cloud import InstanceRequest, LinodeCloud
from provision.errors import CapacityError, CloudError, TokenError
from provision.plans import plans_from_api, resolve_plan

from .linode_stub import TOKEN, Stub, serve

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtuMSDRFFEjvcBJxLi2N4QGHe3Eb0mEEiHbFQ94Ki0m run"
ROOT_PASS = "Root-Pass-Never-Shown-123"


def _req(run: str = "r1") -> InstanceRequest:
    return InstanceRequest(f"juliafarm-{run}", "g6-dedicated-2", "us-east", "linode/debian12",
                           ROOT_PASS, (KEY,), ("juliafarm", f"juliafarm-run-{run}"))


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    server = serve(s)
    try:
        yield s
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def slept() -> list[float]:
    return []


@pytest.fixture
def cloud(stub: Stub, slept: list[float]) -> LinodeCloud:
    return LinodeCloud(TOKEN, stub.url, sleep=slept.append, poll_interval_s=0.01,
                       delete_timeout_s=5)


def test_create_then_delete_confirmed(cloud: LinodeCloud, stub: Stub) -> None:
    info = cloud.create(_req())
    assert info.label == "juliafarm-r1" and info.ipv4 == "203.0.113.10"
    assert info.private_ipv4 == "192.168.1.5" and info.created.tzinfo is not None
    assert cloud.wait_running(info.id, timeout_s=5).status == "running"
    cloud.delete(info.id)
    assert cloud.get(info.id) is None and stub.instances == {}
    cloud.delete(info.id)  # deleting what is already gone is fine


def test_capacity_fails_over_to_the_next_region(cloud: LinodeCloud, stub: Stub) -> None:
    stub.faults = [("POST", "capacity")]
    info = cloud.create_with_failover(_req(), ["us-east", "us-west"])
    assert info.region == "us-west" and len(stub.created) == 1


def test_no_capacity_anywhere(cloud: LinodeCloud, stub: Stub) -> None:
    stub.faults = [("POST", "capacity")] * 2
    with pytest.raises(CapacityError, match="us-east, us-west"):
        cloud.create_with_failover(_req(), ["us-east", "us-west"])
    assert stub.created == []


def test_429_then_success_waits_as_told(cloud: LinodeCloud, stub: Stub,
                                        slept: list[float]) -> None:
    stub.faults = [("POST", "429"), ("POST", "429")]
    info = cloud.create(_req())
    assert slept == [3.0, 3.0] and stub.created == [info.id]


def test_ambiguous_500_adopts_the_instance_it_made(cloud: LinodeCloud, stub: Stub) -> None:
    stub.faults = [("POST", "500-after-create")]
    info = cloud.create(_req())
    assert stub.created == [info.id] and list(stub.instances) == [info.id]
    posts = [r for r in stub.requests if r.startswith("POST")]
    assert len(posts) == 1  # looked up by label instead of posting again


def test_only_one_post_after_failed_lookups_too(cloud: LinodeCloud, stub: Stub) -> None:
    # 500 after creating, then the label lookup itself hits a 503 once: still one instance.
    stub.faults = [("POST", "500-after-create"), ("GET", "503")]
    info = cloud.create(_req())
    assert stub.created == [info.id]


def test_persistent_server_errors_give_a_clear_error(cloud: LinodeCloud, stub: Stub) -> None:
    stub.faults = [("POST", "503")] * 10
    with pytest.raises(CloudError, match="create juliafarm-r1 failed after 6 attempts"):
        cloud.create(_req())
    assert stub.created == []


def test_list_by_tag(cloud: LinodeCloud, stub: Stub) -> None:
    a = cloud.create(_req("a"))
    cloud.create(_req("b"))
    assert {i.label for i in cloud.list_by_tag("juliafarm")} == {"juliafarm-a", "juliafarm-b"}
    assert [i.id for i in cloud.list_by_tag("juliafarm-run-a")] == [a.id]
    assert cloud.list_by_tag("nothing") == []


def test_delete_retries_429(cloud: LinodeCloud, stub: Stub, slept: list[float]) -> None:
    info = cloud.create(_req())
    stub.faults = [("DELETE", "429"), ("DELETE", "503")]
    cloud.delete(info.id)
    assert stub.instances == {} and slept[0] == 3.0


def test_check_access(cloud: LinodeCloud, stub: Stub) -> None:
    cloud.check_access()
    bad = LinodeCloud("wrong-token-abcdef", stub.url)
    with pytest.raises(TokenError) as info:
        bad.check_access()
    assert "wrong-token-abcdef" not in str(info.value) and TOKEN not in str(info.value)
    assert "\n" not in str(info.value)


def test_no_secret_in_any_error(cloud: LinodeCloud, stub: Stub) -> None:
    stub.faults = [("POST", "503")] * 10
    with pytest.raises(CloudError) as info:
        cloud.create(_req())
    assert ROOT_PASS not in str(info.value) and TOKEN not in str(info.value)


def test_plans_from_api_uses_the_types_endpoint(monkeypatch: pytest.MonkeyPatch,
                                                cloud: LinodeCloud) -> None:
    import json
    from pathlib import Path

    page = json.loads((Path(__file__).parents[2] / "provision/data/linode-types.json")
                      .read_text())
    monkeypatch.setattr(cloud, "types", lambda: page["data"])
    plan = resolve_plan("dedicated-4", plans_from_api(cloud))
    assert plan.source == "api" and plan.type_id == "g6-dedicated-4"


def test_public_and_private_addresses_are_told_apart() -> None:
    from provision.cloud import _info

    linode = _info({"id": 1, "ipv4": ["192.168.130.7", "172.105.1.2"]})
    assert (linode.ipv4, linode.private_ipv4) == ("172.105.1.2", "192.168.130.7")
    emulated = _info({"id": 2, "ipv4": ["203.0.113.5", "198.51.100.5"]})
    assert (emulated.ipv4, emulated.private_ipv4) == ("203.0.113.5", "198.51.100.5")
    alone = _info({"id": 3, "ipv4": ["203.0.113.6"]})
    assert (alone.ipv4, alone.private_ipv4) == ("203.0.113.6", None)
