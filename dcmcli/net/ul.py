"""A lean DICOM upper layer (PS3.8) for the storage data path.

pynetdicom runs every message through two polling threads, queues, a state
machine and pydicom-encoded command sets; measured here that costs 5-15 ms
per C-STORE, ten times DCMTK, and importing it (with pydicom and numpy)
costs about 0.9 s per command. This module does the association on a plain
blocking socket instead: the A-ASSOCIATE PDUs (PS3.8 9.3.2-9.3.4),
presentation-context negotiation, P-DATA fragmentation, the C-STORE and
C-ECHO command sets (PS3.7 9.3.1, 9.3.5), release and abort.

``Connection`` is one association, requestor or acceptor; the requestor
side is opened by ``dcmcli.net.association.request_connection``, the
acceptor side by ``dcmcli.net.storescp``. It imports neither pydicom nor
pynetdicom.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from dcmcli import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

PDU_ASSOCIATE_RQ = 0x01
PDU_ASSOCIATE_AC = 0x02
PDU_ASSOCIATE_RJ = 0x03
PDU_DATA = 0x04
PDU_RELEASE_RQ = 0x05
PDU_RELEASE_RP = 0x06
PDU_ABORT = 0x07

C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
NO_DATA_SET = 0x0101

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

#: Data fragments when the peer sets no PDU limit (max PDU 0).
UNLIMITED_CHUNK = 1 << 20
#: Largest P-DATA PDU read when we announced no limit, and largest
#: A-ASSOCIATE / A-RELEASE / A-ABORT PDU read at all.
UNLIMITED_RECEIVE = 1 << 28
MAX_CONTROL_PDU = 1 << 20


def receive_limit(announced_max_pdu: int) -> int:
    return announced_max_pdu + 1024 if announced_max_pdu else UNLIMITED_RECEIVE


class PeerAborted(Exception):
    """The peer sent A-ABORT; ``source`` and ``reason`` as in the PDU."""

    def __init__(self, source: int, reason: int) -> None:
        super().__init__(f"A-ABORT source {source} reason {reason}")
        self.source = source
        self.reason = reason


class ConnectionClosed(Exception):
    """The peer closed the TCP connection, or a timeout expired."""


class ProtocolError(Exception):
    """The peer sent something the upper layer does not allow."""


# -- command sets (always Implicit VR Little Endian, PS3.7 6.3.1) ----------

def _elem(group_elem: int, value: bytes) -> bytes:
    return struct.pack("<HHL", 0x0000, group_elem, len(value)) + value


def _ui(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def encode_command(elements: dict[int, bytes]) -> bytes:
    """A command set from ``{element number in group 0000: encoded value}``."""
    body = b"".join(_elem(tag, elements[tag]) for tag in sorted(elements))
    return _elem(0x0000, struct.pack("<L", len(body))) + body


def c_store_rq(message_id: int, sop_class: str, sop_instance: str, priority: int = 0,
               move_originator: tuple[str, int] | None = None) -> bytes:
    elements = {0x0002: _ui(sop_class), 0x0100: _us(C_STORE_RQ), 0x0110: _us(message_id),
                0x0700: _us(priority), 0x0800: _us(0x0000), 0x1000: _ui(sop_instance)}
    if move_originator:
        aet = move_originator[0].encode("ascii")
        elements[0x1030] = aet + b" " if len(aet) % 2 else aet
        elements[0x1031] = _us(move_originator[1])
    return encode_command(elements)


def c_store_rsp(message_id: int, sop_class: str, sop_instance: str, status: int,
                error_comment: str | None = None) -> bytes:
    elements = {0x0002: _ui(sop_class), 0x0100: _us(C_STORE_RSP), 0x0120: _us(message_id),
                0x0800: _us(NO_DATA_SET), 0x0900: _us(status), 0x1000: _ui(sop_instance)}
    if error_comment and status != 0:
        text = error_comment[:64].encode("latin-1", "replace")
        elements[0x0902] = text + b" " if len(text) % 2 else text
    return encode_command(elements)


def c_echo_rq(message_id: int, sop_class: str = "1.2.840.10008.1.1") -> bytes:
    return encode_command({0x0002: _ui(sop_class), 0x0100: _us(C_ECHO_RQ), 0x0110: _us(message_id),
                           0x0800: _us(NO_DATA_SET)})


def c_echo_rsp(message_id: int, sop_class: str, status: int = 0) -> bytes:
    return encode_command({0x0002: _ui(sop_class), 0x0100: _us(C_ECHO_RSP), 0x0120: _us(message_id),
                           0x0800: _us(NO_DATA_SET), 0x0900: _us(status)})


_US_TAGS = {0x0100, 0x0110, 0x0120, 0x0700, 0x0800, 0x0900, 0x1020, 0x1021, 0x1022, 0x1023, 0x1031}
_UL_TAGS = {0x0000}


def decode_command(data: bytes) -> dict[int, int | str]:
    """Parse a command set into ``{element number: int or str}``."""
    out: dict[int, int | str] = {}
    pos, end = 0, len(data)
    while pos + 8 <= end:
        group, elem, length = struct.unpack_from("<HHL", data, pos)
        pos += 8
        value = data[pos:pos + length]
        pos += length
        if group != 0x0000:
            continue
        if elem in _US_TAGS and length == 2:
            out[elem] = struct.unpack("<H", value)[0]
        elif elem in _UL_TAGS and length == 4:
            out[elem] = struct.unpack("<L", value)[0]
        else:
            out[elem] = value.decode("latin-1").strip(" \x00")
    return out


# -- association PDUs (PS3.8 9.3.2 - 9.3.4) -------------------------------------

@dataclass
class Context:
    """A presentation context: proposed (several syntaxes) or answered (one, with a result)."""

    context_id: int | None
    abstract_syntax: str
    transfer_syntax: list[str]
    result: int | None = None


@dataclass
class Associate:
    """The fields of an A-ASSOCIATE-RQ or -AC that dcmcli uses."""

    calling_ae_title: str = ""
    called_ae_title: str = ""
    contexts: list[Context] = field(default_factory=list)
    max_pdu: int = 0
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _ae16(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def _user_information(max_pdu: int) -> bytes:
    return _item(0x50, _item(0x51, struct.pack(">L", max_pdu))
                 + _item(0x52, IMPLEMENTATION_CLASS_UID.encode("ascii"))
                 + _item(0x55, IMPLEMENTATION_VERSION_NAME.encode("ascii")))


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(body)) + body


def encode_associate_rq(calling: str, called: str, contexts: Sequence[Context], max_pdu: int) -> bytes:
    body = struct.pack(">HH", 1, 0) + _ae16(called) + _ae16(calling) + bytes(32)
    body += _item(0x10, APPLICATION_CONTEXT.encode("ascii"))
    for cx in contexts:
        sub = _item(0x30, cx.abstract_syntax.encode("ascii"))
        sub += b"".join(_item(0x40, ts.encode("ascii")) for ts in cx.transfer_syntax)
        body += _item(0x20, struct.pack(">BBBB", cx.context_id or 0, 0, 0, 0) + sub)
    body += _user_information(max_pdu)
    return _pdu(PDU_ASSOCIATE_RQ, body)


def encode_associate_ac(rq: Associate, results: Sequence[Context], max_pdu: int) -> bytes:
    body = struct.pack(">HH", 1, 0) + _ae16(rq.called_ae_title) + _ae16(rq.calling_ae_title) + bytes(32)
    body += _item(0x10, APPLICATION_CONTEXT.encode("ascii"))
    for cx in results:
        # A rejected context still carries one (not significant) transfer syntax sub-item.
        ts = (cx.transfer_syntax[:1] or ["1.2.840.10008.1.2"])[0]
        body += _item(0x21, struct.pack(">BBBB", cx.context_id or 0, 0, cx.result or 0, 0)
                      + _item(0x40, ts.encode("ascii")))
    body += _user_information(max_pdu)
    return _pdu(PDU_ASSOCIATE_AC, body)


def encode_associate_rj(result: int, source: int, reason: int) -> bytes:
    return _pdu(PDU_ASSOCIATE_RJ, struct.pack(">BBBB", 0, result, source, reason))


def _text(raw: bytes | bytearray | memoryview) -> str:
    return bytes(raw).decode("ascii", "replace").strip(" \x00")


def _items(data: bytes | bytearray | memoryview, start: int, end: int) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    pos = start
    while pos + 4 <= end:
        item_type = view[pos]
        (length,) = struct.unpack_from(">H", view, pos + 2)
        if pos + 4 + length > end:
            raise ProtocolError("an A-ASSOCIATE item runs past the end of its PDU")
        yield item_type, view[pos + 4:pos + 4 + length]
        pos += 4 + length


def decode_associate(pdu_type: int, body: bytes | bytearray) -> Associate:
    """Decode the body of an A-ASSOCIATE-RQ or -AC PDU."""
    if len(body) < 68:
        raise ProtocolError("A-ASSOCIATE PDU too short")
    info = Associate(called_ae_title=_text(body[4:20]), calling_ae_title=_text(body[20:36]))
    for item_type, value in _items(body, 68, len(body)):
        if item_type in (0x20, 0x21):  # presentation context (RQ, AC)
            cid = value[0]
            abstract, syntaxes = "", []
            for sub_type, sub in _items(value, 4, len(value)):
                if sub_type == 0x30:
                    abstract = _text(sub)
                elif sub_type == 0x40:
                    syntaxes.append(_text(sub))
            result = value[2] if item_type == 0x21 else None
            info.contexts.append(Context(cid, abstract, syntaxes, result))
        elif item_type == 0x50:  # user information
            for sub_type, sub in _items(value, 0, len(value)):
                if sub_type == 0x51 and len(sub) == 4:
                    info.max_pdu = struct.unpack(">L", sub)[0]
                elif sub_type == 0x52:
                    info.implementation_class_uid = _text(sub)
                elif sub_type == 0x55:
                    info.implementation_version_name = _text(sub)
    return info


def decode_associate_rj(body: bytes | bytearray) -> tuple[int, int, int]:
    """(result, source, reason) of an A-ASSOCIATE-RJ."""
    if len(body) < 4:
        raise ProtocolError("A-ASSOCIATE-RJ PDU too short")
    return body[1], body[2], body[3]


def negotiate(proposed: Sequence[Context], supported: Callable[[str], bool], preference: Sequence[str]) -> list[Context]:
    """Answer each proposed context as acceptor (PS3.8 9.3.3.2).

    The transfer syntax chosen is the first of ``preference`` the requestor
    proposed. Results: 0 acceptance, 3 abstract syntax not supported, 4
    transfer syntaxes not supported. SCP/SCU role selection and extended
    negotiation items are not answered (their defaults apply).
    """
    results = []
    for cx in proposed:
        if not supported(cx.abstract_syntax):
            results.append(Context(cx.context_id, cx.abstract_syntax, cx.transfer_syntax[:1], 3))
            continue
        offered = set(cx.transfer_syntax)
        chosen = next((ts for ts in preference if ts in offered), None)
        if chosen is None:
            results.append(Context(cx.context_id, cx.abstract_syntax, cx.transfer_syntax[:1], 4))
        else:
            results.append(Context(cx.context_id, cx.abstract_syntax, [chosen], 0))
    return results


def abort_pdu(source: int = 0, reason: int = 0) -> bytes:
    return struct.pack(">BBLBBBB", PDU_ABORT, 0, 4, 0, 0, source, reason)


RELEASE_RQ = struct.pack(">BBLL", PDU_RELEASE_RQ, 0, 4, 0)
RELEASE_RP = struct.pack(">BBLL", PDU_RELEASE_RP, 0, 4, 0)


# -- the connection -----------------------------------------------------------

@dataclass
class Connection:
    """One association's socket after (or during) negotiation."""

    sock: socket.socket
    peer_max_pdu: int = 16384
    #: Largest P-DATA PDU accepted: what we announced, with slack for peers
    #: that count the 6-byte header in; 0 announced means UNLIMITED_RECEIVE.
    max_receive: int = UNLIMITED_RECEIVE
    accepted: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (abstract, transfer syntax)
    _buffer: bytearray = field(default_factory=bytearray)
    closed: bool = False

    # -- raw PDUs ---------------------------------------------------------
    def _recv_exact(self, n: int) -> bytearray:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                if _QUICKACK is not None and n <= 6:
                    # ACK at once: a peer that leaves Nagle on (DCMTK without
                    # TCP_NODELAY=1) otherwise waits ~40 ms for our delayed ACK
                    # before sending the rest of each PDU. Linux resets this
                    # flag after reads, so it is set before each PDU header.
                    self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                k = self.sock.recv_into(view[got:], n - got)
            except (socket.timeout, TimeoutError):
                raise ConnectionClosed("timeout") from None
            except OSError as exc:
                raise ConnectionClosed(str(exc)) from None
            if k == 0:
                raise ConnectionClosed("the peer closed the connection")
            got += k
        return buf

    def read_pdu(self) -> tuple[int, bytearray]:
        header = self._recv_exact(6)
        pdu_type, _, length = struct.unpack(">BBL", header)
        limit = self.max_receive if pdu_type == PDU_DATA else MAX_CONTROL_PDU
        if length > limit:
            # Never allocate what a hostile or broken peer claims (up to 4 GiB).
            self.abort(2, 6)  # invalid PDU parameter value
            raise ProtocolError(f"the peer sent a PDU of {length} bytes, more than the {limit} allowed")
        body = self._recv_exact(length) if length else bytearray()
        if pdu_type == PDU_ABORT:
            source, reason = (body[2], body[3]) if len(body) >= 4 else (0, 0)
            self.closed = True
            raise PeerAborted(source, reason)
        return pdu_type, body

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except (socket.timeout, TimeoutError):
            raise ConnectionClosed("timeout while sending") from None
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from None

    def abort(self, source: int = 0, reason: int = 0) -> None:
        if not self.closed:
            try:
                self.sock.sendall(abort_pdu(source, reason))
            except OSError:
                pass
        self.close()

    def await_close(self, artim: float = 10.0) -> None:
        """After A-RELEASE-RP the requestor closes the connection (PS3.8 7.2,
        ARTIM); closing first could reset it before the peer reads the RP."""
        self.closed = True
        try:
            self.sock.settimeout(artim)
            while self.sock.recv(4096):
                pass
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # -- P-DATA -----------------------------------------------------------
    @property
    def max_fragment(self) -> int:
        """Largest PDV value that fits the peer's maximum PDU (PS3.8 9.3.5)."""
        return self.peer_max_pdu - 6 if self.peer_max_pdu else UNLIMITED_CHUNK

    def send_command(self, context_id: int, command: bytes) -> None:
        self._send_fragments(context_id, command, is_command=True)

    def _send_fragments(self, context_id: int, data: bytes, *, is_command: bool) -> None:
        step = self.max_fragment
        view = memoryview(data)
        for start in range(0, max(len(data), 1), step):
            chunk = view[start:start + step]
            last = start + step >= len(data)
            self._send_pdv(context_id, chunk, is_command, last)

    def _send_pdv(self, context_id: int, chunk: bytes | memoryview, is_command: bool, last: bool) -> None:
        mch = (0x01 if is_command else 0x00) | (0x02 if last else 0x00)
        n = len(chunk)
        header = struct.pack(">BBLLBB", PDU_DATA, 0, n + 6, n + 2, context_id, mch)
        try:
            self.sock.sendmsg([header, chunk])
        except (socket.timeout, TimeoutError):
            raise ConnectionClosed("timeout while sending") from None
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from None

    def send_data_bytes(self, context_id: int, data: bytes) -> None:
        self._send_fragments(context_id, data, is_command=False)

    def send_data_file(self, context_id: int, fp: BinaryIO, length: int, pad: bool = False) -> None:
        """Stream ``length`` bytes of ``fp`` (from its position) as data fragments."""
        step = self.max_fragment
        buf = bytearray(min(step, max(length + (1 if pad else 0), 1)))
        remaining = length
        total = length + (1 if pad else 0)
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
            self._send_pdv(context_id, view, False, sent >= total)
            if sent >= total:
                return

    def pdvs(self) -> Iterator[tuple[int, bool, bool, memoryview]]:
        """Yield (context id, is command, is last, value) from incoming P-DATA.

        Stops (returns) at A-RELEASE-RQ after answering it; raises
        ``PeerAborted`` or ``ConnectionClosed`` otherwise.
        """
        while True:
            pdu_type, body = self.read_pdu()
            if pdu_type == PDU_RELEASE_RQ:
                self.send(RELEASE_RP)
                self.await_close()
                return
            if pdu_type != PDU_DATA:
                raise ProtocolError(f"unexpected PDU type 0x{pdu_type:02X} during the data phase")
            view = memoryview(body)
            pos = 0
            while pos + 6 <= len(body):
                (item_len,) = struct.unpack_from(">L", body, pos)
                if item_len < 2 or pos + 4 + item_len > len(body):
                    raise ProtocolError("malformed presentation data value item")
                ctx = body[pos + 4]
                mch = body[pos + 5]
                yield ctx, bool(mch & 0x01), bool(mch & 0x02), view[pos + 6:pos + 4 + item_len]
                pos += 4 + item_len

    def read_command(self) -> tuple[int, dict[int, int | str]]:
        """Read one command set (a response, as requestor)."""
        parts: list[bytes] = []
        for ctx, is_cmd, last, value in self.pdvs():
            if not is_cmd:
                raise ProtocolError("a data set arrived where a command was expected")
            parts.append(bytes(value))
            if last:
                return ctx, decode_command(b"".join(parts))
        raise ConnectionClosed("the peer released the association while a response was due")

    def release(self, timeout: float) -> None:
        """A-RELEASE as requestor; close either way."""
        if self.closed:
            return
        try:
            self.sock.settimeout(timeout)
            self.send(RELEASE_RQ)
            while True:
                pdu_type, _ = self.read_pdu()
                if pdu_type == PDU_RELEASE_RP:
                    break
        except (ConnectionClosed, PeerAborted, OSError):
            pass
        self.close()
