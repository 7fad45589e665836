"""The run's Cloud Firewall: inbound TCP 22 from the launcher's address only (and, on a
multi-node run, Dask between its nodes' private addresses); dies with the run."""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Sequence
from typing import Any

from provision.cloud import Cloud
from provision.errors import ProvisionError

TAG = "juliafarm"
# Plain-text "what is my address" services, tried in order (any one answering is enough).
ADDRESS_SERVICES = ("https://api.ipify.org", "https://ifconfig.me/ip",
                    "https://icanhazip.com")


class AddressUnknown(ProvisionError):
    """The launcher's public address could not be found; the message says to pass --ssh-from."""


def firewall_label(run_id: str) -> str:
    """Firewall labels are 3-32 characters: `jf-` + the run id (22)."""
    return f"jf-{run_id}"[:32]


def run_tag(run_id: str) -> str:
    return f"juliafarm-run-{run_id}"


def normalise_cidrs(cidrs: Sequence[str]) -> tuple[str, ...]:
    """IPv4 networks as the API wants them (`203.0.113.7` → `203.0.113.7/32`); ValueError if bad."""
    out = []
    for text in cidrs:
        for part in str(text).split(","):
            part = part.strip()
            if not part:
                continue
            net = ipaddress.ip_network(part, strict=False)
            if net.version != 4:
                raise ValueError(f"{part}: only IPv4 is supported for --ssh-from")
            out.append(str(net))
    if not out:
        raise ValueError("no address given")
    return tuple(dict.fromkeys(out))


def ssh_only_rules(cidrs: Sequence[str]) -> dict[str, Any]:
    """Inbound: TCP 22 from `cidrs`, everything else dropped; outbound open (apt, the API)."""
    return {
        "inbound_policy": "DROP",
        "outbound_policy": "ACCEPT",
        "inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "22",
                     "addresses": {"ipv4": list(cidrs)}, "label": "ssh-from-launcher",
                     "description": "SSH from the juliafarm launcher only"}],
        "outbound": [],
    }


def cluster_rules(cidrs: Sequence[str], peers: Sequence[str], ports: str) -> dict[str, Any]:
    """A multi-node run's rules once the nodes' private addresses are known: SSH from `cidrs`
    as before, and TCP `ports` (e.g. "8786-8789", Dask) from exactly the run's nodes."""
    rules = ssh_only_rules(cidrs)
    rules["inbound"].append({
        "action": "ACCEPT", "protocol": "TCP", "ports": ports,
        "addresses": {"ipv4": [f"{ip}/32" for ip in sorted(set(peers))]},
        "label": "dask-between-nodes",
        "description": "Dask between the run's nodes (private addresses) only"})
    return rules


def update_rules(cloud: Cloud, firewall_id: int, rules: dict[str, Any]) -> None:
    """The whole rule set replaced at once (PUT …/rules)."""
    cloud.set_firewall_rules(firewall_id, rules)


def create_run_firewall(cloud: Cloud, run_id: str, cidrs: Sequence[str]) -> int:
    """The run's firewall, labelled and tagged with the run; returns its id."""
    return cloud.create_firewall(firewall_label(run_id), ssh_only_rules(cidrs),
                                 [TAG, run_tag(run_id)])


def delete_firewall(cloud: Cloud, firewall_id: int) -> None:
    """One already gone counts as deleted."""
    cloud.delete_firewall(firewall_id)


def run_firewalls(cloud: Cloud, run_id: str | None = None) -> list[dict[str, Any]]:
    """Firewalls juliafarm made (for one run, or all): what `launcher cleanup` looks for."""
    return cloud.firewalls_tagged(run_tag(run_id) if run_id else TAG)


def detect_public_cidr(timeout_s: float = 5.0,
                       services: Sequence[str] = ADDRESS_SERVICES) -> str:
    """This machine's public IPv4 as a /32, asked of a public service; AddressUnknown if none
    answers (offline, IPv6-only, a proxy)."""
    errors = []
    for url in services:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - fixed https
                text = resp.read(64).decode("ascii", errors="replace").strip()
            address = ipaddress.ip_address(text)
            if address.version == 4 and address.is_global:
                return f"{address}/32"
            errors.append(f"{url}: not a public IPv4 address")
        except (OSError, ValueError) as exc:
            errors.append(f"{url}: {exc.__class__.__name__}")
    raise AddressUnknown(
        "could not detect this machine's public IPv4 address for the cloud firewall ("
        + "; ".join(errors) + "): pass --ssh-from CIDR (e.g. --ssh-from 198.51.100.7/32), "
        "or --no-cloud-firewall to rely on the server's own firewall only")
