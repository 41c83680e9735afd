"""The approval gate: a human decision (a Slack button, or an admin through the API) resumes the
DeployModel execution waiting on its task token."""
