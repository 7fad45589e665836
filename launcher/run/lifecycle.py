"""One run's lifecycle for 1..N nodes, written once: create → boot → host key → ssh → lease →
bootstrap → sync → render → pull, and delete in `finally`, whatever happened.

A one-node run (launcher.run.single) and a Dask cluster (launcher.cluster.job) differ only in
how they render and pull; they subclass `Lifecycle` and fill in `render_and_pull`, `salvage`
and `stop_render`. Everything that touches money or safety is here and only here:

- signals become `Interrupted` (a BaseException nothing catches by accident); a later signal
  during cleanup is answered with what is still happening, never allowed to stop it;
- every create runs where an interrupt cannot abandon it unseen: a create that did not return
  cleanly has its label watched for a while (the API may record it a moment later) and what
  appears is deleted;
- output, hooks and record writes are best effort: none of them can skip or reorder a delete;
- "deleted" is recorded only when the API confirmed it (launcher.run.teardown); otherwise the
  record says "unconfirmed", the lease tokens and the firewall stay, and the run exits 4 with
  the one command that finishes the job;
- every instance is billed at its own region's price (Plan.in_region).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from launcher.errors import DeleteUnconfirmed, Interrupted, LauncherError, one_line
from launcher.estimate.model import plan_speed_factor
from launcher.run import teardown
from launcher.run.costguard import CostGuard
from launcher.run.detach import remember_record
from launcher.run.guards import RunFirewall, RunGuards
from launcher.run.hooks import BestEffort, Hooks
from launcher.run.record import STATE_RECORD, RunRecord
from launcher.run.remote import RemoteLayout, parse_progress, stream
from launcher.run.runlog import RunLog
from launcher.run.signals import RunSignals, signals_raise
from launcher.run.spec import (
    TAG,
    Host,
    JobSpec,
    default_state_dir,
    new_run_id,
    node_label,
    random_root_password,
    run_label,
    run_tag,
    utc_now_text,
)
from launcher.units import fmt_s
from provision import billing
from provision.cloud import Cloud, InstanceInfo, InstanceRequest
from provision.errors import CapacityError, PlanError, TokenError
from provision.plans import Plan

T = TypeVar("T")
CREATE_WAIT_S = 300.0  # an interrupted create is waited for this long before it is watched for
# The watchdog's own delete after a lease deadline, with room: a cost cap must hold through it.
WATCHDOG_DELETE_MARGIN_S = 180.0


@dataclass
class Node:
    """One instance of the run and what the later phases learn about it."""

    index: int  # from 1; node 1 is the run's first (and the Dask scheduler's)
    label: str
    instance: InstanceInfo | None = None
    host: Host | None = None
    private_ip: str = ""
    guards: RunGuards | None = None  # its host key sent ahead and its lease watchdog
    # The create did not return cleanly (interrupted, or an answer that proves nothing): the
    # API may still record it, so cleanup watches for its label.
    create_uncertain: bool = False
    create_done: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        """node-1, node-2, …: the Dask worker's name and the record's."""
        return f"node-{self.index}"


class Lifecycle:
    """Runs one spec on `nodes` instances; `run()` returns the record whatever happened and
    deletes every instance (confirmed) before it returns or raises."""

    needs_private_ip = False  # a cluster talks over the private network

    def __init__(self, spec: JobSpec, cloud: Cloud, hooks: Hooks | None = None, *,
                 nodes: int = 1, state_dir: Path | None = None, run_id: str | None = None,
                 label_grace_s: float = teardown.LABEL_GRACE_S) -> None:
        if nodes < 1:
            raise ValueError("a run needs at least one node")
        self.spec = spec
        self.cloud = cloud
        self.hooks: Hooks = BestEffort(hooks)
        self.run_id = run_id or new_run_id()
        self.label = run_label(self.run_id)
        self.run_tag = run_tag(self.run_id)
        self.state_dir = state_dir or default_state_dir() / self.run_id
        # Two copies: the user's, beside the output; and the state directory's, which
        # `launcher history` and `launcher cost` read wherever the output went.
        self.record_path = spec.output_dir / "runs" / f"{self.run_id}.json"
        self.label_grace_s = label_grace_s
        first_price = spec.plan.in_region(spec.regions[0]) if spec.regions else spec.plan
        self.record = RunRecord(
            run_id=self.run_id, started_at=utc_now_text(),
            scene={"path": str(spec.scene_path), **spec.scene_summary}, plan=spec.plan.alias,
            type_id=spec.plan.type_id, price_hourly_usd=first_price.price_hourly_usd,
            image=spec.image, instance_label=self.label, frames=spec.frames, user=spec.user,
            nodes=nodes, max_cost_usd=spec.max_cost_usd, output_dir=str(spec.output_dir),
            model_render_s=spec.model_render_s, upload_bytes=spec.upload_bytes,
            launcher_pid=os.getpid(), launcher_host=socket.gethostname())
        self.nodes = [Node(i, node_label(self.run_id, i, nodes)) for i in range(1, nodes + 1)]
        self.layout = RemoteLayout(PurePosixPath("/home") / spec.user)
        self.firewall = RunFirewall(cloud, self.run_id, self.record, self.hooks.message)
        self.keys: Any = None  # provision.keys.RunKeys, made with the first create
        self.detached = False
        self._lock = threading.RLock()
        self._created_at: float | None = None
        self._doing = "cleaning up"  # what cleanup is doing, for a second Ctrl-C
        self._signals: RunSignals | None = None
        self._log: RunLog | None = None

    # ------------------------------------------------------------------ for subclasses

    def requirements(self) -> Sequence[str] | None:
        """The nodes' venv requirements (None: the renderer's own)."""
        return None

    def render_and_pull(self) -> None:
        raise NotImplementedError

    def salvage(self) -> None:
        """After a failure, before the delete: save what the nodes finished (best effort)."""

    def stop_render(self) -> None:
        """Before the delete: let go of anything local that talks to the nodes."""

    # ------------------------------------------------------------------ bookkeeping

    @property
    def priced_plan(self) -> Plan:
        """The plan at the price of the region the run's instances live in."""
        region = self.record.region or (self.spec.regions[0] if self.spec.regions else "")
        return self.spec.plan.in_region(region)

    def lease_cap_s(self) -> float | None:
        """With --max-cost: the longest lease that still has the watchdog's delete land within
        the cap's billed hours (each node may spend 1/N of it); None without a cap."""
        cap = self.spec.max_cost_usd
        if cap is None:
            return None
        guard = CostGuard(self.priced_plan, cap / len(self.nodes))
        return guard.allowed_hours * 3600.0 - self.lifetime_s() - WATCHDOG_DELETE_MARGIN_S

    def lifetime_s(self) -> float:
        """Seconds since the first create was sent (this machine's clock)."""
        return time.monotonic() - (self._created_at or time.monotonic())

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
            self.save()

    @property
    def state_record_path(self) -> Path:
        return self.state_dir / STATE_RECORD

    def save(self, strict: bool = False) -> None:
        """Write the record (both copies); best effort once the run has started (a full disk
        must not keep an instance alive). The first write, before anything is rented, is
        strict."""
        for path in (self.record_path, self.state_record_path):
            try:
                with self._lock:
                    self.record.save(path)
            except Exception as exc:  # noqa: BLE001 - reported, never in the way of a delete
                if strict:
                    raise
                self.hooks.message(f"could not write the run record {path}: {one_line(exc)}")

    @property
    def log(self) -> RunLog:
        """The render output kept here (state_dir may be set after construction: tests)."""
        if self._log is None or self._log.path.parent != self.state_dir:
            self._log = RunLog(self.state_dir)
        return self._log

    def warn(self, text: str) -> None:
        self.log.write(f"warning: {text}")
        with self._lock:
            self.record.warnings.append(text)
        self.hooks.message(f"warning: {text}")
        self.save()

    def parallel(self, what: str, fn: Callable[[Node], T], nodes: Sequence[Node],
                 wait_s: float | None = None) -> list[T]:
        """fn on every node at once, in node order; once all are done, the first node's failure
        is raised (each failure is told). An interrupt stops the wait at once, unless `wait_s`
        is given: then the threads get that long to finish first (creates: their answer decides
        what cleanup must look for). Daemon threads: one stuck on a node already deleted cannot
        hold the launcher's exit."""
        results: dict[int, T] = {}
        errors: dict[int, BaseException] = {}

        def work(i: int, node: Node) -> None:
            try:
                results[i] = fn(node)
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                errors[i] = exc

        threads = [threading.Thread(target=work, args=(i, n), daemon=True,
                                    name=f"juliafarm-{what}-{n.name}")
                   for i, n in enumerate(nodes)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except BaseException:
            if wait_s is not None:
                self._doing = f"waiting for the {what} requests to answer"
                end = time.monotonic() + wait_s
                for t in threads:
                    t.join(max(0.0, end - time.monotonic()))
            raise
        for i in sorted(errors):
            if len(nodes) > 1:
                self.hooks.message(f"{nodes[i].name}: {what} failed: {one_line(errors[i])}")
        if errors:
            raise errors[min(errors)]
        return [results[i] for i in range(len(nodes))]

    # ------------------------------------------------------------------ the run

    def run(self) -> RunRecord:
        """The whole run. Raises after cleanup; the record is saved always."""
        return self.lifecycle(self._whole_run)

    def adopt(self, record: RunRecord, record_path: Path, keys: Any) -> None:
        """`launcher attach`: carry on with a saved run's record and keys instead of new ones."""
        self.record = record
        self.record_path = record_path
        self.firewall.record = record
        self.keys = keys
        record.launcher_pid, record.launcher_host = os.getpid(), socket.gethostname()

    def _whole_run(self) -> None:
        self.create_all()
        self.set_up()
        self.render_and_pull()

    def lifecycle(self, body: Callable[[], None]) -> RunRecord:
        """`body` with signals raising, then (unless it detached) the cleanup that deletes."""
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.save(strict=True)  # nothing is rented yet: a record that cannot be written stops it
        self.hooks.watch(self.status_line)
        error: BaseException | None = None
        unconfirmed: DeleteUnconfirmed | None = None
        with signals_raise(lambda: self._doing) as sig:
            self._signals = sig
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - recorded, cleaned up, re-raised
                error = exc
                self._after_failure(exc)
            finally:
                if not self.detached:
                    unconfirmed = self._cleanup_shielded(sig)
        if not self.detached:
            self.record.finished_at = utc_now_text()
        if error is None and not self.detached:
            self.record.status = "completed"
            self._learn()
        self.save()
        if unconfirmed is not None:
            raise unconfirmed from error
        if error is not None:
            raise error
        return self.record

    def _learn(self) -> None:
        """A completed one-node run: the plan's measured speed, for later estimates."""
        render = self.record.phases_s.get("render")
        if len(self.nodes) == 1 and self.record.model_render_s and render:
            factor = plan_speed_factor(self.record.model_render_s, render)
            self.record.plan_speed_factor = round(factor, 4) if factor else None

    def _after_failure(self, exc: BaseException) -> None:
        self.record.status = "interrupted" if isinstance(exc, Interrupted | KeyboardInterrupt) \
            else "failed"
        self.record.error = one_line(exc)
        self.save()
        tail = self.log.tail(5)
        if tail:
            self.hooks.message(f"the render's last lines ({self.log.path}, also `launcher logs "
                               f"{self.run_id}`):")
            for line in tail:
                self.hooks.message(f"  | {line}")
        if any(n.host is not None for n in self.nodes):
            self._doing = "saving the finished segments (up to 2 min), then deleting"
            try:
                self.salvage()
            except Exception as exc2:  # noqa: BLE001 - salvage is best effort
                self.record.lost.append(f"finished segments could not be saved: "
                                        f"{one_line(exc2)}")

    def _cleanup_shielded(self, sig: RunSignals) -> DeleteUnconfirmed | None:
        """Cleanup with every signal answered instead of raised. A signal that lands in the
        instant before the shield is up raised before cleanup did anything: start it again."""
        for _ in range(3):
            try:
                sig.shielded = True
                return self._cleanup()
            except Interrupted:
                continue
        return self._cleanup()

    # ------------------------------------------------------------------ create

    def create_all(self) -> None:
        """Every node at once: a one-node run with failover over its regions, a cluster in the
        first region offering the plan (a private network does not span regions)."""
        from provision.keys import RunKeys

        spec = self.spec
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.keys = RunKeys.create(self.state_dir)
        remember_record(self.state_dir, self.record_path)  # `launcher attach RUN` finds it
        with self.phase("create"):
            # The labels and the tag are in the record before any request, so cleanup and
            # `launcher cleanup` find an instance whose create response never arrived.
            self.save()
            # Attached to every node at creation: never a moment without it.
            firewall_id = self.firewall.create(spec.guards.ssh_from)
            self._created_at = time.monotonic()

            def create(node: Node) -> InstanceInfo:
                request = InstanceRequest(
                    label=node.label, type_id=spec.plan.type_id, region=spec.regions[0],
                    image=spec.image, root_pass=random_root_password(),
                    authorized_keys=(self.keys.public_line,),
                    tags=(TAG, self.run_tag), private_ip=self.needs_private_ip,
                    firewall_id=firewall_id)
                request = self._guards_for(node).prepare(request)
                node.create_uncertain = True
                try:
                    if len(self.nodes) == 1:
                        info = self.cloud.create_with_failover(request, list(spec.regions))
                    else:
                        info = self.cloud.create(request)
                except (CapacityError, TokenError, PlanError):
                    node.create_uncertain = False  # refused outright: nothing was made
                    raise
                except Exception as exc:
                    node.create_uncertain = getattr(exc, "ambiguous", True)
                    raise
                finally:
                    node.create_done.set()
                node.create_uncertain = False
                self._created(node, info)
                return info

            self.parallel("create", create, self.nodes, wait_s=CREATE_WAIT_S)
        first = self.nodes[0].instance
        assert first is not None
        self.record.instance_id = first.id
        self.record.region = first.region
        self.record.price_hourly_usd = self.priced_plan.price_hourly_usd
        self.save()

    def _created(self, node: Node, info: InstanceInfo) -> None:
        with self._lock:
            node.instance = info
            self.record.instances.append({"node": node.name, "id": info.id, "label": info.label,
                                          "region": info.region, "deleted": False})
            if node.index == 1:
                self.record.instance_id = info.id
                self.record.region = info.region
        self.save()
        self.hooks.created(info)
        price = self.spec.plan.in_region(info.region).price_hourly_usd
        self.hooks.message(f"{self._prefix(node)}created instance {info.id} ({info.type_id}) "
                           f"in {info.region} at {billing.fmt_hourly(price)}/h")

    def _guards_for(self, node: Node) -> RunGuards:
        """Each node its own host key and lease watchdog (it deletes its own instance); the
        run's one cloud firewall is `self.firewall`."""
        spec = self.spec
        own = RunRecord(run_id=self.run_id, started_at=self.record.started_at, scene={},
                        plan=spec.plan.alias, type_id=spec.plan.type_id,
                        price_hourly_usd=self.record.price_hourly_usd)
        prefix = self._prefix(node)
        node.guards = RunGuards(replace(spec.guards, ssh_from=None), self.cloud, self.run_id,
                                own, lambda text: self.hooks.message(f"{prefix}{text}"))
        return node.guards

    def _prefix(self, node: Node) -> str:
        return f"{node.name}: " if len(self.nodes) > 1 else ""

    # ------------------------------------------------------------------ set up

    def set_up(self) -> None:
        """boot → (firewall between nodes) → host key and ssh → lease → bootstrap → sync."""
        with self.phase("boot"):
            self.parallel("boot", self._boot, self.nodes)
        self.record.address = self.nodes[0].host.address if self.nodes[0].host else None
        if self.needs_private_ip and self.record.firewall_id is not None:
            with self.phase("firewall"):
                self.open_firewall_between_nodes()
        with self.phase("ssh"):
            self.parallel("ssh", self.wait_ssh, self.nodes)
        first = self.nodes[0].guards
        self.record.host_key = (first.record.host_key if first else None) \
            or getattr(self.keys, "host_key_method", None)
        if self.spec.guards.lease_s is not None:
            with self.phase("lease"):
                self.parallel("lease", self.start_lease, self.nodes)
        requirements = self.requirements()
        with self.phase("bootstrap"):
            self.parallel("bootstrap", lambda n: self.bootstrap(n, requirements), self.nodes)
        with self.phase("sync"):
            self.parallel("sync", self.sync, self.nodes)

    def open_firewall_between_nodes(self) -> None:
        """Overridden by the cluster (it knows its ports)."""

    def _boot(self, node: Node) -> None:
        assert node.instance is not None
        info = self.cloud.wait_running(node.instance.id, timeout_s=self.spec.ready_timeout_s,
                                       on_tick=lambda s: self._waiting(node, "running", s))
        if not info.ipv4:
            raise LauncherError(f"{self._prefix(node)}instance {info.id} has no public IPv4 "
                                "address")
        if self.needs_private_ip:
            if not info.private_ipv4:
                raise LauncherError(f"{node.name}: instance {info.id} has no private IPv4 "
                                    "address (the nodes talk over the private network)")
            node.private_ip = info.private_ipv4
        node.host = Host(info, info.ipv4, self.keys, self.layout)

    def _waiting(self, node: Node, what: str, elapsed_s: float) -> None:
        if int(elapsed_s) % 15 < 3:  # a line every ~15 s, not every poll
            self.hooks.message(f"{self._prefix(node)}waiting for {what}: {elapsed_s:.0f} s "
                               f"({self.status_line()})")

    def status_line(self) -> str:
        """What the run has cost so far at its region's price, and when its lease ends."""
        if self._created_at is None:
            return ""
        n = len([x for x in self.nodes if x.instance is not None]) or 1
        spent = n * billing.cost_usd(self.priced_plan, self.lifetime_s())
        hourly = billing.fmt_hourly(self.priced_plan.price_hourly_usd)
        text = f"billed so far ${spent:.2f} at {hourly}/h{' per node' if n > 1 else ''}"
        deadline = next((g.lease.deadline for g in (x.guards for x in self.nodes)
                         if g is not None and g.lease is not None and g.lease.deadline), None)
        if deadline is not None:
            left = (deadline - datetime.now(UTC)).total_seconds()
            text += f"; lease ends in {fmt_s(max(0.0, left), 0)} unless extended"
        return text

    def wait_ssh(self, node: Node) -> None:
        from provision import ssh

        assert node.host is not None
        if node.guards is not None:
            node.guards.before_first_contact(node.host.address, self.keys)
        ssh.wait_for_ssh(node.host.address, "root", self.keys,
                         timeout_s=self.spec.ssh_timeout_s,
                         on_tick=lambda s: self._waiting(node, "ssh", s))

    def start_lease(self, node: Node) -> None:
        assert node.host is not None and node.instance is not None and node.guards is not None
        node.guards.start_lease(node.instance.id, node.host.address, self.keys, self.spec.user,
                                at_most_s=self.lease_cap_s)
        self.note_guards(node)

    def note_guards(self, node: Node) -> None:
        """What the node's guards did, on its line of the run record (never a secret); node 1's
        also at the top (what `launcher attach` reads)."""
        if node.guards is None or node.instance is None:
            return
        own = node.guards.record
        with self._lock:
            for entry in self.record.instances:
                if entry["id"] == node.instance.id:
                    entry.update(host_key_source=own.host_key_source, lease=own.lease)
            if node.index == 1:
                self.record.host_key_source = own.host_key_source
                self.record.lease = own.lease
        self.save()

    def bootstrap(self, node: Node, requirements: Sequence[str] | None) -> None:
        from provision import bootstrap, ssh

        assert node.host is not None
        root = ssh.connect(node.host.address, "root", self.keys)
        prefix = self._prefix(node)
        try:
            bootstrap.bootstrap(
                root, self.spec.user, self.keys, deps=self.spec.deps,
                requirements=requirements,
                on_step=lambda name, s, changed: self.hooks.message(
                    f"  {prefix}{name}: {'changed' if changed else 'ok'} ({s:.1f}s)"))
        finally:
            root.close()
        if node.guards is not None:
            node.guards.run_user_ready(self.spec.user)

    def sync(self, node: Node) -> None:
        from provision import sync

        spec, host = self.spec, node.host
        assert host is not None
        sync.push(spec.project_dir, host.address, spec.user, self.keys,
                  str(self.layout.project), spec.exclude_file)
        sync.push_file(spec.scene_path, host.address, spec.user, self.keys,
                       str(self.layout.job / "scene.toml"))

    # ------------------------------------------------------------------ render helpers

    def follow_remote(self, node: Node, command: str, timeout_s: float | None,
                      on_other: Callable[[str], None] | None = None) -> tuple[int, str]:
        """Stream `command` (a render, or the log of a detached one) as the run user on `node`:
        progress lines go to the record and the hooks, any other line to `on_other`. Returns
        the exit code and the last non-empty line (for the error message)."""
        from provision import ssh

        assert node.host is not None
        argv = [*ssh.ssh_command(self.keys, self.spec.user, node.host.address), command]
        self.record.status = "rendering"
        self.save()
        last = ["no output"]

        def on_line(line: str) -> None:
            if line.strip():
                last[0] = line.strip()
            self.log.write(line)
            self.hooks.render_line(line)
            p = parse_progress(line)
            if p is not None:
                self.record.frames_rendered = p.frames_done
                self.hooks.progress(p.frames_done, p.frames_total, p.fps)
            elif on_other is not None:
                on_other(line)

        timeout = None if timeout_s is None else max(0.0, timeout_s)
        return stream(argv, on_line, timeout_s=timeout), last[0]

    # ------------------------------------------------------------------ cleanup

    def _cleanup(self) -> DeleteUnconfirmed | None:
        """Delete every instance of the run (confirmed), then revoke the lease tokens and delete
        the firewall; if any delete is unconfirmed, keep both and say how to finish."""
        self._doing = "stopping the render"
        try:
            self.stop_render()
        except Exception as exc:  # noqa: BLE001 - the delete comes next whatever happened
            self.hooks.message(f"could not stop the render cleanly: {one_line(exc)}")
        for node in self.nodes:
            self.hooks.before_delete(node.host)
        uncertain = []
        for node in self.nodes:
            if node.instance is None and node.create_uncertain:
                self._doing = f"waiting for the create of {node.label} to answer"
                node.create_done.wait(CREATE_WAIT_S)
                if node.instance is None:  # it may have answered after all
                    uncertain.append(node.label)
        known = {n.instance.id: n.instance for n in self.nodes if n.instance is not None}
        t0 = time.monotonic()
        self.hooks.phase_started("delete")

        def status(text: str) -> None:
            self._doing = text
            self.hooks.message(text)

        outcome = teardown.tear_down(self.cloud, self.run_tag, known, uncertain,
                                     label_grace_s=self.label_grace_s, status=status)
        self.record.phases_s["delete"] = round(time.monotonic() - t0, 3)
        self.hooks.phase_finished("delete", time.monotonic() - t0)
        self._doing = "recording the bill and revoking the lease tokens"
        self._account(outcome)
        for node in self.nodes:
            if node.guards is None:
                continue
            deleted = node.instance is None or outcome.deleted(node.instance.id)
            try:
                node.guards.finish(deleted and outcome.confirmed)
            except Exception as exc:  # noqa: BLE001 - tokens expire by themselves
                self.record.lost.append(f"{node.name}: lease token: {one_line(exc)}")
            self.note_guards(node)
        if outcome.confirmed:
            self.record.deleted = True
            self.firewall.delete()
            self.save()
            return None
        self.record.deleted = "unconfirmed"
        problems = [*outcome.blind_spots,
                    *(f"instance {i}: {why}" for i, why in outcome.errors.items())]
        self.record.lost.extend(problems)
        self.save()
        left = sorted(outcome.errors)
        what = (f"instance(s) {', '.join(map(str, left))} may still exist and cost money"
                if left else "the run's instances could not all be looked up, so one may "
                "still exist and cost money")
        return DeleteUnconfirmed(
            f"{what} ({problems[0]}); their lease tokens and firewall were kept. Finish the "
            f"job with: launcher down {self.run_id} --yes")

    def _account(self, outcome: teardown.Teardown) -> None:
        """Each instance billed under Linode's rule at its region's price; the record's totals
        are node-hours and dollars over all of them."""
        own = self.lifetime_s()
        total_cost, total_hours, longest = 0.0, 0, 0.0
        entries = {e["id"]: e for e in self.record.instances}
        for iid, info in sorted(outcome.instances.items()):
            entry = entries.get(iid)
            if entry is None:  # found by tag or label: a create whose answer never came
                entry = {"node": _node_of(info.label, self.label), "id": iid,
                         "label": info.label, "region": info.region}
                self.record.instances.append(entry)
                if self.record.instance_id is None:
                    self.record.instance_id = iid
                    self.record.region = info.region
            lifetime = (datetime.now(UTC) - info.created).total_seconds()
            if lifetime < 0 or lifetime > 10 * 365 * 86400:  # clock skew: our own timer
                lifetime = own
            plan = self.spec.plan.in_region(info.region)
            cost = billing.cost_usd(plan, lifetime)
            deleted = outcome.deleted(iid)
            entry.update(deleted=deleted, lifetime_s=round(lifetime, 1),
                         billed_hours=billing.billed_hours(lifetime), cost_usd=round(cost, 4),
                         price_hourly_usd=plan.price_hourly_usd)
            total_cost += cost
            total_hours += billing.billed_hours(lifetime)
            longest = max(longest, lifetime)
            state = "deleted" if deleted else "NOT confirmed deleted:"
            self.hooks.message(f"{entry['node'] + ': ' if len(self.nodes) > 1 else ''}{state} "
                               f"instance {iid}; billed {entry['billed_hours']} h x "
                               f"{billing.fmt_hourly(plan.price_hourly_usd)} = ${cost:.2f}")
        self.record.price_hourly_usd = self.priced_plan.price_hourly_usd
        self.record.lifetime_s = round(longest, 1)
        self.record.billed_hours = total_hours  # node-hours: every node bills its own hours
        self.record.cost_usd = round(total_cost, 4)
        self.save()


def _node_of(label: str, run_label_: str) -> str:
    if label == run_label_:
        return "node-1"
    suffix = label[len(run_label_) + 1:] if label.startswith(run_label_ + "-") else ""
    return f"node-{suffix}" if suffix.isdigit() else label
