"""Raw HTTP against the stack's API, for status codes and headers a Triton client does not show."""

from __future__ import annotations

import urllib.error
import urllib.request


def call_api(
    api_url: str, method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) whatever the status."""
    request = urllib.request.Request(f"{api_url}{path}", data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()
