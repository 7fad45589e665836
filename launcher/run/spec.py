"""What one run is made of, resolved before anything is rented: the spec, ids and names."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from launcher.run.guards import GuardSpec
from launcher.run.remote import RemoteLayout
from provision.cloud import InstanceInfo
from provision.plans import Plan
from renderer.local_record import state_root

TAG = "juliafarm"
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.+=@%"


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random suffix (labels allow letters, digits, '-')."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def run_tag(run_id: str) -> str:
    """The tag every instance of one run carries: how cleanup finds them, whatever happened."""
    return f"juliafarm-run-{run_id}"


def run_label(run_id: str) -> str:
    return f"juliafarm-{run_id}"


def node_label(run_id: str, index: int, nodes: int) -> str:
    """A one-node run's instance is the run's label; node i of N > 1 gets '-i'."""
    return run_label(run_id) if nodes == 1 else f"{run_label(run_id)}-{index}"


def random_root_password(length: int = 40) -> str:
    """A strong random root password; it is sent once to the API and never shown or stored."""
    while True:
        pw = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        if (any(c.islower() for c in pw) and any(c.isupper() for c in pw)
                and any(c.isdigit() for c in pw) and any(not c.isalnum() for c in pw)):
            return pw


def default_state_dir() -> Path:
    """Per-run keys and known_hosts live here (0700), never in the output dir or the upload."""
    return state_root() / "runs"


def utc_now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_args_from(overrides: dict[str, Any]) -> tuple[str, ...]:
    """Scene overrides as renderer flags, for the server (`{"num_steps": 64}` → --num-steps 64)."""
    args: list[str] = []
    for key, value in overrides.items():
        if value is None:
            continue
        args += [f"--{key.replace('_', '-')}", str(value)]
    return tuple(args)


@dataclass(frozen=True)
class JobSpec:
    """Everything one run needs, resolved and validated before anything is rented.

    `plan` carries every region's price (`Plan.region_prices`); the run prices itself with the
    region its instances were actually created in (`Plan.in_region`)."""

    scene_path: Path
    scene_output_name: str
    frames: int
    render_args: tuple[str, ...]  # scene overrides passed on to the server's renderer
    plan: Plan
    regions: tuple[str, ...]
    image: str
    output_dir: Path
    project_dir: Path
    exclude_file: Path
    user: str = "juliafarm"
    deps: str = "auto"
    keep_frames: bool = False
    max_cost_usd: float | None = None
    ready_timeout_s: float = 600.0
    ssh_timeout_s: float = 300.0
    render_timeout_s: float | None = None
    scene_summary: dict[str, Any] = field(default_factory=dict)
    guards: GuardSpec = field(default_factory=GuardSpec)  # firewall, host key, lease
    detach: bool = False  # start the render and leave it to the lease (`launcher attach`)
    # The estimate model's render time at this machine's per-core speed: a finished run turns
    # it and the measured render time into the plan's speed factor (estimate.model).
    model_render_s: float | None = None
    # The project's bytes after exclude.txt: with the sync's time, what a run teaches about
    # uploads (estimate.model.transfer_s).
    upload_bytes: int | None = None


@dataclass
class Host:
    """What the phases after creation need to reach one server."""

    instance: InstanceInfo
    address: str
    keys: Any  # provision.keys.RunKeys
    layout: RemoteLayout
    cores: int | None = None
