"""launcher.estimate.learning: the user's own local renders teach the local row (predicted vs
measured, paired by scene, machine and renderer version), and its interval."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from launcher.estimate import learning as LN
from launcher.estimate import model as E
from launcher.estimate import report as R
from provision.plans import offline_plans, resolve_plan
from renderer.cores import available_cores
from renderer.local_record import LOCAL_RENDERS, load_local_renders, scene_key
from renderer.machine import machine_key, renderer_version
from renderer.scene import parse_scene
from tests.launcher.test_estimate import SCENE, cal, scene, work


def record(sc, wall_s: float, **kw) -> dict:
    base = {"kind": "local-render", "scene_key": scene_key(sc), "machine": "m",
            "renderer_version": "k", "frames": sc.frames, "rendered_frames": sc.frames,
            "resumed_frames": 0, "wall_s": wall_s}
    return base | kw


def file_records(root: Path, *records: dict) -> None:
    folder = root / LOCAL_RENDERS
    folder.mkdir(parents=True, exist_ok=True)
    for i, rec in enumerate(records):
        (folder / f"20261201T0000{i:02d}-1.json").write_text(json.dumps(rec))


def test_a_render_pairs_with_the_prediction_for_its_scene_machine_and_version(tmp_path):
    a, b, c = scene(frames=10), scene(frames=11), scene(frames=12)
    for sc in (a, b):
        LN.save_prediction(sc, cal(), 10.0, root=tmp_path)
    LN.save_prediction(c, cal(machine="other"), 10.0, root=tmp_path)
    file_records(tmp_path,
                 record(a, 12.0),                              # paired: 1.2
                 record(b, 9.0),                               # paired: 0.9
                 record(c, 30.0),                              # predicted on another machine
                 record(a, 11.0, machine="other"),             # rendered on another machine
                 record(a, 11.0, renderer_version="old"),      # another renderer
                 record(a, 5.0, resumed_frames=4),             # a resumed render is no measure
                 record(scene(frames=13), 10.0),               # never estimated
                 record(a, 80.0))                              # 8x: not the model's error
    assert sorted(LN.local_ratios(cal(), root=tmp_path)) == pytest.approx([0.9, 1.2])


def test_the_prediction_is_overwritten_by_the_newest_estimate(tmp_path):
    sc = scene()
    LN.save_prediction(sc, cal(), 10.0, root=tmp_path)
    LN.save_prediction(sc, cal(), 20.0, root=tmp_path)
    file_records(tmp_path, record(sc, 20.0))
    assert LN.local_ratios(cal(), root=tmp_path) == pytest.approx([1.0])


def test_learning_moves_from_the_benchmarks_error_to_the_machines_own():
    assert LN.local_learning([], 0.2) is None
    one = LN.local_learning([1.3], 0.2)
    assert 1.0 < one.factor < 1.3 and one.pairs == 1  # one render moves it, not all the way
    many = LN.local_learning([1.3] * 30, 0.2)
    assert many.factor == pytest.approx(1.3, rel=0.05)
    assert many.rel_error < 0.1  # a machine the model consistently misjudges by 30%: corrected
    scattered = LN.local_learning([0.7, 1.4] * 15, 0.2)
    assert scattered.rel_error > 0.3  # renders that scatter widen the interval past the prior
    assert "30 local render(s)" in scattered.describe()


def test_the_local_row_applies_the_correction_and_its_error():
    sc, w = scene(w=1080, h=1080, frames=1800), work()
    plain = E.local_row(w, sc, cal())
    learnt = LN.LocalLearning(factor=1.25, rel_error=0.05, pairs=12)
    row = E.local_row(w, sc, cal(), learnt)
    assert row.render_s == pytest.approx(1.25 * plain.render_s)
    assert row.render_error_s / row.render_s == pytest.approx(
        E.interval_rel(w.rel_error, model_rel=0.05))
    assert row.render_error_s / row.render_s < plain.render_error_s / plain.render_s
    assert "12 local render(s)" in row.speed_source and plain.speed_source == "calibration"


def test_renders_of_a_centred_scene_do_not_skew_an_off_centre_ones_estimate(tmp_path):
    """The pairs are relative to the model, which carries each scene's sampled work: renders
    the model got right, on a mirrored scene, leave an off-centre scene's estimate alone."""
    centred = scene(w=480, h=480, frames=200)
    wc = work(useful_giter=96.0, executed_giter=30.0)    # mirror: 3.2 useful per executed
    woff = work(useful_giter=48.0, executed_giter=60.0)  # off-centre: 0.8
    predicted = E.local_model_s(wc, centred, cal())
    renders = [scene(w=480, h=480, frames=200 + i) for i in range(5)]
    for sc in renders:
        LN.save_prediction(sc, cal(), predicted, root=tmp_path)
    file_records(tmp_path, *(record(sc, predicted) for sc in renders))
    learnt = LN.local_learning(LN.local_ratios(cal(), root=tmp_path), E.MODEL_REL_ERROR)
    assert learnt is not None and learnt.pairs == 5
    assert learnt.factor == pytest.approx(1.0, rel=1e-3)
    off = E.local_row(woff, centred, cal(), learnt)
    assert off.render_s == pytest.approx(E.local_model_s(woff, centred, cal()), rel=1e-3)


def test_estimate_then_render_then_estimate_learns_from_the_real_render(tmp_path, monkeypatch):
    """The whole loop as a user meets it: `launcher estimate` files its prediction, a real
    `renderer render` of the scene files its record, and the next estimate pairs them."""
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    here = cal(machine=machine_key(available_cores()), kernel_version=renderer_version(),
               local_cores=available_cores())
    monkeypatch.setattr(R, "calibrate", lambda: here)
    path = tmp_path / "scene.toml"
    path.write_text(SCENE.format(w=48, h=32, it=60, frames=6).replace('"x.mp4"', '"clip.mp4"'))
    sc = parse_scene(path.read_text())
    plan = resolve_plan("dedicated-4", offline_plans())
    first = R.build_estimate(sc, [plan])
    assert first.local.speed_source == "calibration"
    proc = subprocess.run([sys.executable, "-c", "from renderer.cli import main; main()",
                           "render", str(path), "--quiet"], cwd=tmp_path,
                          env={**os.environ, "XDG_STATE_HOME": str(state)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (rec,) = load_local_renders(state / "juliafarm")
    # The toy calibration's prediction is far from this machine's truth; keep it plausible so
    # the pair counts, then check the next estimate learns exactly that ratio.
    ratio = rec["wall_s"] / first.local_model_s
    if not LN.PLAUSIBLE_RATIO[0] <= ratio <= LN.PLAUSIBLE_RATIO[1]:
        LN.save_prediction(sc, here, rec["wall_s"] / 1.5, root=state / "juliafarm")
        ratio = 1.5
    else:
        LN.save_prediction(sc, here, first.local_model_s, root=state / "juliafarm")
    second = R.build_estimate(sc, [plan])
    expected = LN.local_learning([ratio], E.MODEL_REL_ERROR)
    assert second.local.render_s == pytest.approx(second.local_model_s * expected.factor, rel=1e-3)
    assert "1 local render(s) of this machine" in second.local.speed_source
    assert not math.isclose(second.local.render_s, first.local.render_s)
