"""Finding input files and reading what a sender needs from them, cheaply.

``read_file_info`` reads the file meta and walks the data set's element
headers (seeking over values, never decoding them) to catch files that are
not DICOM or were cut short. On the way it reads the data set's own SOP Class
and Instance UIDs (which a sender must use: they may differ from the file
meta's) and notes whether there is Pixel Data. It does not load pixel data.
"""

from __future__ import annotations

import functools
import io
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO
from pathlib import Path

from dcmcli.errors import ExitCode, worst
from dcmcli.records import dataclass
from dcmcli.uids import DEFLATED as DeflatedExplicitVRLittleEndian
from dcmcli.uids import EBE as ExplicitVRBigEndian
from dcmcli.uids import ELE as ExplicitVRLittleEndian
from dcmcli.uids import ILE as ImplicitVRLittleEndian

MEDIA_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"

# VRs with a 2-byte reserved field and a 4-byte length in explicit VR.
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED = 0xFFFFFFFF
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
PIXEL_DATA = 0x7FE00010
_SOP_UIDS = frozenset({SOP_CLASS_UID, SOP_INSTANCE_UID})


class InvalidFile(Exception):
    """The file is not usable DICOM; the message says why, in plain words."""


class UnreadableFile(InvalidFile):
    """The file cannot be read at all (permissions, I/O error): not a verdict on its content."""


@dataclass(frozen=True)
class FileInfo:
    """What a sender needs from a file. ``sop_class_uid`` and
    ``sop_instance_uid`` are the data set's (0008,0016) and (0008,0018), what
    a C-STORE must name; the file meta's (0002,0002) and (0002,0003) are kept
    as ``media_*`` and differ only in a damaged file (``warning`` says so).
    ``has_pixels`` is False only when the walk saw the whole data set and no
    (7FE0,0010) Pixel Data in it."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    size: int
    dataset_offset: int
    media_sop_class_uid: str = ""
    media_sop_instance_uid: str = ""
    has_pixels: bool = True

    @property
    def warning(self) -> str | None:
        """A one-line note when the file meta and the data set disagree, else None."""
        notes = [f"{label} {ds_value} in the data set but {meta} in the file meta"
                 for label, ds_value, meta in (("SOP Class UID", self.sop_class_uid, self.media_sop_class_uid),
                                               ("SOP Instance UID", self.sop_instance_uid,
                                                self.media_sop_instance_uid))
                 if meta and meta != ds_value]
        if not notes:
            return None
        return f"{'; '.join(notes)}; the data set's value is used"

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "sop_class_uid": self.sop_class_uid,
            "sop_instance_uid": self.sop_instance_uid,
            "transfer_syntax": self.transfer_syntax,
            "bytes": self.size,
        }


class _Walker:
    """Walks element headers from the file's current position.

    It reads the file in windows of ``WINDOW`` bytes and skips values by
    moving its own position, so checking a 500 KB image costs one or two
    reads instead of a read, tell and seek per element. ``tell()`` is the
    walker's position; ``sync()`` puts the file there.
    """

    WINDOW = 64 * 1024

    def __init__(self, fp: BinaryIO, size: int, implicit: bool, little: bool) -> None:
        self.fp = fp
        self.size = size
        self.implicit = implicit
        e = "<" if little else ">"
        self._tag = struct.Struct(e + "HH")
        self._u32 = struct.Struct(e + "L")
        self._u16 = struct.Struct(e + "H")
        self.pos = fp.tell()
        self._base = self.pos
        self._buf = b""

    def tell(self) -> int:
        return self.pos

    def sync(self) -> None:
        self.fp.seek(self.pos)

    def _read(self, n: int) -> bytes:
        start = self.pos - self._base
        if start < 0 or start + n > len(self._buf):
            self.fp.seek(self.pos)
            self._buf = self.fp.read(max(n, self.WINDOW))
            self._base = self.pos
            start = 0
        data = self._buf[start:start + n]
        if len(data) < n:
            raise InvalidFile(f"truncated: the file ends at byte {self.size} inside an element header")
        self.pos += n
        return data

    def read(self, n: int) -> bytes:
        """A value of ``n`` bytes (long values are read straight from the file)."""
        if n > self.WINDOW:
            self.fp.seek(self.pos)
            data = self.fp.read(n)
            self.pos += len(data)
            return data
        return self._read(n)

    def _skip(self, length: int, tag: tuple[int, int]) -> None:
        if self.pos + length > self.size:
            raise InvalidFile(
                f"truncated: element ({tag[0]:04X},{tag[1]:04X}) needs {length} bytes "
                f"but the file ends {self.size - self.pos} bytes later")
        self.pos += length

    def peek_group(self) -> int | None:
        """The group of the next element, without moving; None at the end."""
        if self.pos + 2 > self.size:
            return None
        group = self._u16.unpack(self._read(2))[0]
        self.pos -= 2
        return int(group)

    def _header(self) -> tuple[tuple[int, int], bytes | None, int]:
        group, elem = self._tag.unpack(self._read(4))
        if group == 0xFFFE or self.implicit:  # items and delimiters never carry a VR
            return (group, elem), None, self._u32.unpack(self._read(4))[0]
        vr = self._read(2)
        if vr in _LONG_VRS:
            self._read(2)
            (length,) = self._u32.unpack(self._read(4))
        else:
            if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
                raise InvalidFile(f"corrupt: element ({group:04X},{elem:04X}) has no valid VR")
            (length,) = self._u16.unpack(self._read(2))
        return (group, elem), vr, length

    def walk_top_level(self, wanted: frozenset[int]) -> tuple[dict[int, bytes], bool]:
        """``walk_dataset(None)``, also keeping the raw values of the top-level
        elements ``wanted`` and noting whether Pixel Data is there."""
        found: dict[int, bytes] = {}
        pixels = False
        while self.pos < self.size:
            tag, _vr, length = self._header()
            key = (tag[0] << 16) | tag[1]
            if length == _UNDEFINED:
                self.walk_items(tag)
            elif key in wanted:
                self._skip(length, tag)  # checks that the value is there
                self.pos -= length
                found[key] = self.read(length)
            else:
                self._skip(length, tag)
            if key == PIXEL_DATA:
                pixels = True
        return found, pixels

    def walk_dataset(self, end_tag: tuple[int, int] | None) -> None:
        """Walk elements until EOF (top level) or ``end_tag`` (nested)."""
        while True:
            if end_tag is None and self.pos >= self.size:
                return
            tag, vr, length = self._header()
            if end_tag is not None and tag == end_tag:
                return
            if length == _UNDEFINED:
                self.walk_items(tag)
            else:
                self._skip(length, tag)

    def walk_items(self, parent: tuple[int, int]) -> None:
        """Walk the items of an undefined-length sequence or encapsulated pixel data."""
        while True:
            tag, _, length = self._header()
            if tag == (0xFFFE, 0xE0DD):
                return
            if tag != (0xFFFE, 0xE000):
                raise InvalidFile(f"corrupt: unexpected ({tag[0]:04X},{tag[1]:04X}) inside "
                                  f"({parent[0]:04X},{parent[1]:04X})")
            if length == _UNDEFINED:
                self.walk_dataset((0xFFFE, 0xE00D))
            else:
                self._skip(length, tag)


def _pixel_check(native: bool, length: int) -> None:
    if native and length == _UNDEFINED:
        raise InvalidFile("encapsulated (compressed) Pixel Data in an uncompressed transfer syntax")
    if not native and length != _UNDEFINED:
        raise InvalidFile("native Pixel Data in a compressed transfer syntax (it must be encapsulated)")


_IMPLICIT_HEADER = struct.Struct("<HHL").unpack_from
_EXPLICIT_HEADER = struct.Struct("<HH2sHL").unpack_from
#: Any two upper-case letters: a VR this walker skips by its 2-byte length (as the walker below).
_VR_LETTERS = frozenset(bytes((a, b)) for a in range(65, 91) for b in range(65, 91))


def _truncated(group: int, elem: int, length: int, left: int) -> InvalidFile:
    return InvalidFile(f"truncated: element ({group:04X},{elem:04X}) needs {length} bytes "
                       f"but the data set ends {left} bytes later")


def check_received(path: Path, offset: int, transfer_syntax: str, head: bytes | bytearray = b"",
                   size: int | None = None) -> None:
    """Walk the element headers of a received data set (the file from
    ``offset``), as storescu walks what it sends: raise ``InvalidFile`` when
    an element runs past the end, an item is malformed, or Pixel Data is
    encapsulated in an uncompressed transfer syntax (or native in a
    compressed one). Values are skipped, never read.

    ``head``, the data set's first bytes kept in memory, is walked without
    reading the file (one ``unpack_from`` per element: a 47-element CT costs
    about 30 us); the file is read only from the first element that is not
    wholly described there (an undefined length, a header past the head).
    """
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        return  # a zlib stream: walked when it is read
    if size is None:  # the writer knows it (what it wrote): no stat
        size = path.stat().st_size
    total = size - offset
    implicit = transfer_syntax == ImplicitVRLittleEndian
    native = transfer_syntax in (ImplicitVRLittleEndian, ExplicitVRBigEndian, "1.2.840.10008.1.2.1")
    pos = 0
    if transfer_syntax != ExplicitVRBigEndian:
        n = len(head)
        if implicit:
            unpack = _IMPLICIT_HEADER
            while pos < total and pos + 12 <= n:
                group, elem, length = unpack(head, pos)
                if group == 0x7FE0 and elem == 0x0010:
                    _pixel_check(native, length)
                if length == _UNDEFINED:
                    break  # items: the walker below
                if pos + 8 + length > total:
                    raise _truncated(group, elem, length, total - pos - 8)
                pos += 8 + length
        else:
            # one unpack per element (tag, VR, both length layouts): 128 us -> about 60 for a small CT
            unpack = _EXPLICIT_HEADER
            while pos < total and pos + 12 <= n:
                group, elem, vr, short, length = unpack(head, pos)
                if group == 0xFFFE:
                    hdr, length = 8, _IMPLICIT_HEADER(head, pos)[2]
                elif vr in _LONG_VRS:
                    hdr = 12
                elif vr in _VR_LETTERS:
                    hdr, length = 8, short
                else:
                    raise InvalidFile(f"corrupt: element ({group:04X},{elem:04X}) has no valid VR")
                if group == 0x7FE0 and elem == 0x0010:
                    _pixel_check(native, length)
                if length == _UNDEFINED:
                    break  # items: the walker below
                if pos + hdr + length > total:
                    raise _truncated(group, elem, length, total - pos - hdr)
                pos += hdr + length
        if pos >= total:
            return
    with path.open("rb") as fp:
        fp.seek(offset + pos)
        walker = _Walker(fp, size, implicit=implicit, little=(transfer_syntax != ExplicitVRBigEndian))
        while walker.pos < size:
            tag, _vr, length = walker._header()
            if tag == (0x7FE0, 0x0010):
                _pixel_check(native, length)
            if length == _UNDEFINED:
                walker.walk_items(tag)
            else:
                walker._skip(length, tag)


def read_file_info(path: Path, *, check_complete: bool = True) -> FileInfo:
    """Return what a sender needs from a DICOM Part 10 file, or raise ``InvalidFile``."""
    try:
        size = path.stat().st_size
        fp = path.open("rb")
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    try:
        return _read_open_file(path, fp, size, check_complete)
    except OSError as exc:  # an I/O error while reading
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    finally:
        fp.close()


def _read_open_file(path: Path, fp: BinaryIO, size: int, check_complete: bool) -> FileInfo:
    """``read_file_info`` on the opened file."""
    if size == 0:
        raise InvalidFile("empty file")
    head = fp.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        raise InvalidFile("not a DICOM file (no 'DICM' prefix after the 128-byte preamble)")
    meta, offset = _read_meta(fp, size)
    missing = [name for tag, name in ((0x0002, "MediaStorageSOPClassUID"),
                                      (0x0003, "MediaStorageSOPInstanceUID"),
                                      (0x0010, "TransferSyntaxUID")) if not meta.get(tag)]
    if missing:
        raise InvalidFile(f"file meta information lacks {', '.join(missing)}")
    ts = meta[0x0010]
    has_pixels = True  # unless the walk sees the whole data set without it
    fp.seek(offset)
    if ts == DeflatedExplicitVRLittleEndian:
        uids = _deflated_top_level(fp, _SOP_UIDS)
    elif check_complete:
        walker = _Walker(fp, size, implicit=(ts == ImplicitVRLittleEndian), little=(ts != ExplicitVRBigEndian))
        uids, has_pixels = walker.walk_top_level(_SOP_UIDS)
    else:  # only the start of the data set: the UIDs come first
        try:
            uids = scan_top_level(fp, size, ts, set(_SOP_UIDS))
        except InvalidFile:
            uids = {}
    sop_class = _text(uids.get(SOP_CLASS_UID)) or meta[0x0002]
    sop_instance = _text(uids.get(SOP_INSTANCE_UID)) or meta[0x0003]
    return FileInfo(path, sop_class, sop_instance, ts, size, offset, meta[0x0002], meta[0x0003], has_pixels)


def _text(value: bytes | None) -> str:
    return value.decode("ascii", "replace").strip(" \x00") if value else ""


def _deflated_top_level(fp: BinaryIO, wanted: frozenset[int], chunk: int = 64 * 1024) -> dict[int, bytes]:
    """``scan_top_level`` on a deflated data set, inflating only as much as the
    wanted elements need (they come first); {} if the stream is damaged."""
    import io

    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    data = b""
    while True:
        raw = fp.read(chunk)
        try:
            data += inflater.decompress(raw)
        except zlib.error:
            return {}
        try:
            found = scan_top_level(io.BytesIO(data), len(data), ExplicitVRLittleEndian, set(wanted))
        except InvalidFile:  # the inflated part ends inside an element: inflate more
            found = {}
        if len(found) == len(wanted) or not raw:
            return found
        chunk *= 2


def _read_meta(fp: BinaryIO, size: int) -> tuple[dict[int, str], int]:
    """The File Meta Information group (always explicit VR little endian), read
    element by element until the first tag outside group 0002; returns its
    values and the offset of the data set."""
    values: dict[int, str] = {}
    walker = _Walker(fp, size, implicit=False, little=True)
    while walker.peek_group() == 0x0002:
        pos = walker.tell()
        try:
            tag, vr, length = walker._header()
        except InvalidFile:
            raise InvalidFile("truncated inside the file meta information") from None
        if length == _UNDEFINED:
            raise InvalidFile("corrupt file meta information (undefined length)")
        if pos + 8 + length > size:
            raise InvalidFile("truncated inside the file meta information")
        value = walker.read(length)
        if vr in (b"UI", b"AE", b"SH"):
            values[tag[1]] = value.decode("ascii", "replace").strip(" \x00")
    return values, walker.tell()


@dataclass(frozen=True)
class Candidate:
    path: Path
    explicit: bool  # named on the command line (not found by a directory scan)


NO_MATCH = "no file matches this pattern"


def _has_magic(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def find_inputs(args: Iterable[str], *, recurse: bool = True, pattern: str | None = None
                ) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Expand files, directories (recursively unless ``recurse`` is false,
    sorted) and globs; files found in directories are kept only when their
    name matches ``pattern`` (DCMTK's +sp), if given.

    Returns the candidates and a list of (argument, problem) for arguments
    that do not exist or cannot be read.
    """
    found: list[Candidate] = []
    problems: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(p: Path, explicit: bool) -> None:
        if p not in seen:
            seen.add(p)
            found.append(Candidate(p, explicit))

    for arg in args:
        p = Path(arg)
        if p.is_dir():
            for item in _walk(p, problems, recurse, pattern):
                add(item, False)
        elif p.exists():
            add(p, True)
        elif _has_magic(arg):
            import glob

            matches = sorted(glob.glob(arg, recursive=True))
            if not matches:
                problems.append((arg, NO_MATCH))
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    for item in _walk(mp, problems, recurse, pattern):
                        add(item, False)
                else:
                    add(mp, False)
        else:
            problems.append((arg, "no such file or directory"))
    return found, problems


def _walk(root: Path, problems: list[tuple[str, str]], recurse: bool = True,
          pattern: str | None = None) -> Iterator[Path]:
    import fnmatch

    def onerror(exc: OSError) -> None:
        problems.append((str(exc.filename or root), f"cannot read directory: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror):
        if recurse:
            dirnames.sort()
        else:
            dirnames.clear()
        for name in sorted(filenames):
            if pattern is None or fnmatch.fnmatch(name, pattern):
                yield Path(dirpath) / name


def _pad_even(value: bytes, pad: bytes) -> bytes:
    return value + pad if len(value) % 2 else value


def encode_file_meta(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str,
                     source_aet: str | None = None) -> bytes:
    """Preamble, 'DICM' and the File Meta Information group (PS3.10 7.1) as bytes,
    with dcmcli's implementation UID and version name."""
    before, after = _meta_parts(sop_class_uid, transfer_syntax, source_aet or "")
    instance = _short_element(0x0003, b"UI", _pad_even(sop_instance_uid.encode("ascii"), b"\x00"))
    length = len(before) + len(instance) + len(after)
    return _PREAMBLE + _GROUP_LENGTH(0x0002, 0x0000, b"UL", 4, length) + before + instance + after


_PREAMBLE = b"\x00" * 128 + b"DICM"
_GROUP_LENGTH = struct.Struct("<HH2sHL").pack


def _short_element(elem: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH2sH", 0x0002, elem, vr, len(value)) + value


@functools.lru_cache(maxsize=256)
def _meta_parts(sop_class_uid: str, transfer_syntax: str, source_aet: str) -> tuple[bytes, bytes]:
    """The file meta around the SOP Instance UID, the same for every object of a
    class, syntax and sender (a receiver's hot path: built once, not per object)."""
    from dcmcli import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

    before = struct.pack("<HH", 0x0002, 0x0001) + b"OB\x00\x00" + struct.pack("<L", 2) + b"\x00\x01"
    before += _short_element(0x0002, b"UI", _pad_even(sop_class_uid.encode("ascii"), b"\x00"))
    after = _short_element(0x0010, b"UI", _pad_even(transfer_syntax.encode("ascii"), b"\x00"))
    after += _short_element(0x0012, b"UI", _pad_even(IMPLEMENTATION_CLASS_UID.encode("ascii"), b"\x00"))
    after += _short_element(0x0013, b"SH", _pad_even(IMPLEMENTATION_VERSION_NAME.encode("ascii"), b" "))
    if source_aet:
        after += _short_element(0x0016, b"AE", _pad_even(source_aet.encode("ascii", "replace"), b" "))
    return before, after


def read_top_level(path: Path, offset: int, transfer_syntax: str, tags: Iterable[int]) -> dict[int, bytes]:
    """Raw values of the top-level elements ``tags`` (as 0xggggeeee ints).

    Walks element headers from ``offset`` and stops after the highest wanted
    tag, so pixel data is never touched. Deflated data sets are read with
    pydicom instead.
    """
    wanted = set(tags)
    found: dict[int, bytes] = {}
    if not wanted:
        return found
    if transfer_syntax == DeflatedExplicitVRLittleEndian:
        from pydicom import dcmread
        from pydicom.tag import Tag

        ds = dcmread(path, stop_before_pixels=True, specific_tags=[Tag(t) for t in wanted])
        for t in wanted:
            if Tag(t) in ds:
                value = ds[Tag(t)].value
                found[t] = str(value).encode("utf-8", "replace") if value is not None else b""
        return found
    with path.open("rb") as fp:
        fp.seek(offset)
        return scan_top_level(fp, path.stat().st_size, transfer_syntax, wanted)


def scan_buffer(buf: bytes | bytearray, transfer_syntax: str, wanted: set[int]) -> dict[int, bytes]:
    """``scan_top_level`` over bytes in memory (a received
    object's first 64 KB), one ``unpack_from`` per element instead of a
    walker's reads; undefined lengths and big endian go to the walker."""
    if transfer_syntax == ExplicitVRBigEndian:
        return scan_top_level(io.BytesIO(buf), len(buf), transfer_syntax, wanted)
    implicit = transfer_syntax == ImplicitVRLittleEndian
    found: dict[int, bytes] = {}
    highest = max(wanted)
    pos, size = 0, len(buf)
    unpack = struct.unpack_from
    while pos < size:
        if pos + 8 > size:
            raise InvalidFile(f"truncated: the file ends at byte {size} inside an element header")
        group, elem = unpack("<HH", buf, pos)
        key = group << 16 | elem
        if key > highest:
            break
        if implicit or group == 0xFFFE:
            length = unpack("<L", buf, pos + 4)[0]
            pos += 8
        else:
            vr = bytes(buf[pos + 4:pos + 6])
            if vr in _LONG_VRS:
                if pos + 12 > size:
                    raise InvalidFile(f"truncated: the file ends at byte {size} inside an element header")
                length = unpack("<L", buf, pos + 8)[0]
                pos += 12
            else:
                if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
                    raise InvalidFile(f"corrupt: element ({group:04X},{elem:04X}) has no valid VR")
                length = unpack("<H", buf, pos + 6)[0]
                pos += 8
        if length == _UNDEFINED:
            return scan_top_level(io.BytesIO(buf), size, transfer_syntax, wanted)
        if key in wanted:
            if pos + length > size:
                raise InvalidFile("truncated in a wanted element")
            found[key] = bytes(buf[pos:pos + length])
        elif pos + length > size:
            raise InvalidFile(f"truncated: element ({group:04X},{elem:04X}) needs {length} bytes "
                              f"but the file ends {size - pos} bytes later")
        pos += length
    return found


def scan_top_level(fp: BinaryIO, size: int, transfer_syntax: str, wanted: set[int]) -> dict[int, bytes]:
    """``read_top_level`` on an open file (or buffer) positioned at the data set.

    Raises ``InvalidFile`` if the data ends before the wanted elements were
    passed (for a buffer holding only the start of a data set: read more).
    """
    found: dict[int, bytes] = {}
    highest = max(wanted)
    walker = _Walker(fp, size, implicit=(transfer_syntax == ImplicitVRLittleEndian),
                     little=(transfer_syntax != ExplicitVRBigEndian))
    while walker.tell() < size:
        tag, _vr, length = walker._header()
        key = (tag[0] << 16) | tag[1]
        if key > highest:
            break
        if length == _UNDEFINED:
            walker.walk_items(tag)
        elif key in wanted:
            if walker.tell() + length > size:
                raise InvalidFile("truncated in a wanted element")
            found[key] = walker.read(length)
        else:
            walker._skip(length, tag)
    return found


@dataclass(frozen=True)
class Skipped:
    """An input that is not sent: why (for --json), the warning line, and what it does to the exit code."""

    path: str
    reason: str
    warning: str
    exit_code: ExitCode = ExitCode.OK


@dataclass
class Inputs:
    """What the inputs gave. Each problem carries its row of the exit-code
    table: 20 for what does not exist or cannot be read (named, or found in a
    directory), 21 for a pattern that matches nothing, 22 for a file named on
    the command line that is not usable DICOM."""

    files: list[FileInfo]
    unreadable: list[Skipped]  # arguments that do not exist or cannot be read, patterns that match nothing
    skipped: list[Skipped]  # files found but not usable (cannot be read, not DICOM, truncated, DICOMDIR)
    found: int  # files found, usable or not

    def exit_codes(self) -> list[ExitCode]:
        return [s.exit_code for s in self.unreadable + self.skipped if s.exit_code != ExitCode.OK]

    def nothing_to_send(self) -> tuple[ExitCode, str] | None:
        """The exit code and message when no file is usable, else None."""
        if self.files:
            return None
        if any(s.exit_code != ExitCode.INPUT_UNREADABLE for s in self.skipped):  # read, and none is usable
            return ExitCode.NO_VALID_INPUT, f"none of the {self.found} input files is usable DICOM"
        codes = [s.exit_code for s in self.unreadable + self.skipped]
        if worst(*codes) == ExitCode.INPUT_UNREADABLE:
            return ExitCode.INPUT_UNREADABLE, "none of the inputs could be read"
        return ExitCode.NO_INPUT_FILES, "no input files found"


def collect_inputs(args: Iterable[str], *, check_complete: bool = True, action: str = "sent", recurse: bool = True,
                   pattern: str | None = None, read: Callable[[Path], FileInfo] | None = None) -> Inputs:
    """Files, directories and globs to the DICOM files to work on, and what is skipped.

    A file named on the command line that is not usable DICOM makes the exit
    code 22; one found by a directory scan is only a warning; DICOMDIRs are
    never used (``action`` words the message: "sent", "converted"). What does
    not exist or cannot be read makes it 20, wherever it was found; a pattern
    that matches nothing, 21. ``read`` replaces ``read_file_info`` (dcmdir
    reads a file's record keys in the same pass); it raises the same errors.
    """
    candidates, problems = find_inputs(args, recurse=recurse, pattern=pattern)
    unreadable = [Skipped(arg, why, f"{arg}: {why}",
                          ExitCode.NO_INPUT_FILES if why == NO_MATCH else ExitCode.INPUT_UNREADABLE)
                  for arg, why in problems]
    files: list[FileInfo] = []
    skipped: list[Skipped] = []
    for cand in candidates:
        try:
            info = read(cand.path) if read else read_file_info(cand.path, check_complete=check_complete)
        except UnreadableFile as exc:  # found but cannot be read: 20, wherever it was found
            skipped.append(Skipped(str(cand.path), str(exc), f"skipped {cand.path}: {exc}",
                                   ExitCode.INPUT_UNREADABLE))
            continue
        except InvalidFile as exc:
            skipped.append(Skipped(str(cand.path), str(exc), f"skipped {cand.path}: {exc}",
                                   ExitCode.INVALID_INPUT if cand.explicit else ExitCode.OK))
            continue
        if info.sop_class_uid == MEDIA_DIRECTORY_STORAGE:
            skipped.append(Skipped(str(cand.path), f"DICOMDIR (not {action})",
                                   f"skipped {cand.path}: a DICOMDIR is not {action}"))
            continue
        files.append(info)
    return Inputs(files, unreadable, skipped, len(candidates))
