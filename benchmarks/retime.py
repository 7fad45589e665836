"""Even visual speed: how much of all visual change the busiest 10% of transitions carry, before
and after `renderer retime` (uniform would be 10%).

    .venv/bin/python benchmarks/retime.py [--preview-size 200]

The metric is renderer.retime's: mean CIE76 ΔE between consecutive frames at the preview size,
on the colours the video shows. Not a timing: the numbers are the same on any machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from renderer.retime import retime  # noqa: E402
from renderer.scene import Overrides  # noqa: E402

CASES = (
    ("dark-to-yellow.toml --preview (150 frames)", "dark-to-yellow.toml",
     Overrides(num_frames=150)),
    ("spiral.toml (1800 frames)", "spiral.toml", Overrides()),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preview-size", type=int, default=200)
    args = ap.parse_args()
    print(f"{'scene':<44}{'before':>8}{'after':>8}  median ΔE/frame before -> after")
    with tempfile.TemporaryDirectory() as tmp:
        for label, name, ov in CASES:
            done = retime(ROOT / "examples" / name, ov, Path(tmp) / f"even-{name}",
                          preview_px=args.preview_size)
            print(f"{label:<44}{done.before:>8.0%}{done.after:>8.0%}  "
                  f"{done.median_before:.2f} -> {done.median_after:.2f}")


if __name__ == "__main__":
    main()
