"""Keep the package registries reachable while the test bridge owns the test address ranges.

On some machines (CI included) the registries — PyPI, the Debian mirror — resolve to an address
inside 203.0.113.0/24, behind a proxy on the default route. The bridge's connected /24 would
capture that traffic, so pip (the launcher's wheelhouse downloads) would hang for the whole test
session. A /32 route through the default gateway keeps those addresses where they were; the
emulator never hands them out, and the hosts still have no route to them.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from urllib.parse import urlsplit

TEST_NETS = (ipaddress.ip_network("203.0.113.0/24"), ipaddress.ip_network("198.51.100.0/24"))
REGISTRY_HOSTS = ("pypi.org", "files.pythonhosted.org", "deb.debian.org")


def registry_addresses_in_test_nets() -> set[str]:
    """IPv4 addresses of the registries this machine uses that fall inside the test ranges."""
    names = set(REGISTRY_HOSTS)
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        for url in os.environ.get(var, "").split():
            if urlsplit(url).hostname:
                names.add(urlsplit(url).hostname or "")
    found = set()
    for name in names:
        try:
            infos = socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            continue  # unresolvable: nothing to protect
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if any(address in net for net in TEST_NETS):
                found.add(str(address))
    return found


def route_around_bridge(addresses: set[str]) -> None:
    """Send each address via the default route instead of the bridge (idempotent)."""
    if not addresses:
        return
    default = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True,
                             text=True, check=False).stdout.split()
    if "via" not in default or "dev" not in default:
        return  # no default route: the registries are unreachable anyway
    gateway, dev = default[default.index("via") + 1], default[default.index("dev") + 1]
    for address in sorted(addresses):
        subprocess.run(["ip", "route", "replace", f"{address}/32", "via", gateway, "dev", dev],
                       capture_output=True, check=False)
