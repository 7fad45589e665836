"""Per-run keys, ssh readiness with host-key pinning, and a mismatch that aborts."""

from __future__ import annotations

import stat
import subprocess
import time
from pathlib import Path

import pytest

from provision import ssh
from provision.errors import SshError
from provision.keys import RunKeys

from .conftest import LocalSshd, new_host_key


def test_run_keys_are_fresh_private_ed25519(tmp_path: Path) -> None:
    a = RunKeys.create(tmp_path / "a")
    b = RunKeys.create(tmp_path / "b")
    assert a.public_line.startswith("ssh-ed25519 ") and a.public_line != b.public_line
    assert stat.S_IMODE(a.private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(a.directory.stat().st_mode) == 0o700
    assert a.known_hosts_path.exists() and a.known_hosts_path.read_text() == ""
    with pytest.raises(SshError, match="refusing to reuse"):
        RunKeys.create(tmp_path / "a")


def test_ssh_argv_uses_only_the_run_identity(tmp_path: Path) -> None:
    keys = RunKeys.create(tmp_path)
    argv = ssh.ssh_command(keys, "alice", "203.0.113.5")
    joined = " ".join(argv)
    assert argv[0] == "ssh" and argv[-3:] == ["-l", "alice", "203.0.113.5"]
    for opt in ("IdentitiesOnly=yes", "IdentityAgent=none", "StrictHostKeyChecking=yes",
                "PasswordAuthentication=no", "BatchMode=yes", "GlobalKnownHostsFile=/dev/null",
                f"UserKnownHostsFile={keys.known_hosts_path}"):
        assert opt in joined
    assert str(keys.private_path) in argv


def test_wait_for_ssh_pins_on_first_contact(local_sshd: LocalSshd) -> None:
    s = local_sshd
    ssh.wait_for_ssh(s.host, s.user, s.keys, timeout_s=20, port=s.port, interval_s=0.2)
    pinned = s.keys.pinned_lines(s.host, s.port)
    assert len(pinned) == 1 and " ssh-ed25519 " in pinned[0]
    host_pub = (s.directory / "host_a.pub").read_text().split()[1]
    assert pinned[0].split()[2] == host_pub
    out = subprocess.run([*ssh.ssh_command(s.keys, s.user, s.host, s.port), "echo pong"],
                         capture_output=True, text=True, timeout=20)
    assert out.stdout.strip() == "pong"
    conn = ssh.connect(s.host, s.user, s.keys, port=s.port)
    try:
        assert conn.run("echo fabric").stdout.strip() == "fabric"
    finally:
        conn.close()


def test_changed_host_key_aborts_at_once(local_sshd: LocalSshd) -> None:
    s = local_sshd
    ssh.wait_for_ssh(s.host, s.user, s.keys, timeout_s=20, port=s.port, interval_s=0.2)
    s.stop()
    s.start(new_host_key(s.directory, "host_b"))  # same address, another machine
    t0 = time.monotonic()
    with pytest.raises(SshError, match="changed since it was pinned"):
        ssh.wait_for_ssh(s.host, s.user, s.keys, timeout_s=60, port=s.port, interval_s=0.2)
    assert time.monotonic() - t0 < 15  # aborted, not retried until the timeout
    with pytest.raises(SshError, match="changed since it was pinned"):
        ssh.connect(s.host, s.user, s.keys, port=s.port)


def test_connect_refuses_an_unpinned_host(local_sshd: LocalSshd) -> None:
    s = local_sshd
    with pytest.raises(SshError, match="no pinned host key"):
        ssh.connect(s.host, s.user, s.keys, port=s.port)


def test_wait_for_ssh_is_bounded(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    keys = RunKeys.create(tmp_path)
    t0 = time.monotonic()
    with pytest.raises(SshError, match="timed out after 2 s"):
        ssh.wait_for_ssh("127.0.0.1", "root", keys, timeout_s=2, port=port, interval_s=0.5)
    assert time.monotonic() - t0 < 10
