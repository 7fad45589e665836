"""A run's defence in depth: its cloud firewall, its host key sent ahead through user_data, and
the lease whose watchdog deletes the instance if the launcher never comes back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from launcher.record import RunRecord
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
    """Called by the Job at fixed points: prepare → before_first_contact → start_lease →
    run_user_ready → (detach | finish)."""

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
        """Make the firewall and the host key; the request carries both."""
        from provision import firewall, hostkey

        if self.spec.ssh_from is not None:
            fid = firewall.create_run_firewall(self.cloud, self.run_id, self.spec.ssh_from)
            self.record.firewall_id = fid
            self.record.ssh_from = list(self.spec.ssh_from)
            request = replace(request, firewall_id=fid)
            self.message(f"cloud firewall {fid}: inbound SSH only from "
                         f"{', '.join(self.spec.ssh_from)}")
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
                    resume: bool = False) -> None:
        """Install the watchdog (or, on attach, take over the one running) and start beating."""
        if self.spec.lease_s is None:
            return
        from provision.lease import Heartbeat, Lease, ServerShell, fmt_deadline

        users = [user] if resume else ["root", user]
        shell = ServerShell(keys, address, users)
        self.lease = Lease(self.cloud, self.run_id, instance_id, self.spec.server_api_url,
                           self.spec.lease_s, shell)
        if resume:
            self.lease.extend()  # mints a fresh token: this process never saw the old one
        else:
            self.lease.install()
        self.record.lease = {"lease_s": self.spec.lease_s,
                             "server_api_url": self.spec.server_api_url,
                             "deadline": fmt_deadline(self.lease.deadline),
                             "token_revoked": False}
        self.heartbeat = Heartbeat(self.lease, on_problem=self.message).start()
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

    def detach(self) -> datetime | None:
        """Last beat (a full lease from now), then silence: the deadline the user must beat."""
        from provision.lease import fmt_deadline

        self.stop_heartbeat()
        if self.lease is None:
            return None
        deadline = self.lease.extend()
        if self.record.lease is not None:
            self.record.lease["deadline"] = fmt_deadline(deadline)
        return deadline

    # ------------------------------------------------------------ the end

    def finish(self, deleted: bool) -> None:
        """After the delete: revoke the lease token and delete the firewall. If the instance
        may still exist, keep both: the watchdog is then the last line of defence."""
        self.stop_heartbeat()
        if not deleted:
            if self.spec.lease_s is not None:
                self.message("the instance may still exist: its watchdog keeps its token and "
                             "deletes it when the lease ends")
            return
        from provision import firewall, tokens

        problems = []
        if self.spec.lease_s is not None:
            try:
                if self.lease is not None:
                    self.lease.revoke()
                else:
                    tokens.revoke_run_tokens(self.cloud, self.run_id)
                if self.record.lease is not None:
                    self.record.lease["token_revoked"] = True
            except ProvisionError as exc:
                problems.append(f"lease token not revoked (it expires by itself): {exc}")
        if self.record.firewall_id is not None:
            try:
                firewall.delete_firewall(self.cloud, self.record.firewall_id)
                self.record.firewall_deleted = True
            except ProvisionError as exc:
                problems.append(f"cloud firewall {self.record.firewall_id} not deleted "
                                f"(`launcher cleanup` removes it): {exc}")
        for text in problems:
            self.record.lost.append(text)
            self.message(text)
