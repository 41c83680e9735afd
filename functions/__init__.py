"""Step Functions stage Lambdas (validate, warm, approval request, promote, notify) and the ASL
state machine definitions. Packaged apart from the API, with their own requirements.txt."""
