"""launcher.cluster.dask_cluster and estimate.cluster: segments on a real Dask cluster
(LocalCluster, and the real `dask scheduler`/`dask worker` commands on 127.0.0.1) equal a local
render; the commands, tunnel and firewall rules; the N-node estimate's arithmetic."""

from __future__ import annotations

import math
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from launcher.cluster.dask_cluster import (
    ClusterError,
    ClusterRun,
    DaskPorts,
    NodeSegment,
    Tunnel,
    concat_pulled,
    free_local_port,
    in_background,
    private_ipv4,
    render_on_cluster,
    running_command,
    scheduler_command,
    size_workers,
    stop_command,
    tunnel_to,
    ufw_rules,
    wait_for_port,
    worker_command,
)
from launcher.estimate.cluster import (
    ClusterEstimate,
    estimate_cluster,
    even_segments,
    split_segments,
    suggest_nodes,
)
from renderer.cli import app as renderer_app
from renderer.encode import count_frames, find_ffmpeg
from renderer.segments import plan_segments
from renderer.shard import SegmentResult
from tests.renderer.conftest import SMALL

try:
    import distributed
except ImportError:  # the commands, tunnel, firewall and estimate tests need no dask
    distributed = None

needs_dask = pytest.mark.skipif(
    distributed is None,
    reason="dask distributed is not installed (pip install 'juliafarm[cluster]')")

FRAMES = 10
SEG = 2
PROJECT = Path(__file__).resolve().parents[2]


def scene_text(tmp: Path) -> str:
    return SMALL.format(w=48, h=32, frames=FRAMES, mode="escape", ss=1, cmap="magma",
                        out=tmp / "local.mp4")


def decode_rgb(path: Path) -> bytes:
    return subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(path), "-f", "rawvideo",
                           "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """The scene, and its local `renderer render --frames-dir` (MP4, frames dir)."""
    tmp = tmp_path_factory.mktemp("local")
    text = scene_text(tmp)
    (tmp / "scene.toml").write_text(text)
    res = CliRunner().invoke(renderer_app, [
        "render", str(tmp / "scene.toml"), "--frames-dir", str(tmp / "frames"),
        "--segment-frames", str(SEG), "--workers", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    return text, tmp / "local.mp4", tmp / "frames"


def node_dirs(tmp: Path, names: list[str], kind: str) -> dict[str, str]:
    """One directory per worker: each stands for a separate node's disk."""
    return {n: str(tmp / f"node-{n}" / kind) for n in names}


def assert_same_as_local(run: ClusterRun, tmp: Path, reference: tuple[str, Path, Path],
                         frames_dirs: dict[str, str] | None = None) -> None:
    _, local_mp4, local_frames = reference
    joined = tmp / "joined.mp4"
    concat_pulled(run, lambda s: Path(s.result.path), joined)
    assert [s.result.index for s in run.segments] == list(range(FRAMES // SEG))
    assert count_frames(joined) == FRAMES
    assert decode_rgb(joined) == decode_rgb(local_mp4)
    assert joined.read_bytes() == local_mp4.read_bytes()
    if frames_dirs is not None:
        pngs = {p.name: p for d in frames_dirs.values() if Path(d).is_dir()
                for p in Path(d).iterdir()}
        assert sorted(pngs) == sorted(p.name for p in local_frames.iterdir())
        for name, path in pngs.items():
            assert path.read_bytes() == (local_frames / name).read_bytes(), name


@needs_dask
def test_two_worker_processes_render_the_local_video_and_frames(tmp_path: Path,
                                                               reference) -> None:
    text = reference[0]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        names = [str(n) for n in cluster.workers]
        outs, frames = node_dirs(tmp_path, names, "out"), node_dirs(tmp_path, names, "frames")
        seen: list[int] = []
        run = render_on_cluster(client, text, plan_segments(FRAMES, SEG), SEG, outs,
                                frames_dirs=frames, kernel_threads=1,
                                on_segment=lambda s: seen.append(s.result.index))
    assert sorted(seen) == list(range(FRAMES // SEG)) and not run.lost_workers
    for seg in run.segments:  # each file lies in the directory of the node that rendered it
        assert Path(seg.result.path).parent == Path(outs[seg.worker])
    assert sum(len(v) for v in run.files_by_worker().values()) == FRAMES // SEG
    assert_same_as_local(run, tmp_path, reference, frames)


@needs_dask
def test_a_worker_lost_mid_run_still_completes_with_a_warning(tmp_path: Path,
                                                             reference) -> None:
    text = reference[0]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        names = [str(n) for n in cluster.workers]
        outs = node_dirs(tmp_path, names, "out")
        killed: list[str] = []

        def kill_one(seg: NodeSegment) -> None:
            if killed:
                return
            # The worker that just finished a segment: the file of that segment goes with it.
            killed.append(seg.worker)
            cluster.sync(cluster.workers[_key(cluster, seg.worker)].close)

        warnings: list[str] = []
        run = render_on_cluster(client, text, plan_segments(FRAMES, SEG), SEG, outs,
                                kernel_threads=1, on_segment=kill_one,
                                on_warning=warnings.append)
    assert run.lost_workers == tuple(killed)
    assert any(f"worker {killed[0]}" in w and "left the cluster" in w for w in warnings)
    assert all(s.worker != killed[0] for s in run.segments)
    assert run.warnings == tuple(warnings)
    assert_same_as_local(run, tmp_path, reference)


@needs_dask
def test_should_stop_cancels_the_rest_with_its_reason(tmp_path: Path, reference) -> None:
    finished: list[int] = []
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with pytest.raises(ClusterError, match=r"cap reached; [1-4] of 5 segments finished"):
            render_on_cluster(client, reference[0], plan_segments(FRAMES, SEG), SEG,
                              str(tmp_path), kernel_threads=1,
                              on_segment=lambda s: finished.append(s.result.index),
                              should_stop=lambda: "cap reached" if finished else None)
    assert 1 <= len(finished) < FRAMES // SEG


def _key(cluster: object, name: str) -> object:
    return next(k for k in cluster.workers if str(k) == name)  # type: ignore[attr-defined]


@needs_dask
def test_a_task_that_keeps_failing_is_a_cluster_error(tmp_path: Path, reference) -> None:
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with pytest.raises(ClusterError, match="segment 0 failed.*no output directory"):
            render_on_cluster(client, reference[0], plan_segments(FRAMES, SEG)[:1], SEG,
                              {"no-such-worker": str(tmp_path)}, kernel_threads=1)


@needs_dask
def test_the_real_dask_commands_start_a_cluster_that_renders(tmp_path: Path,
                                                             reference) -> None:
    """scheduler_command and worker_command as a node runs them (127.0.0.1 for the private
    address, which is all this machine has): every flag is accepted and the worker is sized."""
    ports = DaskPorts(scheduler=free_local_port(), http=free_local_port(),
                      worker=free_local_port(), nanny=free_local_port())
    sizing = size_workers(2, tasks=2)
    private = "10.11.12.13"  # replaced below: the functions refuse loopback on purpose
    sched = scheduler_command(sys.executable, PROJECT, private, ports)
    work = worker_command(sys.executable, PROJECT, private, private, "node-0", sizing,
                          tmp_path / "dask", ports)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    procs = [subprocess.Popen(["sh", "-c", cmd.replace(private, "127.0.0.1")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True) for cmd in (sched, work)]
    try:
        with distributed.Client(f"tcp://127.0.0.1:{ports.scheduler}", timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
            workers = client.scheduler_info()["workers"]
            (addr, info), = workers.items()
            assert info["name"] == "node-0" and info["nthreads"] == 2
            assert addr == f"tcp://127.0.0.1:{ports.worker}"
            run = render_on_cluster(client, reference[0], plan_segments(FRAMES, SEG), SEG,
                                    str(tmp_path / "out"), kernel_threads=sizing.kernel_threads)
        assert {s.worker for s in run.segments} == {"node-0"}
        assert_same_as_local(run, tmp_path, reference)
    finally:
        for p in procs:
            os.killpg(p.pid, 15)
        for p in procs:
            p.wait(timeout=30)


# ----------------------------------------------------------------------------- commands


@pytest.mark.parametrize("cores, tasks, kernel", [(1, 1, 1), (2, 1, 2), (8, 1, 8), (16, 2, 8),
                                                  (48, 6, 8), (50, 6, 8), (64, 8, 8)])
def test_worker_sizing_never_oversubscribes(cores: int, tasks: int, kernel: int) -> None:
    s = size_workers(cores)
    assert (s.tasks, s.kernel_threads) == (tasks, kernel)
    assert s.tasks * s.kernel_threads <= cores


def test_sizing_with_forced_tasks_shares_the_cores() -> None:
    assert size_workers(48, tasks=48).kernel_threads == 1
    assert size_workers(4, tasks=3).kernel_threads == 1
    assert size_workers(4, tasks=9).tasks == 4  # no more task threads than cores
    with pytest.raises(ValueError):
        type(size_workers(4))(cores=4, tasks=3, kernel_threads=2)


def test_commands_bind_private_addresses_only() -> None:
    sched = shlex.split(scheduler_command("/v/bin/python", "/p", "192.168.140.7"))
    assert sched[:3] == ["cd", "/p", "&&"]
    assert sched[sched.index("--host") + 1] == "192.168.140.7"
    assert "--no-dashboard" in sched and sched[sched.index("--port") + 1] == "8786"
    # The HTTP server runs even without the dashboard: on the private address too.
    assert sched[sched.index("--dashboard-address") + 1] == "192.168.140.7:8787"
    work = shlex.split(worker_command("/v/bin/python", "/p", "192.168.140.7", "192.168.150.2",
                                      "node-1", size_workers(48), "/tmp/d"))
    assert "tcp://192.168.140.7:8786" in work
    assert work[work.index("--host") + 1] == "192.168.150.2"
    assert work[work.index("--dashboard-address") + 1] == "192.168.150.2:0"
    assert work[work.index("--nthreads") + 1] == "6" and work[work.index("--nworkers") + 1] == "1"
    assert "NUMBA_THREADING_LAYER=threadsafe" in work
    assert "NUMBA_THREADING_LAYER=threadsafe" not in worker_command(
        "py", "/p", "10.0.0.1", "10.0.0.2", "n", size_workers(2), "/d")
    for public in ("8.8.8.8", "0.0.0.0", "127.0.0.1", "not-an-ip"):
        with pytest.raises(ClusterError):
            scheduler_command("py", "/p", public)
        with pytest.raises(ClusterError):
            worker_command("py", "/p", "10.0.0.1", public, "n", size_workers(2), "/d")


def test_in_background_returns_at_once_and_records_the_pid(tmp_path: Path) -> None:
    log, pid_file = tmp_path / "log", tmp_path / "pid"
    t0 = time.monotonic()
    subprocess.run(["sh", "-c", in_background("echo started; sleep 0.2", log, pid_file)],
                   check=True, timeout=5)
    assert time.monotonic() - t0 < 1.0
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while "started" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "started" in log.read_text() and pid > 1


def _state(pid: int) -> str:
    """A process's state letter (Z: a zombie), or "-" once it is reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "-"


@pytest.mark.skipif(not shutil.which("ps"), reason="needs ps (procps), as every node has")
@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_stop_command_stops_the_whole_group_even_what_ignores_sigterm(tmp_path: Path,
                                                                      shell: str) -> None:
    log, pid_file, child_file = tmp_path / "log", tmp_path / "pid", tmp_path / "child"
    # A leader and a child that ignores SIGTERM, as a nanny and its busy worker process may.
    body = f"(trap '' TERM; exec sleep 1000) & echo $! > {child_file}; " \
           "sleep 1000"
    subprocess.run([shell, "-c", in_background(body, log, pid_file)], check=True, timeout=5)
    deadline = time.monotonic() + 5
    while not (child_file.is_file() and child_file.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pid, child = int(pid_file.read_text()), int(child_file.read_text())
    assert subprocess.run([shell, "-c", running_command(pid_file)], timeout=5).returncode == 0
    done = subprocess.run([shell, "-c", stop_command(pid_file, grace_s=1)], timeout=30)
    assert done.returncode == 0
    assert _state(pid) in "Z-" and _state(child) in "Z-"
    assert subprocess.run([shell, "-c", running_command(pid_file)], timeout=5).returncode != 0
    # Nothing recorded, or nothing left to stop: success, at once.
    assert subprocess.run([shell, "-c", stop_command(tmp_path / "none")], timeout=5
                          ).returncode == 0
    assert subprocess.run([shell, "-c", stop_command(pid_file)], timeout=5).returncode == 0


def test_ufw_rules_open_the_dask_ports_to_the_run_nodes_only() -> None:
    rules = ufw_rules("192.168.128.10", ["192.168.200.3", "192.168.128.10", "192.168.129.4"])
    assert rules == [
        f"ufw allow proto tcp from {src} to 192.168.128.10 port 8786:8789 comment juliafarm-dask"
        for src in ("192.168.128.10", "192.168.129.4", "192.168.200.3")]
    assert all(" any " not in r and "from any" not in r for r in rules)
    with pytest.raises(ClusterError, match="not a private"):
        ufw_rules("192.168.128.10", ["45.79.1.2"])
    assert DaskPorts(scheduler=9000, http=9000, worker=9000, nanny=9000).span == "9000"


def test_private_ipv4_accepts_linode_and_vlan_ranges() -> None:
    for ok in ("192.168.128.5", "10.0.0.2", "172.16.3.4"):
        assert private_ipv4(ok) == ok


def test_tunnel_argv_is_accepted_by_ssh(tmp_path: Path) -> None:
    """`ssh -G` parses the whole command line and prints the result without connecting."""
    from provision.ssh import ssh_command

    if not _have("ssh"):
        pytest.skip("needs the ssh client")
    keys = SimpleNamespace(private_path=tmp_path / "id", known_hosts_path=tmp_path / "kh")
    tunnel = tunnel_to("192.168.140.7", local_port=40123)
    assert tunnel == Tunnel(40123, "192.168.140.7", 8786)
    assert tunnel.scheduler_address == "tcp://127.0.0.1:40123"
    argv = tunnel.argv(ssh_command(keys, "juliafarm", "203.0.113.9"))  # type: ignore[arg-type]
    assert argv[-3:] == ["-l", "juliafarm", "203.0.113.9"] and "-N" in argv
    out = subprocess.run([argv[0], "-G", *argv[1:]], capture_output=True, text=True,
                         check=True, timeout=10).stdout
    assert "localforward [127.0.0.1]:40123 [192.168.140.7]:8786" in out
    assert "exitonforwardfailure yes" in out and "hostname 203.0.113.9" in out
    with pytest.raises(ValueError):
        tunnel.argv(["rsync", "x"])


def test_wait_for_port(tmp_path: Path) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        wait_for_port("127.0.0.1", srv.getsockname()[1], timeout_s=2)
    port = free_local_port()
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match="nothing accepts"):
        wait_for_port("127.0.0.1", port, timeout_s=0.3, interval_s=0.05)
    assert time.monotonic() - t0 < 2


def test_concat_pulled_refuses_a_corrupt_or_missing_segment(tmp_path: Path) -> None:
    f = tmp_path / "seg-00000.mp4"
    f.write_bytes(b"not what the worker wrote")
    result = SegmentResult(index=0, first=0, stop=1, path=str(f), host="h", size_bytes=3,
                           sha256="0" * 64, kernel_threads=1, total_s=0, kernel_s=0, colour_s=0,
                           encode_wait_s=0, encode_cpu_s=0)
    run = ClusterRun(segments=(NodeSegment("n", "tcp://x", result),), lost_workers=(),
                     warnings=(), wall_s=0)
    with pytest.raises(ClusterError, match="sha256 mismatch"):
        concat_pulled(run, lambda s: f, tmp_path / "o.mp4")
    with pytest.raises(ClusterError, match="was not pulled from n"):
        concat_pulled(run, lambda s: tmp_path / "missing.mp4", tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def _have(tool: str) -> bool:
    from shutil import which

    return which(tool) is not None


# ----------------------------------------------------------------------------- estimate

PLAN = SimpleNamespace(price_hourly_usd=1.0, price_monthly_usd=None)


def test_split_is_list_scheduling_in_order() -> None:
    # 2 nodes, 1 slot each, no overhead: 4,1,1,1 -> node0: 4; node1: 1,1,1 -> makespan 4.
    assert split_segments([4, 1, 1, 1], 2, 1, 0.0) == (4.0, (1, 3))
    # A slot of a 2-task node has half the cores: segments take twice as long.
    assert split_segments([1, 1], 1, 2, 0.0) == (2.0, (2,))
    # Per-task overhead on every task, and the scheduler starts one task per overhead.
    span, split = split_segments([0.0] * 10, 10, 1, 0.5)
    assert split == (1,) * 10 and span == pytest.approx(9 * 0.5 + 0.5)
    with pytest.raises(ValueError):
        split_segments([1.0], 0)


def test_estimate_one_node_equals_the_single_node_model() -> None:
    e = estimate_cluster(even_segments(600, 6), 1, PLAN, node_setup_s=120, finish_s=10,
                         delete_s=5)
    assert (e.render_s, e.setup_s, e.total_s, e.node_lifetime_s) == (600, 120, 730, 735)
    assert e.cost_usd == 1.0 and e.speedup == 1.0 and e.segments_per_node == (6,)


def test_estimate_n_nodes_arithmetic() -> None:
    e = estimate_cluster(even_segments(3600, 12), 3, PLAN, node_setup_s=100,
                         task_overhead_s=0.01, cluster_start_s=20, create_stagger_s=2)
    assert e.segments_per_node == (4, 4, 4)
    # The third node's first task is dispatched two overheads late, then runs 4 tasks back to back.
    assert e.render_s == pytest.approx(2 * 0.01 + 4 * (300 + 0.01))
    assert e.setup_s == 100 + 2 * 2 + 20
    assert e.total_s == pytest.approx(e.setup_s + e.render_s)
    assert e.cost_usd == 3.0  # each node is billed its started hour
    assert e.speedup == pytest.approx(3600 / e.render_s) and e.efficiency < 1.0
    # 5 segments on 4 nodes: one node renders two, so the speedup is 2.5x, not 4x.
    five = estimate_cluster(even_segments(500, 5), 4, PLAN, node_setup_s=0, task_overhead_s=0)
    assert five.render_s == 200 and five.speedup == 2.5
    assert isinstance(five, ClusterEstimate) and "4 node(s)" in five.row()


def test_node_rows_carry_the_one_node_intervals() -> None:
    # The render's interval is relative (the per-core speed is every node's), setup's is in
    # seconds (the nodes' common level); the total's combines them as a one-node row does.
    one = estimate_cluster(even_segments(600, 6), 1, PLAN, node_setup_s=120,
                           render_rel_error=0.25, setup_error_s=30)
    three = estimate_cluster(even_segments(600, 6), 3, PLAN, node_setup_s=120,
                             render_rel_error=0.25, setup_error_s=30)
    assert one.render_error_s == pytest.approx(150) and one.setup_error_s == 30
    assert one.total_error_s == pytest.approx(math.hypot(150, 30))
    assert three.render_error_s == pytest.approx(three.render_s * 0.25)
    assert three.render_error_s < one.render_error_s
    assert three.total_error_s == pytest.approx(math.hypot(three.render_s * 0.25, 30))
    assert f"+/- {three.total_error_s:6.1f} s" in three.row()
    plain = estimate_cluster(even_segments(600, 6), 3, PLAN, node_setup_s=120)
    assert plain.total_error_s == 0.0  # no interval given, none made up


def test_setup_measured_on_as_many_nodes_replaces_one_nodes_plus_stagger() -> None:
    e = estimate_cluster(even_segments(600, 6), 3, PLAN, node_setup_s=100, cluster_start_s=20,
                         create_stagger_s=2, measured_setup_s=130)
    assert e.setup_s == 130 + 20  # the slowest of 3 as measured, stagger included; then Dask
    s = suggest_nodes(even_segments(600, 6), PLAN, node_setup_s=100, cluster_start_s=20,
                      create_stagger_s=2, measured_setup_s={3: 130})
    assert [e.setup_s for e in s.table[:4]] == [100, 100 + 2 + 20, 130 + 20, 100 + 6 + 20]


def test_suggestion_meets_a_deadline_cheaply_or_stays_efficient() -> None:
    segs = even_segments(4 * 3600, 48)
    s = suggest_nodes(segs, PLAN, node_setup_s=300, max_nodes=8, deadline_s=2 * 3600)
    # 2 nodes need 2 h of render plus setup; 3 finish in 1.4 h but each bills 2 started hours
    # ($6); 5 finish within the first hour ($5): hourly billing makes 5 nodes the cheapest.
    assert len(s.table) == 8 and all(e.total_s > 2 * 3600 for e in s.table[:2])
    assert [e.cost_usd for e in s.table[2:5]] == [6.0, 8.0, 5.0]
    assert s.nodes == 5 and "cheapest" in s.reason
    free = suggest_nodes(segs, PLAN, node_setup_s=300, max_nodes=8)
    assert free.nodes == 8 and "fastest" in free.reason  # 48 segments split evenly up to 8
    few = suggest_nodes(even_segments(100, 3), PLAN, node_setup_s=10, max_nodes=8,
                        min_efficiency=0.9)
    assert few.nodes == 3  # a 4th node would have no segment to render
    broke = suggest_nodes(segs, PLAN, node_setup_s=300, max_cost_usd=0.5)
    assert broke.nodes == 1 and "budget" in broke.reason


@needs_dask
def test_the_detached_driver_renders_and_writes_where_each_segment_lies(tmp_path: Path,
                                                                        reference,
                                                                        capsys) -> None:
    """launcher.cluster.driver, as node 1 runs it for `--nodes N --detach`: progress lines in
    the renderer's format (what attach parses), and a result that round-trips to a ClusterRun
    joining to the local render."""
    from launcher.cluster.driver import DriverJob, drive, overrides_to_dict, run_from_json
    from launcher.run.remote import parse_progress
    from renderer.scene import Overrides

    text = reference[0]
    scene = tmp_path / "scene.toml"
    scene.write_text(text)
    job = DriverJob(scheduler="", scene_path=str(scene), overrides=overrides_to_dict(
        Overrides()), frames=FRAMES, segment_frames=SEG, segments_dir=str(tmp_path / "segs"),
        frames_dir=None, kernel_threads=1, no_workers_timeout_s=60,
        result_path=str(tmp_path / "cluster-run.json"))
    assert DriverJob.from_json(job.to_json()) == job
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client, client.as_current():
        drive(job, client)
    progress = [p for p in map(parse_progress, capsys.readouterr().err.splitlines()) if p]
    assert progress and progress[-1].frames_done == FRAMES == progress[-1].frames_total
    run = run_from_json((tmp_path / "cluster-run.json").read_text())
    assert not list(tmp_path.glob("*.part"))
    assert_same_as_local(run, tmp_path, reference)


def test_driver_overrides_round_trip() -> None:
    from launcher.cluster.driver import overrides_from_dict, overrides_to_dict
    from renderer.scene import Overrides

    ov = Overrides(num_steps=64, colormap="magma", output=Path("x.mp4"), framerate=12.5)
    assert overrides_from_dict(overrides_to_dict(ov)) == ov
