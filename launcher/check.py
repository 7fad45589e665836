"""`launcher check`: is this machine ready to rent? One line per item, and with `--live` the
round trip a careful user makes before trusting the tool with a big render: the cheapest Linode
created, its host key pinned through user_data, ufw on, key-only login proven, deleted
(confirmed) — through the same lifecycle as every run, so the check tests what a run uses."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from launcher.errors import LauncherError, one_line
from launcher.run.guards import GuardSpec
from launcher.run.hooks import Hooks
from launcher.run.lifecycle import Lifecycle, Node
from launcher.run.record import RunRecord
from launcher.run.spec import JobSpec
from provision import hostkey, ssh, tokens
from provision.cloud import Cloud
from provision.errors import ProvisionError
from provision.keys import PREINSTALLED
from provision.plans import SOURCE_API, cheapest_type
from renderer.cli_common import resolve_scene_path

LOCAL_TOOLS = ("ssh", "ssh-keygen", "rsync")


@dataclass(frozen=True)
class Item:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok ' if self.ok else 'NO '} {self.name:<16}{self.detail}"


def local_items() -> list[Item]:
    """Tools this machine needs, without asking any API."""
    from renderer.encode import find_ffmpeg

    items = [Item(t, shutil.which(t) is not None,
                  shutil.which(t) or "missing (apt-get install openssh-client rsync)")
             for t in LOCAL_TOOLS]
    try:
        items.append(Item("ffmpeg", True, find_ffmpeg()))
    except Exception as exc:  # noqa: BLE001 - reported as one line
        items.append(Item("ffmpeg", False, one_line(exc)))
    return items


def account_items(cloud: Cloud | None, token_problem: str | None) -> list[Item]:
    """The token (present, accepted, scopes enough for a lease and a firewall)."""
    if cloud is None:
        return [Item("token", False, token_problem or "missing")]
    items = [Item("token", True, "found (LINODE_TOKEN or the token file)")]
    try:
        cloud.check_access()
        items.append(Item("api", True, f"reachable at {getattr(cloud, 'base_url', '?')}, "
                                       "token accepted, may create Linodes"))
    except ProvisionError as exc:
        return [*items, Item("api", False, one_line(exc))]
    scopes = str(getattr(cloud, "last_headers", {}).get("X-OAuth-Scopes", "*"))
    missing = tokens.missing_scopes(scopes, tokens=True, firewall=True)
    items.append(Item("scopes", not missing, "enough for a lease and a cloud firewall"
                      if not missing else "lacks " + ", ".join(missing)))
    return items


class LiveCheck(Lifecycle):
    """A run that renders nothing: after the set-up it proves the server is locked down."""

    def __init__(self, spec: JobSpec, cloud: Cloud, hooks: Hooks | None,
                 state_dir: Path | None = None) -> None:
        super().__init__(spec, cloud, hooks, state_dir=state_dir)
        self.items: list[Item] = []

    def sync(self, node: Node) -> None:
        """Nothing to upload: the check renders nothing."""

    def render_and_pull(self) -> None:
        node = self.nodes[0]
        assert node.host is not None
        with self.phase("verify"):
            pinned = self.record.host_key == PREINSTALLED
            self.items.append(Item("host key", pinned or not self.spec.guards.host_key_user_data,
                                   "pinned through user_data before first contact" if pinned
                                   else "pinned on first use (image or region without "
                                   "cloud-init metadata)"))
            status = self._as_user(node, "sudo -n ufw status verbose")
            self.items.append(Item("ufw", "Status: active" in status and "deny (incoming)"
                                   in status, "active, incoming denied except SSH"
                                   if "Status: active" in status else status[:80]))
            self.items.append(self._refused(node, "root", "root login"))
            self.items.append(self._refused(node, self.spec.user, "password login",
                                            password=True))
        failed = [i for i in self.items if not i.ok]
        if failed:
            raise LauncherError("live check failed: " + "; ".join(
                f"{i.name}: {i.detail}" for i in failed))

    def _as_user(self, node: Node, command: str) -> str:
        assert node.host is not None
        done = subprocess.run([*ssh.ssh_command(self.keys, self.spec.user, node.host.address),
                               command], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, check=False)
        return done.stdout + done.stderr

    def _refused(self, node: Node, user: str, what: str, password: bool = False) -> Item:
        """The server must refuse this login (root with the run key; any password)."""
        assert node.host is not None
        argv = ["ssh", *ssh.ssh_options(self.keys)]
        if password:
            argv += ["-o", "PreferredAuthentications=password,keyboard-interactive",
                     "-o", "PubkeyAuthentication=no"]
        argv += ["-l", user, node.host.address, "true"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, check=False)
        refused = done.returncode != 0 and "Permission denied" in done.stderr
        return Item(what, refused, "refused" if refused else
                    f"NOT refused (exit {done.returncode}): {one_line(Exception(done.stderr))}")


def live_spec(cloud: Cloud, region: str, image: str, ssh_from: tuple[str, ...] | None,
              output_dir: Path) -> JobSpec:
    """The cheapest type the API lists, in `region`, guarded like every run."""
    plan = cheapest_type(cloud.types(), SOURCE_API)
    scene = resolve_scene_path(None)
    return JobSpec(
        scene_path=scene, scene_output_name="check.mp4", frames=0, render_args=(), plan=plan,
        regions=(region,), image=image, output_dir=output_dir, project_dir=scene.parent,
        exclude_file=scene, deps="none", ready_timeout_s=600, ssh_timeout_s=300,
        guards=GuardSpec(ssh_from=ssh_from,
                         host_key_user_data=hostkey.user_data_supported(cloud, image, [region])))


def run_live(cloud: Cloud, spec: JobSpec, hooks: Hooks | None,
             state_dir: Path | None = None) -> tuple[RunRecord, list[Item]]:
    check = LiveCheck(spec, cloud, hooks, state_dir=state_dir)
    record = check.run()
    return record, check.items
