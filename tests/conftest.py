"""Suite-wide fixtures: the local Linode cloud (pytest_plugins is only allowed at the rootdir)."""

import os

import pytest

from tests.fakelinode.fixtures import fake_linode, linode_env  # noqa: F401
from tests.fakelinode.host_fixtures import (  # noqa: F401
    fake_linode_hosts,
    host_image,
    hosts_env,
    netns_backend,
)

# Nothing in the suite may reach the real Linode API (or any address but this machine's and the
# test hosts'): unless a test points LINODE_API_URL at the local Linode cloud, it points at a
# closed local port, so the price lookups of `plans`/`estimate` fail at once and fall back.
NOWHERE = "http://127.0.0.1:9/v4"


@pytest.fixture(autouse=True)
def _no_real_api(monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.environ.get("LINODE_API_URL"):
        monkeypatch.setenv("LINODE_API_URL", NOWHERE)


@pytest.fixture(autouse=True)
def _own_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                   ) -> None:
    """Run records, local render records and predictions go to a directory of the test's own,
    never the user's (~/.local/state): one test's records must not teach another's estimate.
    A test that sets XDG_STATE_HOME itself overrides this."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
