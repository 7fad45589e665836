"""launcher.estimate.view and estimate_cli: the table (plain and rich), marks, local advice, JSON
rows, and the CLI entry points on the offline price snapshot (no network, nothing created)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from launcher.config import RunConfig
from launcher.estimate import calibration as C
from launcher.estimate import model as E
from launcher.estimate import report as estimate_cli
from launcher.estimate import sampling as S
from launcher.estimate.learning import LocalLearning
from launcher.estimate.view import (
    fmt_s,
    json_rows,
    local_advice,
    marks,
    plain_table,
    print_table,
)
from provision.plans import offline_plans, resolve_plan
from renderer.scene import parse_scene

REQUIRED = ("plan", "vcpus", "price_hourly_usd", "setup_s", "render_s", "total_s",
            "billed_hours", "cost_usd")
SCENE = """
[frame]
width = {w}
height = {w}
[view]
center = [0.0, 0.0]
half_height = 1.8
[iteration]
max_iterations = {it}
[c]
start = [-0.62772, -0.42]
end = [-0.62772, -0.378]
[timing]
fps = 30
frames = {frames}
[output]
path = "x.mp4"
"""


def scene(w=1080, it=500, frames=1800):
    return parse_scene(SCENE.format(w=w, it=it, frames=frames))


CAL = C.Calibration(kernel_s_per_giter=1.2, kernel_s_per_msample=0.01,
                    colour_s_per_msample=0.004, local_cores=2, local_efficiency=0.9,
                    machine="m", kernel_version="k", measured_at="2026-11-25")


def work(giter: float) -> S.WorkSample:
    return S.WorkSample(frames=1800, samples_per_frame=1080 * 1080, executed_giter=giter,
                        useful_giter=2 * giter, computed_msamples=1050.0, rel_error=0.03,
                        sampled_frames=24, sample_side_px=(310, 310),
                        encode_cpu_s_per_mpx=0.04, sample_s=1.0)


def plans(*names):
    pool = offline_plans()
    return [resolve_plan(n, pool) for n in names]


def est(giter=47.0, names=("dedicated-2", "dedicated-8", "dedicated-48")):
    return E.estimate_scene(scene(), plans(*names), calibration=CAL, work=work(giter))


def test_small_scene_says_render_locally_and_marks_rows():
    e = est()
    assert e.local.total_s < min(r.total_s for r in e.rows)
    m = marks(e, None)
    assert m["local"] == ["fastest"]
    cheapest = min(e.rows, key=lambda r: r.cost_usd).plan
    assert "cheapest" in m[cheapest] and "cheapest" not in m["local"]
    advice = local_advice(e)
    assert advice and advice.startswith(f"render locally: ~{e.local.total_s:.0f} s, $0")
    text = plain_table(e)
    lines = text.splitlines()
    assert lines[0].startswith("plan") and lines[1].startswith("this machine")
    assert "render locally" in text and "offline snapshot, 2024-07-19" in text


def test_big_scene_favours_the_cloud_and_deadline_marks_fastest_within_it():
    e = est(giter=20_000.0)  # a long 4K-like job: hours here
    assert local_advice(e) is None
    d48 = next(r for r in e.rows if r.plan == "dedicated-48")
    m = marks(e, deadline_s=d48.total_s + 1)
    assert "fastest within deadline" in m["dedicated-48"]
    m2 = marks(e, deadline_s=1.0)
    assert not any(x.startswith("fastest") for v in m2.values() for x in v)
    assert "no plan finishes within" in plain_table(e, deadline_s=1.0)


def test_json_rows_carry_the_contract_fields():
    e = est()
    rows = json_rows(e, None)
    assert rows[0]["plan"] == "local" and rows[0]["cost_usd"] == 0 and rows[0]["vcpus"] == 2
    for r, pe in zip(rows, e.all_rows, strict=True):
        for k in REQUIRED:
            assert k in r
        assert r["total_s"] == pytest.approx(pe.total_s, abs=0.06)
        assert r["cost_usd"] == pytest.approx(pe.cost_usd, abs=1e-4)
    assert rows[1]["price_source"] == "offline snapshot" and rows[1]["price_date"] == "2024-07-19"
    assert sum(r["cheapest"] for r in rows) == 1
    json.dumps(rows)  # serialisable


def test_rich_table_in_a_terminal_plain_when_piped():
    e = est()
    buf = io.StringIO()
    print_table(e, None, out=buf, plain=False)
    rich_text = buf.getvalue()
    assert "this machine" in rich_text and "━" in rich_text
    piped = io.StringIO()
    print_table(e, None, out=piped)  # StringIO is not a TTY
    assert "━" not in piped.getvalue() and "this machine" in piped.getvalue()


def test_fmt_s():
    assert (fmt_s(5.4), fmt_s(90), fmt_s(4000)) == ("5s", "1m30s", "1h06m")


@pytest.fixture
def fixed(monkeypatch, tmp_path):
    """CLI helpers on a fixed calibration and a small real sampled scene."""
    monkeypatch.setattr(E, "calibrate", lambda **kw: CAL)
    monkeypatch.setattr(estimate_cli, "calibrate", lambda **kw: CAL)
    estimate_cli._WORK.clear()
    return tmp_path


def test_print_estimate_json_with_one_plan(fixed, monkeypatch):
    sc = scene(w=96, it=100, frames=30)
    monkeypatch.setattr(estimate_cli, "sample_work",
                        lambda s: S.sample_work(s, probe_encoder=False))
    out = io.StringIO()
    estimate_cli.print_estimate(sc, RunConfig(output_dir=fixed), only_plan="dedicated-4",
                                deadline_s=None, as_json=True, plans=offline_plans(), out=out)
    rows = json.loads(out.getvalue())
    assert [r["plan"] for r in rows] == ["local", "dedicated-4"]


def test_estimate_line_and_local_is_better(fixed, monkeypatch):
    monkeypatch.setattr(estimate_cli, "sample_work", lambda s: work(47.0))
    p = plans("dedicated-48")[0]
    est = estimate_cli.build_estimate(scene(), [p], fixed)
    line = estimate_cli.line_of(est)
    assert line.startswith("estimate on dedicated-48:") and "render locally: ~" in line
    assert estimate_cli.local_wins(est)
    estimate_cli._WORK.clear()
    monkeypatch.setattr(estimate_cli, "sample_work", lambda s: work(20_000.0))
    est = estimate_cli.build_estimate(scene(), [p], Path(fixed))
    assert not estimate_cli.local_wins(est)
    assert "render locally" not in estimate_cli.line_of(est)


def test_max_cost_refuses_from_the_plan_estimate(fixed, monkeypatch):
    from launcher.run.costguard import CostCapExceeded, check_before_start

    monkeypatch.setattr(estimate_cli, "sample_work", lambda s: work(47.0))
    row = estimate_cli.plan_estimate(scene(), plans("dedicated-48")[0], output_dir=fixed)
    assert row.cost_usd == pytest.approx(1.296)  # one billed hour
    check_before_start(row.cost_usd, 2.00)
    with pytest.raises(CostCapExceeded):
        check_before_start(row.cost_usd, 1.00)


def test_launcher_estimate_command_prints_json_rows(fixed, monkeypatch):
    """The real `launcher estimate` command; its price fetch is replaced by the snapshot so the
    test never leaves this machine."""
    from typer.testing import CliRunner

    import launcher.cli as cli

    monkeypatch.setattr(cli, "_plans_online_or_snapshot", offline_plans)
    monkeypatch.setattr(estimate_cli, "sample_work",
                        lambda s: S.sample_work(s, probe_encoder=False))
    root = Path(__file__).resolve().parents[2]
    res = CliRunner().invoke(cli.app, ["estimate", "--config", str(root / "examples/quick.toml"),
                                       "--plan", "dedicated-4", "--num-frames", "8", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["plan"] for r in rows] == ["local", "dedicated-4"]
    assert rows[1]["billed_hours"] == 1 and rows[1]["cost_usd"] == pytest.approx(0.108)


def test_launcher_estimate_with_nodes_tables_the_plan_on_n_nodes(fixed, monkeypatch):
    from typer.testing import CliRunner

    import launcher.cli as cli

    monkeypatch.setattr(cli, "_plans_online_or_snapshot", offline_plans)
    monkeypatch.setattr(estimate_cli, "sample_work",
                        lambda s: S.sample_work(s, probe_encoder=False))
    root = Path(__file__).resolve().parents[2]
    res = CliRunner().invoke(cli.app, ["estimate", "--config", str(root / "examples/quick.toml"),
                                       "--plan", "dedicated-4", "--num-frames", "240",
                                       "--framerate", "12", "--nodes", "3"])
    assert res.exit_code == 0, res.output
    rows = [line for line in res.stdout.splitlines() if "node(s)" in line]
    assert [int(r.split()[0]) for r in rows] == list(range(1, 9))
    assert "<- --nodes" in rows[2] and "dedicated-4 on several nodes (1 segment(s) at once" \
        in res.stdout
    assert sum("<- suggested" in r for r in rows) == 1 and "suggested: --nodes" in res.stdout


def test_a_learnt_local_row_says_what_taught_it():
    plain = est()
    assert not any(line.startswith("learnt: this machine") for line in plain_table(plain)
                   .splitlines())
    taught = E.estimate_scene(scene(), plans("dedicated-2"), calibration=CAL, work=work(47.0),
                              local_learnt=LocalLearning(factor=1.1, rel_error=0.06, pairs=4))
    text = plain_table(taught)
    assert "learnt: this machine: calibration x 1.10: 4 local render(s) of this machine" in text
    assert json_rows(taught, None)[0]["speed_source"].startswith("calibration x 1.10")
    assert taught.local.render_s == pytest.approx(1.1 * plain.local.render_s)
