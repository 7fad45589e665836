"""Options and error handling shared by every `renderer` command (and reused by `launcher`)."""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_type_hints

import typer

from renderer.errors import RenderError
from renderer.scene import COLOUR_MODES, Overrides, Scene, load_scene

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SCENE_NAME = "quick.toml"

SceneArg = Annotated[
    Path | None,
    typer.Argument(
        help="Scene TOML file. Without it, the embedded quick default (examples/quick.toml).",
        show_default=False,
    ),
]
NumSteps = Annotated[
    int | None, typer.Option("--num-steps", help="Square frame of this many pixels per side.")
]
Width = Annotated[int | None, typer.Option("--width", help="Frame width in pixels.")]
Height = Annotated[int | None, typer.Option("--height", help="Frame height in pixels.")]
MaxIterations = Annotated[
    int | None, typer.Option("--max-iterations", help="Iteration cap per point.")
]
NumFrames = Annotated[int | None, typer.Option("--num-frames", help="Number of frames.")]
Framerate = Annotated[float | None, typer.Option("--framerate", help="Frames per second.")]
Duration = Annotated[
    float | None, typer.Option("--duration", help="Duration in seconds (frames = fps x duration).")
]
CImagInitial = Annotated[
    float | None, typer.Option("--c-imag-initial", help="c.imag of the first frame.")
]
CImagIncrement = Annotated[
    float | None,
    typer.Option("--c-imag-increment", help="How far c.imag moves over the whole animation."),
]
Colormap = Annotated[str | None, typer.Option("--colormap", help="Any matplotlib colormap.")]
Mode = Annotated[
    Literal[COLOUR_MODES] | None,  # type: ignore[valid-type] - a choice: help lists them
    typer.Option("--mode", help="Colouring."),
]
Supersample = Annotated[
    int | None, typer.Option("--supersample", help="k x k samples per pixel (1-4).")
]
Workers = Annotated[
    int | None,
    typer.Option("--workers", help="Kernel threads (default: the CPUs this process may use)."),
]


# The twelve scene overrides, declared once for every command of both CLIs (`-o/--output` stays
# each command's own: its meaning differs, an MP4, a PNG, a directory).
OVERRIDE_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("num_steps", NumSteps), ("width", Width), ("height", Height),
    ("max_iterations", MaxIterations), ("num_frames", NumFrames), ("framerate", Framerate),
    ("duration", Duration), ("c_imag_initial", CImagInitial),
    ("c_imag_increment", CImagIncrement), ("colormap", Colormap), ("mode", Mode),
    ("supersample", Supersample),
)


def scene_overrides(func: F | None = None, *, without: tuple[str, ...] = ()) -> Any:
    """Give a Typer command the scene override options (OVERRIDE_OPTIONS, less `without`);
    the command takes them as one keyword argument, `overrides: Overrides` (output None)."""
    options = [(name, kind) for name, kind in OVERRIDE_OPTIONS if name not in without]

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn, eval_str=True)
        kept = [p for p in sig.parameters.values() if p.name != "overrides"]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                   annotation=kind) for name, kind in options]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ov = Overrides(**{name: kwargs.pop(name, None) for name, _ in options})
            return fn(*args, overrides=ov, **kwargs)

        hints = {k: v for k, v in get_type_hints(fn, include_extras=True).items()
                 if k != "overrides"}
        wrapper.__annotations__ = {**hints, **dict(options)}
        wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[*kept, *added])
        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


def version_option(prog: str) -> Any:
    """A `--version` option for a Typer callback: prints '<prog> <version>' and exits 0."""
    from importlib.metadata import PackageNotFoundError, version

    def show(value: bool) -> None:
        if value:
            try:
                number = version("juliafarm")
            except PackageNotFoundError:  # running from a checkout that is not installed
                number = "unknown (not installed)"
            typer.echo(f"{prog} {number}")
            raise typer.Exit(0)

    return typer.Option("--version", callback=show, is_eager=True,
                        help="Print the version and exit.")


# Typer shows every value as its Python type ("<int range>", "<list[str]>"); users read
# placeholders. A choice lists its choices.
_PLACEHOLDERS = {"int": "N", "int range": "N", "float": "X", "float range": "X", "str": "TEXT",
                 "path": "PATH", "file": "FILE", "directory": "DIR", "list[str]": "TEXT"}


def tidy_help(command: Any) -> Any:
    """Every option and argument of a Typer command tree gets a plain placeholder (N, TEXT,
    PATH, [a|b|c]) instead of a Python type; flags get none. Returns the command."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_flag", False) or getattr(param, "param_type_name", "") \
                == "argument":
            # Nothing beside a flag; an argument's placeholder is its name, and a required
            # one is written bare in the usage line (Typer writes {RUN}).
            param.display_type_rich = lambda ctx=None: None
            if getattr(param, "required", False) and hasattr(param, "_usage_display_name"):
                param._usage_display_name = (lambda p: lambda: str(p.display_name_raw))(param)
        if getattr(param, "is_flag", False) or getattr(param, "metavar", None) is not None:
            continue
        desc = getattr(param, "type_descriptor", None)
        if desc is not None and desc.is_choice:
            param.metavar = "[" + "|".join(str(c) for c in desc.choices or ()) + "]"
        elif getattr(param, "param_type_name", "") == "argument":
            param.metavar = param.name.upper().removesuffix("_FILE").removesuffix("_ID")
        elif hasattr(param, "display_type"):
            shown = param.display_type(None).strip("<>")
            param.metavar = _PLACEHOLDERS.get(shown, shown.upper())
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)
    return command


def resolve_scene_path(path: Path | None) -> Path:
    """The user's file, or the quick default shipped inside the package."""
    if path is not None:
        return path
    return Path(str(resources.files("renderer") / "examples" / DEFAULT_SCENE_NAME))


def load(path: Path | None, overrides: Overrides) -> Scene:
    scene = load_scene(resolve_scene_path(path), overrides)
    if path is None and overrides.output is None:
        # The embedded default lives in site-packages; write its video to the working directory.
        from dataclasses import replace

        scene = replace(scene, output=Path(scene.output.name))
    return scene


def debug_enabled() -> bool:
    return os.environ.get("JULIAFARM_DEBUG", "") not in ("", "0")


def user_errors(func: F) -> F:
    """Turn a RenderError (or Ctrl-C) into one line on stderr and an exit code, not a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RenderError as exc:
            if debug_enabled():
                raise
            prefix = "" if exc.exit_code == 130 else "error: "
            print(f"{prefix}{exc}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted: finished segments are kept; run the same command to resume",
                  file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
