"""Masking passwords: credentials positions always, a known secret only where it stands whole."""

from __future__ import annotations

import logging
import urllib.parse

import pytest

from odm.config import redact, redact_url
from odm.redaction import MASK, SecretFilter, mask_secrets

PASSWORDS = ["a", "s3", "pw", "correct-horse-battery-staple-" * 4, "p@ss", "p/ss", "p:ss", "100%", "p@:/%w"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_uri_password_masked_and_nothing_else(password: str) -> None:
    quoted = urllib.parse.quote(password, safe="")
    uri = f"mongodb://alice:{quoted}@db.a.example:27017/app?authSource=admin&appname=odm"
    assert redact_url(uri) == "mongodb://alice:***@db.a.example:27017/app?authSource=admin&appname=odm"
    # The same URI inside a driver's sentence: only the password goes, every other letter stays.
    text = f"Cannot reach {uri}: timed out after 5 s (the password was sent)"
    assert mask_secrets(text, [password]) == f"Cannot reach {redact_url(uri)}: timed out after 5 s (the password was sent)"


@pytest.mark.parametrize("password", PASSWORDS)
def test_unencoded_password_with_at_and_slash_is_masked_whole(password: str) -> None:
    uri = f"postgresql://bob:{password}@127.0.0.1:5432/app"
    assert redact_url(uri) == "postgresql://bob:***@127.0.0.1:5432/app"


def test_one_letter_password_does_not_mask_letters_elsewhere() -> None:
    text = "connection to server at 'localhost' failed: FATAL: password authentication failed for user 'bob'"
    assert mask_secrets(text, ["a"]) == text
    assert mask_secrets("postgresql://bob:a@localhost/app failed", ["a"]) == "postgresql://bob:***@localhost/app failed"
    # Standing whole (quoted, after a colon, at the end of a sentence) it is masked.
    assert mask_secrets("options {'password': 'a'}; got a.", ["a"]) == "options {'password': '***'}; got ***."


@pytest.mark.parametrize("password", PASSWORDS)
def test_secret_masked_wherever_it_stands_whole(password: str) -> None:
    for text in (f"pass={password} user=x", f"secret '{password}' refused", f"[{password}]",
                 f"see {urllib.parse.quote(password, safe='')} here"):
        out = mask_secrets(text, [password])
        assert MASK in out and f"{password} " not in out and f"'{password}'" not in out


def test_libpq_dsn_password_forms() -> None:
    assert redact_url("host=h password=a&b user=u") == "host=h password=*** user=u"
    assert redact_url("host=h password='a b\\' c' user=u") == "host=h password=*** user=u"
    assert redact_url("postgresql://h/d?user=u&password=s3cr%40t&sslmode=off") == \
        "postgresql://h/d?user=u&password=***&sslmode=off"
    assert redact({"user": "u", "pass": "a", "dsn": "postgresql://u:a@h/a"}) == \
        {"user": "u", "pass": "***", "dsn": "postgresql://u:***@h/a"}


def test_log_filter_rewrites_records_with_tokens_and_signatures() -> None:
    filt = SecretFilter()
    filt.add([], ["SeKrEt/Key+1", "TOKEN123"])
    record = logging.LogRecord("botocore.endpoint", logging.DEBUG, __file__, 1,
                               "headers=%s", ({"X-Amz-Security-Token": b"TOKEN123",
                                              "Authorization": b"AWS4-HMAC-SHA256 Credential=AK/x, Signature=" + b"ab" * 32},),
                               None)
    assert filt.filter(record)
    message = record.getMessage()
    assert "TOKEN123" not in message and "ab" * 32 not in message and "Credential=AK/x" in message
    canonical = logging.LogRecord("botocore.auth", logging.DEBUG, __file__, 1,
                                  "CanonicalRequest:\n%s", ("x-amz-security-token:OTHERTOKEN\nkey SeKrEt/Key+1",), None)
    filt.filter(canonical)
    assert "OTHERTOKEN" not in canonical.getMessage() and "SeKrEt" not in canonical.getMessage()
