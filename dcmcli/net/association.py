"""The requestor: settings, opening associations, the negotiation report, and
the message loop of an SCU.

Layer 3 of the engine (beside ``dcmcli.net.acceptor``), on ``ul`` and
``dimse``. Every SCU opens its associations through ``request_association``
(or ``open_association``), so every command gets the same timeouts, PDU
size, implementation identity, TCP_NODELAY, negotiation report and error
messages. ``Association.exchange`` sends one request and waits for its
responses while serving what the peer sends meanwhile (C-STORE
sub-operations of a C-GET, N-EVENT-REPORTs), and sends C-CANCEL when asked.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING
from dataclasses import field

from dcmcli.errors import AssociationAborted, AssociationRejected, ConnectError, NoAcceptableContext
from dcmcli.net.dimse import C_CANCEL_RQ, Channel, Command, Message, cancel, response
from dcmcli.net.peer import Peer
from dcmcli.net.ul import (MIN_PEER_PDU, PDU_ASSOCIATE_AC, PDU_ASSOCIATE_RJ, Associate, CommonExtendedNegotiation,
                           Connection, ConnectionClosed, Context, ExtendedNegotiation, PeerAborted, ProtocolError,
                           RoleSelection, UserIdentity, decode_associate, decode_associate_rj, encode_associate_rq,
                           receive_limit)
from dcmcli.records import dataclass
from dcmcli.uids import uid_name

if TYPE_CHECKING:
    import ssl

    from dcmcli.net.tls import TlsOptions


@dataclass
class AssociationSettings:
    """What DCMTK spells -aet, -aec, -to, -ta, -td, -pdu, plus TCP_NODELAY."""

    calling_aet: str = "DCMCLI"
    called_aet: str = "ANY-SCP"
    connect_timeout: float | None = 15.0
    acse_timeout: float = 30.0
    dimse_timeout: float | None = 120.0
    max_pdu: int = 131072  # what we receive; DCMTK defaults to 16384 and allows up to this
    tcp_nodelay: bool = True
    #: -aec was given (then AET@host:port naming another title is a conflict).
    called_aet_given: bool = False
    #: Called with debug lines (A-ASSOCIATE contents, every command set) for -d.
    trace: Callable[[str], None] | None = None
    #: TLS (PS3.15 B): the requestor's and the acceptor's settings; None: plain TCP.
    tls: TlsOptions | None = None
    #: User Identity sent with every association request (-usr/-pwd, --jwt, --saml).
    user_identity: UserIdentity | None = None
    #: The contexts built from ``tls`` (built once, reused by every association).
    _tls_contexts: dict[str, ssl.SSLContext] = field(default_factory=dict, repr=False)

    def tls_context(self, side: str) -> ssl.SSLContext:
        """The client ("requestor") or server ("acceptor") SSL context."""
        ctx = self._tls_contexts.get(side)
        if ctx is None:
            from dcmcli.net.tls import client_context, server_context

            assert self.tls is not None
            ctx = self._tls_contexts[side] = (client_context if side == "requestor" else server_context)(self.tls)
        return ctx


def set_nodelay(sock: socket.socket | None, on: bool = True) -> None:
    """TCP_NODELAY: without it a synchronous exchange stalls ~40 ms per message on delayed ACKs."""
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if on else 0)


# -- the negotiation report -----------------------------------------------

CONTEXT_RESULTS = {
    0: "accepted",
    1: "rejected by the peer (user rejection)",
    2: "rejected by the peer (no reason given)",
    3: "rejected: abstract syntax (SOP class) not supported",
    4: "rejected: none of the transfer syntaxes supported",
}

RJ_RESULT = {1: "permanent", 2: "transient"}
RJ_SOURCE = {1: "service user", 2: "service provider (ACSE)", 3: "service provider (presentation)"}
RJ_REASON = {
    (1, 1): ("no reason given", "check the peer's log and its configuration for this calling AE title (-aet)"),
    (1, 2): ("application context name not supported", "the peer does not speak DICOM as expected"),
    (1, 3): ("calling AE title not recognised", "check -aet; the peer may need this AE title configured"),
    (1, 7): ("called AE title not recognised", "check -aec"),
    (2, 1): ("no reason given", "check the peer's log"),
    (2, 2): ("protocol version not supported", "the peer does not support DICOM UL version 1"),
    (3, 1): ("temporary congestion", "the peer is busy; try again later"),
    (3, 2): ("local limit exceeded", "the peer has too many associations open; try again later or raise its limit"),
}
ABORT_SOURCE = {0: "service user (the peer's application)", 1: "reserved", 2: "service provider (the peer's network layer)"}
ABORT_REASON = {
    0: "reason not specified", 1: "unrecognised PDU", 2: "unexpected PDU", 4: "unrecognised PDU parameter",
    5: "unexpected PDU parameter", 6: "invalid PDU parameter value",
}


def abort_text(source: int, reason: int) -> str:
    return f"{ABORT_SOURCE.get(source, 'unknown source')}: {ABORT_REASON.get(reason, 'reason not specified')}"


@dataclass
class ContextReport:
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]
    result: int | None
    accepted_transfer_syntax: str | None
    #: Acceptor side: "common-extended-negotiation" when the abstract syntax is
    #: not one the acceptor knows and was accepted because the requestor's SOP
    #: Class Common Extended Negotiation relates it to a service it serves
    #: (PS3.4 B.4.1.2); None otherwise, and always on the requestor side.
    accepted_via: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.context_id,
            "abstract_syntax": self.abstract_syntax,
            "abstract_syntax_name": uid_name(self.abstract_syntax),
            "proposed_transfer_syntaxes": self.transfer_syntaxes,
            "result": self.result,
            "result_text": CONTEXT_RESULTS.get(self.result, "no answer") if self.result is not None else "no answer",
            "accepted_transfer_syntax": self.accepted_transfer_syntax,
            "accepted_via": self.accepted_via,
        }


@dataclass
class RoleReport:
    sop_class: str
    proposed_scu: bool
    proposed_scp: bool
    accepted_scu: bool | None  # None: the acceptor did not answer (the defaults apply)
    accepted_scp: bool | None

    def as_dict(self) -> dict[str, object]:
        return {"sop_class": self.sop_class, "sop_class_name": uid_name(self.sop_class),
                "proposed_scu": self.proposed_scu, "proposed_scp": self.proposed_scp,
                "accepted_scu": self.accepted_scu, "accepted_scp": self.accepted_scp}


@dataclass
class ExtendedReport:
    sop_class: str
    proposed: list[int]
    accepted: list[int] | None  # None: not answered (not supported)

    def as_dict(self) -> dict[str, object]:
        return {"sop_class": self.sop_class, "sop_class_name": uid_name(self.sop_class),
                "proposed": self.proposed, "accepted": self.accepted}


#: What a SOP Class Common Extended Negotiation item did at the acceptor (``CommonExtendedReport.effect``).
CEN_EFFECTS = {
    "accepted-as-storage": "its SOP class accepted as storage because of it",
    "not-needed": "its SOP class is served anyway",
    "not-used": "no context of its SOP class accepted through it",
}


@dataclass
class CommonExtendedReport:
    """A SOP Class Common Extended Negotiation item proposed (PS3.7 D.3.3.6:
    request only, never answered). ``effect`` (acceptor side, see
    ``CEN_EFFECTS``): what the acceptor made of it; None on the requestor side,
    where no answer exists."""

    sop_class: str
    service_class: str
    related_general_sop_classes: list[str]
    effect: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"sop_class": self.sop_class, "sop_class_name": uid_name(self.sop_class),
                "service_class": self.service_class, "service_class_name": uid_name(self.service_class),
                "related_general_sop_classes": list(self.related_general_sop_classes), "effect": self.effect}

    def line(self) -> str:
        related = ", ".join(uid_name(u) for u in self.related_general_sop_classes) or "none"
        effect = f": {CEN_EFFECTS.get(self.effect, self.effect)}" if self.effect else ""
        return (f"  common extended negotiation {uid_name(self.sop_class)}: service class "
                f"{uid_name(self.service_class)}, related general SOP classes {related}{effect}")


@dataclass
class NegotiationReport:
    """One association's negotiation, the same object on the requestor and
    the acceptor side (``side``); the ``association`` JSON event."""

    peer: Peer
    calling_aet: str
    called_aet: str
    side: str = "requestor"
    outcome: str = "not attempted"
    contexts: list[ContextReport] = field(default_factory=list)
    roles: list[RoleReport] = field(default_factory=list)
    extended: list[ExtendedReport] = field(default_factory=list)
    common_extended: list[CommonExtendedReport] = field(default_factory=list)
    async_window: dict[str, object] | None = None
    user_identity: dict[str, object] | None = None
    peer_ae_title: str | None = None
    peer_max_pdu: int | None = None
    peer_implementation_class_uid: str | None = None
    peer_implementation_version_name: str | None = None
    rejection: dict[str, object] | None = None
    abort: dict[str, object] | None = None
    connect_error: str | None = None
    #: TLS version, cipher, the peer certificate's subject, issuer, expiry (None: plain TCP)
    tls: dict[str, object] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "side": self.side,
            "peer": self.peer.as_dict(),
            "calling_aet": self.calling_aet,
            "called_aet": self.called_aet,
            "outcome": self.outcome,
            "contexts": [c.as_dict() for c in self.contexts],
            "roles": [r.as_dict() for r in self.roles],
            "extended_negotiation": [e.as_dict() for e in self.extended],
            "common_extended_negotiation": [c.as_dict() for c in self.common_extended],
            "async_window": self.async_window,
            "user_identity": self.user_identity,
            "peer_ae_title": self.peer_ae_title,
            "peer_max_pdu": self.peer_max_pdu,
            "peer_implementation_class_uid": self.peer_implementation_class_uid,
            "peer_implementation_version_name": self.peer_implementation_version_name,
            "rejection": self.rejection,
            "abort": self.abort,
            "connect_error": self.connect_error,
            "tls": self.tls,
        }

    def lines(self) -> list[str]:
        """The report as plain lines for ``-v``."""
        if self.side == "acceptor":
            out = [f"association from {self.calling_aet} at {self.peer.host}:{self.peer.port} "
                   f"to {self.called_aet}: {self.outcome}"]
        else:
            out = [f"association {self.calling_aet} -> {self.called_aet} at {self.peer}: {self.outcome}"]
        if self.peer_implementation_class_uid:
            out.append(f"  peer AE {self.peer_ae_title!r}, max PDU {self.peer_max_pdu}, implementation "
                       f"{self.peer_implementation_class_uid} {self.peer_implementation_version_name or ''}".rstrip())
        for c in self.contexts:
            verdict = CONTEXT_RESULTS.get(c.result, "no answer") if c.result is not None else "no answer"
            if c.result == 0 and c.accepted_transfer_syntax:
                verdict += f" in {uid_name(c.accepted_transfer_syntax)}"
            if c.accepted_via == "common-extended-negotiation":
                verdict += " (as storage: the requestor's common extended negotiation)"
            out.append(f"  context {c.context_id}: {uid_name(c.abstract_syntax)} "
                       f"[{', '.join(uid_name(t) for t in c.transfer_syntaxes)}]: {verdict}")
        for r in self.roles:
            def roles(scu: bool | None, scp: bool | None) -> str:
                if scu is None:
                    return "not answered (default roles)"
                return "+".join(n for n, on in (("SCU", scu), ("SCP", scp)) if on) or "none"
            out.append(f"  role selection {uid_name(r.sop_class)}: proposed {roles(r.proposed_scu, r.proposed_scp)}, "
                       f"accepted {roles(r.accepted_scu, r.accepted_scp)}")
        for e in self.extended:
            out.append(f"  extended negotiation {uid_name(e.sop_class)}: proposed {e.proposed}, "
                       f"accepted {e.accepted if e.accepted is not None else 'not supported'}")
        out += [c.line() for c in self.common_extended]
        if self.tls:
            t = self.tls
            out.append(f"  TLS: {t.get('version')}, {t.get('cipher')}"
                       + (f"; peer certificate {t.get('peer_subject')}, issued by {t.get('peer_issuer')}, "
                          f"valid until {t.get('peer_not_after')}" if t.get("peer_subject") else
                          "; the peer presented no certificate"))
        if self.user_identity:
            out.append(f"  user identity: {self.user_identity}")
        if self.rejection:
            out.append(f"  rejected: {self.rejection['result_text']}, source {self.rejection['source_text']}, "
                       f"reason {self.rejection['reason_text']}")
        if self.abort:
            out.append(f"  aborted by {self.abort['source_text']}: {self.abort['reason_text']}")
        return out


def describe_associate(kind: str, a: Associate) -> str:
    """An A-ASSOCIATE-RQ/AC as DCMTK's -d shows it."""
    lines = [f"{kind}: calling {a.calling_ae_title!r}, called {a.called_ae_title!r}, max PDU {a.max_pdu}, "
             f"implementation {a.implementation_class_uid} {a.implementation_version_name or ''}".rstrip()]
    for cx in a.contexts:
        result = "" if cx.result is None else f" -> {CONTEXT_RESULTS.get(cx.result, cx.result)}"
        lines.append(f"  context {cx.context_id}: {uid_name(cx.abstract_syntax) if cx.abstract_syntax else ''} "
                     f"[{', '.join(uid_name(t) for t in cx.transfer_syntax)}]{result}")
    for r in a.roles:
        lines.append(f"  role {uid_name(r.sop_class)}: SCU {int(r.scu)} SCP {int(r.scp)}")
    for e in a.extended:
        lines.append(f"  extended {uid_name(e.sop_class)}: {list(e.info)}")
    for c in a.common_extended:
        lines.append(f"  common extended {uid_name(c.sop_class)}: service class {uid_name(c.service_class)}, "
                     f"related general [{', '.join(uid_name(u) for u in c.related_general_sop_classes)}]")
    if a.async_window:
        lines.append(f"  asynchronous operations window {a.async_window}")
    return "\n".join(lines)


def resolve(peer: Peer) -> tuple[str, int]:
    """Resolve the peer's host name to a socket address and family."""
    try:
        # An ASCII name as bytes: a str goes through the idna codec (1 ms of imports).
        host = peer.host.encode("ascii") if peer.host.isascii() else peer.host
        infos = socket.getaddrinfo(host, peer.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectError(f"cannot connect to {peer}: unknown host {peer.host!r} ({exc.strerror})",
                           "check the host name or use an IP address") from None
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    return infos[0][4][0], infos[0][0]


def rejection_info(result: int, source: int, diag: int) -> dict[str, object]:
    reason = RJ_REASON.get((source, diag), (f"reason {diag}", ""))[0]
    return {"result": result, "result_text": RJ_RESULT.get(result, str(result)),
            "source": source, "source_text": RJ_SOURCE.get(source, str(source)),
            "reason": diag, "reason_text": reason}


def _rejected(report: NegotiationReport, peer: Peer, result: int, source: int, diag: int) -> AssociationRejected:
    """The error for an A-ASSOCIATE-RJ, with the report filled in."""
    reason, hint = RJ_REASON.get((source, diag), (f"reason {diag}", "check the peer's log"))
    report.outcome = "rejected"
    report.rejection = rejection_info(result, source, diag)
    if (source, diag) == (1, 7):
        hint = f"check -aec (sent {report.called_aet!r})"
    elif (source, diag) == (1, 3):
        hint = f"check -aet (sent {report.calling_aet!r}); the peer may need this AE title configured"
    return AssociationRejected(f"association rejected by {peer} ({report.rejection['result_text']}): {reason}",
                               hint, report=report)


def _no_context(report: NegotiationReport, peer: Peer) -> NoAcceptableContext:
    report.outcome = "no acceptable presentation context"
    wanted = sorted({uid_name(c.abstract_syntax) for c in report.contexts})
    return NoAcceptableContext(
        f"{peer} accepted the association but none of the {len(report.contexts)} presentation contexts "
        f"({', '.join(wanted[:3])}{'...' if len(wanted) > 3 else ''})",
        "the peer does not support this SOP class or transfer syntax; run with -v to see each context",
        report=report)


def _connect_message(peer: Peer, exc: OSError, settings: AssociationSettings) -> tuple[str, str]:
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return (f"cannot connect to {peer}: connection refused",
                "is the peer running and listening on that port? check the host and port")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return (f"cannot connect to {peer}: no answer within {settings.connect_timeout:g} s",
                "check the host, the port and any firewall; raise -to for slow networks")
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"cannot connect to {peer}: {exc.strerror}", "check the network route to the peer"
    return f"cannot connect to {peer}: {exc.strerror or exc}", "check the host and port"


def lost_reason(exc: Exception, settings: AssociationSettings) -> str:
    """Why an established association stopped answering, in plain words."""
    if isinstance(exc, PeerAborted):
        return f"the peer aborted ({abort_text(exc.source, exc.reason)})"
    if isinstance(exc, ConnectionClosed):
        if str(exc) == "timeout":
            limit = f"{settings.dimse_timeout:g} s" if settings.dimse_timeout else "the time limit"
            return f"no response within {limit} (-td)"
        return f"the connection was lost ({exc})"
    return f"protocol error: {exc}"


class Association:
    """An established association, requestor side."""

    def __init__(self, conn: Connection, report: NegotiationReport, settings: AssociationSettings, peer: Peer,
                 ac: Associate) -> None:
        self.conn = conn
        self.report = report
        self.settings = settings
        self.peer = peer
        self.ac = ac
        trace = settings.trace
        self.channel = Channel(conn, on_command=(lambda d, ctx, cmd: trace(f"{d} on context {ctx}: {cmd.describe()}"))
                               if trace else None)
        self._message_id = 0
        #: Accepted roles per SOP class: (requestor may be SCU, requestor may be SCP).
        self.roles: dict[str, tuple[bool, bool]] = {}
        for r in report.roles:
            if r.accepted_scu is not None:
                self.roles[r.sop_class] = (bool(r.accepted_scu), bool(r.accepted_scp))

    # -- contexts -----------------------------------------------------------
    @property
    def accepted(self) -> dict[int, tuple[str, str]]:
        return self.conn.accepted

    # the names the storage handler uses on both sides (C-STORE sub-operations of a C-GET)
    @property
    def remote_aet(self) -> str:
        return self.report.called_aet

    @property
    def local_aet(self) -> str:
        return self.settings.calling_aet

    @property
    def remote_address(self) -> str:
        return f"{self.peer.host}:{self.peer.port}"

    def contexts_for(self, abstract_syntax: str) -> list[tuple[int, str]]:
        """(context id, transfer syntax) of every accepted context for a SOP class."""
        return [(cid, ts) for cid, (a, ts) in sorted(self.conn.accepted.items()) if a == abstract_syntax]

    def context_for(self, abstract_syntax: str) -> int | None:
        found = self.contexts_for(abstract_syntax)
        return found[0][0] if found else None

    def next_message_id(self) -> int:
        self._message_id = self._message_id % 0xFFFF + 1
        return self._message_id

    # -- messages -----------------------------------------------------------
    def lost(self, exc: Exception, doing: str, hint: str = "check the peer's log") -> AssociationAborted:
        """The error for an association that died while ``doing`` something."""
        if isinstance(exc, ProtocolError) and not self.conn.closed:
            self.conn.abort(2, exc.reason)
        return AssociationAborted(f"association with {self.peer} lost while {doing}: {lost_reason(exc, self.settings)}",
                                  hint, report=self.report)

    def send(self, context_id: int, command: bytes, data: bytes | None = None) -> None:
        self.channel.send(context_id, command, data)

    def receive(self) -> Message:
        """The next message; the peer releasing here is an error (a response was due)."""
        msg = self.channel.receive()
        if msg is None:
            raise ConnectionClosed("the peer released the association while a response was due")
        return msg

    def exchange(self, context_id: int, command: bytes, data: bytes | None, message_id: int, *,
                 on_response: Callable[[Command, bytes | None], None] | None = None,
                 handlers: dict[int, Callable[[Association, Message], None]] | None = None,
                 should_cancel: Callable[[], bool] | None = None,
                 data_limit: int = 64 << 20) -> Command:
        """Send one request and read its responses until the final one, which is returned.

        ``on_response(command, data)`` sees every response, pending ones
        included, with its data set (bytes, at most ``data_limit``).
        ``handlers`` serve requests the peer sends meanwhile, by command
        field (each must answer); any other request is answered with
        0x0211 (unrecognised operation). After each pending response
        ``should_cancel()`` is asked; when true, one C-CANCEL-RQ is sent.
        Network failures raise ``ConnectionClosed``, ``PeerAborted`` or
        ``ProtocolError``; the caller words them with ``lost``.
        """
        self.send(context_id, command, data)
        cancelled = False
        while True:
            msg = self.receive()
            cmd = msg.command
            if cmd.is_request:
                self._serve_request(msg, handlers)
                continue
            if cmd.responding_to != message_id:
                raise ProtocolError(f"a {cmd.name} for message {cmd.responding_to}, while {message_id} is the one "
                                    f"outstanding")
            payload = self.channel.read_data(data_limit) if cmd.has_dataset else None
            if on_response is not None:
                on_response(cmd, payload)
            if cmd.status in (0xFF00, 0xFF01):
                if not cancelled and should_cancel is not None and should_cancel():
                    self.send(context_id, cancel(message_id))
                    cancelled = True
                continue
            return cmd

    def _serve_request(self, msg: Message, handlers: dict[int, Callable[[Association, Message], None]] | None) -> None:
        """A request the peer sent while we are the requestor: its handler, or 0x0211."""
        cmd = msg.command
        handler = (handlers or {}).get(cmd.field)
        if handler is not None:
            handler(self, msg)
            return
        self.channel.discard_data()
        if cmd.field != C_CANCEL_RQ:
            self.send(msg.context_id, response(cmd.field | 0x8000, cmd.message_id, 0x0211,
                                               affected_sop_class=cmd.text(0x0002) or None))

    def message_waiting(self, timeout: float) -> bool:
        """Whether a message has begun to arrive within ``timeout`` seconds
        (what was read ahead counts)."""
        ch = self.channel
        if ch._pos < len(ch._body) or self.conn._rbuf or (self.conn.tls and self.conn.sock.pending()):
            return True
        import select

        try:
            ready, _, _ = select.select([self.conn.sock], [], [], max(0.0, timeout))
        except (OSError, ValueError):
            return True  # let the next read report the problem
        return bool(ready)

    def serve(self, handlers: dict[int, Callable[[Association, Message], None]], seconds: float,
              done: Callable[[], bool] = lambda: False, poll: float = 0.1) -> bool:
        """After the last response: serve the requests the peer sends
        (N-EVENT-REPORTs) for up to ``seconds``, or until ``done()`` (asked
        every ``poll`` seconds: something else, a listener, may make it
        true). True when ``done()`` ended it. A response arriving here is a
        protocol error; the peer releasing raises ``ConnectionClosed``."""
        import time

        deadline = time.monotonic() + seconds
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not self.message_waiting(min(poll, remaining)):
                continue
            msg = self.receive()
            if not msg.command.is_request:
                raise ProtocolError(f"a {msg.command.name} arrived, but no request of ours was outstanding")
            self._serve_request(msg, handlers)
        return True

    def release(self) -> None:
        self.conn.release(self.settings.acse_timeout)

    def abort(self) -> None:
        self.conn.abort()


def _tls_handshake(sock: socket.socket, settings: AssociationSettings, peer: Peer, address: str,
                   report: NegotiationReport) -> socket.socket:
    """Wrap a connected socket in TLS (the server's certificate and host name
    checked, SNI sent), or raise a ``TlsError`` that says why not."""
    import ssl

    from dcmcli.errors import TlsError
    from dcmcli.net.tls import explain_client, session_info

    ctx = settings.tls_context("requestor")
    sock.settimeout(settings.acse_timeout)
    try:
        wrapped = ctx.wrap_socket(sock, server_hostname=peer.host)
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        message, hint = explain_client(exc, str(peer), peer.host, peer.port, min(5.0, settings.acse_timeout))
        report.outcome = "tls failed"
        report.connect_error = message
        raise TlsError(message, hint, report=report) from None
    report.tls = session_info(wrapped)
    return wrapped


def request_association(settings: AssociationSettings, peer: Peer, contexts: Sequence[Context], *,
                        roles: Sequence[RoleSelection] = (), extended: Sequence[ExtendedNegotiation] = (),
                        common_extended: Sequence[CommonExtendedNegotiation] = (),
                        user_identity: UserIdentity | None = None,
                        async_window: tuple[int, int] | None = None) -> Association:
    """Open an association, or raise the ``NetworkError`` that says why not.

    The report is filled in either way; a raised error carries it as ``.report``.
    """
    if peer.ae_title and settings.called_aet_given and peer.ae_title != settings.called_aet:
        from dcmcli.errors import UsageError

        raise UsageError(f"two called AE titles: -aec {settings.called_aet} and {peer.ae_title}@ in the peer",
                         "give the peer's AE title once")
    called = peer.ae_title or settings.called_aet
    report = NegotiationReport(peer, settings.calling_aet, called)
    report.common_extended = [CommonExtendedReport(c.sop_class, c.service_class, list(c.related_general_sop_classes))
                              for c in common_extended]
    if user_identity is None:
        user_identity = settings.user_identity
    address, family = resolve(peer)
    for n, cx in enumerate(contexts):
        cx.context_id = 2 * n + 1
    sock = socket.socket(family, socket.SOCK_STREAM)
    set_nodelay(sock, settings.tcp_nodelay)
    sock.settimeout(settings.connect_timeout)
    try:
        sock.connect((address, peer.port))
    except OSError as exc:
        sock.close()
        report.outcome = "cannot connect"
        message, hint = _connect_message(peer, exc, settings)
        report.connect_error = message
        raise ConnectError(message, hint, report=report) from None
    if settings.tls is not None:
        sock = _tls_handshake(sock, settings, peer, address, report)
    conn = Connection(sock, max_receive=receive_limit(settings.max_pdu), timeout=settings.acse_timeout)
    rq = Associate(calling_ae_title=settings.calling_aet, called_ae_title=called, contexts=list(contexts),
                   max_pdu=settings.max_pdu, roles=list(roles), extended=list(extended),
                   common_extended=list(common_extended), user_identity=user_identity, async_window=async_window)
    if settings.trace:
        settings.trace(describe_associate("A-ASSOCIATE-RQ sent", rq))
    try:
        conn.send(encode_associate_rq(rq))
        pdu_type, body = conn.read_pdu()
    except PeerAborted as exc:
        conn.close()
        report.outcome = "aborted"
        report.abort = {"source": exc.source, "source_text": ABORT_SOURCE.get(exc.source, "unknown"),
                        "reason": exc.reason, "reason_text": ABORT_REASON.get(exc.reason, "reason not specified")}
        raise AssociationAborted(f"{peer} aborted the association request ({report.abort['reason_text']})",
                                 "check the peer's log; it may not know this calling AE title (-aet)",
                                 report=report) from None
    except ConnectionClosed as exc:
        conn.close()
        report.outcome = "no response"
        if str(exc) == "timeout":
            raise AssociationAborted(
                f"{peer} did not answer the association request within {settings.acse_timeout:g} s",
                "is this a DICOM port? raise -ta if the peer is slow", report=report) from None
        if settings.tls is not None:  # after a TLS 1.3 handshake, a refused client certificate shows here
            from dcmcli.errors import TlsError

            text = str(exc).lower()
            if settings.tls.cert is None or "certificate required" in text:
                raise TlsError(f"{peer} closed the TLS connection without answering: the peer requires a client "
                               f"certificate", "give ours with +tls KEY CERT", report=report) from None
            if "unknown ca" in text or "bad certificate" in text or "certificate unknown" in text:
                raise TlsError(f"{peer} closed the TLS connection: the peer does not trust our certificate",
                               "the peer needs our CA among its trusted certificates", report=report) from None
            raise TlsError(f"{peer} closed the TLS connection without answering the association request",
                           "the peer may not trust our certificate (its log says); check both sides' TLS options",
                           report=report) from None
        raise AssociationAborted(f"{peer} closed the connection without answering the association request",
                                 "is this a DICOM port? check the peer's log; a TLS port needs +tls",
                                 report=report) from None
    except ProtocolError as exc:  # read_pdu has aborted already
        conn.close()
        report.outcome = "failed"
        if "speaks TLS" in str(exc):
            from dcmcli.errors import TlsError

            raise TlsError(f"{peer} answered in TLS: it is a TLS port", "add +tls (and +cf with its CA)",
                           report=report) from None
        raise AssociationAborted(f"{peer} answered with something that is not DICOM: {exc}",
                                 "is this a DICOM port? check the host and port", report=report) from None
    try:
        if pdu_type == PDU_ASSOCIATE_RJ:
            conn.close()
            err = _rejected(report, peer, *decode_associate_rj(body))
            if user_identity is not None:
                err.hint = "the peer may refuse our user identity (-usr/-pwd, --jwt, --saml); " + (err.hint or "")
            raise err
        if pdu_type != PDU_ASSOCIATE_AC:
            raise ProtocolError(f"answered the association request with PDU type 0x{pdu_type:02X}")
        ac = decode_associate(pdu_type, body)
        if ac.max_pdu and ac.max_pdu < MIN_PEER_PDU:
            raise ProtocolError(f"announced a maximum PDU of {ac.max_pdu} bytes, too small for any data")
    except ProtocolError as exc:
        conn.abort(2, exc.reason)
        report.outcome = "failed"
        raise AssociationAborted(f"{peer} sent an invalid association answer: {exc}",
                                 "is this a DICOM port? check the peer's log", report=report) from None
    if settings.trace:
        settings.trace(describe_associate("A-ASSOCIATE-AC received", ac))
    report.peer_ae_title = ac.called_ae_title
    report.peer_max_pdu = ac.max_pdu
    report.peer_implementation_class_uid = ac.implementation_class_uid
    report.peer_implementation_version_name = ac.implementation_version_name
    answers = {cx.context_id: cx for cx in ac.contexts}
    report.contexts = []
    for cx in contexts:
        got = answers.get(cx.context_id)
        ok = got is not None and got.result == 0 and bool(got.transfer_syntax)
        report.contexts.append(ContextReport(int(cx.context_id or 0), cx.abstract_syntax, list(cx.transfer_syntax),
                                             got.result if got is not None else None,
                                             got.transfer_syntax[0] if ok else None))  # type: ignore[union-attr]
        if ok:
            conn.accepted[int(cx.context_id or 0)] = (cx.abstract_syntax, got.transfer_syntax[0])  # type: ignore[union-attr]
    for r in roles:
        answer = ac.role(r.sop_class)
        report.roles.append(RoleReport(r.sop_class, r.scu, r.scp, answer.scu if answer else None,
                                       answer.scp if answer else None))
    for e in extended:
        got_info = ac.extended_info(e.sop_class)
        report.extended.append(ExtendedReport(e.sop_class, list(e.info),
                                              list(got_info) if got_info is not None else None))
    if async_window is not None:
        report.async_window = {"proposed": list(async_window),
                               "accepted": list(ac.async_window) if ac.async_window else [1, 1]}
    if user_identity is not None:
        report.user_identity = {"type": user_identity.kind,
                                "positive_response_requested": user_identity.positive_response_requested,
                                "server_response": ac.user_identity_response is not None}
    conn.peer_max_pdu = ac.max_pdu
    if not conn.accepted:
        conn.abort(0, 0)
        raise _no_context(report, peer)
    report.outcome = "accepted"
    conn.timeout = settings.dimse_timeout
    return Association(conn, report, settings, peer, ac)


@contextlib.contextmanager
def open_association(settings: AssociationSettings, peer: Peer, contexts: Sequence[Context],
                     **negotiation: object) -> Iterator[Association]:
    """``request_association`` as a context manager: released at the end, aborted on an error."""
    assoc = request_association(settings, peer, contexts, **negotiation)  # type: ignore[arg-type]
    try:
        yield assoc
    except BaseException:
        assoc.abort()
        raise
    assoc.release()


__all__ = ["AssociationSettings", "Association", "NegotiationReport", "ContextReport", "RoleReport",
           "ExtendedReport", "CommonExtendedReport", "request_association", "open_association", "lost_reason",
           "set_nodelay",
           "abort_text", "rejection_info", "describe_associate", "resolve"]
