"""renderer.local_record: a finished `renderer render` leaves its measurements in the user's
state directory (what the launcher's estimate learns from), never failing the render."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from renderer import local_record as L
from renderer.cores import available_cores
from renderer.machine import machine_key, renderer_version
from renderer.render import RenderSummary, preview_scene
from renderer.scene import Overrides, load_scene
from tests.renderer.conftest import SMALL, small_scene


def render(scene: Path, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state)}
    return subprocess.run([sys.executable, "-c", "from renderer.cli import main; main()",
                           "render", str(scene), "--quiet", *args], cwd=scene.parent, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def scene_file(tmp_path: Path) -> Path:
    path = tmp_path / "scene.toml"
    path.write_text(SMALL.format(w=40, h=30, frames=6, mode="smooth", ss=1, cmap="magma",
                                 out="clip.mp4"))
    return path


def test_a_finished_render_leaves_its_measurements(tmp_path: Path) -> None:
    path, state = scene_file(tmp_path), tmp_path / "state"
    proc = render(path, state, "--num-frames", "5")
    assert proc.returncode == 0, proc.stderr
    folder = state / "juliafarm" / L.LOCAL_RENDERS
    files = list(folder.glob("*.json"))
    assert len(files) == 1 and not list(folder.glob(".*"))  # no temporary left
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    rec = json.loads(files[0].read_text())
    rendered = load_scene(path, Overrides(num_frames=5))
    assert rec["scene_key"] == L.scene_key(rendered)  # what an estimate of it is filed under
    assert rec["machine"] == machine_key(available_cores())
    assert rec["renderer_version"] == renderer_version()
    assert (rec["frames"], rec["rendered_frames"], rec["resumed_frames"]) == (5, 5, 0)
    assert rec["wall_s"] > rec["render_s"] > rec["kernel_s"] > 0  # the process's start counts
    assert rec["executed_iterations"] > 0 and rec["encode_cpu_s"] > 0
    assert rec["output"] == str(tmp_path / "clip.mp4") and rec["id"] == f"local-{files[0].stem}"
    assert L.load_local_renders(state / "juliafarm") == [rec]


def test_a_preview_is_filed_under_the_scene_it_rendered(tmp_path: Path) -> None:
    path, state = scene_file(tmp_path), tmp_path / "state"
    assert render(path, state, "--preview").returncode == 0
    (rec,) = L.load_local_renders(state / "juliafarm")
    full = load_scene(path)
    assert rec["scene_key"] == L.scene_key(preview_scene(full)) != L.scene_key(full)
    assert rec["width"] < full.width and rec["frames"] < full.frames


def test_a_record_that_cannot_be_written_does_not_fail_the_render(tmp_path: Path) -> None:
    path = scene_file(tmp_path)
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the state directory would go")
    proc = render(path, blocked)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "clip.mp4").exists()


def test_the_scene_key_is_what_is_rendered_not_where_it_goes(tmp_path: Path) -> None:
    sc = small_scene(tmp_path)
    assert L.scene_key(sc) == L.scene_key(replace(sc, output=tmp_path / "elsewhere.mp4",
                                                  source=tmp_path / "other.toml"))
    assert L.scene_key(sc) != L.scene_key(replace(sc, frames=sc.frames + 1))
    assert L.scene_key(sc) != L.scene_key(replace(sc, max_iterations=sc.max_iterations + 1))


def test_only_the_newest_records_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.setattr(L, "KEEP", 3)
    sc = small_scene(tmp_path)
    summary = RenderSummary(output=tmp_path / "x.mp4", frames=12, width=48, height=32,
                            rendered_frames=12, resumed_frames=0, cores=2, encoders=1,
                            total_s=1.0, encode_wait_s=0.0, encode_cpu_s=0.5, join_s=0.1)
    folder = tmp_path / L.LOCAL_RENDERS
    folder.mkdir()
    for i in range(4):  # older records, named as the writer names them
        (folder / f"2026010{i}T000000-1.json").write_text("{}")
    assert L.save_local_render(sc, summary, 2.0, root=tmp_path) is not None
    names = sorted(p.name for p in folder.glob("*.json"))
    assert len(names) == 3 and names[0] == "20260102T000000-1.json"
