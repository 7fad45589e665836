"""A render on N Linodes: Dask on the nodes the shared lifecycle made (launcher.run.lifecycle).

What the cluster adds to a one-node run: ufw between the nodes' private addresses, a scheduler on
node 1 and a worker per node (launcher.cluster.dask_cluster), the launcher's client through an
SSH tunnel, the move of the scheduler when its node is lost (launcher.cluster.failover), the
per-node pull and the local join. Create, set-up, guards, signals, deletes and the bill are the
lifecycle's, exactly as for one node.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from launcher.cluster import dask_cluster as cluster
from launcher.cluster import failover
from launcher.cluster.dask_cluster import (
    ClusterError,
    ClusterRun,
    DaskPorts,
    NodeSegment,
    WorkerSizing,
)
from launcher.cluster.driver import DriverJob, overrides_to_dict, run_from_json
from launcher.errors import LauncherError, one_line
from launcher.run.costguard import DEFAULT_STOP_MARGIN_S, CostGuard
from launcher.run.detach import detach_warning
from launcher.run.hooks import Hooks
from launcher.run.lifecycle import Lifecycle, Node
from launcher.run.record import RunRecord
from launcher.run.remote import (
    DetachedFiles,
    detached_command,
    watch_command,
)
from launcher.run.single import MIN_DETACHED_LEASE_S
from launcher.run.spec import Host, JobSpec
from provision.cloud import Cloud
from provision.errors import ProvisionError
from renderer.scene import Overrides, Scene
from renderer.segments import Segment, default_segment_frames, plan_segments

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
    # The scheduler's node is watched during the render (launcher.cluster.failover): the API every
    # interval, and an SSH probe of the scheduler that may miss this many times in a row.
    head_check_interval_s: float = 5.0
    head_probe_misses: int = 3
    head_probe_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if self.nodes < 2:
            raise ValueError("a cluster run needs at least 2 nodes (1 node is launcher.run.single)")


def cluster_spec(job: JobSpec, scene: Scene, overrides: Overrides, nodes: int) -> ClusterSpec:
    """The cluster spec for a checked single-node spec: segments as long as a local render's,
    or shorter so every task slot of every node gets one (cluster.cluster_segment_frames)."""
    tasks = cluster.size_workers(job.plan.vcpus).tasks
    seg = cluster.cluster_segment_frames(scene.frames, default_segment_frames(scene), nodes, tasks)
    return ClusterSpec(job=job, nodes=nodes, scene_toml=job.scene_path.read_text(encoding="utf-8"),
                       overrides=overrides, segment_frames=seg)


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


# ----------------------------------------------------------------------------- the run


class ClusterJob(Lifecycle):
    """Runs one ClusterSpec on N nodes; the shared lifecycle creates, sets up and deletes them,
    this class starts Dask, renders (with scheduler failover), pulls and joins."""

    needs_private_ip = True

    def __init__(self, spec: ClusterSpec, cloud: Cloud, hooks: Hooks | None = None,
                 state_dir: Path | None = None, run_id: str | None = None, **kw: Any) -> None:
        super().__init__(spec.job, cloud, hooks, nodes=spec.nodes, state_dir=state_dir,
                         run_id=run_id, **kw)
        self.cluster = spec
        self.sizing: WorkerSizing | None = None
        self.result: ClusterRun | None = None
        self._client: Any = None
        self._tunnel: subprocess.Popen[bytes] | None = None
        self._head = self.nodes[0]  # the node running the Dask scheduler; another after failover
        self._lost: set[str] = set()  # names of the nodes lost (with the files they held)
        self.finished: dict[int, NodeSegment] = {}  # segment index -> where its file lies

    def requirements(self) -> Sequence[str]:
        return self.cluster.requirements or tuple(node_requirements())

    def render_and_pull(self) -> None:
        with self.phase("cluster"):
            self._start_cluster()
        if self.spec.detach:
            self._detach()
            return
        with self.phase("render"):
            self.result = self._render()
        self.record.status = "pulling"
        with self.phase("pull"):
            self._pull(self.result)

    def stop_render(self) -> None:
        self._stop_cluster()

    # ------------------------------------------------------------------ detach and attach

    @property
    def driver_files(self) -> DetachedFiles:
        job = self.layout.job
        return DetachedFiles(str(job / "driver.log"), str(job / "driver.pid"),
                             str(job / "driver.exit"))

    def _detach(self) -> None:
        """Hand the render to a driver on node 1 (launcher.cluster.driver) and leave every node
        to its lease, whose deadline --max-cost bounds too."""
        head = self.nodes[0]
        assert head.host is not None and self.sizing is not None
        at_most_s = self.lease_cap_s()
        if at_most_s is not None and at_most_s < MIN_DETACHED_LEASE_S:
            raise LauncherError(
                f"--max-cost ${self.spec.max_cost_usd:.2f} leaves too little time to detach "
                f"({max(0.0, at_most_s):.0f} s of lease); nothing was left running")
        job_file = self.layout.job / "driver.json"
        result = self.layout.job / "cluster-run.json"
        driver = DriverJob(
            scheduler=f"tcp://{head.private_ip}:{self.cluster.ports.scheduler}",
            scene_path=str(self.layout.job / "scene.toml"),
            overrides=overrides_to_dict(self.cluster.overrides), frames=self.spec.frames,
            segment_frames=self.cluster.segment_frames, segments_dir=str(self.segments_dir),
            frames_dir=str(self.frames_dir) if self.spec.keep_frames else None,
            kernel_threads=self.sizing.kernel_threads,
            no_workers_timeout_s=self.cluster.no_workers_timeout_s, result_path=str(result))
        py, project = self.layout.venv_python, self.layout.project
        command = (f"cd {shlex.quote(str(project))} && PYTHONUNBUFFERED=1 "
                   f"{shlex.quote(str(py))} -m launcher.cluster.driver "
                   f"{shlex.quote(str(job_file))}")
        with self.phase("detach"):
            self._ssh_run(head, f"printf %s {shlex.quote(driver.to_json())} > "
                                f"{shlex.quote(str(job_file))}", "writing the driver's job")
            self._ssh_run(head, detached_command(command, self.driver_files),
                          "starting the detached driver")
            self._stop_cluster()  # the launcher's client and tunnel: the driver has its own
            deadlines = []
            for node in self.nodes:
                if node.guards is not None:
                    deadlines.append(node.guards.detach(at_most_s))
                    self.note_guards(node)
        self.record.detached = {"home": str(self.layout.home), "files": asdict(self.driver_files),
                                "output_name": self.spec.scene_output_name,
                                "keep_frames": self.spec.keep_frames,
                                "cluster": {"result": str(result),
                                            "segment_frames": self.cluster.segment_frames}}
        self.record.status = "detached"
        self.detached = True
        self.save()
        known = [d for d in deadlines if d is not None]
        self.hooks.message(detach_warning(self.run_id, self.record.instance_id,
                                          min(known) if known else None))

    def resume(self, record: RunRecord, record_path: Path, keys: Any) -> RunRecord:
        """`launcher attach` of a detached cluster run: take over every node's lease, follow
        the driver on node 1 to its end, pull each node's segments, join, delete them all."""
        assert record.detached is not None and record.detached.get("cluster")
        self.adopt(record, record_path, keys)
        det = record.detached

        def body() -> None:
            by_node = {e["node"]: e for e in record.instances}
            for node in self.nodes:
                entry = by_node.get(node.name)
                info = self.cloud.get(int(entry["id"])) if entry else None
                if info is None:
                    deadline = (record.lease or {}).get("deadline", "its lease end")
                    raise LauncherError(
                        f"{node.name} no longer exists: its lease ended ({deadline}) or it was "
                        "deleted; the results on it are lost")
                node.instance = info
                node.host = Host(info, info.ipv4 or "", keys, self.layout)
                node.private_ip = info.private_ipv4 or ""
            age_s = (datetime.now(UTC) - self.nodes[0].instance.created).total_seconds()  # type: ignore[union-attr]
            self._created_at = time.monotonic() - max(0.0, age_s)

            def take_over(node: Node) -> None:
                assert node.instance is not None and node.host is not None
                guards = self._guards_for(node)
                guards.record.lease = (by_node[node.name].get("lease") or record.lease)
                guards.start_lease(node.instance.id, node.host.address, keys, self.spec.user,
                                   resume=True, at_most_s=self.lease_cap_s)
                self.note_guards(node)

            with self.phase("lease"):
                self.parallel("lease", take_over, self.nodes)
            self.hooks.message(f"attached to {len(self.nodes)} nodes; following the render")
            with self.phase("render"):
                self._follow_driver(DetachedFiles(**det["files"]))
                run = run_from_json(self._ssh_run(self.nodes[0],
                                                  f"cat {shlex.quote(det['cluster']['result'])}",
                                                  "reading the render's result"))
            self.record.frames_rendered = self.spec.frames
            self.record.status = "pulling"
            with self.phase("pull"):
                self._pull(run)

        return self.lifecycle(body)

    def _follow_driver(self, files: DetachedFiles) -> None:
        cap, guard = self._cost_cap(), self._cost_guard()
        timeout_s = None if guard is None else guard.remaining_s(self.lifetime_s())
        code, last = self.follow_remote(self.nodes[0], watch_command(files), timeout_s)
        if cap is not None and (reason := cap()) is not None:
            raise LauncherError(reason)
        if code != 0:
            raise LauncherError(f"the cluster render failed on node-1 (exit {code}): {last}")

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

    def _ssh_run(self, node: Node, command: str, what: str,
                 timeout_s: float = REMOTE_TIMEOUT_S) -> str:
        """A command as the run's user on a node; LauncherError (with its last line) if it fails."""
        from provision import ssh

        assert node.host is not None
        argv = [*ssh.ssh_command(self.keys, self.spec.user, node.host.address), command]
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

    def open_firewall_between_nodes(self) -> None:
        """The Dask ports, from exactly the run's nodes' private addresses (the rule set is
        replaced in one request; ufw on each node says the same again)."""
        ports = self.cluster.ports.span.replace(":", "-")  # ufw's range syntax → the API's
        self.firewall.open_between([n.private_ip for n in self.nodes], ports)

    # ------------------------------------------------------------------ cluster

    def _start_cluster(self) -> None:
        """ufw between the nodes, the scheduler on node 1, a worker per node, the tunnel, the
        client; returns when every worker has joined."""
        spec, layout = self.cluster, self.layout
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

        cores = self.parallel("ufw", prepare, self.nodes)
        self.sizing = cluster.size_workers(min(cores), spec.tasks_per_node)
        self.record.cores = self.sizing.cores
        self.hooks.message(f"{len(self.nodes)} nodes of {self.sizing.cores} cores: "
                           f"{self.sizing.tasks} segment(s) at once per node, "
                           f"{self.sizing.kernel_threads} kernel threads each")
        self._start_dask(self.nodes[0], self.nodes)

    def _start_dask(self, head: Node, nodes: Sequence[Node]) -> None:
        """The scheduler on `head`, a worker on each of `nodes` pointing to it, the tunnel and
        the client; returns when every worker has joined."""
        spec, py, project = self.cluster, self.layout.venv_python, self.layout.project
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

        self.parallel("worker", start_worker, nodes)
        self._client = self._connect(head, nodes)

    def _connect(self, head: Node, nodes: Sequence[Node]) -> Any:
        """The client, through an SSH tunnel to the head: no Dask port faces the internet."""
        import distributed
        from distributed.versions import VersionMismatchWarning

        from provision import ssh

        assert head.host is not None
        deadline = time.monotonic() + self.cluster.start_timeout_s
        tunnel = cluster.tunnel_to(head.private_ip, self.cluster.ports)
        self._tunnel = subprocess.Popen(
            tunnel.argv(ssh.ssh_command(self.keys, self.spec.user, head.host.address)),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True)
        cluster.wait_for_port("127.0.0.1", tunnel.local_port, timeout_s=30)
        client, last = None, ""
        while client is None:
            if self._tunnel.poll() is not None:
                err = (self._tunnel.stderr.read() if self._tunnel.stderr else b"").decode()
                raise ClusterError(f"the SSH tunnel to {head.name} closed: "
                                   f"{one_line(Exception(err)) or 'no output'}")
            try:
                with warnings.catch_warnings():
                    # The nodes run the launcher's Dask versions (node_requirements); what is
                    # left to differ is Python's patch level, which Dask warns about loudly.
                    warnings.simplefilter("ignore", VersionMismatchWarning)
                    client = distributed.Client(tunnel.scheduler_address, timeout=10,
                                                set_as_default=False, direct_to_workers=False)
            except (OSError, TimeoutError) as exc:
                last = one_line(exc)
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
                                   f"within {self.cluster.start_timeout_s:.0f} s")
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
        node takes over (cluster.failover) and what no node alive holds is rendered again."""
        spec, job = self.cluster, self.spec
        segments = plan_segments(job.frames, spec.segment_frames)
        total, started = job.frames, time.monotonic()
        self.record.status = "rendering"
        self.save()

        def on_segment(seg: NodeSegment) -> None:
            self.finished[seg.result.index] = seg
            self.log.write(f"segment {seg.result.index} (frames {seg.result.first}.."
                           f"{seg.result.stop - 1}) done on {seg.worker} in "
                           f"{seg.result.total_s:.1f}s")
            frames = failover.frames_of(segments, self.finished, self._lost)
            self.record.frames_rendered = frames
            fps = frames / max(1e-6, time.monotonic() - started)
            self.log.write(f"frame {frames}/{total}  {fps:.1f} fps")
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
        spec, job, head, tunnel = self.cluster, self.spec, self._head, self._tunnel
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
                    frames_dirs=str(self.frames_dir) if job.keep_frames else None,
                    kernel_threads=self.sizing.kernel_threads, on_segment=on_segment,
                    on_warning=self.warn, no_workers_timeout_s=spec.no_workers_timeout_s,
                    key_suffix=key_suffix, should_stop=should_stop)
        except Exception:  # an Interrupted is no Exception: it passes straight through
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
                              timeout_s=self.cluster.head_probe_timeout_s)
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
        self.warn(f"{old.name}, the Dask scheduler's node, was lost mid-run ({lost.reason}); "
                   "moving the scheduler to a node left")
        self._stop_cluster()  # the client and tunnel of the lost scheduler
        others = [n for n in self.nodes if n.name not in self._lost]
        for node, ok in zip(others, self.parallel("probe", self._answers, others), strict=True):
            if not ok:
                self._lost.add(node.name)
                self.warn(f"{node.name} cannot be reached either: lost too, with its segments")
        head = failover.choose_head(self.nodes, self._lost)
        todo = failover.remaining(segments, self.finished, self._lost)
        if head is None:
            raise ClusterError(f"every node is lost ({old.name}, the scheduler's: {lost.reason}); "
                               f"{len(self.finished)} of {len(segments)} segments had been "
                               "finished")
        survivors = [n for n in self.nodes if n.name not in self._lost]
        # The old workers wait on the dead scheduler (and may be rendering for it): stop them,
        # with any frames they left half-written, before the new cluster starts.
        self.parallel("stop-worker", lambda n: self._stop_worker(n, todo), survivors)
        self._start_dask(head, survivors)
        with self._lock:
            self.record.lost.append(
                f"{old.name} (the Dask scheduler's node) lost mid-run: {lost.reason}; "
                f"{head.name} took over the scheduler; {len(todo)} of {len(segments)} "
                f"segment(s) were left to render, on {', '.join(n.name for n in survivors)}")
        self.save()

    def _answers(self, node: Node) -> bool:
        try:
            self._ssh_run(node, "true", "reaching the node",
                          timeout_s=self.cluster.head_probe_timeout_s)
            return True
        except LauncherError:
            return False

    def _stop_worker(self, node: Node, todo: Sequence[Segment]) -> None:
        command = f"( {cluster.stop_command(self.dask_dir / 'worker.pid')} )"
        if self.spec.keep_frames:
            command += " && " + failover.frames_cleanup_command(self.frames_dir, todo)
        self._ssh_run(node, command, "stopping the Dask worker")

    def _pull(self, run: ClusterRun) -> None:
        """rsync each node's segments (and frames) back, then join locally without re-encoding.

        A node that cannot be reached any more (lost after the render) has its segments rendered
        again on the others, once, with a warning; if it ran the scheduler, another node takes
        the scheduler over first (as during the render).
        """
        from provision import sync

        job = self.spec
        job.output_dir.mkdir(parents=True, exist_ok=True)
        staging = job.output_dir / f".{self.run_id}-segments"
        frames_local = job.output_dir / f"{Path(job.scene_output_name).stem}-frames"
        gone: set[str] = set(run.lost_workers)

        def pull(node: Node) -> str | None:
            assert node.host is not None
            try:
                if node.name in run.files_by_worker():
                    sync.pull_dir(node.host.address, job.user, self.keys,
                                  str(self.segments_dir), staging / node.name, exclude=(".*",))
                if job.keep_frames:
                    sync.pull_dir(node.host.address, job.user, self.keys, str(self.frames_dir),
                                  frames_local, exclude=(".*",))
                return None
            except ProvisionError as exc:
                return one_line(exc)

        for attempt in range(2):
            alive = [n for n in self.nodes if n.name not in gone]
            failed = {n.name: e for n, e in zip(alive, self.parallel("pull", pull, alive),
                                                  strict=True) if e is not None}
            if not failed:
                break
            first = next(iter(failed.values()))
            if attempt or len(failed) == len(alive) or self._client is None:
                raise LauncherError(f"could not pull from {', '.join(failed)}: {first}")
            if self._head.name in failed:  # the scheduler went with it: another node takes over
                self._fail_over(failover.HeadLost(self._head.name, f"could not pull from it: "
                                                  f"{failed[self._head.name]}"),
                                plan_segments(job.frames, self.cluster.segment_frames))
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

    def _cost_guard(self) -> CostGuard | None:
        """--max-cost for one node: every node bills alike at the region's price, so each may
        spend 1/N of the cap (launcher.run.costguard)."""
        cap = self.spec.max_cost_usd
        if cap is None:
            return None
        return CostGuard(self.priced_plan, cap / self.cluster.nodes,
                         self.cluster.cost_stop_margin_s)

    def _cost_cap(self) -> Callable[[], str | None] | None:
        """--max-cost during the render: the reason to stop once the render must stop for the
        deletes to land within the cap, else None."""
        guard, cap = self._cost_guard(), self.spec.max_cost_usd
        if guard is None or cap is None:
            return None

        def reason() -> str | None:
            lifetime = self.lifetime_s()
            if not guard.should_stop(lifetime):
                return None
            return (f"--max-cost ${cap:.2f}: stopped the render after {lifetime:.0f} s of node "
                    f"lifetime so the {self.cluster.nodes} nodes are deleted within "
                    f"{guard.allowed_hours} billed hour(s) each; finished segments are pulled back")
        return reason

    def _render_again(self, run: ClusterRun, lost: set[str], why: str) -> ClusterRun:
        """The segments whose files lie on `lost` nodes, rendered on the nodes left."""
        assert self._client is not None and self.sizing is not None
        spec, job = self.cluster, self.spec
        indices = {s.result.index for s in run.segments if s.worker in lost}
        self.warn(f"{', '.join(sorted(lost))} could not be reached after the render ({why}); "
                   f"rendering its {len(indices)} segment(s) again on the others")
        segments = [s for s in plan_segments(job.frames, spec.segment_frames)
                    if s.index in indices]
        with self._client.as_current():
            again = cluster.render_on_cluster(
                self._client, spec.scene_toml, segments, spec.segment_frames,
                str(self.segments_dir), overrides=spec.overrides,
                frames_dirs=str(self.frames_dir) if job.keep_frames else None,
                kernel_threads=self.sizing.kernel_threads, on_warning=self.warn,
                no_workers_timeout_s=spec.no_workers_timeout_s, key_suffix="-after-pull",
                should_stop=self._cost_cap())
        done = {s.result.index: s for s in run.segments}
        done.update({s.result.index: s for s in again.segments})
        lost_all = tuple(dict.fromkeys((*run.lost_workers, *sorted(lost), *again.lost_workers)))
        self.record.lost.append(f"nodes lost after the render: {', '.join(sorted(lost))}; "
                                "their segments were rendered again on the others")
        return ClusterRun(segments=tuple(done[i] for i in sorted(done)), lost_workers=lost_all,
                          warnings=run.warnings + again.warnings, wall_s=run.wall_s + again.wall_s)

    def salvage(self) -> None:
        """Before the deletes: pull the segments the nodes finished, so a failure loses little."""
        from provision import sync

        reachable = [n for n in self.nodes if n.host is not None and n.name not in self._lost]
        if not reachable or self.record.frames_rendered is None:
            return  # the render had not finished a segment: nothing to save
        local = self.spec.output_dir / f"{self.run_id}-partial"

        def pull(node: Node) -> int:
            assert node.host is not None
            try:
                return sync.pull_dir(node.host.address, self.spec.user, self.keys,
                                     str(self.segments_dir), local / node.name,
                                     exclude=(".*",), timeout_s=60)
            except Exception as exc:  # noqa: BLE001 - best effort; deletion must follow
                with self._lock:
                    self.record.lost.append(f"{node.name}: segments could not be pulled: "
                                            f"{one_line(exc)}")
                return 0

        with self.phase("salvage"):
            counts = self.parallel("salvage", pull, reachable, wait_s=120.0)
        if sum(counts):
            self.record.outputs.append({"path": str(local), "kind": "partial-segments"})
            self.hooks.message(f"saved {sum(counts)} finished segment files to {local}")

