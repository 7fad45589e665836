"""The Debian 12 root filesystem every emulated instance boots from: built once, then cached.

`debootstrap --variant=minbase` from this machine's apt mirror, plus what a fresh Linode debian12
image has and the launcher relies on (sshd, sudo, ufw, iptables, rsync, python3-venv, ffmpeg, …):
hosts have no internet, so "install only if missing" must find everything already there.
The build goes to a temporary directory renamed when complete, under a lock, so a killed build
never leaves half an image and parallel test processes build it once.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

SUITE = "bookworm"
PACKAGES = ("openssh-server", "openssh-client", "sudo", "ufw", "iptables", "rsync", "python3",
            "python3-venv", "python3-pip", "ffmpeg", "adduser", "procps", "ca-certificates",
            "iproute2", "coreutils", "libgomp1", "curl")
DEFAULT_CACHE = Path("/var/cache/juliafarm-fakelinode")
BUILD_TIMEOUT_S = 3600


class ImageUnavailable(RuntimeError):
    """The image cannot be built here (not root, no debootstrap, no mirror)."""


def cache_dir() -> Path:
    return Path(os.environ.get("JULIAFARM_FAKELINODE_CACHE", DEFAULT_CACHE))


def mirror() -> str:
    """The Debian mirror apt already uses on this machine (no other network is reachable)."""
    for source in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        try:
            text = source.read_text()
        except OSError:
            continue
        m = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+bookworm", text, re.MULTILINE)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def debian12(log: Path | None = None) -> Path:
    """Path of the cached root filesystem, building it first if needed."""
    if os.geteuid() != 0:
        raise ImageUnavailable("building the host image needs root (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        raise ImageUnavailable("debootstrap is not installed (apt-get install debootstrap)")
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    final = base / "debian12"
    if (final / ".complete").is_file():
        return final
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / ".complete").is_file():
            return final
        tmp = base / f"debian12.building.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _build(tmp, log or base / "build.log")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _build(root: Path, log: Path) -> None:
    with open(log, "w") as out:
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
             str(root), mirror()],
            stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise ImageUnavailable(f"debootstrap failed: {' | '.join(tail)}")
    # A fresh Linode: no host keys baked in (each host makes its own), sshd's runtime dir,
    # and services that must not start inside a chroot.
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "run" / "sshd").mkdir(parents=True, exist_ok=True)
    (root / "etc" / "hostname").write_text("localhost\n")
    (root / ".complete").write_text("ok\n")
