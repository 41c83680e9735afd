"""mmedeploy: what runs on a person's machine (the CLI and the embedded local stack). Never deployed."""

from mmedeploy.project_files import version

__version__ = version()  # pyproject.toml's (mmedeploy.project_files.version)
