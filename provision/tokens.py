"""Lease tokens: short-lived personal access tokens scoped to linodes:read_write, and revocation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from linode_api4 import ApiError

from provision.errors import CloudError

LEASE_SCOPES = "linodes:read_write"
LABEL_PREFIX = "juliafarm-lease-"


@dataclass(frozen=True)
class LeaseToken:
    """A token minted for one run's watchdog. The secret never appears in repr, logs or records."""

    id: int
    label: str
    expiry: datetime  # UTC
    secret: str = field(repr=False)


def lease_label(run_id: str) -> str:
    return f"{LABEL_PREFIX}{run_id}"


def create_lease_token(cloud: Any, run_id: str, valid_s: float) -> LeaseToken:
    """POST /profile/tokens: scope linodes:read_write, expiring `valid_s` from now."""
    # Whole seconds, UTC, no zone (the API's time format); rounded up so it never falls short.
    expiry = (datetime.now(UTC) + timedelta(seconds=valid_s + 1)).replace(microsecond=0)
    label = lease_label(run_id)

    def create() -> Any:
        return cloud.client.profile.token_create(
            label=label, scopes=LEASE_SCOPES, expiry=expiry.replace(tzinfo=None))

    made = cloud.call(create, "create the lease token")
    secret = getattr(made, "_raw_json", {}).get("token") or ""
    if not secret:
        raise CloudError("create the lease token: the API returned no token")
    return LeaseToken(int(made.id), label, expiry, secret)


def revoke_token(cloud: Any, token_id: int) -> None:
    """DELETE /profile/tokens/{id}; a token that is already gone counts as revoked."""
    def revoke() -> None:
        try:
            cloud.client.delete(f"/profile/tokens/{int(token_id)}")
        except ApiError as exc:
            if exc.status != 404:
                raise

    cloud.call(revoke, f"revoke lease token {token_id}")


def revoke_run_tokens(cloud: Any, run_id: str | None = None,
                      keep: tuple[int, ...] = ()) -> list[int]:
    """Revoke every lease token of a run (or of every run): what a killed launcher left."""
    from provision.cloud import fetch_all

    want = lease_label(run_id) if run_id else None
    tokens = cloud.call(lambda: fetch_all(cloud.client, "/profile/tokens"), "list API tokens")
    revoked = []
    for t in tokens:
        label = str(t.get("label") or "")
        if int(t["id"]) in keep:
            continue
        if (label == want) if want else label.startswith(LABEL_PREFIX):
            revoke_token(cloud, int(t["id"]))
            revoked.append(int(t["id"]))
    return revoked


def missing_scopes(granted_header: str, *, tokens: bool, firewall: bool) -> list[str]:
    """What the launcher's token lacks for a lease (minting tokens) and a cloud firewall."""
    granted = set(granted_header.replace(",", " ").split()) or {"*"}
    if "*" in granted:
        return []
    missing = []
    if tokens and "account:read_write" not in granted:
        missing.append("account:read_write (to create the lease token; or use a '*' token)")
    if firewall and "firewall:read_write" not in granted:
        missing.append("firewall:read_write (or pass --no-cloud-firewall)")
    return missing
