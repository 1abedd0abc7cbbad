"""A strict reader of the zip archive a ``.pt2`` file is, written for files nobody vouches for.

Two zip readers can disagree about one file: Python's :mod:`zipfile` takes the last of two
entries of one name, torch's reader (miniz) the first; a reader that walks local headers sees
entries the central directory hides. A safety check made with one reader is worthless when
another one loads the file. So an untrusted ``.pt2`` is read by :class:`Pt2Archive` alone, and
it accepts only an archive every reader reads the same way:

- one end-of-central-directory record at the very end (no trailing bytes, one disk), ZIP64 when
  the sizes need it;
- every central-directory entry's local header at its offset, with the same name, method and
  flags (and sizes and CRC when the header carries them); the entries, their data and their
  data descriptors tile the file from byte 0 to the central directory with no gap and no
  overlap, so no entry hides between them;
- unique names (also compared case-folded), relative paths without ``..``, ``.``, empty parts,
  backslashes or control characters;
- no encryption; stored entries (what ``torch.export.save`` writes) or deflated ones, inflated
  to exactly their declared size, at most 1 GiB (a size bomb stops at the bound); every entry's CRC-32 checked.

Nothing in the archive is interpreted here; :mod:`.pt2_program` reads the program from it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .errors import ModelLoadError

MAX_ENTRIES = 100_000
MAX_ENTRY_BYTES = 1 << 36  # 64 GiB: no model entry is larger; bounds a declared size
MAX_INFLATED_BYTES = 1 << 30  # a deflated entry inflates to at most 1 GiB
MAX_NAME_BYTES = 1024

_EOCD = struct.Struct("<IHHHHIIH")  # end of central directory
_EOCD64 = struct.Struct("<IQHHIIQQQQ")  # ZIP64 end of central directory
_EOCD64_LOCATOR = struct.Struct("<IIQI")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_SIG_EOCD, _SIG_EOCD64, _SIG_LOCATOR = 0x06054B50, 0x06064B50, 0x07064B50
_SIG_CENTRAL, _SIG_LOCAL, _SIG_DESCRIPTOR = 0x02014B50, 0x04034B50, 0x08074B50
_FLAG_ENCRYPTED, _FLAG_DESCRIPTOR, _FLAG_STRONG, _FLAG_MASKED = 0x1, 0x8, 0x40, 0x2000
_STORED, _DEFLATED = 0, 8


@dataclass(frozen=True)
class Entry:
    """One file in the archive: its name, where its data lies, and how it is stored."""

    name: str
    method: int
    crc: int
    compressed: int
    size: int
    header: int  # offset of the local header
    data: int  # offset of the data
    end: int  # offset after the data
    flags: int = 0


class Pt2Archive:
    """A zip archive read strictly (see the module docstring) from ``data``.

    Args:
        data: the whole file.
        source: the file's name, for messages.

    Raises :class:`~spikebridge.loading.errors.ModelLoadError` naming ``source`` and the entry
    for anything the reader refuses.
    """

    def __init__(self, data: bytes, source: str) -> None:
        self.source = source
        self._data = memoryview(data)
        self.entries: dict[str, Entry] = {}
        self._read_directory()

    # -- errors -----------------------------------------------------------------------------

    def _error(self, problem: str) -> ModelLoadError:
        return ModelLoadError(
            f"{self.source}: not a well-formed .pt2 archive: {problem}. torch.export.save "
            "never writes this; the file is damaged or was altered. Save the program again "
            "with torch.export.save"
        )

    # -- the central directory --------------------------------------------------------------

    def _end_record(self) -> tuple[int, int, int, int]:
        """(entries, directory size, directory offset, directory end) from the end records."""
        data = self._data
        n = len(data)
        if n < _EOCD.size:
            raise self._error("too short to be a zip archive")
        found = None
        for pos in range(n - _EOCD.size, max(-1, n - _EOCD.size - 0xFFFF - 1), -1):
            if data[pos : pos + 4] == b"PK\x05\x06":
                fields = _EOCD.unpack_from(data, pos)
                if pos + _EOCD.size + fields[7] == n:  # the comment ends the file exactly
                    found = pos, fields
                    break
        if found is None:
            raise self._error("no end-of-central-directory record at the end of the file")
        pos, (_, disk, cd_disk, here, total, size, offset, _) = found
        if disk != 0 or cd_disk != 0 or here != total:
            raise self._error("a multi-disk (split) archive")
        at = pos - _EOCD64_LOCATOR.size
        if at >= 0 and self._data[at : at + 4] == b"PK\x06\x07":  # torch always writes one
            total64, size64, offset64, record = self._zip64_end(pos)
            for short, wide, saturated in ((total, total64, 0xFFFF), (size, size64, 0xFFFFFFFF)):
                if short not in (wide, saturated):
                    raise self._error("the ZIP64 end record disagrees with the end record")
            if offset not in (offset64, 0xFFFFFFFF):
                raise self._error("the ZIP64 end record disagrees with the end record")
            return total64, size64, offset64, record
        if 0xFFFF in (here, total) or 0xFFFFFFFF in (size, offset):
            raise self._error("a ZIP64 archive without its end-record locator")
        return total, size, offset, pos

    def _zip64_end(self, eocd: int) -> tuple[int, int, int, int]:
        at = eocd - _EOCD64_LOCATOR.size
        if at < 0:
            raise self._error("a ZIP64 archive without its end-record locator")
        sig, disk, record, disks = _EOCD64_LOCATOR.unpack_from(self._data, at)
        if sig != _SIG_LOCATOR or disk != 0 or disks != 1:
            raise self._error("a ZIP64 archive without a valid end-record locator")
        if record + _EOCD64.size > at:
            raise self._error("a ZIP64 end record outside the file")
        fields = _EOCD64.unpack_from(self._data, record)
        sig, rec_size, _, _, disk, cd_disk, here, total, size, offset = fields
        if sig != _SIG_EOCD64 or disk or cd_disk or here != total:
            raise self._error("a bad ZIP64 end record")
        if record + 12 + rec_size != at:
            raise self._error("bytes between the ZIP64 end record and its locator")
        return total, size, offset, record

    def _read_directory(self) -> None:
        data = self._data
        total, size, offset, end = self._end_record()
        if total > MAX_ENTRIES:
            raise self._error(f"{total} entries (at most {MAX_ENTRIES})")
        if offset + size != end:
            raise self._error("the central directory does not end where its end record begins")
        pos = offset
        seen: dict[str, str] = {}
        entries: list[Entry] = []
        for _ in range(total):
            if pos + _CENTRAL.size > end:
                raise self._error("the central directory is shorter than its entry count")
            fields = _CENTRAL.unpack_from(data, pos)
            (sig, _, _, flags, method, _, _, crc, csize, usize) = fields[:10]
            name_len, extra_len, comment_len, disk = fields[10:14]
            header = fields[16]
            if sig != _SIG_CENTRAL:
                raise self._error(f"a bad central-directory record at byte {pos}")
            start = pos + _CENTRAL.size
            raw_name = bytes(data[start : start + name_len])
            extra = bytes(data[start + name_len : start + name_len + extra_len])
            pos = start + name_len + extra_len + comment_len
            if pos > end:
                raise self._error("a central-directory record runs past the directory")
            name = self._name(raw_name, flags)
            if disk not in (0, 0xFFFF):
                raise self._error(f"entry {name!r} on another disk")
            usize, csize, header = self._zip64_sizes(name, extra, usize, csize, header)
            key = name.casefold()
            if key in seen:
                also = f" (also as {seen[key]!r})" if seen[key] != name else ""
                raise self._error(
                    f"the entry name {name!r} appears twice{also}: readers disagree on which "
                    "copy counts"
                )
            seen[key] = name
            self._check_method(name, flags, method, usize, csize)
            entries.append(self._local(name, raw_name, flags, method, crc, csize, usize, header))
        if pos != end:
            raise self._error("bytes after the last central-directory record")
        self._check_tiling(entries, offset)
        for entry in entries:
            self.entries[entry.name] = entry

    def _name(self, raw: bytes, flags: int) -> str:
        if not raw or len(raw) > MAX_NAME_BYTES:
            raise self._error(f"an entry name of {len(raw)} bytes")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._error(f"the entry name {raw!r} is not UTF-8") from None
        parts = name.split("/")
        if name.endswith("/"):  # a folder entry
            parts = parts[:-1]
        bad = (
            name.startswith("/")
            or "\\" in name
            or any(ord(c) < 32 or ord(c) == 127 for c in name)
            or any(p in ("", ".", "..") for p in parts)
            or ":" in parts[0]
        )
        if bad:
            raise self._error(f"the entry name {name!r} is not a plain relative path")
        return name

    def _zip64_sizes(
        self, name: str, extra: bytes, usize: int, csize: int, header: int
    ) -> tuple[int, int, int]:
        if 0xFFFFFFFF not in (usize, csize, header):
            return usize, csize, header
        pos = 0
        while pos + 4 <= len(extra):
            tag, length = struct.unpack_from("<HH", extra, pos)
            body = extra[pos + 4 : pos + 4 + length]
            pos += 4 + length
            if tag != 0x0001:
                continue
            values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
            out = []
            for value in (usize, csize, header):
                if value == 0xFFFFFFFF:
                    if not values:
                        break
                    value = values.pop(0)
                out.append(value)
            if len(out) == 3:
                return out[0], out[1], out[2]
        raise self._error(f"entry {name!r} lacks its ZIP64 sizes")

    def _check_method(self, name: str, flags: int, method: int, usize: int, csize: int) -> None:
        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG | _FLAG_MASKED):
            raise self._error(f"entry {name!r} is encrypted")
        if method == _STORED:
            if usize != csize:
                raise self._error(f"stored entry {name!r} declares two sizes")
        elif method == _DEFLATED:
            if usize > MAX_INFLATED_BYTES:
                raise self._error(f"deflated entry {name!r} declares {usize} bytes")
        else:
            raise self._error(f"entry {name!r} uses compression method {method}")
        if usize > MAX_ENTRY_BYTES or csize > MAX_ENTRY_BYTES:
            raise self._error(f"entry {name!r} declares {max(usize, csize)} bytes")

    def _local(
        self,
        name: str,
        raw_name: bytes,
        flags: int,
        method: int,
        crc: int,
        csize: int,
        usize: int,
        header: int,
    ) -> Entry:
        data = self._data
        if header + _LOCAL.size > len(data):
            raise self._error(f"entry {name!r}: its local header lies outside the file")
        fields = _LOCAL.unpack_from(data, header)
        sig, _, l_flags, l_method, _, _, l_crc, l_csize, l_usize, name_len, extra_len = fields
        if sig != _SIG_LOCAL:
            raise self._error(f"entry {name!r}: no local header at byte {header}")
        local_name = bytes(data[header + _LOCAL.size : header + _LOCAL.size + name_len])
        if local_name != raw_name:
            raise self._error(
                f"entry {name!r} is named {local_name.decode('utf-8', 'replace')!r} in its "
                "local header: readers disagree on its name"
            )
        if l_method != method or (l_flags ^ flags) & (_FLAG_ENCRYPTED | _FLAG_DESCRIPTOR):
            raise self._error(f"entry {name!r}: its local header disagrees with the directory")
        if not flags & _FLAG_DESCRIPTOR:
            sizes_ok = (l_csize, l_usize) == (csize, usize) or (
                (l_csize, l_usize) == (0xFFFFFFFF, 0xFFFFFFFF)
            )
            if l_crc != crc or not sizes_ok:
                raise self._error(f"entry {name!r}: its local sizes or CRC disagree")
        start = header + _LOCAL.size + name_len + extra_len
        stop = start + csize
        if stop > len(data):
            raise self._error(f"entry {name!r}: its data runs past the end of the file")
        return Entry(name, method, crc, csize, usize, header, start, stop, flags)

    def _descriptor_end(self, entry: Entry, next_start: int) -> bool:
        """Whether a data descriptor (in any of its four forms) ends ``entry`` at ``next_start``."""
        data = self._data
        pos = entry.end
        for signed in (True, False):
            for wide in (False, True):
                fmt = "<IQQ" if wide else "<III"
                length = (4 if signed else 0) + struct.calcsize(fmt)
                if pos + length != next_start:
                    continue
                at = pos
                if signed:
                    if struct.unpack_from("<I", data, at)[0] != _SIG_DESCRIPTOR:
                        continue
                    at += 4
                crc, csize, usize = struct.unpack_from(fmt, data, at)
                if (crc, csize, usize) == (entry.crc, entry.compressed, entry.size):
                    return True
        return False

    def _check_tiling(self, entries: list[Entry], directory: int) -> None:
        """Entries, in file order, cover bytes 0..directory with no gap, overlap or hidden entry."""
        ordered = sorted(entries, key=lambda e: e.header)
        pos = 0
        for i, entry in enumerate(ordered):
            if entry.header != pos:
                what = "a gap (room for a hidden entry)" if entry.header > pos else "an overlap"
                raise self._error(f"{what} before entry {entry.name!r} at byte {pos}")
            nxt = ordered[i + 1].header if i + 1 < len(ordered) else directory
            if entry.end == nxt:
                pos = nxt
                continue
            if entry.flags & _FLAG_DESCRIPTOR and self._descriptor_end(entry, nxt):
                pos = nxt
                continue
            raise self._error(f"unaccounted bytes after entry {entry.name!r} at byte {entry.end}")
        if pos != directory:
            raise self._error("the central directory does not follow the last entry")

    # -- reading ----------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def read(self, name: str, limit: int | None = None) -> memoryview:
        """The bytes of entry ``name`` (CRC checked); ``limit`` bounds the size accepted."""
        entry = self.entries.get(name)
        if entry is None:
            raise self._error(f"the entry {name!r} is missing")
        if limit is not None and entry.size > limit:
            raise self._error(f"entry {name!r} holds {entry.size} bytes (at most {limit} here)")
        raw = self._data[entry.data : entry.data + entry.compressed]
        if entry.method == _DEFLATED:
            inflater = zlib.decompressobj(-15)
            try:
                out = inflater.decompress(raw, entry.size + 1)
            except zlib.error as err:
                raise self._error(f"entry {name!r} does not inflate ({err})") from err
            if len(out) != entry.size or not inflater.eof:
                raise self._error(f"entry {name!r} does not inflate to its declared size")
            data = memoryview(out)
        else:
            data = raw
        if zlib.crc32(data) != entry.crc:
            raise self._error(f"the entry {name!r} is damaged (CRC mismatch)")
        return data


__all__ = ["MAX_ENTRY_BYTES", "Entry", "Pt2Archive"]
