#!/usr/bin/env python3
"""juliafarm lease watchdog: deletes this instance through the Linode API when its lease ends.

Shipped to the server by the launcher and run as root, detached (setsid), so it works on every
image without cron or systemd. Standard library only (Python >= 3.8). The lease file is root's,
mode 0600, and holds the deadline, this instance's id, the API URL and a token scoped to
linodes:read_write that expires shortly after the lease; the token is read from stdin, never
from argv, and never written to the log.

    watchdog.py install LEASE_S INSTANCE_ID API_URL   (token on stdin) write the lease file
    watchdog.py run                                  the loop (started detached by the launcher)
    watchdog.py extend LEASE_S                       deadline = now + LEASE_S (this clock)
    watchdog.py set-token                            (token on stdin) replace the token
    watchdog.py status                               deadline, seconds left, loop running?
    watchdog.py end                                  remove the lease: the loop exits
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

LEASE_DIR = os.environ.get("JULIAFARM_LEASE_DIR", "/var/lib/juliafarm-lease")
LEASE_FILE = os.path.join(LEASE_DIR, "lease.json")
PID_FILE = os.path.join(LEASE_DIR, "watchdog.pid")
LOG_FILE = "/var/log/juliafarm-watchdog.log"
CHECK_EVERY_S = 2.0
RETRY_EVERY_S = 5.0


def log(text):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stdout.write("%s %s\n" % (stamp, text))
    sys.stdout.flush()


def read_lease():
    try:
        with open(LEASE_FILE, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def write_lease(lease):
    """Atomically, 0600 from the first byte (the file holds a token)."""
    os.makedirs(LEASE_DIR, mode=0o700, exist_ok=True)
    os.chmod(LEASE_DIR, 0o700)
    tmp = LEASE_FILE + ".part"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(lease, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, LEASE_FILE)


def read_token():
    token = sys.stdin.readline().strip()
    if not token or any(c.isspace() for c in token):
        raise SystemExit("expected exactly one token on stdin")
    return token


def loop_pid():
    """The pid of a running loop, or None."""
    try:
        with open(PID_FILE, encoding="ascii") as fh:
            pid = int(fh.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            if b"watchdog" not in fh.read():
                return None
        return pid
    except (OSError, ValueError):
        return None


def delete_instance(lease):
    """True once the API says the instance is being deleted (or already gone)."""
    url = "%s/linode/instances/%d" % (lease["api_url"].rstrip("/"), int(lease["instance_id"]))
    req = urllib.request.Request(url, method="DELETE", headers={
        "Authorization": "Bearer " + lease["token"], "User-Agent": "juliafarm-watchdog",
        "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            log("lease ended: delete requested (HTTP %d)" % resp.status)
            return True
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            log("lease ended: the instance is already gone")
            return True
        log("lease ended: delete refused (HTTP %d); retrying" % exc.code)
    except (urllib.error.URLError, OSError) as exc:
        log("lease ended: API unreachable (%s); retrying" % exc.__class__.__name__)
    return False


def run():
    if loop_pid() not in (None, os.getpid()):
        log("a watchdog already runs")
        return 0
    os.makedirs(LEASE_DIR, mode=0o700, exist_ok=True)
    with open(PID_FILE, "w", encoding="ascii") as fh:
        fh.write(str(os.getpid()))
    log("watchdog started")
    while True:
        lease = read_lease()
        if lease is None:
            log("lease ended by the launcher")
            return 0
        if time.time() >= float(lease["deadline"]):
            if delete_instance(lease):
                # Keep watching: the instance stops with us in it; if a delete is undone
                # (it is not), the next pass would ask again.
                time.sleep(60)
            else:
                time.sleep(RETRY_EVERY_S)
            continue
        time.sleep(CHECK_EVERY_S)


def main(argv):
    if not argv:
        raise SystemExit(__doc__)
    cmd, args = argv[0], argv[1:]
    os.umask(0o077)
    if cmd == "install":
        lease_s, instance_id, api_url = float(args[0]), int(args[1]), args[2]
        write_lease({"deadline": time.time() + lease_s, "instance_id": instance_id,
                     "api_url": api_url, "token": read_token()})
        return 0
    if cmd == "run":
        return run()
    lease = read_lease()
    if cmd == "end":
        if lease is not None:
            os.unlink(LEASE_FILE)
        return 0
    if lease is None:
        raise SystemExit("no lease")
    if cmd == "extend":
        lease["deadline"] = time.time() + float(args[0])
        write_lease(lease)
    elif cmd == "set-token":
        lease["token"] = read_token()
        write_lease(lease)
    elif cmd != "status":
        raise SystemExit("unknown command %r" % cmd)
    left = float(lease["deadline"]) - time.time()
    sys.stdout.write(json.dumps({"deadline": lease["deadline"], "left_s": round(left, 1),
                                 "running": loop_pid() is not None}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
