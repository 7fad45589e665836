"""Wheel selection for the server's Python/platform, the wheel cache, and the deps decision."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from provision import bootstrap, wheelhouse
from provision.errors import BootstrapError
from provision.keys import RunKeys
from provision.wheelhouse import Target

DEBIAN12 = Target("3.11", "x86_64", (2, 36))


def _wheel(directory: Path, name: str, version: str, tag: str) -> Path:
    """A minimal valid wheel (METADATA, WHEEL, RECORD)."""
    dist = f"{name}-{version}"
    path = directory / f"{dist}-{tag}.whl"
    files = {
        f"{name}/__init__.py": b"",
        f"{dist}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\n"
                                      f"Version: {version}\n".encode(),
        f"{dist}.dist-info/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                                   f"true\nTag: {tag}\n".encode(),
    }
    record = ""
    for rel, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{rel},sha256={digest},{len(data)}\n"
    files[f"{dist}.dist-info/RECORD"] = (record + f"{dist}.dist-info/RECORD,,\n").encode()
    with zipfile.ZipFile(path, "w") as z:
        for rel, data in files.items():
            z.writestr(rel, data)
    return path


def test_platform_tags_follow_glibc() -> None:
    tags = DEBIAN12.platforms()
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and "manylinux1_x86_64" in tags
    old = Target("3.11", "aarch64", (2, 17)).platforms()
    assert "manylinux_2_28_aarch64" not in old and "manylinux2014_aarch64" in old
    assert DEBIAN12.abi == "cp311" and DEBIAN12.key == "cp311-x86_64-glibc2.36"


def test_probe_parsing_and_musl_refused() -> None:
    t = Target.parse_probe(json.dumps({"version": "3.11", "machine": "x86_64",
                                       "libc": ["glibc", "2.36"]}))
    assert t == DEBIAN12
    with pytest.raises(BootstrapError, match="only glibc"):
        Target.parse_probe(json.dumps({"version": "3.12", "machine": "x86_64",
                                       "libc": ["", ""]}))
    assert wheelhouse.local_target().python_version.count(".") == 1


def test_download_picks_wheels_for_the_target_and_caches(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "jfpure", "1.0", "py3-none-any")
    _wheel(index, "jfnative", "1.0", "cp311-cp311-manylinux_2_17_x86_64")
    _wheel(index, "jfnative", "1.1", "cp311-cp311-manylinux_2_39_x86_64")  # too new a glibc
    _wheel(index, "jfnative", "1.2", "cp312-cp312-manylinux_2_17_x86_64")  # other Python
    cache = tmp_path / "cache"
    args = ("--no-index", "--find-links", str(index))
    got = wheelhouse.download(["jfpure", "jfnative"], DEBIAN12, cache, index_args=args)
    names = sorted(p.name for p in got.glob("*.whl"))
    assert names == ["jfnative-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                     "jfpure-1.0-py3-none-any.whl"]
    assert got == cache / DEBIAN12.key
    # Cached: works with the index gone (pip would fail without it).
    for p in index.iterdir():
        p.unlink()
    assert wheelhouse.download(["jfpure", "jfnative"], DEBIAN12, cache, index_args=args) == got
    with pytest.raises(BootstrapError, match="cannot download wheels"):
        wheelhouse.download(["jfother"], DEBIAN12, cache, index_args=args)


def test_project_requirements_exclude_local_only_tools() -> None:
    reqs = wheelhouse.project_requirements()
    names = {r.split(">")[0].split("=")[0].lower() for r in reqs}
    assert "numpy" in names and "numba" in names
    assert not names & {"linode_api4", "linode-api4", "fabric", "pytest", "requests", "paramiko",
                         "imageio-ffmpeg"}  # the server gets ffmpeg from apt


def test_deps_decision() -> None:
    calls: list[int] = []

    def reachable() -> bool:
        calls.append(1)
        return True

    assert bootstrap.choose_deps("auto", reachable) == "index"
    assert bootstrap.choose_deps("auto", lambda: False) == "wheelhouse"
    assert bootstrap.choose_deps("index", lambda: False) == "index"
    assert bootstrap.choose_deps("wheelhouse", reachable) == "wheelhouse"
    assert bootstrap.choose_deps("wheels", reachable) == "wheelhouse"
    assert len(calls) == 1  # only 'auto' probes the server


def test_ufw_status_parsing() -> None:
    good = ("Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), "
            "disabled (routed)\n\nTo                         Action      From\n"
            "--                         ------      ----\n"
            "OpenSSH                    ALLOW IN    Anywhere\n")
    assert bootstrap._ufw_ok(good)
    assert not bootstrap._ufw_ok(good.replace("active", "inactive"))
    assert not bootstrap._ufw_ok(good.replace("deny (incoming)", "allow (incoming)"))
    assert not bootstrap._ufw_ok(good.replace("OpenSSH", "80/tcp"))


def test_bad_arguments_are_refused_before_touching_the_server(tmp_path: Path) -> None:
    keys = RunKeys.create(tmp_path)
    for user, deps in (("root", "auto"), ("Bad User", "auto"), ("alice", "magic")):
        with pytest.raises(BootstrapError):
            bootstrap.bootstrap(object(), user, keys, deps=deps)
