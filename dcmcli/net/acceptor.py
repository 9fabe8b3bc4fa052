"""The acceptor: the one listener every SCP role uses.

Layer 3 of the engine (beside the requestor in ``dcmcli.net.association``).
It listens (IPv4 or IPv6), limits connections before and after negotiation,
applies access control, negotiates presentation contexts, roles, extended
negotiation and the asynchronous operations window with the services it
serves, runs the data phase, and releases, aborts and shuts down. What each
message means is the business of a ``Service`` (Verification, Storage, and
later C-FIND for the worklist, N-EVENT-REPORT for storage commitment);
services never touch sockets.

Hostile peers: every malformed PDU or message gets an A-ASSOCIATE-RJ or an
A-ABORT and one log line, never an uncaught exception (each connection's
thread catches everything), a hang (every PDU has a deadline: the ACSE
timeout while negotiating, ARTIM, then the DIMSE timeout) or unbounded
memory (PDU bodies and command sets are bounded and read as they arrive;
connections waiting for negotiation are limited).
"""

from __future__ import annotations

import errno
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import Any

from dcmcli.errors import ListenError
from dcmcli.net.association import (AssociationSettings, CommonExtendedReport, ContextReport, ExtendedReport,
                                    NegotiationReport, RoleReport, abort_text, describe_associate, rejection_info,
                                    set_nodelay)
from dcmcli.net.dimse import C_CANCEL_RQ, Channel, Message, response
from dcmcli.net.peer import Peer
from dcmcli.net.ul import (ABORT_INVALID_PARAMETER, ABORT_UNEXPECTED_PDU, APPLICATION_CONTEXT, MIN_PEER_PDU,
                           PDU_ASSOCIATE_RQ, Associate, CommonExtendedNegotiation, Connection, ConnectionClosed,
                           Context, ExtendedNegotiation, PeerAborted, ProtocolError, RoleSelection, UserIdentity,
                           decode_associate, encode_associate_ac, encode_associate_rj, negotiate, receive_limit)
from dcmcli.records import dataclass
from dcmcli.uids import ELE, ILE, VERIFICATION

# A-ASSOCIATE-RJ (result, source, reason), PS3.8 9.3.4
RJ_CALLING_NOT_RECOGNISED = (1, 1, 3)
RJ_CALLED_NOT_RECOGNISED = (1, 1, 7)
RJ_APPLICATION_CONTEXT = (1, 1, 2)
RJ_PROTOCOL_VERSION = (1, 2, 2)
RJ_LOCAL_LIMIT = (2, 3, 2)
RJ_USER_IDENTITY = (1, 1, 1)

#: Errors of accept() that pass (a full descriptor table, memory pressure):
#: back off and keep accepting.
_TRANSIENT_ACCEPT = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EPROTO,
                     errno.EPERM, errno.EAGAIN}


class Service:
    """What an acceptor serves: which SOP classes in which transfer
    syntaxes, which roles, and what each request means.

    ``handle`` gets every request message on a context this service
    accepted; it must read or discard the message's data set and answer.
    """

    name = "service"

    def transfer_syntaxes(self, abstract_syntax: str) -> Sequence[str] | None:
        """Accepted transfer syntaxes for a SOP class, in order of preference; None: not served."""
        return None

    def common_extended(self, abstract_syntax: str, item: CommonExtendedNegotiation) -> Sequence[str] | None:
        """Transfer syntaxes for a SOP class no service knows (``transfer_syntaxes``
        gave None everywhere) that the requestor's SOP Class Common Extended
        Negotiation item relates to this service: its service class, its related
        general SOP classes (PS3.7 D.3.3.6, PS3.4 B.4.1.2). None: not served.
        The item is never answered (request only)."""
        return None

    def role(self, sop_class: str, scu: bool, scp: bool) -> tuple[bool, bool]:
        """Answer a role selection item: (requestor may be SCU, requestor may be SCP).
        By default the requestor is SCU only, the acceptor SCP."""
        return scu, False

    def extended(self, sop_class: str, info: bytes) -> bytes | None:
        """Answer SOP Class Extended Negotiation; None: not supported (no item returned)."""
        return None

    def handle(self, assoc: ServedAssociation, msg: Message) -> None:
        assoc.channel.discard_data()
        assoc.refuse(msg, 0x0211, "unrecognised operation")

    def ended(self, assoc: ServedAssociation) -> None:
        """The association ended (released, aborted or lost)."""


#: User-Identity-Types (PS3.7 D.3.3.7) --require-user checks: username, username and passcode, JSON Web Token.
USER_IDENTITY_TYPES_CHECKED = (1, 2, 5)

#: What the Verification SCP of every listener accepts, in order of preference.
VERIFICATION_SYNTAXES = (ELE, ILE)


class VerificationService(Service):
    """Verification SOP class (C-ECHO SCP), always in both little endian syntaxes."""

    name = "verification"

    def transfer_syntaxes(self, abstract_syntax: str) -> Sequence[str] | None:
        return VERIFICATION_SYNTAXES if abstract_syntax == VERIFICATION else None

    def handle(self, assoc: ServedAssociation, msg: Message) -> None:
        from dcmcli.net.dimse import C_ECHO_RQ, C_ECHO_RSP

        assoc.channel.discard_data()
        if msg.command.field != C_ECHO_RQ:
            assoc.refuse(msg, 0x0211, "unrecognised operation")
            return
        assoc.send(msg.context_id, response(C_ECHO_RSP, msg.command.message_id, 0x0000,
                                            affected_sop_class=msg.command.text(0x0002) or VERIFICATION))


@dataclass
class UserTable:
    """Who may associate (``--require-user FILE``): user names with their
    passcodes (None: the name alone is enough), and secrets that sign JSON
    Web Tokens (HS256)."""

    passwords: dict[str, str | None] = field(default_factory=dict)
    jwt_secrets: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> UserTable:
        table = cls()
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("jwt-hs256:"):
                table.jwt_secrets.append(line.split(":", 1)[1].encode("utf-8"))
                continue
            user, sep, password = line.partition(":")
            table.passwords[user] = password if sep else None
        return table

    def refusal(self, identity: UserIdentity | None) -> str | None:
        """Why ``identity`` is refused, or None when it is accepted."""
        import hmac

        if identity is None:
            return "no user identity sent, and one is required"
        if identity.kind in (1, 2):
            name = identity.primary.decode("utf-8", "replace")
            if name not in self.passwords:
                return f"unknown user {name!r}"
            wanted = self.passwords[name]
            if wanted is not None:
                given = identity.secondary.decode("utf-8", "replace") if identity.kind == 2 else ""
                if not hmac.compare_digest(given.encode(), wanted.encode()):
                    return f"wrong passcode for user {name!r}"
            return None
        if identity.kind == 5:
            return self._jwt_refusal(identity.primary.decode("ascii", "replace"))
        return f"user identity type {identity.kind} is not accepted here"

    def _jwt_refusal(self, token: str) -> str | None:
        import base64
        import hashlib
        import hmac
        import json
        import time

        parts = token.split(".")
        if len(parts) != 3:
            return "the JSON Web Token is malformed"

        def unb64(x: str) -> bytes:
            return base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))

        try:
            header, claims = json.loads(unb64(parts[0])), json.loads(unb64(parts[1]))
            signature = unb64(parts[2])
        except (ValueError, UnicodeDecodeError):
            return "the JSON Web Token is malformed"
        if header.get("alg") != "HS256":
            return f"JSON Web Tokens signed with {header.get('alg')!r} are not accepted (HS256 only)"
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        if not any(hmac.compare_digest(hmac.new(k, signed, hashlib.sha256).digest(), signature)
                   for k in self.jwt_secrets):
            return "the JSON Web Token's signature does not verify"
        if "exp" in claims and float(claims["exp"]) < time.time():
            return "the JSON Web Token has expired"
        return None


@dataclass
class AcceptorOptions:
    port: int = 0
    bind: str = ""
    allowed_calling: list[str] = field(default_factory=list)
    require_called: bool = False
    #: Only connections from these addresses (movescu's receiver: the peer only).
    allowed_hosts: list[str] | None = None
    max_associations: int = 10
    #: Why a called AE title is refused (A-ASSOCIATE-RJ "called AE title not
    #: recognised"), or None: mwlscp refuses titles without a worklist folder.
    check_called: Callable[[str], str | None] | None = None
    #: Required user identities (--require-user); None: any requestor.
    users: UserTable | None = None
    #: Connections accepted but not associated yet (slow or idle clients).
    max_pending: int = 32
    shutdown_timeout: float = 30.0


class ServedAssociation:
    """An association on the acceptor side, as services see it."""

    def __init__(self, conn: Connection, channel: Channel, report: NegotiationReport, rq: Associate,
                 address: str, log: Callable[[str, str], None]) -> None:
        self.conn = conn
        self.channel = channel
        self.report = report
        self.rq = rq
        self.calling_aet = rq.calling_ae_title
        self.called_aet = rq.called_ae_title
        self.address = address
        self.log = log
        self.state: dict[str, Any] = {}  # per-association state of the services

    @property
    def accepted(self) -> dict[int, tuple[str, str]]:
        return self.conn.accepted

    # the names a storage handler uses on both sides (see services.storage)
    @property
    def remote_aet(self) -> str:
        return self.calling_aet

    @property
    def local_aet(self) -> str:
        return self.called_aet

    @property
    def remote_address(self) -> str:
        return self.address

    def send(self, context_id: int, command: bytes, data: bytes | None = None) -> None:
        self.channel.send(context_id, command, data)

    def refuse(self, msg: Message, status: int, why: str) -> None:
        """Answer a request with a failure status (its data set already read)."""
        cmd = msg.command
        self.log("warning", f"{cmd.name} from {self.calling_aet}@{self.address} refused: {why} (0x{status:04X})")
        if cmd.is_request and cmd.field != C_CANCEL_RQ:
            self.send(msg.context_id, response(cmd.field | 0x8000, cmd.message_id, status,
                                               affected_sop_class=cmd.text(0x0002) or None,
                                               affected_sop_instance=cmd.text(0x1000) or None,
                                               error_comment=why))


class Acceptor:
    """Listens and serves associations, one thread each, with ``services``."""

    def __init__(self, settings: AssociationSettings, options: AcceptorOptions, services: Sequence[Service], *,
                 on_log: Callable[[str, str], None] | None = None,
                 on_association: Callable[[NegotiationReport], None] | None = None) -> None:
        self.settings = settings
        self.options = options
        self.services = list(services)
        self.on_log = on_log or (lambda level, msg: None)
        self.on_association = on_association or (lambda report: None)
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._conns: list[Connection] = []
        #: Connections still in the TLS handshake or waiting for their
        #: A-ASSOCIATE-RQ: stop() closes them at once (nothing of theirs is in flight).
        self._unassociated: list[Connection] = []
        self._pending = 0
        self._pending_refused = 0
        self.port: int | None = None
        self.aborted = 0

    # -- lifecycle -------------------------------------------------------
    def start(self) -> int:
        """Bind and start accepting in the background; return the port."""
        if self.settings.tls is not None:
            self.settings.tls_context("acceptor")  # a bad key or certificate fails here, not per connection
        bind = self.options.bind
        family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        where = f"[{bind}]:{self.options.port}" if ":" in bind else f"{bind or '0.0.0.0'}:{self.options.port}"
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, self.options.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE:
                raise ListenError(f"cannot listen on {where}: the port is already in use",
                                  "stop the other server or choose another port") from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise ListenError(f"cannot listen on {where}: permission denied",
                                  "ports below 1024 need privileges; choose a port above 1024") from None
            raise ListenError(f"cannot listen on {where}: {exc.strerror or exc}", "check the bind address") from None
        self._listener = sock
        self.port = int(sock.getsockname()[1])
        self._accepting = threading.Thread(target=self._accept_loop, name="dcmcli-accept", daemon=True)
        self._accepting.start()
        return self.port

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        delay = 0.0
        failing = threadless = False
        while not self._stopping.is_set():
            try:
                client, addr = listener.accept()
            except OSError as exc:
                if self._stopping.is_set() or exc.errno in (errno.EBADF, errno.EINVAL):
                    return  # the listening socket was closed by stop()
                if exc.errno not in _TRANSIENT_ACCEPT:
                    self.on_log("error", f"accept failed: {exc.strerror or exc}; still listening")
                elif not failing:
                    self.on_log("error", f"cannot accept connections: {exc.strerror or exc}; "
                                         f"retrying (raise the open-files limit, ulimit -n, or --max-associations)")
                failing = True
                delay = min(1.0, delay * 2 or 0.01)
                if self._stopping.wait(delay):
                    return
                continue
            if failing:
                self.on_log("info", "accepting connections again")
                failing, delay = False, 0.0
            if self._stopping.is_set():
                client.close()
                return
            with self._lock:
                if self._pending >= self.options.max_pending:
                    refused = True
                    self._pending_refused += 1
                    first = self._pending_refused == 1
                else:
                    refused = False
                    self._pending += 1
            if refused:
                # Too many connections that have not negotiated yet: drop this one.
                if first:
                    self.on_log("warning", f"{self.options.max_pending} connections are waiting to negotiate; "
                                           f"closing new ones until they finish")
                client.close()
                continue
            conn = Connection(client, max_receive=receive_limit(self.settings.max_pdu),
                              timeout=self.settings.acse_timeout)
            t = threading.Thread(target=self._serve, args=(conn, addr), name=f"dcmcli-assoc-{addr[1]}", daemon=True)
            with self._lock:
                self._threads = [x for x in self._threads if x.is_alive()] + [t]
                # not associated yet: stop() closes it at once (registered here, before its thread
                # runs, so that stop() counts every connection accepted before it)
                self._unassociated.append(conn)
            try:
                t.start()
            except RuntimeError as exc:  # no thread to be had (a thread or memory limit): drop this connection
                with self._lock:
                    self._threads.remove(t)
                    self._unassociated.remove(conn)
                    self._pending -= 1
                client.close()
                if not threadless:
                    self.on_log("error", f"cannot start a thread for a new connection: {exc}; closing new "
                                         f"connections until one starts (lower --max-associations)")
                threadless = True
                continue
            if threadless:
                self.on_log("info", "connection threads start again")
                threadless = False

    def stop(self, timeout: float | None = None) -> int:
        """Stop accepting, close the connections that have not asked for an
        association yet, let associations in flight finish (up to ``timeout``),
        abort the rest. Returns how many had to be aborted."""
        if self._listener is None:
            return 0
        self._stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        self._listener = None
        if self._accepting is not None:
            self._accepting.join(5)
        # A connection that never sends its A-ASSOCIATE-RQ (or TLS handshake)
        # would otherwise keep the caller until the ACSE timeout: movescu and
        # nactionscu after their work is done, storescp after SIGTERM. Its
        # thread, blocked in a read, wakes up to the shutdown (the socket is
        # closed by that thread only after it left the list, under the lock).
        with self._lock:
            waiting = list(self._unassociated)
            for conn in waiting:
                try:
                    socket.socket.shutdown(conn.sock, socket.SHUT_RDWR)  # the descriptor's, not SSLSocket's
                except OSError:
                    pass
        if waiting:
            self.on_log("info", f"closed {len(waiting)} connection{'s' if len(waiting) != 1 else ''} that had not "
                                f"asked for an association")
        deadline = time.monotonic() + (self.options.shutdown_timeout if timeout is None else timeout)
        with self._lock:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.abort(2, 0)
        deadline = time.monotonic() + 5.0  # once for all threads, not 5 s each
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return len(conns)

    @property
    def listening(self) -> bool:
        return self._listener is not None

    # -- negotiation -----------------------------------------------------
    def _service_for(self, abstract_syntax: str) -> tuple[Service, Sequence[str]] | None:
        for s in self.services:
            syntaxes = s.transfer_syntaxes(abstract_syntax)
            if syntaxes is not None:
                return s, syntaxes
        return None

    def _service_for_common(self, abstract_syntax: str, item: CommonExtendedNegotiation
                            ) -> tuple[Service, Sequence[str]] | None:
        for s in self.services:
            syntaxes = s.common_extended(abstract_syntax, item)
            if syntaxes is not None:
                return s, syntaxes
        return None

    def _check_rq(self, rq: Associate) -> tuple[int, int, int] | None:
        """Structural checks of an A-ASSOCIATE-RQ: an RJ triple, or raises ProtocolError."""
        if not rq.protocol_version & 1:
            return RJ_PROTOCOL_VERSION
        if rq.application_context != APPLICATION_CONTEXT:
            return RJ_APPLICATION_CONTEXT
        seen: set[int] = set()
        for cx in rq.contexts:
            cid = int(cx.context_id or 0)
            if cid % 2 == 0:
                raise ProtocolError(f"presentation context id {cid} is even (odd ids 1-255 only)")
            if cid in seen:
                raise ProtocolError(f"presentation context id {cid} is proposed twice")
            seen.add(cid)
        if not rq.contexts:
            raise ProtocolError("the association request proposes no presentation context")
        if rq.max_pdu and rq.max_pdu < MIN_PEER_PDU:
            raise ProtocolError(f"a maximum PDU of {rq.max_pdu} bytes leaves no room for data")
        return None

    def _access(self, rq: Associate, host: str) -> tuple[tuple[int, int, int], str] | None:
        o = self.options
        if o.allowed_hosts is not None and host not in o.allowed_hosts:
            return RJ_CALLING_NOT_RECOGNISED, f"address {host} is not the peer this receiver waits for"
        if o.allowed_calling and rq.calling_ae_title not in o.allowed_calling:
            return RJ_CALLING_NOT_RECOGNISED, "calling AE title not allowed"
        if o.require_called and rq.called_ae_title != self.settings.calling_aet:
            return RJ_CALLED_NOT_RECOGNISED, f"called AE title is not ours ({self.settings.calling_aet})"
        if o.check_called is not None:
            why = o.check_called(rq.called_ae_title)
            if why:
                return RJ_CALLED_NOT_RECOGNISED, why
        if o.users is not None:
            why = o.users.refusal(rq.user_identity)
            if why:  # PS3.7 D.3.3.7.3: rejected-permanent, service-user, no reason given
                return RJ_USER_IDENTITY, f"user identity refused: {why}"
        return None

    def _negotiate(self, conn: Connection, pdu_type: int, body: bytearray, host: str, port: int, log_peer: str
                   ) -> tuple[ServedAssociation, dict[int, Service]] | None:
        """Answer the A-ASSOCIATE-RQ (the first PDU, read); the association and
        its services per context, or None when it was rejected."""
        if pdu_type != PDU_ASSOCIATE_RQ:
            raise ProtocolError(f"PDU type 0x{pdu_type:02X} where an A-ASSOCIATE-RQ was expected",
                                ABORT_UNEXPECTED_PDU)
        rq = decode_associate(pdu_type, body)
        trace = self.settings.trace
        if trace:
            trace(describe_associate(f"A-ASSOCIATE-RQ received from {log_peer}", rq))
        report = NegotiationReport(Peer(host, port, rq.calling_ae_title), rq.calling_ae_title, rq.called_ae_title,
                                   side="acceptor")
        report.peer_ae_title = rq.calling_ae_title
        report.peer_max_pdu = rq.max_pdu
        report.peer_implementation_class_uid = rq.implementation_class_uid
        report.peer_implementation_version_name = rq.implementation_version_name
        if self.settings.tls is not None:
            from dcmcli.net.tls import session_info

            report.tls = session_info(conn.sock)
        reject = self._check_rq(rq)
        why = {RJ_PROTOCOL_VERSION: f"protocol version {rq.protocol_version} not supported",
               RJ_APPLICATION_CONTEXT: f"application context {rq.application_context} not supported"}.get(reject, "")
        if reject is None:
            denied = self._access(rq, host)
            if denied:
                reject, why = denied
        if reject is None:
            with self._lock:
                if len(self._conns) >= self.options.max_associations:
                    reject, why = RJ_LOCAL_LIMIT, f"too many associations ({self.options.max_associations})"
                else:
                    self._conns.append(conn)
        if reject is not None:
            report.outcome = "rejected"
            report.rejection = rejection_info(*reject)
            self.on_log("warning", f"association from {rq.calling_ae_title}@{log_peer} to {rq.called_ae_title} "
                                   f"rejected: {why}")
            self.on_association(report)
            conn.send(encode_associate_rj(*reject))
            conn.close()
            return None
        by_context: dict[int, Service] = {}
        # SOP Class Common Extended Negotiation (request only): the first item per SOP class counts.
        common: dict[str, CommonExtendedNegotiation] = {}
        for c in rq.common_extended:
            common.setdefault(c.sop_class, c)
        resolved: dict[str, tuple[Service, Sequence[str], bool] | None] = {}

        def resolve(abstract: str) -> tuple[Service, Sequence[str], bool] | None:
            """The service of a SOP class, its syntaxes, and whether the Common
            Extended Negotiation item made it one (once per SOP class)."""
            if abstract not in resolved:
                found = self._service_for(abstract)
                item = common.get(abstract)
                if found is None and item is not None:
                    found = self._service_for_common(abstract, item)
                    resolved[abstract] = (*found, True) if found else None
                else:
                    resolved[abstract] = (*found, False) if found else None
            return resolved[abstract]

        def supported(abstract: str) -> Sequence[str] | None:
            found = resolve(abstract)
            return found[1] if found else None

        results = negotiate(rq.contexts, supported)
        for cx in results:
            if cx.result == 0:
                found = resolve(cx.abstract_syntax)
                assert found is not None
                by_context[int(cx.context_id or 0)] = found[0]
        ac = Associate(calling_ae_title=rq.calling_ae_title, called_ae_title=rq.called_ae_title, contexts=results,
                       max_pdu=self.settings.max_pdu)
        accepted_classes = {cx.abstract_syntax for cx in results if cx.result == 0}
        # Role selection and extended negotiation are answered once per SOP
        # class of an accepted context (the first sub-item wins): answering
        # each sub-item could make the AC's user information item longer
        # than the requestor's, past the 65535 bytes an item can hold.
        answered: set[str] = set()
        for r in rq.roles:
            if r.sop_class in answered:
                continue
            answered.add(r.sop_class)
            found = resolve(r.sop_class) if r.sop_class in accepted_classes else None
            if found is None:
                report.roles.append(RoleReport(r.sop_class, r.scu, r.scp, None, None))  # not answered
                continue
            scu, scp = found[0].role(r.sop_class, r.scu, r.scp)
            ac.roles.append(RoleSelection(r.sop_class, scu and r.scu, scp and r.scp))
            report.roles.append(RoleReport(r.sop_class, r.scu, r.scp, scu and r.scu, scp and r.scp))
        answered.clear()
        for e in rq.extended:
            if e.sop_class in answered:
                continue
            answered.add(e.sop_class)
            found = resolve(e.sop_class) if e.sop_class in accepted_classes else None
            answer = found[0].extended(e.sop_class, e.info) if found else None
            if answer is not None:
                ac.extended.append(ExtendedNegotiation(e.sop_class, answer))
            report.extended.append(ExtendedReport(e.sop_class, list(e.info), list(answer) if answer is not None else None))
        if rq.async_window is not None:
            ac.async_window = (1, 1)  # operations are performed one at a time
            report.async_window = {"proposed": list(rq.async_window), "accepted": [1, 1]}
        if rq.user_identity is not None:
            answer = (self.options.users is not None and rq.user_identity.positive_response_requested
                      and rq.user_identity.kind in USER_IDENTITY_TYPES_CHECKED)
            if answer:  # accepted (refused ones never get here): a positive response, empty for these types
                ac.user_identity_response = b""
            report.user_identity = {"type": rq.user_identity.kind,
                                    "positive_response_requested": rq.user_identity.positive_response_requested,
                                    "server_response": answer}
        via_common = {a for a, found in resolved.items() if found is not None and found[2]}
        report.contexts = [ContextReport(int(p.context_id or 0), p.abstract_syntax, list(p.transfer_syntax),
                                         r.result, r.transfer_syntax[0] if r.result == 0 else None,
                                         "common-extended-negotiation"
                                         if r.result == 0 and p.abstract_syntax in via_common else None)
                           for p, r in zip(rq.contexts, results)]
        for c in common.values():  # one per SOP class, as role selection and extended negotiation
            found = resolved.get(c.sop_class)
            effect = ("not-used" if c.sop_class not in accepted_classes or found is None
                      else "accepted-as-storage" if found[2] else "not-needed")
            report.common_extended.append(CommonExtendedReport(c.sop_class, c.service_class,
                                                               list(c.related_general_sop_classes), effect))
        if trace:
            trace(describe_associate(f"A-ASSOCIATE-AC sent to {log_peer}", ac))
        conn.send(encode_associate_ac(ac))
        conn.accepted = {int(cx.context_id or 0): (cx.abstract_syntax, cx.transfer_syntax[0])
                         for cx in results if cx.result == 0}
        conn.peer_max_pdu = rq.max_pdu
        report.outcome = "accepted" if conn.accepted else "no acceptable presentation context"
        self.on_association(report)
        channel = Channel(conn, on_command=(lambda d, ctx, cmd: trace(f"{d} on context {ctx}: {cmd.describe()}"))
                          if trace else None)
        return ServedAssociation(conn, channel, report, rq, log_peer, self.on_log), by_context

    # -- one connection --------------------------------------------------
    def _serve(self, conn: Connection, addr: tuple[Any, ...]) -> None:
        host, port = str(addr[0]), int(addr[1])
        shown = host[7:] if host.startswith("::ffff:") and "." in host else host  # IPv4 on a dual-stack socket
        log_peer = f"[{shown}]:{port}" if ":" in shown else f"{shown}:{port}"
        served: ServedAssociation | None = None
        by_context: dict[int, Service] = {}
        pending = True
        try:
            try:
                set_nodelay(conn.sock, self.settings.tcp_nodelay)
                if self._stopping.is_set():
                    return  # accepted as stop() began (which closed it, and counted it)
                if self.settings.tls is not None and not self._tls_accept(conn, log_peer):
                    return
                pdu_type, body = conn.read_pdu()
            finally:
                with self._lock:
                    self._unassociated = [c for c in self._unassociated if c is not conn]
            negotiated = self._negotiate(conn, pdu_type, body, host, port, log_peer)
            with self._lock:
                self._pending -= 1
                pending = False
                if self._pending < self.options.max_pending:
                    self._pending_refused = 0
            if negotiated is None:
                return
            served, by_context = negotiated
            conn.timeout = self.settings.dimse_timeout
            self.on_log("info", f"association from {served.calling_aet}@{log_peer} to {served.called_aet} accepted "
                                f"({len(conn.accepted)} of {len(served.rq.contexts)} contexts)")
            self._data_phase(served, by_context)
            self.on_log("info", f"association from {served.calling_aet}@{log_peer} released")
        except PeerAborted as exc:
            self.aborted += 1
            self.on_log("warning" if served else "info",
                        f"association from {log_peer} aborted by the peer ({abort_text(exc.source, exc.reason)})")
        except ProtocolError as exc:
            self.aborted += 1
            conn.abort(2, exc.reason)
            self.on_log("warning", f"association from {log_peer} aborted: {exc}")
        except ConnectionClosed as exc:
            if served is None and str(exc) != "timeout":
                # a port check or scanner: connected and left without a word (or closed by stop())
                self.on_log("debug", f"connection from {log_peer} closed before an association request")
            elif str(exc) == "timeout":
                self.aborted += 1
                conn.abort(2, 0)
                limit = self.settings.acse_timeout if served is None else self.settings.dimse_timeout
                phase = "association request" if served is None else "next message"
                self.on_log("warning", f"association from {log_peer} aborted: no {phase} within {limit:g} s"
                                       + (" (-ta)" if served is None else " (-td)"))
            else:
                self.aborted += 1
                self.on_log("warning", f"association from {log_peer} ended: {exc}")
        except Exception as exc:  # a bug: one line (and a traceback with -d), never a dead server
            self.aborted += 1
            conn.abort(2, 0)
            self.on_log("error", f"association from {log_peer} aborted: internal error: {type(exc).__name__}: {exc}")
            self.on_log("debug", traceback.format_exc())
        finally:
            with self._lock:
                if pending:
                    self._pending -= 1
                if conn in self._conns:
                    self._conns.remove(conn)
            if served is not None:
                for s in {id(s): s for s in by_context.values()}.values():
                    try:
                        s.ended(served)
                    except Exception as exc:  # noqa: BLE001 - never let a service kill the thread
                        self.on_log("error", f"{s.name}: {type(exc).__name__}: {exc}")
            if not conn.closed:
                conn.close()

    def _tls_accept(self, conn: Connection, log_peer: str) -> bool:
        """The TLS handshake (within the ACSE timeout), before any PDU; False
        (logged, to be closed) when it fails."""
        import ssl

        from dcmcli.net.tls import explain_server

        raw = conn.sock
        raw.settimeout(self.settings.acse_timeout)
        try:
            wrapped = self.settings.tls_context("acceptor").wrap_socket(raw, server_side=True,
                                                                        do_handshake_on_connect=False)
            with self._lock:  # from now on stop() shuts down the TLS socket's descriptor (raw's is detached)
                conn.sock = wrapped
                if self._stopping.is_set():
                    return False
            wrapped.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            if self._stopping.is_set():
                return False  # closed by stop(), said there once
            self.on_log("warning", f"TLS handshake with {log_peer} failed: {explain_server(exc)}; connection closed")
            self.on_log("debug", f"TLS handshake with {log_peer}: {type(exc).__name__}: {exc}")
            return False
        return True

    def _data_phase(self, served: ServedAssociation, by_context: dict[int, Service]) -> None:
        channel = served.channel
        while True:
            msg = channel.receive()
            if msg is None:
                return  # released
            cmd = msg.command
            if not cmd.is_request:
                raise ProtocolError(f"a {cmd.name} arrived, but no request of ours was outstanding",
                                    ABORT_UNEXPECTED_PDU)
            if cmd.field == C_CANCEL_RQ:
                continue  # nothing of that message id is in progress any more
            by_context[msg.context_id].handle(served, msg)
            if served.conn.closed:
                return


__all__ = ["Acceptor", "AcceptorOptions", "Service", "ServedAssociation", "VerificationService", "Context",
           "ABORT_INVALID_PARAMETER"]
