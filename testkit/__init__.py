"""Drives a local stack for tests and benchmarks: start and stop a stack process on a free port
range (``stack_process``), signed Slack button clicks and the Slack sink's record (``slack``), a
multi-model endpoint and its requests (``mme``), model tarballs built in code, good and hostile
(``tarballs``). ``tests/`` (with its fixtures) and ``benchmarks/`` both import it; it imports
neither. Never packaged: ``pyproject.toml`` ships ``mmedeploy`` and ``chalicelib`` only."""
