"""The DICOM upper layer (PS3.8): PDUs, A-ASSOCIATE items, negotiation,
P-DATA, release and abort, on one socket in the calling thread.

Layer 1 of the engine (``ul`` -> ``dimse`` -> ``association`` / ``acceptor``
-> ``services``). It knows PDUs and items, never DIMSE commands.

pynetdicom runs every message through two polling threads, queues, a state
machine and pydicom-encoded command sets; measured here that costs 5-15 ms
per C-STORE, ten times DCMTK, and importing it (with pydicom and numpy)
costs about 0.9 s per command. This module does the upper layer in the
calling thread instead, on a non-blocking socket that is read before it
is waited on (one system call per read while data streams in), and
imports neither.

What a hostile or broken peer sends never costs more than it sends: a PDU
body is read incrementally (a claimed length allocates nothing until the
bytes arrive), lengths are checked against what was announced, and every
read of a PDU runs against one deadline for the whole PDU (ARTIM, PS3.8
9.1.5), not a timeout per ``recv``. Every malformed field raises
``ProtocolError`` with the A-ABORT reason to answer it with.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import field

from dcmcli import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dcmcli.records import dataclass

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"

PDU_ASSOCIATE_RQ = 0x01
PDU_ASSOCIATE_AC = 0x02
PDU_ASSOCIATE_RJ = 0x03
PDU_DATA = 0x04
PDU_RELEASE_RQ = 0x05
PDU_RELEASE_RP = 0x06
PDU_ABORT = 0x07
PDU_TYPES = frozenset(range(1, 8))

# A-ABORT reasons (source 2, service provider), PS3.8 9.3.8
ABORT_NOT_SPECIFIED = 0
ABORT_UNRECOGNIZED_PDU = 1
ABORT_UNEXPECTED_PDU = 2
ABORT_UNRECOGNIZED_PARAMETER = 4
ABORT_UNEXPECTED_PARAMETER = 5
ABORT_INVALID_PARAMETER = 6

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

#: Data fragments when the peer sets no PDU limit (max PDU 0).
UNLIMITED_CHUNK = 1 << 20
#: Largest P-DATA PDU read when we announced no limit.
UNLIMITED_RECEIVE = 1 << 28
#: Largest A-ASSOCIATE / A-RELEASE / A-ABORT PDU read at all (128 contexts
#: of 30 transfer syntaxes each fit in a quarter of it).
MAX_CONTROL_PDU = 1 << 20
#: A P-DATA body up to this size, on an association with accepted contexts,
#: is read into one buffer allocated up front (the data path: at most
#: --max-associations of them); larger ones grow as their bytes arrive, this
#: much at a time.
_PREALLOCATE = 256 * 1024
#: How much a small read takes from the socket at once (see _recv_exact):
#: some 30 C-FIND answers, and little to copy again when a large PDU follows.
_READ_AHEAD = 8 * 1024
#: Every other PDU (all a peer can send before negotiating) grows from this
#: step as its bytes arrive: a claimed length allocates nothing.
_CONTROL_STEP = 4096
#: The smallest maximum PDU a peer may announce: a P-DATA PDV needs 6 bytes
#: of header before one byte of value.
MIN_PEER_PDU = 7


def receive_limit(announced_max_pdu: int) -> int:
    """Largest P-DATA PDU body accepted: what we announced, with slack for
    peers that count the 6-byte header in; 0 announced means no limit."""
    return announced_max_pdu + 1024 if announced_max_pdu else UNLIMITED_RECEIVE


class PeerAborted(Exception):
    """The peer sent A-ABORT; ``source`` and ``reason`` as in the PDU."""

    def __init__(self, source: int, reason: int) -> None:
        super().__init__(f"A-ABORT source {source} reason {reason}")
        self.source = source
        self.reason = reason


class ConnectionClosed(Exception):
    """The peer closed the TCP connection, or a deadline expired (``str`` is "timeout")."""


class ProtocolError(Exception):
    """The peer sent something the upper layer (or DIMSE) does not allow.

    ``reason`` is the A-ABORT reason (source 2) to answer it with.
    """

    def __init__(self, message: str, reason: int = ABORT_INVALID_PARAMETER) -> None:
        super().__init__(message)
        self.reason = reason


# -- A-ASSOCIATE items (PS3.8 9.3.2 - 9.3.4, PS3.7 Annex D.3.3) -------------------

@dataclass
class Context:
    """A presentation context: proposed (several syntaxes) or answered (one, with a result)."""

    context_id: int | None
    abstract_syntax: str
    transfer_syntax: list[str]
    result: int | None = None


@dataclass
class RoleSelection:
    """SCP/SCU Role Selection (D.3.3.4): may the requestor be SCU, be SCP, for this SOP class."""

    sop_class: str
    scu: bool
    scp: bool


@dataclass
class ExtendedNegotiation:
    """SOP Class Extended Negotiation (D.3.3.5): service-class application information bytes."""

    sop_class: str
    info: bytes


@dataclass
class CommonExtendedNegotiation:
    """SOP Class Common Extended Negotiation (D.3.3.6), request only."""

    sop_class: str
    service_class: str
    related_general_sop_classes: list[str] = field(default_factory=list)


@dataclass
class UserIdentity:
    """User Identity negotiation request (D.3.3.7): 1 username, 2 username and
    passcode, 3 Kerberos, 4 SAML, 5 JWT."""

    kind: int
    positive_response_requested: bool
    primary: bytes
    secondary: bytes = b""


@dataclass
class Associate:
    """An A-ASSOCIATE-RQ or -AC, every field of PS3.8 and PS3.7 Annex D."""

    calling_ae_title: str = ""
    called_ae_title: str = ""
    contexts: list[Context] = field(default_factory=list)
    max_pdu: int = 0
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    protocol_version: int = 1
    application_context: str = APPLICATION_CONTEXT
    #: Asynchronous Operations Window (invoked, performed); None: not negotiated (1, 1).
    async_window: tuple[int, int] | None = None
    roles: list[RoleSelection] = field(default_factory=list)
    extended: list[ExtendedNegotiation] = field(default_factory=list)
    common_extended: list[CommonExtendedNegotiation] = field(default_factory=list)
    user_identity: UserIdentity | None = None
    #: The acceptor's User Identity server response (AC only; b"" for none).
    user_identity_response: bytes | None = None

    def role(self, sop_class: str) -> RoleSelection | None:
        return next((r for r in self.roles if r.sop_class == sop_class), None)

    def extended_info(self, sop_class: str) -> bytes | None:
        return next((e.info for e in self.extended if e.sop_class == sop_class), None)


def _item(item_type: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise ValueError(f"an A-ASSOCIATE item of {len(value)} bytes does not fit")
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def _u16_prefixed(raw: bytes) -> bytes:
    return struct.pack(">H", len(raw)) + raw


def _ascii(text: str) -> bytes:
    return text.encode("ascii")


def _ae16(title: str) -> bytes:
    return title.encode("ascii")[:16].ljust(16, b" ")


def _user_information(a: Associate, is_rq: bool) -> bytes:
    sub = _item(0x51, struct.pack(">L", a.max_pdu))
    sub += _item(0x52, _ascii(a.implementation_class_uid or IMPLEMENTATION_CLASS_UID))
    if a.async_window is not None:
        sub += _item(0x53, struct.pack(">HH", *a.async_window))
    for r in a.roles:
        sub += _item(0x54, _u16_prefixed(_ascii(r.sop_class)) + bytes((int(r.scu), int(r.scp))))
    sub += _item(0x55, _ascii(a.implementation_version_name or IMPLEMENTATION_VERSION_NAME))
    for e in a.extended:
        sub += _item(0x56, _u16_prefixed(_ascii(e.sop_class)) + e.info)
    if is_rq:
        for c in a.common_extended:
            related = b"".join(_u16_prefixed(_ascii(u)) for u in c.related_general_sop_classes)
            sub += _item(0x57, _u16_prefixed(_ascii(c.sop_class)) + _u16_prefixed(_ascii(c.service_class))
                         + _u16_prefixed(related))
        if a.user_identity is not None:
            u = a.user_identity
            sub += _item(0x58, bytes((u.kind, int(u.positive_response_requested)))
                         + _u16_prefixed(u.primary) + _u16_prefixed(u.secondary))
    elif a.user_identity_response is not None:
        sub += _item(0x59, _u16_prefixed(a.user_identity_response))
    return _item(0x50, sub)


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(body)) + body


def _header(a: Associate, called: str, calling: str) -> bytes:
    return (struct.pack(">HH", a.protocol_version, 0) + _ae16(called) + _ae16(calling) + bytes(32)
            + _item(0x10, _ascii(a.application_context)))


def encode_associate_rq(a: Associate) -> bytes:
    body = _header(a, a.called_ae_title, a.calling_ae_title)
    for cx in a.contexts:
        sub = _item(0x30, _ascii(cx.abstract_syntax))
        sub += b"".join(_item(0x40, _ascii(ts)) for ts in cx.transfer_syntax)
        body += _item(0x20, struct.pack(">BBBB", cx.context_id or 0, 0, 0, 0) + sub)
    return _pdu(PDU_ASSOCIATE_RQ, body + _user_information(a, True))


def encode_associate_ac(a: Associate) -> bytes:
    """The acceptor's answer; ``a`` holds the requestor's AE titles and the results."""
    body = _header(a, a.called_ae_title, a.calling_ae_title)
    for cx in a.contexts:
        # A rejected context still carries one (not significant) transfer syntax sub-item.
        ts = (cx.transfer_syntax[:1] or ["1.2.840.10008.1.2"])[0]
        body += _item(0x21, struct.pack(">BBBB", cx.context_id or 0, 0, cx.result or 0, 0) + _item(0x40, _ascii(ts)))
    return _pdu(PDU_ASSOCIATE_AC, body + _user_information(a, False))


def encode_associate_rj(result: int, source: int, reason: int) -> bytes:
    return _pdu(PDU_ASSOCIATE_RJ, struct.pack(">BBBB", 0, result, source, reason))


def _text(raw: bytes | bytearray | memoryview, what: str, limit: int = 64) -> str:
    """An ASCII field (UID, AE title, name) with its padding removed; anything
    else is a protocol error, never replaced characters."""
    data = bytes(raw)
    if len(data) > limit:
        raise ProtocolError(f"{what} is {len(data)} bytes long (at most {limit})")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError(f"{what} is not ASCII") from None
    text = text.strip(" \x00")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise ProtocolError(f"{what} contains control characters")
    return text


def _uid(raw: bytes | bytearray | memoryview, what: str) -> str:
    text = _text(raw, what)
    if not text or not all(ch.isdigit() or ch == "." for ch in text):
        raise ProtocolError(f"{what} {text!r} is not a UID")
    return text


def _items(data: bytes | bytearray | memoryview, start: int, end: int) -> list[tuple[int, memoryview]]:
    view = memoryview(data)
    out = []
    pos = start
    while pos < end:
        if pos + 4 > end:
            raise ProtocolError("an A-ASSOCIATE item header runs past the end of its PDU")
        item_type = view[pos]
        (length,) = struct.unpack_from(">H", view, pos + 2)
        if pos + 4 + length > end:
            raise ProtocolError("an A-ASSOCIATE item runs past the end of its PDU")
        out.append((item_type, view[pos + 4:pos + 4 + length]))
        pos += 4 + length
    return out


def _prefixed(value: memoryview, pos: int, what: str) -> tuple[memoryview, int]:
    """A field with a 2-byte length prefix at ``pos``; returns it and the position after."""
    if pos + 2 > len(value):
        raise ProtocolError(f"{what}: length field missing")
    (n,) = struct.unpack_from(">H", value, pos)
    if pos + 2 + n > len(value):
        raise ProtocolError(f"{what}: runs past the end of its item")
    return value[pos + 2:pos + 2 + n], pos + 2 + n


def _decode_context(item_type: int, value: memoryview) -> Context:
    if len(value) < 4:
        raise ProtocolError(f"presentation context item of {len(value)} bytes (at least 4)")
    cid = value[0]
    abstract: list[str] = []
    syntaxes: list[str] = []
    for sub_type, sub in _items(value, 4, len(value)):
        if sub_type == 0x30:
            abstract.append(_uid(sub, "abstract syntax"))
        elif sub_type == 0x40:
            syntaxes.append(_uid(sub, "transfer syntax") if item_type == 0x20 or value[2] == 0
                            else _text(sub, "transfer syntax"))
        else:
            raise ProtocolError(f"unknown sub-item 0x{sub_type:02X} in a presentation context",
                                ABORT_UNRECOGNIZED_PARAMETER)
    if item_type == 0x20:
        if len(abstract) != 1:
            raise ProtocolError(f"presentation context {cid} has {len(abstract)} abstract syntaxes (one required)")
        if not syntaxes:
            raise ProtocolError(f"presentation context {cid} proposes no transfer syntax")
        return Context(cid, abstract[0], syntaxes)
    if value[2] > 4:
        raise ProtocolError(f"presentation context {cid} has result {value[2]} (0-4 defined)")
    if value[2] == 0 and len(syntaxes) != 1:
        raise ProtocolError(f"accepted presentation context {cid} names {len(syntaxes)} transfer syntaxes (one required)")
    return Context(cid, "", syntaxes[:1], value[2])


def _decode_user_information(info: Associate, value: memoryview) -> None:
    seen_max = False
    for sub_type, sub in _items(value, 0, len(value)):
        if sub_type == 0x51:
            if len(sub) != 4:
                raise ProtocolError(f"maximum length sub-item of {len(sub)} bytes (4 required)")
            info.max_pdu = struct.unpack(">L", sub)[0]
            seen_max = True
        elif sub_type == 0x52:
            info.implementation_class_uid = _uid(sub, "implementation class UID")
        elif sub_type == 0x55:
            info.implementation_version_name = _text(sub, "implementation version name", 16)
        elif sub_type == 0x53:
            if len(sub) != 4:
                raise ProtocolError("asynchronous operations window sub-item is not 4 bytes")
            invoked, performed = struct.unpack(">HH", sub)
            info.async_window = (invoked, performed)
        elif sub_type == 0x54:
            uid, pos = _prefixed(sub, 0, "role selection")
            if pos + 2 != len(sub):
                raise ProtocolError("role selection sub-item has the wrong length")
            info.roles.append(RoleSelection(_uid(uid, "role selection SOP class"), bool(sub[pos]), bool(sub[pos + 1])))
        elif sub_type == 0x56:
            uid, pos = _prefixed(sub, 0, "extended negotiation")
            info.extended.append(ExtendedNegotiation(_uid(uid, "extended negotiation SOP class"), bytes(sub[pos:])))
        elif sub_type == 0x57:
            uid, pos = _prefixed(sub, 0, "common extended negotiation")
            service, pos = _prefixed(sub, pos, "common extended negotiation")
            related_raw, pos = _prefixed(sub, pos, "common extended negotiation")
            related, rpos = [], 0
            while rpos < len(related_raw):
                r, rpos = _prefixed(related_raw, rpos, "related general SOP class")
                related.append(_uid(r, "related general SOP class"))
            info.common_extended.append(CommonExtendedNegotiation(
                _uid(uid, "common extended negotiation SOP class"), _uid(service, "service class"), related))
        elif sub_type == 0x58:
            if len(sub) < 2:
                raise ProtocolError("user identity sub-item too short")
            primary, pos = _prefixed(sub, 2, "user identity")
            secondary, pos = _prefixed(sub, pos, "user identity") if pos < len(sub) else (memoryview(b""), pos)
            info.user_identity = UserIdentity(sub[0], bool(sub[1]), bytes(primary), bytes(secondary))
        elif sub_type == 0x59:
            response, _ = _prefixed(sub, 0, "user identity response")
            info.user_identity_response = bytes(response)
        # other sub-items (future extensions) are ignored, as PS3.7 D.3.3 asks
    if not seen_max:
        raise ProtocolError("user information has no maximum length sub-item")


def decode_associate(pdu_type: int, body: bytes | bytearray) -> Associate:
    """Decode the body of an A-ASSOCIATE-RQ or -AC PDU, strictly: every
    malformed field raises ``ProtocolError``."""
    if len(body) < 68:
        raise ProtocolError(f"A-ASSOCIATE PDU of {len(body)} bytes (at least 68)")
    (version,) = struct.unpack_from(">H", body, 0)
    info = Associate(called_ae_title=_text(body[4:20], "called AE title", 16),
                     calling_ae_title=_text(body[20:36], "calling AE title", 16), protocol_version=version)
    context_item = 0x20 if pdu_type == PDU_ASSOCIATE_RQ else 0x21
    seen_user_info = seen_app = False
    for item_type, value in _items(body, 68, len(body)):
        if item_type == 0x10:
            info.application_context = _uid(value, "application context name")
            seen_app = True
        elif item_type == context_item:
            info.contexts.append(_decode_context(item_type, value))
        elif item_type == 0x50:
            _decode_user_information(info, value)
            seen_user_info = True
        else:
            raise ProtocolError(f"unexpected item 0x{item_type:02X} in an A-ASSOCIATE PDU", ABORT_UNEXPECTED_PARAMETER)
    if not seen_app:
        raise ProtocolError("no application context item")
    if not seen_user_info:
        raise ProtocolError("no user information item")
    return info


def decode_associate_rj(body: bytes | bytearray) -> tuple[int, int, int]:
    """(result, source, reason) of an A-ASSOCIATE-RJ."""
    if len(body) < 4:
        raise ProtocolError("A-ASSOCIATE-RJ PDU too short")
    return body[1], body[2], body[3]


def negotiate(proposed: Sequence[Context], supported: Callable[[str], Sequence[str] | None]) -> list[Context]:
    """Answer each proposed context as acceptor (PS3.8 9.3.3.2).

    ``supported(abstract_syntax)`` gives the transfer syntaxes accepted for
    it, in order of preference, or None when the SOP class is not; the
    syntax chosen is the first of those the requestor proposed. Results: 0
    acceptance, 3 abstract syntax not supported, 4 transfer syntaxes not
    supported.
    """
    results = []
    for cx in proposed:
        preference = supported(cx.abstract_syntax)
        if preference is None:
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
    #: Largest P-DATA PDU accepted (see ``receive_limit``).
    max_receive: int = UNLIMITED_RECEIVE
    #: Seconds a whole PDU may take to arrive, from the moment we wait for it
    #: (None: no limit). Set to the ACSE timeout while negotiating, then to
    #: the DIMSE timeout.
    timeout: float | None = 30.0
    accepted: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (abstract, transfer syntax)
    closed: bool = False
    #: Bytes received beyond the PDU being read: small PDUs (C-FIND answers)
    #: arrive many per recv; large values are still received into place.
    _rbuf: bytearray = field(default_factory=bytearray, repr=False)
    _scratch: bytearray | None = field(default=None, repr=False)
    _poll: select.poll | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        """Whether the socket is a TLS one (ssl.SSLSocket: no sendmsg, its own buffer)."""
        return hasattr(self.sock, "pending")

    # -- raw PDUs ---------------------------------------------------------
    def _recv_into(self, view: memoryview, deadline: float | None) -> int:
        """One ``recv_into`` bounded by ``deadline`` (None: no limit); returns
        the byte count (never 0).

        A plain socket is non-blocking and read first, waited on only when
        it has nothing: one system call per read while data streams in,
        where a socket timeout costs a poll before every read and a mode
        change whenever the timeout does. A TLS socket keeps Python's timeout
        (its records may need reads and writes of their own)."""
        sock = self.sock
        if self.tls:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectionClosed("timeout")
                sock.settimeout(remaining)
            else:
                sock.settimeout(None)
        elif sock.gettimeout() != 0.0:
            sock.settimeout(0.0)
        while True:
            try:
                k = sock.recv_into(view)
            except BlockingIOError:
                self._wait(select.POLLIN, deadline)
                continue
            except (socket.timeout, TimeoutError):
                raise ConnectionClosed("timeout") from None
            except OSError as exc:
                raise ConnectionClosed(str(exc)) from None
            if k == 0:
                raise ConnectionClosed("the peer closed the connection")
            return k

    def _wait(self, events: int, deadline: float | None, what: str = "timeout") -> None:
        """Until the (non-blocking, plain) socket is ready for ``events``, or
        ``ConnectionClosed(what)`` when ``deadline`` passes first."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self.sock.fileno(), select.POLLIN)
        self._poll.modify(self.sock.fileno(), events)
        while True:
            if deadline is None:
                ms = None
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConnectionClosed(what)
                ms = max(1, int(remaining * 1000 + 0.999))
            if self._poll.poll(ms):
                return  # ready, or an error or hang-up the next call reports

    def _send_plain(self, data: bytes | memoryview, deadline: float | None, what: str = "timeout") -> None:
        """All of ``data`` on the non-blocking plain socket within ``deadline``."""
        sock = self.sock
        if sock.gettimeout() != 0.0:
            sock.settimeout(0.0)
        view = memoryview(data)
        while view:
            try:
                n = sock.send(view)
            except BlockingIOError:
                self._wait(select.POLLOUT, deadline, what)
                continue
            view = view[n:]

    def _take(self, n: int) -> bytearray:
        """Up to ``n`` of the bytes read ahead."""
        rb = self._rbuf
        if len(rb) <= n:
            out = rb[:]
            rb.clear()
        else:
            out = rb[:n]
            del rb[:n]
        return out

    def _recv_exact(self, n: int, deadline: float | None) -> bytearray:
        """``n`` bytes. Small reads (a PDU header, a short PDU) take whatever
        the socket holds, up to ``_READ_AHEAD``: a burst of small PDUs (C-FIND
        answers) then costs one recv, not two per PDU. Only once contexts are
        accepted: before that a peer gets no buffer it did not fill."""
        rb = self._rbuf
        if len(rb) < n <= _READ_AHEAD and self.accepted:
            if self._scratch is None:
                self._scratch = bytearray(_READ_AHEAD)
            view = memoryview(self._scratch)
            while len(rb) < n:
                k = self._recv_into(view, deadline)
                rb += view[:k]
        if len(rb) >= n:
            return self._take(n)
        buf = bytearray(n)
        got = len(rb)
        if got:
            buf[:got] = rb
            rb.clear()
        view = memoryview(buf)
        while got < n:
            got += self._recv_into(view[got:], deadline)
        return buf

    def _recv_growing(self, n: int, deadline: float | None, step: int) -> bytearray:
        """``n`` bytes into a buffer that grows only as they arrive, ``step`` at most per read."""
        buf = self._take(n)
        if len(buf) == n:
            return buf
        chunk = bytearray(min(step, n))
        view = memoryview(chunk)
        while len(buf) < n:
            k = self._recv_into(view[:min(len(chunk), n - len(buf))], deadline)
            buf += view[:k]
        return buf

    def read_pdu(self, timeout: float | None | bool = True) -> tuple[int, bytearray]:
        """Read one PDU within ``timeout`` seconds (default: ``self.timeout``).

        Raises ``PeerAborted`` for an A-ABORT, ``ConnectionClosed`` when the
        connection drops or the deadline passes, ``ProtocolError`` (after
        aborting) for an unknown PDU type or an impossible length.
        """
        limit_s = self.timeout if timeout is True else timeout
        deadline = None if limit_s is None or limit_s is False else time.monotonic() + float(limit_s)
        if _QUICKACK is not None and not self._rbuf:
            # ACK at once: a peer that leaves Nagle on (DCMTK without
            # TCP_NODELAY=1) otherwise waits ~40 ms for our delayed ACK
            # before sending the rest of each PDU. Linux resets this flag
            # after reads, so it is set before each PDU header.
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                pass
        header = self._recv_exact(6, deadline)
        pdu_type, _, length = struct.unpack(">BBL", header)
        if pdu_type not in PDU_TYPES:
            self.abort(2, ABORT_UNRECOGNIZED_PDU)
            if 0x14 <= pdu_type <= 0x17 and header[1] == 0x03 and not self.tls:
                raise ProtocolError("the peer speaks TLS on this connection, and this side plain DICOM "
                                    "(+tls on one side only)", ABORT_UNRECOGNIZED_PDU)
            raise ProtocolError(f"the peer sent an unknown PDU type 0x{pdu_type:02X}: it does not speak the "
                                f"DICOM upper layer", ABORT_UNRECOGNIZED_PDU)
        limit = self.max_receive if pdu_type == PDU_DATA else MAX_CONTROL_PDU
        if length > limit:
            # Never allocate what a hostile or broken peer claims (up to 4 GiB).
            self.abort(2, ABORT_INVALID_PARAMETER)
            raise ProtocolError(f"the peer sent a PDU of {length} bytes, more than the {limit} allowed: it does not "
                                f"speak the DICOM upper layer, or ignores the maximum PDU size")
        step = _PREALLOCATE if pdu_type == PDU_DATA and self.accepted else _CONTROL_STEP
        if length <= step:
            body = self._recv_exact(length, deadline) if length else bytearray()
        else:
            body = self._recv_growing(length, deadline, step)
        if pdu_type == PDU_ABORT:
            source, reason = (body[2], body[3]) if len(body) >= 4 else (0, 0)
            self.close()
            raise PeerAborted(source, reason)
        return pdu_type, body

    def data_waiting(self) -> bool:
        """Whether bytes from the peer are ready to read now (without blocking)."""
        if self._rbuf or (self.tls and self.sock.pending()):  # bytes TLS decrypted already
            return True
        import select

        try:
            ready, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return True  # let the next read report the problem
        return bool(ready)

    def send(self, data: bytes) -> None:
        try:
            if self.tls:
                self.sock.settimeout(self.timeout)
                self.sock.sendall(data)
            else:
                self._send_plain(data, None if self.timeout is None else time.monotonic() + self.timeout)
        except (socket.timeout, TimeoutError):
            raise ConnectionClosed("timeout") from None
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from None

    def abort(self, source: int = 0, reason: int = 0) -> None:
        if not self.closed:
            try:
                self.sock.settimeout(1.0)
                self.sock.sendall(abort_pdu(source, reason))
            except OSError:
                pass
        self.close()

    def await_close(self, artim: float = 10.0) -> None:
        """After A-RELEASE-RP the requestor closes the connection (PS3.8 7.2,
        ARTIM); closing first could reset it before the peer reads the RP."""
        self.closed = True
        deadline = time.monotonic() + artim
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.sock.settimeout(remaining)
                if not self.sock.recv(4096):
                    break
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    # -- P-DATA -----------------------------------------------------------
    @property
    def max_fragment(self) -> int:
        """Largest PDV value that fits the peer's maximum PDU (PS3.8 9.3.5)."""
        return self.peer_max_pdu - 6 if self.peer_max_pdu else UNLIMITED_CHUNK

    def send_message_pdu(self, context_id: int, command: bytes, data: bytes | memoryview) -> bool:
        """A whole small message (command set and data set) as one P-DATA-TF
        PDU of two PDVs (PS3.8 9.3.5 allows several PDVs in a PDU): one write
        and one TCP segment per C-FIND answer instead of two. False (nothing
        sent) when the two do not fit in one PDU for this peer."""
        pdu = self.message_pdu(context_id, command, data)
        if pdu is None:
            return False
        self.send(pdu)
        return True

    def message_pdu(self, context_id: int, command: bytes, data: bytes | memoryview) -> bytes | None:
        """The P-DATA-TF PDU of ``send_message_pdu``, not sent (None: it does
        not fit): a server answering many small messages writes several at once."""
        lc, ld = len(command), len(data)
        if lc + ld + 6 > self.max_fragment or lc + ld > 4096 * 4:
            return None
        body = (struct.pack(">LBB", lc + 2, context_id, 0x03) + command
                + struct.pack(">LBB", ld + 2, context_id, 0x02) + bytes(data))
        return struct.pack(">BBL", PDU_DATA, 0, len(body)) + body

    def send_pdv(self, context_id: int, chunk: bytes | memoryview, is_command: bool, last: bool) -> None:
        mch = (0x01 if is_command else 0x00) | (0x02 if last else 0x00)
        n = len(chunk)
        header = struct.pack(">BBLLBB", PDU_DATA, 0, n + 6, n + 2, context_id, mch)
        try:
            if self.tls:  # an SSL socket has no sendmsg: one write (one copy) beats a TLS record for 12 bytes
                self.sock.settimeout(self.timeout)
                self.sock.sendall(header + bytes(chunk))
                return
            what = "timeout while sending"
            deadline = None if self.timeout is None else time.monotonic() + self.timeout
            if n <= 4096:
                self._send_plain(header + bytes(chunk), deadline, what)
                return
            if self.sock.gettimeout() != 0.0:
                self.sock.settimeout(0.0)
            while True:
                try:
                    sent = self.sock.sendmsg([header, chunk])
                    break
                except BlockingIOError:
                    self._wait(select.POLLOUT, deadline, what)
            if sent < len(header):  # a partial write: send the rest
                self._send_plain(header[sent:], deadline, what)
                sent = len(header)
            if sent - len(header) < n:
                self._send_plain(memoryview(chunk)[sent - len(header):], deadline, what)
        except (socket.timeout, TimeoutError):
            raise ConnectionClosed("timeout while sending") from None
        except OSError as exc:
            raise ConnectionClosed(str(exc)) from None

    def release(self, timeout: float) -> None:
        """A-RELEASE as requestor; close either way."""
        if self.closed:
            return
        try:
            self.timeout = timeout
            self.send(RELEASE_RQ)
            deadline = time.monotonic() + timeout
            while True:
                pdu_type, _ = self.read_pdu(max(0.001, deadline - time.monotonic()))
                if pdu_type == PDU_RELEASE_RP:
                    break
        except (ConnectionClosed, PeerAborted, ProtocolError, OSError):
            pass
        self.close()
