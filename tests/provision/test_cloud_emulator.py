"""LinodeCloud against the local Linode cloud (the emulator), asserting on its billing ledger."""

from __future__ import annotations

import pytest

from provision.cloud import InstanceRequest, LinodeCloud
from provision.errors import CapacityError, CloudError, TokenError
from provision.retry import RetryPolicy

FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05, total_sleep_s=1.0)


def _cloud(fake, token=None) -> LinodeCloud:
    return LinodeCloud(token or fake.master_token, fake.url, policy=FAST, poll_interval_s=0.05,
                       delete_timeout_s=10)


def _req(label="juliafarm-t1", region="us-east") -> InstanceRequest:
    return InstanceRequest(label=label, type_id="g6-dedicated-2", region=region,
                           image="linode/debian12", root_pass="Str0ng-Passw0rd-xyz",
                           authorized_keys=(), tags=("juliafarm", f"juliafarm-run-{label}"))


def test_lost_create_response_is_adopted_never_duplicated(fake_linode) -> None:
    fake_linode.faults.server_error("POST", "linode/instances", status=502, after_effect=True)
    cloud = _cloud(fake_linode)
    info = cloud.create(_req())
    assert [e.instance_id for e in fake_linode.ledger.entries()] == [info.id]
    posts = [r for r in fake_linode.requests if r == ("POST", "linode/instances")]
    assert len(posts) == 1  # the retry looked the label up instead of creating again
    cloud.delete(info.id)
    assert fake_linode.ledger.running() == []


def test_rate_limit_is_retried(fake_linode) -> None:
    fake_linode.faults.rate_limit("POST", "linode/instances", count=2, retry_after_s=0)
    info = _cloud(fake_linode).create(_req())
    assert len(fake_linode.ledger.entries()) == 1 and info.status == "provisioning"


def test_capacity_fails_over_to_the_next_region(fake_linode) -> None:
    fake_linode.faults.no_capacity("us-east", "us-central")
    cloud = _cloud(fake_linode)
    info = cloud.create_with_failover(_req(), ["us-east", "us-central", "eu-west"])
    assert info.region == "eu-west"
    fake_linode.faults.no_capacity("eu-west")
    with pytest.raises(CapacityError, match="us-east, us-central, eu-west"):
        cloud.create_with_failover(_req("juliafarm-t2"), ["us-east", "us-central", "eu-west"])
    assert len(fake_linode.ledger.entries()) == 1


def test_wait_running_delete_confirmed_and_list_by_tag(fake_linode) -> None:
    cloud = _cloud(fake_linode)
    info = cloud.create(_req())
    assert cloud.wait_running(info.id, timeout_s=10).status == "running"
    assert [i.id for i in cloud.list_by_tag("juliafarm-run-juliafarm-t1")] == [info.id]
    cloud.delete(info.id)
    assert cloud.get(info.id) is None and fake_linode.ledger.running() == []
    cloud.delete(info.id)  # deleting what is gone is fine


def test_instance_deleted_outside_is_reported_while_booting(fake_linode) -> None:
    fake_linode.provision_delay_s = 1.0
    cloud = _cloud(fake_linode)
    info = cloud.create(_req())
    fake_linode.disappear(info.id)
    with pytest.raises(CloudError, match="disappeared"):
        cloud.wait_running(info.id, timeout_s=5)


def test_bad_token_is_one_line_without_the_token(fake_linode) -> None:
    secret = "0123456789abcdef-not-a-real-token"
    with pytest.raises(TokenError) as info:
        _cloud(fake_linode, secret).check_access()
    assert secret not in str(info.value) and "\n" not in str(info.value)


def test_token_without_linode_scope_is_refused(fake_linode) -> None:
    scoped = fake_linode.mint_token("events:read_only")
    with pytest.raises(TokenError):
        _cloud(fake_linode, scoped).check_access()
