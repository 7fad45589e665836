"""Idempotent server setup over Fabric: each named step checks, then changes only if needed."""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provision import sync, wheelhouse
from provision.errors import BootstrapError, ProvisionError
from provision.keys import RunKeys
from provision.wait import wait_until

PACKAGES = ("sudo", "ufw", "rsync", "ffmpeg", "python3-venv")
DEPS_MODES = ("auto", "index", "wheelhouse", "wheels", "none")
SSHD_DROPIN = "/etc/ssh/sshd_config.d/00-juliafarm.conf"  # 00-: first value wins in sshd
SSHD_SETTINGS = {"passwordauthentication": "no", "permitrootlogin": "no",
                 "kbdinteractiveauthentication": "no"}
INDEX_PROBE_URL = "https://pypi.org/simple/pip/"
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_LOCK_PROBE = """python3 - <<'EOF'
import fcntl, os, sys
for p in ("/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/lib/apt/lists/lock",
          "/var/cache/apt/archives/lock"):
    try:
        fd = os.open(p, os.O_RDWR)
    except OSError:
        continue
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit(1)
    finally:
        os.close(fd)
EOF"""
_RELOAD_SSHD = (
    "if systemctl is-active --quiet ssh 2>/dev/null; then systemctl reload ssh; "
    "elif systemctl is-active --quiet sshd 2>/dev/null; then systemctl reload sshd; "
    "elif [ -s /run/sshd.pid ]; then kill -HUP \"$(cat /run/sshd.pid)\"; "
    "else echo 'no running sshd found to reload' >&2; exit 3; fi"
)


@dataclass(frozen=True)
class Settings:
    """What a bootstrap needs besides the root connection."""

    user: str
    keys: RunKeys
    deps: str = "auto"
    requirements: tuple[str, ...] = ()
    wheel_cache_dir: Path | None = None
    apt_lock_timeout_s: float = 600.0
    install_timeout_s: float = 1800.0
    ssh_check_timeout_s: float = 60.0
    packages: tuple[str, ...] = PACKAGES
    index_url: str = INDEX_PROBE_URL
    notes: dict[str, str] = field(default_factory=dict, compare=False)  # decisions, for the log

    @property
    def home(self) -> str:
        return f"/home/{self.user}"

    @property
    def venv(self) -> str:
        return f"{self.home}/juliafarm/venv"


Step = Callable[[Any, Settings], bool]


def bootstrap(conn_root: Any, user: str, keys: RunKeys, deps: str = "auto",
              on_step: Callable[[str, float, bool], None] | None = None,
              requirements: Sequence[str] | None = None,
              wheel_cache_dir: Path | None = None) -> dict[str, bool]:
    """Run every step as root; returns {step: changed}. A second run changes nothing."""
    if not _USER.match(user) or user == "root":
        raise BootstrapError(f"{user!r} is not a valid non-root user name")
    if deps not in DEPS_MODES:
        raise BootstrapError(f"deps must be one of {', '.join(DEPS_MODES)}, got {deps!r}")
    reqs = tuple(requirements) if requirements is not None \
        else tuple(wheelhouse.project_requirements())
    settings = Settings(user=user, keys=keys, deps=deps, requirements=reqs,
                        wheel_cache_dir=wheel_cache_dir)
    result: dict[str, bool] = {}
    for name, step in STEPS:
        t0 = time.monotonic()
        try:
            changed = step(conn_root, settings)
        except ProvisionError:
            raise
        except Exception as exc:  # noqa: BLE001 - one line for the user, with the step name
            raise BootstrapError(f"bootstrap step {name}: {' '.join(str(exc).split())[:300]}") \
                from None
        result[name] = changed
        if on_step is not None:
            on_step(name, time.monotonic() - t0, changed)
    return result


# ------------------------------------------------------------------ helpers


def _run(conn: Any, cmd: str, what: str, timeout_s: float | None = 300) -> str:
    r = conn.run(cmd, hide=True, warn=True, in_stream=False, timeout=timeout_s)
    if not r.ok:
        lines = [x for x in (r.stderr or r.stdout).splitlines() if x.strip()]
        raise BootstrapError(f"{what}: exit {r.exited}: {lines[-1] if lines else 'no output'}")
    return str(r.stdout)


def _ok(conn: Any, cmd: str, timeout_s: float | None = 60) -> bool:
    return bool(conn.run(cmd, hide=True, warn=True, in_stream=False, timeout=timeout_s).ok)


def _as_user(s: Settings, cmd: str) -> str:
    # Own HOME and cwd: pip caches and venv paths must not point into root's home.
    return (f"runuser -u {s.user} -- env HOME={s.home} sh -c "
            f"{shlex.quote(f'cd {s.home} && {cmd}')}")


def _write_root_file(conn: Any, path: str, text: str, mode: str, validate: str = "") -> None:
    """Write atomically (temp file, optional validation, rename)."""
    tmp = f"{path}.juliafarm-tmp"
    check = f" && {validate} {shlex.quote(tmp)}" if validate else ""
    _run(conn, f"printf %s {shlex.quote(text)} > {shlex.quote(tmp)} && chmod {mode} "
               f"{shlex.quote(tmp)}{check} && mv {shlex.quote(tmp)} {shlex.quote(path)} "
               f"|| {{ rm -f {shlex.quote(tmp)}; exit 1; }}", f"write {path}")


# -------------------------------------------------------------------- steps


def step_packages(conn: Any, s: Settings) -> bool:
    """Install what is missing (waiting, bounded, for the apt lock first-boot updates hold)."""
    missing = [p for p in s.packages
               if not _ok(conn, f"dpkg-query -W -f='${{Status}}' {p} 2>/dev/null "
                                "| grep -q 'install ok installed'")]
    if not missing:
        return False
    wait_until(lambda: _ok(conn, _LOCK_PROBE), s.apt_lock_timeout_s, 5.0,
               what="the apt/dpkg lock (automatic updates at first boot)", error=BootstrapError)
    apt = ("DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 "
           "-o Dpkg::Options::=--force-confold")
    _run(conn, f"{apt} update", "apt-get update", s.install_timeout_s)
    _run(conn, f"{apt} install -y --no-install-recommends {' '.join(missing)}",
         f"apt-get install {' '.join(missing)}", s.install_timeout_s)
    return True


def step_user(conn: Any, s: Settings) -> bool:
    """A non-root user with passwordless sudo and the run key."""
    changed = False
    u = s.user
    if not _ok(conn, f"id -u {u}"):
        _run(conn, f"useradd --create-home --shell /bin/bash {u}", f"create user {u}")
        changed = True
    sudoers = f"/etc/sudoers.d/90-juliafarm-{u}"
    rule = f"{u} ALL=(ALL) NOPASSWD:ALL"
    if not _ok(conn, f"grep -qxF {shlex.quote(rule)} {sudoers}"):
        _write_root_file(conn, sudoers, rule + "\n", "0440", validate="visudo -cqf")
        changed = True
    ak = f"{s.home}/.ssh/authorized_keys"
    if not _ok(conn, f"grep -qxF {shlex.quote(s.keys.public_line)} {ak}"):
        _run(conn, f"install -d -m 0700 -o {u} -g {u} {s.home}/.ssh && "
                   f"printf '%s\\n' {shlex.quote(s.keys.public_line)} >> {ak} && "
                   f"chown {u}:{u} {ak} && chmod 0600 {ak}", "install the run key")
        changed = True
    return changed


def _ufw_ok(status: str) -> bool:
    return ("Status: active" in status and "deny (incoming)" in status
            # `ufw status verbose` on Debian 12 prints "22/tcp (OpenSSH)   ALLOW IN".
            and re.search(r"^(OpenSSH|22(/tcp)?)( \(OpenSSH\))?\s+ALLOW IN", status,
                          re.MULTILINE) is not None)


def step_firewall(conn: Any, s: Settings) -> bool:
    """ufw: deny incoming except OpenSSH (allowed before enabling, so we stay connected)."""
    if _ufw_ok(_run(conn, "ufw status verbose", "ufw status")):
        return False
    _run(conn, "ufw default deny incoming && ufw default allow outgoing && "
               "{ ufw allow OpenSSH || ufw allow 22/tcp; } && ufw --force enable",
         "enable ufw")
    if not _ufw_ok(_run(conn, "ufw status verbose", "ufw status")):
        raise BootstrapError("ufw did not become active with only OpenSSH allowed")
    return True


def _sshd_effective(conn: Any) -> dict[str, str]:
    out = _run(conn, "/usr/sbin/sshd -T 2>/dev/null || sshd -T", "read sshd settings")
    values: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        values.setdefault(key.lower(), value.strip())
    return values


def _user_login_works(conn: Any, s: Settings) -> None:
    """Log in as the user with the run key and use sudo, or raise (root's session stays open)."""
    from provision import ssh

    host, port = conn.host, int(conn.port or 22)
    try:
        ssh.wait_for_ssh(host, s.user, s.keys, timeout_s=s.ssh_check_timeout_s, port=port,
                         interval_s=1.0)
        user_conn = ssh.connect(host, s.user, s.keys, port=port)
    except ProvisionError as exc:
        raise BootstrapError(f"cannot log in as {s.user} with the run key: {exc}") from None
    try:
        if not user_conn.run("sudo -n true", hide=True, warn=True, in_stream=False).ok:
            raise BootstrapError(f"{s.user} cannot use sudo without a password")
    finally:
        user_conn.close()


def step_sshd(conn: Any, s: Settings) -> bool:
    """No password logins, no root logins; the user's login is verified before and after."""
    if all(_sshd_effective(conn).get(k) == v for k, v in SSHD_SETTINGS.items()):
        return False
    _user_login_works(conn, s)  # never lock ourselves out
    text = "# juliafarm: keys only, no root\n" + "".join(
        f"{k} {v}\n" for k, v in
        (("PasswordAuthentication", "no"), ("PermitRootLogin", "no"),
         ("KbdInteractiveAuthentication", "no")))
    _write_root_file(conn, SSHD_DROPIN, text, "0644")
    _run(conn, "/usr/sbin/sshd -t", "check the sshd configuration")
    effective = _sshd_effective(conn)
    wrong = [k for k, v in SSHD_SETTINGS.items() if effective.get(k) != v]
    if wrong:
        raise BootstrapError(f"sshd still has {', '.join(f'{k} {effective.get(k)}' for k in wrong)}"
                             f" after {SSHD_DROPIN} (does sshd_config include sshd_config.d?)")
    _run(conn, _RELOAD_SSHD, "reload sshd")
    time.sleep(0.5)  # the listener re-executes itself on SIGHUP
    _user_login_works(conn, s)
    return True


def choose_deps(mode: str, index_reachable: Callable[[], bool]) -> str:
    """'index' or 'wheelhouse' (or 'none'); 'auto' asks whether the server reaches the index."""
    if mode == "wheels":
        return "wheelhouse"
    if mode in ("index", "wheelhouse", "none"):
        return mode
    return "index" if index_reachable() else "wheelhouse"


def _marker(s: Settings) -> str:
    return hashlib.sha256("\n".join(sorted(s.requirements)).encode()).hexdigest()[:16]


def step_venv(conn: Any, s: Settings) -> bool:
    """A venv with the requirements, from the index or from wheels shipped from here."""
    marker = f"{s.venv}/.juliafarm-requirements"
    digest = "none" if s.deps == "none" else _marker(s)
    if _ok(conn, f"test -x {s.venv}/bin/python && grep -qxF {digest} {marker}"):
        return False
    _run(conn, _as_user(s, f"mkdir -p {s.home}/juliafarm && python3 -m venv {s.venv}"),
         "create the venv")
    mode = choose_deps(s.deps, lambda: _ok(conn, _as_user(
        s, f"timeout 20 python3 -c \"import urllib.request; "
           f"urllib.request.urlopen('{s.index_url}', timeout=10)\""), timeout_s=30))
    s.notes["deps"] = mode
    reqs = " ".join(shlex.quote(r) for r in s.requirements)
    pip = f"{s.venv}/bin/python -m pip install --disable-pip-version-check -q"
    if mode == "index" and reqs:
        _run(conn, _as_user(s, f"{pip} {reqs}"), "pip install from the index",
             s.install_timeout_s)
    elif mode == "wheelhouse" and reqs:
        target = wheelhouse.Target.parse_probe(
            _run(conn, f"python3 -c {shlex.quote(wheelhouse.PROBE)}", "probe the server's Python"))
        local = wheelhouse.download(s.requirements, target, s.wheel_cache_dir,
                                    timeout_s=s.install_timeout_s)
        remote = f"{s.home}/juliafarm/wheels"
        sync.push(local, conn.host, s.user, s.keys, remote, None, port=int(conn.port or 22),
                  timeout_s=s.install_timeout_s)
        _run(conn, _as_user(s, f"{pip} --no-index --find-links {remote} {reqs}"),
             "pip install from shipped wheels", s.install_timeout_s)
    _run(conn, _as_user(s, f"echo {digest} > {marker}"), "mark the venv complete")
    return True


STEPS: tuple[tuple[str, Step], ...] = (
    ("packages", step_packages),
    ("user", step_user),
    ("firewall", step_firewall),
    ("sshd", step_sshd),
    ("venv", step_venv),
)
