"""The embedded local stack: moto server, the two moto seams, Slack sink, Chalice's local server.

It differs from AWS only by endpoint URLs and credentials; nothing here is ever deployed.
"""

# The stack uses 4 consecutive ports from here: AWS emulator, API, Slack sink, MME.
DEFAULT_PORT_BASE = 4750
