"""Error messages a user sees: one line, a way out, never a secret."""

from __future__ import annotations

from provision.errors import DeleteError, ProvisionError


def test_delete_error_names_the_instance_and_the_manual_command() -> None:
    err = DeleteError(4242, "HTTP 500 three times")
    msg = str(err)
    assert isinstance(err, ProvisionError) and err.instance_id == 4242
    assert "linode-cli linodes delete 4242" in msg
    assert "$LINODE_TOKEN" in msg and "\n" not in msg


def test_delete_error_for_another_endpoint_uses_its_url() -> None:
    msg = str(DeleteError(7, "gone wrong", "http://127.0.0.1:9999/v4/"))
    assert "curl -X DELETE" in msg and "http://127.0.0.1:9999/v4/linode/instances/7" in msg
    assert "linode-cli" not in msg
