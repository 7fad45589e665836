"""The run record: one JSON file per run, written atomically, no secrets. The state directory's
copy (`<state>/<run id>/record.json`) is what history and cost read; another copy sits beside
the output (`output/runs/<run id>.json`)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_RECORD = "record.json"  # in the run's state directory


@dataclass
class RunRecord:
    """What happened in one run; updated as phases finish and saved after each change."""

    run_id: str
    started_at: str
    scene: dict[str, Any]
    plan: str
    type_id: str
    price_hourly_usd: float
    region: str | None = None
    image: str | None = None
    instance_id: int | None = None
    instance_label: str | None = None
    status: str = "started"  # started → rendering → completed | failed | interrupted
    error: str | None = None
    phases_s: dict[str, float] = field(default_factory=dict)
    cores: int | None = None
    frames: int | None = None
    frames_rendered: int | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    host_key: str | None = None
    lifetime_s: float | None = None
    billed_hours: int | None = None
    cost_usd: float | None = None
    deleted: bool | str = False  # True only once the API confirmed it; "unconfirmed" otherwise
    finished_at: str | None = None
    render_throughput_giter_s: float | None = None
    max_cost_usd: float | None = None  # --max-cost: `launcher attach` keeps holding the run to it
    output_dir: str | None = None  # where the results (and the user's copy of this record) go
    # What the run teaches the estimates (scene-independent): model render time at factor 1,
    # and the plan's per-core speed relative to this machine that the measured render implies.
    model_render_s: float | None = None
    plan_speed_factor: float | None = None
    upload_bytes: int | None = None  # what the sync sent (the pull's bytes are in outputs)
    # The launcher process attached to the run (cleanup spares a run whose launcher lives).
    launcher_pid: int | None = None
    launcher_host: str | None = None
    # Defence in depth (issue 6). Never a secret: the lease token stays on the server.
    address: str | None = None
    user: str | None = None
    host_key_source: str | None = None  # "user_data" | "first_use"
    firewall_id: int | None = None
    ssh_from: list[str] | None = None
    firewall_deleted: bool = False
    lease: dict[str, Any] | None = None  # lease_s, server_api_url, deadline, token_revoked
    detached: dict[str, Any] | None = None  # what `launcher attach` needs on the server

    # Multi-node runs (`--nodes N`): every instance with its own delete and bill; the fields
    # above then hold node 1's id and the sums. Warnings: the run completed, but see these.
    nodes: int = 1
    instances: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """A saved record (fields added later default; unknown ones are ignored)."""
        import dataclasses

        data = json.loads(path.read_text(encoding="utf-8"))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".json.part", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(asdict(self), fh, indent=2, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def load_records(output_dir: Path) -> list[dict[str, Any]]:
    """Earlier runs' records (for estimates from measured throughput); unreadable ones skipped."""
    records = []
    for p in sorted(output_dir.glob("runs/*.json")):
        try:
            records.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return records
