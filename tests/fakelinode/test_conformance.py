"""Every response the emulator gives in a scripted session validates against the OpenAPI subset.

The subset (shared/linode-api/openapi-subset.yaml, spec 4.189.0) lives beside the repository, not in
it; on a user's clone it is absent and this test says so.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests
from linode_api4 import Instance, LinodeClient

from tests.fakelinode.server import reference_dir

REF = reference_dir()
pytestmark = pytest.mark.skipif(REF is None, reason="shared/linode-api reference data is absent "
                                "(set JULIAFARM_LINODE_REFERENCE to its folder)")


def _spec() -> dict[str, Any]:
    import yaml

    assert REF is not None
    return yaml.safe_load((REF / "openapi-subset.yaml").read_text())


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string",
               type(None): "null"}


def _recorded_keys() -> tuple[set[str], dict[str, set[str]]]:
    """Field names the live API was recorded sending (shared/linode-api/recorded/), and the
    scalar JSON types it was recorded sending for each (null included)."""
    import json

    assert REF is not None
    keys: set[str] = set()
    types: dict[str, set[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            keys.update(node)
            for k, v in node.items():
                if type(v) in _JSON_TYPES:
                    types.setdefault(k, set()).add(_JSON_TYPES[type(v)])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for f in (REF / "recorded").glob("*.json"):
        walk(json.loads(f.read_text()))
    return keys, types


def _to_json_schema(node: Any, newer: set[str], recorded: dict[str, set[str]]) -> Any:
    """OpenAPI 3.0 → JSON Schema, with the live API as the truth where the spec disagrees.

    `nullable: true` admits null. A field also admits the scalar types the live API was recorded
    sending for it (the spec misses some: backups.last_successful is null, an event's
    secondary_entity.id an integer). A closed object also admits the fields the live API was
    recorded sending after spec 4.189.0 (site_type, locks, …)."""
    if isinstance(node, list):
        return [_to_json_schema(v, newer, recorded) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v, newer, recorded) for k, v in node.items()
           if k not in ("nullable", "x-linode-filterable", "x-linode-cli-display")}
    if "oneOf" in out:  # the admitted extra fields make union branches overlap
        out["anyOf"] = out.pop("oneOf")
    if isinstance(out.get("properties"), dict):
        out["properties"] = {
            name: ({"anyOf": [sub, *({"type": t} for t in sorted(recorded[name]))]}
                   if name in recorded else sub)
            for name, sub in out["properties"].items()}
        if out.get("additionalProperties") is False:
            for name in newer - set(out["properties"]):
                out["properties"][name] = {}
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _matcher(spec: dict[str, Any]):
    routes = []
    for template, item in spec["paths"].items():
        rx = re.escape(template.replace("/{apiVersion}", ""))
        rx = re.sub(r"\\\{[^}]+\\\}", r"[^/]+", rx)
        routes.append((re.compile(rx + "$"), item))

    def find(method: str, path: str) -> dict[str, Any] | None:
        bare = path.split("?")[0].removeprefix("/v4")
        # Two-part image ids (linode/debian12) are one path parameter.
        for rx, item in routes:
            if rx.match(bare) and method.lower() in item:
                return item[method.lower()]
        return None

    return find


def _schema(op: dict[str, Any], status: int) -> dict[str, Any] | None:
    responses = op["responses"]
    resp = responses.get(str(status)) or responses.get("default")
    content = (resp or {}).get("content", {}).get("application/json")
    return content.get("schema") if content else None


def _scripted_session(fake) -> None:
    c = LinodeClient(fake.master_token, base_url=fake.url, retry=False)
    list(c.linode.types())
    c.load(__import__("linode_api4").Type, "g6-dedicated-48")
    list(c.regions())
    list(c.images())
    c.profile()
    inst = c.linode.instance_create("g6-dedicated-2", "us-east", image="linode/debian12",
                                    root_pass="Str0ng-Passw0rd-xyz", label="conf-1",
                                    tags=["juliafarm"])
    fake.wait_status(inst.id, "running")
    c.load(Instance, inst.id)
    list(c.linode.instances(Instance.tags.contains("juliafarm")))
    inst.label = "conf-2"
    inst.save()
    inst.shutdown()
    inst.boot()
    inst.reboot()
    list(c.account.events())
    events = list(c.account.events())
    c.load(__import__("linode_api4").Event, events[0].id)
    fw = c.networking.firewall_create(
        "conf-fw", {"inbound_policy": "DROP", "outbound_policy": "ACCEPT",
                    "inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "22",
                                 "addresses": {"ipv4": ["203.0.113.1/32"]}}], "outbound": []})
    list(c.networking.firewalls())
    c.load(__import__("linode_api4").Firewall, fw.id)
    c.profile.token_create(label="lease", scopes="linodes:read_write")
    list(c.tags())
    auth = {"Authorization": f"Bearer {fake.master_token}"}
    requests.get(f"{fake.url}/tags/juliafarm", headers=auth, timeout=5)
    fw.delete()
    inst.delete()
    time.sleep(0.2)
    # error answers too
    requests.get(f"{fake.url}/linode/instances", timeout=5)  # 401
    requests.get(f"{fake.url}/linode/instances/1", headers=auth, timeout=5)  # 404
    requests.post(f"{fake.url}/linode/instances", json={"type": "x"}, headers=auth, timeout=5)


def test_every_response_matches_the_spec(fake_linode) -> None:
    import jsonschema

    spec = _spec()
    find = _matcher(spec)
    newer, recorded = _recorded_keys()
    _scripted_session(fake_linode)
    checked = 0
    problems = []
    for method, path, status, body in fake_linode.responses:
        op = find(method, path)
        if op is None:
            continue  # endpoints outside the subset (e.g. /linode/instances/{id}/ips)
        schema = _schema(op, status)
        if schema is None:
            continue
        schema = _to_json_schema(schema, newer, recorded)
        try:
            jsonschema.validate(body, schema)
            checked += 1
        except jsonschema.ValidationError as exc:
            problems.append(f"{method} {path} {status}: {exc.message} at "
                            f"{list(exc.absolute_path)}")
    assert not problems, "\n".join(problems[:10])
    assert checked >= 25
