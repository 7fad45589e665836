"""The provision exception hierarchy; every message is one line written for the user."""

from __future__ import annotations

DEFAULT_API_URL = "https://api.linode.com/v4"


class ProvisionError(Exception):
    """Base: a cloud, SSH, bootstrap or sync failure the CLI shows as one line."""


class TokenError(ProvisionError):
    """No usable API token, or the token lacks a needed permission. Never contains the token."""


class PlanError(ProvisionError):
    """An unknown plan alias or type id; the message lists the valid ones."""

    exit_code = 2  # bad input, like a bad flag: nothing was created


class CapacityError(ProvisionError):
    """No region in the list could take the instance."""


class CloudError(ProvisionError):
    """The API failed (after retries) or answered something unexpected.

    `ambiguous`: the request may have taken effect anyway (a 5xx, a timeout, a lost connection);
    False only when the API answered a clear refusal (4xx)."""

    def __init__(self, message: str, *, ambiguous: bool = True) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class DeleteError(ProvisionError):
    """An instance could not be deleted (or its deletion not confirmed): it may still cost money."""

    def __init__(self, instance_id: int, message: str, base_url: str = DEFAULT_API_URL) -> None:
        self.instance_id = instance_id
        self.base_url = base_url.rstrip("/")
        super().__init__(
            f"instance {instance_id} may still exist and cost money: {message}. Delete it by hand: "
            f"{manual_delete_command(instance_id, self.base_url)}"
        )


class SshError(ProvisionError):
    """SSH never became ready, or the host key did not match the pinned one."""


class BootstrapError(ProvisionError):
    """A bootstrap step failed on the server."""


class SyncError(ProvisionError):
    """rsync failed or a pulled file did not match the server's copy."""


def manual_delete_command(instance_id: int, base_url: str = DEFAULT_API_URL) -> str:
    """The command a user runs to delete an instance; refers to $LINODE_TOKEN, never its value."""
    base = base_url.rstrip("/")
    if base == DEFAULT_API_URL:
        return (f"linode-cli linodes delete {instance_id}  (or: curl -X DELETE -H "
                f"\"Authorization: Bearer $LINODE_TOKEN\" {base}/linode/instances/{instance_id})")
    return (f"curl -X DELETE -H \"Authorization: Bearer $LINODE_TOKEN\" "
            f"{base}/linode/instances/{instance_id}")
