"""The domain: a model version's records and lifecycle (every status grouping in one place), the
artifact naming contract, a model's signature and its one KServe type/shape check, approvals, the
domain's errors, and the two bodies of rules (``validation``, ``warmup``). No AWS, no HTTP: it
imports no adapter."""
