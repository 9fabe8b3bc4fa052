"""A DICOMDIR read and written as bytes (PS3.10 7, PS3.3 F.3).

Reading parses the directory record items with ``struct.unpack_from`` over
the file in memory and keeps each record's elements as their Explicit VR
Little Endian bytes, so that an update writes what another tool wrote
unchanged (only the offsets are new). The records are linked by their
offsets into a tree; every link that does not land on a record, a cycle, a
record nothing links to, is a problem the checker reports.

Writing lays out every record first (the offset elements have fixed sizes,
so each record's place is known before a byte is written), then writes the
whole file into a temporary file next to the DICOMDIR and renames it into
place. Items and the sequence have defined lengths.
"""

from __future__ import annotations

import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import field
from pathlib import Path

from dcmcli.errors import DcmcliError, ExitCode, InputError, OutputError
from dcmcli.media.records import (FILE_ID, KEYWORD_TAG, LONG_VRS, RECORD_TYPE, REF_CLASS,
                                  REF_INSTANCE, REF_SYNTAX, TAGS, element, text_element)
from dcmcli.records import dataclass
from dcmcli.uids import ELE

MEDIA_DIRECTORY_STORAGE = "1.2.840.10008.1.3.10"
_FILESET_ID, _DESCRIPTOR, _DESCRIPTOR_CHARSET = 0x00041130, 0x00041141, 0x00041142
_FIRST, _LAST, _CONSISTENCY, _SEQUENCE = 0x00041200, 0x00041202, 0x00041212, 0x00041220
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


class DicomdirError(DcmcliError):
    """A DICOMDIR that cannot be read as one (truncated, corrupt), or one that fails the check."""

    exit_code = ExitCode.DICOMDIR_INVALID


@dataclass(eq=False)
class Record:
    """One directory record: its elements (Explicit VR Little Endian bytes,
    by tag) without the three structural ones, which the writer computes."""

    elements: dict[int, bytes]
    offset: int = 0
    next_offset: int = 0
    lower_offset: int = 0
    in_use: int = 0xFFFF
    children: list[Record] = field(default_factory=list)
    parent: Record | None = None

    @property
    def type(self) -> str:
        return self.text(RECORD_TYPE)

    def raw(self, tag: int) -> bytes | None:
        elem = self.elements.get(tag)
        if elem is None:
            return None
        return elem[12:] if elem[4:6].decode("ascii", "replace") in LONG_VRS else elem[8:]

    def text(self, tag: int | str) -> str:
        if isinstance(tag, str):
            tag = KEYWORD_TAG[tag]
        value = self.raw(tag)
        return decode_text(value) if value else ""

    @property
    def file_id(self) -> tuple[str, ...] | None:
        value = self.text(FILE_ID)
        return tuple(value.split("\\")) if value else None

    def set_file_id(self, parts: tuple[str, ...]) -> None:
        self.elements[FILE_ID] = text_element(FILE_ID, "\\".join(parts))

    @property
    def sop_instance_uid(self) -> str:
        return self.text(REF_INSTANCE)

    @property
    def sop_class_uid(self) -> str:
        return self.text(REF_CLASS)

    @property
    def transfer_syntax(self) -> str:
        return self.text(REF_SYNTAX)

    def keys(self) -> dict[str, str]:
        """Each element as keyword -> text (sequences as their item count)."""
        out: dict[str, str] = {}
        for tag in sorted(self.elements):
            elem = self.elements[tag]
            name = TAGS.get(tag, (f"({tag >> 16:04X},{tag & 0xFFFF:04X})", ""))[0]
            vr = elem[4:6].decode("ascii", "replace")
            value = self.raw(tag) or b""
            if vr == "SQ":
                n = count_items(elem)
                out[name] = f"<{n} item{'s' if n != 1 else ''}>"
            elif vr == "US":
                out[name] = "\\".join(str(v) for v in struct.unpack(f"<{len(value) // 2}H", value))
            elif vr == "UL":
                out[name] = "\\".join(str(v) for v in struct.unpack(f"<{len(value) // 4}L", value))
            elif vr in ("OB", "OW", "UN"):
                out[name] = f"<{len(value)} bytes>"
            else:
                out[name] = decode_text(value)
        return out

    def walk(self) -> Iterator[Record]:
        yield self
        for child in self.children:
            yield from child.walk()


def decode_text(value: bytes) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    return text.rstrip(" \x00")


def count_items(elem: bytes) -> int:
    """Items in an encoded sequence element."""
    n, pos = 0, 12
    length = struct.unpack_from("<L", elem, 8)[0]
    end = len(elem) if length == _UNDEFINED else 12 + length
    while pos + 8 <= end:
        group, el, ilen = struct.unpack_from("<HHL", elem, pos)
        tag = group << 16 | el
        if tag == _SEQ_END:
            break
        if tag != _ITEM:
            break
        n += 1
        pos = _skip_item(elem, pos, end) if ilen == _UNDEFINED else pos + 8 + ilen
    return n


@dataclass
class Problem:
    """One finding of the reader or the checker."""

    message: str
    offset: int | None = None
    record_type: str | None = None
    file: str | None = None
    rule: str = "structure"

    def line(self, name: str) -> str:
        where = f"record at offset {self.offset} ({self.record_type})" if self.offset is not None else "header"
        return f"{name}: {where}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"offset": self.offset, "record_type": self.record_type, "file": self.file, "rule": self.rule,
                "message": self.message}


@dataclass
class Dicomdir:
    path: Path
    fileset_uid: str
    fileset_id: str = ""
    descriptor: tuple[str, ...] | None = None
    descriptor_charset: str | None = None
    roots: list[Record] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)  # every record read, in file order
    problems: list[Problem] = field(default_factory=list)
    transfer_syntax: str = ELE
    meta_sop_class: str = MEDIA_DIRECTORY_STORAGE

    @property
    def root_dir(self) -> Path:
        return self.path.parent

    def walk(self) -> Iterator[Record]:
        for root in self.roots:
            yield from root.walk()

    def leaves(self) -> Iterator[Record]:
        for rec in self.walk():
            if rec.file_id is not None:
                yield rec

    def file_path(self, rec: Record) -> Path | None:
        parts = rec.file_id
        return self.root_dir.joinpath(*parts) if parts else None


# -- reading ----------------------------------------------------------------------

def _truncated(pos: int, size: int) -> DicomdirError:
    return DicomdirError(f"truncated or corrupt: an element at byte {pos} runs past the end of the file "
                         f"({size} bytes)", "the DICOMDIR cannot be read; make it again with dcmcli dcmdir create")


def _header(buf: bytes, pos: int, size: int) -> tuple[int, str | None, int, int]:
    """(tag, VR, value length, header length) of the element at ``pos``."""
    if pos + 8 > size:
        raise _truncated(pos, size)
    group, el = struct.unpack_from("<HH", buf, pos)
    tag = group << 16 | el
    if group == 0xFFFE:
        return tag, None, struct.unpack_from("<L", buf, pos + 4)[0], 8
    vr = buf[pos + 4:pos + 6]
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise DicomdirError(f"corrupt: element ({group:04X},{el:04X}) at byte {pos} has no valid VR",
                            "the DICOMDIR cannot be read; make it again with dcmcli dcmdir create")
    v = vr.decode("ascii")
    if v in LONG_VRS:
        if pos + 12 > size:
            raise _truncated(pos, size)
        return tag, v, struct.unpack_from("<L", buf, pos + 8)[0], 12
    return tag, v, struct.unpack_from("<H", buf, pos + 6)[0], 8


def _skip_item(buf: bytes, pos: int, size: int) -> int:
    """The end of an undefined-length item starting at ``pos``."""
    pos += 8
    while True:
        tag, vr, length, hl = _header(buf, pos, size)
        if tag == _ITEM_END:
            return pos + 8
        pos = _element_end(buf, pos, size, vr, length, hl)


def _skip_sequence(buf: bytes, pos: int, size: int) -> int:
    """The end of an undefined-length sequence whose items start at ``pos``."""
    while True:
        tag, _vr, length, _hl = _header(buf, pos, size)
        if tag == _SEQ_END:
            return pos + 8
        if tag != _ITEM:
            raise DicomdirError(f"corrupt: ({tag >> 16:04X},{tag & 0xFFFF:04X}) at byte {pos} inside a sequence",
                                "the DICOMDIR cannot be read; make it again with dcmcli dcmdir create")
        pos = _skip_item(buf, pos, size) if length == _UNDEFINED else pos + 8 + length


def _element_end(buf: bytes, pos: int, size: int, vr: str | None, length: int, hl: int) -> int:
    if length == _UNDEFINED:
        if vr not in ("SQ", "UN", "OB"):
            raise DicomdirError(f"corrupt: undefined length on a {vr} element at byte {pos}",
                                "the DICOMDIR cannot be read; make it again with dcmcli dcmdir create")
        return _skip_sequence(buf, pos + hl, size)
    end = pos + hl + length
    if end > size:
        raise _truncated(pos, size)
    return end


def split_elements(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The top-level elements of an Explicit VR Little Endian data set, each as its bytes."""
    pos, size = 0, len(data)
    while pos < size:
        tag, vr, length, hl = _header(data, pos, size)
        end = _element_end(data, pos, size, vr, length, hl)
        yield tag, data[pos:end]
        pos = end


_VRS = frozenset(b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR "
                 b"US UT UV".split())
_LONG = frozenset(v.encode() for v in LONG_VRS)
_HDR = struct.Struct("<HH2sH").unpack_from
_UL = struct.Struct("<L").unpack_from


def _parse_record(buf: bytes, pos: int, size: int, end: int | None) -> tuple[Record, int]:
    """The record item at ``pos`` (its item header read already: body from
    ``pos``; ``end`` None for an undefined length). One loop, headers
    unpacked in place: the reader's hot path."""
    elements: dict[int, bytes] = {}
    rec = Record(elements)
    limit = size if end is None else end
    header, ul = _HDR, _UL
    vrs, long_vrs = _VRS, _LONG
    try:
        while end is None or pos < end:
            group, el, vr, length = header(buf, pos)
            if vr in long_vrs:
                length = ul(buf, pos + 8)[0]
                if length == _UNDEFINED:
                    stop = _element_end(buf, pos, limit, vr.decode(), length, 12)
                else:
                    stop = pos + 12 + length
            elif vr in vrs:
                stop = pos + 8 + length
            elif group == 0xFFFE and el == 0xE00D and end is None:
                return rec, pos + 8
            else:
                raise DicomdirError(f"corrupt: element ({group:04X},{el:04X}) at byte {pos} of a directory record "
                                    "is not a valid element",
                                    "the DICOMDIR cannot be read; make it again with dcmcli dcmdir create")
            if stop > limit:
                raise _truncated(pos, size)
            if group == 0x0004 and 0x1400 <= el <= 0x1420:
                if el == 0x1400 and stop - pos == 12:
                    rec.next_offset = ul(buf, pos + 8)[0]
                elif el == 0x1420 and stop - pos == 12:
                    rec.lower_offset = ul(buf, pos + 8)[0]
                elif el == 0x1410 and stop - pos == 10:
                    rec.in_use = buf[pos + 8] | buf[pos + 9] << 8
                else:
                    elements[group << 16 | el] = buf[pos:stop]
            else:
                elements[group << 16 | el] = buf[pos:stop]
            pos = stop
    except struct.error:
        raise _truncated(pos, size) from None
    return rec, pos


def read_dicomdir(path: Path) -> Dicomdir:
    """Read a DICOMDIR; raises ``InputError`` (cannot be read), ``DicomdirError``
    (not a DICOMDIR, truncated, corrupt). Structural problems of the records
    (links to nowhere, cycles, orphans) are in ``problems``."""
    from dcmcli.dicomfile import InvalidFile, _read_meta
    import io

    try:
        buf = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{path} is a directory", "name the DICOMDIR file itself") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", "check the path") from None
    size = len(buf)
    if size < 132 or buf[128:132] != b"DICM":
        raise DcmcliError(f"{path} is not a DICOM file (no 'DICM' after the 128-byte preamble)",
                          "name a DICOMDIR", exit_code=ExitCode.INVALID_INPUT)
    try:
        stream = io.BytesIO(buf)
        stream.seek(132)
        meta, offset = _read_meta(stream, size)
    except InvalidFile as exc:
        raise DicomdirError(f"{path}: {exc}", "the DICOMDIR cannot be read") from None
    sop_class = meta.get(0x0002, "")
    if sop_class != MEDIA_DIRECTORY_STORAGE:
        raise DcmcliError(f"{path} is not a DICOMDIR (its SOP class is {sop_class or 'missing'}, not Media Storage "
                          f"Directory Storage)", "name a DICOMDIR", exit_code=ExitCode.INVALID_INPUT)
    ts = meta.get(0x0010, "")
    if ts != ELE:
        return _read_with_pydicom(path, meta)
    d = Dicomdir(path, meta.get(0x0003, ""), transfer_syntax=ts)
    first = last = 0
    pos = offset
    seq_found = False
    while pos < size:
        tag, vr, length, hl = _header(buf, pos, size)
        if tag == _SEQUENCE:
            seq_found = True
            pos = _read_records(buf, pos + hl, size, length, d)
            continue
        end = _element_end(buf, pos, size, vr, length, hl)
        value = buf[pos + hl:end]
        if tag == _FILESET_ID:
            d.fileset_id = decode_text(value)
        elif tag == _DESCRIPTOR:
            d.descriptor = tuple(decode_text(value).split("\\")) if value.strip() else None
        elif tag == _DESCRIPTOR_CHARSET:
            d.descriptor_charset = decode_text(value) or None
        elif tag == _FIRST and length == 4:
            first = struct.unpack("<L", value)[0]
        elif tag == _LAST and length == 4:
            last = struct.unpack("<L", value)[0]
        pos = end
    if not seq_found:
        raise DicomdirError(f"{path} has no Directory Record Sequence (0004,1220)", "it is not a usable DICOMDIR")
    _link(d, first, last)
    return d


def _read_with_pydicom(path: Path, meta: dict[int, str]) -> Dicomdir:
    """A DICOMDIR in another transfer syntax than PS3.10's (Implicit VR, big
    endian: old media): read by pydicom, each record re-encoded as Explicit VR
    Little Endian, its offset as pydicom found it. The checker reports the
    syntax; an update writes Explicit VR Little Endian."""
    from pydicom import dcmread

    from dcmcli.dataset import encode, quiet_pydicom

    quiet_pydicom()
    ts = meta.get(0x0010, "")
    try:
        ds = dcmread(path)
        items = list(ds.get("DirectoryRecordSequence", []))
    except Exception as exc:  # pydicom raises many types for damaged files
        raise DicomdirError(f"{path} is encoded in {ts} and cannot be read: {exc}",
                            "make it again with dcmcli dcmdir create") from None
    d = Dicomdir(path, meta.get(0x0003, ""), fileset_id=str(ds.get("FileSetID", "") or ""), transfer_syntax=ts)
    descriptor = ds.get("FileSetDescriptorFileID")
    if descriptor:
        d.descriptor = tuple(descriptor) if not isinstance(descriptor, str) else (descriptor,)
        d.descriptor_charset = ds.get("SpecificCharacterSetOfFileSetDescriptorFile") or None
    for item in items:
        rec = Record({})
        rec.offset = int(getattr(item, "seq_item_tell", 0) or 0)
        rec.next_offset = int(item.get("OffsetOfTheNextDirectoryRecord", 0) or 0)
        rec.lower_offset = int(item.get("OffsetOfReferencedLowerLevelDirectoryEntity", 0) or 0)
        rec.in_use = int(item.get("RecordInUseFlag", 0xFFFF) if item.get("RecordInUseFlag") is not None else 0xFFFF)
        for kw in ("OffsetOfTheNextDirectoryRecord", "OffsetOfReferencedLowerLevelDirectoryEntity", "RecordInUseFlag"):
            if kw in item:
                delattr(item, kw)
        rec.elements = dict(split_elements(encode(item, ELE)))
        d.records.append(rec)
    _link(d, int(ds.get(_FIRST_KW, 0) or 0), int(ds.get(_LAST_KW, 0) or 0))
    return d


_FIRST_KW = "OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity"
_LAST_KW = "OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity"


def _read_records(buf: bytes, pos: int, size: int, length: int, d: Dicomdir) -> int:
    end = size if length == _UNDEFINED else pos + length
    if end > size:
        raise _truncated(pos, size)
    while pos < end:
        tag, _vr, ilen, _hl = _header(buf, pos, size)
        if tag == _SEQ_END:
            return pos + 8
        if tag != _ITEM:
            raise DicomdirError(f"corrupt: ({tag >> 16:04X},{tag & 0xFFFF:04X}) at byte {pos} in the Directory "
                                "Record Sequence", "the DICOMDIR cannot be read")
        if ilen != _UNDEFINED and pos + 8 + ilen > size:
            raise _truncated(pos, size)
        rec, after = _parse_record(buf, pos + 8, size, None if ilen == _UNDEFINED else pos + 8 + ilen)
        rec.offset = pos
        d.records.append(rec)
        pos = after
    if length == _UNDEFINED:
        raise _truncated(pos, size)
    return end


def _link(d: Dicomdir, first: int, last: int) -> None:
    by_offset = {r.offset: r for r in d.records}
    reached: set[int] = set()

    def chain(start: int, parent: Record | None) -> list[Record]:
        out: list[Record] = []
        off = start
        prev = None
        while off:
            rec = by_offset.get(off)
            if rec is None:
                where = prev if prev is not None else parent
                what = "next record" if prev is not None else ("lower-level record" if parent else "first record")
                d.problems.append(Problem(f"the offset of its {what} ({off}) points to no record",
                                          where.offset if where else None, where.type if where else None))
                break
            if off in reached:
                where = prev if prev is not None else parent
                d.problems.append(Problem(f"the offset {off} leads back to a record already linked (a cycle or a "
                                          "record linked twice)", where.offset if where else None,
                                          where.type if where else None))
                break
            reached.add(off)
            rec.parent = parent
            out.append(rec)
            prev = rec
            off = rec.next_offset
        return out

    if d.records and not first:
        d.problems.append(Problem("the offset of the first root record (0004,1200) is 0 but there are records"))
    d.roots = chain(first, None)
    stack = list(d.roots)
    while stack:
        rec = stack.pop()
        if rec.lower_offset:
            rec.children = chain(rec.lower_offset, rec)
            stack.extend(rec.children)
    if d.roots and last != d.roots[-1].offset:
        d.problems.append(Problem(f"the offset of the last root record (0004,1202) is {last}, but the last one "
                                  f"is at {d.roots[-1].offset}"))
    for rec in d.records:
        if rec.offset not in reached and rec.in_use:
            d.problems.append(Problem("no record links to it (an orphan: readers never see it)", rec.offset,
                                      rec.type))
    # Inactive records (Record In-use Flag 0000H) are dropped from the tree: readers skip them.
    d.roots = [r for r in d.roots if r.in_use]
    for rec in d.walk():
        rec.children = [c for c in rec.children if c.in_use]


# -- writing ----------------------------------------------------------------------

def _preorder(roots: list[Record]) -> list[Record]:
    out: list[Record] = []
    for root in roots:
        out.extend(root.walk())
    return out


def encode_dicomdir(d: Dicomdir) -> bytes:
    from dcmcli.dicomfile import encode_file_meta

    head = encode_file_meta(MEDIA_DIRECTORY_STORAGE, d.fileset_uid, ELE)
    body = text_element(_FILESET_ID, d.fileset_id)
    if d.descriptor:
        body += text_element(_DESCRIPTOR, "\\".join(d.descriptor))
        if d.descriptor_charset:
            body += text_element(_DESCRIPTOR_CHARSET, d.descriptor_charset)
    order = _preorder(d.roots)
    sizes = []
    for rec in order:
        sizes.append(8 + 12 + 10 + 12 + sum(len(e) for tag, e in rec.elements.items()))
    start = len(head) + len(body) + 12 + 12 + 10 + 12
    offsets: dict[int, int] = {}
    pos = start
    for rec, n in zip(order, sizes):
        offsets[id(rec)] = pos
        pos += n
    total = pos - start

    def off(rec: Record | None) -> int:
        return offsets[id(rec)] if rec is not None else 0

    parts = [head, body,
             element(_FIRST, "UL", struct.pack("<L", off(d.roots[0]) if d.roots else 0)),
             element(_LAST, "UL", struct.pack("<L", off(d.roots[-1]) if d.roots else 0)),
             element(_CONSISTENCY, "US", struct.pack("<H", 0)),
             struct.pack("<HH", 0x0004, 0x1220) + b"SQ\x00\x00" + struct.pack("<L", total)]

    following: dict[int, Record] = {}
    for sib in [d.roots] + [r.children for r in order]:
        for a, b in zip(sib, sib[1:]):
            following[id(a)] = b
    pack_ul = struct.Struct("<HH2sHL").pack
    in_use = struct.pack("<HH2sHH", 0x0004, 0x1410, b"US", 2, 0xFFFF)
    for rec, n in zip(order, sizes):
        low = rec.children[0] if rec.children else None
        parts.append(struct.pack("<HHL", 0xFFFE, 0xE000, n - 8))
        parts.append(pack_ul(0x0004, 0x1400, b"UL", 4, off(following.get(id(rec)))))
        parts.append(in_use)
        parts.append(pack_ul(0x0004, 0x1420, b"UL", 4, off(low)))
        for tag in sorted(rec.elements):
            parts.append(rec.elements[tag])
    for rec in order:
        rec.offset = offsets[id(rec)]
        rec.in_use = 0xFFFF
    return b"".join(parts)


def write_dicomdir(d: Dicomdir) -> int:
    """Write ``d`` to ``d.path`` through a temporary file renamed into place;
    returns the size. Raises ``OutputError``."""
    data = encode_dicomdir(d)
    atomic_write(d.path, data)
    return len(data)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.part"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}",
                          "check that the folder exists and is writable") from None
    try:
        with os.fdopen(fd, "wb") as fp:
            fp.write(data)
            fp.flush()
            os.fsync(fp.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", "check the disk and the permissions") from None
