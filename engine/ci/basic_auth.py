"""HTTP Basic credentials (Jenkins, Azure DevOps), and every form in which they could leak.

Jenkins takes `user:API token`, Azure DevOps `:personal access token` (an empty user name),
both base64-encoded in an `Authorization: Basic` header. A message that is scrubbed of the
whole `user:secret` pair only could still hold the secret alone, or its base64 form, so
`secret_forms` lists all three for the scrubber.
"""

from __future__ import annotations

import base64

__all__ = ["basic_auth", "secret_forms"]


def basic_auth(credentials: str) -> str:
    """The `Authorization` header value for `user:secret`."""
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")


def secret_forms(credentials: str) -> tuple[str, ...]:
    """The pair, the secret after the first colon, and the header's base64: longest first, none empty."""
    forms = {credentials, credentials.partition(":")[2], basic_auth(credentials).removeprefix("Basic ")}
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))
