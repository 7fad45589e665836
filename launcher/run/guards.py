"""A run's defence in depth: its cloud firewall, its host key sent ahead through user_data, and
the lease whose watchdog deletes the instance if the launcher never comes back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from launcher.run.record import RunRecord
from provision.cloud import InstanceRequest
from provision.errors import DEFAULT_API_URL, ProvisionError


@dataclass(frozen=True)
class GuardSpec:
    """What to guard a run with; the defaults guard nothing (unit tests, old callers)."""

    lease_s: float | None = None             # lease length; None: no watchdog
    server_api_url: str = DEFAULT_API_URL    # how the server reaches the API
    ssh_from: tuple[str, ...] | None = None  # cloud firewall sources; None: no cloud firewall
    host_key_user_data: bool = False         # image and regions take cloud-init user_data


class RunGuards:
    """One node's guards, called by the lifecycle at fixed points: prepare →
    before_first_contact → start_lease → run_user_ready → (detach | finish)."""

    def __init__(self, spec: GuardSpec, cloud: Any, run_id: str, record: RunRecord,
                 message: Callable[[str], None]) -> None:
        self.spec = spec
        self.cloud = cloud
        self.run_id = run_id
        self.record = record
        self.message = message
        self.lease: Any = None       # provision.lease.Lease
        self.heartbeat: Any = None   # provision.lease.Heartbeat
        self._host_key: Any = None   # provision.hostkey.HostKey

    # ------------------------------------------------------------ before the instance

    def prepare(self, request: InstanceRequest) -> InstanceRequest:
        """Make the host key; the request carries it (the run's firewall is `RunFirewall`)."""
        from provision import hostkey

        if self.spec.host_key_user_data:
            self._host_key = hostkey.generate()
            request = replace(request, user_data_b64=self._host_key.user_data_b64)
            self.record.host_key_source = hostkey.USER_DATA
        else:
            self.record.host_key_source = hostkey.FIRST_USE
        return request

    def before_first_contact(self, address: str, keys: Any) -> None:
        """Pin the key we made, so the first connection is verified (strict from the start)."""
        from provision.keys import PREINSTALLED

        if self._host_key is not None:
            keys.pin(address, self._host_key.key_type, self._host_key.key_b64)
            self.record.host_key = PREINSTALLED

    # ------------------------------------------------------------ the lease

    def start_lease(self, instance_id: int, address: str, keys: Any, user: str,
                    resume: bool = False,
                    at_most_s: Callable[[], float | None] | None = None) -> None:
        """Install the watchdog (or, on attach, take over the one running) and start beating."""
        if self.spec.lease_s is None:
            return
        from provision.lease import Heartbeat, Lease, ServerShell, fmt_deadline

        users = [user] if resume else ["root", user]
        shell = ServerShell(keys, address, users)
        cap = at_most_s() if at_most_s is not None else None
        length = self.spec.lease_s if cap is None else max(60.0, min(self.spec.lease_s, cap))
        self.lease = Lease(self.cloud, self.run_id, instance_id, self.spec.server_api_url,
                           length, shell)
        if resume:
            self.lease.extend(cap)  # mints a fresh token: this process never saw the old one
        else:
            self.lease.install()
        self.record.lease = {"lease_s": self.spec.lease_s,
                             "server_api_url": self.spec.server_api_url,
                             "deadline": fmt_deadline(self.lease.deadline),
                             "token_revoked": False}
        self.heartbeat = Heartbeat(self.lease, on_problem=self.message,
                                   at_most_s=at_most_s).start()
        self.message(f"lease: the server deletes itself at {fmt_deadline(self.lease.deadline)} "
                     f"unless this launcher keeps extending it (every "
                     f"{self.heartbeat.interval_s:.0f}s)")

    def run_user_ready(self, user: str) -> None:
        """Bootstrap locked root out: reach the lease through sudo as the run user."""
        if self.lease is not None:
            self.lease.shell.prefer(user)

    def stop_heartbeat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
            self.heartbeat = None

    def detach(self, at_most_s: float | None = None) -> datetime | None:
        """Last beat (a full lease from now, or `at_most_s` if shorter: what --max-cost still
        allows), then silence: the deadline the user must beat."""
        from provision.lease import fmt_deadline

        self.stop_heartbeat()
        if self.lease is None:
            return None
        deadline = self.lease.extend(at_most_s)
        if self.record.lease is not None:
            self.record.lease["deadline"] = fmt_deadline(deadline)
        return deadline

    # ------------------------------------------------------------ the end

    def finish(self, deleted: bool) -> None:
        """After the delete: revoke the lease token. If the instance may still exist, keep it:
        the watchdog is then the last line of defence."""
        self.stop_heartbeat()
        if not deleted:
            if self.spec.lease_s is not None:
                self.message("the instance may still exist: its watchdog keeps its token and "
                             "deletes it when the lease ends")
            return
        from provision import tokens

        if self.spec.lease_s is None:
            return
        try:
            if self.lease is not None:
                self.lease.revoke()
            else:
                tokens.revoke_run_tokens(self.cloud, self.run_id)
            if self.record.lease is not None:
                self.record.lease["token_revoked"] = True
        except ProvisionError as exc:
            text = f"lease token not revoked (it expires by itself): {exc}"
            self.record.lost.append(text)
            self.message(text)


class RunFirewall:
    """The run's one Cloud Firewall: made before any instance and attached to each at creation
    (SSH from `ssh_from` only), widened for the Dask ports once the nodes' private addresses are
    known, deleted only after every delete is confirmed (until then it guards them)."""

    def __init__(self, cloud: Any, run_id: str, record: RunRecord,
                 message: Callable[[str], None]) -> None:
        self.cloud = cloud
        self.run_id = run_id
        self.record = record
        self.message = message

    def create(self, ssh_from: tuple[str, ...] | None) -> int | None:
        from provision import firewall

        if ssh_from is None:
            return None
        fid = firewall.create_run_firewall(self.cloud, self.run_id, ssh_from)
        self.record.firewall_id = fid
        self.record.ssh_from = list(ssh_from)
        self.message(f"cloud firewall {fid}: inbound SSH only from {', '.join(ssh_from)}")
        return fid

    def open_between(self, peers: list[str], ports: str) -> None:
        """The Dask ports, from exactly the run's nodes' private addresses (one request)."""
        from provision import firewall

        fid, cidrs = self.record.firewall_id, self.record.ssh_from
        assert fid is not None and cidrs is not None
        firewall.update_rules(self.cloud, fid, firewall.cluster_rules(cidrs, peers, ports))
        self.message(f"cloud firewall {fid}: Dask ports {ports} open between "
                     f"{', '.join(peers)} only")

    def delete(self) -> None:
        from provision import firewall

        fid = self.record.firewall_id
        if fid is None or self.record.firewall_deleted:
            return
        try:
            firewall.delete_firewall(self.cloud, fid)
            self.record.firewall_deleted = True
        except ProvisionError as exc:
            text = f"cloud firewall {fid} not deleted (`launcher cleanup` removes it): {exc}"
            self.record.lost.append(text)
            self.message(text)
