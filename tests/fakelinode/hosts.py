"""Real machines for emulated instances: network namespace + overlay root + sshd, per instance.

Each host gets:
- its own network namespace joined to the bridge `jfbr0` (203.0.113.1/24 and 198.51.100.1/24 on
  this machine's side) by a veth pair; its public (and private) address inside; no route anywhere
  but the test ranges, so nothing it does reaches another network;
- a copy-on-write Debian 12 root (overlayfs over the cached image), its own PID, mount and UTS
  namespaces, chrooted; sshd inside with fresh host keys (or those from cloud-init user_data),
  root's password and authorized_keys as the API request gave them;
- the attached Cloud Firewall's inbound rules, enforced in a chain of its own that the guest's
  ufw does not touch (a cloud firewall sits outside the machine).
Stopping kills the PID namespace (every process in it), unmounts and removes everything.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tests.fakelinode.hostapi import HostSpec
from tests.fakelinode.registry_route import registry_addresses_in_test_nets, route_around_bridge

BRIDGE = "jfbr0"
GATEWAYS = ("203.0.113.1/24", "198.51.100.1/24")
STATE = Path(os.environ.get("JULIAFARM_FAKELINODE_STATE", "/var/lib/juliafarm-fakelinode"))
SSH_UP_TIMEOUT_S = 60.0  # generous: CI machines are shared and slow at times
FIREWALL_CHAIN = "JF-CLOUDFW"
CLOSE_WAIT_S = 180.0  # close() waits this long for starts and stops in flight


def _sh(*argv: str, check: bool = True, input_text: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, input=input_text, check=False,
                          timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


@dataclass
class _Host:
    spec: HostSpec
    netns: str
    veth: str
    root: Path
    merged: Path
    proc: subprocess.Popen[bytes] | None = None
    started: threading.Event = field(default_factory=threading.Event)  # start() is over
    firewall_lock: threading.Lock = field(default_factory=threading.Lock)
    firewall_up: bool = False      # the firewall step ran: rule updates apply at once
    firewall_version: int = 0      # JF-CLOUDFW-<n> holds the rules in force


class NamespaceHostBackend:
    """HostBackend on network namespaces; needs root, `ip`, `unshare`, overlayfs."""

    def __init__(self, image: Path) -> None:
        self.image = image
        self._hosts: dict[int, _Host] = {}
        self._lock = threading.Lock()
        # Starts and stops still running, and whether close() was called: close() waits for
        # them, because the emulator frees its addresses after close() and the next emulator
        # names its hosts after the same id and address (a teardown finishing late would
        # remove the new host's directory and namespace).
        self._busy = 0
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._made_bridge = False
        # Addresses of package registries inside the test ranges: routed around the bridge and
        # never given to an instance.
        self.reserved = registry_addresses_in_test_nets()
        self._ensure_bridge()
        route_around_bridge(self.reserved)

    # ------------------------------------------------------------------ bridge

    def _ensure_bridge(self) -> None:
        if _sh("ip", "link", "show", BRIDGE, check=False).returncode != 0:
            _sh("ip", "link", "add", BRIDGE, "type", "bridge")
            self._made_bridge = True
        addrs = _sh("ip", "-o", "addr", "show", "dev", BRIDGE).stdout
        for gw in GATEWAYS:
            if gw.split("/")[0] + "/" not in addrs:
                _sh("ip", "addr", "add", gw, "dev", BRIDGE)
        _sh("ip", "link", "set", BRIDGE, "up")

    # ------------------------------------------------------------------ HostBackend

    @contextmanager
    def _working(self) -> Iterator[None]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the emulator is shutting down")
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()

    def start(self, spec: HostSpec) -> None:
        with self._working():
            self._start(spec)

    def _start(self, spec: HostSpec) -> None:
        iid = spec.instance_id
        # Names derive from the public address as well as the id: emulators running at once
        # (two test sessions) reuse ids, but never an address (the emulator claims each one).
        octets = spec.ipv4.split(".")
        netns = netns_name(iid, spec.ipv4)
        veth = f"jfv{octets[2]}x{octets[3]}"
        root = host_root(iid, spec.ipv4)
        host = _Host(spec, netns, veth, root, root / "merged")
        with self._lock:
            self._hosts[iid] = host
        try:
            _remove_host_dir(root)  # a leftover of a killed test run holding this address
            self._network(host)
            self._filesystem(host)
            self._configure(host)
            self._firewall(host)
            self._launch(host)
        except BaseException:
            with self._lock:
                if self._hosts.get(iid) is host:
                    del self._hosts[iid]
            self._teardown(host)
            raise
        finally:
            host.started.set()

    def stop(self, instance_id: int) -> None:
        with self._lock:
            host = self._hosts.pop(instance_id, None)
            if host is None:
                return
            self._busy += 1
        try:
            # A host stopped while it starts (deleted while booting, the emulator closing) is
            # torn down once its start is over, never under it.
            host.started.wait(timeout=2 * SSH_UP_TIMEOUT_S + 60)
            self._teardown(host)
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()

    def _teardown(self, host: _Host) -> None:
        if host.proc is not None and host.proc.poll() is None:
            init = _ns_init_pid(host.proc.pid)
            for pid in (init, host.proc.pid):
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)  # killing the ns init kills every process
                    except ProcessLookupError:
                        pass
            try:
                host.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        _sh("ip", "netns", "del", host.netns, check=False)
        _sh("ip", "link", "del", host.veth, check=False)
        _remove_host_dir(host.root)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if not self._idle.wait_for(lambda: self._busy == 0, timeout=CLOSE_WAIT_S):
                print(f"fakelinode: hosts still starting or stopping after {CLOSE_WAIT_S:.0f} s",
                      file=sys.stderr)
            ids = list(self._hosts)
        for iid in ids:
            self.stop(iid)
        others = [n for n in _sh("ip", "netns", "list").stdout.split() if n.startswith("jf-")]
        if self._made_bridge and not others:  # another test session may still be using it
            _sh("ip", "link", "del", BRIDGE, check=False)

    def running(self) -> set[int]:
        with self._lock:
            return set(self._hosts)

    # ------------------------------------------------------------------ steps

    def _network(self, h: _Host) -> None:
        _sh("ip", "netns", "del", h.netns, check=False)
        _sh("ip", "link", "del", h.veth, check=False)
        _sh("ip", "netns", "add", h.netns)
        _sh("ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns",
            h.netns)
        _sh("ip", "link", "set", h.veth, "master", BRIDGE, "up")
        ns = ("ip", "netns", "exec", h.netns)
        _sh(*ns, "ip", "link", "set", "lo", "up")
        _sh(*ns, "ip", "addr", "add", f"{h.spec.ipv4}/24", "dev", "eth0")
        if h.spec.private_ipv4:
            _sh(*ns, "ip", "addr", "add", f"{h.spec.private_ipv4}/24", "dev", "eth0")
        _sh(*ns, "ip", "link", "set", "eth0", "up")
        # Only the test ranges are routable from inside: no default route to the world.

    def _filesystem(self, h: _Host) -> None:
        upper, work = h.root / "upper", h.root / "work"
        for d in (upper, work, h.merged):
            d.mkdir(parents=True, exist_ok=True)
        _sh("mount", "-t", "overlay", "overlay", "-o",
            f"lowerdir={self.image},upperdir={upper},workdir={work}", str(h.merged))
        _sh("mount", "--bind", "/dev", str(h.merged / "dev"))

    def _configure(self, h: _Host) -> None:
        m, spec = h.merged, h.spec
        (m / "etc" / "hostname").write_text(spec.label + "\n")
        (m / "etc" / "hosts").write_text(f"127.0.0.1 localhost\n{spec.ipv4} {spec.label}\n")
        ssh_dir = m / "root" / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        auth = ssh_dir / "authorized_keys"
        auth.write_text("".join(k.strip() + "\n" for k in spec.authorized_keys))
        auth.chmod(0o600)
        if spec.root_pass:
            _sh("chroot", str(m), "chpasswd", input_text=f"root:{spec.root_pass}\n")
        if not _install_user_data_host_keys(m, spec.user_data):
            _sh("chroot", str(m), "ssh-keygen", "-q", "-t", "ed25519", "-N", "",
                "-f", "/etc/ssh/ssh_host_ed25519_key")
        # A fresh Linode: root may log in with a password or a key, set in the main file as
        # the image does (Debian's `Include sshd_config.d/*` comes first, so drop-ins win).
        main = m / "etc" / "ssh" / "sshd_config"
        main.write_text(main.read_text() + "\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
                        "PermitRootLogin yes\nPasswordAuthentication yes\nUseDNS no\n")
        (m / "run" / "sshd").mkdir(parents=True, exist_ok=True)
        for command in spec.first_boot_commands:
            _sh("chroot", str(m), "/bin/sh", "-c", command)

    def _firewall(self, h: _Host) -> None:
        with h.firewall_lock:
            h.firewall_up = True
            if h.spec.firewall_rules:
                self._apply_firewall(h, h.spec.firewall_rules)

    def set_firewall(self, instance_id: int, rules: dict[str, Any]) -> None:
        """The attached firewall's rules changed (PUT .../rules): swap them in on the running
        host, or hold them for a host whose firewall step has not run yet."""
        with self._lock:
            host = self._hosts.get(instance_id)
        if host is None:
            return
        with host.firewall_lock:
            host.spec = replace(host.spec, firewall_rules=rules)
            if host.firewall_up:
                self._apply_firewall(host, rules)

    def _apply_firewall(self, h: _Host, rules: dict[str, Any]) -> None:
        """The rules in a fresh chain `JF-CLOUDFW-<n>`; the fixed chain `JF-CLOUDFW` (first in
        INPUT) jumps to it, and an update swaps that one jump in a single step, so no packet
        ever sees half a rule set. The guest's ufw never touches these chains."""
        # The image's own iptables, in the host's network namespace (no tool needed here).
        ipt = ("ip", "netns", "exec", h.netns, "chroot", str(h.merged), "iptables", "-w")
        h.firewall_version += 1
        chain = f"{FIREWALL_CHAIN}-{h.firewall_version}"
        _sh(*ipt, "-N", chain)
        _sh(*ipt, "-A", chain, "-i", "lo", "-j", "RETURN")
        _sh(*ipt, "-A", chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
            "-j", "RETURN")
        for rule in rules.get("inbound") or []:
            for spec in _iptables_rule(rule):
                _sh(*ipt, "-A", chain, *spec)
        if rules.get("inbound_policy") == "DROP":
            _sh(*ipt, "-A", chain, "-j", "DROP")
        if h.firewall_version == 1:
            _sh(*ipt, "-N", FIREWALL_CHAIN)
            _sh(*ipt, "-A", FIREWALL_CHAIN, "-j", chain)
            _sh(*ipt, "-I", "INPUT", "1", "-j", FIREWALL_CHAIN)
            return
        _sh(*ipt, "-R", FIREWALL_CHAIN, "1", "-j", chain)
        old = f"{FIREWALL_CHAIN}-{h.firewall_version - 1}"
        _sh(*ipt, "-F", old)
        _sh(*ipt, "-X", old)

    def _launch(self, h: _Host) -> None:
        # A host that dies while starting (seen once in CI, cause unknown: the launch's stderr
        # was discarded then) gets a second try; its stderr now goes to the error either way.
        try:
            self._launch_once(h)
        except _EarlyExit as first:
            print(f"fakelinode: {first}; starting it again", file=sys.stderr)
            try:
                self._launch_once(h)
            except _EarlyExit as second:
                raise RuntimeError(str(second)) from None

    def _launch_once(self, h: _Host) -> None:
        m = str(h.merged)
        inner = f"hostname {h.spec.label[:63]}; "
        # /dev is bound without its submounts: give the host its own /dev/shm, a 1777 tmpfs as on
        # a real Linode (POSIX semaphores: multiprocessing, hence Dask's nanny). The mount
        # namespace is private (unshare's default), so the machine's /dev/shm is not touched.
        inner += "mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm; "
        inner += ("exec sleep infinity" if h.spec.ssh_never_up
                  else "/usr/sbin/sshd -e; exec sleep infinity")
        log_path = h.root / "launch.log"
        with open(log_path, "wb") as log:
            h.proc = subprocess.Popen(
                ["ip", "netns", "exec", h.netns, "unshare", "--pid", "--fork", "--mount",
                 "--uts", f"--mount-proc={m}/proc", "chroot", m, "/bin/sh", "-c", inner],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        if h.spec.ssh_never_up:
            return
        deadline = time.monotonic() + SSH_UP_TIMEOUT_S
        while time.monotonic() < deadline:
            if h.proc.poll() is not None:
                said = " | ".join(log_path.read_text(errors="replace").split("\n")[-5:]).strip()
                raise _EarlyExit(f"host {h.spec.label} exited ({h.proc.returncode}) while "
                                 f"starting: {said or 'no output'}")
            with socket.socket() as s:
                s.settimeout(0.5)
                if s.connect_ex((h.spec.ipv4, 22)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"sshd of {h.spec.label} did not come up")


class _EarlyExit(Exception):
    """The host's process ended before its sshd answered."""


def netns_name(instance_id: int, ipv4: str) -> str:
    octets = ipv4.split(".")
    return f"jf-{instance_id}-{octets[2]}-{octets[3]}"


def host_root(instance_id: int, ipv4: str) -> Path:
    """Where the host's overlay (upper, work, merged) lives while it runs."""
    return STATE / "hosts" / f"{instance_id}-{ipv4}"


def _remove_host_dir(root: Path) -> None:
    """Unmount every mount under `root` (deepest first; mounts may be stacked) and remove it.

    Never rmtree while something is still mounted below: a bind of /dev would be emptied."""
    if not root.exists():
        return
    for _ in range(20):
        mounts = _mounts_under(root)
        if not mounts:
            break
        for mount in mounts:
            _sh("umount", "-l", mount, check=False)
    else:
        raise RuntimeError(f"cannot unmount everything under {root}")
    for attempt in range(10):
        shutil.rmtree(root, ignore_errors=True)
        if not root.exists():
            return
        time.sleep(0.2 * (attempt + 1))  # a dying mount namespace may pin the dir briefly
    raise RuntimeError(f"cannot remove {root}")


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1].replace("\\040", " ")
        if point.startswith(prefix):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def _ns_init_pid(unshare_pid: int) -> int | None:
    """unshare --fork's child: PID 1 of the host's PID namespace."""
    try:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    except OSError:
        return None
    # ip netns exec → unshare (execs in place) → the forked init
    for child in children:
        return int(child)
    return None


def _install_user_data_host_keys(root: Path, user_data: bytes | None) -> bool:
    """cloud-init's `ssh_keys: {ed25519_private, ed25519_public}` become the host key."""
    if not user_data:
        return False
    import yaml

    try:
        doc: Any = yaml.safe_load(user_data.decode())
    except (ValueError, yaml.YAMLError):
        return False
    keys = (doc or {}).get("ssh_keys") if isinstance(doc, dict) else None
    if not isinstance(keys, dict) or "ed25519_private" not in keys:
        return False
    priv = root / "etc" / "ssh" / "ssh_host_ed25519_key"
    priv.write_text(keys["ed25519_private"].rstrip("\n") + "\n")
    priv.chmod(0o600)
    if "ed25519_public" in keys:
        (root / "etc" / "ssh" / "ssh_host_ed25519_key.pub").write_text(
            keys["ed25519_public"].strip() + "\n")
    return True


def _iptables_rule(rule: dict[str, Any]) -> list[list[str]]:
    """One API firewall rule as iptables arguments (one per source address)."""
    action = "RETURN" if rule.get("action") == "ACCEPT" else "DROP"
    proto = str(rule.get("protocol", "TCP")).lower()
    sources = (rule.get("addresses") or {}).get("ipv4") or ["0.0.0.0/0"]
    out = []
    for src in sources:
        args = ["-s", src, "-p", proto]
        ports = rule.get("ports")
        if ports and proto in ("tcp", "udp"):
            args += ["-m", "multiport", "--dports", str(ports).replace("-", ":")]
        out.append([*args, "-j", action])
    return out
