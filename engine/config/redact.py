"""Mask the credentials that URLs carry, before any of them is printed, logged or shown.

A tracking URI (`MLFLOW_TRACKING_URI=https://user:pass@mlflow.corp`, `postgresql://u:p@db/x`)
or a git remote (`https://x-access-token:ghp_...@github.com/o/r.git`) holds a secret in its
user-info part. Everything mlci prints goes through `mask_credentials` first: `mlci config`,
the printer of the event stream, notices, push messages, error lines. It lives in the
config layer so every layer above (and the TUI) can use it.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "mask_credentials"]

MASK = "***"
"""What a masked secret reads as."""

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s'\"]+)@")
"""`scheme://userinfo@`: up to the last `@` before the first `/`, `?`, `#`, quote or space (a raw `@` in a password)."""


def _mask(match: re.Match[str]) -> str:
    # The whole user-info goes, user name included: over http(s) a lone user name is often the
    # token itself (`https://<token>@github.com`), and one rule is easier to trust than two.
    return f"{match['scheme']}{MASK}@"


def mask_credentials(text: str) -> str:
    """`text` with the user-info of every `scheme://user:secret@host` URL in it replaced by `***`.

    scp-like remotes (`git@github.com:o/r.git`) carry no secret and are left as they are.
    """
    if "@" not in text:
        return text
    return _URL_USERINFO.sub(_mask, text)
