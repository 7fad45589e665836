"""What the emulated account can buy: the real recorded types and regions, and images.

data/types.json is the recorded GET /linode/types page (37 types with their `region_prices`:
id-cgk and br-gru cost more), data/regions.json the recorded GET /regions page (34 regions with
their capabilities, status and site_type; resolver addresses replaced by documentation ones).
Both are copies of shared/linode-api/recorded/, so the emulator also works on a clone without
shared/; each file's "source" says where it came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_DATA = Path(__file__).with_name("data")

TYPES: list[dict[str, Any]] = json.loads((_DATA / "types.json").read_text())["data"]
# Served live: a test may change a region (its capabilities, its status) for one scenario.
REGIONS: list[dict[str, Any]] = json.loads((_DATA / "regions.json").read_text())["data"]

_IMAGES = [("linode/debian12", "Debian 12", "Debian", 1300),
           ("linode/debian11", "Debian 11", "Debian", 1200),
           ("linode/ubuntu22.04", "Ubuntu 22.04 LTS", "Ubuntu", 2500),
           ("linode/ubuntu24.04", "Ubuntu 24.04 LTS", "Ubuntu", 2600)]
IMAGES: list[dict[str, Any]] = [
    {"id": iid, "label": label, "vendor": vendor, "size": size, "total_size": size,
     "created": "2023-06-12T00:00:00", "updated": "2023-06-12T00:00:00", "description": None,
     "deprecated": False, "status": "available", "created_by": "linode", "is_public": True,
     "type": "manual", "eol": None, "expiry": None, "capabilities": ["cloud-init"],
     "tags": [], "regions": [], "is_shared": False}
    for iid, label, vendor, size in _IMAGES
]


def price_in(ltype: dict[str, Any], region: str) -> tuple[float, float | None]:
    """(hourly, monthly) USD of `ltype` in `region`: its region price if it has one there."""
    for rp in ltype.get("region_prices") or ():
        if rp.get("id") == region:
            return float(rp["hourly"]), rp.get("monthly")
    return float(ltype["price"]["hourly"]), ltype["price"]["monthly"]
