"""Packaging mmedeploy itself for AWS: ``build/STAGE/`` for ``aws cloudformation package``.

- :mod:`mmedeploy.deploy.package`: ``python -m mmedeploy.deploy.package --stage STAGE`` (``make
  package``) runs ``chalice package`` with ``infra/template.yaml`` merged in, builds the stage
  Lambdas' ``functions.zip`` and rewrites the template so every artifact is a literal local path.
- :mod:`mmedeploy.deploy.policy_check`: ``python -m mmedeploy.deploy.policy_check sam.yaml`` fails
  on wildcard IAM actions and on ``Resource: "*"`` beyond the actions that cannot be scoped.
- :mod:`mmedeploy.deploy.template`: the template as data (load, dump, look-ups, the rewrite).
- :mod:`mmedeploy.deploy.lambda_zip`: the stage Lambdas' dependencies and the deterministic zip.
"""
