"""The renderer's exception hierarchy: every message is written for the user."""


class RenderError(Exception):
    """A failure the user can act on; the CLI prints it as one line and exits non-zero."""

    exit_code = 1


class SceneError(RenderError):
    """The scene (TOML file or an override) is invalid; the message names the field."""

    exit_code = 2


class EncoderError(RenderError):
    """ffmpeg is missing or failed."""


class RenderInterrupted(RenderError):
    """Ctrl-C or SIGTERM during a render; finished segments are kept for a resume."""

    exit_code = 130
