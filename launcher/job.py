"""One run's lifecycle: create → ssh → bootstrap → sync → render → pull, and delete in `finally`."""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from launcher.errors import Interrupted, LauncherError
from launcher.guards import GuardSpec, RunGuards
from launcher.record import RunRecord
from launcher.remote import (
    DetachedFiles,
    RemoteLayout,
    parse_cores,
    parse_progress,
    render_command,
    stream,
    watch_command,
)
from launcher.signals import signals_deferred, signals_raise
from provision import billing
from provision.cloud import Cloud, InstanceInfo, InstanceRequest
from provision.errors import DeleteError, ProvisionError
from provision.plans import Plan

TAG = "juliafarm"
# The renderer's closing summary: "speed 20.3 frames/s, 1.57 G iterations/s (...)".
THROUGHPUT = re.compile(r"([\d.]+) G iterations/s")
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.+=@%"


def new_run_id() -> str:
    """Sortable and unique: UTC time plus random suffix (labels allow letters, digits, '-')."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def random_root_password(length: int = 40) -> str:
    """A strong random root password; it is sent once to the API and never shown or stored."""
    while True:
        pw = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        if (any(c.islower() for c in pw) and any(c.isupper() for c in pw)
                and any(c.isdigit() for c in pw) and any(not c.isalnum() for c in pw)):
            return pw


@dataclass(frozen=True)
class JobSpec:
    """Everything one run needs, resolved and validated before anything is rented."""

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


@dataclass
class Host:
    """What the phases after creation need to reach the server."""

    instance: InstanceInfo
    address: str
    keys: Any  # provision.keys.RunKeys
    layout: RemoteLayout
    cores: int | None = None


class Hooks:
    """Seams for tests and the UI; every method is optional to override."""

    def phase_started(self, name: str) -> None: ...
    def phase_finished(self, name: str, seconds: float) -> None: ...
    def message(self, text: str) -> None: ...
    def progress(self, done: int, total: int, fps: float) -> None: ...
    def render_line(self, line: str) -> None: ...
    def before_delete(self, host: Host | None) -> None: ...
    def created(self, instance: InstanceInfo) -> None: ...


class Job:
    """Runs one spec; `run()` returns the record whatever happened and always deletes."""

    def __init__(self, spec: JobSpec, cloud: Cloud, hooks: Hooks | None = None,
                 state_dir: Path | None = None, run_id: str | None = None) -> None:
        self.spec = spec
        self.cloud = cloud
        self.hooks = hooks or Hooks()
        self.run_id = run_id or new_run_id()
        self.label = f"juliafarm-{self.run_id}"
        self.state_dir = state_dir or default_state_dir() / self.run_id
        self.record_path = spec.output_dir / "runs" / f"{self.run_id}.json"
        self.record = RunRecord(
            run_id=self.run_id,
            started_at=_now(),
            scene={"path": str(spec.scene_path), **spec.scene_summary},
            plan=spec.plan.alias,
            type_id=spec.plan.type_id,
            price_hourly_usd=spec.plan.price_hourly_usd,
            image=spec.image,
            instance_label=self.label,
            frames=spec.frames,
            user=spec.user,
        )
        self.host: Host | None = None
        self._created_at: float | None = None
        self._instance: InstanceInfo | None = None
        self.detached = False
        self.guards = RunGuards(spec.guards, cloud, self.run_id, self.record,
                                lambda text: self.hooks.message(text))

    # ------------------------------------------------------------------ phases

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.hooks.phase_started(name)
        t0 = time.monotonic()
        try:
            yield
        finally:
            dt = time.monotonic() - t0
            self.record.phases_s[name] = round(dt, 3)
            self.hooks.phase_finished(name, dt)
            self._save()

    def _save(self) -> None:
        self.record.save(self.record_path)

    def run(self) -> RunRecord:
        """The whole run. Raises LauncherError/ProvisionError after cleanup; record saved always."""
        def body() -> None:
            self._instance = self._create()
            self._after_create(self._instance)

        return self._lifecycle(body)

    def resume(self, keys: Any) -> RunRecord:
        """`launcher attach`: take over a detached run (this job's record is the saved one),
        follow the render to its end, pull, and delete like any run."""
        assert self.record.instance_id is not None and self.record.detached is not None

        def body() -> None:
            info = self.cloud.get(self.record.instance_id)
            if info is None:
                deadline = (self.record.lease or {}).get("deadline", "its lease end")
                raise LauncherError(
                    f"instance {self.record.instance_id} no longer exists: its lease ended "
                    f"({deadline}) and the server deleted itself; the results are lost")
            self._instance = info
            layout = RemoteLayout(PurePosixPath(self.record.detached["home"]))
            self.host = Host(info, self.record.address or info.ipv4 or "", keys, layout)
            with self.phase("lease"):
                self.guards.start_lease(info.id, self.host.address, keys, self.spec.user,
                                        resume=True)
            self.hooks.message(f"attached to instance {info.id}; following the render")
            with self.phase("render"):
                self._render(watch_command(DetachedFiles(**self.record.detached["files"])))
            self.record.status = "pulling"
            with self.phase("pull"):
                self._pull_outputs()

        return self._lifecycle(body)

    def _lifecycle(self, body: Callable[[], None]) -> RunRecord:
        self._save()
        error: BaseException | None = None
        try:
            with signals_raise():
                try:
                    body()
                except BaseException as exc:  # noqa: BLE001 - recorded, cleaned up, re-raised
                    error = exc
                    self._record_failure(exc)
                    if self._instance is not None:
                        self._salvage()
                finally:
                    if not self.detached:
                        with signals_deferred() as late:
                            self._cleanup()
                            if late:
                                self.hooks.message("signal received during cleanup: finished "
                                                   "deleting")
        finally:
            if not self.detached:
                self.record.finished_at = _now()
            self._save()
        if error is not None:
            raise error
        if not self.detached:
            self.record.status = "completed"
        self._save()
        return self.record

    def _cleanup(self) -> None:
        """Delete (confirmed), then revoke the lease token and delete the firewall."""
        self.guards.stop_heartbeat()
        try:
            self._delete(self._instance)
        finally:
            self.guards.finish(self.record.deleted)

    def _create(self) -> InstanceInfo:
        from provision.keys import RunKeys

        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = RunKeys.create(self.state_dir)
        from launcher.attach import remember_record

        remember_record(self.state_dir, self.record_path)  # `launcher attach RUN` finds it
        self._keys = keys
        request = InstanceRequest(
            label=self.label,
            type_id=self.spec.plan.type_id,
            region=self.spec.regions[0],
            image=self.spec.image,
            root_pass=random_root_password(),
            authorized_keys=(keys.public_line,),
            tags=(TAG, f"juliafarm-run-{self.run_id}"),
        )
        request = self.guards.prepare(request)
        with self.phase("create"):
            # The label is in the run record before the request, so `launcher cleanup` and the
            # leak-proof retry can find an instance whose create response never arrived.
            self._save()
            self._created_at = time.monotonic()
            instance = self.cloud.create_with_failover(request, list(self.spec.regions))
        self.record.instance_id = instance.id
        self.record.region = instance.region
        self._save()
        self.hooks.created(instance)
        self.hooks.message(
            f"created instance {instance.id} ({self.spec.plan.type_id}) in {instance.region}"
        )
        return instance

    def _after_create(self, instance: InstanceInfo) -> None:
        from provision import bootstrap, ssh, sync

        keys = self._keys
        with self.phase("boot"):
            instance = self.cloud.wait_running(
                instance.id, timeout_s=self.spec.ready_timeout_s, on_tick=None
            )
        address = instance.ipv4 or ""
        if not address:
            raise LauncherError(f"instance {instance.id} has no public IPv4 address")
        self.record.address = address
        self.guards.before_first_contact(address, keys)
        with self.phase("ssh"):
            ssh.wait_for_ssh(address, "root", keys, timeout_s=self.spec.ssh_timeout_s,
                             on_tick=None)
        self.record.host_key = self.record.host_key or getattr(keys, "host_key_method", None)
        if self.spec.guards.lease_s is not None:
            with self.phase("lease"):
                self.guards.start_lease(instance.id, address, keys, self.spec.user)
        home = PurePosixPath("/home") / self.spec.user
        self.host = Host(instance, address, keys, RemoteLayout(home))
        with self.phase("bootstrap"):
            root = ssh.connect(address, "root", keys)
            try:
                bootstrap.bootstrap(
                    root, self.spec.user, keys, deps=self.spec.deps,
                    on_step=lambda name, s, changed: self.hooks.message(
                        f"  {name}: {'changed' if changed else 'ok'} ({s:.1f}s)"),
                )
            finally:
                root.close()
        self.guards.run_user_ready(self.spec.user)
        layout = self.host.layout
        with self.phase("sync"):
            sync.push(self.spec.project_dir, address, self.spec.user, keys, str(layout.project),
                      self.spec.exclude_file)
            sync.push_file(self.spec.scene_path, address, self.spec.user, keys,
                           str(layout.job / "scene.toml"))
        if self.spec.detach:
            self._detach()
            return
        with self.phase("render"):
            self._render()
        self.record.status = "pulling"
        with self.phase("pull"):
            self._pull_outputs()

    def _render_command(self) -> str:
        assert self.host is not None
        return render_command(self.host.layout, "scene.toml", self.spec.scene_output_name,
                              self.spec.render_args, self.spec.keep_frames)

    def _detach(self) -> None:
        """Start the render in its own session on the server and leave it to the lease."""
        from launcher.attach import start_detached

        assert self.host is not None
        with self.phase("detach"):
            self.record.detached = start_detached(self.host, self.spec.user,
                                                  self._render_command(),
                                                  self.spec.scene_output_name,
                                                  self.spec.keep_frames)
            deadline = self.guards.detach()
        self.record.status = "detached"
        self.detached = True
        self._save()
        from launcher.attach import detach_warning

        self.hooks.message(detach_warning(self.run_id, self.record.instance_id, deadline))

    def _render(self, command: str | None = None) -> None:
        """Stream the render (or, on attach, a detached render's log) to its end."""
        from provision import ssh

        assert self.host is not None
        host = self.host
        command = command or self._render_command()
        argv = [*ssh.ssh_command(host.keys, self.spec.user, host.address), command]
        self.record.status = "rendering"
        self._save()
        tail: list[str] = []

        def on_line(line: str) -> None:
            tail.append(line)
            del tail[:-20]
            self.hooks.render_line(line)
            p = parse_progress(line)
            if p is not None:
                self.record.frames_rendered = p.frames_done
                self.hooks.progress(p.frames_done, p.frames_total, p.fps)
                return
            rate = THROUGHPUT.search(line)
            if rate is not None:  # the renderer's summary: measured speed for later estimates
                self.record.render_throughput_giter_s = float(rate.group(1))
            cores = parse_cores(line)
            if cores is not None and host.cores is None:
                host.cores = cores
                self.record.cores = cores
                self.hooks.message(f"server renders on {cores} cores")

        timeout_s, guard = self.spec.render_timeout_s, None
        if self.spec.max_cost_usd is not None:
            from launcher.costguard import CostGuard

            guard = CostGuard(self.spec.plan, self.spec.max_cost_usd)
            left = guard.remaining_s(self._lifetime_s())
            timeout_s = left if timeout_s is None else min(timeout_s, left)
        started = time.monotonic()
        code = stream(argv, on_line, timeout_s=max(0.0, timeout_s) if timeout_s else timeout_s)
        if guard is not None and guard.should_stop(self._lifetime_s()):
            raise LauncherError(
                f"--max-cost ${self.spec.max_cost_usd:.2f}: stopped the render after "
                f"{time.monotonic() - started:.0f}s so the instance is deleted within "
                f"{guard.allowed_hours} billed hour(s); finished segments are pulled back")
        if code != 0:
            last = next((x for x in reversed(tail) if x.strip()), "no output")
            raise LauncherError(f"render failed on the server (exit {code}): {last}")
        self.record.frames_rendered = self.spec.frames

    def _pull_outputs(self) -> None:
        from provision import sync

        assert self.host is not None
        host = self.host
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

    def _salvage(self) -> None:
        """Before the delete: pull finished segments back so a crash loses little."""
        from provision import sync

        if self.host is None:
            return
        host = self.host
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
            self.record.lost.append(f"segments on the server could not be pulled: {exc}")

    def _record_failure(self, exc: BaseException) -> None:
        self.record.status = "interrupted" if isinstance(exc, Interrupted | KeyboardInterrupt) \
            else "failed"
        self.record.error = _one_line(exc)
        self._save()

    def _delete(self, instance: InstanceInfo | None) -> None:
        if instance is None:
            # A create may have failed after Linode made the instance: look for our label.
            try:
                found = [i for i in self.cloud.list_by_tag(f"juliafarm-run-{self.run_id}")]
            except ProvisionError as exc:
                self.record.lost.append(f"could not check for a half-created instance: {exc}")
                found = []
            if not found:
                self.record.deleted = True
                return
            instance = found[0]
            self.record.instance_id = instance.id
        try:
            self.hooks.before_delete(self.host)
        except Exception as exc:  # noqa: BLE001 - a hook must never prevent deletion
            self.hooks.message(f"before-delete hook failed: {_one_line(exc)}")
        with self.phase("delete"):
            try:
                self.cloud.delete(instance.id)
            except DeleteError:
                self.record.deleted = False
                self._account(instance)
                raise
        self.record.deleted = True
        self._account(instance)
        self.hooks.message(
            f"deleted instance {instance.id}; billed {self.record.billed_hours} h = "
            f"${self.record.cost_usd:.2f}"
        )

    def _lifetime_s(self) -> float:
        return time.monotonic() - (self._created_at or time.monotonic())

    def _account(self, instance: InstanceInfo) -> None:
        lifetime = (datetime.now(UTC) - instance.created).total_seconds()
        if lifetime < 0 or lifetime > 10 * 365 * 86400:  # clock skew: fall back to our own timer
            lifetime = time.monotonic() - (self._created_at or time.monotonic())
        self.record.lifetime_s = round(lifetime, 1)
        self.record.billed_hours = billing.billed_hours(lifetime)
        self.record.cost_usd = round(billing.cost_usd(self.spec.plan, lifetime), 4)


def default_state_dir() -> Path:
    """Per-run keys and known_hosts live here (0700), never in the output dir or the upload."""
    import os

    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "juliafarm" / "runs"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _one_line(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return " ".join(text.split())


def render_args_from(overrides: dict[str, Any]) -> tuple[str, ...]:
    """Scene overrides as renderer flags, for the server (`{"num_steps": 64}` → --num-steps 64)."""
    args: list[str] = []
    for key, value in overrides.items():
        if value is None:
            continue
        args += [f"--{key.replace('_', '-')}", str(value)]
    return tuple(args)

