"""The unit's admin secret: made once, kept only as an scrypt hash (0600), checked by verify."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edge_app import admin_secret


def test_the_secret_is_made_once_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    secret = admin_secret.ensure(tmp_path)
    assert secret is not None and len(admin_secret.normalize(secret)) == 20
    assert admin_secret.ensure(tmp_path) is None  # shown once: never made (nor returned) again
    stored = admin_secret.path_of(tmp_path)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    text = stored.read_text()
    assert admin_secret.normalize(secret) not in text and secret not in text
    assert [p.name for p in tmp_path.iterdir()] == [admin_secret.FILE]  # no temp file left behind


def test_verify_takes_the_secret_as_typed_and_nothing_else(tmp_path: Path) -> None:
    secret = admin_secret.ensure(tmp_path)
    assert secret is not None
    assert admin_secret.verify(tmp_path, secret)
    assert admin_secret.verify(tmp_path, secret.lower().replace("-", " "))
    wrong = ("A" if secret[0] != "A" else "B") + secret[1:]
    assert not admin_secret.verify(tmp_path, wrong)
    assert not admin_secret.verify(tmp_path, "")
    assert not admin_secret.verify(tmp_path, secret * 20)


def test_a_unit_without_a_secret_lets_no_one_in(tmp_path: Path) -> None:
    assert not admin_secret.verify(tmp_path, "ABCDE-FGHJK-MNPQR-STUVW")


def test_a_damaged_hash_file_is_an_error_not_a_pass(tmp_path: Path) -> None:
    admin_secret.path_of(tmp_path).write_text('{"scheme": "plain", "secret": "x"}')
    with pytest.raises(admin_secret.SecretError):
        admin_secret.verify(tmp_path, "x")
