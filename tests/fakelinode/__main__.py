"""Run the local Linode cloud by hand: `python -m tests.fakelinode [--boot-delay-s 5 ...]`.

Prints the `export` lines that point the launcher (or any linode_api4 client) at it, serves
until SIGINT or SIGTERM, then deletes every host it started. As root (with the tools of .ci/run)
instances are real hosts on 203.0.113.0/24; otherwise, or with --no-hosts, API only.
GET /v4/_fake/ledger (with the printed token) shows the billing ledger and the live instances.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.fakelinode.server import FakeLinode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.fakelinode", description=__doc__.split(
        "\n")[0])
    p.add_argument("--no-hosts", action="store_true", help="API only, no real machines")
    p.add_argument("--provision-delay-s", type=float, default=1.0)
    p.add_argument("--boot-delay-s", type=float, default=2.0)
    p.add_argument("--delete-delay-s", type=float, default=0.5)
    p.add_argument("--no-capacity", action="append", default=[], metavar="REGION",
                   help="creates in REGION fail with the API's capacity error (repeatable)")
    p.add_argument("--rate-limit", type=int, default=0, metavar="N",
                   help="the first N requests get 429 with Retry-After")
    p.add_argument("--server-errors", type=int, default=0, metavar="N",
                   help="the first N requests (after any 429s) get 500")
    p.add_argument("--ssh-never-up", type=int, default=0, metavar="N",
                   help="the next N instances boot but never answer SSH")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backend = None
    if not args.no_hosts:
        from tests.fakelinode.host_fixtures import hosts_unavailable

        reason = hosts_unavailable()
        if reason:
            print(f"# API only: {reason}", file=sys.stderr)
        else:
            from tests.fakelinode.hosts import NamespaceHostBackend
            from tests.fakelinode.image import debian12

            backend = NamespaceHostBackend(debian12())
    fake = FakeLinode(backend=backend, provision_delay_s=args.provision_delay_s,
                      boot_delay_s=args.boot_delay_s, delete_delay_s=args.delete_delay_s,
                      claim_addresses=backend is not None)
    fake.faults.no_capacity(*args.no_capacity)
    if args.rate_limit:
        fake.faults.rate_limit(count=args.rate_limit)
    if args.server_errors:
        fake.faults.server_error(count=args.server_errors)
    if args.ssh_never_up:
        fake.faults.ssh_never_up(args.ssh_never_up)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    fake.start()
    try:
        if backend is not None:
            fake.bind_for_hosts("203.0.113.1")
        print(f"export LINODE_API_URL={fake.url}")
        print(f"export LINODE_TOKEN={fake.master_token}", flush=True)
        if backend is not None:  # where the hosts' lease watchdogs reach this API
            print(f"export JULIAFARM_SERVER_API_URL={fake.host_api_url}", flush=True)
        done.wait()
    finally:
        fake.stop()  # deletes every host it started
    print("# stopped; every host deleted", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
