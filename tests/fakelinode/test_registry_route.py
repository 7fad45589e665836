"""The registries stay reachable when they resolve into the test ranges (as on CI machines)."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.fakelinode import registry_route


def test_only_registry_addresses_inside_the_test_ranges_are_reserved(monkeypatch) -> None:
    table = {"pypi.org": "203.0.113.80", "files.pythonhosted.org": "151.101.0.223",
             "deb.debian.org": "198.51.100.200", "mirror.example": "203.0.113.7"}

    def fake_getaddrinfo(name, *args, **kwargs):
        if name not in table:
            raise socket.gaierror(name)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[name], 443))]

    monkeypatch.setattr(registry_route.socket, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://mirror.example/simple file:///opt/x")
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert registry_route.registry_addresses_in_test_nets() == {
        "203.0.113.80", "198.51.100.200", "203.0.113.7"}


@pytest.mark.root
def test_reserved_addresses_route_around_the_bridge_and_are_never_handed_out(
        fake_linode_hosts) -> None:
    reserved = fake_linode_hosts.backend.reserved
    if not reserved:
        pytest.skip("no package registry resolves into the test ranges on this machine")
    for address in reserved:
        route = subprocess.run(["ip", "route", "get", address], capture_output=True,
                               text=True, check=True).stdout
        assert "jfbr0" not in route, route
    handed = {fake_linode_hosts._claim(registry_route.TEST_NETS[0], "_next_public")
              for _ in range(100)}
    assert not handed & reserved
