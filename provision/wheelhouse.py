"""Wheels for a server without a package index: downloaded here for its Python and platform."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from provision.errors import BootstrapError

# Needed on this machine only (they drive the server); never installed there.
# What only this machine needs: the cloud and SSH side, and imageio-ffmpeg (a server gets ffmpeg
# from apt in bootstrap; the wheel is a 30 MB download billed in the setup phase).
LOCAL_ONLY = frozenset({"linode-api4", "fabric", "paramiko", "invoke", "requests",
                        "imageio-ffmpeg"})
PROBE = (
    "import json, platform, sys; print(json.dumps({'version': '%d.%d' % sys.version_info[:2], "
    "'machine': platform.machine(), 'libc': platform.libc_ver()}))"
)


@dataclass(frozen=True)
class Target:
    """The server's interpreter: CPython version, CPU architecture, glibc version."""

    python_version: str  # "3.11"
    machine: str  # "x86_64"
    glibc: tuple[int, int]  # (2, 36)

    @property
    def abi(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    @property
    def key(self) -> str:
        return f"{self.abi}-{self.machine}-glibc{self.glibc[0]}.{self.glibc[1]}"

    def platforms(self) -> list[str]:
        """manylinux tags this glibc accepts, newest first, plus the legacy aliases."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{self.machine}" for m in range(minor, 4, -1)]
        legacy = {(2, 17): "manylinux2014", (2, 12): "manylinux2010", (2, 5): "manylinux1"}
        tags += [f"{name}_{self.machine}" for (ma, mi), name in legacy.items()
                 if (major, minor) >= (ma, mi)]
        return tags

    @classmethod
    def parse_probe(cls, text: str) -> Target:
        """From the JSON printed by PROBE on the server."""
        data = json.loads(text)
        libc, version = data["libc"]
        if libc != "glibc":
            raise BootstrapError(f"server Python uses {libc or 'an unknown libc'}: "
                                 "only glibc (manylinux) wheels can be shipped")
        parts = version.split(".")
        return cls(data["version"], data["machine"], (int(parts[0]), int(parts[1])))


def local_target() -> Target:
    """This machine (used when the server is known to match it, and in tests)."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True)
    return Target.parse_probe(out.stdout)


_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")
_DOWNLOAD_LOCK = threading.Lock()  # nodes bootstrapped in parallel share one wheel cache


def project_requirements(dist: str = "juliafarm", extras: Sequence[str] = ()) -> list[str]:
    """The installed project's runtime requirements (plus those of `extras`, e.g. "cluster"),
    minus what only the local side needs."""
    reqs = []
    for line in metadata.requires(dist) or ():
        spec, _, marker = line.partition(";")
        if "extra" in marker:
            m = _EXTRA.search(marker)
            if m is None or m.group(1) not in extras:
                continue
        name = re.match(r"[A-Za-z0-9._-]+", spec.strip())
        if name is None or name.group(0).lower().replace("_", "-") in LOCAL_ONLY:
            continue
        reqs.append(spec.strip())
    return sorted(set(reqs))


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "juliafarm" / "wheels"


def requirements_digest(requirements: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:16]


def download(requirements: Sequence[str], target: Target, cache_dir: Path | None = None,
             timeout_s: float = 1800, index_args: Sequence[str] = ()) -> Path:
    """A directory of wheels satisfying `requirements` on `target` (binary only), cached: a
    second call for the same target and requirements does not touch the network.
    `index_args` go to pip as they are (e.g. --no-index --find-links DIR)."""
    with _DOWNLOAD_LOCK:  # one pip at a time per process: the second finds the first's stamp
        return _download(requirements, target, cache_dir, timeout_s, index_args)


def _download(requirements: Sequence[str], target: Target, cache_dir: Path | None,
              timeout_s: float, index_args: Sequence[str]) -> Path:
    directory = (cache_dir or default_cache_dir()) / target.key
    directory.mkdir(parents=True, exist_ok=True)
    stamp = directory / f".complete-{requirements_digest(requirements)}"
    if stamp.exists() and all((directory / n).exists() for n in stamp.read_text().split()):
        return directory
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
            "--only-binary=:all:", "--implementation", "cp",
            "--python-version", target.python_version,
            "--abi", target.abi, "--abi", "abi3", "--abi", "none",
            *[a for p in target.platforms() for a in ("--platform", p)],
            *index_args, "-d", str(directory), *requirements]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BootstrapError(f"downloading wheels took over {timeout_s:g} s") from None
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        raise BootstrapError(f"cannot download wheels for {target.key}: "
                             f"{lines[-1] if lines else done.returncode}")
    wheels = sorted(p.name for p in directory.glob("*.whl"))
    stamp.write_text("\n".join(wheels) + "\n")
    return directory
