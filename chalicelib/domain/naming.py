"""The artifact naming contract: ``<model_name>_<model_version>.tar.gz``.

The name is split at the last underscore, so model names may contain underscores
(``fraud_detector_1.2.tar.gz`` is model ``fraud_detector``, version ``1.2``).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

ARTIFACT_PATTERN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_-]{0,62})_(?P<version>[0-9]+(\.[0-9]+){0,2})\.tar\.gz$")
VERSION_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+){0,2}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


class InvalidArtifactName(ValueError):
    """The file name does not follow ``<model_name>_<model_version>.tar.gz``."""


class ArtifactName(BaseModel):
    """A parsed artifact key: model name and version."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version}.tar.gz"

    @classmethod
    def parse(cls, key: str) -> ArtifactName:
        """Parse an S3 key or file path; only its last path segment is the artifact name."""
        basename = key.rsplit("/", 1)[-1]
        match = ARTIFACT_PATTERN.match(basename)
        if match is None:
            raise InvalidArtifactName(
                f"'{basename}' is not named <model_name>_<model_version>.tar.gz: the model name is "
                "1-63 characters of letters, digits, '_' or '-' (starting with a letter or digit), "
                "the version is 1 to 3 dot-separated numbers, e.g. 'fraud_detector_1.2.0.tar.gz'"
            )
        return cls(name=match["name"], version=match["version"])

    @classmethod
    def build(cls, name: str, version: str) -> ArtifactName:
        """Check a name and version given separately (as ``mmedeploy package`` takes them)."""
        if not NAME_PATTERN.match(name):
            raise InvalidArtifactName(
                f"model name '{name}' must be 1-63 characters of letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        if not VERSION_PATTERN.match(version):
            raise InvalidArtifactName(f"version '{version}' must be 1 to 3 dot-separated numbers, e.g. '3' or '1.2.0'")
        return cls.parse(f"{name}_{version}.tar.gz")
