"""Packaging mmedeploy itself for AWS: ``build/STAGE/`` for ``aws cloudformation package``.

- :mod:`mmedeploy.deploy.package`: ``python -m mmedeploy.deploy.package --stage STAGE`` (``make
  package``) and :func:`~mmedeploy.deploy.package.ensure_built`: ``chalice package`` with
  ``infra/template.yaml`` merged in, one zip per group of functions (the Chalice app's
  ``deployment.zip``, the stage Lambdas' ``functions.zip``), the template rewritten so every
  artifact is a literal local path; only the parts whose inputs changed are rebuilt.
- :mod:`mmedeploy.deploy.lambda_zip`: the cached, precompiled dependency layers and the
  deterministic zips with bytecode.
- :mod:`mmedeploy.deploy.app_modules`: which of the project's modules a zip's handlers import.
- :mod:`mmedeploy.deploy.cold_start`: a packaged handler imported from its artifact in a clean
  interpreter, as Lambda does (the handler-import test, ``make bench-cold-start``).
- :mod:`mmedeploy.deploy.protos`: ``make protos``, the validator's protobuf classes.
- :mod:`mmedeploy.deploy.policy_check`: ``python -m mmedeploy.deploy.policy_check sam.yaml`` fails
  on wildcard IAM actions and on ``Resource: "*"`` beyond the actions that cannot be scoped.
- :mod:`mmedeploy.deploy.template`: the template as data (load, dump, look-ups, the rewrite).
"""
