"""Plan aliases, the offline snapshot and the unknown-plan message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provision.errors import PlanError
from provision.plans import SOURCE_SNAPSHOT, offline_plans, plans_from_types, resolve_plan

SHARED = Path("/work/shared/linode-api/dedicated-types.json")


def test_dedicated_alias_maps_to_the_g6_type_with_that_many_vcpus() -> None:
    plans = offline_plans()
    for n in (2, 4, 8, 16, 32, 48, 50, 56, 64):
        p = resolve_plan(f"dedicated-{n}", plans)
        assert p.type_id == f"g6-dedicated-{n}"
        assert p.vcpus == n


def test_snapshot_prices_and_date() -> None:
    p = resolve_plan("dedicated-48", offline_plans())
    assert (p.price_hourly_usd, p.price_monthly_usd, p.memory_mb) == (1.296, 864.0, 98304)
    assert p.source == SOURCE_SNAPSHOT
    assert p.snapshot_date == "2024-07-19"


@pytest.mark.skipif(not SHARED.exists(), reason="needs the shared reference data")
def test_snapshot_is_a_copy_of_the_reference_types() -> None:
    ours = json.loads((Path(__file__).parents[2] / "provision/data/linode-types.json").read_text())
    assert ours["data"] == json.loads(SHARED.read_text())["data"]


def test_type_id_and_case_are_accepted() -> None:
    plans = offline_plans()
    assert resolve_plan("G6-Dedicated-8", plans).alias == "dedicated-8"
    assert resolve_plan("premium-16", plans).type_id == "g7-premium-16"


def test_unknown_plan_lists_the_valid_ones() -> None:
    plans = offline_plans()
    with pytest.raises(PlanError) as info:
        resolve_plan("dedicated-3", plans)
    msg = str(info.value)
    assert "dedicated-3" in msg and "\n" not in msg
    for p in plans:
        assert p.alias in msg


def test_non_dedicated_types_are_ignored_and_null_monthly_kept() -> None:
    types = [
        {"id": "g6-standard-2", "class": "standard", "vcpus": 2, "memory": 4096,
         "price": {"hourly": 0.036, "monthly": 24.0}},
        {"id": "g8-dedicated-4-2", "class": "dedicated", "vcpus": 2, "memory": 4096,
         "price": {"hourly": 0.07, "monthly": None}},
        {"id": "g6-dedicated-2", "class": "dedicated", "vcpus": 2, "memory": 4096,
         "price": {"hourly": 0.054, "monthly": 36.0}},
    ]
    plans = plans_from_types(types, "api")
    assert [p.type_id for p in plans] == ["g6-dedicated-2", "g8-dedicated-4-2"]
    assert resolve_plan("dedicated-2", plans).type_id == "g6-dedicated-2"  # g6 preferred
    assert resolve_plan("g8-dedicated-4-2", plans).price_monthly_usd is None


def test_region_prices() -> None:
    p = resolve_plan("dedicated-2", offline_plans())
    assert p.in_region("br-gru").price_hourly_usd == 0.076
    assert p.in_region("us-east") == p
