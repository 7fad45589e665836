"""The cloud seam: a small `Cloud` protocol and its Linode implementation.

Create-and-always-delete is not here but in one place above it: launcher.run.lifecycle (with
launcher.run.teardown deciding what "deleted" means), for one node and for many."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
from linode_api4 import ApiError, LinodeClient
from requests.adapters import HTTPAdapter

from provision.errors import (
    DEFAULT_API_URL,
    CapacityError,
    CloudError,
    DeleteError,
    ProvisionError,
    TokenError,
)
from provision.retry import DEFAULT_POLICY, RetryPolicy, call_with_retry, describe, is_ambiguous
from provision.wait import wait_until

# Linode has no documented capacity error; these are the phrasings seen from it and its clients.
_CAPACITY = re.compile(
    r"capacity|out of stock|sold out|not available in this region|unavailable in (this|the) "
    r"region|no (more )?resources", re.IGNORECASE)
_LABEL_TAKEN = re.compile(r"label.*(unique|already|taken|in use)", re.IGNORECASE)
_PRIVATE_V4 = re.compile(r"^192\.168\.")


@dataclass(frozen=True)
class InstanceRequest:
    """What to create. The root password is sent once and never shown (excluded from repr)."""

    label: str
    type_id: str
    region: str
    image: str
    root_pass: str = field(repr=False)
    authorized_keys: tuple[str, ...]
    tags: tuple[str, ...]
    firewall_id: int | None = None
    user_data_b64: str | None = field(default=None, repr=False)
    private_ip: bool = False


@dataclass(frozen=True)
class InstanceInfo:
    """An instance as the API last described it."""

    id: int
    label: str
    status: str
    ipv4: str | None
    private_ipv4: str | None
    type_id: str
    region: str
    image: str | None
    created: datetime  # UTC, timezone-aware
    tags: tuple[str, ...]


class Cloud(Protocol):
    """What the rest of juliafarm needs from a provider."""

    def create_with_failover(self, req: InstanceRequest,
                             regions: Sequence[str]) -> InstanceInfo: ...
    def create(self, req: InstanceRequest) -> InstanceInfo: ...
    def get(self, instance_id: int) -> InstanceInfo | None: ...
    def wait_running(self, instance_id: int, timeout_s: float,
                     on_tick: Callable[[float], None] | None = None) -> InstanceInfo: ...
    def delete(self, instance_id: int) -> None: ...
    def list_by_tag(self, tag: str) -> list[InstanceInfo]: ...
    def find_by_label(self, label: str) -> InstanceInfo | None: ...
    def check_access(self) -> None: ...
    def region_offers(self, region: str, type_id: str) -> bool: ...
    def types(self) -> list[dict[str, Any]]: ...
    # The guards' resources (provision.firewall, provision.tokens, provision.hostkey).
    def create_firewall(self, label: str, rules: Mapping[str, Any],
                        tags: Sequence[str]) -> int: ...
    def set_firewall_rules(self, firewall_id: int, rules: Mapping[str, Any]) -> None: ...
    def delete_firewall(self, firewall_id: int) -> None: ...
    def firewalls_tagged(self, tag: str) -> list[dict[str, Any]]: ...
    def create_token(self, label: str, scopes: str, expiry: datetime) -> tuple[int, str]: ...
    def delete_token(self, token_id: int) -> None: ...
    def tokens(self) -> list[dict[str, Any]]: ...
    def image(self, image_id: str) -> dict[str, Any] | None: ...
    def region(self, region_id: str) -> dict[str, Any] | None: ...


class _TimeoutAdapter(HTTPAdapter):
    """Every request gets a timeout (linode_api4 sets none) and no hidden urllib3 retries;
    an anonymous client sends no Authorization header (the public endpoints need none)."""

    def __init__(self, timeout_s: float, anonymous: bool = False,
                 connect_timeout_s: float | None = None) -> None:
        super().__init__(max_retries=0)
        # (connect, read): an unroutable address fails in connect_timeout_s, not timeout_s.
        self.timeout_s = (connect_timeout_s or timeout_s, timeout_s)
        self.anonymous = anonymous

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        if self.anonymous:
            request.headers.pop("Authorization", None)
        return super().send(request, **kwargs)


class LinodeCloud:
    """`Cloud` on Linode API v4 through linode_api4; any compatible base URL works."""

    def __init__(
        self,
        token: str | None,
        base_url: str = DEFAULT_API_URL,
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        request_timeout_s: float = 30.0,
        connect_timeout_s: float | None = None,
        poll_interval_s: float = 3.0,
        delete_timeout_s: float = 180.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # retry=False: the SDK would otherwise retry a create POST blindly (duplicates); ours
        # looks the label up first.
        # token None: the public endpoints only (plans, regions) — planning without an account.
        self.client = LinodeClient(token or "anonymous", base_url=self.base_url, retry=False,
                                   user_agent="juliafarm")
        adapter = _TimeoutAdapter(request_timeout_s, anonymous=token is None,
                                  connect_timeout_s=connect_timeout_s)
        self.client.session.mount("http://", adapter)
        self.client.session.mount("https://", adapter)
        self.client.session.hooks["response"].append(self._remember)
        self.last_headers: Mapping[str, str] = {}
        self.on_retry: Callable[[str], None] | None = None  # told of each retry (the CLI)
        self.policy = policy
        self.poll_interval_s = poll_interval_s
        self.delete_timeout_s = delete_timeout_s
        self._sleep = sleep

    def __repr__(self) -> str:  # never the token
        return f"LinodeCloud({self.base_url!r})"

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last_headers = response.headers

    def _call(self, fn: Callable[[], Any], what: str, **kw: Any) -> Any:
        try:
            return call_with_retry(fn, what, self.policy, sleep=self._sleep,
                                   on_retry=self.on_retry, **kw)
        except ApiError as exc:
            raise _translate(exc, what) from None

    # ---------------------------------------------------------------- reads

    def get(self, instance_id: int) -> InstanceInfo | None:
        """The instance, or None once the API says it does not exist."""
        def fetch() -> InstanceInfo | None:
            try:
                return _info(self.client.get(f"/linode/instances/{int(instance_id)}"))
            except ApiError as exc:
                if exc.status == 404:
                    return None
                raise
        return self._call(fetch, f"get instance {instance_id}")

    def list_by_tag(self, tag: str) -> list[InstanceInfo]:
        """Every instance carrying `tag` (all pages)."""
        raw = self._call(lambda: fetch_all(self.client, "/linode/instances", {"tags": tag}),
                         f"list instances tagged {tag}")
        # Filter again here: equality on a list field is not defined by the spec.
        return [i for i in map(_info, raw) if tag in i.tags]

    def find_by_label(self, label: str) -> InstanceInfo | None:
        """The instance with this exact label, if any (labels are unique per account)."""
        raw = self._call(lambda: fetch_all(self.client, "/linode/instances", {"label": label}),
                         f"look up instance {label}")
        found = [i for i in map(_info, raw) if i.label == label]
        return found[0] if found else None

    def types(self) -> list[dict[str, Any]]:
        """Raw GET /linode/types objects (all pages)."""
        return self._call(lambda: fetch_all(self.client, "/linode/types"), "list plan types")

    def region_offers(self, region: str, type_id: str) -> bool:
        """True if `region` exists, takes Linodes and does not report the plan unavailable."""
        def fetch() -> bool:
            try:
                r = self.client.get(f"/regions/{region}")
            except ApiError as exc:
                if exc.status in (400, 404):
                    return False
                raise
            caps = set(r.get("capabilities") or ())
            if "Linodes" not in caps or r.get("status", "ok") != "ok":
                return False
            if type_id.startswith("g7-premium") and "Premium Plans" not in caps:
                return False
            try:
                avail = fetch_all(self.client, f"/regions/{region}/availability")
            except ApiError:
                return True  # the availability endpoint is optional (newer API, not emulated)
            return not any(a.get("plan") == type_id and a.get("available") is False
                           for a in avail)
        return self._call(fetch, f"check region {region}")

    def check_access(self) -> None:
        """Token valid and allowed to create Linodes; TokenError (one line, no token) if not."""
        what = "check the API token"
        try:
            profile = call_with_retry(lambda: self.client.get("/profile"), what, self.policy,
                                      sleep=self._sleep)
        except ApiError as exc:
            if exc.status in (401, 403):
                raise TokenError(f"the Linode API token was refused ({_reasons(exc)}): "
                                 "check LINODE_TOKEN or the token file") from None
            raise _translate(exc, what) from None
        scopes = str(self.last_headers.get("X-OAuth-Scopes", "*")).split()
        if "*" not in scopes and "linodes:read_write" not in scopes:
            raise TokenError("the Linode API token may not create Linodes: it needs the "
                             f"linodes:read_write scope (has: {' '.join(scopes) or 'none'})")
        if profile.get("restricted"):
            grants = self._call(lambda: self.client.get("/profile/grants"), what)
            if not (grants.get("global") or {}).get("add_linodes"):
                raise TokenError("this Linode user is restricted and may not add Linodes "
                                 "(grant add_linodes in Cloud Manager)")

    def image(self, image_id: str) -> dict[str, Any] | None:
        """The image from GET /images (public without a token: planning needs no account), or
        None if the API does not list it."""
        found = self._call(lambda: fetch_all(self.client, "/images"), "list images")
        return next((i for i in found if i.get("id") == image_id), None)

    def region(self, region_id: str) -> dict[str, Any] | None:
        """GET /regions/{id}, or None if the API does not know it."""
        return self._get_or_none(f"/regions/{region_id}", f"look up region {region_id}")

    def firewalls_tagged(self, tag: str) -> list[dict[str, Any]]:
        """Every Cloud Firewall carrying `tag` (raw objects, all pages)."""
        found = self._call(lambda: fetch_all(self.client, "/networking/firewalls",
                                             {"tags": tag}), "list cloud firewalls")
        return [f for f in found if tag in (f.get("tags") or [])]

    def tokens(self) -> list[dict[str, Any]]:
        """The account's personal access tokens (raw objects; no secrets in them)."""
        return self._call(lambda: fetch_all(self.client, "/profile/tokens"), "list API tokens")

    def _get_or_none(self, path: str, what: str) -> dict[str, Any] | None:
        def fetch() -> dict[str, Any] | None:
            try:
                return self.client.get(path)
            except ApiError as exc:
                if exc.status in (400, 404):
                    return None
                raise
        return self._call(fetch, what)

    def _delete_or_gone(self, path: str, what: str) -> None:
        """DELETE `path`; a 404 (already gone) is what we wanted."""
        def delete() -> None:
            try:
                self.client.delete(path)
            except ApiError as exc:
                if exc.status != 404:
                    raise
        self._call(delete, what)

    # --------------------------------------------------------------- writes

    def create(self, req: InstanceRequest) -> InstanceInfo:
        """Create one instance, retrying transient failures without ever making a second one:
        after an ambiguous failure (5xx, timeout, connection error) the label is looked up and
        an instance carrying it is adopted instead of retried."""
        adopt_on: list[BaseException] = []

        def before_retry(exc: BaseException) -> InstanceInfo | None:
            if is_ambiguous(exc):
                adopt_on.append(exc)
                return self.find_by_label(req.label)
            return None

        try:
            return self._call(lambda: self._create_once(req), f"create {req.label}",
                              before_retry=before_retry)
        except CloudError:
            # Out of retries: an earlier ambiguous attempt may still have made it.
            found = self.find_by_label(req.label) if adopt_on else None
            if found is not None:
                return found
            raise

    def _create_once(self, req: InstanceRequest) -> InstanceInfo:
        kwargs: dict[str, Any] = {
            "image": req.image,
            "root_pass": req.root_pass,
            "authorized_keys": list(req.authorized_keys),
            "firewall": req.firewall_id,
            "label": req.label,
            "tags": list(req.tags),
            "booted": True,
        }
        if req.private_ip:
            kwargs["private_ip"] = True
        if req.user_data_b64:
            kwargs["metadata"] = {"user_data": req.user_data_b64}
        try:
            made = self.client.linode.instance_create(req.type_id, req.region, **kwargs)
        except ApiError as exc:
            reasons = _reasons(exc)
            if exc.status in (400, 503) and _CAPACITY.search(reasons):
                raise CapacityError(f"no capacity for {req.type_id} in {req.region}: "
                                    f"{reasons}") from None
            if exc.status == 400 and _LABEL_TAKEN.search(reasons):
                # A previous attempt we never heard back from made it: adopt, never duplicate.
                found = self.find_by_label(req.label)
                if found is not None:
                    return found
            raise
        except ValueError as exc:  # the SDK validates keys before sending
            raise CloudError(f"create {req.label}: {exc}", ambiguous=False) from None
        if isinstance(made, tuple):  # linode_api4 <= 5.43 returned (instance, password)
            made = made[0]
        return _info(made._raw_json)

    def create_with_failover(self, req: InstanceRequest,
                             regions: Sequence[str]) -> InstanceInfo:
        """Create in the first region with capacity; CapacityError naming all tried if none."""
        tried: list[str] = []
        for region in regions or (req.region,):
            try:
                return self.create(replace(req, region=region))
            except CapacityError:
                tried.append(region)
        raise CapacityError(f"no capacity for {req.type_id} in any of {', '.join(tried)}; "
                            "add fallback regions or try later")

    def wait_running(self, instance_id: int, timeout_s: float,
                     on_tick: Callable[[float], None] | None = None) -> InstanceInfo:
        """Poll until `running`; CloudError if it vanishes, fails to boot, or takes too long."""
        seen: list[str] = []

        def running() -> InstanceInfo | None:
            info = self.get(instance_id)
            if info is None:
                raise CloudError(f"instance {instance_id} disappeared while booting")
            if info.status == "offline" and "booting" in seen:
                # booting → offline: the boot failed; waiting longer only costs money.
                raise CloudError(f"instance {instance_id} failed to boot (went offline)")
            seen.append(info.status)
            return info if info.status == "running" else None

        return wait_until(running, timeout_s, self.poll_interval_s, on_tick,
                          f"instance {instance_id} to be running", error=CloudError,
                          sleep=self._sleep)

    def delete(self, instance_id: int) -> None:
        """Delete and wait until the API confirms it is gone; DeleteError otherwise."""
        def send() -> bool:
            try:
                self.client.delete(f"/linode/instances/{int(instance_id)}")
            except ApiError as exc:
                if exc.status != 404:  # 404: already gone, which is what we want
                    raise
            return True

        try:
            self._call(send, f"delete instance {instance_id}")
            wait_until(lambda: self.get(instance_id) is None, self.delete_timeout_s,
                       self.poll_interval_s, what=f"instance {instance_id} to be gone",
                       sleep=self._sleep)
        except ProvisionError as exc:
            raise DeleteError(instance_id, str(exc), self.base_url) from None

    def create_firewall(self, label: str, rules: Mapping[str, Any],
                        tags: Sequence[str]) -> int:
        """POST /networking/firewalls; returns its id."""
        made = self._call(lambda: self.client.networking.firewall_create(
            label, dict(rules), tags=list(tags)), f"create cloud firewall {label}")
        return int(made.id)

    def set_firewall_rules(self, firewall_id: int, rules: Mapping[str, Any]) -> None:
        """PUT /networking/firewalls/{id}/rules: the whole rule set replaced at once."""
        self._call(lambda: self.client.put(f"/networking/firewalls/{int(firewall_id)}/rules",
                                           data=dict(rules)),
                   f"update the rules of cloud firewall {firewall_id}")

    def delete_firewall(self, firewall_id: int) -> None:
        self._delete_or_gone(f"/networking/firewalls/{int(firewall_id)}",
                             f"delete cloud firewall {firewall_id}")

    def create_token(self, label: str, scopes: str, expiry: datetime) -> tuple[int, str]:
        """POST /profile/tokens; (id, secret). The secret is only ever returned here."""
        made = self._call(lambda: self.client.profile.token_create(
            label=label, scopes=scopes, expiry=expiry.astimezone(UTC).replace(tzinfo=None)),
            f"create the token {label}")
        secret = getattr(made, "_raw_json", {}).get("token") or ""
        if not secret:
            raise CloudError(f"create the token {label}: the API returned no token")
        return int(made.id), secret

    def delete_token(self, token_id: int) -> None:
        self._delete_or_gone(f"/profile/tokens/{int(token_id)}", f"revoke token {token_id}")


def fetch_all(client: LinodeClient, path: str,
              filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object of a paginated GET (raw dicts), following `pages`."""
    items: list[dict[str, Any]] = []
    page, pages = 1, 1
    while page <= pages:
        body = client.get(f"{path}?page={page}", filters=dict(filters) if filters else None)
        if isinstance(body, list):  # a bare list: no pagination
            return body
        items.extend(body.get("data") or [])
        pages = int(body.get("pages") or 1)
        page += 1
    return items


def _info(raw: Mapping[str, Any]) -> InstanceInfo:
    v4 = [str(a) for a in raw.get("ipv4") or ()]
    public = next((a for a in v4 if not _PRIVATE_V4.match(a)), None)
    # Linode's private range is 192.168.128.0/17; other Linode-compatible endpoints may use
    # another, but they too list the public address first, so a second address is private
    # (we never ask for extra public ones).
    private = next((a for a in v4 if _PRIVATE_V4.match(a)), None) \
        or next((a for a in v4 if a != public), None)
    return InstanceInfo(
        id=int(raw["id"]),
        label=str(raw.get("label") or ""),
        status=str(raw.get("status") or "unknown"),
        ipv4=public,
        private_ipv4=private,
        type_id=str(raw.get("type") or ""),
        region=str(raw.get("region") or ""),
        image=raw.get("image"),
        created=_parse_time(raw.get("created")),
        tags=tuple(raw.get("tags") or ()),
    )


def _parse_time(value: Any) -> datetime:
    """API times are UTC without a zone; a missing one becomes 'now' (so lifetimes stay sane)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _reasons(exc: ApiError) -> str:
    return "; ".join(exc.errors) if exc.errors else f"HTTP {exc.status}"


def _translate(exc: ApiError, what: str) -> ProvisionError:
    if exc.status == 401:
        return TokenError(f"{what}: the Linode API token was refused ({_reasons(exc)})")
    if exc.status == 403:
        return TokenError(f"{what}: the Linode API token is not allowed to do this "
                          f"({_reasons(exc)})")
    return CloudError(f"{what}: {describe(exc)}", ambiguous=is_ambiguous(exc))
