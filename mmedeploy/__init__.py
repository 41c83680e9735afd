"""mmedeploy: what runs on a person's machine (the CLI and the embedded local stack). Never deployed."""

__version__ = "0.1.0"
