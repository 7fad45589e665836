"""The launcher's exception hierarchy: messages written for the user, never holding a secret."""


class LauncherError(Exception):
    """A failure the user can act on; the CLI prints it as one line."""

    exit_code = 1


class ConfigError(LauncherError):
    """The run's configuration (scene [cloud] table or flags) is invalid."""

    exit_code = 2


class Interrupted(LauncherError):  # noqa: N818 - reads better at raise sites than *Error
    """SIGINT, SIGTERM or SIGHUP arrived; raised so every `finally` runs."""

    exit_code = 130

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"interrupted by {name}")
        self.signum = signum


class Refused(LauncherError):  # noqa: N818
    """The user (or the absence of a terminal) declined to rent a server."""

    exit_code = 3
