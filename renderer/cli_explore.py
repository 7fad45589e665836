"""`renderer sheet`, `activity` and `window`: find the stretch worth rendering, then cut it out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from renderer.cli_common import (
    SceneArg,
    Workers,
    load,
    resolve_scene_path,
    scene_overrides,
    user_errors,
)
from renderer.errors import SceneError
from renderer.scene import Overrides

PngOutput = Annotated[
    Path | None,
    typer.Option("-o", "--output", help="PNG to write (default: <video name>-<command>.png)."),
]


def _use_cores(workers: int | None) -> int:
    """Kernel threads for this command: all the CPUs this process may use, or --workers."""
    from renderer.cores import available_cores
    from renderer.kernel import set_threads

    if workers is not None and workers < 1:
        raise SceneError(f"--workers: must be at least 1, got {workers}")
    cores = workers or available_cores()
    set_threads(cores)
    return cores


def _png_target(path: Path) -> Path:
    """Check before any work that the PNG can be written where asked."""
    from renderer.render import _check_writable

    if path.suffix.lower() != ".png":
        raise SceneError(f"-o/--output: writes a PNG; give a name ending in .png, got {path}")
    _check_writable(path, "-o/--output")
    return path


@user_errors
@scene_overrides
def sheet(
    scene_file: SceneArg = None,
    output: PngOutput = None,
    cols: Annotated[int, typer.Option("--cols", help="Thumbnails across.")] = 8,
    rows: Annotated[int, typer.Option("--rows", help="Thumbnails down.")] = 6,
    thumb_width: Annotated[
        int, typer.Option("--thumb-width", help="Pixels across one thumbnail.")
    ] = 160,
    workers: Workers = None,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Contact sheet: thumbnails spread evenly through the animation, labelled with t and c."""
    from renderer.atomic import atomic_target
    from renderer.sheet import plan_sheet, render_sheet

    scene = load(scene_file, overrides)
    plan = plan_sheet(scene, cols, rows, thumb_width)
    target = _png_target(output or Path(f"{scene.output.stem}-sheet.png"))
    cores = _use_cores(workers)
    t0 = time.perf_counter()
    result = render_sheet(scene, plan)
    with atomic_target(target) as tmp:
        result.image.save(tmp, format="PNG", optimize=True)
    w, h = result.image.size
    typer.echo(f"wrote {target} ({w}x{h}): {len(result.frames)} of {scene.frames} frames as "
               f"{cols}x{rows} thumbnails of {result.layout.thumb_width}x"
               f"{result.layout.thumb_height} in {time.perf_counter() - t0:.1f} s on {cores} cores")


@user_errors
@scene_overrides
def activity(
    scene_file: SceneArg = None,
    output: PngOutput = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the numbers as JSON (plot only with -o).")
    ] = False,
    samples: Annotated[
        int, typer.Option("--samples", help="Frames measured, spread evenly (all if fewer).")
    ] = 200,
    sample_width: Annotated[
        int, typer.Option("--sample-width", help="Pixels across of the low-resolution pass.")
    ] = 128,
    workers: Workers = None,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Plot interior, escape counts and detail over time (a cheap pass; also the cost profile)."""
    from renderer.activity import activity_json, check_samples, low_resolution, measure_activity

    scene = load(scene_file, overrides)
    check_samples(samples)
    low_resolution(scene, sample_width)  # checks --sample-width before any file is touched
    target = None
    if output is not None or not as_json:
        target = _png_target(output or Path(f"{scene.output.stem}-activity.png"))
    cores = _use_cores(workers)
    t0 = time.perf_counter()
    result = measure_activity(scene, samples, sample_width)
    if target is not None:
        from renderer.activity_plot import plot_activity

        plot_activity(result, scene, target)
    if as_json:
        typer.echo(activity_json(result))
    if target is not None:
        low = result.scene
        msg = (f"wrote {target}: {len(result.frames)} of {scene.frames} frames measured at "
               f"{low.width}x{low.height} in {time.perf_counter() - t0:.1f} s on {cores} cores")
        # With --json, stdout is the JSON alone, so it can be piped.
        typer.echo(msg, err=as_json)


@user_errors
@scene_overrides(without=("num_frames", "duration"))
def window(
    scene_file: SceneArg = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The new scene (.toml) to write.")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help='Start: seconds "4.5s", frame "120f" or "120", or "25%".'),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="End, in the same forms.")] = None,
    new_duration: Annotated[
        float | None,
        typer.Option("--duration", help="Seconds the new scene runs (default: the window's "
                                        "own length, one frame per source frame). --from/--to "
                                        "use the source's timeline."),
    ] = None,
    new_frames: Annotated[
        int | None, typer.Option("--num-frames", help="Or: frames of the new scene.")
    ] = None,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Write a new scene whose c path is exactly the stretch --from..--to of this one."""
    # --from/--to refer to this scene's timeline; --duration/--num-frames set the new scene's
    # length (so they cannot also override the source). Every other override is applied to the
    # source first and kept in the new file, so rendering it renders what `sheet` showed.
    from renderer.window import NewLength, cut_window

    if start is None or end is None:
        raise SceneError("--from and --to: both are needed, e.g. --from 4s --to 5s")
    if output is None:
        raise SceneError("-o/--output: name the new scene file, e.g. -o detail.toml")
    done = cut_window(resolve_scene_path(scene_file), overrides, start, end, output,
                      NewLength(frames=new_frames, duration_s=new_duration))
    typer.echo(done.summary())


@user_errors
@scene_overrides
def retime(
    scene_file: SceneArg = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The new scene (.toml) to write.")
    ] = None,
    preview_size: Annotated[
        int, typer.Option("--preview-size", help="Pixels across of the measuring pass.")
    ] = 200,
    max_speedup: Annotated[
        float, typer.Option("--max-speedup", help="Quiet stretches pass at most this many "
                                                  "times faster than at constant speed.")
    ] = 20.0,
    samples: Annotated[
        int | None, typer.Option("--samples", help="Points measured along the path (default: "
                                                   "4 per frame, 200..1200).")
    ] = None,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Write a new scene whose c moves so each frame changes the picture by about as much."""
    from renderer.retime import retime as retime_scene

    if output is None:
        raise SceneError("-o/--output: name the new scene file, e.g. -o even.toml")
    done = retime_scene(resolve_scene_path(scene_file), overrides, output,
                        preview_px=preview_size, max_speedup=max_speedup, samples=samples)
    typer.echo(done.summary())


def register(app: typer.Typer) -> None:
    """Add the explore commands to the renderer's app, after its own (the help's order)."""
    for command in (sheet, activity, window, retime):
        app.command()(command)
