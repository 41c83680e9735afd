"""The embedded local stack: moto server, the two moto seams, Slack sink, Chalice's local server.

It differs from AWS only by endpoint URLs and credentials; nothing here is ever deployed.
"""

from pathlib import Path

# Where `mmedeploy up` keeps stack.json, the stack's state and logs; every command's --state-dir.
DEFAULT_STATE_DIR = Path(".mmedeploy")
# The CloudFormation stack the local stack provisions in its emulator: its outputs are where a
# command finds the buckets, table and API (as on AWS).
STACK_NAME = "mmedeploy-dev"

# The stack uses 4 consecutive ports from here: AWS emulator, API, Slack sink, MME.
DEFAULT_PORT_BASE = 4750
# The local MME: memory each endpoint may fill with models, and how long an invocation waits for a
# loading model before ModelNotReadyException (the load goes on). `mmedeploy up` options.
DEFAULT_MME_MEMORY_MB = 8192
DEFAULT_MME_LOAD_WAIT_S = 30.0
# How long a staged version waits for its Slack decision locally before EXPIRED (AWS: 3 days).
DEFAULT_APPROVAL_TIMEOUT_S = 3 * 24 * 3600
# Execution environments a function may have at once (Lambda scales out per request; a laptop
# is bounded): further concurrent invocations wait for one to be free.
DEFAULT_LAMBDA_CONCURRENCY = 4
