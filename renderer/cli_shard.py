"""The hidden `renderer segment` command: one segment of a scene to one MP4 (a cluster task)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from renderer.cli_common import (
    SceneArg,
    Workers,
    load,
    scene_overrides,
    user_errors,
)
from renderer.scene import Overrides


@user_errors
@scene_overrides
def segment(
    output: Annotated[Path, typer.Option("-o", "--output", help="MP4 file to write.")],
    index: Annotated[int, typer.Option("--index", help="Segment number, from 0.")],
    segment_frames: Annotated[
        int, typer.Option("--segment-frames", help="Frames per segment, as in the full render.")
    ],
    scene_file: SceneArg = None,
    frames_dir: Annotated[
        Path | None, typer.Option("--frames-dir", help="Also keep the frames as PNG here.")
    ] = None,
    workers: Workers = None,
    encoder_threads: Annotated[
        int | None,
        typer.Option("--encoder-threads", help="ffmpeg -threads (default: x264 chooses).")
    ] = None,
    *,
    overrides: Overrides,  # the scene override options (scene_overrides)
) -> None:
    """Render one segment of the scene to its own MP4 (what a cluster node runs)."""
    from renderer.shard import render_segment_of

    scene = load(scene_file, overrides)
    r = render_segment_of(scene, index, segment_frames, output, frames_dir=frames_dir,
                          kernel_threads=workers, encoder_threads=encoder_threads)
    typer.echo(f"wrote {r.path}: segment {r.index}, frames {r.first}..{r.stop - 1}, "
               f"{r.size_bytes} bytes, sha256 {r.sha256}, {r.total_s:.2f} s on "
               f"{r.kernel_threads} kernel threads")


def register(app: typer.Typer) -> None:
    """Add the hidden `segment` command (what a cluster node runs) to the renderer's app."""
    app.command(hidden=True)(segment)
