"""A minimal Linode API v4 stand-in on 127.0.0.1 for cloud-layer tests until the shared
emulator (tests/fakelinode) lands: real HTTP, real linode_api4 client, scripted faults."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "stub-token-0123456789abcdef0123456789abcdef"


@dataclass
class Stub:
    """State and faults. A fault is (method, kind): kinds are 'capacity', '429', '503',
    '500-after-create' (the instance is made, then the reply is an error)."""

    instances: dict[int, dict[str, Any]] = field(default_factory=dict)
    faults: list[tuple[str, str]] = field(default_factory=list)
    created: list[int] = field(default_factory=list)  # every instance ever made (the ledger)
    requests: list[str] = field(default_factory=list)
    url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1001))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fault(self, method: str) -> str | None:
        with self._lock:
            for i, (m, kind) in enumerate(self.faults):
                if m == method:
                    del self.faults[i]
                    return kind
        return None


def serve(stub: Stub) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, code: int, reason: str, headers: dict[str, str] | None = None) -> None:
            self._send(code, {"errors": [{"reason": reason}]}, headers)

        def _authorised(self) -> bool:
            stub.requests.append(f"{self.command} {self.path}")
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._error(401, "Invalid Token", {"X-OAuth-Scopes": "unknown"})
                return False
            kind = stub.fault(self.command)
            if kind == "429":
                self._error(429, "Too many requests", {"Retry-After": "3"})
                return False
            if kind == "503":
                self._error(503, "Service unavailable")
                return False
            if kind is not None:
                stub.faults.insert(0, (self.command, kind))  # handled by the endpoint
            return True

        def do_GET(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            path = self.path.split("?")[0].removeprefix("/v4")
            if path == "/profile":
                return self._send(200, {"username": "u", "restricted": False},
                                  {"X-OAuth-Scopes": "*"})
            if path == "/linode/instances":
                f = json.loads(self.headers.get("X-Filter") or "{}")
                items = [i for i in stub.instances.values()
                         if all(v in i[k] if isinstance(i[k], list) else i[k] == v
                                for k, v in f.items())]
                return self._send(200, {"data": items, "page": 1, "pages": 1,
                                        "results": len(items)})
            if path.startswith("/linode/instances/"):
                inst = stub.instances.get(int(path.rsplit("/", 1)[1]))
                if inst is None:
                    return self._error(404, "Not found")
                inst["status"] = "running"
                return self._send(200, inst)
            self._error(404, "Not found")

        def do_POST(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            kind = stub.fault("POST")
            if kind == "capacity":
                return self._error(400, f"No capacity for {body['type']} in this region")
            if any(i["label"] == body["label"] for i in stub.instances.values()):
                return self._error(400, "Label must be unique among your Linodes")
            iid = next(stub._ids)
            inst = {"id": iid, "label": body["label"], "status": "provisioning",
                    "ipv4": ["203.0.113.10", "192.168.1.5"], "type": body["type"],
                    "region": body["region"], "image": body["image"],
                    "created": "2026-01-01T00:00:00", "tags": body["tags"]}
            stub.instances[iid] = inst
            stub.created.append(iid)
            if kind == "500-after-create":
                return self._error(500, "Internal error")
            self._send(200, inst)

        def do_DELETE(self) -> None:  # noqa: N802
            if not self._authorised():
                return
            stub.instances.pop(int(self.path.rsplit("/", 1)[1]), None)
            self._send(200, {})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/v4"
    return server
