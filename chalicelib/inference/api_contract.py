"""The inference API's names its clients share: the headers it reads and answers with, and the
page bounds of its listings. Plain constants, imported by the app, the CLI's inference client and
the local MME alike (nothing here imports anything, so the CLI pays nothing at start-up)."""

from __future__ import annotations

# KServe's binary tensor extension: the size of the JSON head before the binary data (Triton's
# and SageMaker's name for it; requests send it, answers carry it when they hold binary data).
HEADER_LENGTH = "Inference-Header-Content-Length"
# Which version answered an inference request, and by which route (production | canary | pinned).
VERSION_HEADER = "Mmedeploy-Model-Version"
ROUTE_HEADER = "Mmedeploy-Route"

# GET /models and GET /models/NAME: a page's size when ?limit= is not given, and its largest.
DEFAULT_PAGE = 100
MAX_PAGE = 1000
