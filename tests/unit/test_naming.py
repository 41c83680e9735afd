"""The artifact naming contract (chalicelib/domain/naming.py; docs/model-repository.md)."""

from __future__ import annotations

import pytest

from chalicelib.domain.naming import ArtifactName, InvalidArtifactName


@pytest.mark.parametrize(
    ("key", "name", "version"),
    [
        ("idcheck_1.tar.gz", "idcheck", "1"),
        ("fraud_detector_1.2.0.tar.gz", "fraud_detector", "1.2.0"),
        ("staging/models/doc-ocr_12.tar.gz", "doc-ocr", "12"),
        ("A_0.1.tar.gz", "A", "0.1"),
    ],
)
def test_valid_keys_split_at_the_last_underscore(key: str, name: str, version: str) -> None:
    parsed = ArtifactName.parse(key)
    assert (parsed.name, parsed.version) == (name, version)
    assert parsed.filename == key.rsplit("/", 1)[-1]


@pytest.mark.parametrize(
    "key",
    [
        "idcheck.tar.gz",
        "idcheck_v1.tar.gz",
        "idcheck_1.2.3.4.tar.gz",
        "idcheck_1.tgz",
        "_1.tar.gz",
        "-x_1.tar.gz",
        "a" * 64 + "_1.tar.gz",
        "id check_1.tar.gz",
        "idcheck_1.tar.gz.bak",
    ],
)
def test_invalid_keys_are_refused_with_the_rule(key: str) -> None:
    with pytest.raises(InvalidArtifactName, match="model_name>_<model_version>"):
        ArtifactName.parse(key)


def test_build_checks_parts_separately() -> None:
    assert ArtifactName.build("idcheck", "2").filename == "idcheck_2.tar.gz"
    with pytest.raises(InvalidArtifactName, match="model name"):
        ArtifactName.build("bad/name", "1")
    with pytest.raises(InvalidArtifactName, match="version"):
        ArtifactName.build("ok", "1.x")
