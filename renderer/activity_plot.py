"""The activity of an animation as a PNG plot over time (matplotlib, off-screen)."""

from __future__ import annotations

from pathlib import Path

from renderer.activity import Activity
from renderer.atomic import atomic_target
from renderer.scene import Scene


def plot_activity(activity: Activity, scene: Scene, path: Path) -> None:
    """Four panels over time: interior fraction, escape counts (mean and spread), detail, and
    the visual change per frame."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI; the plot only goes to a file
    from matplotlib.figure import Figure

    fr = activity.frames
    t = [f.time_s for f in fr]
    mean = [f.metrics.mean_count for f in fr]
    std = [f.metrics.std_count for f in fr]

    fig = Figure(figsize=(8, 8), dpi=100, layout="constrained")
    ax_in, ax_n, ax_edge, ax_change = fig.subplots(4, 1, sharex=True)
    ax_in.plot(t, [100 * f.metrics.interior_fraction for f in fr], color="tab:purple")
    ax_in.set_ylabel("interior %")
    ax_n.plot(t, mean, color="tab:orange", label="mean")
    # Counts are never negative; with a large interior they are bimodal and the spread is wide.
    ax_n.fill_between(t, [max(0.0, m - s) for m, s in zip(mean, std, strict=True)],
                      [m + s for m, s in zip(mean, std, strict=True)], color="tab:orange",
                      alpha=0.25, linewidth=0, label="± 1 std")
    ax_n.set_ylabel("escape count")
    ax_n.legend(loc="upper left", fontsize="small", frameon=False)
    ax_edge.plot(t, [100 * f.metrics.edge_density for f in fr], color="tab:green")
    ax_edge.set_ylabel("detail (edge %)")
    ax_change.plot(t, [f.change for f in fr], color="tab:red")
    ax_change.set_ylabel("change/frame (ΔE)")
    ax_change.set_xlabel("time (s)")
    for ax in (ax_in, ax_n, ax_edge, ax_change):
        ax.grid(alpha=0.3)
        ax.set_xlim(0, max(t[-1], 1 / scene.fps))
    low = activity.scene
    name = scene.source.name if scene.source is not None else "quick default"
    fig.suptitle(f"{name}: {len(fr)} of {scene.frames} frames at {low.width}x{low.height}, "
                 f"max {scene.max_iterations} iterations", fontsize="medium")
    with atomic_target(path) as tmp:
        fig.savefig(tmp, format="png")
