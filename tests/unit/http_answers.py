"""The API's status for a domain error (app.HTTP_STATUS, the one table), for tests of the services
that raise them. app.py reads STAGING_BUCKET when imported (for the upload rule)."""

from __future__ import annotations

import importlib
import os
import sys


def http_status(error: BaseException) -> int:
    if "app" not in sys.modules:
        saved = os.environ.get("STAGING_BUCKET")
        os.environ["STAGING_BUCKET"] = saved or "staging"
        try:
            importlib.import_module("app")
        finally:
            if saved is None:
                del os.environ["STAGING_BUCKET"]
    status: int = sys.modules["app"].http_status(error)
    return status
