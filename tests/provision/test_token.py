"""Token loading: environment first, then a private token file; never echoed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from provision.errors import ProvisionError, TokenError
from provision.token import api_base_url, load_token

SECRET = "s3cr3t-token-value-0123456789abcdef"


def _file(tmp_path: Path, mode: int, text: str = SECRET + "\n") -> Path:
    p = tmp_path / "token"
    p.write_text(text)
    p.chmod(mode)
    return p


def test_environment_wins() -> None:
    assert load_token({"LINODE_TOKEN": f" {SECRET} ", "LINODE_TOKEN_FILE": "/nonexistent"}) \
        == SECRET


def test_private_file_is_read(tmp_path: Path) -> None:
    assert load_token({"LINODE_TOKEN_FILE": str(_file(tmp_path, 0o600))}) == SECRET


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o602])
def test_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _file(tmp_path, mode)
    with pytest.raises(TokenError) as info:
        load_token({"LINODE_TOKEN_FILE": str(path)})
    msg = str(info.value)
    assert "chmod 600" in msg and SECRET not in msg and "\n" not in msg


def test_default_path_under_home(tmp_path: Path) -> None:
    (tmp_path / ".config" / "juliafarm").mkdir(parents=True)
    _file(tmp_path / ".config" / "juliafarm", 0o600)
    assert load_token({"HOME": str(tmp_path)}) == SECRET


def test_missing_token_says_how_to_provide_one(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="LINODE_TOKEN"):
        load_token({"HOME": str(tmp_path)})


def test_symlinked_token_file_is_refused(tmp_path: Path) -> None:
    real = _file(tmp_path, 0o600)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(TokenError):
        load_token({"LINODE_TOKEN_FILE": str(link)})


def test_empty_or_multi_word_file_is_refused(tmp_path: Path) -> None:
    for text in ("\n", "a b\n"):
        with pytest.raises(TokenError):
            load_token({"LINODE_TOKEN_FILE": str(_file(tmp_path, 0o600, text))})
        os.unlink(tmp_path / "token")


def test_api_base_url() -> None:
    assert api_base_url({}) == "https://api.linode.com/v4"
    assert api_base_url({"LINODE_API_URL": "http://127.0.0.1:8123/v4/"}) \
        == "http://127.0.0.1:8123/v4"
    with pytest.raises(ProvisionError, match="plain http"):
        api_base_url({"LINODE_API_URL": "http://example.com/v4"})
    with pytest.raises(ProvisionError):
        api_base_url({"LINODE_API_URL": "ftp://127.0.0.1/v4"})
