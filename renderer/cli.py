"""The `renderer` command line: parses flags, builds a Scene, delegates to renderer.render."""

from __future__ import annotations

import time

# What a local render's record calls its wall time starts here, before the imports below: the
# launcher's estimate of a local render includes the process's start-up.
_STARTED = time.perf_counter()

# ruff: noqa: E402 - the clock above must start first

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from renderer import cli_explore, cli_shard
from renderer.cli_common import (
    SceneArg,
    Workers,
    load,
    scene_overrides,
    tidy_help,
    user_errors,
    version_option,
)
from renderer.errors import SceneError
from renderer.local_record import save_local_render
from renderer.scene import Overrides, Scene

app = typer.Typer(
    add_completion=True,
    no_args_is_help=False,
    rich_markup_mode=None,  # plain help, as `launcher`'s: the same look, no type boxes
    help="Render Julia-set animations from a TOML scene, exactly and fast, on all cores.",
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    version: Annotated[bool, version_option("renderer")] = False,
) -> None:
    """Shows --version; the commands do the work."""



@app.command()
@user_errors
@scene_overrides
def render(
    scene_file: SceneArg = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="MP4 to write (default: from the scene).")
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Quarter size and fewer frames, for a quick look.")
    ] = False,
    frames_dir: Annotated[
        Path | None, typer.Option("--frames-dir", help="Also keep every frame as PNG here.")
    ] = None,
    workers: Workers = None,
    segment_frames: Annotated[
        int | None,
        typer.Option("--segment-frames", help="Frames per segment (the unit of resume)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Render the animation to an MP4 (resumes an interrupted render of the same scene)."""
    from renderer.render import RenderOptions, render_animation

    scene = load(scene_file, replace(overrides, output=output))
    options = RenderOptions(
        workers=workers, preview=preview, output_given=output is not None,
        frames_dir=frames_dir,
        segment_frames=segment_frames, progress=not quiet,
    )
    summary = render_animation(scene, options)
    typer.echo(summary.report())
    if summary.scene is not None:  # best-effort: a finished render is never failed by its record
        save_local_render(summary.scene, summary, time.perf_counter() - _STARTED)


@app.command()
@user_errors
@scene_overrides
def image(
    scene_file: SceneArg = None,
    frame: Annotated[int, typer.Option("--frame", "-k", help="Frame number, from 0.")] = 0,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="PNG to write (default: <scene>-K.png).")
    ] = None,
    workers: Workers = None,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Write a single frame as a PNG."""
    from renderer.render import render_still

    scene = load(scene_file, overrides)
    if not 0 <= frame < scene.frames:
        raise SceneError(f"--frame: must be between 0 and {scene.frames - 1}, got {frame}")
    target = output or Path(f"{scene.output.with_suffix('').name}-{frame}.png")
    render_still(scene, frame, target, workers=workers)
    typer.echo(f"wrote {target} (frame {frame}, c = {_fmt_c(scene.c_at_frame(frame))})")


@app.command()
@user_errors
@scene_overrides
def info(
    scene_file: SceneArg = None,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Print the resolved scene (frames, duration, c range) without rendering."""
    scene = load(scene_file, overrides)
    typer.echo(describe(scene))


def _fmt_c(c: complex) -> str:
    sign = "+" if c.imag >= 0 else "-"
    return f"{c.real:.6g} {sign} {abs(c.imag):.6g}i"


def describe(scene: Scene) -> str:
    v = scene.view
    kfs = scene.path.keyframes
    lines = [
        f"scene       {scene.source or '<embedded>'}",
        f"frame       {scene.width}x{scene.height} px, supersample {scene.supersample}x"
        f"{scene.supersample}",
        f"view        x [{v.center_x - v.half_width:.6g}, {v.center_x + v.half_width:.6g}]"
        f"  y [{v.center_y - v.half_height:.6g}, {v.center_y + v.half_height:.6g}]",
        f"iterations  max {scene.max_iterations}, escape radius {scene.escape_radius:g}",
        f"frames      {scene.frames} at {scene.fps:g} fps = {scene.duration_s:.2f} s",
        f"c first     {_fmt_c(scene.c_at_frame(0))}",
        f"c last      {_fmt_c(scene.c_at_frame(scene.frames - 1))}",
        (f"c path      circle around {_fmt_c(scene.path.circle[0])}, radius "
         f"{scene.path.circle[1]:g}, a seamless loop" if scene.path.circle else
         f"c path      {len(kfs)} keyframes, "
         + ", ".join(f"t={k.t:g} {k.easing}" for k in kfs[:-1])
         + (f", window [{float(scene.path.window[0]):g}, {float(scene.path.window[1]):g}]"
            if scene.path.window != (0, 1) else "")
         + (", a seamless loop" if scene.path.loop else "")),
        f"colour      {scene.colormap}{' (reversed)' if scene.reverse_colormap else ''}, "
        f"{scene.colour_mode}",
        f"encode      {scene.encoding.codec} crf {scene.encoding.crf} {scene.encoding.preset} "
        f"{scene.encoding.pix_fmt}",
        f"output      {scene.output}",
    ]
    return "\n".join(lines)


cli_explore.register(app)  # sheet, activity, window
cli_shard.register(app)    # the hidden `segment`


def main() -> None:
    tidy_help(typer.main.get_command(app))(prog_name="renderer")


if __name__ == "__main__":
    main()
