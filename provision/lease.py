"""The server-side lease: a watchdog that deletes its own instance when the lease ends, kept
alive by the launcher's heartbeat. Everything goes over the run's SSH identity; the lease token
travels on ssh's stdin only (never argv) and lives on the server in a 0600 root file."""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from provision import tokens
from provision.errors import ProvisionError
from provision.keys import RunKeys

WATCHDOG_DIR = "/usr/local/lib/juliafarm"
WATCHDOG = f"{WATCHDOG_DIR}/watchdog.py"
WATCHDOG_LOG = "/var/log/juliafarm-watchdog.log"
# The token outlives the lease deadline by at least this much, so the watchdog can retry.
RETRY_WINDOW_S = 600.0
SSH_FAILED = 255  # ssh's own exit status: connection or authentication failed


class LeaseError(ProvisionError):
    """The lease could not be installed or extended."""


def watchdog_source() -> str:
    return resources.files("provision").joinpath("data/watchdog.py").read_text("utf-8")


def heartbeat_interval_s(lease_s: float) -> float:
    """Often enough that a few missed beats never end a lease early."""
    return max(2.0, min(60.0, lease_s / 6))


@dataclass
class ServerShell:
    """Runs a command as root on the server: directly as root before bootstrap locks root out,
    through `sudo -n` as the run user after. Whoever answered last is tried first."""

    keys: RunKeys
    address: str
    users: list[str] = field(default_factory=lambda: ["root"])
    timeout_s: float = 60.0

    def prefer(self, user: str) -> None:
        self.users = [user, *[u for u in self.users if u != user]]

    def run(self, command: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        from provision.ssh import ssh_command

        done: subprocess.CompletedProcess[str] | None = None
        for user in list(self.users):
            remote = command if user == "root" else f"sudo -n {command}"
            argv = [*ssh_command(self.keys, user, self.address), remote]
            try:
                done = subprocess.run(argv, input=stdin or "", capture_output=True, text=True,
                                      timeout=self.timeout_s, check=False)
            except subprocess.TimeoutExpired:
                done = subprocess.CompletedProcess(argv, SSH_FAILED, "", "ssh timed out")
            if done.returncode != SSH_FAILED:
                self.prefer(user)
                return done
        assert done is not None
        return done


@dataclass
class Lease:
    """One run's lease: the token, the watchdog on the server, and the deadline."""

    cloud: Any
    run_id: str
    instance_id: int
    api_url: str          # the URL the *server* uses to reach the API
    lease_s: float
    shell: ServerShell
    token: tokens.LeaseToken | None = None
    deadline: datetime | None = None  # UTC, as last set (by this machine's clock)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def install(self) -> None:
        """Mint the token, ship the watchdog, write the lease file, start the loop (idempotent:
        a running loop is left alone)."""
        self.token = tokens.create_lease_token(self.cloud, self.run_id, self._token_valid_s())
        self._check(self.shell.run(
            f"install -d -m 0700 -o root -g root {WATCHDOG_DIR} && umask 077 && "
            f"cat > {WATCHDOG}.part && chmod 0700 {WATCHDOG}.part && mv {WATCHDOG}.part "
            f"{WATCHDOG}", stdin=watchdog_source()), "ship the watchdog")
        args = shlex.join([WATCHDOG, "install", f"{self.lease_s:.0f}", str(self.instance_id),
                           self.api_url])
        self._check(self.shell.run(f"python3 {args}", stdin=self.token.secret + "\n"),
                    "write the lease file")
        self.deadline = _now() + timedelta(seconds=self.lease_s)
        # A loop already running (a re-install) sees its pid file and the new one exits.
        self._check(self.shell.run(
            f"setsid -f python3 {WATCHDOG} run >> {WATCHDOG_LOG} 2>&1 < /dev/null"),
            "start the watchdog")

    def extend(self, at_most_s: float | None = None) -> datetime:
        """Heartbeat: deadline = now + lease length (or `at_most_s` if shorter), renewing the
        token first if it would expire too soon after that deadline (or if this process has
        none: attach)."""
        length = self.lease_s if at_most_s is None else max(60.0, min(self.lease_s, at_most_s))
        with self._lock:
            needed = _now() + timedelta(seconds=length + RETRY_WINDOW_S)
            if self.token is None or self.token.expiry < needed:
                self._renew_token()
            self._check(self.shell.run(f"python3 {WATCHDOG} extend {length:.0f}"),
                        "extend the lease")
            self.deadline = _now() + timedelta(seconds=length)
            return self.deadline

    def status(self) -> dict[str, Any]:
        done = self._check(self.shell.run(f"python3 {WATCHDOG} status"), "read the lease")
        return json.loads(done.stdout.strip().splitlines()[-1])

    def revoke(self) -> None:
        """End the lease's power: revoke the token (and any other minted for this run)."""
        with self._lock:
            if self.token is not None:
                tokens.revoke_token(self.cloud, self.token.id)
            tokens.revoke_run_tokens(self.cloud, self.run_id)

    def _renew_token(self) -> None:
        old = self.token
        new = tokens.create_lease_token(self.cloud, self.run_id, self._token_valid_s())
        self._check(self.shell.run(f"python3 {WATCHDOG} set-token", stdin=new.secret + "\n"),
                    "renew the lease token")
        self.token = new
        if old is not None:
            tokens.revoke_token(self.cloud, old.id)
        else:  # taking over a lease (attach): whatever this run minted before is obsolete
            tokens.revoke_run_tokens(self.cloud, self.run_id, keep=(new.id,))

    def _token_valid_s(self) -> float:
        # Renewed about once per lease length while the launcher is connected, not per beat.
        return 2 * self.lease_s + RETRY_WINDOW_S

    def _check(self, done: subprocess.CompletedProcess[str], what: str
               ) -> subprocess.CompletedProcess[str]:
        if done.returncode != 0:
            err = " ".join((done.stderr or done.stdout or "").split())[:200]
            raise LeaseError(f"lease: could not {what} (exit {done.returncode}): {err}")
        return done


class Heartbeat:
    """A daemon thread extending the lease every `interval_s` until stopped. Failures are
    reported through `on_problem` and retried; they never stop the run by themselves."""

    def __init__(self, lease: Lease, interval_s: float | None = None,
                 on_problem: Callable[[str], None] | None = None,
                 at_most_s: Callable[[], float | None] | None = None) -> None:
        self.lease = lease
        # Each beat extends by the lease length, or by what this returns if shorter (a cost cap:
        # the deadline never lies past the moment the cap's last billed hour ends).
        self.at_most_s = at_most_s or (lambda: None)
        self.interval_s = interval_s or heartbeat_interval_s(lease.lease_s)
        self.on_problem = on_problem or (lambda text: None)
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.lease.shell.timeout_s + 30)

    def _loop(self) -> None:
        failures = 0
        while not self._stop.wait(self.interval_s):
            try:
                self.lease.extend(self.at_most_s())
                self.beats += 1
                failures = 0
            except Exception as exc:  # noqa: BLE001 - reported; the next beat retries
                failures += 1
                if failures in (2, 10) or failures % 30 == 0:
                    self.on_problem(f"lease heartbeat failing ({failures}x): "
                                    f"{' '.join(str(exc).split())[:200]}")


DEADLINE_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def fmt_deadline(deadline: datetime) -> str:
    return deadline.astimezone(UTC).strftime(DEADLINE_FORMAT)


def parse_deadline(text: str) -> datetime:
    """fmt_deadline's text back to a UTC datetime (ValueError if it is not one)."""
    return datetime.strptime(text, DEADLINE_FORMAT).replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)
