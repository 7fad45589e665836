"""The seam between the emulated Linode API and whatever plays an instance's machine."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class HostSpec:
    instance_id: int
    label: str
    image: str                      # e.g. "linode/debian12", "linode/ubuntu24.04"
    ipv4: str                       # public address from 203.0.113.0/24 chosen by the API server
    private_ipv4: str | None        # from 198.51.100.0/24 when private_ip was requested, else None
    root_pass: str | None = field(repr=False)
    authorized_keys: tuple[str, ...]
    user_data: bytes | None = field(default=None, repr=False)  # decoded metadata.user_data
    ssh_never_up: bool = False      # fault: the machine boots but sshd never answers
    first_boot_commands: tuple[str, ...] = ()  # fault: run as root before sshd starts
    environment: dict[str, str] = field(default_factory=dict)  # e.g. {"api_url": ...}
    # The attached Cloud Firewall's rules (the API's `rules` object), or None: the host enforces it.
    firewall_rules: dict[str, Any] | None = None


class HostBackend(Protocol):
    def start(self, spec: HostSpec) -> None:
        """Bring the machine up (blocking, a few seconds at most); raise on failure."""

    def stop(self, instance_id: int) -> None:
        """Power off and remove everything of that machine; idempotent."""

    def close(self) -> None:
        """Stop every machine still up (called at emulator shutdown)."""

    def set_firewall(self, instance_id: int, rules: dict[str, Any]) -> None:
        """The attached Cloud Firewall's rules changed: enforce these from now on."""


class NullHostBackend:
    """No machines at all: for API-only tests. Records what it was asked."""

    def __init__(self) -> None:
        self.started: list[HostSpec] = []
        self.stopped: list[int] = []
        self.running: set[int] = set()
        self.firewall_updates: list[tuple[int, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def start(self, spec: HostSpec) -> None:
        with self._lock:
            self.started.append(spec)
            self.running.add(spec.instance_id)

    def stop(self, instance_id: int) -> None:
        with self._lock:
            self.stopped.append(instance_id)
            self.running.discard(instance_id)

    def close(self) -> None:
        with self._lock:
            self.running.clear()

    def set_firewall(self, instance_id: int, rules: dict[str, Any]) -> None:
        with self._lock:
            self.firewall_updates.append((instance_id, rules))
