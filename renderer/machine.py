"""Which machine and which renderer: the identity that measured speeds are only valid for.

The launcher's calibration cache and the local render records both carry it, so a number learnt
on one machine (or with one version of the timed code) never prices another."""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

# Files whose change invalidates what was measured: what is timed is in them.
RENDERER_VERSION_FILES = ("kernel.py", "grid.py", "colour.py", "encode.py", "render.py")


def renderer_version() -> str:
    """A hash of the renderer's timed source."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for name in RENDERER_VERSION_FILES:
        h.update((root / name).read_bytes())
    return h.hexdigest()[:12]


def machine_key(cores: int) -> str:
    """Host name, architecture, CPU model and the cores this process may use, hashed."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    raw = f"{platform.node()}|{platform.machine()}|{model}|{cores}"
    return hashlib.sha256(raw.encode()).hexdigest()[:12]
