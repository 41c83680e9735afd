"""Lambda, locally: each function runs from the code Lambda holds for it (the packaged artifact),
in its own processes started with AWS's runtime client ``awslambdaric``, each polling a local
implementation of the Lambda Runtime API, one invocation at a time.

``function`` (what one function is, what an invocation returns) -> ``runtime_api`` (the Runtime
API one execution environment polls) -> ``sandbox`` (one execution environment: its process, its
timeout, its errors) -> ``service`` (each function's pool of environments, the unzipped code, the
runtime client's install) -> ``logs`` (each function's output, to a file and to CloudWatch Logs).
"""
