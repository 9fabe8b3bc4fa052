"""DIMSE messages (PS3.7): command sets, data sets, fragmentation.

Layer 2 of the engine, on the upper layer of ``dcmcli.net.ul``. Every DIMSE
message of PS3.7 (C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE, C-CANCEL,
N-EVENT-REPORT, N-GET, N-SET, N-ACTION, N-CREATE, N-DELETE, requests and
responses) is a command set, hand-encoded here in Implicit VR Little Endian
(fast: no pydicom), optionally followed by a data set whose bytes this layer
moves without parsing.

``Channel`` reads and writes whole messages on one association: it
reassembles command fragments (at most ``MAX_COMMAND`` bytes, all on one
accepted presentation context, checked at the first fragment), and hands a
message's data set to the caller as bytes (bounded), as a stream of
fragments into a sink (C-STORE: straight to disk), or discards it.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from typing import BinaryIO, Protocol

from dcmcli.net.ul import (ABORT_UNEXPECTED_PDU, PDU_DATA, PDU_RELEASE_RP, PDU_RELEASE_RQ, RELEASE_RP,
                           Connection, ProtocolError)
from dcmcli.records import dataclass

# -- command fields (PS3.7 E.1) -----------------------------------------------

C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_GET_RQ, C_GET_RSP = 0x0010, 0x8010
C_FIND_RQ, C_FIND_RSP = 0x0020, 0x8020
C_MOVE_RQ, C_MOVE_RSP = 0x0021, 0x8021
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP = 0x0100, 0x8100
N_GET_RQ, N_GET_RSP = 0x0110, 0x8110
N_SET_RQ, N_SET_RSP = 0x0120, 0x8120
N_ACTION_RQ, N_ACTION_RSP = 0x0130, 0x8130
N_CREATE_RQ, N_CREATE_RSP = 0x0140, 0x8140
N_DELETE_RQ, N_DELETE_RSP = 0x0150, 0x8150
C_CANCEL_RQ = 0x0FFF

COMMAND_NAMES = {
    C_STORE_RQ: "C-STORE-RQ", C_STORE_RSP: "C-STORE-RSP", C_GET_RQ: "C-GET-RQ", C_GET_RSP: "C-GET-RSP",
    C_FIND_RQ: "C-FIND-RQ", C_FIND_RSP: "C-FIND-RSP", C_MOVE_RQ: "C-MOVE-RQ", C_MOVE_RSP: "C-MOVE-RSP",
    C_ECHO_RQ: "C-ECHO-RQ", C_ECHO_RSP: "C-ECHO-RSP", C_CANCEL_RQ: "C-CANCEL-RQ",
    N_EVENT_REPORT_RQ: "N-EVENT-REPORT-RQ", N_EVENT_REPORT_RSP: "N-EVENT-REPORT-RSP",
    N_GET_RQ: "N-GET-RQ", N_GET_RSP: "N-GET-RSP", N_SET_RQ: "N-SET-RQ", N_SET_RSP: "N-SET-RSP",
    N_ACTION_RQ: "N-ACTION-RQ", N_ACTION_RSP: "N-ACTION-RSP", N_CREATE_RQ: "N-CREATE-RQ",
    N_CREATE_RSP: "N-CREATE-RSP", N_DELETE_RQ: "N-DELETE-RQ", N_DELETE_RSP: "N-DELETE-RSP",
}


NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0000  # any other value means present; 0x0000 is what everybody sends

PRIORITY_MEDIUM, PRIORITY_HIGH, PRIORITY_LOW = 0x0000, 0x0001, 0x0002

#: Key of the Failed SOP Instance UID List when a peer sends it in the command set.
FAILED_SOP_INSTANCES = 0x00080058

#: Largest command set accepted (the longest real ones, an N-GET with a long
#: attribute list, stay far below).
MAX_COMMAND = 16 * 1024

# -- the command dictionary (PS3.7 E.1): element -> (keyword, VR) --------------

FIELDS: dict[int, tuple[str, str]] = {
    0x0000: ("CommandGroupLength", "UL"),
    0x0002: ("AffectedSOPClassUID", "UI"),
    0x0003: ("RequestedSOPClassUID", "UI"),
    0x0100: ("CommandField", "US"),
    0x0110: ("MessageID", "US"),
    0x0120: ("MessageIDBeingRespondedTo", "US"),
    0x0600: ("MoveDestination", "AE"),
    0x0700: ("Priority", "US"),
    0x0800: ("CommandDataSetType", "US"),
    0x0900: ("Status", "US"),
    0x0901: ("OffendingElement", "AT"),
    0x0902: ("ErrorComment", "LO"),
    0x0903: ("ErrorID", "US"),
    0x1000: ("AffectedSOPInstanceUID", "UI"),
    0x1001: ("RequestedSOPInstanceUID", "UI"),
    0x1002: ("EventTypeID", "US"),
    0x1005: ("AttributeIdentifierList", "AT"),
    0x1008: ("ActionTypeID", "US"),
    0x1020: ("NumberOfRemainingSuboperations", "US"),
    0x1021: ("NumberOfCompletedSuboperations", "US"),
    0x1022: ("NumberOfFailedSuboperations", "US"),
    0x1023: ("NumberOfWarningSuboperations", "US"),
    0x1030: ("MoveOriginatorApplicationEntityTitle", "AE"),
    0x1031: ("MoveOriginatorMessageID", "US"),
}
_BY_KEYWORD = {kw: tag for tag, (kw, _) in FIELDS.items()}

# Elements each message must carry (PS3.7 9.3, 10.3), beyond CommandField and CommandDataSetType.
_REQUIRED: dict[int, tuple[int, ...]] = {
    C_STORE_RQ: (0x0110, 0x0002, 0x1000, 0x0700), C_STORE_RSP: (0x0120, 0x0900),
    C_FIND_RQ: (0x0110, 0x0002, 0x0700), C_FIND_RSP: (0x0120, 0x0900),
    C_GET_RQ: (0x0110, 0x0002, 0x0700), C_GET_RSP: (0x0120, 0x0900),
    C_MOVE_RQ: (0x0110, 0x0002, 0x0700, 0x0600), C_MOVE_RSP: (0x0120, 0x0900),
    C_ECHO_RQ: (0x0110, 0x0002), C_ECHO_RSP: (0x0120, 0x0900),
    C_CANCEL_RQ: (0x0120,),
    N_EVENT_REPORT_RQ: (0x0110, 0x0002, 0x1000, 0x1002), N_EVENT_REPORT_RSP: (0x0120, 0x0900),
    N_GET_RQ: (0x0110, 0x0003, 0x1001), N_GET_RSP: (0x0120, 0x0900),
    N_SET_RQ: (0x0110, 0x0003, 0x1001), N_SET_RSP: (0x0120, 0x0900),
    N_ACTION_RQ: (0x0110, 0x0003, 0x1001, 0x1008), N_ACTION_RSP: (0x0120, 0x0900),
    N_CREATE_RQ: (0x0110, 0x0002), N_CREATE_RSP: (0x0120, 0x0900),
    N_DELETE_RQ: (0x0110, 0x0003, 0x1001), N_DELETE_RSP: (0x0120, 0x0900),
}


class MalformedCommand(ProtocolError):
    """A command set that cannot be parsed, or lacks what its message requires."""


class Command(dict[int, object]):
    """A decoded command set: ``{element number in group 0000: value}``
    (int for US/UL, str for UI/AE/LO, list of tag ints for AT)."""

    @property
    def field(self) -> int:
        return int(self.get(0x0100, 0))  # type: ignore[call-overload]

    @property
    def name(self) -> str:
        return COMMAND_NAMES.get(self.field, f"command 0x{self.field:04X}")

    @property
    def is_request(self) -> bool:
        return not self.field & 0x8000

    @property
    def message_id(self) -> int:
        return int(self.get(0x0110, 0))  # type: ignore[call-overload]

    @property
    def responding_to(self) -> int:
        return int(self.get(0x0120, 0))  # type: ignore[call-overload]

    @property
    def status(self) -> int:
        return int(self.get(0x0900, 0))  # type: ignore[call-overload]

    @property
    def has_dataset(self) -> bool:
        return self.get(0x0800, NO_DATA_SET) != NO_DATA_SET

    def text(self, tag: int) -> str:
        value = self.get(tag)
        return value if isinstance(value, str) else ""

    def number(self, tag: int) -> int | None:
        value = self.get(tag)
        return value if isinstance(value, int) else None

    def describe(self) -> str:
        """The command set as DCMTK's -d shows it: one element per line."""
        lines = [f"{self.name}:"]
        for tag in sorted(self):
            kw = FIELDS.get(tag, (f"(0000,{tag:04X})", ""))[0]
            value = self[tag]
            if isinstance(value, list):
                value = "\\".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in value)
            elif tag in (0x0100,):
                value = f"0x{value:04X} ({self.name})"
            elif tag == 0x0900:
                value = f"0x{value:04X}"
            lines.append(f"  (0000,{tag:04X}) {kw:<38} {value}")
        return "\n".join(lines)


# -- encoding -----------------------------------------------------------------

def _encode_value(tag: int, value: object) -> bytes:
    vr = FIELDS.get(tag, ("", "UN"))[1]
    if vr == "US":
        return struct.pack("<H", int(value))  # type: ignore[call-overload]
    if vr == "UL":
        return struct.pack("<L", int(value))  # type: ignore[call-overload]
    if vr == "AT":
        tags = list(value)  # type: ignore[call-overload]
        return b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in tags)
    if isinstance(value, bytes):
        raw = value
    elif vr == "LO":
        raw = str(value)[:64].encode("latin-1", "replace")
    else:
        raw = str(value).encode("ascii")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


def encode_command(elements: dict[int, object]) -> bytes:
    """A command set from ``{element number in group 0000: value}``."""
    body = bytearray()
    for tag in sorted(elements):
        if tag == 0x0000 or elements[tag] is None:
            continue
        value = _encode_value(tag, elements[tag])
        body += struct.pack("<HHL", 0x0000, tag, len(value)) + value
    return struct.pack("<HHLL", 0x0000, 0x0000, 4, len(body)) + bytes(body)


_ARGUMENTS = {
    "affected_sop_class": 0x0002, "requested_sop_class": 0x0003, "move_destination": 0x0600,
    "priority": 0x0700, "offending_element": 0x0901, "error_comment": 0x0902, "error_id": 0x0903,
    "affected_sop_instance": 0x1000, "requested_sop_instance": 0x1001, "event_type_id": 0x1002,
    "attribute_identifier_list": 0x1005, "action_type_id": 0x1008, "remaining": 0x1020, "completed": 0x1021,
    "failed": 0x1022, "warning": 0x1023, "move_originator_aet": 0x1030, "move_originator_message_id": 0x1031,
}


def request(field: int, message_id: int, *, dataset: bool = False, **arguments: object) -> bytes:
    """A request command set: ``request(C_FIND_RQ, 3, dataset=True, affected_sop_class=..., priority=0)``."""
    elements: dict[int, object] = {0x0100: field, 0x0110: message_id,
                                   0x0800: DATA_SET_PRESENT if dataset else NO_DATA_SET}
    for name, value in arguments.items():
        elements[_ARGUMENTS[name]] = value
    return encode_command(elements)


def response(field: int, responding_to: int, status: int, *, dataset: bool = False, **arguments: object) -> bytes:
    """A response command set; an Error Comment is sent only with a non-success status."""
    elements: dict[int, object] = {0x0100: field, 0x0120: responding_to, 0x0900: status,
                                   0x0800: DATA_SET_PRESENT if dataset else NO_DATA_SET}
    for name, value in arguments.items():
        if name == "error_comment" and (status == 0 or not value):
            continue
        elements[_ARGUMENTS[name]] = value
    return encode_command(elements)


def cancel(responding_to: int) -> bytes:
    return encode_command({0x0100: C_CANCEL_RQ, 0x0120: responding_to, 0x0800: NO_DATA_SET})


# The two messages of the storage data path, kept as direct calls.
def c_store_rq(message_id: int, sop_class: str, sop_instance: str, priority: int = 0,
               move_originator: tuple[str, int] | None = None) -> bytes:
    extra: dict[str, object] = {}
    if move_originator:
        extra = {"move_originator_aet": move_originator[0], "move_originator_message_id": move_originator[1]}
    return request(C_STORE_RQ, message_id, dataset=True, affected_sop_class=sop_class,
                   affected_sop_instance=sop_instance, priority=priority, **extra)


def c_store_rsp(message_id: int, sop_class: str, sop_instance: str, status: int,
                error_comment: str | None = None) -> bytes:
    return response(C_STORE_RSP, message_id, status, affected_sop_class=sop_class or None,
                    affected_sop_instance=sop_instance or None, error_comment=error_comment)


def c_echo_rq(message_id: int, sop_class: str = "1.2.840.10008.1.1") -> bytes:
    return request(C_ECHO_RQ, message_id, affected_sop_class=sop_class)


# -- decoding -------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x1f\x7f]")


def _decode_text(value: bytes, tag: int, vr: str) -> str:
    if vr == "LO":
        return value.decode("latin-1").strip(" \x00")
    try:
        text = value.decode("ascii").strip(" \x00")
    except UnicodeDecodeError:
        raise MalformedCommand(f"{FIELDS[tag][0]} is not ASCII") from None
    if _CONTROL.search(text):
        raise MalformedCommand(f"{FIELDS[tag][0]} contains control characters")
    if vr == "UI" and len(text) > 64:
        raise MalformedCommand(f"{FIELDS[tag][0]} is longer than 64 characters")
    if vr == "AE" and len(text) > 16:
        raise MalformedCommand(f"{FIELDS[tag][0]} is longer than 16 characters")
    return text


def decode_command(data: bytes | bytearray, *, strict: bool = True) -> Command:
    """Parse a command set, checking each element's length and encoding
    (``MalformedCommand`` otherwise: a wrong length, non-ASCII text) and,
    with ``strict``, that the message's required elements are present.

    UIDs are only checked to be printable ASCII of at most 64 characters:
    whether one is a valid UID is the service's question (a C-STORE with an
    invalid SOP Instance UID gets a failure status, not an abort)."""
    out = Command()
    pos, end = 0, len(data)
    view = memoryview(data)
    while pos < end:
        if pos + 8 > end:
            raise MalformedCommand("the command set ends inside an element header")
        group, elem, length = struct.unpack_from("<HHL", data, pos)
        pos += 8
        if pos + length > end:
            raise MalformedCommand(f"element ({group:04X},{elem:04X}) runs past the end of the command set")
        value = bytes(view[pos:pos + length])
        pos += length
        if group != 0x0000:
            # Outside the command group: some peers (Orthanc) put the Failed
            # SOP Instance UID List of a C-GET/C-MOVE response here as status
            # detail. Keep that one (keyed by its whole tag), skip the rest.
            if (group, elem) == (0x0008, 0x0058):
                out[FAILED_SOP_INSTANCES] = value.decode("ascii", "replace").strip(" \x00")
            continue
        known = FIELDS.get(elem)
        if known is None:
            continue  # retired or unknown command elements are ignored
        vr = known[1]
        if vr == "US":
            if length != 2:
                raise MalformedCommand(f"{known[0]} has {length} bytes (2 required)")
            out[elem] = struct.unpack("<H", value)[0]
        elif vr == "UL":
            if length != 4:
                raise MalformedCommand(f"{known[0]} has {length} bytes (4 required)")
            out[elem] = struct.unpack("<L", value)[0]
        elif vr == "AT":
            if length % 4:
                raise MalformedCommand(f"{known[0]} has {length} bytes (a multiple of 4 required)")
            out[elem] = [(g << 16) | e for g, e in struct.iter_unpack("<HH", value)]
        else:
            text = _decode_text(value, elem, vr)
            if text or vr != "UI":  # an empty UID is an absent one
                out[elem] = text
    if 0x0100 not in out:
        raise MalformedCommand("the command set has no Command Field")
    if 0x0800 not in out:
        raise MalformedCommand(f"{out.name} has no Command Data Set Type")
    if strict:
        required = _REQUIRED.get(out.field)
        if required is None:
            raise MalformedCommand(f"unknown command field 0x{out.field:04X}")
        missing = [FIELDS[t][0] for t in required if t not in out]
        if missing:
            raise MalformedCommand(f"{out.name} lacks {', '.join(missing)}")
    return out


# -- messages on an association ---------------------------------------------------

class Sink(Protocol):
    """Where a streamed data set goes (a file being received)."""

    def write(self, data: memoryview) -> None: ...


@dataclass
class Message:
    """One received message: its presentation context and command set. Its
    data set, if any, is still on the wire: read it with ``Channel.read_data``,
    ``read_data_into`` or ``discard_data`` before the next ``receive``."""

    context_id: int
    command: Command


class Channel:
    """Whole DIMSE messages over one ``Connection``."""

    def __init__(self, conn: Connection, *, max_command: int = MAX_COMMAND,
                 on_command: object = None) -> None:
        self.conn = conn
        self.max_command = max_command
        # The P-DATA PDU being read and where its next PDV starts: PDVs are
        # taken one at a time, never all of a PDU at once (a PDU of empty
        # PDVs would be thousands of objects).
        self._body = bytearray()
        self._view = memoryview(self._body)
        self._pos = 0
        self._data_pending: int | None = None  # context id of a data set not read yet
        #: Called with (direction, context id, Command) for every command set
        #: sent ("sent") or received ("received"), for -d.
        self.on_command = on_command

    # -- PDVs ---------------------------------------------------------------
    def _next_pdv(self, *, between_messages: bool) -> tuple[int, bool, bool, memoryview] | None:
        """The next PDV; None when the peer released (answered with A-RELEASE-RP)
        between messages. A release in the middle of a message is a protocol error."""
        while self._pos >= len(self._body):
            pdu_type, body = self.conn.read_pdu()
            if pdu_type == PDU_RELEASE_RQ:
                if not between_messages:
                    raise ProtocolError("the peer released the association in the middle of a message",
                                        ABORT_UNEXPECTED_PDU)
                self.conn.send(RELEASE_RP)
                self.conn.await_close()
                return None
            if pdu_type != PDU_DATA:
                if pdu_type == PDU_RELEASE_RP:
                    raise ProtocolError("unexpected A-RELEASE-RP", ABORT_UNEXPECTED_PDU)
                raise ProtocolError(f"unexpected PDU type 0x{pdu_type:02X} during the data phase",
                                    ABORT_UNEXPECTED_PDU)
            if len(body) < 6:
                raise ProtocolError("a P-DATA PDU without a presentation data value")
            self._body, self._view, self._pos = body, memoryview(body), 0
        body, pos, end = self._body, self._pos, len(self._body)
        if pos + 6 > end:
            raise ProtocolError("malformed presentation data value item")
        (item_len,) = struct.unpack_from(">L", body, pos)
        if item_len < 2 or pos + 4 + item_len > end:
            raise ProtocolError("malformed presentation data value item")
        mch = body[pos + 5]
        if mch & 0xFC:
            raise ProtocolError(f"invalid message control header 0x{mch:02X}")
        self._pos = pos + 4 + item_len
        return body[pos + 4], bool(mch & 0x01), bool(mch & 0x02), self._view[pos + 6:pos + 4 + item_len]

    # -- receiving ---------------------------------------------------------
    def receive(self) -> Message | None:
        """The next message (its command set); None when the peer released.

        A data set the caller left unread is discarded first.
        """
        if self._data_pending is not None:
            self.discard_data()
        parts: list[bytes] = []
        size = 0
        context: int | None = None
        while True:
            pdv = self._next_pdv(between_messages=context is None)
            if pdv is None:
                return None
            ctx, is_command, last, value = pdv
            if not is_command:
                raise ProtocolError("a data set fragment arrived where a command was expected", ABORT_UNEXPECTED_PDU)
            if context is None:
                if ctx not in self.conn.accepted:
                    raise ProtocolError(f"a message on presentation context {ctx}, which was not accepted")
                context = ctx
            elif ctx != context:
                raise ProtocolError(f"command fragments on presentation contexts {context} and {ctx}")
            size += 6 + len(value)  # with its PDV header: empty fragments count too
            if size > self.max_command:
                raise ProtocolError(f"a command set of more than {self.max_command} bytes")
            parts.append(bytes(value))
            if last:
                break
        command = decode_command(b"".join(parts))
        if self.on_command is not None:
            self.on_command("received", context, command)  # type: ignore[operator]
        if command.has_dataset:
            self._data_pending = context
        return Message(context, command)

    def _data_pdvs(self) -> Iterable[tuple[memoryview, bool]]:
        context = self._data_pending
        if context is None:
            raise RuntimeError("no data set is pending")
        while True:
            pdv = self._next_pdv(between_messages=False)
            assert pdv is not None
            ctx, is_command, last, value = pdv
            if is_command:
                raise ProtocolError("a command arrived before the previous message's data set was complete",
                                    ABORT_UNEXPECTED_PDU)
            if ctx != context:
                raise ProtocolError(f"a data set on presentation context {ctx}, its command on {context}")
            if last:
                self._data_pending = None
            yield value, last
            if last:
                return

    def message_waiting(self) -> bool:
        """Whether the peer has sent more (a C-CANCEL, say) that can be read
        now without blocking: PDVs left in the PDU being read, or bytes on the
        socket."""
        return self._pos < len(self._body) or self.conn.data_waiting()

    def read_data_into(self, sink: Sink) -> int:
        """Stream the pending data set into ``sink``; return its length."""
        n = 0
        for value, _last in self._data_pdvs():
            sink.write(value)
            n += len(value)
        return n

    def read_data(self, limit: int) -> bytes:
        """The pending data set as bytes; a larger one than ``limit`` is a protocol error."""
        parts: list[bytes] = []
        n = 0
        for value, _last in self._data_pdvs():
            n += len(value)
            if n > limit:
                raise ProtocolError(f"a data set of more than {limit} bytes where a small one was expected")
            parts.append(bytes(value))
        return b"".join(parts)

    def discard_data(self) -> int:
        """Read and drop the pending data set, if any; return its length."""
        if self._data_pending is None:
            return 0
        n = 0
        for value, _last in self._data_pdvs():
            n += len(value)
        return n

    # -- sending -----------------------------------------------------------
    def _fragments(self, context_id: int, data: bytes | memoryview, is_command: bool) -> None:
        step = self.conn.max_fragment
        view = memoryview(data)
        n = len(view)
        if n == 0:
            self.conn.send_pdv(context_id, view, is_command, True)
            return
        for start in range(0, n, step):
            self.conn.send_pdv(context_id, view[start:start + step], is_command, start + step >= n)

    def send(self, context_id: int, command: bytes, data: bytes | memoryview | None = None) -> None:
        """One message: its command set, then its data set (if any)."""
        if self.on_command is not None:
            self.on_command("sent", context_id, decode_command(command, strict=False))  # type: ignore[operator]
        if data is not None and self.conn.send_message_pdu(context_id, command, data):
            return
        self._fragments(context_id, command, True)
        if data is not None:
            self._fragments(context_id, data, False)

    def send_data_file(self, context_id: int, fp: BinaryIO, length: int, pad: bool = False) -> None:
        """Stream ``length`` bytes of ``fp`` (from its position) as data fragments."""
        step = self.conn.max_fragment
        total = length + (1 if pad else 0)
        buf = bytearray(min(step, max(total, 1)))
        remaining = length
        sent = 0
        while True:
            want = min(len(buf), total - sent)
            view = memoryview(buf)[:want]
            got = 0
            while got < want and remaining > 0:
                k = fp.readinto(view[got:min(want, got + remaining)])  # type: ignore[attr-defined]
                if not k:
                    raise OSError("the file ended early")
                got += k
                remaining -= k
            while got < want:  # the pad byte
                view[got] = 0
                got += 1
            sent += want
            self.conn.send_pdv(context_id, view, False, sent >= total)
            if sent >= total:
                return
