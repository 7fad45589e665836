"""rsync push honouring exclude.txt, verified pulls, partial-directory pulls, upload size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from provision import ssh, sync
from provision.errors import SyncError

from .conftest import LocalSshd

EXCLUDES = ".git/\n__pycache__/\n*.mp4\n*.part\ntoken\nid_ed25519*\noutput/\n# comment\n"
KEPT = {"renderer/kernel.py": b"x = 1\n" * 50, "README.md": b"hello\n",
        "renderer/examples/a.toml": b"[scene]\n"}
DROPPED = {".git/HEAD": b"ref\n", "renderer/__pycache__/k.pyc": b"\0" * 999,
           "clip.mp4": b"\0" * 5000, "token": b"secret\n", "keys/id_ed25519": b"k",
           "output/old.mp4": b"1", "frames.part": b"2"}


def _project(root: Path) -> tuple[Path, Path]:
    for rel, data in {**KEPT, **DROPPED}.items():
        p = root / "project" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    exclude = root / "project" / "exclude.txt"
    exclude.write_text(EXCLUDES)
    return root / "project", exclude


def _files(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*") if p.is_file()}


def _ready(s: LocalSshd) -> None:
    ssh.wait_for_ssh(s.host, s.user, s.keys, timeout_s=20, port=s.port, interval_s=0.2)


def test_upload_size_counts_only_what_is_not_excluded(tmp_path: Path) -> None:
    project, exclude = _project(tmp_path)
    expected = sum(len(v) for v in KEPT.values()) + len(EXCLUDES)
    assert sync.upload_size(project, exclude) == expected


def test_upload_size_needs_the_exclude_file(tmp_path: Path) -> None:
    with pytest.raises(SyncError, match="exclude.txt not found"):
        sync.upload_size(tmp_path, tmp_path / "exclude.txt")


def test_push_honours_exclude_and_mirrors(local_sshd: LocalSshd, tmp_path: Path) -> None:
    s = local_sshd
    _ready(s)
    project, exclude = _project(tmp_path)
    remote = tmp_path / "server" / "home" / "juliafarm" / "project"
    sync.push(project, s.host, s.user, s.keys, str(remote), exclude, port=s.port)
    assert _files(remote) == set(KEPT) | {"exclude.txt"}
    assert (remote / "renderer/kernel.py").read_bytes() == KEPT["renderer/kernel.py"]
    # A file deleted locally disappears from the server on the next push.
    (project / "README.md").unlink()
    sync.push(project, s.host, s.user, s.keys, str(remote), exclude, port=s.port)
    assert "README.md" not in _files(remote)
    scene = tmp_path / "spiral.toml"
    scene.write_text("[scene]\nframes = 3\n")
    sync.push_file(scene, s.host, s.user, s.keys, str(tmp_path / "server/job/scene.toml"),
                   port=s.port)
    assert (tmp_path / "server/job/scene.toml").read_text() == scene.read_text()


def test_pull_verified_returns_the_sha256(local_sshd: LocalSshd, tmp_path: Path) -> None:
    s = local_sshd
    _ready(s)
    remote = tmp_path / "server" / "out.mp4"
    remote.parent.mkdir()
    remote.write_bytes(bytes(range(256)) * 4000)
    local = tmp_path / "local" / "out.mp4"
    digest = sync.pull_verified(s.host, s.user, s.keys, str(remote), local, port=s.port)
    assert digest == hashlib.sha256(remote.read_bytes()).hexdigest()
    assert local.read_bytes() == remote.read_bytes()
    assert _files(local.parent) == {"out.mp4"}  # no temp file left behind


def test_pull_verified_detects_corruption(local_sshd: LocalSshd, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    s = local_sshd
    _ready(s)
    remote = tmp_path / "server" / "out.mp4"
    remote.parent.mkdir()
    remote.write_bytes(b"video" * 1000)
    real = sync.remote_sha256

    def corrupt_after_checksum(*args: object, **kw: object) -> tuple[str, int]:
        answer = real(*args, **kw)  # type: ignore[arg-type]
        remote.write_bytes(b"vidEo" * 1000)  # what arrives differs from what was checksummed
        return answer

    monkeypatch.setattr(sync, "remote_sha256", corrupt_after_checksum)
    local = tmp_path / "local" / "out.mp4"
    with pytest.raises(SyncError, match="does not match"):
        sync.pull_verified(s.host, s.user, s.keys, str(remote), local, port=s.port)
    assert not local.exists() and _files(local.parent) == set()


def test_pull_verified_missing_remote_file(local_sshd: LocalSshd, tmp_path: Path) -> None:
    s = local_sshd
    _ready(s)
    with pytest.raises(SyncError, match="cannot checksum"):
        sync.pull_verified(s.host, s.user, s.keys, str(tmp_path / "nope.mp4"),
                           tmp_path / "x.mp4", port=s.port)


def test_pull_dir_skips_excluded_and_missing(local_sshd: LocalSshd, tmp_path: Path) -> None:
    s = local_sshd
    _ready(s)
    segs = tmp_path / "server" / "segments"
    segs.mkdir(parents=True)
    for name in ("seg-0000.mp4", "seg-0001.mp4", "seg-0002.mp4.part", ".hidden"):
        (segs / name).write_bytes(name.encode())
    local = tmp_path / "partial"
    n = sync.pull_dir(s.host, s.user, s.keys, str(segs), local, exclude=("*.part", ".*"),
                      timeout_s=60, port=s.port)
    assert n == 2 and _files(local) == {"seg-0000.mp4", "seg-0001.mp4"}
    assert sync.pull_dir(s.host, s.user, s.keys, str(tmp_path / "none"), tmp_path / "e",
                         port=s.port) == 0
