"""Inflate a single-member gzip stream from any binary stream, hashing the compressed bytes.

One pass, bounded memory: every read and every inflate call is capped, so a gzip bomb costs at
most a few chunk sizes of memory before the ratio bound stops it.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterator
from typing import BinaryIO, cast

from isal import isal_zlib

from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.limits import ArchiveLimits

GZIP_MAGIC = b"\x1f\x8b"
READ_SIZE = 1 << 20
INFLATE_SIZE = 4 << 20
# isal inflates about twice as fast as zlib; both raise their own error type.
# (isal's stub declares its error class as an instance, hence the cast.)
_INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, cast(type[Exception], isal_zlib.error))


class ArchiveStreamError(Exception):
    """The stream cannot be read further; carries the finding that says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


class GzipInflater:
    """Yields decompressed chunks; after iteration ``sha256`` and the byte counts are final."""

    def __init__(self, stream: BinaryIO, limits: ArchiveLimits, path: str = "") -> None:
        self._stream = stream
        self._limits = limits
        self._path = path
        self._hash = hashlib.sha256()
        self.compressed_bytes = 0
        self.uncompressed_bytes = 0
        self.complete = False

    @property
    def sha256(self) -> str | None:
        """Hex digest of the whole object, or None if the stream was not read to its end."""
        return self._hash.hexdigest() if self.complete else None

    def _read(self) -> bytes:
        try:
            data = self._stream.read(READ_SIZE)
        except Exception as exc:
            raise self._error(Code.ARCHIVE_READ_ERROR, f"reading the archive failed: {exc}") from exc
        self._hash.update(data)
        self.compressed_bytes += len(data)
        return data

    def _error(self, code: Code, message: str) -> ArchiveStreamError:
        return ArchiveStreamError(Finding.of(code, self._path, message))

    def chunks(self) -> Iterator[bytes]:
        data = self._read()
        if not data:
            raise self._error(Code.ARCHIVE_EMPTY, "the file is empty")
        if not data.startswith(GZIP_MAGIC[: len(data)]) or len(data) < 2:
            raise self._error(
                Code.ARCHIVE_NOT_GZIP,
                "the file is not gzip-compressed: create it with 'mmedeploy package' or 'tar czf'",
            )
        inflater = isal_zlib.decompressobj(31)
        while not inflater.eof:
            if not data:
                data = self._read()
                if not data:
                    raise self._error(
                        Code.ARCHIVE_TRUNCATED,
                        f"the gzip stream ends early after {self.compressed_bytes} bytes: "
                        "the upload or copy was interrupted; package and upload it again",
                    )
            try:
                out = inflater.decompress(data, INFLATE_SIZE)
            except _INFLATE_ERRORS as exc:
                raise self._error(
                    Code.ARCHIVE_CORRUPT,
                    f"the compressed data is damaged ({exc}); package and upload it again",
                ) from exc
            data = inflater.unconsumed_tail
            if out:
                self._account(len(out), consumed=self.compressed_bytes - len(data))
                yield out
        self._check_trailer(inflater.unused_data)
        self.complete = True

    def _account(self, produced: int, consumed: int) -> None:
        self.uncompressed_bytes += produced
        total = self.uncompressed_bytes
        if total > self._limits.max_total_bytes:
            raise self._error(
                Code.LIMIT_TOTAL_SIZE,
                f"the archive inflates to more than {self._limits.max_total_bytes} bytes",
            )
        if total > self._limits.ratio_grace_bytes and total > self._limits.max_compression_ratio * max(consumed, 1):
            raise self._error(
                Code.LIMIT_COMPRESSION_RATIO,
                f"{consumed} compressed bytes already inflate to {total} bytes, a ratio over "
                f"{self._limits.max_compression_ratio:g}: this looks like a gzip bomb",
            )

    def _check_trailer(self, unused: bytes) -> None:
        trailer = unused or self._read()
        if not trailer:
            return
        if trailer.startswith(GZIP_MAGIC):
            raise self._error(
                Code.ARCHIVE_MULTIPLE_GZIP_MEMBERS,
                "a second gzip stream follows the first; tar tools disagree on whether to read it, "
                "so its content could hide from validation: write the archive in one piece",
            )
        raise self._error(
            Code.ARCHIVE_TRAILING_BYTES,
            "bytes follow the end of the gzip stream (an appended or partly overwritten file)",
        )
