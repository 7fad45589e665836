"""pytest fixtures for the local Linode cloud (API only; real hosts: host_fixtures.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.fakelinode.server import FakeLinode


@pytest.fixture
def fake_linode() -> Iterator[FakeLinode]:
    """A fresh emulator per test with no machines behind instances; fast lifecycle delays."""
    with FakeLinode(secrets.token_hex(32), provision_delay_s=0.05, boot_delay_s=0.05,
                    delete_delay_s=0.02) as fake:
        yield fake


@pytest.fixture
def linode_env(fake_linode: FakeLinode, monkeypatch: pytest.MonkeyPatch) -> FakeLinode:
    """Code under test finds the emulator the way users point juliafarm at any endpoint."""
    monkeypatch.setenv("LINODE_API_URL", fake_linode.url)
    monkeypatch.setenv("LINODE_TOKEN", fake_linode.master_token)
    return fake_linode
