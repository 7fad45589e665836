"""`instance()` deletes whatever happens, including a half-made instance; no secret in reprs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from provision.cloud import InstanceInfo, InstanceRequest, LinodeCloud, instance
from provision.errors import CloudError

PASSWORD = "Very-Secret-Root-Pass-42!"
REQ = InstanceRequest("juliafarm-r1", "g6-dedicated-2", "us-east", "linode/debian12", PASSWORD,
                      ("ssh-ed25519 AAAA test",), ("juliafarm", "juliafarm-run-r1"))


class MemoryCloud:
    """Just enough of the Cloud protocol, in memory."""

    def __init__(self, fail_create_after_making: bool = False) -> None:
        self.instances: dict[int, InstanceInfo] = {}
        self.deleted: list[int] = []
        self.fail_create_after_making = fail_create_after_making

    def create_with_failover(self, req: InstanceRequest, regions: Sequence[str]) -> InstanceInfo:
        info = InstanceInfo(len(self.instances) + 1, req.label, "running", "203.0.113.7", None,
                            req.type_id, regions[0], req.image, datetime.now(UTC), req.tags)
        self.instances[info.id] = info
        if self.fail_create_after_making:
            raise CloudError("create: connection reset (the instance exists anyway)")
        return info

    def list_by_tag(self, tag: str) -> list[InstanceInfo]:
        return [i for i in self.instances.values() if tag in i.tags]

    def delete(self, instance_id: int) -> None:
        self.instances.pop(instance_id)
        self.deleted.append(instance_id)


def test_deleted_after_normal_exit() -> None:
    cloud = MemoryCloud()
    with instance(cloud, REQ, ["us-west"]) as info:  # type: ignore[arg-type]
        assert info.region == "us-west" and cloud.instances
    assert cloud.instances == {} and cloud.deleted == [info.id]


def test_deleted_after_an_exception_which_still_propagates() -> None:
    cloud = MemoryCloud()
    with pytest.raises(KeyboardInterrupt), instance(cloud, REQ) as info:  # type: ignore[arg-type]
        raise KeyboardInterrupt
    assert cloud.deleted == [info.id]


def test_half_created_instance_is_found_by_label_and_deleted() -> None:
    cloud = MemoryCloud()
    other = replace(REQ, label="juliafarm-other")
    cloud.create_with_failover(other, ["us-east"])  # another run's instance: must survive
    cloud.fail_create_after_making = True
    with pytest.raises(CloudError), instance(cloud, REQ):  # type: ignore[arg-type]
        pass
    assert [i.label for i in cloud.instances.values()] == ["juliafarm-other"]


def test_secrets_stay_out_of_reprs() -> None:
    assert PASSWORD not in repr(REQ) and PASSWORD not in str(REQ)
    cloud = LinodeCloud("tok-123456789-secret", "http://127.0.0.1:9/v4")
    assert "tok-123456789-secret" not in repr(cloud)
