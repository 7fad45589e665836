"""A one-node run: the render streamed over SSH (or detached to the lease), the MP4 pulled back.

Everything else (create, set up, guards, signals, the delete and the bill) is the shared
lifecycle's (launcher.run.lifecycle).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from launcher.errors import LauncherError, one_line
from launcher.run.costguard import CostGuard
from launcher.run.detach import detach_warning, start_detached
from launcher.run.hooks import Hooks
from launcher.run.lifecycle import Lifecycle
from launcher.run.record import RunRecord
from launcher.run.remote import (
    DetachedFiles,
    RemoteLayout,
    parse_cores,
    render_command,
    watch_command,
)
from launcher.run.spec import Host, JobSpec
from provision import sync
from provision.cloud import Cloud

# The renderer's closing summary: "speed 20.3 frames/s, 1.57 G iterations/s (...)".
THROUGHPUT = re.compile(r"([\d.]+) G iterations/s")
# A detached render must leave the lease at least this long, or it would end before it began.
MIN_DETACHED_LEASE_S = 300.0


class Job(Lifecycle):
    """One spec on one instance; `run()` returns the record whatever happened and always
    deletes (confirmed)."""

    def __init__(self, spec: JobSpec, cloud: Cloud, hooks: Hooks | None = None,
                 state_dir: Path | None = None, run_id: str | None = None,
                 **kw: Any) -> None:
        super().__init__(spec, cloud, hooks, nodes=1, state_dir=state_dir, run_id=run_id, **kw)

    @property
    def host(self) -> Host | None:
        return self.nodes[0].host

    # ------------------------------------------------------------------ the render

    def render_and_pull(self) -> None:
        if self.spec.detach:
            self._detach()
            return
        with self.phase("render"):
            self._render()
        self.record.status = "pulling"
        with self.phase("pull"):
            self._pull_outputs()

    def resume(self, record: RunRecord, record_path: Path, keys: Any) -> RunRecord:
        """`launcher attach`: take over a detached run (its saved record), follow the render to
        its end, pull, and delete like any run."""
        assert record.instance_id is not None and record.detached is not None
        self.adopt(record, record_path, keys)
        node = self.nodes[0]

        def body() -> None:
            info = self.cloud.get(record.instance_id)
            if info is None:
                deadline = (record.lease or {}).get("deadline", "its lease end")
                raise LauncherError(
                    f"instance {record.instance_id} no longer exists: its lease ended "
                    f"({deadline}) and the server deleted itself; the results are lost")
            node.instance = info
            # Lifetime (for --max-cost) counts from the instance's creation, not from now.
            age_s = (datetime.now(UTC) - info.created).total_seconds()
            self._created_at = time.monotonic() - max(0.0, age_s)
            layout = RemoteLayout(PurePosixPath(record.detached["home"]))
            node.host = Host(info, record.address or info.ipv4 or "", keys, layout)
            guards = self._guards_for(node)
            guards.record.lease = record.lease
            with self.phase("lease"):
                guards.start_lease(info.id, node.host.address, keys, self.spec.user, resume=True,
                                   at_most_s=self.lease_cap_s)
                self.note_guards(node)
            self.hooks.message(f"attached to instance {info.id}; following the render")
            with self.phase("render"):
                self._render(watch_command(DetachedFiles(**record.detached["files"])))
            self.record.status = "pulling"
            with self.phase("pull"):
                self._pull_outputs()

        return self.lifecycle(body)

    def _render_command(self) -> str:
        return render_command(self.layout, "scene.toml", self.spec.scene_output_name,
                              self.spec.render_args, self.spec.keep_frames)

    def _cost_guard(self) -> CostGuard | None:
        cap = self.spec.max_cost_usd
        return None if cap is None else CostGuard(self.priced_plan, cap)

    def _detach(self) -> None:
        """Start the render in its own session on the server and leave it to the lease, whose
        deadline --max-cost bounds too: the watchdog's delete lands within the cap."""
        host, node = self.host, self.nodes[0]
        assert host is not None and node.guards is not None
        at_most_s = self.lease_cap_s()
        if at_most_s is not None and at_most_s < MIN_DETACHED_LEASE_S:
            raise LauncherError(
                f"--max-cost ${self.spec.max_cost_usd:.2f} leaves too little time to detach "
                f"({max(0.0, at_most_s):.0f} s of lease); nothing was left running")
        with self.phase("detach"):
            self.record.detached = start_detached(host, self.spec.user, self._render_command(),
                                                  self.spec.scene_output_name,
                                                  self.spec.keep_frames)
            deadline = node.guards.detach(at_most_s)
            self.note_guards(node)
        self.record.status = "detached"
        self.detached = True
        self.save()
        self.hooks.message(detach_warning(self.run_id, self.record.instance_id, deadline))

    def _render(self, command: str | None = None) -> None:
        """Stream the render (or, on attach, a detached render's log) to its end."""
        host = self.host
        assert host is not None

        def on_other(line: str) -> None:
            rate = THROUGHPUT.search(line)
            if rate is not None:  # the renderer's summary: measured speed for later estimates
                self.record.render_throughput_giter_s = float(rate.group(1))
            cores = parse_cores(line)
            if cores is not None and host.cores is None:
                host.cores = cores
                self.record.cores = cores
                self.hooks.message(f"server renders on {cores} cores")

        timeout_s, guard = self.spec.render_timeout_s, self._cost_guard()
        if guard is not None:
            left = guard.remaining_s(self.lifetime_s())
            timeout_s = left if timeout_s is None else min(timeout_s, left)
        started = time.monotonic()
        code, last = self.follow_remote(self.nodes[0], command or self._render_command(),
                                        timeout_s, on_other)
        if guard is not None and guard.should_stop(self.lifetime_s()):
            raise LauncherError(
                f"--max-cost ${guard.max_cost_usd:.2f}: stopped the render after "
                f"{time.monotonic() - started:.0f}s so the instance is deleted within "
                f"{guard.allowed_hours} billed hour(s) at ${guard.plan.price_hourly_usd:.3f}/h; "
                "finished segments are pulled back")
        if code != 0:
            raise LauncherError(f"render failed on the server (exit {code}): {last}")
        self.record.frames_rendered = self.spec.frames

    def _pull_outputs(self) -> None:
        host = self.host
        assert host is not None
        self.spec.output_dir.mkdir(parents=True, exist_ok=True)
        remote = str(host.layout.output / self.spec.scene_output_name)
        local = self.spec.output_dir / self.spec.scene_output_name
        digest = sync.pull_verified(host.address, self.spec.user, host.keys, remote, local)
        self.record.outputs.append({"path": str(local), "sha256": digest,
                                    "bytes": local.stat().st_size})
        if self.spec.keep_frames:
            frames_local = self.spec.output_dir / f"{Path(self.spec.scene_output_name).stem}-frames"
            sync.pull_dir(host.address, self.spec.user, host.keys,
                          str(host.layout.output / "frames"), frames_local)
            self.record.outputs.append({"path": str(frames_local), "kind": "frames"})

    def salvage(self) -> None:
        """Before the delete: pull finished segments back so a crash loses little."""
        host = self.host
        if host is None:
            return
        # renderer.segments.PartsDir: finished segments only (temp files are hidden names).
        segdir = host.layout.output / f".{self.spec.scene_output_name}.parts"
        local = self.spec.output_dir / f"{self.run_id}-partial"
        try:
            with self.phase("salvage"):
                n = sync.pull_dir(host.address, self.spec.user, host.keys, str(segdir), local,
                                  exclude=(".*", "manifest.json"), timeout_s=120)
            if n:
                self.record.outputs.append({"path": str(local), "kind": "partial-segments"})
                self.hooks.message(f"saved {n} finished segment files to {local}")
            else:
                self.record.lost.append("no finished segments on the server")
        except Exception as exc:  # noqa: BLE001 - salvage is best effort; deletion must follow
            self.record.lost.append(f"segments on the server could not be pulled: "
                                    f"{one_line(exc)}")
