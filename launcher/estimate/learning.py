"""What the user's own local renders teach the local row: predicted against measured.

Every estimate leaves its local prediction for the scene (`save_prediction`, keyed by
`renderer.local_record.scene_key`); every finished `renderer render` leaves what it measured
(`renderer.local_record`). Paired on the same scene, machine and renderer version, each pair is
one measurement of the model's error on this machine. The ratios are scene-independent (the
model carries the scene), so a centred scene's renders correct an off-centre one's estimate.

With few pairs the benchmark's error stands mostly; each pair moves the correction and the
interval towards what this machine measured (a prior worth PRIOR_PAIRS pairs).
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher.estimate.calibration import Calibration
from renderer.atomic import atomic_target
from renderer.local_record import load_local_renders, scene_key, state_root
from renderer.scene import Scene

PREDICTIONS = "predictions"  # under renderer.local_record.state_root()
PRIOR_PAIRS = 5              # the benchmark's error counts as this many pairs
# A ratio this far from 1 is not the model's error but another event (a machine busy with
# something else, a laptop asleep mid-render): left out of the learning.
PLAUSIBLE_RATIO = (0.4, 2.5)


@dataclass(frozen=True)
class LocalLearning:
    """The correction the pairs imply, and the model's relative error that remains."""

    factor: float     # measured / predicted, shrunk towards 1 by the prior
    rel_error: float  # 1 sigma, relative, in place of the benchmark's error alone
    pairs: int

    def describe(self) -> str:
        return (f"{self.pairs} local render(s) of this machine measured the model: "
                f"x{self.factor:.2f}, +/-{100 * self.rel_error:.0f}% (1 sigma)")


def save_prediction(scene: Scene, cal: Calibration, render_s: float,
                    root: Path | None = None) -> None:
    """Best-effort: the model's local render time for the scene, for a later render to meet."""
    folder = (root or state_root()) / PREDICTIONS
    entry = {"scene_key": scene_key(scene), "machine": cal.machine,
             "renderer_version": cal.kernel_version, "render_s": round(render_s, 3),
             "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_target(folder / f"{entry['scene_key']}.json") as tmp:
            tmp.write_text(json.dumps(entry, sort_keys=True) + "\n", encoding="utf-8")
    except OSError:
        pass


def _prediction(root: Path, key: str) -> dict[str, Any] | None:
    try:
        data = json.loads((root / PREDICTIONS / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def local_ratios(cal: Calibration, root: Path | None = None) -> list[float]:
    """measured / predicted for every whole (not resumed) local render on this machine and
    renderer version whose scene an estimate predicted with the same calibration."""
    base = root or state_root()
    out = []
    for rec in load_local_renders(base):
        if (rec.get("machine") != cal.machine or rec.get("renderer_version") != cal.kernel_version
                or rec.get("resumed_frames") or rec.get("rendered_frames") != rec.get("frames")):
            continue
        pred = _prediction(base, str(rec.get("scene_key")))
        if (pred is None or pred.get("machine") != cal.machine
                or pred.get("renderer_version") != cal.kernel_version):
            continue
        try:
            ratio = float(rec["wall_s"]) / float(pred["render_s"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
        if PLAUSIBLE_RATIO[0] <= ratio <= PLAUSIBLE_RATIO[1]:
            out.append(ratio)
    return out


def local_learning(ratios: Sequence[float], prior_rel: float) -> LocalLearning | None:
    """The correction and remaining error from the pairs' ratios; None without pairs.

    In logs (a ratio of 2 and one of 0.5 are equally wrong): the factor is the median log ratio
    weighted against the prior's PRIOR_PAIRS pairs at zero; the error is the prior's and the
    pairs' spread around the factor, pooled by the same weights, plus the factor's own
    uncertainty (a median's variance is pi/2 times the mean's). Replayed on the accuracy
    benchmark's cases in order, 3 prior pairs without the factor's uncertainty covered 73-82%,
    5 with it 91%."""
    logs = [math.log(r) for r in ratios if r > 0]
    n = len(logs)
    if n == 0:
        return None
    centre = statistics.median(logs) * n / (n + PRIOR_PAIRS)
    spread_sq = sum((x - centre) ** 2 for x in logs) / n
    pooled = (PRIOR_PAIRS * prior_rel**2 + n * spread_sq) / (PRIOR_PAIRS + n)
    rel = math.sqrt(pooled + math.pi / 2 * spread_sq / (n + PRIOR_PAIRS))
    return LocalLearning(factor=math.exp(centre), rel_error=rel, pairs=n)
