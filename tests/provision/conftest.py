"""A throwaway sshd on 127.0.0.1 (root only) so ssh and rsync are tested for real."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provision.keys import RunKeys

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class LocalSshd:
    host: str
    port: int
    user: str
    keys: RunKeys
    directory: Path
    proc: subprocess.Popen | None = None

    def start(self, host_key: Path) -> None:
        config = self.directory / "sshd_config"
        config.write_text(
            f"ListenAddress {self.host}\nPort {self.port}\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {self.directory / 'authorized_keys'}\nStrictModes no\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "PermitRootLogin prohibit-password\nPidFile none\n"
        )
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((self.host, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("test sshd did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
            self.proc = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_host_key(directory: Path, name: str) -> Path:
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture
def local_sshd(tmp_path: Path) -> Iterator[LocalSshd]:
    """sshd as root on 127.0.0.1:<free port>, accepting only a fresh run key."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a throwaway sshd")
    if not os.path.exists(SSHD) or shutil.which("rsync") is None:
        pytest.skip("needs sshd and rsync installed")
    os.makedirs("/run/sshd", exist_ok=True)
    d = tmp_path / "sshd"
    d.mkdir()
    keys = RunKeys.create(tmp_path / "run")
    (d / "authorized_keys").write_text(keys.public_line + "\n")
    server = LocalSshd("127.0.0.1", _free_port(), "root", keys, d)
    server.start(new_host_key(d, "host_a"))
    try:
        yield server
    finally:
        server.stop()
