"""The server's SSH host key, made here and installed through cloud-init user_data, so that the
very first connection is verified; pin-on-first-use where the image or region cannot take it."""

from __future__ import annotations

import base64
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from provision.cloud import Cloud
from provision.errors import SshError

USER_DATA = "user_data"    # host_key_source in the run record
FIRST_USE = "first_use"
MAX_USER_DATA_BYTES = 65535  # POST /linode/instances: metadata.user_data, raw size


@dataclass(frozen=True)
class HostKey:
    """A fresh ed25519 host key: the public line to pin, the cloud-config that installs it."""

    public_line: str                      # "ssh-ed25519 AAAA... juliafarm-host"
    user_data_b64: str = field(repr=False)  # holds the private key: never logged or stored

    @property
    def key_type(self) -> str:
        return self.public_line.split()[0]

    @property
    def key_b64(self) -> str:
        return self.public_line.split()[1]


def generate() -> HostKey:
    """ssh-keygen in a private temporary directory; only the public line outlives the call."""
    with tempfile.TemporaryDirectory(prefix="jf-hostkey-") as tmp:
        path = Path(tmp) / "ssh_host_ed25519_key"
        done = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "juliafarm-host",
             "-f", str(path)],
            capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise SshError(f"ssh-keygen (host key) failed: {done.stderr.strip()}")
        private = path.read_text()
        public = path.with_suffix(".pub").read_text().strip()
    config = cloud_config(private, public)
    raw = config.encode()
    if len(raw) > MAX_USER_DATA_BYTES:  # pragma: no cover - an ed25519 config is ~600 bytes
        raise SshError("host key user_data is too large")
    return HostKey(public, base64.b64encode(raw).decode("ascii"))


def cloud_config(private_key: str, public_line: str) -> str:
    """cloud-init's `ssh_keys` module: this pair becomes the host key; no other key types are
    generated (ssh_genkeytypes: []) and the image's are removed (ssh_deletekeys)."""
    indented = "".join(f"    {line}\n" for line in private_key.strip().splitlines())
    return ("#cloud-config\n"
            "ssh_deletekeys: true\n"
            "ssh_genkeytypes: []\n"
            "ssh_keys:\n"
            "  ed25519_private: |\n"
            f"{indented}"
            f"  ed25519_public: {public_line}\n")


def user_data_supported(cloud: Cloud, image: str, regions: Sequence[str]) -> bool:
    """True if the image lists `cloud-init` and every candidate region lists `Metadata` in its
    capabilities (GET /images/{id}, GET /regions/{id}); otherwise pin on first use."""
    img = cloud.image(image)
    if img is None or "cloud-init" not in (img.get("capabilities") or ()):
        return False
    for region in regions:
        r = cloud.region(region)
        if r is None or "Metadata" not in (r.get("capabilities") or ()):
            return False
    return True
