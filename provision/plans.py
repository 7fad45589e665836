"""Plan aliases (dedicated-N → a Linode type id) and prices, from the API or a shipped snapshot."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from provision.errors import PlanError

SOURCE_API = "api"
SOURCE_SNAPSHOT = "offline snapshot"
SOURCE_CACHE = "cached api prices"
# Dedicated-CPU classes and the alias prefix each gets; "premium" is dedicated CPU on newer AMD.
CLASS_PREFIX = {"dedicated": "dedicated", "premium": "premium"}
# For dedicated-N, prefer the classic g6 generation (the price list users know), then newer ones.
_PREFERRED = re.compile(r"^g6-dedicated-\d+$")


@dataclass(frozen=True)
class Plan:
    """One rentable dedicated-CPU type with its prices."""

    alias: str
    type_id: str
    vcpus: int
    memory_mb: int
    price_hourly_usd: float
    price_monthly_usd: float | None
    source: str  # SOURCE_API or SOURCE_SNAPSHOT
    snapshot_date: str | None = None
    # (region, hourly, monthly): regions priced differently from the default (e.g. br-gru).
    region_prices: tuple[tuple[str, float, float | None], ...] = ()
    # The region this plan was priced for (in_region); estimates prefer that region's records.
    region: str | None = field(default=None, compare=False)

    def in_region(self, region: str) -> Plan:
        """This plan in `region`: with the region's own prices, if it has any."""
        for rid, hourly, monthly in self.region_prices:
            if rid == region:
                return replace(self, price_hourly_usd=hourly, price_monthly_usd=monthly,
                               region=region)
        return replace(self, region=region)


def plans_from_types(types: Iterable[Mapping[str, Any]], source: str,
                     snapshot_date: str | None = None) -> list[Plan]:
    """Dedicated-CPU plans from raw GET /linode/types objects, sorted by class then vCPUs."""
    candidates = [t for t in types if t.get("class") in CLASS_PREFIX]
    candidates.sort(key=lambda t: (t["class"] != "dedicated", not _PREFERRED.match(t["id"]),
                                   int(t["vcpus"]), t["id"]))
    plans: list[Plan] = []
    taken: set[str] = set()
    for t in candidates:
        alias = f"{CLASS_PREFIX[t['class']]}-{int(t['vcpus'])}"
        if alias in taken:  # a second type with the same vCPUs keeps its own id as the name
            alias = t["id"]
        taken.add(alias)
        price = t.get("price") or {}
        plans.append(Plan(
            alias=alias,
            type_id=t["id"],
            vcpus=int(t["vcpus"]),
            memory_mb=int(t["memory"]),
            price_hourly_usd=float(price.get("hourly") or 0.0),
            price_monthly_usd=_opt_float(price.get("monthly")),
            source=source,
            snapshot_date=snapshot_date,
            region_prices=tuple(
                (rp["id"], float(rp["hourly"]), _opt_float(rp.get("monthly")))
                for rp in t.get("region_prices") or ()
            ),
        ))
    plans.sort(key=lambda p: (p.alias.split("-")[0] != "dedicated", p.vcpus, p.type_id))
    return plans


def cheapest_type(types: Iterable[Mapping[str, Any]], source: str) -> Plan:
    """The cheapest type of any class (a nanode, usually) as a Plan: for `launcher check --live`,
    which rents a machine only to prove the safety steps work."""
    priced = [t for t in types if (t.get("price") or {}).get("hourly") is not None]
    if not priced:
        raise PlanError("the API lists no priced types")
    t = min(priced, key=lambda t: (float(t["price"]["hourly"]), t["id"]))
    price = t["price"]
    return Plan(alias=t["id"], type_id=t["id"], vcpus=int(t["vcpus"]),
                memory_mb=int(t["memory"]), price_hourly_usd=float(price["hourly"]),
                price_monthly_usd=_opt_float(price.get("monthly")), source=source,
                region_prices=tuple((rp["id"], float(rp["hourly"]), _opt_float(rp.get("monthly")))
                                    for rp in t.get("region_prices") or ()))


@dataclass(frozen=True)
class PriceSource:
    """The plans to price a run with, and where their prices came from, said for the user."""

    plans: list[Plan]
    said: str   # e.g. "live prices from the API" or "the 2024-07-19 snapshot (…)"
    live: bool


def current_plans(fetch_types: Callable[[], list[dict[str, Any]]], cache_path: Path,
                  now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> PriceSource:
    """Live prices (GET /linode/types needs no token), kept in `cache_path`; when the API does
    not answer, the cached ones with their age; else the shipped snapshot. Never raises for the
    network: planning works offline."""
    try:
        raw = fetch_types()
        plans = plans_from_types(raw, SOURCE_API)
        if not plans:
            raise PlanError("the API lists no dedicated-CPU plans")
        _write_cache(cache_path, raw, now())
        return PriceSource(plans, "live prices from the API", True)
    except Exception as exc:  # noqa: BLE001 - offline is a normal way to plan
        why = " ".join(str(exc).split())[:120]
    cached = _read_cache(cache_path)
    if cached is not None:
        fetched, raw = cached
        age_h = max(0.0, (now() - fetched).total_seconds() / 3600)
        day = fetched.strftime("%Y-%m-%d %H:%M UTC")
        plans = plans_from_types(raw, SOURCE_CACHE, fetched.strftime("%Y-%m-%d"))
        if plans:
            return PriceSource(plans, f"cached live prices of {day} ({age_h:.0f} h old; the "
                                      f"API did not answer: {why})", False)
    snap = offline_plans()
    date = snap[0].snapshot_date if snap else "?"
    return PriceSource(snap, f"the {date} snapshot (the API did not answer: {why})", False)


def _write_cache(path: Path, raw: list[dict[str, Any]], when: datetime) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(json.dumps({"fetched_at": when.isoformat(), "data": raw}),
                       encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a cache that cannot be written only means no cached prices offline


def _read_cache(path: Path) -> tuple[datetime, list[dict[str, Any]]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return datetime.fromisoformat(data["fetched_at"]), list(data["data"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "juliafarm" / "linode-types.json"


def offline_plans() -> list[Plan]:
    """The price snapshot shipped in provision/data (for dry runs and offline `launcher plans`)."""
    text = resources.files("provision").joinpath("data/linode-types.json").read_text("utf-8")
    page = json.loads(text)
    return plans_from_types(page["data"], SOURCE_SNAPSHOT, page.get("snapshot_date"))


def plans_from_api(source: Any) -> list[Plan]:
    """Live plans from a Cloud (with `.types()`) or a linode_api4 LinodeClient."""
    if hasattr(source, "types") and callable(source.types):
        raw = source.types()
    else:
        from provision.cloud import fetch_all

        raw = fetch_all(source, "/linode/types")
    plans = plans_from_types(raw, SOURCE_API)
    if not plans:
        raise PlanError("the API lists no dedicated-CPU plans")
    return plans


def resolve_plan(name: str, plans: Sequence[Plan]) -> Plan:
    """A plan by alias (dedicated-48) or type id (g6-dedicated-48); PlanError lists valid ones."""
    wanted = name.strip().lower()
    for p in plans:
        if wanted in (p.alias.lower(), p.type_id.lower()):
            return p
    valid = ", ".join(p.alias for p in plans) or "none"
    raise PlanError(f"unknown plan {name!r}: valid plans are {valid} (or their Linode type ids)")


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)
