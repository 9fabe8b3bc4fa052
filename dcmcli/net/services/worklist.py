"""Modality Worklist C-FIND SCP (mwlscp): a service on the shared acceptor.

Each C-FIND-RQ's identifier is compiled once (``dcmcli.matching``) and
matched against the items the called AE title is served
(``dcmcli.worklist``); each match goes back as a pending response (0xFF00)
in the request's character set where its values can be written in it (else
in the item's own), then the final status: 0x0000, 0xFE00 after a
C-CANCEL (looked for between responses), 0xA700 once ``max_matches``
responses were sent, 0xA900 / 0xC000 for identifiers that cannot be used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from dcmcli.matching import Answer, Matcher, MatchKeyError, key_text
from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.net.acceptor import VERIFICATION_SYNTAXES, ServedAssociation, Service
from dcmcli.net.dimse import C_CANCEL_RQ, C_FIND_RQ, C_FIND_RSP, Message, response
from dcmcli.records import dataclass
from dcmcli.uids import EBE, ELE, ILE, VERIFICATION
from dcmcli.worklist import Worklist

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
#: Identifiers are small; a larger one is a protocol error, not a query.
MAX_IDENTIFIER = 1 << 20
STATUS_PENDING = 0xFF00
STATUS_SUCCESS = 0x0000
STATUS_CANCEL = 0xFE00
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_IDENTIFIER_MISMATCH = 0xA900
STATUS_UNABLE_TO_PROCESS = 0xC000


@dataclass
class WorklistServiceOptions:
    case_insensitive_pn: bool = False
    #: combined date-time matching even when not negotiated (C.2.2.2.5)
    combined_datetime: bool = False
    max_matches: int | None = None
    transfer_syntaxes: Sequence[str] = (ELE, ILE, EBE)


@dataclass
class QueryRecord:
    """What one query asked and got: the ``query`` event."""

    calling_aet: str
    called_aet: str
    peer: dict[str, object]
    keys: list[str]
    identifier: dict[str, Any] | None
    matches: int = 0
    status: int = 0
    message: str = ""
    cancelled: bool = False
    seconds: float = 0.0
    items_searched: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _keys_asked(ds: Dataset, prefix: str = "") -> list[str]:
    """Each key of an identifier as ``Keyword=value`` (sequence items as paths)."""
    out: list[str] = []
    for elem in ds:
        tag = int(elem.tag)
        if tag == 0x00080005:
            continue
        name = prefix + (elem.keyword or f"({tag >> 16:04X},{tag & 0xFFFF:04X})")
        if elem.VR == "SQ":
            items = list(elem.value or [])
            if items and len(items[0]):
                out += _keys_asked(items[0], name + "[0].")
            else:
                out.append(name)
            continue
        value = key_text(elem)
        out.append(f"{name}={value}" if value else name)
    return out


class WorklistService(Service):
    """Modality Worklist Information Model - FIND, served from a ``Worklist``."""

    name = "worklist"

    def __init__(self, worklist: Worklist, options: WorklistServiceOptions | None = None, *,
                 on_query: Callable[[QueryRecord], None] | None = None) -> None:
        self.worklist = worklist
        self.options = options or WorklistServiceOptions()
        self.on_query = on_query or (lambda record: None)
        self._lock = threading.Lock()
        self.queries = 0

    def transfer_syntaxes(self, abstract_syntax: str) -> Sequence[str] | None:
        return self.options.transfer_syntaxes if abstract_syntax == MODALITY_WORKLIST_FIND else None

    def extended(self, sop_class: str, info: bytes) -> bytes | None:
        """C-FIND extended negotiation (PS3.4 C.5.1.1): combined date-time
        matching is offered; relational queries, fuzzy matching and timezone
        adjustment are not."""
        answer = bytearray(len(info))
        if len(info) >= 2 and info[1] == 1:
            answer[1] = 1
        return bytes(answer)

    def _combined(self, assoc: ServedAssociation) -> bool:
        if self.options.combined_datetime:
            return True
        for e in assoc.report.extended:
            if e.sop_class == MODALITY_WORKLIST_FIND and e.accepted and len(e.accepted) >= 2 and e.accepted[1] == 1:
                return True
        return False

    def handle(self, assoc: ServedAssociation, msg: Message) -> None:
        cmd = msg.command
        if cmd.field != C_FIND_RQ:
            assoc.channel.discard_data()
            assoc.refuse(msg, 0x0211, "unrecognised operation (this is a worklist C-FIND SCP)")
            return
        from dcmcli.dataset import InvalidDataset, decode

        started = time.monotonic()
        ts = assoc.accepted[msg.context_id][1]
        mid = cmd.message_id
        sop_class = cmd.text(0x0002) or MODALITY_WORKLIST_FIND
        record = QueryRecord(assoc.calling_aet, assoc.called_aet,
                             {"host": assoc.report.peer.host, "port": assoc.report.peer.port,
                              "ae_title": assoc.calling_aet}, [], None)

        def final(status: int, why: str = "") -> None:
            record.status, record.message = status, why
            record.seconds = round(time.monotonic() - started, 6)
            assoc.send(msg.context_id, response(C_FIND_RSP, mid, status, affected_sop_class=sop_class,
                                                error_comment=why[:64] if why and status not in (0, STATUS_CANCEL)
                                                else None))
            with self._lock:
                self.queries += 1
            self.on_query(record)

        if not cmd.has_dataset:
            assoc.log("warning", f"C-FIND-RQ from {assoc.calling_aet}@{assoc.address} without an identifier; "
                                 f"answered 0xC000")
            return final(STATUS_UNABLE_TO_PROCESS, "the request has no identifier")
        data = assoc.channel.read_data(MAX_IDENTIFIER)
        try:
            identifier = decode(data, ts)
            for elem in identifier:  # every value parsed now, in the request's character set
                _ = elem.value
        except (InvalidDataset, Exception) as exc:  # noqa: BLE001 - any broken identifier
            why = str(exc) if isinstance(exc, InvalidDataset) else f"cannot parse the identifier: {exc}"
            assoc.log("warning", f"C-FIND from {assoc.calling_aet}@{assoc.address}: {why}; answered 0xC000")
            return final(STATUS_UNABLE_TO_PROCESS, why)
        from dcmcli.dataset import to_json

        record.identifier = to_json(identifier)
        record.keys = _keys_asked(identifier)
        assoc.log("debug", f"C-FIND from {assoc.calling_aet}: {' '.join(record.keys) or '(no keys)'}")
        level = identifier.get(0x00080052)
        if level is not None and key_text(level).strip() not in ("", "WORKLIST"):
            why = f"Query/Retrieve Level {key_text(level).strip()!r} is not part of the worklist model"
            assoc.log("warning", f"C-FIND from {assoc.calling_aet}@{assoc.address}: {why}; answered 0xA900")
            return final(STATUS_IDENTIFIER_MISMATCH, why)
        try:
            if level is not None:
                del identifier[0x00080052]
            matcher = Matcher(identifier, case_insensitive_pn=self.options.case_insensitive_pn,
                              combined_datetime=self._combined(assoc))
        except MatchKeyError as exc:
            assoc.log("warning", f"C-FIND from {assoc.calling_aet}@{assoc.address}: {exc}; answered 0xA900")
            return final(STATUS_IDENTIFIER_MISMATCH, str(exc))
        charset = _request_charset(identifier)
        limit = self.options.max_matches
        pending: bytes | None = None
        out = _Batched(assoc)
        for _path, item in self.worklist.items(assoc.called_aet):
            record.items_searched += 1
            try:
                answer = matcher.answer(item)
            except Exception as exc:  # noqa: BLE001 - one odd item never ends the query
                assoc.log("debug", f"worklist item {_path}: {type(exc).__name__}: {exc}; not matched")
                continue
            if answer is None:
                continue
            if limit is not None and record.matches >= limit:
                why = f"more than {limit} matches (--max-matches); narrow the query"
                assoc.log("warning", f"C-FIND from {assoc.calling_aet}: {why}; answered 0xA700")
                out.flush()
                return final(STATUS_OUT_OF_RESOURCES, why)
            if self._cancelled(assoc, mid):
                out.flush()
                record.cancelled = True
                return final(STATUS_CANCEL)
            body = _encode_answer(answer, item, charset, ts, assoc)
            if pending is None:  # the same command set for every match
                pending = response(C_FIND_RSP, mid, STATUS_PENDING, dataset=True, affected_sop_class=sop_class)
            out.add(msg.context_id, pending, body)
            record.matches += 1
        out.flush()
        if self._cancelled(assoc, mid):
            record.cancelled = True
            return final(STATUS_CANCEL)
        final(0x0000)

    def _cancelled(self, assoc: ServedAssociation, mid: int) -> bool:
        """Whether a C-CANCEL for ``mid`` arrived (read without waiting)."""
        channel = assoc.channel
        while channel.message_waiting():
            got = channel.receive()
            if got is None:
                return True  # released mid-query: nothing left to answer
            if got.command.field == C_CANCEL_RQ:
                if got.command.responding_to == mid:
                    return True
                continue
            channel.discard_data()
            assoc.refuse(got, 0x0210, "one operation at a time (asynchronous window 1)")
        return False


class _Batched:
    """Answers written several to a socket write (up to 64 KiB): one
    sendall per answer was a fifth of a large query's time (measured)."""

    LIMIT = 64 * 1024

    def __init__(self, assoc: ServedAssociation) -> None:
        self.assoc = assoc
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, context_id: int, command: bytes, data: bytes) -> None:
        pdu = None if self.assoc.channel.on_command is not None else \
            self.assoc.conn.message_pdu(context_id, command, data)
        if pdu is None:  # too large for one PDU (or -d, which shows every command): sent on its own, in order
            self.flush()
            self.assoc.send(context_id, command, data)
            return
        self.parts.append(pdu)
        self.size += len(pdu)
        if self.size >= self.LIMIT:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.assoc.conn.send(b"".join(self.parts))
            self.parts, self.size = [], 0


def _request_charset(identifier: Dataset) -> list[str] | None:
    elem = identifier.get(0x00080005)
    if elem is None:
        return None
    values = [v.strip() for v in (elem.value if elem.VM > 1 else [elem.value]) if v is not None]
    return values if any(values) else None


_ITEM = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
_ITEM_END = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQ_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT"})


def _empty(tag: int, vr: str, implicit: bool) -> bytes:
    import struct

    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        return head + b"\0\0\0\0"
    return head + vr.encode() + (b"\0\0\0\0\0\0" if vr in _LONG_VRS else b"\0\0")


def _encode_le(answer: Answer, implicit: bool, encodings: list[str]) -> bytes:
    """A little endian encoding of an answer, sequences with undefined
    length. Each leaf element's bytes are kept on the element (the worklist
    cache's own element objects, shared by every answer), so an item asked for
    again costs a join, not pydicom's writer: measured, pydicom's writer was
    four fifths of a worklist query's time."""
    import struct

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    key = (implicit, tuple(encodings))
    parts: list[bytes] = []
    for tag, vr, value in answer:
        if vr == "SQ":
            head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
            parts.append(head + (b"\xff\xff\xff\xff" if implicit else b"SQ\0\0\xff\xff\xff\xff"))
            for item in value:
                parts += (_ITEM, _encode_le(item, implicit, encodings), _ITEM_END)
            parts.append(_SEQ_END)
            continue
        if value is None:
            parts.append(_empty(tag, vr, implicit))
            continue
        memo = value.__dict__.get("_dcmcli_bytes")
        if memo is not None and memo[0] == key:
            parts.append(memo[1])
            continue
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = implicit
        write_data_element(fp, value, encodings)
        raw = fp.getvalue()
        value.__dict__["_dcmcli_bytes"] = (key, raw)
        parts.append(raw)
    return b"".join(parts)


def _encode(answer: Answer, ts: str, charset: list[str] | None) -> bytes:
    """The answer in ``ts``, with Specific Character Set ``charset`` (None: none)."""
    if ts == EBE:
        from dcmcli.dataset import encode
        from dcmcli.matching import to_dataset

        ds = to_dataset(answer)
        if charset:
            ds.SpecificCharacterSet = charset if len(charset) > 1 else charset[0]
        return encode(ds, ts)
    from pydicom.charset import convert_encodings

    if charset:
        from pydicom.dataelem import DataElement

        cs = DataElement(0x00080005, "CS", charset if len(charset) > 1 else charset[0])
        answer = sorted([*(a for a in answer if a[0] != 0x00080005), (0x00080005, "CS", cs)], key=lambda a: a[0])
    return _encode_le(answer, ts == ILE, convert_encodings(charset or ["ISO_IR 6"]))


def _encode_answer(answer: Answer, item: Dataset, charset: list[str] | None, ts: str,
                   assoc: ServedAssociation) -> bytes:
    """The answer's bytes. Specific Character Set is returned when a value
    needs it (or the request named one): the request's when every value can
    be written in it, else the item's own, else UTF-8 (each response names
    its own character set, PS3.4 C.4.1.1.3.1)."""
    import warnings

    from dcmcli.matching import needs_unicode

    if not needs_unicode(answer):
        return _encode(answer, ts, charset)
    own = item.get(0x00080005)
    own_values = [str(v) for v in (own.value if own.VM > 1 else [own.value])] if own is not None and own.value else None
    candidates = [c for c in (charset, own_values) if c] + [["ISO_IR 192"]]
    for candidate in candidates:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # pydicom warns, then replaces, what a character set cannot hold
            try:
                return _encode(answer, ts, candidate)
            except Exception:  # noqa: BLE001
                name = "\\".join(candidate)
                assoc.log("debug", f"a worklist answer cannot be written in {name}; trying the next character set")
    return _encode(answer, ts, ["ISO_IR 192"])


__all__ = ["WorklistService", "WorklistServiceOptions", "QueryRecord", "MODALITY_WORKLIST_FIND"]


#: The AE of mwlscp (dcmcli/conformance).
CONFORMANCE = [ApplicationEntity(
    "MWLSCP", "mwlscp",
    "A Modality Worklist SCP: answers C-FIND requests from worklist files (`-dfp DIR/<called AE>/`, "
    "`--source`: .wl, DICOM JSON, CSV) matched as PS3.4 C.2.2.2; answers C-ECHO. Runs until SIGINT/SIGTERM.",
    contexts=(
        Contexts((VERIFICATION,), VERIFICATION_SYNTAXES, "SCP", False),
        Contexts((MODALITY_WORKLIST_FIND,), WorklistServiceOptions().transfer_syntaxes, "SCP", False,
                 extended="SOP Class Extended Negotiation answered (PS3.4 C.5.1.1): combined date-time matching "
                          "accepted when asked; relational queries, fuzzy matching, timezone adjustment refused "
                          "(0)"),
    ),
    statuses=(Statuses("C-FIND", "SCP", (STATUS_PENDING, STATUS_SUCCESS, STATUS_CANCEL, STATUS_OUT_OF_RESOURCES,
                                         STATUS_IDENTIFIER_MISMATCH, STATUS_UNABLE_TO_PROCESS), {
        STATUS_PENDING: "one per match, with exactly the keys asked for",
        STATUS_SUCCESS: "all matches sent (none: success alone)",
        STATUS_CANCEL: "a C-CANCEL arrived (looked for between responses)",
        STATUS_OUT_OF_RESOURCES: "--max-matches N answers were sent (narrow the query)",
        STATUS_IDENTIFIER_MISMATCH: "a Query/Retrieve Level other than WORKLIST, a wildcard in a date, a "
                                    "sequence key with two items",
        STATUS_UNABLE_TO_PROCESS: "an identifier that cannot be parsed or is missing"}),),
    acceptance=("The called AE title picks the worklist folder; a title without one is rejected (A-ASSOCIATE-RJ, "
                "called AE title not recognised) unless --default-ae names a fallback.",),
)]
