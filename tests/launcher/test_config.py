"""The run configuration: [cloud] table merged with flags, durations, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.config import merge, parse_duration_s
from launcher.errors import ConfigError


def test_defaults() -> None:
    cfg = merge({})
    assert cfg.plan == "dedicated-48" and cfg.image == "linode/debian12"
    assert cfg.regions == ("us-east",) and cfg.output_dir == Path("output")


def test_flags_override_the_file() -> None:
    table = {"plan": "dedicated-4", "region": "eu-west", "fallback_regions": ["us-east"],
             "max_cost_usd": 2}
    cfg = merge(table, plan="dedicated-2", region=None, max_cost_usd=None)
    assert cfg.plan == "dedicated-2"
    assert cfg.regions == ("eu-west", "us-east")
    assert cfg.max_cost_usd == 2.0


def test_region_list_has_no_repeats() -> None:
    cfg = merge({"region": "a1", "fallback_regions": ["b2", "a1", "c3"]})
    assert cfg.regions == ("a1", "b2", "c3")


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("20m", 1200), ("2h", 7200),
                                                ("45", 45), (30, 30), ("1.5h", 5400)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"plna": "x"}, "cloud.plna: unknown key; did you mean 'plan'?"),
        ({"image": "linode/arch"}, "cloud.image"),
        ({"max_cost_usd": -1}, "cloud.max_cost_usd"),
        ({"max_lifetime": "soon"}, "cloud.max_lifetime"),
        ({"deps": "conda"}, "cloud.deps"),
        ({"user": "root"}, "cloud.user"),
        ({"fallback_regions": 3}, "cloud.fallback_regions"),
    ],
)
def test_bad_values_are_one_line(table: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        merge(table)
    assert message in str(info.value) and "\n" not in str(info.value)
