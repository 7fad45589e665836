"""The API token and base URL: from the environment or a private token file, never from argv."""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from provision.errors import DEFAULT_API_URL, ProvisionError, TokenError

TOKEN_ENV = "LINODE_TOKEN"
TOKEN_FILE_ENV = "LINODE_TOKEN_FILE"
API_URL_ENV = "LINODE_API_URL"
SERVER_API_URL_ENV = "JULIAFARM_SERVER_API_URL"
MAX_TOKEN_BYTES = 4096


def default_token_file(environ: Mapping[str, str] = os.environ) -> Path:
    """~/.config/juliafarm/token, honouring XDG_CONFIG_HOME."""
    config = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME") or Path.home())
                                                   / ".config")
    return Path(config) / "juliafarm" / "token"


def load_token(environ: Mapping[str, str] = os.environ) -> str:
    """LINODE_TOKEN if set, else the token file, which must be private (no group/other bits)."""
    value = environ.get(TOKEN_ENV, "").strip()
    if value:
        return value
    path = Path(environ.get(TOKEN_FILE_ENV) or default_token_file(environ)).expanduser()
    try:
        # O_NOFOLLOW + fstat: the permissions checked are those of the file actually read.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise TokenError(f"no Linode API token: set {TOKEN_ENV} or write it to {path} "
                         "(chmod 600)") from None
    except OSError as exc:
        raise TokenError(f"cannot read token file {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise TokenError(f"token file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise TokenError(f"token file {path} is accessible by group/others "
                             f"(mode {stat.S_IMODE(st.st_mode):04o}): run chmod 600 {path}")
        if st.st_uid != os.getuid():
            raise TokenError(f"token file {path} is owned by another user (uid {st.st_uid})")
        raw = os.read(fd, MAX_TOKEN_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_TOKEN_BYTES:
        raise TokenError(f"token file {path} is too large to be a token")
    token = raw.decode("utf-8", errors="replace").strip()
    if not token or any(c.isspace() for c in token):
        raise TokenError(f"token file {path} must hold exactly one token")
    return token


def api_base_url(environ: Mapping[str, str] = os.environ) -> str:
    """LINODE_API_URL (default the real API); plain http only to a loopback address."""
    url = (environ.get(API_URL_ENV) or DEFAULT_API_URL).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProvisionError(f"{API_URL_ENV}: expected an http(s) URL like {DEFAULT_API_URL}, "
                             f"got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        # The bearer token would cross the network in clear text.
        raise ProvisionError(f"{API_URL_ENV}: plain http is only allowed to localhost, "
                             f"got {parts.hostname}")
    return url


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_api_url(environ: Mapping[str, str] = os.environ) -> str:
    """The API URL the *server's* lease watchdog uses: JULIAFARM_SERVER_API_URL, else the
    launcher's own (LINODE_API_URL or the real API). Plain http only when the launcher itself
    talks plain http to a local emulator (its servers then reach it on a test network)."""
    own = api_base_url(environ)
    url = (environ.get(SERVER_API_URL_ENV) or own).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProvisionError(f"{SERVER_API_URL_ENV}: expected an http(s) URL like "
                             f"{DEFAULT_API_URL}, got {url!r}")
    if parts.scheme == "http" and not own.startswith("http://"):
        raise ProvisionError(f"{SERVER_API_URL_ENV}: plain http would carry the lease token "
                             "in clear text; use https")
    return url
