"""Suite-wide fixtures: the local Linode cloud (pytest_plugins is only allowed at the rootdir)."""

from tests.fakelinode.fixtures import fake_linode, linode_env  # noqa: F401
from tests.fakelinode.host_fixtures import (  # noqa: F401
    fake_linode_hosts,
    host_image,
    hosts_env,
    netns_backend,
)
