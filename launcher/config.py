"""The run's configuration: the scene's [cloud] table merged with command-line flags, validated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from launcher.errors import ConfigError

CLOUD_KEYS = (
    "plan", "region", "fallback_regions", "image", "max_cost_usd", "max_lifetime",
    "output_dir", "deps", "user",
)
DEFAULT_PLAN = "dedicated-48"
DEFAULT_REGION = "us-east"
DEFAULT_IMAGE = "linode/debian12"
SUPPORTED_IMAGES = (
    "linode/debian12", "linode/debian11", "linode/ubuntu24.04", "linode/ubuntu22.04",
)
DEPS_MODES = ("auto", "index", "wheelhouse")
# --max-lifetime (the lease) by default: the estimate x 2 + 30 min; without an estimate, 4 h.
LEASE_FACTOR = 2.0
LEASE_MARGIN_S = 30 * 60.0
LEASE_FALLBACK_S = 4 * 3600.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


@dataclass(frozen=True)
class RunConfig:
    """Everything `launcher run` needs beyond the scene itself."""

    plan: str = DEFAULT_PLAN
    region: str = DEFAULT_REGION
    fallback_regions: tuple[str, ...] = ()
    image: str = DEFAULT_IMAGE
    max_cost_usd: float | None = None
    max_lifetime_s: float | None = None
    output_dir: Path = Path("output")
    deps: str = "auto"
    user: str = "juliafarm"
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def regions(self) -> tuple[str, ...]:
        """The region to try first, then the fallbacks, without repeats."""
        seen: list[str] = []
        for r in (self.region, *self.fallback_regions):
            if r not in seen:
                seen.append(r)
        return tuple(seen)


def parse_duration_s(text: str | float | int, name: str = "max_lifetime") -> float:
    """'90s', '20m', '2h' or a bare number of seconds."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _DURATION.match(str(text))
        if not m:
            raise ConfigError(f"{name}: expected a duration like 90s, 20m or 2h, got {text!r}")
        value = float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {text!r}")
    return value


def lease_seconds(estimate_total_s: float | None) -> float:
    """The default lease: estimate x 2 + 30 min, or 4 h when there is no estimate."""
    if estimate_total_s is None or estimate_total_s <= 0:
        return LEASE_FALLBACK_S
    return estimate_total_s * LEASE_FACTOR + LEASE_MARGIN_S


def merge(cloud_table: Mapping[str, Any], **flags: Any) -> RunConfig:
    """Apply flags (None = not given) over the scene's [cloud] table and validate the result."""
    for key in cloud_table:
        if key not in CLOUD_KEYS:
            import difflib

            hint = difflib.get_close_matches(key, CLOUD_KEYS, n=1, cutoff=0.5)
            extra = f"; did you mean '{hint[0]}'?" if hint else f" (valid: {', '.join(CLOUD_KEYS)})"
            raise ConfigError(f"cloud.{key}: unknown key{extra}")
    values: dict[str, Any] = dict(cloud_table)
    for key, value in flags.items():
        if value is not None and value != ():
            values[key] = value

    plan = _str(values.get("plan", DEFAULT_PLAN), "plan")
    region = _str(values.get("region", DEFAULT_REGION), "region")
    fallbacks = values.get("fallback_regions", ())
    if isinstance(fallbacks, str):
        fallbacks = [r for r in fallbacks.split(",") if r.strip()]
    if not isinstance(fallbacks, list | tuple) or not all(isinstance(r, str) for r in fallbacks):
        raise ConfigError("cloud.fallback_regions: must be a list of region ids")
    image = _str(values.get("image", DEFAULT_IMAGE), "image")
    if image not in SUPPORTED_IMAGES:
        raise ConfigError(
            f"cloud.image: {image!r} is not supported (use one of {', '.join(SUPPORTED_IMAGES)})"
        )
    max_cost = values.get("max_cost_usd")
    if max_cost is not None:
        if isinstance(max_cost, bool) or not isinstance(max_cost, int | float) or max_cost <= 0:
            raise ConfigError(f"cloud.max_cost_usd: must be a positive number, got {max_cost!r}")
        max_cost = float(max_cost)
    lifetime = values.get("max_lifetime")
    lifetime_s = parse_duration_s(lifetime, "cloud.max_lifetime") if lifetime is not None else None
    deps = _str(values.get("deps", "auto"), "deps")
    if deps not in DEPS_MODES:
        raise ConfigError(f"cloud.deps: must be one of {', '.join(DEPS_MODES)}, got {deps!r}")
    user = _str(values.get("user", "juliafarm"), "user")
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user) or user == "root":
        raise ConfigError(f"cloud.user: {user!r} is not a valid non-root user name")
    return RunConfig(
        plan=plan, region=region, fallback_regions=tuple(r.strip() for r in fallbacks),
        image=image, max_cost_usd=max_cost, max_lifetime_s=lifetime_s,
        output_dir=Path(str(values.get("output_dir", "output"))).expanduser(), deps=deps,
        user=user,
    )


def _str(v: Any, name: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ConfigError(f"cloud.{name}: must be a non-empty string, got {v!r}")
    return v.strip()
