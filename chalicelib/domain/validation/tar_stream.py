"""A strict, push-style tar parser for the validator.

Why not ``tarfile``: it buffers pax and GNU long-name data of any declared size (unbounded
memory), silently stops at the first bad header after the first member, and its stream mode
reads in 10 KiB steps. This parser reads ustar, pax and GNU headers exactly as ``tarfile``
does, but refuses every case where tools could disagree (bad checksums, data hidden after the
end marker, non-files carrying data, stacked extended headers), so an archive it accepts has
the same members under every reader.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from chalicelib.domain.validation.findings import Code, Finding
from chalicelib.domain.validation.gzip_stream import ArchiveStreamError
from chalicelib.domain.validation.limits import ArchiveLimits

BLOCK = 512
USTAR_MAGIC = b"ustar\x0000"
GNU_MAGIC = b"ustar  \x00"

KIND_BY_TYPEFLAG = {
    b"0": "file",
    b"\x00": "file",
    b"5": "dir",
    b"2": "symlink",
    b"1": "hardlink",
    b"3": "chardev",
    b"4": "blockdev",
    b"6": "fifo",
    b"7": "contiguous",
    b"S": "sparse",
    b"V": "volume",
    b"M": "multivolume",
}
# Types tarfile reads without skipping their data: they must carry none, or readers disagree.
NO_DATA_KINDS = {"dir", "symlink", "hardlink", "chardev", "blockdev", "fifo"}
# pax keywords that change which member or which bytes a reader sees.
PAX_MEMBER_KEYS = {"path", "linkpath", "size"}
_PAX_RECORD = re.compile(rb"(\d+) ")


@dataclass(frozen=True)
class TarEntry:
    """One member as a reader sees it after extended headers are applied."""

    name: str  # as recorded (not normalised)
    kind: str
    size: int
    linkname: str
    offset: int  # of its header in the uncompressed stream


class MemberSink(Protocol):
    def write(self, data: memoryview) -> None: ...
    def close(self) -> None: ...


class _State(Enum):
    HEADER = 1
    DATA = 2
    META = 3
    END = 4


@dataclass
class _Pending:
    """Extended-header values waiting for the member they describe."""

    pax: dict[str, str] = field(default_factory=dict)
    longname: str | None = None
    longlink: str | None = None
    seen: set[bytes] = field(default_factory=set)


def _nts(raw: bytes) -> bytes:
    end = raw.find(b"\x00")
    return raw if end == -1 else raw[:end]


class TarStreamParser:
    """Feed it decompressed bytes; it calls ``on_member`` per member and streams data to sinks."""

    def __init__(
        self,
        on_member: Callable[[TarEntry], MemberSink | None],
        limits: ArchiveLimits,
        path: str = "",
    ) -> None:
        self._on_member = on_member
        self._limits = limits
        self._path = path
        self._state = _State.HEADER
        self._header = bytearray()
        self._meta = bytearray()
        self._meta_type = b""
        self._meta_size = 0
        self._remaining = 0  # data bytes of the current member still to come
        self._padding = 0  # zero padding after them
        self._sink: MemberSink | None = None
        self._pending = _Pending()
        self._offset = 0  # of the next byte fed
        self._headers = 0
        self.saw_end_marker = False

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        pos, size = 0, len(view)
        while pos < size:
            if self._state is _State.DATA:
                pos += self._feed_data(view, pos)
            elif self._state is _State.HEADER:
                take = min(BLOCK - len(self._header), size - pos)
                self._header += view[pos : pos + take]
                pos += take
                if len(self._header) == BLOCK:
                    header_offset = self._offset + pos - BLOCK
                    block = bytes(self._header)
                    self._header.clear()
                    self._on_header(block, header_offset)
            elif self._state is _State.META:
                take = min(self._meta_size - len(self._meta), size - pos)
                self._meta += view[pos : pos + take]
                pos += take
                if len(self._meta) == self._meta_size:
                    self._state = _State.DATA
                    self._remaining, self._padding = 0, _padding(self._meta_size)
                    self._apply_meta()
            else:  # END: only zero bytes may follow the end-of-archive marker
                if any(view[pos:]):
                    raise self._error(
                        Code.TAR_DATA_AFTER_END,
                        "data follows the tar end-of-archive marker: most tools stop reading "
                        "there, so members after it would be hidden from validation",
                    )
                pos = size
        self._offset += size

    def _feed_data(self, view: memoryview, pos: int) -> int:
        available = len(view) - pos
        if self._remaining:
            take = min(self._remaining, available)
            if self._sink is not None:
                self._sink.write(view[pos : pos + take])
            self._remaining -= take
            if self._remaining == 0 and self._sink is not None:
                self._sink.close()
                self._sink = None
            if self._remaining or take == available:
                return take
            pos, available, consumed = pos + take, available - take, take
        else:
            consumed = 0
        skip = min(self._padding, available)
        self._padding -= skip
        if self._padding == 0:
            self._state = _State.HEADER
        return consumed + skip

    def close(self) -> None:
        """End of input: raise if the tar stream stopped mid-member."""
        if self._state is _State.END:
            return
        if self._state is _State.HEADER and not self._header and not self._pending.seen:
            return  # a clean stop at a header boundary, only without the end marker
        raise self._error(
            Code.ARCHIVE_TRUNCATED,
            f"the tar stream ends inside a member (at byte {self._offset}): the archive was cut short",
        )

    # -- headers ---------------------------------------------------------------------------
    def _on_header(self, block: bytes, offset: int) -> None:
        if not any(block):
            if self._pending.seen:
                raise self._error(Code.TAR_HEADER_INVALID, "an extended header is followed by the end marker")
            self._state = _State.END
            self.saw_end_marker = True
            return
        self._headers += 1
        if self._headers > self._limits.max_members:
            raise self._error(Code.LIMIT_MEMBER_COUNT, f"the archive has more than {self._limits.max_members} members")
        self._check_checksum(block, offset)
        magic = block[257:265]
        if magic not in (USTAR_MAGIC, GNU_MAGIC):
            raise self._error(
                Code.TAR_HEADER_INVALID,
                f"header at byte {offset} is not ustar, pax or GNU (old v7 or another format)",
            )
        prefix_field = _nts(block[345:500])
        if magic == GNU_MAGIC and any(block[345:500]):
            raise self._error(
                Code.TAR_HEADER_INVALID,
                f"GNU header at byte {offset} uses incremental or sparse fields",
            )
        typeflag = block[156:157]
        size = self._number(block[124:136], offset)
        for lo, hi in ((100, 108), (108, 116), (116, 124), (136, 148), (329, 337), (337, 345)):
            self._number(block[lo:hi], offset)

        if typeflag in (b"x", b"g", b"L", b"K"):
            self._start_meta(typeflag, size, offset)
            return

        name = self._text(_nts(block[0:100]), offset)
        kind = KIND_BY_TYPEFLAG.get(typeflag, "unknown")
        if typeflag == b"\x00" and name.endswith("/"):
            kind = "dir"  # v7 convention, as tarfile reads it
        if prefix_field and magic == USTAR_MAGIC:
            name = self._text(prefix_field, offset) + "/" + name
        linkname = self._text(_nts(block[157:257]), offset)
        pending, self._pending = self._pending, _Pending()
        if pending.longname is not None:
            name = pending.longname
        if pending.longlink is not None:
            linkname = pending.longlink
        if "path" in pending.pax:
            name = pending.pax["path"]
        if "linkpath" in pending.pax:
            linkname = pending.pax["linkpath"]
        if "size" in pending.pax:
            size = self._pax_size(pending.pax["size"], offset)
        if kind in NO_DATA_KINDS and size:
            raise self._error(
                Code.TAR_HEADER_INVALID,
                f"'{name}' is a {kind} but declares {size} data bytes; readers disagree on such members",
            )
        entry = TarEntry(name=name, kind=kind, size=size, linkname=linkname, offset=offset)
        self._sink = self._on_member(entry)
        self._remaining, self._padding = size, _padding(size)
        self._state = _State.DATA
        if size == 0 and self._sink is not None:
            self._sink.close()
            self._sink = None

    def _start_meta(self, typeflag: bytes, size: int, offset: int) -> None:
        pending = self._pending
        if (
            typeflag in pending.seen
            or (typeflag == b"x" and pending.seen & {b"L", b"K"})
            or (typeflag in (b"L", b"K") and b"x" in pending.seen)
        ):
            raise self._error(
                Code.TAR_HEADER_INVALID,
                f"stacked extended headers at byte {offset}; readers apply them differently",
            )
        if size > self._limits.max_tar_metadata_bytes:
            raise self._error(
                Code.LIMIT_MEMBER_SIZE,
                f"an extended tar header at byte {offset} declares {size} bytes "
                f"(bound {self._limits.max_tar_metadata_bytes})",
            )
        if typeflag != b"g":
            pending.seen.add(typeflag)
        self._meta_type, self._meta_size = typeflag, size
        self._meta.clear()
        self._state = _State.META
        if size == 0:
            self._state = _State.DATA
            self._remaining, self._padding = 0, 0
            self._apply_meta()

    def _apply_meta(self) -> None:
        data, kind = bytes(self._meta), self._meta_type
        self._meta.clear()
        if kind == b"L":
            self._pending.longname = self._text(_nts(data), self._offset)
        elif kind == b"K":
            self._pending.longlink = self._text(_nts(data), self._offset)
        else:
            records = self._pax_records(data)
            if kind == b"g":
                if PAX_MEMBER_KEYS & records.keys() or any(k.startswith("GNU.sparse") for k in records):
                    raise self._error(
                        Code.TAR_HEADER_INVALID,
                        "a global pax header changes member names or sizes; readers disagree on it",
                    )
                return
            self._pending.pax = records
        if self._padding == 0:
            self._state = _State.HEADER

    def _pax_records(self, data: bytes) -> dict[str, str]:
        records: dict[str, str] = {}
        pos = 0
        while pos < len(data) and data[pos] != 0:
            match = _PAX_RECORD.match(data, pos)
            length = int(match.group(1)) if match else 0
            record = data[pos : pos + length]
            if not match or length <= len(match.group(0)) or not record.endswith(b"\n") or b"=" not in record:
                raise self._error(Code.TAR_HEADER_INVALID, "a pax extended header is malformed")
            key_raw, value_raw = record[len(match.group(0)) : -1].split(b"=", 1)
            key = self._text(key_raw, self._offset)
            if key.startswith("GNU.sparse") or (key == "hdrcharset" and value_raw != b"ISO-IR 10646 2000 UTF-8"):
                raise self._error(Code.MEMBER_TYPE_UNSUPPORTED, f"pax header uses '{key}' (sparse or binary names)")
            records[key] = self._text(value_raw, self._offset)
            pos += length
        if any(data[pos:]):
            raise self._error(Code.TAR_HEADER_INVALID, "a pax extended header has trailing bytes")
        return records

    # -- field decoding --------------------------------------------------------------------
    def _check_checksum(self, block: bytes, offset: int) -> None:
        stored = self._number(block[148:156], offset)
        unsigned = sum(block[:148]) + sum(block[156:]) + 8 * 0x20
        signed = sum(b - 256 if b > 127 else b for b in block[:148] + block[156:]) + 8 * 0x20
        if stored not in (unsigned, signed):
            raise self._error(
                Code.TAR_HEADER_INVALID,
                f"tar header at byte {offset} has a bad checksum: the archive is damaged",
            )

    def _number(self, raw: bytes, offset: int) -> int:
        if raw and raw[0] in (0o200, 0o377):  # GNU base-256
            value = 0
            for byte in raw[1:]:
                value = (value << 8) + byte
            return value - (256 ** (len(raw) - 1)) if raw[0] == 0o377 else value
        text = _nts(raw).strip(b" ")
        try:
            return int(text or b"0", 8)
        except ValueError:
            raise self._error(Code.TAR_HEADER_INVALID, f"tar header at byte {offset} has a bad number field") from None

    def _pax_size(self, value: str, offset: int) -> int:
        if not value.isascii() or not value.isdigit():
            raise self._error(Code.TAR_HEADER_INVALID, f"pax size '{value}' at byte {offset} is not a number")
        return int(value)

    def _text(self, raw: bytes, offset: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._error(
                Code.MEMBER_PATH_INVALID, f"a name in the tar header at byte {offset} is not valid UTF-8"
            ) from None

    def _error(self, code: Code, message: str) -> ArchiveStreamError:
        return ArchiveStreamError(Finding.of(code, self._path, message))


def _padding(size: int) -> int:
    return -size % BLOCK
