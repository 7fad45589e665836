"""No secret in a repr: the root password of a request, the token of a cloud."""

from __future__ import annotations

from provision.cloud import InstanceRequest, LinodeCloud

PASSWORD = "Very-Secret-Root-Pass-42!"
REQ = InstanceRequest("juliafarm-r1", "g6-dedicated-2", "us-east", "linode/debian12", PASSWORD,
                      ("ssh-ed25519 AAAA test",), ("juliafarm", "juliafarm-run-r1"))


def test_secrets_stay_out_of_reprs() -> None:
    assert PASSWORD not in repr(REQ) and PASSWORD not in str(REQ)
    cloud = LinodeCloud("tok-123456789-secret", "http://127.0.0.1:9/v4")
    assert "tok-123456789-secret" not in repr(cloud)
