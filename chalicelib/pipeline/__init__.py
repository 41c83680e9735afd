"""The DeployModel pipeline's steps: the upload trigger and one service per state machine stage."""
