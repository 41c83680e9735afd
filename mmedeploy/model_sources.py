"""Model repository folders in a source tree (a model monorepo): which folder a changed file
belongs to, and a folder packaged as ``mmedeploy package`` would, to be validated as it will ship.

The convention (docs/model-repository.md, "Model monorepos"): each model repository folder is named
after its model and holds ``model_version.txt``, the version its next tarball carries. A folder
without the file is taken for a repository when it holds a ``config.pbtxt`` or one of its direct
subfolders does, and the highest such folder wins, since a member's folder is part of its
ensemble's repository.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from chalicelib.domain.naming import ArtifactName
from chalicelib.domain.validation.validator import VERSION_FILE
from mmedeploy.packaging import write_tarball

CONFIG = "config.pbtxt"
UNVERSIONED = "0"  # what a folder without model_version.txt is validated as


def _holds_models(folder: Path) -> bool:
    if (folder / CONFIG).is_file():
        return True
    try:
        return any((child / CONFIG).is_file() for child in folder.iterdir() if child.is_dir())
    except OSError:
        return False


def repository_of(path: Path, top: Path) -> Path | None:
    """The model repository folder ``path`` (a file, possibly deleted, or a folder) belongs to, not
    looking above ``top``; None when it belongs to none."""
    top = top.resolve()
    folder = path.resolve()
    while not folder.is_dir() and folder != top and top in folder.parents:
        folder = folder.parent  # a deleted file, or a file: start from the folder that holds it
    chain = [folder, *folder.parents]
    below_top = [f for f in chain if f == top or top in f.parents]
    for candidate in below_top:
        if (candidate / VERSION_FILE).is_file():
            return candidate
    found: Path | None = None
    for candidate in below_top:
        if _holds_models(candidate):
            found = candidate
        elif found is not None:
            break
    return found


def repositories_of(paths: Iterable[Path], top: Path) -> list[Path]:
    """The distinct repository folders of ``paths``, sorted; files outside any are ignored."""
    return sorted({repo for path in paths if (repo := repository_of(path, top)) is not None})


def source_artifact(folder: Path) -> ArtifactName:
    """The artifact a folder packages to: its name, and the version model_version.txt records."""
    marker = folder / VERSION_FILE
    version = marker.read_text(errors="replace").strip() if marker.is_file() else UNVERSIONED
    return ArtifactName.build(folder.name, version)


@contextmanager
def packaged(folder: Path) -> Iterator[Path]:
    """``folder`` packaged into a temporary ``NAME_VERSION.tar.gz``, deterministically as
    ``mmedeploy package`` does, so what is validated is what the pipeline will see; nothing is
    written next to the sources, and the file is gone on exit.

    Raises InvalidArtifactName (a folder not named as a model, a bad model_version.txt) and
    PackagingError (links, special files) with what to change."""
    artifact = source_artifact(folder)
    with tempfile.TemporaryDirectory(prefix="mmedeploy-validate-") as scratch:
        tarball = Path(scratch, artifact.filename)
        write_tarball(folder, artifact, tarball)
        yield tarball
