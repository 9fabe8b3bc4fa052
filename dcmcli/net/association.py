"""The association core: settings, dcmcli's AE, opening associations, and the
negotiation report.

Every command opens its associations through ``open_association`` (as
requestor) or ``DcmcliAE.serve`` (as acceptor), so every command gets the
same timeouts, PDU size, implementation identity, TCP_NODELAY and error
messages.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import evt
from pynetdicom.ae import ApplicationEntity
from pynetdicom.association import Association
from pynetdicom.pdu_primitives import A_ABORT, A_ASSOCIATE, A_P_ABORT, ImplementationVersionNameNotification
from pynetdicom.presentation import PresentationContext, negotiate_as_requestor
from pynetdicom.transport import AddressInformation, AssociationSocket

from dcmcli import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dcmcli.errors import AssociationAborted, AssociationRejected, ConnectError, NoAcceptableContext
from dcmcli.net.peer import Peer
from dcmcli.net.ul import (PDU_ASSOCIATE_AC, PDU_ASSOCIATE_RJ, Connection, ConnectionClosed, PeerAborted,
                           decode_associate, encode_associate_rq)
from dcmcli.net.uids import ts_name, uid_name


@dataclass
class AssociationSettings:
    """What DCMTK spells -aet, -aec, -to, -ta, -td, -pdu, plus TCP_NODELAY."""

    calling_aet: str = "DCMCLI"
    called_aet: str = "ANY-SCP"
    connect_timeout: float | None = 15.0
    acse_timeout: float = 30.0
    dimse_timeout: float | None = 120.0
    network_timeout: float | None = 60.0
    max_pdu: int = 16384
    tcp_nodelay: bool = True


# -- sockets ---------------------------------------------------------------

class _TracingSocket(socket.socket):
    """A socket that remembers why ``connect`` failed (pynetdicom only logs it)."""

    connect_error: OSError | None = None

    def connect(self, address: Any) -> None:  # noqa: D401
        try:
            super().connect(address)
        except OSError as exc:
            self.connect_error = exc
            raise


def set_nodelay(sock: socket.socket | None, on: bool = True) -> None:
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if on else 0)


class _DcmcliSocket(AssociationSocket):
    tcp_nodelay = True
    raw: _TracingSocket | None = None

    def _create_socket(self, address: AddressInformation) -> socket.socket:
        family = socket.AF_INET if address.is_ipv4 else socket.AF_INET6
        sock = _TracingSocket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_nodelay(sock, self.tcp_nodelay)
        if self.assoc.network_timeout is not None:
            sock.settimeout(self.assoc.network_timeout)
        sock.bind(address.as_tuple)
        self._is_connected = False
        self.raw = sock
        return sock


class DcmcliAE(ApplicationEntity):
    """pynetdicom's AE with dcmcli's identity, settings and TCP_NODELAY."""

    def __init__(self, settings: AssociationSettings, ae_title: str | None = None) -> None:
        super().__init__(ae_title or settings.calling_aet)
        self.settings = settings
        self.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        self.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        self.connection_timeout = settings.connect_timeout
        self.acse_timeout = settings.acse_timeout
        self.dimse_timeout = settings.dimse_timeout
        self.network_timeout = settings.network_timeout
        self.maximum_pdu_size = settings.max_pdu

    def _create_socket(self, assoc: Association, address: AddressInformation,
                       tls_args: Any) -> AssociationSocket:
        sock = _DcmcliSocket.__new__(_DcmcliSocket)
        sock.tcp_nodelay = self.settings.tcp_nodelay
        sock.__init__(assoc, address=address)  # type: ignore[misc]
        sock.tls_args = tls_args
        assoc._dcmcli_socket = sock  # type: ignore[attr-defined]
        return sock

    def server_handlers(self) -> list[tuple[Any, Any]]:
        """Handlers every dcmcli server binds: TCP_NODELAY on accepted sockets."""
        nodelay = self.settings.tcp_nodelay

        def on_conn_open(event: evt.Event) -> None:
            sock = getattr(event.assoc.dul.socket, "socket", None)
            set_nodelay(sock, nodelay)
            tune_dul(event.assoc)

        return [(evt.EVT_CONN_OPEN, on_conn_open)]


#: How long pynetdicom's DUL thread sleeps when the socket is idle (its
#: default is 1 ms, paid on nearly every message of a synchronous exchange).
DUL_IDLE_DELAY = float(os.environ.get("DCMCLI_DUL_DELAY", "0.0002"))


def tune_dul(assoc: Association) -> None:
    assoc.dul._run_loop_delay = DUL_IDLE_DELAY


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
                verdict += f" in {ts_name(c.accepted_transfer_syntax)}"
            out.append(f"  context {c.context_id}: {uid_name(c.abstract_syntax)} "
                       f"[{', '.join(ts_name(t) for t in c.transfer_syntaxes)}]: {verdict}")
        if self.rejection:
            out.append(f"  rejected: {self.rejection['result_text']}, source {self.rejection['source_text']}, "
                       f"reason {self.rejection['reason_text']}")
        if self.abort:
            out.append(f"  aborted by {self.abort['source_text']}: {self.abort['reason_text']}")
        return out


class _Recorder:
    """Collects the ACSE primitives an association receives."""

    def __init__(self) -> None:
        self.associate_rsp: A_ASSOCIATE | None = None
        self.abort: A_ABORT | A_P_ABORT | None = None
        self.lock = threading.Lock()

    def on_acse_recv(self, event: evt.Event) -> None:
        prim = event.primitive  # type: ignore[attr-defined]
        with self.lock:
            if isinstance(prim, A_ASSOCIATE):
                self.associate_rsp = prim
            elif isinstance(prim, (A_ABORT, A_P_ABORT)):
                self.abort = prim

    def handlers(self) -> list[tuple[Any, Any]]:
        return [(evt.EVT_ACSE_RECV, self.on_acse_recv)]


def _abort_dict(prim: A_ABORT | A_P_ABORT) -> dict[str, object]:
    if isinstance(prim, A_P_ABORT):
        reason = getattr(prim, "provider_reason", None)
        return {"source": 2, "source_text": ABORT_SOURCE[2], "reason": reason,
                "reason_text": ABORT_REASON.get(reason or 0, "reason not specified")}
    source = getattr(prim, "abort_source", None)
    return {"source": source, "source_text": ABORT_SOURCE.get(source or 0, "unknown"), "reason": None,
            "reason_text": "reason not specified"}


def _fill_report(report: NegotiationReport, assoc: Association, rec: _Recorder) -> None:
    rsp = rec.associate_rsp
    if rsp is not None and rsp.result == 0x00:
        acc = assoc.acceptor
        report.peer_ae_title = acc.ae_title
        report.peer_max_pdu = acc.maximum_length
        report.peer_implementation_class_uid = str(acc.implementation_class_uid) if acc.implementation_class_uid else None
        report.peer_implementation_version_name = acc.implementation_version_name
    results: dict[int, PresentationContext] = {}
    for cx in list(assoc.accepted_contexts) + list(assoc.rejected_contexts):
        results[cx.context_id] = cx
    report.contexts = []
    for cx in assoc.requestor.requested_contexts:
        got = results.get(cx.context_id)
        result = got.result if got is not None else None
        ts = got.transfer_syntax[0] if (got is not None and got.result == 0 and got.transfer_syntax) else None
        report.contexts.append(ContextReport(cx.context_id, str(cx.abstract_syntax),
                                             [str(t) for t in cx.transfer_syntax], result,
                                             str(ts) if ts else None))


def resolve(peer: Peer) -> tuple[str, int]:
    """Resolve the peer's host to an address pynetdicom can use."""
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


def request_association(ae: DcmcliAE, peer: Peer, contexts: Sequence[PresentationContext], *,
                        ext_neg: list[Any] | None = None,
                        evt_handlers: list[tuple[Any, Any]] | None = None) -> tuple[Association, NegotiationReport]:
    """Open an association or raise the ``NetworkError`` that says why not.

    The returned report is filled in either way; a raised error carries it
    as ``.report``.
    """
    settings = ae.settings
    called = peer.ae_title or settings.called_aet
    report = NegotiationReport(peer, ae.ae_title, called)
    address, family = resolve(peer)
    rec = _Recorder()
    ae.requested_contexts = []
    handlers = rec.handlers() + [(evt.EVT_CONN_OPEN, lambda e: tune_dul(e.assoc))] + list(evt_handlers or [])
    bind = ("::", 0) if family == socket.AF_INET6 else ("", 0)
    assoc = ae.associate(address, peer.port, contexts=list(contexts), ae_title=called,
                         max_pdu=settings.max_pdu, ext_neg=ext_neg, evt_handlers=handlers,
                         bind_address=bind)
    _fill_report(report, assoc, rec)
    if assoc.is_established:
        report.outcome = "accepted"
        return assoc, report

    sock = getattr(assoc, "_dcmcli_socket", None)
    raw = getattr(sock, "raw", None)
    connect_error = getattr(raw, "connect_error", None)
    if connect_error is not None:
        report.outcome = "cannot connect"
        message, hint = _connect_message(peer, connect_error, settings)
        report.connect_error = message
        raise ConnectError(message, hint, report=report)
    rsp = rec.associate_rsp
    if assoc.is_rejected and rsp is not None:
        raise _rejected(report, peer, rsp.result, rsp.result_source, rsp.diagnostic)
    if rsp is not None and rsp.result == 0x00 and not assoc.accepted_contexts:
        raise _no_context(report, peer)
    if rec.abort is not None:
        report.outcome = "aborted"
        report.abort = _abort_dict(rec.abort)
        raise AssociationAborted(f"{peer} aborted the association request ({report.abort['reason_text']})",
                                 "check the peer's log", report=report)
    if rsp is None:
        report.outcome = "no response"
        raise AssociationAborted(
            f"{peer} did not answer the association request within {settings.acse_timeout:g} s",
            "is this a DICOM port? raise -ta if the peer is slow", report=report)
    report.outcome = "failed"
    raise AssociationAborted(f"the association with {peer} could not be established", "run with -d for detail",
                             report=report)


@contextlib.contextmanager
def open_association(ae: DcmcliAE, peer: Peer, contexts: Sequence[PresentationContext], **kwargs: Any
                     ) -> Iterator[tuple[Association, NegotiationReport]]:
    """``request_association`` as a context manager that releases (or aborts) at the end."""
    assoc, report = request_association(ae, peer, contexts, **kwargs)
    try:
        yield assoc, report
    except BaseException:
        if assoc.is_established:
            assoc.abort()
        raise
    else:
        if assoc.is_established:
            assoc.release()


def abort_info(assoc: Association) -> str:
    """Why an established association is no longer usable, in plain words."""
    if assoc.is_aborted:
        return "the association was aborted"
    return "the connection was lost or a DIMSE timeout expired"


# -- the lean path (dcmcli.net.ul) for the storage data phase ----------------

def _version_name(prim: A_ASSOCIATE) -> str | None:
    for item in prim.user_information:
        if isinstance(item, ImplementationVersionNameNotification):
            name = item.implementation_version_name
            return name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
    return None


def request_connection(settings: AssociationSettings, peer: Peer, contexts: Sequence[PresentationContext]
                       ) -> tuple[Connection, NegotiationReport]:
    """Open an association on dcmcli's lean upper layer (used by storescu).

    Same settings, identity, report and errors as ``request_association``.
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
    conn = Connection(sock)
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
    if pdu_type == PDU_ASSOCIATE_RJ:
        conn.close()
        rj = decode_associate(pdu_type, body)
        raise _rejected(report, peer, int(rj.result), int(rj.result_source), int(rj.diagnostic))
    if pdu_type != PDU_ASSOCIATE_AC:
        conn.abort(2, 2)
        report.outcome = "failed"
        raise AssociationAborted(f"{peer} answered the association request with PDU type 0x{pdu_type:02X}",
                                 "is this a DICOM port?", report=report)
    ac = decode_associate(pdu_type, body)
    results = negotiate_as_requestor(list(contexts), ac.presentation_context_definition_results_list, {})
    report.peer_ae_title = str(ac.called_ae_title).strip()
    report.peer_max_pdu = ac.maximum_length_received
    report.peer_implementation_class_uid = str(ac.implementation_class_uid) if ac.implementation_class_uid else None
    report.peer_implementation_version_name = _version_name(ac)
    by_id = {cx.context_id: cx for cx in results}
    report.contexts = []
    for cx in contexts:
        got = by_id.get(cx.context_id)
        ok = got is not None and got.result == 0 and bool(got.transfer_syntax)
        report.contexts.append(ContextReport(int(cx.context_id), str(cx.abstract_syntax),  # type: ignore[arg-type]
                                             [str(t) for t in cx.transfer_syntax],
                                             got.result if got is not None else None,
                                             str(got.transfer_syntax[0]) if ok else None))  # type: ignore[union-attr]
        if ok:
            conn.accepted[int(cx.context_id)] = (str(cx.abstract_syntax), str(got.transfer_syntax[0]))  # type: ignore[union-attr,arg-type]
    conn.peer_max_pdu = int(ac.maximum_length_received or 0)
    if not conn.accepted:
        conn.abort(0, 0)
        raise _no_context(report, peer)
    report.outcome = "accepted"
    sock.settimeout(settings.dimse_timeout)
    return conn, report
