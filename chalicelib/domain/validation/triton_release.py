"""The Triton version the endpoints run, read in one place: :func:`resolve`.

The endpoints run the Triton of their image (the template's ``TritonImage``;
``sagemaker-tritonserver:24.09`` runs Triton 2.50). :func:`resolve` takes an explicit version
(``2.N[.P]``, or a container release ``YY.MM``), else the image's tag (``...:24.09-py3`` ->
container 24.09), else :data:`DEFAULT_CONTAINER`, the image the template deploys. Container
releases map to Triton versions by ``schemas/triton_fields.py``'s ``RELEASES`` (``make
triton-fields``). Light on purpose (no protobuf): the settings every function reads import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chalicelib.domain.validation.schemas.triton_fields import RELEASES

# infra/template.yaml's TritonImage default is sagemaker-tritonserver:24.09-py3 (a test keeps them equal)
DEFAULT_CONTAINER = "24.09"
AUTO = "auto"  # the template's TritonVersion default: read the version from the image's tag
_TRITON = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?$")
_CONTAINER = re.compile(r"^(\d{2}\.\d{2})(?:-.*)?$")  # an image tag: 24.09-py3


@dataclass(frozen=True, order=True)
class TritonVersion:
    parts: tuple[int, int, int]

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)

    @property
    def container(self) -> str | None:
        """The container release (YY.MM) that ships this version, where one does."""
        return next((c for c, v in RELEASES.items() if v == str(self)), None)

    def describe(self) -> str:
        container = self.container
        return f"Triton {self}" + (f" (container {container})" if container else "")

    @classmethod
    def parse(cls, text: str) -> TritonVersion:
        """``2.50``, ``2.50.0``, or the container release ``24.09``; ValueError saying why."""
        text = text.strip()
        container = _CONTAINER.match(text)
        if container:  # two digits before the dot: a container release, not a Triton version
            version = RELEASES.get(container.group(1))
            if version is None:
                known = f"{next(iter(RELEASES))} to {next(reversed(RELEASES))}"
                raise ValueError(
                    f"container release {container.group(1)} is not in the release table ({known}); "
                    "give the Triton version (2.N) instead, or regenerate the table (make triton-fields)"
                )
            text = version
        match = _TRITON.match(text)
        if not match:
            raise ValueError(f"'{text}' is not a Triton version (2.50, 2.50.0) or a container release (24.09)")
        major, minor, patch = match.groups()
        return cls((int(major), int(minor), int(patch or 0)))

    @classmethod
    def of_image(cls, image: str) -> TritonVersion:
        """The version an image runs, from its tag (``...sagemaker-tritonserver:24.09-py3``)."""
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        match = _CONTAINER.match(tag)
        if not match:
            raise ValueError(
                f"cannot tell the Triton version of image '{image}' from its tag (expected YY.MM-...): "
                "set it explicitly (TritonVersion, --triton-version)"
            )
        return cls.parse(match.group(1))


DEFAULT_TRITON = TritonVersion.parse(DEFAULT_CONTAINER)


def resolve(version: str = "", image: str = "") -> TritonVersion:
    """The deployed Triton: ``version`` if given (not empty or ``auto``), else ``image``'s, else the
    template's default."""
    if version.strip() not in ("", AUTO):
        return TritonVersion.parse(version)
    if image.strip():
        return TritonVersion.of_image(image)
    return DEFAULT_TRITON
