"""Keeping secrets out of text: URIs/DSNs, known secret strings, and driver DEBUG logs.

Two rules, used by every backend's errors and by the log filter:

- a password in a credentials position (``scheme://user:PASS@host``, ``password=PASS``) is
  masked whatever it is, even one letter long;
- a known secret is masked wherever it appears *as a whole* (not inside a longer word), in its
  raw and percent-encoded forms, so a one-letter password does not turn every such letter of a
  message into ``***``.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable

MASK = "***"

#: A URI token inside free text (it ends at whitespace or a quote).
_URI = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s'"<>]*""")
#: libpq ``password=...`` (quoted, or bare up to whitespace) and a URI query's ``password=...`` (up to "&").
_DSN_PASSWORD = re.compile(r"((?<![?&\w])password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s'\"]*", re.IGNORECASE)
#: What botocore logs when it signs a request: the session token header and the signature.
_AWS_PATTERNS = [
    re.compile(r"(x-amz-security-token\s*[:=]\s*(?:b?')?)([^\s',}]+)", re.IGNORECASE),
    re.compile(r"(Signature\s*[=:]\s*(?:b?')?)([0-9a-f]{16,})", re.IGNORECASE),
]


def _mask_userinfo(uri: str) -> str:
    scheme_end = uri.index("://") + 3
    at = uri.rfind("@")  # the userinfo ends at the last "@" (a careless password may hold "@" or "/")
    if at <= scheme_end:
        return uri
    userinfo = uri[scheme_end:at]
    if ":" not in userinfo:
        return uri
    return uri[:scheme_end] + userinfo.split(":", 1)[0] + ":" + MASK + uri[at:]


def redact_url(text: str) -> str:
    """Mask the password of every URI (``scheme://user:pass@host``) and libpq ``password=`` in ``text``.

    Only credentials positions are touched: the rest of the text, hosts and query included, stays.
    """
    text = _URI.sub(lambda m: _mask_userinfo(m.group(0)), text)
    text = _DSN_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    return _QUERY_PASSWORD.sub(lambda m: m.group(1) + MASK, text)


def _forms(secret: str) -> set[str]:
    """The spellings a secret takes in text: raw, percent-encoded (URIs) and repr-escaped."""
    forms = {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret, safe=""),
             repr(secret)[1:-1]}
    return {f for f in forms if f}


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with credentials positions masked and each secret masked where it stands whole."""
    text = redact_url(text)
    for secret in secrets:
        if not secret:
            continue
        for form in sorted(_forms(secret), key=len, reverse=True):
            # Whole only: not glued to a word, host name or path on either side ("a" in "abc.a.b" stays).
            pattern = r"(?<![\w.\-/@%+~])" + re.escape(form) + r"(?![\w\-/@%+~]|\.\S)"
            text = re.sub(pattern, MASK, text)
    return text


def redact_aws(text: str) -> str:
    """Mask the session token and signature values botocore writes into its DEBUG logs."""
    for pattern in _AWS_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


class SecretFilter(logging.Filter):
    """Rewrites log records of driver loggers so no known secret, token or signature is emitted.

    A filter on a logger only sees records logged *by that logger* (not its children), so it is
    attached to every logger under the watched prefixes; :func:`watch` re-attaches when new
    driver loggers appear (botocore imports some modules lazily).
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._prefixes: set[str] = set()
        self._seen = -1
        self._lock = threading.Lock()

    def add(self, prefixes: Iterable[str], secrets: Iterable[str]) -> None:
        with self._lock:
            self._prefixes.update(prefixes)
            self._secrets.update(s for s in secrets if s)
            self._seen = -1
        self.attach()

    def attach(self) -> None:
        """Put the filter on every existing logger under the watched prefixes (cheap when none is new)."""
        manager = logging.Logger.manager
        if len(manager.loggerDict) == self._seen:
            return
        with self._lock:
            names = list(manager.loggerDict)
            self._seen = len(names)
            prefixes = tuple(self._prefixes)
        for name in names:
            if name in prefixes or name.startswith(tuple(p + "." for p in prefixes)):
                logger = logging.getLogger(name)
                if self not in logger.filters:
                    logger.addFilter(self)

    def clean(self, text: str) -> str:
        return mask_secrets(redact_aws(text), self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's to report, not ours
            return True
        cleaned = self.clean(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


#: The one filter shared by every backend of the process.
SECRETS = SecretFilter()


def watch(prefixes: Iterable[str], secrets: Iterable[str]) -> None:
    """Redact ``secrets`` (and AWS tokens/signatures) from the loggers under ``prefixes``."""
    SECRETS.add(prefixes, secrets)
