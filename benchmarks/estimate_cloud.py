"""The estimate of cloud runs against what their records measured, term by term, on the test hosts
(root: the hosts are network namespaces of the local Linode cloud).

    sudo .venv/bin/python benchmarks/estimate_cloud.py [--rounds 2]

Runs `launcher run`'s real code (preflight, launcher.run.single.Job) on dedicated-2 against the
emulator with real Debian 12 hosts, one scene after another, each a scene the ones before it did
not show (centred and mirrored, off-centre with escape colouring and another x264 preset, a
longer one). Before each run the estimate is made exactly as `launcher run` makes it, from the
records of the runs before; after it, the estimate's setup (create, boot, ssh, lease,
bootstrap), upload, render and pull are set against the record's phases. The first run has no
records, so its setup is priced by the defaults (a real Linode's times, not the emulator's): it
is shown but teaches rather than tests. Target (issue 12): each term within +/-20% once the plan
has a record. Also shown: whether the measured setup fell inside the estimate's 80% interval
(the scatter of the setups it came from), and the whole run (setup, upload, render, pull: what the
user waits for) against the estimate's total and its 80% interval. `--rounds N` runs the scenes
N times over, for more runs with records.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from launcher.config import merge  # noqa: E402
from launcher.estimate.model import estimate_scene  # noqa: E402
from launcher.preflight import build_spec, preflight  # noqa: E402
from launcher.run.single import Job  # noqa: E402
from launcher.run.spec import render_args_from  # noqa: E402
from provision.cloud import LinodeCloud  # noqa: E402
from renderer.scene import Overrides, load_scene  # noqa: E402
from tests.fakelinode.hosts import NamespaceHostBackend  # noqa: E402
from tests.fakelinode.image import debian12  # noqa: E402
from tests.fakelinode.server import FakeLinode  # noqa: E402

EXAMPLES = ROOT / "renderer" / "examples"
TARGET = 0.20
RUNS: list[tuple[str, Path, Overrides]] = [
    ("spiral 320px", EXAMPLES / "spiral.toml", Overrides(num_steps=320, num_frames=240)),
    ("off-centre 640x360", ROOT / "benchmarks" / "scenes" / "offcentre.toml",
     Overrides(width=640, height=360, num_frames=150)),
    ("dark-to-yellow 400px", EXAMPLES / "dark-to-yellow.toml",
     Overrides(num_steps=400, num_frames=300)),
    ("spiral 480px", EXAMPLES / "spiral.toml", Overrides(num_steps=480, num_frames=300)),
]
SETUP = ("create", "boot", "ssh", "lease", "bootstrap")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=1, help="run the scenes this many times over")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root: the test hosts are network namespaces")
    backend = NamespaceHostBackend(debian12())
    rows = []
    inside: list[bool] = []  # the measured setup within the estimate's 80% interval
    totals: list[tuple[float, float, bool]] = []  # the whole run: est, measured, inside
    left = []
    phases: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Only this benchmark's records: not the user's own state directory.
        os.environ["XDG_STATE_HOME"] = str(Path(tmp) / "state")
        try:
            with FakeLinode(secrets.token_hex(32), backend=backend, provision_delay_s=2.0,
                            boot_delay_s=3.0, delete_delay_s=0.5) as fake:
                fake.bind_for_hosts("203.0.113.1")
                cloud = LinodeCloud(fake.master_token, fake.url, poll_interval_s=0.5)
                records: list[dict] = []
                for i, (name, path, ov) in enumerate(RUNS * max(1, args.rounds)):
                    scene = load_scene(path, ov)
                    cfg = merge(scene.cloud, plan="dedicated-2", region="us-east",
                                output_dir=str(Path(tmp) / "out"), max_cost_usd=1.0)
                    checked = preflight(scene, cfg, cloud)
                    est = estimate_scene(scene, [checked.plan], records=records,
                                         upload_bytes=checked.upload_bytes).rows[0]
                    spec = build_spec(scene, path, cfg, checked, render_args_from(asdict(ov)))
                    rec = Job(spec, cloud, state_dir=Path(tmp) / f"run{i}").run()
                    ph = rec.phases_s
                    measured_setup = sum(ph.get(k, 0.0) for k in SETUP)
                    inside.append(abs(est.setup_s - est.upload_s - measured_setup)
                                  <= est.setup_error_s)
                    terms = [
                        ("setup", est.setup_s - est.upload_s, measured_setup),
                        ("upload", est.upload_s, ph.get("sync", 0.0)),
                        ("render", est.render_s, ph.get("render", 0.0)),
                        ("pull", est.download_s, ph.get("pull", 0.0)),
                    ]
                    total = sum(m for _, _, m in terms)
                    totals.append((est.total_s, total,
                                   abs(est.total_s - total) <= est.total_error_s))
                    rows.append((name, bool(records), terms, rec.status))
                    records.append(asdict(rec))
                    phases.append((name, {k: round(ph.get(k, 0.0), 1) for k in SETUP}))
                left = [e for e in fake.ledger.entries() if e.deleted is None]
        finally:
            backend.close()
    print("# dedicated-2 test hosts on this machine's cores; est = the estimate before the run, "
          "from the records of the runs above it")
    head = f"{'run':<22}{'records':>8}  " + "  ".join(
        f"{t:>6} est/meas s  err" for t in ("setup", "upload", "render", "pull", "total")
    ) + "  setup in  total in"
    print(head)
    worst = worst_total = 0.0
    for (name, learnt, terms, status), ok, (t_est, t_meas, t_in) in zip(rows, inside, totals,
                                                                        strict=True):
        cells = []
        for _, e, m in terms:
            err = e / m - 1.0 if m > 0 else float("nan")
            if learnt:
                worst = max(worst, abs(err))
            cells.append(f"{e:7.1f}/{m:6.1f} {100 * err:+5.0f}%")
        t_err = t_est / t_meas - 1.0
        if learnt:
            worst_total = max(worst_total, abs(t_err))
        cells.append(f"{t_est:7.1f}/{t_meas:6.1f} {100 * t_err:+5.0f}%")
        print(f"{name:<22}{'yes' if learnt else 'none':>8}  " + "  ".join(cells)
              + f"  {'yes' if ok else 'NO':>8}  {'yes' if t_in else 'NO':>8}"
              + ("" if status == "completed" else f"  ({status})"))
    for name, setup in phases:  # which setup phase moves from run to run
        print(f"# setup of {name}: " + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items()))
    verdict = "met" if worst <= TARGET else "NOT met"
    covered = [ok for (_, learnt, _, _), ok in zip(rows, inside, strict=True) if learnt]
    t_covered = [t[2] for (_, learnt, _, _), t in zip(rows, totals, strict=True) if learnt]
    print(f"SUMMARY: worst term error with records {100 * worst:.0f}% (target "
          f"+/-{100 * TARGET:.0f}%: {verdict}); setup inside its 80% interval in "
          f"{sum(covered)} of {len(covered)} runs with records; instances left running: "
          f"{len(left)}")
    print(f"TOTAL (the whole run, what the user waits for): worst error with records "
          f"{100 * worst_total:.0f}% (+/-{100 * TARGET:.0f}%: "
          f"{'met' if worst_total <= TARGET else 'NOT met'}); inside its 80% interval in "
          f"{sum(t_covered)} of {len(t_covered)}")


if __name__ == "__main__":
    main()
