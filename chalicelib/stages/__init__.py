"""What the stages of both state machines (DeployModel, PromoteModel) share: the tracker every
status change goes through, the error a Catch hands on, and the smoke test run on a warm endpoint."""
