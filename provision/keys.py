"""Per-run SSH identity: a fresh ed25519 key pair and the run's own pinned known_hosts."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from provision.errors import SshError

PINNED_ON_FIRST_USE = "pinned on first use"
PREINSTALLED = "preinstalled via user_data"


@dataclass(frozen=True)
class RunKeys:
    """One run's key pair and known_hosts, all in a private (0700) directory."""

    directory: Path
    private_path: Path
    public_line: str
    known_hosts_path: Path
    host_key_method: str = PINNED_ON_FIRST_USE

    @classmethod
    def create(cls, directory: Path, comment: str = "juliafarm-run") -> RunKeys:
        """Generate a new ed25519 pair (no passphrase: it lives only as long as the run)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        private = directory / "id_ed25519"
        if private.exists() or private.with_suffix(".pub").exists():
            raise SshError(f"a key already exists in {directory}: refusing to reuse it")
        if shutil.which("ssh-keygen") is None:
            raise SshError("ssh-keygen not found (apt-get install openssh-client)")
        done = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(private)],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if done.returncode != 0:
            raise SshError(f"ssh-keygen failed: {done.stderr.strip() or done.returncode}")
        os.chmod(private, 0o600)
        public = private.with_suffix(".pub").read_text().strip()
        known_hosts = directory / "known_hosts"
        known_hosts.touch(mode=0o600)
        return cls(directory, private, public, known_hosts)

    @classmethod
    def existing(cls, directory: Path) -> RunKeys:
        """The pair and known_hosts a run made earlier (for `launcher attach`)."""
        directory = Path(directory)
        private = directory / "id_ed25519"
        known_hosts = directory / "known_hosts"
        if not private.is_file() or not known_hosts.is_file():
            raise SshError(f"the run's SSH key or known_hosts is missing from {directory}")
        public = private.with_suffix(".pub").read_text().strip()
        return cls(directory, private, public, known_hosts)

    def pinned_lines(self, host: str, port: int = 22) -> list[str]:
        """The known_hosts lines pinned for `host` (empty before first contact)."""
        if not self.known_hosts_path.exists():
            return []
        name = host_entry(host, port)
        lines = []
        for line in self.known_hosts_path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and name in fields[0].split(","):
                lines.append(line)
        return lines

    def pin(self, host: str, key_type: str, key_b64: str, port: int = 22) -> None:
        """Pin a host key learnt out of band (e.g. from the console), before first contact."""
        if self.pinned_lines(host, port):
            raise SshError(f"a host key for {host} is already pinned")
        with open(self.known_hosts_path, "a", encoding="ascii") as fh:
            fh.write(f"{host_entry(host, port)} {key_type} {key_b64}\n")
        os.chmod(self.known_hosts_path, 0o600)

    def fingerprints(self, host: str, port: int = 22) -> list[str]:
        """SHA256 fingerprints of the pinned keys (for the log; not secret)."""
        done = subprocess.run(
            ["ssh-keygen", "-l", "-F", host_entry(host, port), "-f", str(self.known_hosts_path)],
            capture_output=True, text=True, timeout=10, check=False,
        )
        return [f for line in done.stdout.splitlines() if not line.startswith("#")
                for f in line.split() if f.startswith("SHA256:")]


def host_entry(host: str, port: int = 22) -> str:
    """How known_hosts names a host (`[h]:p` for a non-default port)."""
    return host if port == 22 else f"[{host}]:{port}"
