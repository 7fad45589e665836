"""The `launcher` command line (placeholder until the launcher issue lands)."""

import sys


def main() -> None:
    print("launcher: not yet — `launcher run` arrives with the launcher issue", file=sys.stderr)
    sys.exit(1)
