"""Several nodes on Dask distributed: segments as tasks, node commands, tunnel and firewall rules.

The engine is Dask's: its scheduler places the tasks and steals work from busy workers, so cheap
dark segments and expensive ones even out, and it reschedules the tasks of a worker that vanishes.
This module adds what is ours: one task per segment (renderer.shard), each writing its MP4 on the
node that ran it; the re-render of segments whose node was lost after finishing them; the shell
commands that start the scheduler and the workers on private addresses only; the SSH tunnel through
which the launcher reaches the scheduler; and the ufw rules that open the Dask ports to the run's
own nodes and to nothing else.
"""

from __future__ import annotations

import heapq
import ipaddress
import shlex
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from launcher.errors import LauncherError
from renderer.encode import CORES_PER_ENCODER
from renderer.scene import Overrides, parse_scene
from renderer.segments import Segment, fingerprint
from renderer.shard import SegmentResult, render_segment

# A task renders one segment with its own x264; like render_animation's encoders, one task per
# this many cores keeps each x264 fed without oversubscribing the kernel's threads.
CORES_PER_TASK = CORES_PER_ENCODER
TASK_RETRIES = 2            # an exception in a task (a full disk, ffmpeg dying) is retried twice
RE_RENDER_ROUNDS = 2        # passes over segments whose node was lost after finishing them
POLL_S = 0.5
NO_WORKERS_TIMEOUT_S = 120.0


class ClusterError(LauncherError):
    """The cluster could not render every segment (all workers gone, a task kept failing)."""


# ----------------------------------------------------------------------------- sizing


@dataclass(frozen=True)
class WorkerSizing:
    """Dask threads per node and kernel threads per task: tasks x kernel threads <= cores."""

    cores: int
    tasks: int           # `dask worker --nthreads`: segments a node renders at once
    kernel_threads: int  # numba threads inside each task

    def __post_init__(self) -> None:
        if self.tasks < 1 or self.kernel_threads < 1 or self.tasks * self.kernel_threads > max(
                1, self.cores):
            raise ValueError(f"{self.tasks} tasks x {self.kernel_threads} kernel threads does "
                             f"not fit {self.cores} cores")


def size_workers(cores: int, tasks: int | None = None) -> WorkerSizing:
    """One task per CORES_PER_TASK cores (at least one), the cores shared evenly among them."""
    cores = max(1, int(cores))
    n = tasks if tasks is not None else max(1, cores // CORES_PER_TASK)
    n = max(1, min(n, cores))
    return WorkerSizing(cores=cores, tasks=n, kernel_threads=max(1, cores // n))


def cluster_segment_frames(frames: int, local_segment_frames: int, nodes: int,
                           tasks_per_node: int) -> int:
    """Segment length for N nodes: no longer than a local render's, cut so the segments fill
    whole rounds of the task slots (nodes x tasks per node), whichever finishes first.

    As few rounds as the local length allows, and within them equal segments: 1000 frames on 24
    slots as 24 segments of 42 frames take one round of 42, where segments of 41 made 25 and a
    second round (57 frames' time); 1800 frames of 150-frame local segments on 8 slots as 16 of
    113 take 226 frames' time, where 12 of 150 took 300 with half the slots idle in the second
    round. Every slot gets a segment while there are frames enough (6 segments on 4 nodes of 2
    slots ran at 25% efficiency), unless that takes longer: 20 frames on 6 slots as 5 of 4 frames
    (4 frames' time), not 7 of 3 (a second round, 5)."""
    slots = max(1, nodes * tasks_per_node)
    local = max(1, local_segment_frames)
    rounds = max(1, -(-frames // (slots * local)))
    whole_rounds = max(1, min(local, -(-frames // (slots * rounds))))
    every_slot = max(1, min(local, frames // slots))
    return min((whole_rounds, every_slot),
               key=lambda per: (_frames_makespan(frames, per, slots), -(-frames // per) < slots))


def _frames_makespan(frames: int, per: int, slots: int) -> int:
    """Frames' time until the last segment of `per` frames is done, each on the first free slot."""
    free = [0] * slots
    for first in range(0, frames, per):
        heapq.heapreplace(free, free[0] + min(per, frames - first))
    return max(free)


# ----------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class NodeSegment:
    """A finished segment and the worker (node) whose disk holds its file."""

    worker: str   # the worker's name (`dask worker --name`): which node to pull from
    address: str  # the worker's Dask address when it ran the task
    result: SegmentResult


@dataclass(frozen=True)
class ClusterRun:
    """Every segment of the render, where it lies, and what went wrong on the way."""

    segments: tuple[NodeSegment, ...]  # in index order, one per segment
    lost_workers: tuple[str, ...]
    warnings: tuple[str, ...]
    wall_s: float

    def files_by_worker(self) -> dict[str, list[str]]:
        """Paths to pull from each node (rsync per node)."""
        out: dict[str, list[str]] = {}
        for s in self.segments:
            out.setdefault(s.worker, []).append(s.result.path)
        return out


Dirs = str | Mapping[str, str]


def _dir_for(dirs: Dirs, worker: str) -> str:
    """The same path on every node (a str), or one per worker name (tests run nodes on one disk)."""
    if isinstance(dirs, str):
        return dirs
    try:
        return dirs[worker]
    except KeyError:
        raise ClusterError(f"no output directory given for worker {worker!r}") from None


def segment_task(scene_toml: str, overrides: Overrides | None, index: int, segment_frames: int,
                 name: str, output_dirs: Dirs, frames_dirs: Dirs | None, kernel_threads: int,
                 encoder_threads: int | None) -> NodeSegment:
    """Runs on a worker: render one segment into this node's output directory."""
    from distributed import get_worker

    worker = get_worker()
    wname = str(worker.name)
    out = Path(_dir_for(output_dirs, wname)) / name
    frames = Path(_dir_for(frames_dirs, wname)) if frames_dirs is not None else None
    result = render_segment(scene_toml, index, segment_frames, out, overrides=overrides,
                            frames_dir=frames, kernel_threads=kernel_threads,
                            encoder_threads=encoder_threads)
    return NodeSegment(worker=wname, address=str(worker.address), result=result)


def render_on_cluster(
    client: Any, scene_toml: str, segments: Sequence[Segment], segment_frames: int,
    output_dirs: Dirs, *, overrides: Overrides | None = None, frames_dirs: Dirs | None = None,
    kernel_threads: int = 1, encoder_threads: int | None = None,
    on_segment: Callable[[NodeSegment], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    no_workers_timeout_s: float = NO_WORKERS_TIMEOUT_S, key_suffix: str = "",
    should_stop: Callable[[], str | None] | None = None,
) -> ClusterRun:
    """Render `segments` as one pure task each (retries=TASK_RETRIES) on a dask Client's cluster.

    A worker lost mid-run is tolerated: Dask reschedules the tasks it was running, and the
    segments it had already finished (their files went with the node) are rendered again on the
    workers left, with a warning. Raises ClusterError when a task keeps failing or no worker is
    left for no_workers_timeout_s. should_stop is asked at every poll: a reason (a cost cap
    reached, say) cancels what is left and raises ClusterError with it.
    """
    try:
        from distributed import wait
    except ImportError:
        raise ClusterError("rendering on several nodes needs dask distributed: "
                           "pip install 'juliafarm[cluster]'") from None

    scene = parse_scene(scene_toml, overrides=overrides)
    key_base = f"segment-{fingerprint(scene, segment_frames)[:16]}"
    warn = on_warning or (lambda text: None)
    warnings: list[str] = []

    def warning(text: str) -> None:
        warnings.append(text)
        warn(text)

    t0 = time.perf_counter()
    seen = _workers(client)  # address -> name of every worker met
    lost: set[str] = set()
    done: dict[int, NodeSegment] = {}
    todo = list(segments)
    for round_ in range(RE_RENDER_ROUNDS + 1):
        # key_suffix: a later call for the same segments (their files were lost after this one
        # returned) must not be answered from results the scheduler still remembers.
        suffix = key_suffix + ("" if round_ == 0 else f"-again{round_}")
        futures = {
            client.submit(segment_task, scene_toml, overrides, s.index, segment_frames, s.name,
                          output_dirs, frames_dirs, kernel_threads, encoder_threads,
                          key=f"{key_base}-{s.index:05d}{suffix}", pure=True,
                          retries=TASK_RETRIES): s
            for s in todo
        }
        pending = set(futures)
        no_workers_since: float | None = None
        try:
            while pending:
                try:
                    finished, pending = wait(pending, timeout=POLL_S,
                                             return_when="FIRST_COMPLETED")
                except TimeoutError:
                    finished = set()
                for fut in finished:
                    seg = futures[fut]
                    if fut.status != "finished":
                        raise ClusterError(f"segment {seg.index} failed on the cluster: "
                                           f"{_one_line(fut.exception())}")
                    node_seg: NodeSegment = fut.result()
                    done[seg.index] = node_seg
                    seen.setdefault(node_seg.address, node_seg.worker)
                    if on_segment is not None:
                        on_segment(node_seg)
                reason = should_stop() if should_stop is not None else None
                if reason:
                    raise ClusterError(f"{reason}; {len(done)} of {len(segments)} segments "
                                       "finished")
                live = _workers(client)
                seen.update({a: n for a, n in live.items() if a not in seen})
                for addr in sorted(set(seen) - set(live) - lost):
                    lost.add(addr)
                    warning(f"worker {seen[addr]} ({addr}) left the cluster; its segments are "
                            "rendered on the others")
                if live:
                    no_workers_since = None
                elif no_workers_since is None:
                    no_workers_since = time.monotonic()
                elif time.monotonic() - no_workers_since > no_workers_timeout_s:
                    raise ClusterError(f"no Dask worker left for {no_workers_timeout_s:.0f} s; "
                                       f"{len(done)} of {len(segments)} segments finished")
        except BaseException:
            client.cancel(list(pending))
            raise
        # Files of segments finished by a worker that is gone now are gone with it.
        todo = [s for s in segments if done[s.index].address in lost]
        if not todo:
            break
        for s in todo:
            del done[s.index]
        warning(f"rendering {len(todo)} segment(s) again: their node left after finishing them")
    else:
        raise ClusterError(f"{len(todo)} segment(s) lost with their nodes "
                           f"{RE_RENDER_ROUNDS + 1} times; giving up")
    ordered = tuple(done[s.index] for s in segments)
    return ClusterRun(segments=ordered, lost_workers=tuple(seen[a] for a in sorted(lost)),
                      warnings=tuple(warnings), wall_s=time.perf_counter() - t0)


def _workers(client: Any) -> dict[str, str]:
    """Address -> name of the workers the scheduler knows now."""
    info = client.scheduler_info(n_workers=-1)
    return {addr: str(w.get("name", addr)) for addr, w in info.get("workers", {}).items()}


def concat_pulled(run: ClusterRun, local_file: Callable[[NodeSegment], Path],
                  output: Path) -> None:
    """Check every pulled segment against its task's sha256, then join them without re-encoding."""
    from renderer.encode import concat
    from renderer.shard import sha256_file

    paths = []
    for seg in run.segments:
        path = local_file(seg)
        if not path.is_file():
            raise ClusterError(f"segment {seg.result.index} was not pulled from {seg.worker} "
                               f"(expected {path})")
        if sha256_file(path) != seg.result.sha256:
            raise ClusterError(f"segment {seg.result.index} from {seg.worker} differs from what "
                               "the worker wrote (sha256 mismatch)")
        paths.append(path)
    concat(paths, output)


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return "cancelled"
    text = str(exc) or exc.__class__.__name__
    return " ".join(text.split())


# ----------------------------------------------------------------------------- node commands


@dataclass(frozen=True)
class DaskPorts:
    """Fixed ports, so the firewall can name them (Dask's default worker ports are random)."""

    scheduler: int = 8786
    http: int = 8787  # the scheduler's HTTP server (health, metrics): it runs even without the
    #                   dashboard, on every interface unless told otherwise
    worker: int = 8788
    nanny: int = 8789

    @property
    def span(self) -> str:
        """The ufw port range covering all four."""
        ports = (self.scheduler, self.http, self.worker, self.nanny)
        lo, hi = min(ports), max(ports)
        return f"{lo}:{hi}" if lo != hi else str(lo)


def private_ipv4(address: str) -> str:
    """The address if it is a private IPv4 (Linode private 192.168.128.0/17, a VLAN's range);
    Dask speaks unencrypted pickles, so it must never listen on a public one."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise ClusterError(f"{address!r} is not an IPv4 address") from None
    if not ip.is_private or ip.is_loopback or ip.is_unspecified:
        raise ClusterError(f"{address} is not a private address: Dask ports must stay off the "
                           "internet")
    return str(ip)


def scheduler_command(python: str | PurePosixPath, project: str | PurePosixPath,
                      private_ip: str, ports: DaskPorts = DaskPorts(),
                      idle_timeout_s: int = 3600, worker_ttl_s: float | None = None) -> str:
    """Shell command (foreground) for the scheduler on the first node, on its private address.

    No dashboard (it would listen on every interface); the idle timeout stops a scheduler the
    launcher forgot, though the node is deleted anyway. worker_ttl_s: how long a silent worker
    (its node gone without closing its connections) counts as alive; Dask's default is 5 min.
    """
    ip = private_ipv4(private_ip)
    argv = [str(python), "-m", "dask", "scheduler", "--host", ip, "--port", str(ports.scheduler),
            "--no-dashboard", "--dashboard-address", f"{ip}:{ports.http}", "--no-jupyter",
            "--idle-timeout", f"{idle_timeout_s}s"]
    env = "" if worker_ttl_s is None else \
        f"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL={worker_ttl_s:g}s "
    return f"cd {shlex.quote(str(project))} && {env}exec {shlex.join(argv)}"


def worker_command(python: str | PurePosixPath, project: str | PurePosixPath,
                   scheduler_ip: str, private_ip: str, name: str, sizing: WorkerSizing,
                   local_dir: str | PurePosixPath, ports: DaskPorts = DaskPorts(),
                   death_timeout_s: int = 120) -> str:
    """Shell command (foreground) for one node's worker: one process, `sizing.tasks` threads.

    Runs from the project directory so tasks import this checkout's renderer. More than one
    task thread needs a thread-safe numba layer (OpenMP or TBB; the default workqueue aborts on
    concurrent launches), so the environment asks for one and a node without it fails loudly.
    """
    argv = [str(python), "-m", "dask", "worker",
            f"tcp://{private_ipv4(scheduler_ip)}:{ports.scheduler}",
            "--host", private_ipv4(private_ip), "--worker-port", str(ports.worker),
            "--nanny-port", str(ports.nanny), "--nthreads", str(sizing.tasks),
            "--nworkers", "1", "--name", name, "--no-dashboard",
            "--dashboard-address", f"{private_ipv4(private_ip)}:0",
            "--local-directory", str(local_dir), "--death-timeout", f"{death_timeout_s}s"]
    env = "NUMBA_THREADING_LAYER=threadsafe " if sizing.tasks > 1 else ""
    # The worker's processes import segment_task (launcher.cluster.dask_cluster) from this checkout.
    env += f"PYTHONPATH={shlex.quote(str(project))} "
    return f"cd {shlex.quote(str(project))} && {env}exec {shlex.join(argv)}"


def in_background(command: str, log: str | PurePosixPath, pid_file: str | PurePosixPath) -> str:
    """Wrap a foreground command so an SSH session can start it and return at once."""
    inner = shlex.quote(command)
    return (f"nohup setsid sh -c {inner} > {shlex.quote(str(log))} 2>&1 < /dev/null & "
            f"echo $! > {shlex.quote(str(pid_file))}")


def stop_command(pid_file: str | PurePosixPath, grace_s: int = 10) -> str:
    """Shell command that stops what in_background started, and returns once it is gone.

    in_background's setsid makes the recorded pid a session (and process group) of its own, so
    the whole of it goes (a worker's nanny, its worker process, their ffmpeg): its ports are free
    after. SIGTERM first, SIGKILL after grace_s. Zombies count as gone: an init that does not
    reap (a container's) leaves them, and they hold nothing. Nothing recorded or nothing left:
    exit 0; still running after SIGKILL: exit 1.
    """
    pid = shlex.quote(str(pid_file))
    return (f'p=$(cat {pid} 2>/dev/null) && [ -n "$p" ] || exit 0; '
            'alive() { ps -o stat= -s "$p" | grep -qv "^Z"; }; '
            'kill -TERM "-$p" 2>/dev/null; '
            f'for i in $(seq {grace_s * 10}); do alive || exit 0; sleep 0.1; done; '
            'kill -KILL "-$p" 2>/dev/null; '
            'for i in $(seq 50); do alive || exit 0; sleep 0.1; done; exit 1')


def running_command(pid_file: str | PurePosixPath) -> str:
    """Shell command that succeeds while what in_background started still runs (a zombie, which
    an init that does not reap leaves behind, does not count)."""
    return f'p=$(cat {shlex.quote(str(pid_file))}) && ps -o stat= -p "$p" | grep -qv "^Z"'


def ufw_rules(own_private_ip: str, peer_private_ips: Sequence[str],
              ports: DaskPorts = DaskPorts()) -> list[str]:
    """ufw commands on one node: the Dask ports open to the run's nodes' private addresses only.

    Each rule names the destination too, so nothing reaches the ports through the public
    interface; loopback (how the SSH tunnel arrives) is already allowed by ufw's own rules.
    """
    own = private_ipv4(own_private_ip)
    peers = sorted({private_ipv4(p) for p in (own, *peer_private_ips)})
    return [f"ufw allow proto tcp from {p} to {own} port {ports.span} comment juliafarm-dask"
            for p in peers]


# ----------------------------------------------------------------------------- tunnel


@dataclass(frozen=True)
class Tunnel:
    """An SSH local forward: 127.0.0.1:local_port here -> scheduler's private address there."""

    local_port: int
    remote_host: str
    remote_port: int

    @property
    def scheduler_address(self) -> str:
        """What the launcher's dask Client connects to."""
        return f"tcp://127.0.0.1:{self.local_port}"

    def argv(self, ssh_argv: Sequence[str]) -> list[str]:
        """The tunnel's ssh command from provision.ssh.ssh_command's argv (ssh, options, dest).

        -N runs nothing remotely; ExitOnForwardFailure makes a taken port an error, not a
        tunnel that silently forwards nothing.
        """
        if not ssh_argv or Path(ssh_argv[0]).name != "ssh":
            raise ValueError("expected an ssh argv")
        forward = ["-N", "-o", "ExitOnForwardFailure=yes",
                   "-L", f"127.0.0.1:{self.local_port}:{self.remote_host}:{self.remote_port}"]
        return [ssh_argv[0], *forward, *ssh_argv[1:]]


def tunnel_to(scheduler_private_ip: str, ports: DaskPorts = DaskPorts(),
              local_port: int | None = None) -> Tunnel:
    return Tunnel(local_port=local_port or free_local_port(),
                  remote_host=private_ipv4(scheduler_private_ip), remote_port=ports.scheduler)


def free_local_port() -> int:
    """A port on 127.0.0.1 free right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float, interval_s: float = 0.2) -> None:
    """Until something accepts on host:port (the tunnel is up), or ClusterError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise ClusterError(f"nothing accepts on {host}:{port} after {timeout_s:.0f} s "
                                   f"({exc.strerror or exc})") from None
        time.sleep(interval_s)
