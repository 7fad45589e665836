"""Lease tokens: short-lived personal access tokens scoped to linodes:read_write, and revocation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from provision.cloud import Cloud

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


def create_lease_token(cloud: Cloud, run_id: str, valid_s: float) -> LeaseToken:
    """A token scoped to linodes:read_write, expiring `valid_s` from now."""
    # Whole seconds, rounded up so it never falls short.
    expiry = (datetime.now(UTC) + timedelta(seconds=valid_s + 1)).replace(microsecond=0)
    label = lease_label(run_id)
    token_id, secret = cloud.create_token(label, LEASE_SCOPES, expiry)
    return LeaseToken(token_id, label, expiry, secret)


def revoke_token(cloud: Cloud, token_id: int) -> None:
    """A token that is already gone counts as revoked."""
    cloud.delete_token(token_id)


def revoke_run_tokens(cloud: Cloud, run_id: str | None = None,
                      keep: tuple[int, ...] = ()) -> list[int]:
    """Revoke every lease token of a run (or of every run): what a killed launcher left."""
    want = lease_label(run_id) if run_id else None
    revoked = []
    for t in cloud.tokens():
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
