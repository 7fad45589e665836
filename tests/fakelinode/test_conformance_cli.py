"""The emulator through a second real client: the official `linode-cli` (PyPI linode-cli ≥ 5.69).

linode-cli is driven as users drive it, in a subprocess pointed at the emulator by its own
settings (LINODE_CLI_TOKEN, LINODE_CLI_API_HOST/_SCHEME/_VERSION), with a throw-away HOME, no
terminal (stdin from /dev/null, so it can never prompt), `--suppress-warnings` (no version check
against pypi.org) and proxies that lead nowhere for anything but 127.0.0.1: it can reach the
emulator and nothing else. Its answers are also checked against the API spec linode-cli was built
from (4.229.1, baked into the package): every field it knows must have the type it says.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakelinode import catalog
from tests.fakelinode.server import FakeLinode

pytestmark = pytest.mark.skipif(importlib.util.find_spec("linodecli") is None,
                                reason="linode-cli is not installed (pip install -e '.[test]')")

PW = "Str0ng-Passw0rd-xyz"


class LinodeCli:
    """`linode-cli ARGS --json` against one emulator; returns the parsed JSON it printed."""

    def __init__(self, fake: FakeLinode, home: Path) -> None:
        self.fake = fake
        self.env = {
            "PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "LINODE_CLI_TOKEN": fake.master_token,
            "LINODE_CLI_API_HOST": urlsplit(fake.url).netloc,
            "LINODE_CLI_API_SCHEME": "http", "LINODE_CLI_API_VERSION": "v4",
            # Anything not for the emulator goes to a closed port instead of the internet.
            "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "linodecli", *args, "--json", "--suppress-warnings",
             "--no-defaults"],
            env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)

    def __call__(self, *args: str) -> list[dict[str, Any]]:
        seen = len(self.fake.requests)
        done = self.run(*args)
        assert done.returncode == 0, f"linode-cli {' '.join(args)}: {done.stderr}"
        assert len(self.fake.requests) > seen, "linode-cli did not reach the emulator"
        return json.loads(done.stdout) if done.stdout.strip() else []

    def baked_models(self, ops: list[tuple[str, str]]) -> dict[str, Any]:
        """Method, URL path, pagination and response fields of linode-cli's operations, as baked
        from the API spec into the package (read in a subprocess: importing linodecli sets up
        its CLI)."""
        code = (
            "import json, sys, linodecli\n"
            "out = {}\n"
            "for cmd, action in json.loads(sys.argv[1]):\n"
            "    op = linodecli.cli.ops[cmd][action]\n"
            "    rm = op.response_model\n"
            "    out[f'{cmd} {action}'] = {'method': op.method, 'path': op.url_path,\n"
            "        'paginated': bool(rm.is_paginated),\n"
            "        'attrs': [[a.name, a.datatype, a.item_type] for a in rm.attrs]}\n"
            "print(json.dumps({'spec_version': linodecli.cli.spec_version, 'ops': out}))\n")
        done = subprocess.run([sys.executable, "-c", code, json.dumps(ops)], env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


@pytest.fixture
def cli(fake_linode: FakeLinode, tmp_path: Path) -> LinodeCli:
    return LinodeCli(fake_linode, tmp_path)


def test_regions_list_is_the_real_catalogue(cli) -> None:
    regions = cli("regions", "list")
    assert len(regions) == 34
    assert [r["id"] for r in regions] == [r["id"] for r in catalog.REGIONS]
    by_id = {r["id"]: r for r in regions}
    assert by_id["id-cgk"]["label"] == "Jakarta, ID" and by_id["us-east"]["site_type"] == "core"
    assert all("Linodes" in r["capabilities"] and r["status"] == "ok" for r in regions)
    assert cli("regions", "view", "br-gru")[0]["country"] == "br"


def test_types_carry_region_prices(cli) -> None:
    types = {t["id"]: t for t in cli("linodes", "types")}
    assert len(types) == 37
    d48 = types["g6-dedicated-48"]
    assert d48["price"] == {"hourly": 1.296, "monthly": 864.0}
    assert {rp["id"]: rp["hourly"] for rp in d48["region_prices"]} == \
        {"id-cgk": 1.555, "br-gru": 1.814}
    assert cli("linodes", "type-view", "g6-dedicated-48")[0] == d48


def test_create_view_ips_delete(cli, fake_linode) -> None:
    assert cli("linodes", "list") == []
    created = cli("linodes", "create", "--type", "g6-dedicated-2", "--region", "br-gru",
                  "--image", "linode/debian12", "--root_pass", PW, "--label", "cli-1",
                  "--tags", "juliafarm", "--tags", "juliafarm-run-cli")
    iid = created[0]["id"]
    assert created[0]["status"] == "provisioning" and created[0]["region"] == "br-gru"
    fake_linode.wait_status(iid, "running")
    view = cli("linodes", "view", str(iid))[0]
    assert (view["label"], view["status"], view["tags"]) == \
        ("cli-1", "running", ["juliafarm", "juliafarm-run-cli"])
    ips = cli("linodes", "ips-list", str(iid))[0]
    assert [a["address"] for a in ips["ipv4"]["public"]] == view["ipv4"]
    assert ips["ipv6"]["slaac"]["address"] == view["ipv6"].split("/")[0]
    assert ips["ipv6"]["link_local"]["address"].startswith("fe80::")
    assert [e.price_hourly_usd for e in fake_linode.ledger.entries()] == [0.076]  # São Paulo
    assert cli("linodes", "delete", str(iid)) == []
    fake_linode.wait_status(iid, "gone")
    assert cli("linodes", "list") == []
    assert fake_linode.ledger.running() == []


def test_list_filters_on_ipv4(cli) -> None:
    for label in ("one", "two", "three"):
        cli("linodes", "create", "--type", "g6-dedicated-2", "--region", "us-east",
            "--image", "linode/debian12", "--root_pass", PW, "--label", label)
    everything = cli("linodes", "list")
    assert len(everything) == 3
    two = next(i for i in everything if i["label"] == "two")
    # linode-cli sends X-Filter {"+and": [{"ipv4": ...}]}; the real API allows ipv4.
    assert [i["label"] for i in cli("linodes", "list", "--ipv4", two["ipv4"][0])] == ["two"]
    assert cli("linodes", "list", "--ipv4", "192.0.2.99") == []


def test_account_view(cli, fake_linode) -> None:
    account = cli("account", "view")[0]
    assert account["email"] == "test@example.com" and account["euuid"]
    assert account["balance_uninvoiced"] == 0
    assert "Linodes" in account["capabilities"]


def test_a_region_without_linodes_is_refused(cli, fake_linode, monkeypatch) -> None:
    region = next(r for r in catalog.REGIONS if r["id"] == "ca-central")
    monkeypatch.setitem(region, "capabilities",
                        [c for c in region["capabilities"] if c != "Linodes"])
    done = cli.run("linodes", "create", "--type", "g6-dedicated-2", "--region", "ca-central",
                   "--image", "linode/debian12", "--root_pass", PW, "--label", "nowhere")
    assert done.returncode != 0
    assert "Request failed: 400" in done.stderr
    errors = json.loads(done.stderr.split("Request failed: 400", 1)[1])
    assert [e["field"] for e in errors] == ["region"] and "ca-central" in errors[0]["reason"]
    assert fake_linode.ledger.entries() == []


# Fields linode-cli's spec (4.229.1) knows that the recorded answers it is served do not carry.
NOT_RECORDED = {
    # GET /linode/types was recorded 2024-07-19, before types carried accelerated_devices.
    "linodes types": {"accelerated_devices"},
    "linodes type-view": {"accelerated_devices"},
}
_JSON = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean",
         "array": "array", "object": "object"}


def _schema(attrs: list[list[Any]], skip: set[str]) -> dict[str, Any]:
    """JSON Schema from linode-cli's flattened fields ("ipv4.public.address": string).

    Every top-level field is required; a leaf has its type or null (the baked model keeps no
    nullability); a parent is an object or a list of objects (flattening hides which)."""
    tree: dict[str, Any] = {}
    for name, datatype, item_type in attrs:
        node = tree
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node.setdefault(leaf, (datatype, item_type))

    def build(node: dict[str, Any]) -> dict[str, Any]:
        props = {}
        for key, sub in node.items():
            if isinstance(sub, tuple):
                datatype, item_type = sub
                leaf: dict[str, Any] = {"type": [_JSON.get(datatype, "string"), "null"]}
                if datatype == "array" and item_type in _JSON:
                    leaf["items"] = {"type": _JSON[item_type]}
                props[key] = leaf
            else:
                obj = build(sub)
                props[key] = {"anyOf": [obj, {"type": "array", "items": obj},
                                        {"type": "null"}]}
        return {"type": "object", "properties": props}

    schema = build(tree)
    schema["required"] = sorted(set(tree) - skip)
    return schema


def test_answers_match_linode_clis_spec(cli, fake_linode) -> None:
    import jsonschema

    ops = [("linodes", "list"), ("linodes", "view"), ("linodes", "create"),
           ("linodes", "ips-list"), ("linodes", "types"), ("linodes", "type-view"),
           ("regions", "list"), ("regions", "view"), ("account", "view")]
    baked = cli.baked_models(ops)
    assert tuple(map(int, baked["spec_version"].split("."))) >= (4, 189)
    created = cli("linodes", "create", "--type", "g6-dedicated-4", "--region", "id-cgk",
                  "--image", "linode/debian12", "--root_pass", PW, "--label", "spec-1")
    iid = str(created[0]["id"])
    for args in (("linodes", "list"), ("linodes", "view", iid), ("linodes", "ips-list", iid),
                 ("linodes", "types"), ("linodes", "type-view", "g6-dedicated-48"),
                 ("regions", "list"), ("regions", "view", "us-east"), ("account", "view")):
        cli(*args)
    routes = []
    for key, op in baked["ops"].items():
        rx = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(op["path"].replace("{apiVersion}", "v4")))
        routes.append((op["method"].upper(), re.compile(rx + r"(\?.*)?$"), key, op))
    checked: set[str] = set()
    problems = []
    for method, path, status, body in fake_linode.responses:
        match = next(((k, op) for m, rx, k, op in routes if m == method and rx.match(path)),
                     None)
        if match is None or status != 200:
            continue
        key, op = match
        schema = _schema(op["attrs"], NOT_RECORDED.get(key, set()))
        items = body["data"] if op["paginated"] else [body]
        if op["paginated"]:
            assert {"data", "page", "pages", "results"} <= set(body), key
        for item in items:
            try:
                jsonschema.validate(item, schema)
            except jsonschema.ValidationError as exc:
                problems.append(f"{key} ({path}): {exc.message} at {list(exc.absolute_path)}")
        checked.add(key)
    assert not problems, "\n".join(problems[:10])
    assert checked == {f"{c} {a}" for c, a in ops}
