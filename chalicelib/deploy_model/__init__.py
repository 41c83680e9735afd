"""DeployModel, one module per state of functions/deploy_model.asl.json (module = state = handler
file in functions/), and the upload trigger that starts it."""
