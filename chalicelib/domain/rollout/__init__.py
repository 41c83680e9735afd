"""Progressive delivery (issue 20): a rollout's policy (``policy.py``), the model's own
``rollout.json`` (``tarball_policy.py``), a version's figures (``figures.py``) and the gates that
judge a step from them (``gates.py``). Domain only: no AWS calls; the figures are read by
``chalicelib/adapters/version_metrics.py``."""
