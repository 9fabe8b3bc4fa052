"""The association core: settings, opening associations, and the negotiation report.

Every command opens its associations through ``request_connection`` (as
requestor) or ``dcmcli.net.storescp.StoreServer`` (as acceptor), both on the
lean upper layer in ``dcmcli.net.ul``, so every command gets the same
timeouts, PDU size, implementation identity, TCP_NODELAY and error messages.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from dcmcli.errors import AssociationAborted, AssociationRejected, ConnectError, NoAcceptableContext
from dcmcli.net.peer import Peer
from dcmcli.net.ul import (PDU_ASSOCIATE_AC, PDU_ASSOCIATE_RJ, Connection, ConnectionClosed, Context, PeerAborted,
                           ProtocolError, decode_associate, decode_associate_rj, encode_associate_rq, receive_limit)
from dcmcli.uids import uid_name


@dataclass
class AssociationSettings:
    """What DCMTK spells -aet, -aec, -to, -ta, -td, -pdu, plus TCP_NODELAY."""

    calling_aet: str = "DCMCLI"
    called_aet: str = "ANY-SCP"
    connect_timeout: float | None = 15.0
    acse_timeout: float = 30.0
    dimse_timeout: float | None = 120.0
    network_timeout: float | None = 60.0
    max_pdu: int = 131072  # what we receive; DCMTK defaults to 16384 and allows up to this
    tcp_nodelay: bool = True


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


@dataclass
class ContextReport:
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]
    result: int | None
    accepted_transfer_syntax: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.context_id,
            "abstract_syntax": self.abstract_syntax,
            "abstract_syntax_name": uid_name(self.abstract_syntax),
            "proposed_transfer_syntaxes": self.transfer_syntaxes,
            "result": self.result,
            "result_text": CONTEXT_RESULTS.get(self.result, "no answer") if self.result is not None else "no answer",
            "accepted_transfer_syntax": self.accepted_transfer_syntax,
        }


@dataclass
class NegotiationReport:
    peer: Peer
    calling_aet: str
    called_aet: str
    outcome: str = "not attempted"
    contexts: list[ContextReport] = field(default_factory=list)
    peer_ae_title: str | None = None
    peer_max_pdu: int | None = None
    peer_implementation_class_uid: str | None = None
    peer_implementation_version_name: str | None = None
    rejection: dict[str, object] | None = None
    abort: dict[str, object] | None = None
    connect_error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "peer": self.peer.as_dict(),
            "calling_aet": self.calling_aet,
            "called_aet": self.called_aet,
            "outcome": self.outcome,
            "contexts": [c.as_dict() for c in self.contexts],
            "peer_ae_title": self.peer_ae_title,
            "peer_max_pdu": self.peer_max_pdu,
            "peer_implementation_class_uid": self.peer_implementation_class_uid,
            "peer_implementation_version_name": self.peer_implementation_version_name,
            "rejection": self.rejection,
            "abort": self.abort,
            "connect_error": self.connect_error,
        }

    def lines(self) -> list[str]:
        """The report as plain lines for ``-v``."""
        out = [f"association {self.calling_aet} -> {self.called_aet} at {self.peer}: {self.outcome}"]
        if self.peer_implementation_class_uid:
            out.append(f"  peer AE {self.peer_ae_title!r}, max PDU {self.peer_max_pdu}, implementation "
                       f"{self.peer_implementation_class_uid} {self.peer_implementation_version_name or ''}".rstrip())
        for c in self.contexts:
            verdict = CONTEXT_RESULTS.get(c.result, "no answer") if c.result is not None else "no answer"
            if c.result == 0 and c.accepted_transfer_syntax:
                verdict += f" in {uid_name(c.accepted_transfer_syntax)}"
            out.append(f"  context {c.context_id}: {uid_name(c.abstract_syntax)} "
                       f"[{', '.join(uid_name(t) for t in c.transfer_syntaxes)}]: {verdict}")
        if self.rejection:
            out.append(f"  rejected: {self.rejection['result_text']}, source {self.rejection['source_text']}, "
                       f"reason {self.rejection['reason_text']}")
        if self.abort:
            out.append(f"  aborted by {self.abort['source_text']}: {self.abort['reason_text']}")
        return out


def resolve(peer: Peer) -> tuple[str, int]:
    """Resolve the peer's host name to a socket address and family."""
    try:
        infos = socket.getaddrinfo(peer.host, peer.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectError(f"cannot connect to {peer}: unknown host {peer.host!r} ({exc.strerror})",
                           "check the host name or use an IP address") from None
    infos.sort(key=lambda i: 0 if i[0] == socket.AF_INET else 1)
    return infos[0][4][0], infos[0][0]


def _rejected(report: NegotiationReport, peer: Peer, result: int, source: int, diag: int) -> AssociationRejected:
    """The error for an A-ASSOCIATE-RJ, with the report filled in."""
    reason, hint = RJ_REASON.get((source, diag), (f"reason {diag}", "check the peer's log"))
    report.outcome = "rejected"
    report.rejection = {"result": result, "result_text": RJ_RESULT.get(result, str(result)),
                        "source": source, "source_text": RJ_SOURCE.get(source, str(source)),
                        "reason": diag, "reason_text": reason}
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


def request_connection(settings: AssociationSettings, peer: Peer, contexts: Sequence[Context]
                       ) -> tuple[Connection, NegotiationReport]:
    """Open an association, or raise the ``NetworkError`` that says why not.

    The report is filled in either way; a raised error carries it as ``.report``.
    """
    called = peer.ae_title or settings.called_aet
    report = NegotiationReport(peer, settings.calling_aet, called)
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
    conn = Connection(sock, max_receive=receive_limit(settings.max_pdu))
    sock.settimeout(settings.acse_timeout)
    try:
        conn.send(encode_associate_rq(settings.calling_aet, called, contexts, settings.max_pdu))
        pdu_type, body = conn.read_pdu()
    except PeerAborted as exc:
        conn.close()
        report.outcome = "aborted"
        report.abort = {"source": exc.source, "source_text": ABORT_SOURCE.get(exc.source, "unknown"),
                        "reason": exc.reason, "reason_text": ABORT_REASON.get(exc.reason, "reason not specified")}
        raise AssociationAborted(f"{peer} aborted the association request ({report.abort['reason_text']})",
                                 "check the peer's log", report=report) from None
    except ConnectionClosed as exc:
        conn.close()
        report.outcome = "no response"
        if str(exc) == "timeout":
            raise AssociationAborted(
                f"{peer} did not answer the association request within {settings.acse_timeout:g} s",
                "is this a DICOM port? raise -ta if the peer is slow", report=report) from None
        raise AssociationAborted(f"{peer} closed the connection without answering the association request",
                                 "is this a DICOM port? check the peer's log", report=report) from None
    try:
        if pdu_type == PDU_ASSOCIATE_RJ:
            conn.close()
            raise _rejected(report, peer, *decode_associate_rj(body))
        if pdu_type != PDU_ASSOCIATE_AC:
            raise ProtocolError(f"answered the association request with PDU type 0x{pdu_type:02X}")
        ac = decode_associate(pdu_type, body)
    except ProtocolError as exc:
        conn.abort(2, 0)
        report.outcome = "failed"
        raise AssociationAborted(f"{peer} {exc}", "is this a DICOM port?", report=report) from None
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
    conn.peer_max_pdu = ac.max_pdu
    if not conn.accepted:
        conn.abort(0, 0)
        raise _no_context(report, peer)
    report.outcome = "accepted"
    sock.settimeout(settings.dimse_timeout)
    return conn, report


def lost_reason(exc: Exception, settings: AssociationSettings) -> str:
    """Why an established association stopped answering, in plain words."""
    if isinstance(exc, PeerAborted):
        return (f"the peer aborted ({ABORT_SOURCE.get(exc.source, 'unknown')}: "
                f"{ABORT_REASON.get(exc.reason, 'reason not specified')})")
    if isinstance(exc, ConnectionClosed):
        if str(exc) == "timeout":
            limit = f"{settings.dimse_timeout:g} s" if settings.dimse_timeout else "the time limit"
            return f"no response within {limit} (-td)"
        return f"the connection was lost ({exc})"
    return f"protocol error: {exc}"


@contextlib.contextmanager
def open_connection(settings: AssociationSettings, peer: Peer, contexts: Sequence[Context]
                    ) -> Iterator[tuple[Connection, NegotiationReport]]:
    """``request_connection`` as a context manager: released at the end, aborted on an error."""
    conn, report = request_connection(settings, peer, contexts)
    try:
        yield conn, report
    except BaseException:
        conn.abort()
        raise
    conn.release(settings.acse_timeout)
