"""Suite-wide fixtures: the local Linode cloud (pytest_plugins is only allowed at the rootdir)."""

from tests.fakelinode.fixtures import fake_linode, linode_env  # noqa: F401

try:  # the real-host fixtures (network namespaces), once that module exists
    from tests.fakelinode.host_fixtures import *  # noqa: F401,F403
except ModuleNotFoundError as exc:  # pragma: no cover
    if exc.name != "tests.fakelinode.host_fixtures":
        raise
