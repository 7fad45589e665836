"""Scriptable faults for the emulator: rate limits, server errors, capacity, boots, SSH, loss."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field


@dataclass
class ErrorRule:
    method: str           # "GET", "POST", ... or "*"
    path: re.Pattern[str]  # matched against the path after /v4
    status: int
    remaining: int
    retry_after_s: int = 1
    after_effect: bool = False  # apply the request, then answer the error (ambiguous failure)


@dataclass
class Faults:
    """Every method is safe to call from a test while the server runs."""

    rules: list[ErrorRule] = field(default_factory=list)
    no_capacity_regions: set[str] = field(default_factory=set)
    boot_delay_s: float | None = None
    ssh_never_up_next: int = 0
    fail_boot_next: int = 0
    first_boot_commands: list[str] = field(default_factory=list)
    ignore_user_data_next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def rate_limit(self, method: str = "*", path: str = ".*", count: int = 1,
                   retry_after_s: int = 1) -> None:
        """The next `count` matching requests get 429 with the headers the real API sends."""
        self._add(ErrorRule(method, re.compile(path), 429, count, retry_after_s))

    def server_error(self, method: str = "*", path: str = ".*", count: int = 1,
                     status: int = 500, after_effect: bool = False) -> None:
        """The next `count` matching requests get a 5xx; with after_effect the request still
        takes effect first (a create whose response is lost)."""
        self._add(ErrorRule(method, re.compile(path), status, count, after_effect=after_effect))

    def no_capacity(self, *regions: str) -> None:
        with self._lock:
            self.no_capacity_regions.update(regions)

    def slow_boot(self, seconds: float) -> None:
        with self._lock:
            self.boot_delay_s = seconds

    def ssh_never_up(self, count: int = 1) -> None:
        with self._lock:
            self.ssh_never_up_next += count

    def at_first_boot(self, command: str) -> None:
        """The next instance's image runs `command` (a shell line, as root) before sshd starts:
        a machine that differs from the stock image, e.g. with a package missing."""
        with self._lock:
            self.first_boot_commands.append(command)

    def take_first_boot_commands(self) -> tuple[str, ...]:
        with self._lock:
            taken, self.first_boot_commands = tuple(self.first_boot_commands), []
            return taken

    def ignore_user_data(self, count: int = 1) -> None:
        """The next `count` hosts boot as if cloud-init never ran: the API accepts user_data,
        but the machine makes its own host key (what a man in the middle would present too)."""
        with self._lock:
            self.ignore_user_data_next += count

    def take_ignore_user_data(self) -> bool:
        with self._lock:
            if self.ignore_user_data_next > 0:
                self.ignore_user_data_next -= 1
                return True
            return False

    def _add(self, rule: ErrorRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def take(self, method: str, path: str) -> ErrorRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.remaining > 0 and rule.method in ("*", method) and \
                        rule.path.fullmatch(path):
                    rule.remaining -= 1
                    return rule
        return None

    def take_ssh_never_up(self) -> bool:
        with self._lock:
            if self.ssh_never_up_next > 0:
                self.ssh_never_up_next -= 1
                return True
            return False
