"""A local Linode API v4 emulator: the shapes, statuses and errors of shared/linode-api/.

`FakeLinode` serves on 127.0.0.1 (random port) the paths juliafarm uses, so the real
`linode_api4.LinodeClient(token, base_url=fake.url)` works unmodified. Instances follow Linode's
lifecycle (provisioning → booting → running; deleting → gone) and each one is played by a
`HostBackend` (no machine, or a real network-namespace host). A billing ledger records what every
instance would cost, and `faults` scripts rate limits, 5xx, capacity errors and lost instances.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import math
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakelinode.catalog import IMAGES, REGIONS, TYPES, price_in
from tests.fakelinode.faults import Faults
from tests.fakelinode.hostapi import HostBackend, HostSpec, NullHostBackend
from tests.fakelinode.ledger import Ledger, utcnow

LABEL_RE = re.compile(r"^[a-zA-Z]((?!--|__|\.\.)[a-zA-Z0-9-_.])+$")
PUBLIC_NET = ipaddress.ip_network("203.0.113.0/24")
PRIVATE_NET = ipaddress.ip_network("198.51.100.0/24")
FIRST_HOST = 10
# Addresses held by running emulators on this machine (one file per address, holding a pid).
CLAIMS = Path(os.environ.get("JULIAFARM_FAKELINODE_CLAIMS", "/tmp/juliafarm-fakelinode-ips"))
# Filterable fields per collection (x-linode-filterable in the spec, plus what the SDK sends;
# instances' ipv4 as the spec linode-cli 5.69 is baked from, 4.229.1, marks it).
FILTERABLE = {
    "linode/instances": {"id", "label", "tags", "region", "type", "image", "group", "status",
                         "ipv4"},
    "linode/types": {"class", "vcpus", "memory", "disk", "label", "id"},
    "account/events": {"id", "action", "created", "entity.id", "entity.type", "status", "seen"},
    "networking/firewalls": {"id", "label", "tags"},
    "images": {"id", "label", "vendor", "is_public", "deprecated"},
    "regions": {"id", "country", "status"},
}
# GET /images without a token lists the public (linode/…) images (shared/linode-api/README.md).
PUBLIC_GETS = (re.compile(r"linode/types(/[^/]+)?"), re.compile(r"regions(/[^/]+)?"),
               re.compile(r"images"))
# Which OAuth scope group guards which path (for minted, scoped tokens).
SCOPE_OF = (("linode/", "linodes"), ("networking/firewalls", "firewall"),
            ("account/events", "events"), ("account", "account"), ("tags", "linodes"),
            ("images", "images"))
# GET /account: example values only (the shape of spec 4.229's Account, as linode-cli knows it).
ACCOUNT = {
    "active_promotions": [], "active_since": "2018-01-02T03:04:05",
    "address_1": "123 Example Street", "address_2": "", "balance": 0.0,
    "billing_source": "linode",
    "capabilities": ["Linodes", "NodeBalancers", "Block Storage", "Object Storage",
                     "Kubernetes", "Cloud Firewall", "Vlans", "Metadata", "Placement Group",
                     "Disk Encryption", "Maintenance Policy"],
    "city": "Example City", "company": "juliafarm tests", "country": "US",
    "credit_card": {"expiry": "12/2030", "last_four": "1111"}, "email": "test@example.com",
    "euuid": "00000000-0000-4000-8000-000000000000", "first_name": "Test",
    "last_name": "Account", "phone": "555-0100", "state": "NJ", "tax_id": "", "zip": "07101",
}


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


class ApiFailure(Exception):
    def __init__(self, status: int, *errors: tuple[str, str | None],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, errors)
        self.status = status
        self.errors = [{"reason": r, **({"field": f} if f else {})} for r, f in errors]
        self.headers = headers or {}


@dataclass
class Token:
    id: int
    secret: str = field(repr=False)
    label: str
    scopes: str          # "*" or "linodes:read_write events:read_only ..."
    created: datetime
    expiry: datetime | None
    revoked: bool = False

    def valid(self, now: datetime) -> bool:
        return not self.revoked and (self.expiry is None or now < self.expiry)

    def allows(self, method: str, path: str) -> bool:
        if self.scopes == "*":
            return True
        if path == "profile" and method == "GET":
            return True
        group = next((g for prefix, g in SCOPE_OF if path.startswith(prefix)), None)
        if group is None:
            return False
        granted = {s.strip() for s in re.split(r"[ ,]+", self.scopes) if s.strip()}
        if f"{group}:read_write" in granted:
            return True
        return method == "GET" and f"{group}:read_only" in granted


@dataclass
class Instance:
    data: dict[str, Any]
    spec: HostSpec
    host_started: bool = False


class FakeLinode:
    """The emulator. Use as a context manager, or start()/stop()."""

    def __init__(self, token: str | None = None, *, backend: HostBackend | None = None,
                 provision_delay_s: float = 0.2, boot_delay_s: float = 0.2,
                 delete_delay_s: float = 0.1, clock: Callable[[], datetime] = utcnow,
                 host_api_bind: str | None = None, claim_addresses: bool = False) -> None:
        self.master_token = token or secrets.token_hex(32)
        self.backend: HostBackend = backend or NullHostBackend()
        self.provision_delay_s = provision_delay_s
        self.boot_delay_s = boot_delay_s
        self.delete_delay_s = delete_delay_s
        self.clock = clock
        self.ledger = Ledger(clock)
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []  # (method, path) log for assertions
        self.responses: list[tuple[str, str, int, Any]] = []  # for the conformance test
        self._lock = threading.RLock()
        self._instances: dict[int, Instance] = {}
        self._firewalls: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._tokens: dict[str, Token] = {}
        self._next_id = {"linode": 40000001, "event": 900001, "firewall": 5001, "token": 101}
        self._next_public = FIRST_HOST
        self._next_private = FIRST_HOST
        self._servers: list[ThreadingHTTPServer] = []
        self._threads: list[threading.Thread] = []
        self._host_api_bind = host_api_bind
        # Real hosts must not share an address with another emulator's on this machine;
        # API-only emulators hand out addresses nobody connects to, so they need no claim.
        self._claim_addresses = claim_addresses
        self._claims: list[Path] = []
        self.url = ""
        self.host_api_url = ""  # how instances reach the API (issue 6's watchdog)
        self._add_token(self.master_token, "master", "*", None)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeLinode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = self._serve("127.0.0.1", 0)
        port = server.server_address[1]
        self.url = f"http://127.0.0.1:{port}/v4"
        self.host_api_url = self.url
        if self._host_api_bind:
            extra = self._serve(self._host_api_bind, port)
            self.host_api_url = f"http://{self._host_api_bind}:{extra.server_address[1]}/v4"

    def bind_for_hosts(self, address: str) -> str:
        """Also listen on `address` (e.g. the test bridge 203.0.113.1) so hosts reach the API."""
        port = self._servers[0].server_address[1]
        extra = self._serve(address, port)
        self.host_api_url = f"http://{address}:{extra.server_address[1]}/v4"
        return self.host_api_url

    def _serve(self, address: str, port: int) -> ThreadingHTTPServer:
        emulator = self

        class Handler(_Handler):
            fake = emulator

        server = ThreadingHTTPServer((address, port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="fakelinode", daemon=True)
        thread.start()
        self._servers.append(server)
        self._threads.append(thread)
        return server

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
        with self._lock:
            ids = list(self._instances)
        for iid in ids:
            self.backend.stop(iid)
        self.backend.close()
        for claim in self._claims:
            claim.unlink(missing_ok=True)

    # ------------------------------------------------------------------ test helpers

    def mint_token(self, scopes: str = "*", expiry: datetime | None = None) -> str:
        secret = secrets.token_hex(32)
        self._add_token(secret, "test", scopes, expiry)
        return secret

    def instances(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(i.data) for i in self._instances.values()]

    def instance(self, instance_id: int) -> dict[str, Any] | None:
        with self._lock:
            inst = self._instances.get(instance_id)
            return copy.deepcopy(inst.data) if inst else None

    def host_spec(self, instance_id: int) -> HostSpec:
        with self._lock:
            return self._instances[instance_id].spec

    def firewalls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(f) for f in self._firewalls.values()]

    def ledger_view(self) -> dict[str, Any]:
        """The billing ledger and the live instances (GET /v4/_fake/ledger, for people)."""
        now = self.clock()
        rows = [{"instance_id": e.instance_id, "label": e.label, "type": e.type_id,
                 "created": iso(e.created), "deleted": iso(e.deleted) if e.deleted else None,
                 "deleted_by": e.deleted_by, "billed_hours": e.billed_hours(now),
                 "charge_usd": e.charge_usd(now)} for e in self.ledger.entries()]
        return {"ledger": rows, "total_usd": self.ledger.total_usd(),
                "instances": self.instances()}

    def tokens(self) -> list[Token]:
        with self._lock:
            return list(self._tokens.values())

    def disappear(self, instance_id: int) -> None:
        """The instance is deleted outside the launcher (another user, the console, a watchdog)."""
        with self._lock:
            inst = self._instances.pop(instance_id, None)
        if inst is not None:
            self.backend.stop(instance_id)
            self.ledger.closed(instance_id, by="outside")

    def wait_status(self, instance_id: int, status: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            data = self.instance(instance_id)
            if (data is None and status == "gone") or (data and data["status"] == status):
                return
            time.sleep(0.05)
        raise TimeoutError(f"instance {instance_id} did not reach {status}")

    # ------------------------------------------------------------------ dispatch

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes
               ) -> tuple[int, Any, dict[str, str]]:
        parts = urlsplit(raw_path)
        if not parts.path.startswith("/v4/") and parts.path != "/v4":
            raise ApiFailure(404, ("Not found", None))
        path = parts.path[len("/v4/"):].strip("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append((method, path))
        public = method == "GET" and any(p.fullmatch(path) for p in PUBLIC_GETS)
        token = self._authenticate(headers.get("Authorization", ""))
        if token is None and not public:
            raise ApiFailure(401, ("Invalid Token", None), headers={"X-OAuth-Scopes": "unknown"})
        if token is not None and not public and not token.allows(method, path):
            raise ApiFailure(401, ("Your OAuth token is not authorized to use this endpoint.",
                                   None))
        rule = self.faults.take(method, path)
        if rule is not None and not rule.after_effect:
            raise self._fault_error(rule)
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            raise ApiFailure(400, ("Invalid JSON", None)) from None
        status, result = self._route(method, path, query, headers, payload, token)
        if rule is not None:  # the request took effect; the answer is lost
            raise self._fault_error(rule)
        # As the real API: the scopes of the token used (clients check them).
        return status, result, ({"X-OAuth-Scopes": token.scopes} if token else {})

    def _fault_error(self, rule: Any) -> ApiFailure:
        if rule.status == 429:
            reset = int(time.time()) + rule.retry_after_s
            return ApiFailure(429, ("Too many requests", None), headers={
                "Retry-After": str(rule.retry_after_s), "X-RateLimit-Limit": "10",
                "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)})
        return ApiFailure(rule.status, ("Please try again later.", None)
                          if rule.status >= 500 else ("Bad request", None))

    def _route(self, method: str, path: str, query: dict[str, str], headers: Any,
               body: dict[str, Any], token: Token | None) -> tuple[int, Any]:
        segs = path.split("/")
        xfilter = headers.get("X-Filter")
        match (method, segs):
            case ("GET", ["linode", "instances"]):
                return 200, self._page("linode/instances", self.instances(), query, xfilter)
            case ("POST", ["linode", "instances"]):
                return 200, self._create(body)
            case ("GET", ["linode", "instances", iid]):
                return 200, self._get_instance(iid)
            case ("PUT", ["linode", "instances", iid]):
                return 200, self._update(iid, body)
            case ("DELETE", ["linode", "instances", iid]):
                return 200, self._delete(iid)
            case ("POST", ["linode", "instances", iid, action]) if action in (
                    "boot", "shutdown", "reboot"):
                return 200, self._action(iid, action)
            case ("GET", ["linode", "instances", iid, "ips"]):
                return 200, self._ips(iid)
            case ("GET", ["linode", "types"]):
                return 200, self._page("linode/types", TYPES, query, xfilter)
            case ("GET", ["linode", "types", tid]):
                return 200, self._one(TYPES, tid)
            case ("GET", ["regions"]):
                return 200, self._page("regions", REGIONS, query, xfilter)
            case ("GET", ["regions", rid]):
                return 200, self._one(REGIONS, rid)
            case ("GET", ["images"]):
                return 200, self._page("images", IMAGES, query, xfilter)
            case ("GET", ["images", vendor, name]):
                return 200, self._one(IMAGES, f"{vendor}/{name}")
            case ("GET", ["account", "events"]):
                with self._lock:
                    events = sorted(copy.deepcopy(self._events), key=lambda e: -e["id"])
                return 200, self._page("account/events", events, query, xfilter)
            case ("GET", ["account", "events", eid]):
                with self._lock:
                    return 200, self._one(self._events, _int(eid))
            case ("GET", ["profile"]):
                return 200, self._profile(token)
            case ("GET", ["account"]):
                # What the ledger would have charged so far is this month's uninvoiced balance.
                return 200, {**copy.deepcopy(ACCOUNT),
                             "balance_uninvoiced": round(self.ledger.total_usd(), 2)}
            case ("POST", ["profile", "tokens"]):
                return 200, self._create_token(body, token)
            case ("GET", ["profile", "tokens"]):
                return 200, self._page("profile/tokens", [self._token_view(t) for t in
                                                          self.tokens() if t.label != "master"],
                                       query, None)
            case ("DELETE", ["profile", "tokens", tid]):
                return 200, self._revoke_token(tid)
            case ("GET", ["networking", "firewalls"]):
                return 200, self._page("networking/firewalls", self.firewalls(), query, xfilter)
            case ("POST", ["networking", "firewalls"]):
                return 200, self._create_firewall(body)
            case ("GET", ["networking", "firewalls", fid]):
                with self._lock:
                    return 200, copy.deepcopy(self._firewall(fid))
            case ("DELETE", ["networking", "firewalls", fid]):
                return 200, self._delete_firewall(fid)
            case ("GET", ["networking", "firewalls", fid, "devices"]):
                with self._lock:
                    devices = [self._device(e) for e in self._firewall(fid)["entities"]]
                return 200, self._page("devices", devices, query, None)
            case ("POST", ["networking", "firewalls", fid, "devices"]):
                return 200, self._attach(fid, body)
            case ("GET", ["networking", "firewalls", fid, "rules"]):
                with self._lock:
                    return 200, copy.deepcopy(self._firewall(fid)["rules"])
            case ("PUT", ["networking", "firewalls", fid, "rules"]):
                return 200, self._update_rules(fid, body)
            case ("GET", ["_fake", "ledger"]) if token is not None and token.scopes == "*":
                return 200, self.ledger_view()
            case ("GET", ["tags"]):
                return 200, self._page("tags", self._tags(), query, None)
            case ("GET", ["tags", label]):
                objs = [{"type": "linode", "data": i} for i in self.instances()
                        if label in i["tags"]]
                return 200, self._page("tagged", objs, query, None)
        raise ApiFailure(404, ("Not found", None))

    # ------------------------------------------------------------------ auth and tokens

    def _add_token(self, secret: str, label: str, scopes: str, expiry: datetime | None) -> Token:
        with self._lock:
            tid = self._next_id["token"]
            self._next_id["token"] += 1
            token = Token(tid, secret, label, scopes, self.clock(), expiry)
            self._tokens[secret] = token
            return token

    def _authenticate(self, header: str) -> Token | None:
        if not header.startswith("Bearer "):
            return None
        with self._lock:
            token = self._tokens.get(header[len("Bearer "):].strip())
        if token is None or not token.valid(self.clock()):
            return None
        return token

    def _create_token(self, body: dict[str, Any], caller: Token | None) -> dict[str, Any]:
        if caller is None or caller.scopes != "*":
            raise ApiFailure(401, ("Your OAuth token is not authorized to use this endpoint.",
                                   None))
        scopes = body.get("scopes", "*")
        expiry = body.get("expiry")
        when = None
        if expiry is not None:
            try:
                when = datetime.fromisoformat(str(expiry).replace("Z", "")).replace(tzinfo=UTC)
            except ValueError:
                raise ApiFailure(400, ("Invalid datetime", "expiry")) from None
            if when <= self.clock():
                raise ApiFailure(400, ("Expiry must be in the future", "expiry"))
        token = self._add_token(secrets.token_hex(32), str(body.get("label") or "token"),
                                str(scopes), when)
        return {**self._token_view(token), "token": token.secret}

    def _token_view(self, t: Token) -> dict[str, Any]:
        return {"id": t.id, "label": t.label, "scopes": t.scopes, "created": iso(t.created),
                "expiry": iso(t.expiry) if t.expiry else None, "token": t.secret[:16]}

    def _revoke_token(self, tid: str) -> dict[str, Any]:
        with self._lock:
            for t in self._tokens.values():
                if t.id == _int(tid) and t.label != "master":
                    t.revoked = True
                    return {}
        raise ApiFailure(404, ("Not found", None))

    def _profile(self, token: Token | None) -> dict[str, Any]:
        return {"username": "juliafarm-test", "email": "test@example.com", "restricted": False,
                "uid": 1234, "authorized_keys": [], "two_factor_auth": False,
                "email_notifications": True, "ip_whitelist_enabled": False,
                "lish_auth_method": "keys_only", "timezone": "UTC",
                "authentication_type": "password",
                "referrals": {"code": "0", "completed": 0, "credit": 0, "pending": 0,
                              "total": 0, "url": "https://www.linode.com/?r=0"},
                "verified_phone_number": None}

    # ------------------------------------------------------------------ instances

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        errors: list[tuple[str, str | None]] = []
        type_id = body.get("type")
        region = body.get("region")
        image = body.get("image")
        ltype = next((t for t in TYPES if t["id"] == type_id), None)
        if ltype is None:
            errors.append(("A valid plan type by that ID was not found", "type"))
        known = next((r for r in REGIONS if r["id"] == region), None)
        if known is None:
            errors.append(("region is not valid", "region"))
        elif "Linodes" not in known["capabilities"]:
            # The body and field are the API's; this reason's wording is not recorded anywhere.
            errors.append((f"Linodes are not available in region {region}", "region"))
        if image is not None and not any(i["id"] == image for i in IMAGES):
            errors.append(("Not a valid image", "image"))
        label = body.get("label")
        if label is not None and not (isinstance(label, str) and 3 <= len(label) <= 64
                                      and LABEL_RE.match(label) and label[-1].isalnum()):
            errors.append(("Label must be 3-64 characters, start with a letter, contain only "
                           "letters, numbers, dashes, underscores and periods", "label"))
        root_pass = body.get("root_pass")
        keys = body.get("authorized_keys") or []
        if root_pass is not None:
            if not isinstance(root_pass, str) or not 11 <= len(root_pass) <= 128:
                errors.append(("Length must be 11-128 characters", "root_pass"))
            elif _weak(root_pass):
                errors.append(("Password does not meet strength requirement", "root_pass"))
        if image is not None and root_pass is None and not keys and \
                not body.get("authorized_users"):
            errors.append(("Must provide valid root_pass, authorized_keys, or "
                           "authorized_users", None))
        user_data = (body.get("metadata") or {}).get("user_data")
        decoded = None
        if user_data is not None:
            try:
                decoded = base64.b64decode(user_data, validate=True)
            except ValueError:
                errors.append(("user_data must be base64-encoded", "metadata.user_data"))
        firewall_id = body.get("firewall_id")
        if errors:
            raise ApiFailure(400, *errors)
        if region in self.faults.no_capacity_regions:
            raise ApiFailure(400, (f"Insufficient capacity in {region} for {type_id}: this "
                                   "plan is not available in this region right now", "region"))
        assert ltype is not None and known is not None
        with self._lock:
            if label is None:
                label = f"linode{self._next_id['linode']}"
            if any(i.data["label"] == label for i in self._instances.values()):
                raise ApiFailure(400, ("Label must be unique among your linodes", "label"))
            if firewall_id is not None and firewall_id not in self._firewalls:
                raise ApiFailure(400, ("Firewall not found", "firewall_id"))
            iid = self._next_id["linode"]
            self._next_id["linode"] += 1
            public = self._claim(PUBLIC_NET, "_next_public")
            private = None
            if body.get("private_ip"):
                private = self._claim(PRIVATE_NET, "_next_private")
            now = self.clock()
            booted = body.get("booted", image is not None)
            data = _instance_json(iid, label, ltype, known, image, public, private,
                                  list(body.get("tags") or []), now,
                                  "provisioning" if booted else "offline", decoded is not None)
            spec = HostSpec(
                instance_id=iid, label=label, image=image or "", ipv4=public,
                private_ipv4=private, root_pass=root_pass, authorized_keys=tuple(keys),
                user_data=None if self.faults.take_ignore_user_data() else decoded,
                ssh_never_up=self.faults.take_ssh_never_up(),
                first_boot_commands=self.faults.take_first_boot_commands(),
                environment={"api_url": self.host_api_url},
                firewall_rules=None)
            self._instances[iid] = Instance(data, spec)
            # Billed at the region's own price where it has one (br-gru, id-cgk cost more).
            self.ledger.opened(iid, label, ltype["id"], *price_in(ltype, region))
            if firewall_id is not None:
                self._attach_locked(firewall_id, iid)
            self._event("linode_create", iid, label, "finished")
            if booted:
                boot_event = self._event("linode_boot", iid, label, "started")
                threading.Thread(target=self._boot, args=(iid, boot_event, True),
                                 daemon=True).start()
            return copy.deepcopy(data)

    def _claim(self, net: ipaddress.IPv4Network, counter: str) -> str:
        """The next address no other emulator on this machine holds (test runs may overlap:
        two hosts with one address would answer each other's SSH)."""
        while True:
            n = getattr(self, counter)
            if n >= net.num_addresses - 1:
                raise ApiFailure(400, ("No addresses left in the test range", None))
            setattr(self, counter, n + 1)
            address = str(net[n])
            if address in getattr(self.backend, "reserved", ()):
                continue  # a package registry's address on this machine
            if not self._claim_addresses:
                return address
            CLAIMS.mkdir(parents=True, exist_ok=True)
            claim = CLAIMS / address
            try:
                fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if _alive(claim):
                    continue
                claim.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            self._claims.append(claim)
            return address

    def _boot(self, iid: int, event: dict[str, Any], provisioning: bool) -> None:
        if provisioning:
            time.sleep(self.provision_delay_s)
        with self._lock:
            inst = self._instances.get(iid)
            if inst is None:
                return
            inst.data["status"] = "booting"
            spec = inst.spec
            rules = self._rules_for(iid)
        if rules is not None:
            spec = _replace(spec, firewall_rules=rules)
        try:
            self.backend.start(spec)
            ok = True
            with self._lock:
                latest = self._rules_for(iid)
            if latest is not None and latest != rules:  # updated while the host was starting
                self.backend.set_firewall(iid, latest)
        except Exception as exc:  # noqa: BLE001 - a failed boot shows as offline, like Linode
            ok = False
            # Not an API fault anyone scripted: say why, so a failing test shows the cause.
            print(f"fakelinode: host of instance {iid} failed to start: {exc}", file=sys.stderr)
        time.sleep(self.faults.boot_delay_s or self.boot_delay_s)
        with self._lock:
            inst = self._instances.get(iid)
            if inst is None:  # deleted while booting
                self.backend.stop(iid)
                return
            inst.host_started = ok
            inst.data["status"] = "running" if ok else "offline"
            inst.data["updated"] = iso(self.clock())
            event["status"] = "finished" if ok else "failed"
            event["percent_complete"] = 100

    def _get_instance(self, iid: str) -> dict[str, Any]:
        with self._lock:
            inst = self._instances.get(_int(iid))
            if inst is None:
                raise ApiFailure(404, ("Not found", None))
            return copy.deepcopy(inst.data)

    def _update(self, iid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            inst = self._instances.get(_int(iid))
            if inst is None:
                raise ApiFailure(404, ("Not found", None))
            if "label" in body:
                label = body["label"]
                if not (isinstance(label, str) and 3 <= len(label) <= 64
                        and LABEL_RE.match(label)):
                    raise ApiFailure(400, ("Label must be 3-64 characters", "label"))
                inst.data["label"] = label
            if "tags" in body:
                inst.data["tags"] = list(body["tags"])
            inst.data["updated"] = iso(self.clock())
            return copy.deepcopy(inst.data)

    def _delete(self, iid: str) -> dict[str, Any]:
        with self._lock:
            inst = self._instances.get(_int(iid))
            if inst is None:
                raise ApiFailure(404, ("Not found", None))
            if inst.data["status"] == "deleting":
                return {}
            inst.data["status"] = "deleting"
            self.ledger.closed(inst.data["id"])  # billing stops at the delete request
            self._event("linode_delete", inst.data["id"], inst.data["label"], "finished")
        threading.Thread(target=self._finish_delete, args=(inst.data["id"],),
                         daemon=True).start()
        return {}

    def _finish_delete(self, iid: int) -> None:
        self.backend.stop(iid)
        time.sleep(self.delete_delay_s)
        with self._lock:
            self._instances.pop(iid, None)
            for fw in self._firewalls.values():
                fw["entities"] = [e for e in fw["entities"] if e["id"] != iid]

    def _action(self, iid: str, action: str) -> dict[str, Any]:
        with self._lock:
            inst = self._instances.get(_int(iid))
            if inst is None:
                raise ApiFailure(404, ("Not found", None))
            label = inst.data["label"]
            if action == "shutdown":
                inst.data["status"] = "shutting_down"
                self._event("linode_shutdown", inst.data["id"], label, "finished")
            else:
                inst.data["status"] = "booting" if action == "boot" else "rebooting"
                event = self._event(f"linode_{action}", inst.data["id"], label, "started")
        if action == "shutdown":
            self.backend.stop(_int(iid))
            with self._lock:
                if _int(iid) in self._instances:
                    self._instances[_int(iid)].data["status"] = "offline"
        else:
            if action == "reboot":
                self.backend.stop(_int(iid))
            threading.Thread(target=self._boot, args=(_int(iid), event, False),
                             daemon=True).start()
        return {}

    def _ips(self, iid: str) -> dict[str, Any]:
        data = self._get_instance(iid)
        public = [{"address": data["ipv4"][0], "gateway": "203.0.113.1", "prefix": 24,
                   "public": True, "rdns": None, "region": data["region"], "subnet_mask":
                   "255.255.255.0", "type": "ipv4", "linode_id": data["id"]}]
        private = [{"address": a, "gateway": None, "prefix": 24, "public": False,
                    "rdns": None, "region": data["region"], "subnet_mask": "255.255.255.0",
                    "type": "ipv4", "linode_id": data["id"]} for a in data["ipv4"][1:]]
        # IPv6 as linode_api4 reads it (Instance.ips needs slaac and link_local): the SLAAC
        # address is the instance's `ipv6` (documentation range), link-local its fe80:: twin.
        slaac = data["ipv6"].split("/")[0]
        v6 = {"gateway": "fe80::1", "linode_id": data["id"], "prefix": 64, "rdns": None,
              "region": data["region"], "subnet_mask": "ffff:ffff:ffff:ffff::", "type": "ipv6"}
        suffix = ipaddress.IPv6Address(slaac).packed[8:]
        link_local = str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + suffix))
        return {"ipv4": {"public": public, "private": private, "shared": [], "reserved": [],
                         "vpc": []},
                "ipv6": {"global": [], "link_local": {"address": link_local, "public": False, **v6},
                         "slaac": {"address": slaac, "public": True, **v6}}}

    def _event(self, action: str, iid: int, label: str, status: str) -> dict[str, Any]:
        eid = self._next_id["event"]
        self._next_id["event"] += 1
        event = {"id": eid, "action": action, "created": iso(self.clock()), "seen": False,
                 "read": False, "percent_complete": 100 if status == "finished" else 0,
                 "time_remaining": None, "rate": None, "duration": 0.0,
                 "username": "juliafarm-test", "status": status, "message": "",
                 "entity": {"id": iid, "label": label, "type": "linode",
                            "url": f"/v4/linode/instances/{iid}"},
                 "secondary_entity": self._secondary(action, iid)}
        self._events.append(event)
        return event

    def _secondary(self, action: str, iid: int) -> dict[str, Any]:
        """As recorded: a create names its image, other instance events its config profile."""
        inst = self._instances.get(iid)
        image = inst.data["image"] if inst else None
        if action == "linode_create" and image:
            label = next((i["label"] for i in IMAGES if i["id"] == image), image)
            return {"id": image, "type": "image", "label": label, "url": f"/v4/images/{image}"}
        return {"id": iid + 1000000, "type": "linode_config", "label": "My Disk Profile",
                "url": f"/v4/linode/instances/{iid}/configs/{iid + 1000000}"}

    def _tags(self) -> list[dict[str, Any]]:
        labels = sorted({t for i in self.instances() for t in i["tags"]})
        return [{"label": t} for t in labels]

    # ------------------------------------------------------------------ firewalls

    def _create_firewall(self, body: dict[str, Any]) -> dict[str, Any]:
        label = body.get("label")
        rules = body.get("rules")
        errors: list[tuple[str, str | None]] = []
        if not (isinstance(label, str) and 3 <= len(label) <= 32 and LABEL_RE.match(label)):
            errors.append(("Label must be 3-32 characters", "label"))
        errors += _rules_errors(rules, "rules")
        if errors:
            raise ApiFailure(400, *errors)
        with self._lock:
            fid = self._next_id["firewall"]
            self._next_id["firewall"] += 1
            now = iso(self.clock())
            fw = {"id": fid, "label": label, "created": now, "updated": now,
                  "status": "enabled", "tags": list(body.get("tags") or []),
                  "rules": {"inbound": [], "outbound": [], **rules, "version": 1,
                            "fingerprint": secrets.token_hex(4)},
                  "entities": []}
            self._firewalls[fid] = fw
            for iid in (body.get("devices") or {}).get("linodes") or []:
                self._attach_locked(fid, int(iid))
            return copy.deepcopy(fw)

    def _update_rules(self, fid: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /networking/firewalls/{id}/rules: the whole rules object replaced, applied at once
        to every machine the firewall is attached to (a cloud firewall sits outside them)."""
        errors = _rules_errors(body, None)
        if errors:
            raise ApiFailure(400, *errors)
        with self._lock:
            fw = self._firewall(fid)
            version = int(fw["rules"].get("version", 1)) + 1
            fw["rules"] = {"inbound": [], "outbound": [], **body, "version": version,
                           "fingerprint": secrets.token_hex(4)}
            fw["updated"] = iso(self.clock())
            rules = copy.deepcopy(fw["rules"])
            # Machines still starting included: the backend holds the rules until the host's
            # firewall is up, and _boot checks again once the start returns.
            attached = [e["id"] for e in fw["entities"]]
        for iid in attached:
            self.backend.set_firewall(iid, rules)
        return rules

    def _firewall(self, fid: str | int) -> dict[str, Any]:
        fw = self._firewalls.get(_int(fid))
        if fw is None:
            raise ApiFailure(404, ("Not found", None))
        return fw

    def _attach(self, fid: str, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("type") != "linode" or not isinstance(body.get("id"), int):
            raise ApiFailure(400, ("type and id are required", "type"))
        with self._lock:
            self._firewall(fid)
            return self._device(self._attach_locked(_int(fid), body["id"]))

    def _attach_locked(self, fid: int, iid: int) -> dict[str, Any]:
        fw = self._firewall(fid)
        inst = self._instances.get(iid)
        if inst is None:
            raise ApiFailure(400, ("Linode not found", "id"))
        entity = {"id": iid, "type": "linode", "label": inst.data["label"],
                  "url": f"/v4/linode/instances/{iid}"}
        if all(e["id"] != iid for e in fw["entities"]):
            fw["entities"].append(entity)
        return entity

    def _device(self, entity: dict[str, Any]) -> dict[str, Any]:
        now = iso(self.clock())
        return {"id": entity["id"], "created": now, "updated": now, "entity": entity}

    def _rules_for(self, iid: int) -> dict[str, Any] | None:
        for fw in self._firewalls.values():
            if fw["status"] == "enabled" and any(e["id"] == iid for e in fw["entities"]):
                return copy.deepcopy(fw["rules"])
        return None

    def _delete_firewall(self, fid: str) -> dict[str, Any]:
        with self._lock:
            self._firewall(fid)
            del self._firewalls[_int(fid)]
        return {}

    # ------------------------------------------------------------------ collections

    def _one(self, items: Iterable[dict[str, Any]], key: Any) -> dict[str, Any]:
        for item in items:
            if item.get("id") == key:
                return copy.deepcopy(item)
        raise ApiFailure(404, ("Not found", None))

    def _page(self, kind: str, items: list[dict[str, Any]], query: dict[str, str],
              xfilter: str | None) -> dict[str, Any]:
        if xfilter:
            try:
                spec = json.loads(xfilter)
            except ValueError:
                raise ApiFailure(400, ("Invalid JSON in X-Filter", "X-Filter")) from None
            items = _apply_filter(items, spec, FILTERABLE.get(kind, set()))
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("page_size", "100"))
        except ValueError:
            raise ApiFailure(400, ("Must be an integer", "page")) from None
        if not 25 <= size <= 500:
            raise ApiFailure(400, ("Must be 25-500", "page_size"))
        pages = max(1, math.ceil(len(items) / size))
        if page < 1:
            raise ApiFailure(400, ("Must be >= 1", "page"))
        return {"data": items[(page - 1) * size: page * size], "page": page, "pages": pages,
                "results": len(items)}


def _apply_filter(items: list[dict[str, Any]], spec: Any, allowed: set[str]
                  ) -> list[dict[str, Any]]:
    if not isinstance(spec, dict):
        raise ApiFailure(400, ("X-Filter must be an object", "X-Filter"))
    order_by = spec.get("+order_by")
    order = spec.get("+order", "asc")
    cond = {k: v for k, v in spec.items() if k not in ("+order_by", "+order")}
    out = [i for i in items if _matches(i, cond, allowed)]
    if order_by:
        if order_by not in allowed:
            raise ApiFailure(400, (f"Cannot filter on {order_by}", "X-Filter"))
        out.sort(key=lambda i: (_field(i, order_by) is None, _field(i, order_by)),
                 reverse=order == "desc")
    return out


def _field(item: dict[str, Any], name: str) -> Any:
    value: Any = item
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(item: dict[str, Any], cond: dict[str, Any], allowed: set[str]) -> bool:
    for key, want in cond.items():
        if key == "+and":
            if not all(_matches(item, c, allowed) for c in want):
                return False
            continue
        if key == "+or":
            if not any(_matches(item, c, allowed) for c in want):
                return False
            continue
        if key not in allowed:
            raise ApiFailure(400, (f"Cannot filter on {key}", "X-Filter"))
        have = _field(item, key)
        if isinstance(want, dict):
            for op, arg in want.items():
                if not _op(have, op, arg):
                    return False
        elif isinstance(have, list):  # equality on a list field = membership
            if want not in have:
                return False
        elif have != want:
            return False
    return True


def _op(have: Any, op: str, arg: Any) -> bool:
    if op == "+contains":
        if isinstance(have, list):
            return any(str(arg) in str(h) for h in have)
        return str(arg) in str(have)
    if op == "+neq":
        return have != arg
    if have is None:
        return False
    return {"+gt": have > arg, "+gte": have >= arg, "+lt": have < arg,
            "+lte": have <= arg}.get(op, False) if op in ("+gt", "+gte", "+lt", "+lte") \
        else _bad_op(op)


def _bad_op(op: str) -> bool:
    raise ApiFailure(400, (f"Unknown filter operator {op}", "X-Filter"))


def _instance_json(iid: int, label: str, ltype: dict[str, Any], region: dict[str, Any],
                   image: str | None, public: str, private: str | None, tags: list[str],
                   now: datetime, status: str, has_user_data: bool) -> dict[str, Any]:
    return {
        "id": iid, "label": label, "group": "", "status": status, "created": iso(now),
        "updated": iso(now), "type": ltype["id"],
        "ipv4": [public] + ([private] if private else []),
        "ipv6": f"2001:db8::{iid % 65536:x}/128", "image": image, "region": region["id"],
        "site_type": region.get("site_type", "core"),
        "specs": {"disk": ltype["disk"], "memory": ltype["memory"], "vcpus": ltype["vcpus"],
                  "gpus": ltype.get("gpus", 0), "transfer": ltype["transfer"],
                  "accelerated_devices": 0},
        "alerts": {"cpu": 90 * ltype["vcpus"], "network_in": 10, "network_out": 10,
                   "transfer_quota": 80, "io": 10000, "system_alerts": [], "user_alerts": []},
        "backups": {"enabled": False, "available": False,
                    "schedule": {"day": None, "window": None}, "last_successful": None},
        "hypervisor": "kvm", "watchdog_enabled": True, "tags": tags,
        "host_uuid": secrets.token_hex(20), "has_user_data": has_user_data,
        "placement_group": None, "disk_encryption": "enabled", "lke_cluster_id": None,
        "capabilities": [], "interface_generation": "legacy_config",
        "maintenance_policy": "linode/migrate", "locks": [],
    }


def _alive(claim: Path) -> bool:
    try:
        os.kill(int(claim.read_text() or "0"), 0)
        return True
    except (ValueError, OSError):
        return False


def _weak(password: str) -> bool:
    classes = sum([any(c.islower() for c in password), any(c.isupper() for c in password),
                   any(c.isdigit() for c in password), any(not c.isalnum() for c in password)])
    return classes < 3 or len(set(password)) < 6


def _int(text: str | int) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ApiFailure(404, ("Not found", None)) from None


def _replace(spec: HostSpec, **changes: Any) -> HostSpec:
    from dataclasses import replace

    return replace(spec, **changes)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLinode
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet in tests
        return

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        extra: dict[str, str] = {}
        try:
            status, result, extra = self.fake.handle(self.command, self.path, self.headers, body)
        except ApiFailure as exc:
            status, result, extra = exc.status, {"errors": exc.errors}, exc.headers
        except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer
            status, result = 500, {"errors": [{"reason": f"emulator error: {exc!r}"}]}
        with self.fake._lock:
            self.fake.responses.append((self.command, self.path, status, result))
        data = json.dumps(result).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Spec-Version", "4.189.0")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815


def reference_dir() -> Path | None:
    """shared/linode-api beside the repository (absent on a user's clone)."""
    import os

    env = os.environ.get("JULIAFARM_LINODE_REFERENCE")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "linode-api"
    return path if path.is_dir() else None


def expiry_in(seconds: float, clock: Callable[[], datetime] = utcnow) -> str:
    return iso(clock() + timedelta(seconds=seconds))


def _rules_errors(rules: Any, field: str | None) -> list[tuple[str, str | None]]:
    """What the API says of a firewall `rules` object (create's `rules`, or PUT .../rules)."""
    prefix = f"{field}." if field else ""
    if not isinstance(rules, dict) or rules.get("inbound_policy") not in ("ACCEPT", "DROP") \
            or rules.get("outbound_policy") not in ("ACCEPT", "DROP"):
        return [("inbound_policy and outbound_policy are required",
                 field or "inbound_policy")]
    errors: list[tuple[str, str | None]] = []
    for direction in ("inbound", "outbound"):
        for k, rule in enumerate(rules.get(direction) or []):
            if not isinstance(rule, dict) or rule.get("action") not in ("ACCEPT", "DROP") or \
                    rule.get("protocol") not in ("TCP", "UDP", "ICMP", "IPENCAP"):
                errors.append(("action and protocol are required",
                               f"{prefix}{direction}[{k}]"))
    return errors
