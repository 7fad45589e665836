"""rsync over the run's ssh: push the project (honouring exclude.txt), pull results verified."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from provision.errors import SyncError
from provision.keys import RunKeys
from provision.ssh import rsync_rsh, ssh_command

IO_TIMEOUT_S = 120  # rsync gives up when no data moves for this long
_TOTAL_SIZE = re.compile(r"Total file size:\s*([\d,.]+)\s*bytes")


def _rsync(args: Sequence[str], what: str, timeout_s: float | None) -> subprocess.CompletedProcess:
    argv = ["rsync", f"--timeout={IO_TIMEOUT_S}", *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise SyncError(f"{what}: rsync did not finish within {timeout_s:g} s") from None
    except FileNotFoundError:
        raise SyncError("rsync not found (apt-get install rsync)") from None
    return done


def _fail(what: str, done: subprocess.CompletedProcess) -> SyncError:
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    return SyncError(f"{what}: rsync exit {done.returncode}: {lines[-1] if lines else 'no output'}")


def _remote(user: str, host: str, path: str) -> str:
    return f"{user}@{host}:{path}"


def push(project_dir: Path, host: str, user: str, keys: RunKeys, remote_dir: str,
         exclude_file: Path | None, port: int = 22, timeout_s: float | None = None) -> None:
    """Mirror `project_dir` to `remote_dir` (created if missing), skipping exclude.txt patterns."""
    what = f"upload {project_dir} to {host}"
    excludes = [f"--exclude-from={exclude_file}"] if exclude_file is not None else []
    done = _rsync(["-a", "--delete", "--mkpath", "--protect-args", *excludes,
                   "-e", rsync_rsh(keys, port),
                   f"{Path(project_dir)}/", _remote(user, host, f"{remote_dir.rstrip('/')}/")],
                  what, timeout_s)
    if done.returncode != 0:
        raise _fail(what, done)


def push_file(local_path: Path, host: str, user: str, keys: RunKeys, remote_path: str,
              port: int = 22, timeout_s: float | None = None) -> None:
    """Copy one file to `remote_path` (parent directories created)."""
    what = f"upload {local_path} to {host}"
    done = _rsync(["-t", "--mkpath", "--protect-args", "-e", rsync_rsh(keys, port),
                   str(local_path), _remote(user, host, remote_path)], what, timeout_s)
    if done.returncode != 0:
        raise _fail(what, done)


def remote_sha256(host: str, user: str, keys: RunKeys, remote_path: str,
                  port: int = 22) -> tuple[str, int]:
    """(sha256, size) of a file on the server."""
    q = shlex.quote(remote_path)
    argv = [*ssh_command(keys, user, host, port), f"sha256sum -- {q} && stat -c %s -- {q}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, check=False)
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) < 3 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]):
        err = " ".join(done.stderr.split()) or f"exit {done.returncode}"
        raise SyncError(f"cannot checksum {remote_path} on {host}: {err}")
    return parts[0], int(parts[-1])


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pull_verified(host: str, user: str, keys: RunKeys, remote_path: str, local_path: Path,
                  port: int = 22, timeout_s: float | None = None) -> str:
    """Fetch one file; keep it only if size and sha256 match the server's. Returns the sha256.
    The file appears under its final name only when verified (temp name, then rename)."""
    local_path = Path(local_path)
    local_path.parent.mkdir(parents=True, exist_ok=True)
    want_sha, want_size = remote_sha256(host, user, keys, remote_path, port)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{local_path.name}.", suffix=".part",
                                    dir=local_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        what = f"download {remote_path} from {host}"
        done = _rsync(["-t", "--protect-args", "-e", rsync_rsh(keys, port),
                       _remote(user, host, remote_path), str(tmp)], what, timeout_s)
        if done.returncode != 0:
            raise _fail(what, done)
        size = tmp.stat().st_size
        got = sha256_file(tmp)
        if size != want_size or got != want_sha:
            raise SyncError(f"{what}: copy does not match the server's (size {size} vs "
                            f"{want_size}, sha256 {got[:12]}… vs {want_sha[:12]}…)")
        os.replace(tmp, local_path)
        return got
    finally:
        tmp.unlink(missing_ok=True)


def pull_dir(host: str, user: str, keys: RunKeys, remote_dir: str, local_dir: Path,
             exclude: Sequence[str] = (), timeout_s: float | None = None,
             port: int = 22) -> int:
    """Copy a remote directory's contents into `local_dir`; returns the number of files there
    from it (0 if the remote directory does not exist)."""
    local_dir = Path(local_dir)
    what = f"download {remote_dir} from {host}"
    args = ["-a", "--protect-args", "--out-format=%n", "-e", rsync_rsh(keys, port)]
    args += [f"--exclude={pattern}" for pattern in exclude]
    local_dir.mkdir(parents=True, exist_ok=True)
    done = _rsync([*args, _remote(user, host, f"{remote_dir.rstrip('/')}/"), f"{local_dir}/"],
                  what, timeout_s)
    if done.returncode == 23 and "No such file or directory" in done.stderr \
            and not done.stdout.strip():
        return 0
    if done.returncode != 0:
        raise _fail(what, done)
    return sum(1 for p in local_dir.rglob("*") if p.is_file())


def upload_size(project_dir: Path, exclude_file: Path) -> int:
    """Bytes `push` would send, by rsync's own reading of exclude.txt (a local dry run)."""
    if not Path(exclude_file).is_file():
        raise SyncError(f"{exclude_file} not found: it lists what must never be uploaded")
    with tempfile.TemporaryDirectory(prefix="juliafarm-size-") as empty:
        done = _rsync(["-a", "--dry-run", "--stats", f"--exclude-from={exclude_file}",
                       f"{Path(project_dir)}/", f"{empty}/"], f"size of {project_dir}", 300)
    if done.returncode != 0:
        raise _fail(f"size of {project_dir}", done)
    m = _TOTAL_SIZE.search(done.stdout)
    if not m:
        raise SyncError("cannot read the upload size from rsync --stats")
    return int(m.group(1).replace(",", "").replace(".", ""))
