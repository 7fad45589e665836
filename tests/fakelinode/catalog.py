"""What the emulated account can buy: types (real 2024 objects), regions and images.

Types are the recorded GET /linode/types page in data/types.json (a copy of
shared/linode-api/dedicated-types.json, so the emulator also works on a clone without shared/).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TYPES: list[dict[str, Any]] = json.loads(
    (Path(__file__).with_name("data") / "types.json").read_text())["data"]

_CAPS = ["Linodes", "Block Storage", "Cloud Firewall", "Vlans", "Metadata", "Placement Group"]
_REGIONS = [("us-east", "us", "Newark, NJ"), ("us-central", "us", "Dallas, TX"),
            ("us-west", "us", "Fremont, CA"), ("us-southeast", "us", "Atlanta, GA"),
            ("eu-west", "gb", "London, UK"), ("eu-central", "de", "Frankfurt, DE"),
            ("ap-south", "sg", "Singapore, SG"), ("ca-central", "ca", "Toronto, CA")]
REGIONS: list[dict[str, Any]] = [
    {"id": rid, "label": label, "country": country, "capabilities": list(_CAPS),
     "status": "ok", "site_type": "core",
     "resolvers": {"ipv4": "203.0.113.2,203.0.113.3", "ipv6": "2001:db8::2,2001:db8::3"},
     "placement_group_limits": {"maximum_pgs_per_customer": None,
                                "maximum_linodes_per_pg": 5}}
    for rid, country, label in _REGIONS
]

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
