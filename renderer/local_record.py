"""A finished local render's measurements, kept in the user's state directory.

`renderer render` writes one small JSON file per completed render: how long it took as a whole
(process start to the final rename, what the user waited for) and term by term (kernel, colour,
encoder CPU, join), with the scene's identity and this machine's. The launcher's estimate pairs
it with what it predicted for the same scene on the same machine, so the local row learns this
machine's real pipeline speed and its error bars come from the user's own renders.

Writing is best-effort: a render that finished is never failed by its record.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from renderer.atomic import atomic_target
from renderer.machine import machine_key, renderer_version
from renderer.scene import Scene

if TYPE_CHECKING:  # for the annotation only: render loads numba, which `renderer --help` need not
    from renderer.render import RenderSummary

LOCAL_RENDERS = "renders"  # under state_root()
KEEP = 200  # newest records kept; older ones are removed as new ones come


def state_root() -> Path:
    """$XDG_STATE_HOME/juliafarm (~/.local/state/juliafarm): run records, keys, local renders."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "juliafarm"


def scene_key(scene: Scene) -> str:
    """What was rendered, whatever the output's name or the scene file's place: two renders
    (or an estimate and a render) of the same frames share it."""
    same = replace(scene, output=Path("-"), source=None)
    return hashlib.sha256(repr(same).encode()).hexdigest()[:16]


def local_render_record(scene: Scene, summary: RenderSummary, wall_s: float) -> dict[str, Any]:
    """The record's fields: identities, the whole wall time and the measured terms."""
    fs = summary.frame_stats
    return {
        "kind": "local-render",
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "scene_key": scene_key(scene),
        "machine": machine_key(summary.cores),
        "renderer_version": renderer_version(),
        "width": scene.width, "height": scene.height, "supersample": scene.supersample,
        "frames": summary.frames, "rendered_frames": summary.rendered_frames,
        "resumed_frames": summary.resumed_frames, "max_iterations": scene.max_iterations,
        "preset": scene.encoding.preset, "crf": scene.encoding.crf,
        "cores": summary.cores, "encoders": summary.encoders,
        "wall_s": round(wall_s, 3), "render_s": round(summary.total_s, 3),
        "kernel_s": round(fs.kernel_s, 3), "colour_s": round(fs.colour_s, 3),
        "encode_cpu_s": round(summary.encode_cpu_s, 3), "join_s": round(summary.join_s, 3),
        "executed_iterations": int(fs.executed_iterations),
        "useful_iterations": int(fs.useful_iterations),
        "output": str(summary.output.absolute()),  # what `launcher history` lists
    }


def save_local_render(scene: Scene, summary: RenderSummary, wall_s: float,
                      root: Path | None = None) -> Path | None:
    """Write the record (atomically, 0600 in a 0700 directory); None if it could not be."""
    folder = (root or state_root()) / LOCAL_RENDERS
    record = local_render_record(scene, summary, wall_s)
    path = folder / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}.json"
    record["id"] = f"local-{path.stem}"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_target(path) as tmp:
            tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            tmp.chmod(0o600)
        _prune(folder)
    except OSError:
        return None
    return path


def load_local_renders(root: Path | None = None) -> list[dict[str, Any]]:
    """Every readable local render record, oldest first."""
    out = []
    for p in sorted(((root or state_root()) / LOCAL_RENDERS).glob("*.json")):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("kind") == "local-render":
            out.append(data)
    return out


def _prune(folder: Path) -> None:
    for old in sorted(folder.glob("*.json"))[:-KEEP]:
        old.unlink(missing_ok=True)
