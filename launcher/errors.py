"""The launcher's exception hierarchy: messages written for the user, never holding a secret.

Exit codes (the CLI's, documented in README and `launcher --help`):
0 done · 1 failed · 2 bad input or preflight · 3 declined · 4 an instance may still exist
(its delete was not confirmed) · 130 interrupted (SIGINT, SIGTERM or SIGHUP), everything deleted.
"""

from provision.errors import DeleteError, ProvisionError
from renderer.errors import RenderError


class LauncherError(Exception):
    """A failure the user can act on; the CLI prints it as one line."""

    exit_code = 1


class ConfigError(LauncherError):
    """The run's configuration (scene [cloud] table or flags) is invalid."""

    exit_code = 2


class Interrupted(BaseException):  # noqa: N818 - reads better at raise sites than *Error
    """SIGINT, SIGTERM or SIGHUP arrived; raised so every `finally` runs.

    A BaseException, like KeyboardInterrupt: an `except Exception` written to survive a flaky
    probe or a failed step must never swallow it and carry on renting."""

    exit_code = 130

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"interrupted by {name}")
        self.signum = signum


class Refused(LauncherError):  # noqa: N818
    """The user (or the absence of a terminal) declined to rent a server."""

    exit_code = 3


class DeleteUnconfirmed(LauncherError):  # noqa: N818
    """An instance of the run may still exist: its delete (or the lookup that would find it) was
    not confirmed by the API. The message ends with the one command that finishes the job."""

    exit_code = 4


def one_line(exc: BaseException) -> str:
    """An exception as one line for the user (its class name when it has no message)."""
    text = str(exc) or exc.__class__.__name__
    return " ".join(text.split())


def exit_code_for(exc: BaseException) -> int | None:
    """The CLI's exit code for an exception; None for a bug (shown with a traceback)."""
    if isinstance(exc, DeleteError):
        return 4
    if isinstance(exc, LauncherError | ProvisionError | RenderError):
        return int(getattr(exc, "exit_code", 1))
    if isinstance(exc, Interrupted | KeyboardInterrupt):
        return 130
    return None
