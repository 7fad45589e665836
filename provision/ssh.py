"""SSH with the run's identity only: readiness wait with host-key pinning, Fabric, ssh argv."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from typing import Any

from provision.errors import SshError
from provision.keys import RunKeys
from provision.wait import wait_until

CONNECT_TIMEOUT_S = 10
_MISMATCH = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed",
             "host key for", "Offending")


def ssh_options(keys: RunKeys, port: int = 22, strict: str = "yes") -> list[str]:
    """Options shared by every ssh we start: this key only, this known_hosts only, no agent,
    no password, no user ssh config."""
    return [
        "-F", "/dev/null",
        "-i", str(keys.private_path),
        "-p", str(port),
        "-o", "IdentitiesOnly=yes",
        "-o", "IdentityAgent=none",
        "-o", "ForwardAgent=no",
        "-o", "BatchMode=yes",
        "-o", "PasswordAuthentication=no",
        "-o", "KbdInteractiveAuthentication=no",
        "-o", f"UserKnownHostsFile={keys.known_hosts_path}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", f"StrictHostKeyChecking={strict}",
        "-o", "UpdateHostKeys=no",
        "-o", "HashKnownHosts=no",
        "-o", f"ConnectTimeout={CONNECT_TIMEOUT_S}",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=4",
        "-o", "LogLevel=ERROR",
    ]


def ssh_command(keys: RunKeys, user: str, host: str, port: int = 22) -> list[str]:
    """The ssh argv up to the destination; append a remote command (one quoted string)."""
    return ["ssh", *ssh_options(keys, port), "-l", user, host]


def rsync_rsh(keys: RunKeys, port: int = 22) -> str:
    """The same ssh as one string for `rsync -e`."""
    return shlex.join(["ssh", *ssh_options(keys, port)])


def wait_for_ssh(host: str, user: str, keys: RunKeys, timeout_s: float,
                 on_tick: Callable[[float], None] | None = None, port: int = 22,
                 interval_s: float = 3.0) -> None:
    """Wait until `user` can log in with the run key. The host key seen first is pinned; a
    different key later aborts at once (SshError) instead of being retried."""
    last = {"err": ""}

    def attempt() -> bool:
        pinned = bool(keys.pinned_lines(host, port))
        argv = ["ssh", *ssh_options(keys, port, "yes" if pinned else "accept-new"),
                "-l", user, host, "true"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=CONNECT_TIMEOUT_S + 20, stdin=subprocess.DEVNULL,
                                  check=False)
        except subprocess.TimeoutExpired:
            last["err"] = "ssh timed out"
            return False
        if done.returncode == 0:
            return True
        err = " ".join(done.stderr.split())
        if pinned and any(m in done.stderr for m in _MISMATCH):
            raise SshError(f"host key of {host} changed since it was pinned: aborting "
                           "(possible man-in-the-middle)")
        last["err"] = err[:300]
        return False

    try:
        wait_until(attempt, timeout_s, interval_s, on_tick,
                   f"ssh {user}@{host} to accept the run key", error=SshError)
    except SshError as exc:
        if "timed out" in str(exc) and last["err"]:
            raise SshError(f"{exc} (last error: {last['err']})") from None
        raise


def connect(host: str, user: str, keys: RunKeys, port: int = 22,
            timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A fabric.Connection using only the run key and its pinned known_hosts (strict)."""
    import fabric
    import paramiko

    if not keys.pinned_lines(host, port):
        raise SshError(f"no pinned host key for {host}: call wait_for_ssh first")
    config = fabric.Config(overrides={
        "load_ssh_configs": False,
        "forward_agent": False,
        "run": {"hide": True, "warn": True, "in_stream": False},
        "sudo": {"hide": True, "warn": True},
    })
    conn = fabric.Connection(
        host, user=user, port=port, config=config, connect_timeout=int(timeout_s),
        connect_kwargs={
            "key_filename": [str(keys.private_path)],
            "allow_agent": False,
            "look_for_keys": False,
            "banner_timeout": timeout_s,
            "auth_timeout": timeout_s,
        },
    )
    # Fabric defaults to AutoAddPolicy with no known_hosts: replace with strict pinning.
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    conn.client.load_host_keys(str(keys.known_hosts_path))
    try:
        conn.open()
    except paramiko.BadHostKeyException:
        raise SshError(f"host key of {host} changed since it was pinned: aborting") from None
    except (paramiko.SSHException, OSError) as exc:
        raise SshError(f"ssh {user}@{host}: {' '.join(str(exc).split())}") from None
    return conn
