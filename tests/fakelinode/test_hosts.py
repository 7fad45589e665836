"""Real hosts behind emulated instances: SSH in, isolation, cleanup, faults (root only)."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path

import pytest
from linode_api4 import LinodeClient

from tests.fakelinode.hosts import host_root, netns_name

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _keypair(tmp: Path, name: str = "id") -> tuple[Path, str]:
    key = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, (tmp / f"{name}.pub").read_text().strip()


def _ssh(key: Path, known: Path, ip: str, command: str, user: str = "root",
         check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=accept-new",
         "-o", "ConnectTimeout=5", f"{user}@{ip}", command],
        capture_output=True, text=True, timeout=60, check=check, stdin=subprocess.DEVNULL)


def _mounts_under(root: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(root))]


def _processes_in(root: Path) -> list[int]:
    """Processes whose root directory is the host's filesystem (sshd, sleep, ...)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/root").startswith(str(root)):
                found.append(int(pid))
        except OSError:
            continue
    return found


def _create(fake, pub: str, label: str, **kw):
    c = LinodeClient(fake.master_token, base_url=fake.url, retry=False)
    inst = c.linode.instance_create("g6-dedicated-2", "us-east", image="linode/debian12",
                                    authorized_keys=[pub], label=label,
                                    root_pass="Str0ng-Passw0rd-xyz", **kw)
    return c, inst


def test_host_runs_sshd_with_the_run_key_and_is_removed_on_delete(fake_linode_hosts,
                                                                  tmp_path) -> None:
    fake = fake_linode_hosts
    key, pub = _keypair(tmp_path)
    c, inst = _create(fake, pub, "host-one", private_ip=True)
    fake.wait_status(inst.id, "running")
    ip = inst.ipv4[0]
    known = tmp_path / "known_hosts"
    out = _ssh(key, known, ip, "hostname; id -u; ip -o -4 addr show; ip route; nproc").stdout
    assert "host-one" in out and "\n0\n" in out
    private = [a for a in fake.instance(inst.id)["ipv4"] if a.startswith("198.51.100.")]
    assert ip in out and private and private[0] in out
    assert "default" not in out  # no route out of the test ranges
    assert "ffmpeg" in _ssh(key, known, ip, "command -v ffmpeg python3 rsync sudo ufw").stdout
    root = host_root(inst.id, ip)
    assert root.is_dir() and _mounts_under(root) and _processes_in(root)
    inst.delete()
    fake.wait_status(inst.id, "gone")
    assert not _mounts_under(root) and not _processes_in(root)
    assert netns_name(inst.id, ip) not in subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    assert not host_root(inst.id, ip).exists()
    assert fake.ledger.running() == []


def test_two_hosts_reach_each_other_privately(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    key, pub = _keypair(tmp_path)
    _, a = _create(fake, pub, "host-a", private_ip=True)
    _, b = _create(fake, pub, "host-b", private_ip=True)
    fake.wait_status(a.id, "running")
    fake.wait_status(b.id, "running")
    b_private = b.ipv4[1]
    out = _ssh(key, tmp_path / "kh", a.ipv4[0],
               f"python3 -c \"import socket; s=socket.create_connection(('{b_private}', 22), 5);"
               f" print(s.recv(20))\"").stdout
    assert "SSH-2.0" in out
    a.delete()
    b.delete()
    fake.wait_status(a.id, "gone")
    fake.wait_status(b.id, "gone")


def test_ssh_never_up_fault(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    fake.faults.ssh_never_up()
    key, pub = _keypair(tmp_path)
    _, inst = _create(fake, pub, "host-mute")
    fake.wait_status(inst.id, "running")
    r = _ssh(key, tmp_path / "kh", inst.ipv4[0], "true", check=False)
    assert r.returncode != 0
    inst.delete()
    fake.wait_status(inst.id, "gone")


def test_user_data_host_key_is_the_one_presented(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    key, pub = _keypair(tmp_path)
    hk, hk_pub = _keypair(tmp_path, "hostkey")
    cloud_config = ("#cloud-config\nssh_keys:\n  ed25519_private: |\n"
                    + "".join(f"    {line}\n" for line in hk.read_text().splitlines())
                    + f"  ed25519_public: {hk_pub}\n")
    meta = {"user_data": base64.b64encode(cloud_config.encode()).decode()}
    _, inst = _create(fake, pub, "host-key", metadata=meta)
    fake.wait_status(inst.id, "running")
    ip = inst.ipv4[0]
    known = tmp_path / "pinned"
    known.write_text(f"{ip} {' '.join(hk_pub.split()[:2])}\n")
    r = subprocess.run(["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                        f"root@{ip}", "true"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    inst.delete()
    fake.wait_status(inst.id, "gone")


def test_cloud_firewall_blocks_ssh_from_other_addresses(fake_linode_hosts, tmp_path) -> None:
    fake = fake_linode_hosts
    key, pub = _keypair(tmp_path)
    c = LinodeClient(fake.master_token, base_url=fake.url, retry=False)
    # Only 203.0.113.1 (this machine's side of the bridge) may reach port 22.
    fw = c.networking.firewall_create("jf-test-fw", {
        "inbound_policy": "DROP", "outbound_policy": "ACCEPT", "outbound": [],
        "inbound": [{"action": "ACCEPT", "protocol": "TCP", "ports": "22",
                     "addresses": {"ipv4": ["203.0.113.1/32"]}}]})
    _, guarded = _create(fake, pub, "host-guarded", firewall_id=fw.id)
    _, other = _create(fake, pub, "host-other")
    fake.wait_status(guarded.id, "running")
    fake.wait_status(other.id, "running")
    assert _ssh(key, tmp_path / "kh", guarded.ipv4[0], "true").returncode == 0
    probe = (f"python3 -c \"import socket; socket.create_connection(('{guarded.ipv4[0]}', 22), "
             f"3); print('open')\"")
    r = _ssh(key, tmp_path / "kh", other.ipv4[0], probe, check=False)
    assert "open" not in r.stdout and r.returncode != 0
    # PUT .../rules takes effect on the running machine: the other host may now connect, and
    # the launcher still may.
    rules = c.get(f"/networking/firewalls/{fw.id}/rules")
    fw.update_rules({**{k: rules[k] for k in ("inbound_policy", "outbound_policy", "outbound")},
                     "inbound": [*rules["inbound"], {
                         "action": "ACCEPT", "protocol": "TCP", "ports": "22",
                         "addresses": {"ipv4": [f"{other.ipv4[0]}/32"]}}]})
    r = _ssh(key, tmp_path / "kh", other.ipv4[0], probe, check=False)
    assert "open" in r.stdout, r.stderr
    assert _ssh(key, tmp_path / "kh", guarded.ipv4[0], "true").returncode == 0
    for inst in (guarded, other):
        inst.delete()
        fake.wait_status(inst.id, "gone")
    time.sleep(0.1)


SLOW_BOOT_S = 6


def test_closing_waits_for_hosts_still_stopping_or_starting(host_image, tmp_path) -> None:
    """The emulator frees its addresses at close, and the next one names its hosts after the same
    id and address: nothing of a host may outlive close(), not even one mid-delete or mid-boot,
    or it would land in (or tear down) the next emulator's host of that name."""
    import secrets

    from tests.fakelinode.hosts import NamespaceHostBackend
    from tests.fakelinode.server import FakeLinode

    key, pub = _keypair(tmp_path)

    def emulator() -> FakeLinode:
        fake = FakeLinode(secrets.token_hex(32), backend=NamespaceHostBackend(host_image),
                          provision_delay_s=0.0, boot_delay_s=0.0, delete_delay_s=0.0,
                          claim_addresses=True)
        fake.start()
        return fake

    first = emulator()
    try:
        first.faults.at_first_boot(f"sleep {SLOW_BOOT_S}")  # mid-start when stop() comes
        _, booting = _create(first, pub, "host-booting")
        _, deleting = _create(first, pub, "host-deleting")
        first.wait_status(deleting.id, "running", timeout_s=90)
        hosts = [(i.id, i.ipv4[0]) for i in (booting, deleting)]
        deleting.delete()  # its teardown runs in the background
    finally:
        first.stop()  # at once: one host is being torn down, the other is starting
    second = emulator()  # same ids, and the addresses just freed
    try:
        _, again = _create(second, pub, "host-again")
        second.wait_status(again.id, "running", timeout_s=90)
        assert (again.id, again.ipv4[0]) == hosts[0]  # the very names of the booting host
        assert _ssh(key, tmp_path / "kh", again.ipv4[0], "true").returncode == 0
        root = host_root(again.id, again.ipv4[0])
        # Had the first emulator's start outlived its stop(), it would wake from its sleep
        # within this window and launch a second machine into this host's namespace and root.
        time.sleep(SLOW_BOOT_S + 1)
        found = {p: Path(f"/proc/{p}/cmdline").read_bytes() for p in _processes_in(root)}
        inits = [p for p, argv in found.items() if argv.startswith(b"sleep\x00infinity")]
        listeners = [p for p, argv in found.items() if b"[listener]" in argv]
        assert len(inits) == 1 and len(listeners) == 1, found  # no stray second machine
    finally:
        second.stop()
    netns = _sh_out("ip", "netns", "list")
    for iid, ipv4 in hosts:
        root = host_root(iid, ipv4)
        assert not root.exists(), root
        assert netns_name(iid, ipv4) not in netns
        assert _processes_in(root) == []


def _sh_out(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout
