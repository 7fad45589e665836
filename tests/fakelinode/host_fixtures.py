"""pytest fixtures for real hosts: the cached Debian image and the emulator with netns machines."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakelinode.server import FakeLinode

REQUIRED_TOOLS = ("ip", "unshare", "chroot", "debootstrap", "ssh", "ssh-keygen", "rsync")


def hosts_unavailable() -> str | None:
    """Why real hosts cannot run here, or None."""
    if os.geteuid() != 0:
        return "real hosts need root (network namespaces, overlayfs, chroot)"
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if missing:
        return f"real hosts need {', '.join(missing)} (see .ci/run for the apt packages)"
    return None


@pytest.fixture(scope="session")
def host_image() -> Path:
    """The Debian 12 root every host boots from (built once per machine, minutes)."""
    reason = hosts_unavailable()
    if reason:
        pytest.skip(reason)
    from tests.fakelinode.image import ImageUnavailable, debian12

    try:
        return debian12()
    except ImageUnavailable as exc:
        pytest.skip(f"host image unavailable: {exc}")


@pytest.fixture
def netns_backend(host_image: Path):
    from tests.fakelinode.hosts import NamespaceHostBackend

    backend = NamespaceHostBackend(host_image)
    yield backend
    backend.close()


@pytest.fixture
def fake_linode_hosts(host_image: Path) -> Iterator[FakeLinode]:
    """The emulator whose instances are real hosts; they reach its API at 203.0.113.1."""
    from tests.fakelinode.hosts import NamespaceHostBackend

    backend = NamespaceHostBackend(host_image)
    with FakeLinode(secrets.token_hex(32), backend=backend, provision_delay_s=0.2,
                    boot_delay_s=0.2, delete_delay_s=0.05,
                    claim_addresses=True) as fake:
        fake.bind_for_hosts("203.0.113.1")
        yield fake
        leftovers = backend.running()
    assert not leftovers, f"hosts still up after the test: {leftovers}"


@pytest.fixture
def hosts_env(fake_linode_hosts: FakeLinode, monkeypatch: pytest.MonkeyPatch) -> FakeLinode:
    monkeypatch.setenv("LINODE_API_URL", fake_linode_hosts.url)
    monkeypatch.setenv("LINODE_TOKEN", fake_linode_hosts.master_token)
    return fake_linode_hosts
