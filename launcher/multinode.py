"""One run on N Linodes: create and set up the nodes in parallel, render on Dask, delete them all.

The single-node steps are reused as they are (provision.bootstrap, provision.sync, the wheelhouse);
what is added is the parallelism, the cluster (launcher.cluster: ufw between the nodes' private
addresses, a scheduler on node 1, a worker per node, the launcher's client through an SSH tunnel),
the move of the scheduler to another node when node 1 is lost (launcher.failover), the per-node
pull and the local join. As in launcher.job, every node is deleted in the `finally`,
in parallel, each delete confirmed; signals become exceptions so that `finally` always runs.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from launcher import cluster, failover
from launcher.cluster import ClusterError, ClusterRun, DaskPorts, NodeSegment, WorkerSizing
from launcher.cluster_estimate import ClusterEstimate, Suggestion
from launcher.costguard import DEFAULT_STOP_MARGIN_S, CostGuard
from launcher.errors import Interrupted, LauncherError
from launcher.guards import RunGuards
from launcher.job import (
    TAG,
    Hooks,
    Host,
    JobSpec,
    _now,
    _one_line,
    default_state_dir,
    new_run_id,
    random_root_password,
)
from launcher.record import RunRecord
from launcher.remote import RemoteLayout
from launcher.signals import signals_deferred, signals_raise
from provision import billing
from provision.cloud import Cloud, InstanceInfo, InstanceRequest
from provision.errors import DeleteError, ProvisionError
from provision.plans import Plan
from renderer.scene import Overrides, Scene
from renderer.segments import Segment, default_segment_frames, plan_segments

T = TypeVar("T")
# The launcher's client and the nodes' scheduler and workers must speak the same protocol: the
# nodes get exactly the versions installed here (Dask warns about mismatches of these).
SAME_AS_LAUNCHER = ("dask", "distributed", "cloudpickle", "msgpack", "tornado", "toolz")
REMOTE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ClusterSpec:
    """A multi-node run: the single-node spec plus what the cluster needs."""

    job: JobSpec
    nodes: int
    scene_toml: str            # the scene as text: every task parses it (with the overrides)
    overrides: Overrides
    segment_frames: int        # the tasks: consecutive frames, one MP4 each
    tasks_per_node: int | None = None  # None: cluster.size_workers decides from the cores
    ports: DaskPorts = DaskPorts()
    worker_ttl_s: float = 60.0          # a silent worker (node gone) is dropped after this
    start_timeout_s: float = 180.0      # scheduler, tunnel and every worker up
    no_workers_timeout_s: float = 120.0
    requirements: tuple[str, ...] | None = None  # the nodes' venv; None: node_requirements()
    cost_stop_margin_s: float = DEFAULT_STOP_MARGIN_S  # --max-cost: stop this long before the cap
    # The scheduler's node is watched during the render (launcher.failover): the API every
    # interval, and an SSH probe of the scheduler that may miss this many times in a row.
    head_check_interval_s: float = 5.0
    head_probe_misses: int = 3
    head_probe_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError("a cluster run needs at least 2 nodes (1 node is launcher.job)")


def cluster_spec(job: JobSpec, scene: Scene, overrides: Overrides, nodes: int) -> ClusterSpec:
    """The cluster spec for a checked single-node spec (segments as long as a local render's)."""
    return ClusterSpec(job=job, nodes=nodes, scene_toml=job.scene_path.read_text(encoding="utf-8"),
                       overrides=overrides, segment_frames=default_segment_frames(scene))


def require_dask() -> None:
    """Before anything is rented: the launcher drives the cluster with a dask Client."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ClusterError("--nodes needs dask distributed on this machine: "
                           "pip install 'juliafarm[cluster]'") from None


def node_requirements() -> list[str]:
    """A node's venv: the renderer's requirements, the [cluster] extra, and the Dask packages
    pinned to this machine's versions."""
    from provision import wheelhouse

    reqs = wheelhouse.project_requirements(extras=("cluster",))
    for name in SAME_AS_LAUNCHER:
        try:
            reqs.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return sorted(set(reqs))


# ----------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class NodesEstimate:
    chosen: ClusterEstimate
    suggestion: Suggestion
    plan: str


def estimate(scene: Scene, plan: Plan, output_dir: Path | None, upload_bytes: int | None,
             nodes: int) -> NodesEstimate:
    """The N-node time and cost from the one-node estimate of the same plan (launcher.estimate),
    its render spread evenly over the segments; and the node count cluster_estimate suggests."""
    from launcher.cluster_estimate import estimate_cluster, even_segments, suggest_nodes
    from launcher.estimate_cli import plan_estimate

    row = plan_estimate(scene, plan, output_dir, upload_bytes)
    segments = plan_segments(scene.frames, default_segment_frames(scene))
    work = even_segments(row.render_s, len(segments))
    kw: dict[str, Any] = dict(node_setup_s=row.setup_s,
                              tasks_per_node=cluster.size_workers(plan.vcpus).tasks,
                              finish_s=row.download_s, delete_s=row.lifetime_s - row.total_s)
    chosen = estimate_cluster(work, nodes, plan, **kw)
    suggestion = suggest_nodes(work, plan, max_nodes=max(8, nodes), **kw)
    return NodesEstimate(chosen, suggestion, plan.alias)


def estimate_lines(e: NodesEstimate) -> list[str]:
    from launcher.console import fmt_s

    c = e.chosen
    lines = [
        f"estimate on {c.nodes} x {e.plan}: setup ~{fmt_s(c.setup_s)} (nodes in parallel), "
        f"render ~{fmt_s(c.render_s)}, total ~{fmt_s(c.total_s)}, {c.segments} segments split "
        f"{'/'.join(map(str, c.segments_per_node))}, speedup {c.speedup:.2f}x "
        f"(efficiency {c.efficiency:.0%}); every node billed "
        f"{billing.billed_hours(c.node_lifetime_s)} h = ${c.cost_usd:.2f} in all"]
    if e.suggestion.nodes != c.nodes:
        lines.append(f"suggested: --nodes {e.suggestion.nodes} ({e.suggestion.reason})")
    return lines


def nodes_table_lines(e: NodesEstimate) -> list[str]:
    """`launcher estimate --nodes N`: the plan on 1..max(8, N) nodes; N and the suggestion
    marked."""
    c = e.chosen
    lines = [f"{e.plan} on several nodes ({c.segments} segments, {c.tasks_per_node} at once per "
             "node; every node billed for the whole run):"]
    for row in e.suggestion.table:
        mark = ("<- suggested" if row.nodes == e.suggestion.nodes else "") + (
            " <- --nodes" if row.nodes == c.nodes else "")
        lines.append(f"  {row.row()}  {mark.strip()}".rstrip())
    lines.append(f"suggested: --nodes {e.suggestion.nodes} ({e.suggestion.reason})")
    return lines


# ----------------------------------------------------------------------------- the run


@dataclass
class Node:
    """One instance of the run and what the later phases learn about it."""

    index: int  # from 1; node 1 runs the scheduler
    label: str
    instance: InstanceInfo | None = None
    host: Host | None = None
    private_ip: str = ""
    guards: RunGuards | None = None  # its host key sent ahead and its lease watchdog

    @property
    def name(self) -> str:
        """The Dask worker's name: how a finished segment says where its file lies."""
        return f"node-{self.index}"


class ClusterJob:
    """Runs one ClusterSpec; `run()` returns the record whatever happened and deletes every node."""

    def __init__(self, spec: ClusterSpec, cloud: Cloud, hooks: Hooks | None = None,
                 state_dir: Path | None = None, run_id: str | None = None) -> None:
        self.spec = spec
        self.cloud = cloud
        self.hooks = hooks or Hooks()
        self.run_id = run_id or new_run_id()
        self.label = f"juliafarm-{self.run_id}"
        self.run_tag = f"juliafarm-run-{self.run_id}"
        self.state_dir = state_dir or default_state_dir() / self.run_id
        job = spec.job
        self.record_path = job.output_dir / "runs" / f"{self.run_id}.json"
        self.record = RunRecord(
            run_id=self.run_id, started_at=_now(),
            scene={"path": str(job.scene_path), **job.scene_summary}, plan=job.plan.alias,
            type_id=job.plan.type_id, price_hourly_usd=job.plan.price_hourly_usd,
            image=job.image, instance_label=self.label, frames=job.frames, nodes=spec.nodes)
        self.nodes = [Node(i, f"{self.label}-{i}") for i in range(1, spec.nodes + 1)]
        self.layout = RemoteLayout(PurePosixPath("/home") / job.user)
        self.sizing: WorkerSizing | None = None
        self.result: ClusterRun | None = None
        self._lock = threading.RLock()
        self._keys: Any = None
        self._created_at: float | None = None
        self._client: Any = None
        self._tunnel: subprocess.Popen[bytes] | None = None
        self._head = self.nodes[0]  # the node running the Dask scheduler; another after failover
        self._lost: set[str] = set()  # names of the nodes lost (with the files they held)
        self.finished: dict[int, NodeSegment] = {}  # segment index -> where its file lies

    # ------------------------------------------------------------------ remote paths

    @property
    def segments_dir(self) -> PurePosixPath:
        return self.layout.job / "segments"

    @property
    def frames_dir(self) -> PurePosixPath:
        return self.layout.output / "frames"

    @property
    def dask_dir(self) -> PurePosixPath:
        return self.layout.root / "dask"

    # ------------------------------------------------------------------ bookkeeping

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
        with self._lock:
            self.record.save(self.record_path)

    def _warn(self, text: str) -> None:
        with self._lock:
            self.record.warnings.append(text)
        self.hooks.message(f"warning: {text}")
        self._save()

    def _parallel(self, what: str, fn: Callable[[Node], T], nodes: Sequence[Node],
                  wait_all: bool = False) -> list[T]:
        """fn on every node at once, in node order; once all are done, the first node's failure
        is raised (each failure is told). An interrupt stops the wait at once, except with
        wait_all (creates: every instance made must be known before the deletes look for them).
        Daemon threads: one stuck on a node already deleted cannot hold the launcher's exit."""
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
            if wait_all:
                with signals_deferred():
                    for t in threads:
                        t.join()
            raise
        for i in sorted(errors):
            self.hooks.message(f"{nodes[i].name}: {what} failed: {_one_line(errors[i])}")
        if errors:
            raise errors[min(errors)]
        return [results[i] for i in range(len(nodes))]

    def _ssh_run(self, node: Node, command: str, what: str,
                 timeout_s: float = REMOTE_TIMEOUT_S) -> str:
        """A command as the run's user on a node; LauncherError (with its last line) if it fails."""
        from provision import ssh

        assert node.host is not None
        argv = [*ssh.ssh_command(self._keys, self.spec.job.user, node.host.address), command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            raise LauncherError(f"{node.name}: {what} took over {timeout_s:.0f} s") from None
        if done.returncode != 0:
            lines = [x for x in (done.stderr + done.stdout).splitlines() if x.strip()]
            raise LauncherError(f"{node.name}: {what} failed (exit {done.returncode}): "
                                f"{lines[-1] if lines else 'no output'}")
        return done.stdout

    # ------------------------------------------------------------------ lifecycle

    def run(self) -> RunRecord:
        """The whole run. Raises after cleanup; the record is saved always."""
        self._save()
        error: BaseException | None = None
        try:
            with signals_raise():
                try:
                    self._create_all()
                    self._after_create()
                except BaseException as exc:  # noqa: BLE001 - recorded, cleaned up, re-raised
                    error = exc
                    self._record_failure(exc)
                    self._salvage()
                finally:
                    with signals_deferred() as late:
                        self._stop_cluster()
                        self._delete_all()
                        if late:
                            self.hooks.message("signal received during cleanup: finished deleting")
        finally:
            self.record.finished_at = _now()
            self._save()
        if error is not None:
            raise error
        self.record.status = "completed"
        self._save()
        return self.record

    def _create_all(self) -> None:
        """Every node at once, in the first region offering the plan (a private network does not
        span regions, so the nodes are never spread over the fallbacks)."""
        from provision.keys import RunKeys

        job = self.spec.job
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._keys = RunKeys.create(self.state_dir)
        region = job.regions[0]

        firewall_id: int | None = None  # set below, before the first create

        def create(node: Node) -> InstanceInfo:
            request = InstanceRequest(
                label=node.label, type_id=job.plan.type_id, region=region, image=job.image,
                root_pass=random_root_password(), authorized_keys=(self._keys.public_line,),
                tags=(TAG, self.run_tag), private_ip=True, firewall_id=firewall_id)
            request = self._guards_for(node).prepare(request)
            info = self.cloud.create(request)
            with self._lock:
                node.instance = info
                self.record.instances.append({"node": node.name, "id": info.id,
                                              "label": info.label, "region": info.region,
                                              "deleted": False})
            self._save()
            self.hooks.created(info)
            self.hooks.message(f"{node.name}: created instance {info.id} ({info.type_id}) in "
                               f"{info.region}")
            return info

        with self.phase("create"):
            self._save()  # labels and tag are known before any request: cleanup can find them
            # Attached to every node at creation: no moment without it.
            firewall_id = self._create_firewall()
            self._created_at = time.monotonic()
            self._parallel("create", create, self.nodes, wait_all=True)
        first = self.nodes[0].instance
        assert first is not None
        self.record.instance_id = first.id
        self.record.region = first.region
        self._save()

    def _after_create(self) -> None:
        with self.phase("boot"):
            self._parallel("boot", self._boot, self.nodes)
        if self.record.firewall_id is not None:
            with self.phase("firewall"):
                self._open_firewall_between_nodes()
        with self.phase("ssh"):
            self._parallel("ssh", self._wait_ssh, self.nodes)
        self.record.host_key = (self.nodes[0].guards.record.host_key if self.nodes[0].guards
                                else None) or getattr(self._keys, "host_key_method", None)
        if self.spec.job.guards.lease_s is not None:
            with self.phase("lease"):
                self._parallel("lease", self._start_lease, self.nodes)
        requirements = self.spec.requirements or tuple(node_requirements())
        with self.phase("bootstrap"):
            self._parallel("bootstrap", lambda n: self._bootstrap(n, requirements), self.nodes)
        with self.phase("sync"):
            self._parallel("sync", self._sync, self.nodes)
        with self.phase("cluster"):
            self._start_cluster()
        with self.phase("render"):
            self.result = self._render()
        self.record.status = "pulling"
        with self.phase("pull"):
            self._pull(self.result)

    def _boot(self, node: Node) -> None:
        assert node.instance is not None
        info = self.cloud.wait_running(node.instance.id, timeout_s=self.spec.job.ready_timeout_s,
                                       on_tick=None)
        if not info.ipv4:
            raise LauncherError(f"{node.name}: instance {info.id} has no public IPv4 address")
        if not info.private_ipv4:
            raise LauncherError(f"{node.name}: instance {info.id} has no private IPv4 address "
                                "(the nodes talk over the private network)")
        node.private_ip = cluster.private_ipv4(info.private_ipv4)
        node.host = Host(info, info.ipv4, self._keys, self.layout)

    # ------------------------------------------------------------------ cloud firewall

    def _create_firewall(self) -> int | None:
        """One Cloud Firewall for the whole run, made before any node and attached to each at
        creation: SSH from the launcher only. The Dask ports open once the nodes' private
        addresses are known (_open_firewall_between_nodes)."""
        from provision import firewall

        cidrs = self.spec.job.guards.ssh_from
        if cidrs is None:
            return None
        fid = firewall.create_run_firewall(self.cloud, self.run_id, cidrs)
        self.record.firewall_id = fid
        self.record.ssh_from = list(cidrs)
        self._save()
        self.hooks.message(f"cloud firewall {fid}: inbound SSH only from {', '.join(cidrs)}")
        return fid

    def _open_firewall_between_nodes(self) -> None:
        """The Dask ports, from exactly the run's nodes' private addresses (the rule set is
        replaced in one request; ufw on each node says the same again)."""
        from provision import firewall

        fid, cidrs = self.record.firewall_id, self.spec.job.guards.ssh_from
        assert fid is not None and cidrs is not None
        peers = [n.private_ip for n in self.nodes]
        ports = self.spec.ports.span.replace(":", "-")  # ufw's range syntax → the API's
        firewall.update_rules(self.cloud, fid, firewall.cluster_rules(cidrs, peers, ports))
        self.hooks.message(f"cloud firewall {fid}: Dask ports {ports} open between "
                           f"{', '.join(peers)} only")

    def _delete_firewall(self) -> None:
        """After every node's delete is confirmed (never before: it guards them till then)."""
        from provision import firewall

        fid = self.record.firewall_id
        if fid is None or self.record.firewall_deleted:
            return
        try:
            firewall.delete_firewall(self.cloud, fid)
            self.record.firewall_deleted = True
        except ProvisionError as exc:
            text = f"cloud firewall {fid} not deleted (`launcher cleanup` removes it): {exc}"
            self.record.lost.append(text)
            self.hooks.message(text)
        self._save()

    def _guards_for(self, node: Node) -> RunGuards:
        """Each node gets its own host key and its own lease watchdog (it deletes its own
        instance); the run's one cloud firewall is made by the ClusterJob itself."""
        job = self.spec.job
        own = RunRecord(run_id=self.run_id, started_at=self.record.started_at, scene={},
                        plan=job.plan.alias, type_id=job.plan.type_id,
                        price_hourly_usd=job.plan.price_hourly_usd)
        node.guards = RunGuards(replace(job.guards, ssh_from=None), self.cloud, self.run_id,
                                own, lambda text: self.hooks.message(f"{node.name}: {text}"))
        return node.guards

    def _start_lease(self, node: Node) -> None:
        assert node.host is not None and node.instance is not None and node.guards is not None
        node.guards.start_lease(node.instance.id, node.host.address, self._keys,
                                self.spec.job.user)
        self._note_guards(node)

    def _note_guards(self, node: Node) -> None:
        """What the node's guards did, on its line of the run record (never a secret)."""
        if node.guards is None or node.instance is None:
            return
        own = node.guards.record
        with self._lock:
            for entry in self.record.instances:
                if entry["id"] == node.instance.id:
                    entry.update(host_key_source=own.host_key_source, lease=own.lease)
            self.record.host_key_source = own.host_key_source
        self._save()

    def _wait_ssh(self, node: Node) -> None:
        from provision import ssh

        assert node.host is not None
        if node.guards is not None:
            node.guards.before_first_contact(node.host.address, self._keys)
        ssh.wait_for_ssh(node.host.address, "root", self._keys,
                         timeout_s=self.spec.job.ssh_timeout_s, on_tick=None)

    def _bootstrap(self, node: Node, requirements: Sequence[str]) -> None:
        from provision import bootstrap, ssh

        assert node.host is not None
        root = ssh.connect(node.host.address, "root", self._keys)
        try:
            bootstrap.bootstrap(
                root, self.spec.job.user, self._keys, deps=self.spec.job.deps,
                requirements=requirements,
                on_step=lambda name, s, changed: self.hooks.message(
                    f"  {node.name} {name}: {'changed' if changed else 'ok'} ({s:.1f}s)"))
        finally:
            root.close()
        if node.guards is not None:
            node.guards.run_user_ready(self.spec.job.user)

    def _sync(self, node: Node) -> None:
        from provision import sync

        job, host = self.spec.job, node.host
        assert host is not None
        sync.push(job.project_dir, host.address, job.user, self._keys,
                  str(self.layout.project), job.exclude_file)
        sync.push_file(job.scene_path, host.address, job.user, self._keys,
                       str(self.layout.job / "scene.toml"))

    # ------------------------------------------------------------------ cluster

    def _start_cluster(self) -> None:
        """ufw between the nodes, the scheduler on node 1, a worker per node, the tunnel, the
        client; returns when every worker has joined."""
        spec, layout = self.spec, self.layout
        py, project = layout.venv_python, layout.project
        peers = [n.private_ip for n in self.nodes]
        probe = (f"cd {shlex.quote(str(project))} && {shlex.quote(str(py))} -c "
                 "'from renderer.cores import available_cores as c; print(c())'")

        def prepare(node: Node) -> int:
            rules = " && ".join(cluster.ufw_rules(node.private_ip, peers, spec.ports))
            self._ssh_run(node, f"sudo -n sh -c {shlex.quote(rules)}", "opening ufw to the nodes")
            self._ssh_run(node, f"mkdir -p {shlex.quote(str(self.dask_dir))}",
                          "creating the Dask directory")
            return int(self._ssh_run(node, probe, "counting cores").split()[-1])

        cores = self._parallel("ufw", prepare, self.nodes)
        self.sizing = cluster.size_workers(min(cores), spec.tasks_per_node)
        self.record.cores = self.sizing.cores
        self.hooks.message(f"{len(self.nodes)} nodes of {self.sizing.cores} cores: "
                           f"{self.sizing.tasks} segment(s) at once per node, "
                           f"{self.sizing.kernel_threads} kernel threads each")
        self._start_dask(self.nodes[0], self.nodes)

    def _start_dask(self, head: Node, nodes: Sequence[Node]) -> None:
        """The scheduler on `head`, a worker on each of `nodes` pointing to it, the tunnel and
        the client; returns when every worker has joined."""
        spec, py, project = self.spec, self.layout.venv_python, self.layout.project
        self._head = head
        sched = cluster.scheduler_command(py, project, head.private_ip, spec.ports,
                                          worker_ttl_s=spec.worker_ttl_s)
        self._ssh_run(head, cluster.in_background(sched, self.dask_dir / "scheduler.log",
                                                  self.dask_dir / "scheduler.pid"),
                      "starting the Dask scheduler")

        def start_worker(node: Node) -> None:
            assert self.sizing is not None
            cmd = cluster.worker_command(py, project, head.private_ip, node.private_ip,
                                         node.name, self.sizing, self.dask_dir / "worker",
                                         spec.ports)
            self._ssh_run(node, cluster.in_background(cmd, self.dask_dir / "worker.log",
                                                      self.dask_dir / "worker.pid"),
                          "starting the Dask worker")

        self._parallel("worker", start_worker, nodes)
        self._client = self._connect(head, nodes)

    def _connect(self, head: Node, nodes: Sequence[Node]) -> Any:
        """The client, through an SSH tunnel to the head: no Dask port faces the internet."""
        import distributed
        from distributed.versions import VersionMismatchWarning

        from provision import ssh

        assert head.host is not None
        deadline = time.monotonic() + self.spec.start_timeout_s
        tunnel = cluster.tunnel_to(head.private_ip, self.spec.ports)
        self._tunnel = subprocess.Popen(
            tunnel.argv(ssh.ssh_command(self._keys, self.spec.job.user, head.host.address)),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        cluster.wait_for_port("127.0.0.1", tunnel.local_port, timeout_s=30)
        client, last = None, ""
        while client is None:
            if self._tunnel.poll() is not None:
                err = (self._tunnel.stderr.read() if self._tunnel.stderr else b"").decode()
                raise ClusterError(f"the SSH tunnel to {head.name} closed: "
                                   f"{_one_line(Exception(err)) or 'no output'}")
            try:
                with warnings.catch_warnings():
                    # The nodes run the launcher's Dask versions (node_requirements); what is
                    # left to differ is Python's patch level, which Dask warns about loudly.
                    warnings.simplefilter("ignore", VersionMismatchWarning)
                    client = distributed.Client(tunnel.scheduler_address, timeout=10,
                                                set_as_default=False, direct_to_workers=False)
            except (OSError, TimeoutError) as exc:
                last = _one_line(exc)
                if time.monotonic() > deadline:
                    raise ClusterError(f"the Dask scheduler on {head.name} did not answer "
                                       f"through the tunnel: {last}; "
                                       f"{self._log_tail(head, 'scheduler')}") from None
                time.sleep(1.0)
        self._client = client
        while True:
            try:
                client.wait_for_workers(len(nodes), timeout=5)
                break
            except (TimeoutError, OSError):
                pass
            joined = {str(w.get("name")) for w in
                      client.scheduler_info(n_workers=-1).get("workers", {}).values()}
            for node in nodes:  # a worker that exited will not join: say why at once
                if node.name not in joined and not self._worker_alive(node):
                    raise ClusterError(f"the Dask worker on {node.name} exited; "
                                       f"{self._log_tail(node, 'worker')}")
            if time.monotonic() > deadline:
                raise ClusterError(f"only {len(joined)} of {len(nodes)} Dask workers joined "
                                   f"within {self.spec.start_timeout_s:.0f} s")
        self.hooks.message(f"Dask scheduler on {head.name} ({head.private_ip}), "
                           f"{len(nodes)} workers, reached through an SSH tunnel")
        return client

    def _worker_alive(self, node: Node) -> bool:
        pid_file = shlex.quote(str(self.dask_dir / "worker.pid"))
        try:
            self._ssh_run(node, f"kill -0 \"$(cat {pid_file})\"", "checking the worker",
                          timeout_s=20)
            return True
        except LauncherError:
            return False

    def _log_tail(self, node: Node, which: str) -> str:
        try:
            out = self._ssh_run(node, f"tail -n 3 {shlex.quote(str(self.dask_dir / which))}.log",
                                "reading the log", timeout_s=20)
            return f"{node.name} {which} log: {' | '.join(out.strip().splitlines())}"
        except LauncherError as exc:
            return str(exc)

    def _stop_cluster(self) -> None:
        """The client and the tunnel; the scheduler and workers go with their nodes."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close(timeout=10)
            except Exception:  # noqa: BLE001 - the nodes are deleted next anyway
                pass
        tunnel, self._tunnel = self._tunnel, None
        if tunnel is not None and tunnel.poll() is None:
            tunnel.terminate()
            try:
                tunnel.wait(timeout=5)
            except subprocess.TimeoutExpired:
                tunnel.kill()
                tunnel.wait()

    # ------------------------------------------------------------------ render and pull

    def _render(self) -> ClusterRun:
        """Every segment on the cluster. The scheduler's node may be lost on the way: another
        node takes over (launcher.failover) and what no node alive holds is rendered again."""
        spec = self.spec
        segments = plan_segments(spec.job.frames, spec.segment_frames)
        total, started = spec.job.frames, time.monotonic()
        self.record.status = "rendering"
        self._save()

        def on_segment(seg: NodeSegment) -> None:
            self.finished[seg.result.index] = seg
            frames = failover.frames_of(segments, self.finished, self._lost)
            self.record.frames_rendered = frames
            fps = frames / max(1e-6, time.monotonic() - started)
            self.hooks.progress(frames, total, fps)

        passes: list[ClusterRun] = []
        workers_lost: list[str] = []
        # A pass renders all it was given or loses a node for good; the bound is for a lost
        # worker that comes back and takes tasks again.
        passes_left = len(self.nodes) + cluster.RE_RENDER_ROUNDS
        while todo := failover.remaining(segments, self.finished, self._lost):
            if passes_left == 0:
                raise ClusterError(f"{len(todo)} segment(s) still missing or on lost nodes after "
                                   f"{len(passes)} passes; giving up")
            passes_left -= 1
            try:
                run = self._render_pass(todo, on_segment, key_suffix=(
                    f"-pass{len(passes)}" if passes or self._lost else ""))
            except failover.HeadLost as lost:
                self._fail_over(lost, segments)
                continue
            passes.append(run)
            self.finished.update({s.result.index: s for s in run.segments})
            self._lost.update(run.lost_workers)
            workers_lost.extend(w for w in run.lost_workers if w not in workers_lost)
        run = ClusterRun(segments=tuple(self.finished[s.index] for s in segments),
                         lost_workers=tuple(sorted(self._lost)),
                         warnings=tuple(w for p in passes for w in p.warnings),
                         wall_s=time.monotonic() - started)
        self.record.frames_rendered = total
        split = {n.name: len(run.files_by_worker().get(n.name, [])) for n in self.nodes}
        self.hooks.message("segments per node: " + ", ".join(f"{k} {v}" for k, v in split.items()))
        if workers_lost:
            self.record.lost.append(f"nodes lost mid-run: {', '.join(workers_lost)}; their "
                                    "segments were rendered on the others")
        return run

    def _render_pass(self, todo: Sequence[Segment], on_segment: Callable[[NodeSegment], None],
                     key_suffix: str) -> ClusterRun:
        """`todo` on the current cluster, its head watched; HeadLost if the head is lost."""
        spec, head, tunnel = self.spec, self._head, self._tunnel
        assert self.sizing is not None and self._client is not None
        cost = self._cost_cap()

        def close_tunnel(_reason: str) -> None:
            # Wakes a client waiting on a silent scheduler: its connection closes at once.
            if tunnel is not None and tunnel.poll() is None:
                tunnel.terminate()

        watch = failover.HeadWatch(head.name, self._head_probes(head, tunnel), close_tunnel,
                                   spec.head_check_interval_s, spec.head_probe_misses)

        def should_stop() -> str | None:
            if watch.reason is not None:
                return f"{head.name} is lost: {watch.reason}"
            return cost() if cost is not None else None

        try:
            with watch, self._client.as_current():  # distributed.wait looks for the current client
                run = cluster.render_on_cluster(
                    self._client, spec.scene_toml, todo, spec.segment_frames,
                    str(self.segments_dir), overrides=spec.overrides,
                    frames_dirs=str(self.frames_dir) if spec.job.keep_frames else None,
                    kernel_threads=self.sizing.kernel_threads, on_segment=on_segment,
                    on_warning=self._warn, no_workers_timeout_s=spec.no_workers_timeout_s,
                    key_suffix=key_suffix, should_stop=should_stop)
        except Interrupted:
            raise
        except Exception:
            if watch.reason is None and cost is not None and cost() is not None:
                raise  # stopped for --max-cost: no time to look at the head
            reason = watch.confirm()
            if reason is None:
                raise  # the head is fine: the failure is something else
            raise failover.HeadLost(head.name, reason) from None
        if watch.reason is not None:  # lost as the last segments came in: their files with it
            raise failover.HeadLost(head.name, watch.reason)
        return run

    def _head_probes(self, head: Node, tunnel: subprocess.Popen[bytes] | None
                     ) -> failover.HeadProbes:
        assert head.instance is not None
        instance_id = head.instance.id
        probe = cluster.running_command(self.dask_dir / "scheduler.pid")

        def instance_status() -> str | None:
            info = self.cloud.get(instance_id)
            return None if info is None else info.status

        def scheduler_answers() -> bool:
            try:
                self._ssh_run(head, probe, "probing the Dask scheduler",
                              timeout_s=self.spec.head_probe_timeout_s)
                return True
            except LauncherError:
                return False

        return failover.HeadProbes(instance_status, scheduler_answers,
                                   lambda: tunnel is not None and tunnel.poll() is None)

    def _fail_over(self, lost: failover.HeadLost, segments: Sequence[Segment]) -> None:
        """The scheduler's node is lost: the next node alive runs a new scheduler, the workers
        left are restarted to point to it, and a new tunnel and client reach it. ClusterError
        when no node is left."""
        old = self._head
        self._lost.add(old.name)
        self._warn(f"{old.name}, the Dask scheduler's node, was lost mid-run ({lost.reason}); "
                   "moving the scheduler to a node left")
        self._stop_cluster()  # the client and tunnel of the lost scheduler
        others = [n for n in self.nodes if n.name not in self._lost]
        for node, ok in zip(others, self._parallel("probe", self._answers, others), strict=True):
            if not ok:
                self._lost.add(node.name)
                self._warn(f"{node.name} cannot be reached either: lost too, with its segments")
        head = failover.choose_head(self.nodes, self._lost)
        todo = failover.remaining(segments, self.finished, self._lost)
        if head is None:
            raise ClusterError(f"every node is lost ({old.name}, the scheduler's: {lost.reason}); "
                               f"{len(self.finished)} of {len(segments)} segments had been "
                               "finished")
        survivors = [n for n in self.nodes if n.name not in self._lost]
        # The old workers wait on the dead scheduler (and may be rendering for it): stop them,
        # with any frames they left half-written, before the new cluster starts.
        self._parallel("stop-worker", lambda n: self._stop_worker(n, todo), survivors)
        self._start_dask(head, survivors)
        with self._lock:
            self.record.lost.append(
                f"{old.name} (the Dask scheduler's node) lost mid-run: {lost.reason}; "
                f"{head.name} took over the scheduler; {len(todo)} of {len(segments)} "
                f"segment(s) were left to render, on {', '.join(n.name for n in survivors)}")
        self._save()

    def _answers(self, node: Node) -> bool:
        try:
            self._ssh_run(node, "true", "reaching the node",
                          timeout_s=self.spec.head_probe_timeout_s)
            return True
        except LauncherError:
            return False

    def _stop_worker(self, node: Node, todo: Sequence[Segment]) -> None:
        command = f"( {cluster.stop_command(self.dask_dir / 'worker.pid')} )"
        if self.spec.job.keep_frames:
            command += " && " + failover.frames_cleanup_command(self.frames_dir, todo)
        self._ssh_run(node, command, "stopping the Dask worker")

    def _pull(self, run: ClusterRun) -> None:
        """rsync each node's segments (and frames) back, then join locally without re-encoding.

        A node that cannot be reached any more (lost after the render) has its segments rendered
        again on the others, once, with a warning; if it ran the scheduler, another node takes
        the scheduler over first (as during the render).
        """
        from provision import sync

        job = self.spec.job
        job.output_dir.mkdir(parents=True, exist_ok=True)
        staging = job.output_dir / f".{self.run_id}-segments"
        frames_local = job.output_dir / f"{Path(job.scene_output_name).stem}-frames"
        gone: set[str] = set(run.lost_workers)

        def pull(node: Node) -> str | None:
            assert node.host is not None
            try:
                if node.name in run.files_by_worker():
                    sync.pull_dir(node.host.address, job.user, self._keys,
                                  str(self.segments_dir), staging / node.name, exclude=(".*",))
                if job.keep_frames:
                    sync.pull_dir(node.host.address, job.user, self._keys, str(self.frames_dir),
                                  frames_local, exclude=(".*",))
                return None
            except ProvisionError as exc:
                return _one_line(exc)

        for attempt in range(2):
            alive = [n for n in self.nodes if n.name not in gone]
            failed = {n.name: e for n, e in zip(alive, self._parallel("pull", pull, alive),
                                                  strict=True) if e is not None}
            if not failed:
                break
            first = next(iter(failed.values()))
            if attempt or len(failed) == len(alive):
                raise LauncherError(f"could not pull from {', '.join(failed)}: {first}")
            if self._head.name in failed:  # the scheduler went with it: another node takes over
                self._fail_over(failover.HeadLost(self._head.name, f"could not pull from it: "
                                                  f"{failed[self._head.name]}"),
                                plan_segments(job.frames, self.spec.segment_frames))
            gone |= set(failed) | self._lost
            run = self._render_again(run, gone - set(run.lost_workers), first)
        self.result = run
        output = job.output_dir / job.scene_output_name
        cluster.concat_pulled(run, lambda s: staging / s.worker / Path(s.result.path).name,
                              output)
        shutil.rmtree(staging, ignore_errors=True)
        from provision.sync import sha256_file

        self.record.outputs.append({"path": str(output), "sha256": sha256_file(output),
                                    "bytes": output.stat().st_size})
        if job.keep_frames:
            want = {f"frame-{k:06d}.png" for k in range(job.frames)}
            missing = sorted(want - {p.name for p in frames_local.glob("frame-*.png")})
            if missing:
                raise LauncherError(f"{len(missing)} frame(s) missing after the pull, e.g. "
                                    f"{missing[0]}")
            self.record.outputs.append({"path": str(frames_local), "kind": "frames"})

    def _cost_cap(self) -> Callable[[], str | None] | None:
        """--max-cost during the render: every node bills alike, so each may spend 1/N of the
        cap; the render stops in time for the deletes to land within it (launcher.costguard)."""
        cap = self.spec.job.max_cost_usd
        if cap is None:
            return None
        guard = CostGuard(self.spec.job.plan, cap / self.spec.nodes, self.spec.cost_stop_margin_s)

        def reason() -> str | None:
            lifetime = time.monotonic() - (self._created_at or time.monotonic())
            if not guard.should_stop(lifetime):
                return None
            return (f"--max-cost ${cap:.2f}: stopped the render after {lifetime:.0f} s of node "
                    f"lifetime so the {self.spec.nodes} nodes are deleted within "
                    f"{guard.allowed_hours} billed hour(s) each; finished segments are pulled back")
        return reason

    def _render_again(self, run: ClusterRun, lost: set[str], why: str) -> ClusterRun:
        """The segments whose files lie on `lost` nodes, rendered on the nodes left."""
        assert self._client is not None and self.sizing is not None
        spec = self.spec
        indices = {s.result.index for s in run.segments if s.worker in lost}
        self._warn(f"{', '.join(sorted(lost))} could not be reached after the render ({why}); "
                   f"rendering its {len(indices)} segment(s) again on the others")
        segments = [s for s in plan_segments(spec.job.frames, spec.segment_frames)
                    if s.index in indices]
        with self._client.as_current():
            again = cluster.render_on_cluster(
                self._client, spec.scene_toml, segments, spec.segment_frames,
                str(self.segments_dir), overrides=spec.overrides,
                frames_dirs=str(self.frames_dir) if spec.job.keep_frames else None,
                kernel_threads=self.sizing.kernel_threads, on_warning=self._warn,
                no_workers_timeout_s=spec.no_workers_timeout_s, key_suffix="-after-pull",
                should_stop=self._cost_cap())
        done = {s.result.index: s for s in run.segments}
        done.update({s.result.index: s for s in again.segments})
        lost_all = tuple(dict.fromkeys((*run.lost_workers, *sorted(lost), *again.lost_workers)))
        self.record.lost.append(f"nodes lost after the render: {', '.join(sorted(lost))}; "
                                "their segments were rendered again on the others")
        return ClusterRun(segments=tuple(done[i] for i in sorted(done)), lost_workers=lost_all,
                          warnings=run.warnings + again.warnings, wall_s=run.wall_s + again.wall_s)

    def _salvage(self) -> None:
        """Before the deletes: pull the segments the nodes finished, so a failure loses little."""
        from provision import sync

        reachable = [n for n in self.nodes if n.host is not None and n.name not in self._lost]
        if not reachable or self.record.frames_rendered is None:
            return  # the render had not finished a segment: nothing to save
        local = self.spec.job.output_dir / f"{self.run_id}-partial"

        def pull(node: Node) -> int:
            assert node.host is not None
            try:
                return sync.pull_dir(node.host.address, self.spec.job.user, self._keys,
                                     str(self.segments_dir), local / node.name,
                                     exclude=(".*",), timeout_s=60)
            except Exception as exc:  # noqa: BLE001 - best effort; deletion must follow
                with self._lock:
                    self.record.lost.append(f"{node.name}: segments could not be pulled: "
                                            f"{_one_line(exc)}")
                return 0

        with self.phase("salvage"):
            counts = self._parallel("salvage", pull, reachable, wait_all=True)
        if sum(counts):
            self.record.outputs.append({"path": str(local), "kind": "partial-segments"})
            self.hooks.message(f"saved {sum(counts)} finished segment files to {local}")

    def _record_failure(self, exc: BaseException) -> None:
        self.record.status = "interrupted" if isinstance(exc, Interrupted | KeyboardInterrupt) \
            else "failed"
        self.record.error = _one_line(exc)
        self._save()

    # ------------------------------------------------------------------ teardown

    def _finish_guards(self, errors: dict[int, BaseException | None]) -> None:
        """Revoke each node's lease token once its delete is confirmed; a node that may still
        exist keeps its watchdog and token (the last line of defence)."""
        for node in self.nodes:
            if node.guards is None:
                continue
            deleted = node.instance is None or errors.get(node.instance.id) is None
            try:
                node.guards.finish(deleted)
            finally:
                self._note_guards(node)

    def _delete_all(self) -> None:
        """Every instance of the run (those we know and any the run tag finds), in parallel, each
        delete confirmed; DeleteError after all were tried if any may still exist."""
        with self._lock:
            targets = {n.instance.id: n.instance for n in self.nodes if n.instance is not None}
        try:
            found = self.cloud.list_by_tag(self.run_tag)
        except ProvisionError as exc:
            self.record.lost.append(f"could not check for half-created instances: {exc}")
            found = []
        for info in found:
            if info.id not in targets:
                targets[info.id] = info
                self.record.instances.append({"node": _node_of(info.label, self.label),
                                              "id": info.id, "label": info.label,
                                              "region": info.region, "deleted": False})
        if not targets:
            self.record.deleted = True
            self._delete_firewall()
            return
        for node in self.nodes:
            try:
                self.hooks.before_delete(node.host)
            except Exception as exc:  # noqa: BLE001 - a hook must never prevent deletion
                self.hooks.message(f"before-delete hook failed: {_one_line(exc)}")

        def delete(instance_id: int) -> BaseException | None:
            try:
                self.cloud.delete(instance_id)
                return None
            except DeleteError as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - every other node is still deleted
                return DeleteError(instance_id, _one_line(exc),
                                   getattr(self.cloud, "base_url", "https://api.linode.com/v4"))

        with self.phase("delete"):
            with ThreadPoolExecutor(max_workers=len(targets),
                                    thread_name_prefix="juliafarm-delete") as pool:
                errors = dict(zip(targets, pool.map(delete, targets), strict=True))
        self._account(targets, errors)
        self._finish_guards(errors)
        failed = [e for e in errors.values() if e is not None]
        if failed:
            for exc in failed[1:]:
                self.record.lost.append(_one_line(exc))
            raise failed[0]
        self._delete_firewall()

    def _account(self, targets: dict[int, InstanceInfo],
                 errors: dict[int, BaseException | None]) -> None:
        from datetime import UTC, datetime

        plan = self.spec.job.plan
        own = time.monotonic() - (self._created_at or time.monotonic())
        total_cost, total_hours, longest = 0.0, 0, 0.0
        for entry in self.record.instances:
            info = targets.get(entry["id"])
            if info is None:
                continue
            lifetime = (datetime.now(UTC) - info.created).total_seconds()
            if lifetime < 0 or lifetime > 10 * 365 * 86400:  # clock skew: our own timer
                lifetime = own
            cost = billing.cost_usd(plan, lifetime)
            entry.update(deleted=errors.get(info.id) is None, lifetime_s=round(lifetime, 1),
                         billed_hours=billing.billed_hours(lifetime), cost_usd=round(cost, 4))
            total_cost += cost
            total_hours += billing.billed_hours(lifetime)
            longest = max(longest, lifetime)
            state = "deleted" if entry["deleted"] else "NOT confirmed deleted"
            self.hooks.message(f"{entry['node']}: {state} instance {info.id}; billed "
                               f"{entry['billed_hours']} h = ${cost:.2f}")
        self.record.deleted = all(e is None for e in errors.values())
        self.record.lifetime_s = round(longest, 1)
        self.record.billed_hours = total_hours  # node-hours: every node bills its own hours
        self.record.cost_usd = round(total_cost, 4)
        self._save()


def _node_of(label: str, run_label: str) -> str:
    suffix = label[len(run_label) + 1:] if label.startswith(run_label + "-") else ""
    return f"node-{suffix}" if suffix.isdigit() else label
