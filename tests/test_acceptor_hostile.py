"""The acceptor against hostile peers: one test per finding of the hostile
review of the old storescp (each failed there), and one per defect these
tests found in the new engine (each failed before its fix), on real sockets
against a real ``dcmcli storescp`` process, or an in-process ``StoreServer``
where only the process itself can show what must be asserted. Every test
checks what the server logged or answered, and that it still serves a
normal C-ECHO or C-STORE afterwards. tests/hostile_peer.py has the server
and the raw client; tests/test_fuzz_acceptor.py fuzzes the same server.
"""

from __future__ import annotations

import resource
import struct
import time
from pathlib import Path

import pytest

import hostile_peer
from conftest import stored_in
from dcmcli.net.association import open_association
from dcmcli.net.dimse import MAX_COMMAND, c_echo_rq, c_store_rq, decode_command
from dcmcli.net.peer import Peer
from dcmcli.net.ul import Context
from hostile_peer import (CT_IMAGE, DEADLINE, ILE, SECONDARY_CAPTURE, VERIFICATION, Raw, Server,
                          assert_echo, command_set, context_item, dataset, item, pdu, pdv_pdu, rq_pdu,
                          server, settings, store_command, store_objects, ui, us, user_info, valid_rq)

__all__ = ["server"]  # the fixture

STORE_RQ = valid_rq([(1, SECONDARY_CAPTURE, (ILE,)), (3, CT_IMAGE, (ILE,)), (5, VERIFICATION, (ILE,))])


def _logged(s: Server, client_port: int, text: str) -> str:
    """Wait for the server's log line about one connection; it must say ``text``."""
    line = s.wait_log(f"127.0.0.1:{client_port} ")[0]
    assert text in line, line
    return line


def _once(s: Server, client_port: int) -> None:
    """Exactly one log line about that connection (checked after the server
    has served someone else since, so that a second line would be there)."""
    lines = s.lines_about(client_port)
    assert len(lines) == 1, lines


def _rsp(c: Raw) -> int:
    """The status of the DIMSE response the server sends next."""
    pdu_type, body = c.read_pdu()
    assert pdu_type == 0x04, (pdu_type, body)
    return decode_command(body[6:]).status


def _no_tracebacks(s: Server) -> None:
    assert not s.tracebacks(), "\n".join(s.stderr)
    assert not s.internal_errors(), "\n".join(s.stderr)


# -- 1. a failed accept() does not stop the server ----------------------------------

def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def test_accept_failure_is_logged_once_and_the_server_recovers(server) -> None:
    """With 64 descriptors, idle connections exhaust the table: accept()
    fails with EMFILE. The server says so once, keeps listening, and once the
    connections go it serves a C-ECHO (the old storescp's accept loop died).
    The idle connections are associated ones (--max-associations 100):
    those still negotiating stop at max_pending, 32, below the limit."""
    s = server("--max-associations", "100", preexec_fn=_low_fd_limit)
    held: list[Raw] = []
    try:
        for _ in range(80):
            if s.log_lines("cannot accept connections"):
                break
            c = Raw(s.port)  # the kernel completes the handshake even when accept() cannot
            held.append(c)
            c.send(valid_rq())
            deadline = time.monotonic() + DEADLINE
            while not c.readable(0.05):  # the AC, or the log line saying it cannot come
                assert time.monotonic() < deadline, "neither an A-ASSOCIATE-AC nor an accept failure"
                if s.log_lines("cannot accept connections"):
                    break
            else:
                assert c.read_pdu()[0] == 0x02
        assert s.log_lines("cannot accept connections"), "80 connections never exhausted 64 descriptors"
        assert "Too many open files" in s.log_lines("cannot accept connections")[0]
    finally:
        for c in reversed(held):  # the one still in the backlog first
            c.close()
    s.wait_until(lambda: s.fds < 16, "descriptors released after the clients left")
    assert s.alive()
    assert_echo(s.port)
    assert len(s.log_lines("cannot accept connections")) == 1, "\n".join(s.stderr)
    _no_tracebacks(s)


def test_a_thread_that_cannot_start_drops_its_connection_not_the_server(tmp_path: Path, monkeypatch) -> None:
    """When no thread can be started for a connection (a thread or memory
    limit: RuntimeError from Thread.start), that connection is closed, the
    failure is logged once, and the server keeps accepting; 40 such failures
    (more than max_pending) leave no waiting slot taken. In-process, as only
    there can thread creation be made to fail (root is exempt from
    RLIMIT_NPROC); the old accept loop died on the first one."""
    import threading
    from types import SimpleNamespace

    import dcmcli.net.acceptor as acceptor_module
    from dcmcli.net.acceptor import AcceptorOptions
    from dcmcli.net.services.storage import StoreServer
    from dcmcli.net.services.writer import WriterOptions

    left = {"failures": 40}

    class Failing(threading.Thread):
        def start(self) -> None:
            if self.name.startswith("dcmcli-assoc") and left["failures"] > 0:
                left["failures"] -= 1
                raise RuntimeError("can't start new thread")
            super().start()

    monkeypatch.setattr(acceptor_module, "threading",
                        SimpleNamespace(Thread=Failing, Lock=threading.Lock, Event=threading.Event))
    logs: list[tuple[str, str]] = []
    srv = StoreServer(settings("STORESCP"), AcceptorOptions(bind="127.0.0.1"),
                      WriterOptions(output_dir=tmp_path / "rx"), on_log=lambda level, msg: logs.append((level, msg)))
    port = srv.start()
    try:
        for _ in range(40):
            with Raw(port) as c:
                c.send(valid_rq())
                c.expect_closed(timeout=5)
        assert_echo(port)
        assert store_objects(port, [("1.2.826.0.1.3680043.9.7433.1.1", "1.2.826.0.1.3680043.9.7433.1")]) == [0]
        assert srv.acceptor._pending == 0
    finally:
        srv.stop(5)
    assert [level for level, msg in logs if "cannot start a thread" in msg] == ["error"], logs
    assert any("connection threads start again" in msg for _, msg in logs), logs


# -- 2. command fragments are bounded and their context checked at once -----------

def test_endless_command_fragments_are_aborted_at_max_command(server) -> None:
    """Command PDVs that never set the last-fragment flag: the server aborts
    once MAX_COMMAND bytes are exceeded (the old one kept every fragment)."""
    s = server()
    rss_before = s.rss_kb
    with Raw(s.port) as c:
        c.associate()
        fragment = b"\x00" * 4000
        sent = 0
        t0 = time.monotonic()
        while not c.readable(0.02):  # one PDU at a time: the server has read all we sent when it aborts
            assert sent < 16 * MAX_COMMAND, f"{sent} bytes of command fragments and no A-ABORT"
            c.send(pdv_pdu(1, fragment, command=True, last=False))
            sent += len(fragment)
        body = c.expect_abort()
        elapsed = time.monotonic() - t0
        c.expect_closed()
    assert body[2:4] == bytes((2, 6)), body  # service provider, invalid PDU parameter value
    assert MAX_COMMAND < sent <= MAX_COMMAND + 2 * len(fragment)
    assert elapsed < 5
    _logged(s, c.port, f"a command set of more than {MAX_COMMAND} bytes")
    assert s.rss_kb - rss_before < 8 * 1024
    assert_echo(s.port)
    _once(s, c.port)
    _no_tracebacks(s)


def test_empty_command_fragments_are_bounded_too(server) -> None:
    """P-DATA PDUs packed with empty command PDVs (6 bytes each, no last
    flag): the fragments count against MAX_COMMAND as well, and the server
    never holds a PDU's PDVs all at once (22,000 of them in one 128 KiB PDU
    made 5 MB of Python objects, and empty fragments never reached the
    limit: the command was reassembled for ever)."""
    s = server()
    with Raw(s.port) as warm_up:  # the first abort and its log line load what they need (3 MB)
        warm_up.associate()
        warm_up.send(pdv_pdu(7, b"\x00\x00"))
        warm_up.expect_abort()
    empty = struct.pack(">LBB", 2, 1, 0x01)  # context 1, a command fragment, not the last
    packed = pdu(0x04, empty * (131072 // len(empty)))
    with Raw(s.port) as c:
        c.associate()
        hwm = s.proc_status("VmHWM")
        for _ in range(20):
            if c.readable(0):
                break
            try:
                c.send(packed)
            except OSError:
                break  # closed while we were sending
        kind, _ = c.outcome(timeout=5)
    assert kind in ("abort", "closed")
    _logged(s, c.port, "a command set of more than")
    assert s.proc_status("VmHWM") - hwm < 2 * 1024, "the PDU's PDVs were held all at once"
    assert_echo(s.port)
    _once(s, c.port)
    _no_tracebacks(s)


@pytest.mark.parametrize("cid", [3, 7, 255])
def test_command_on_a_context_not_accepted_is_aborted_at_the_first_fragment(server, cid: int) -> None:
    """Context 3 was proposed and refused (no such SOP class), 7 and 255 were
    never proposed: the first fragment, not even the last, is aborted."""
    s = server()
    rq = valid_rq([(1, VERIFICATION, (ILE,)), (3, "1.2.826.0.1.3680043.9.7433.77", (ILE,))])
    with Raw(s.port) as c:
        c.associate(rq)
        c.send(pdv_pdu(cid, c_echo_rq(1)[:20], command=True, last=False))
        c.expect_abort(timeout=5)
    _logged(s, c.port, f"presentation context {cid}, which was not accepted")
    assert_echo(s.port)
    _once(s, c.port)
    _no_tracebacks(s)


# -- 3. limits before association ---------------------------------------------------

def _idle_threads(s: Server) -> int:
    """The server's thread count once nothing is connected, after a C-ECHO
    (so that whatever a first association loads is loaded)."""
    assert_echo(s.port)
    s.wait_until(lambda: s.threads <= s.idle_threads, "the C-ECHO's thread gone")
    return s.threads


def test_connections_waiting_to_negotiate_are_limited(server) -> None:
    """max_pending (32) connections that send half an A-ASSOCIATE-RQ: the next
    ones are closed at once, threads and memory stay bounded, and once the 32
    go a normal association works (the old storescp gave every connection a
    thread until -ta expired)."""
    from dcmcli.net.acceptor import AcceptorOptions

    pending = AcceptorOptions().max_pending
    s = server()
    base = _idle_threads(s)
    rss = s.rss_kb
    half = valid_rq()[:40]
    slow = []
    try:
        for _ in range(pending):
            c = Raw(s.port)
            c.send(half)
            slow.append(c)
        s.wait_until(lambda: s.threads >= base + pending, f"{pending} connection threads")
        for _ in range(10):
            with Raw(s.port) as extra:
                extra.send(half)
                extra.expect_closed(timeout=5)
        assert s.threads <= base + pending
        assert s.rss_kb - rss < 8 * 1024
        s.wait_log(f"{pending} connections are waiting to negotiate; closing new ones")
    finally:
        for c in slow:
            c.close()
    s.wait_until(lambda: s.threads <= base, "the waiting connections' threads gone")
    assert_echo(s.port)
    assert store_objects(s.port, [("1.2.826.0.1.3680043.9.7433.3.1", "1.2.826.0.1.3680043.9.7433.3")]) == [0]
    assert len(s.log_lines("connections are waiting to negotiate")) == 1
    _no_tracebacks(s)


def test_acse_timeout_is_a_deadline_for_the_whole_request(server) -> None:
    """-ta 2 and one byte of the A-ASSOCIATE-RQ every 0.5 s: dropped after
    about 2 s (the old storescp's timeout was per recv, so a byte now and then
    held the connection for ever)."""
    s = server("-ta", "2")
    rq = valid_rq()
    with Raw(s.port) as c:
        t0 = time.monotonic()
        for n in range(len(rq)):
            c.send(rq[n:n + 1])
            if c.readable(0.5):  # the server's answer ends the trickle
                break
            assert time.monotonic() - t0 < 6, "still connected after 6 s with -ta 2"
        kind, _ = c.outcome(timeout=5)
        dropped = time.monotonic() - t0
    assert kind in ("abort", "closed")
    assert 1.9 <= dropped <= 3.5, dropped
    _logged(s, c.port, "no association request within 2 s (-ta)")
    assert_echo(s.port)
    _once(s, c.port)
    _no_tracebacks(s)


def test_stop_closes_connections_that_never_asked_for_an_association(server) -> None:
    """storescp -ta 60, four connections that never send an A-ASSOCIATE-RQ and
    one that never sends a byte (over TLS: never starts the handshake): SIGTERM
    closes all five at once, says so in one line, and storescp exits 0 in
    seconds. Before, stop() waited for their threads, which waited out -ta:
    storescp took 60 s to stop, and movescu's receiver and nactionscu's
    commitment listener kept their command that long after its work was done
    (found by bench/bench_hostile.py --servers commitment)."""
    import socket

    s = server("-v", "-ta", "60")
    base = _idle_threads(s)
    base_fds = s.fds
    # the bare one first: storescp accepts in order, so once the others are accepted it is too (over
    # TLS, a Raw client's handshake means the server has accepted it; plain, the descriptors show it)
    bare = socket.create_connection(("127.0.0.1", s.port), timeout=DEADLINE)
    silent = [Raw(s.port) for _ in range(4)]
    try:
        s.wait_until(lambda: s.fds >= base_fds + 5 and s.threads >= base + 5, "5 connections accepted, 5 threads")
        t0 = time.monotonic()
        assert s.stop() == 0
        assert time.monotonic() - t0 < 20, "storescp waited for the silent connections (-ta 60)"
        for c in silent:
            c.expect_closed(timeout=5)
        try:
            assert bare.recv(1) == b""
        except ConnectionResetError:
            pass
    finally:
        for c in silent:
            c.close()
        bare.close()
    assert s.log_lines("closed 5 connections that had not asked for an association"), "\n".join(s.stderr)
    assert not s.log_lines("no association request within"), "\n".join(s.stderr)
    _no_tracebacks(s)


@pytest.mark.parametrize("pdu_type", [0x01, 0x04], ids=["associate-rq", "p-data"])
def test_a_claimed_pdu_length_allocates_nothing_until_its_bytes_arrive(server, pdu_type: int) -> None:
    """32 clients each announce the largest PDU allowed (an A-ASSOCIATE-RQ of
    1 MiB, or a P-DATA-TF of -pdu before any negotiation) and send 2 bytes of
    it: the server's memory grows by what arrived plus thread stacks, not by
    what was claimed (it allocated up to 256 KiB per client up front)."""
    from dcmcli.net.acceptor import AcceptorOptions
    from dcmcli.net.ul import MAX_CONTROL_PDU, receive_limit

    claim = MAX_CONTROL_PDU if pdu_type == 0x01 else receive_limit(131072)
    pending = AcceptorOptions().max_pending
    s = server()
    base = _idle_threads(s)
    rss = s.rss_kb
    clients = []
    try:
        for _ in range(pending):
            c = Raw(s.port)
            c.send(struct.pack(">BBL", pdu_type, 0, claim) + b"\x00\x01")
            clients.append(c)
        s.wait_until(lambda: s.threads >= base + pending, f"{pending} connection threads")
        s.wait_until(lambda: s.unread_bytes() == 0, "every client's 8 bytes read")
        grown = s.rss_kb - rss
    finally:
        for c in clients:
            c.close()
    # over TLS each connection also holds its TLS session (OpenSSL's buffers,
    # about 100 KiB, whatever the PDU claims): 32 of them are allowed for
    limit = 2 * 1024 + (32 * 150 if hostile_peer.TLS else 0)
    assert grown < limit, f"{grown} kB for {pending} clients that sent 8 bytes each"
    s.wait_until(lambda: s.threads <= base, "their threads gone")
    assert_echo(s.port)
    _no_tracebacks(s)


# -- 4. malformed items: an A-ABORT or A-ASSOCIATE-RJ and one log line ------------------

@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One storescp at the default verbosity (warnings logged) and one with -q,
    shared by the malformed-item cases."""
    tmp = tmp_path_factory.mktemp("malformed")
    servers = (Server([], tmp / "rx"), Server(["-q"], tmp / "rx-q"))
    yield servers
    for s in servers:
        s.stop()


_APP = item(0x10, b"1.2.840.10008.3.1.1.1")


def _echo_command(message_id: bytes = us(1), sop_class: bytes = ui(VERIFICATION)) -> bytes:
    return command_set({0x0002: sop_class, 0x0100: us(0x0030), 0x0110: message_id, 0x0800: us(0x0101)})


# (id, A-ASSOCIATE-RQ, command PDV sent after the AC or None, expected outcome, what the log line says)
MALFORMED = [
    ("empty-context-item", rq_pdu(_APP + item(0x20, b"") + user_info()), None,
     "abort", "presentation context item of 0 bytes"),
    ("short-0x21-item", rq_pdu(_APP + context_item(1) + item(0x21, b"\x01") + user_info()), None,
     "abort", "unexpected item 0x21"),
    ("non-ascii-transfer-syntax", rq_pdu(contexts=item(0x20, b"\x01\x00\x00\x00" + item(0x30, VERIFICATION.encode())
                                                       + item(0x40, "1.2.840.10008.1.2é".encode()))), None,
     "abort", "transfer syntax is not ASCII"),
    ("non-ascii-abstract-syntax", rq_pdu(contexts=item(0x20, b"\x01\x00\x00\x00" + item(0x30, b"1.2\xff")
                                                       + item(0x40, ILE.encode()))), None,
     "abort", "abstract syntax is not ASCII"),
    *[(f"max-pdu-{n}", rq_pdu(max_pdu=n), None, "abort", f"a maximum PDU of {n} bytes leaves no room")
      for n in (1, 6)],
    ("no-max-length", rq_pdu(_APP + context_item(1) + item(0x50, item(0x52, b"1.2.3"))), None,
     "abort", "no maximum length sub-item"),
    ("even-context-id", rq_pdu(contexts=context_item(2)), None, "abort", "presentation context id 2 is even"),
    ("context-id-0", rq_pdu(contexts=context_item(0)), None, "abort", "presentation context id 0 is even"),
    ("65-contexts-same-id", rq_pdu(contexts=context_item(1) * 65), None,
     "abort", "presentation context id 1 is proposed twice"),
    ("two-abstract-syntaxes", rq_pdu(contexts=item(0x20, b"\x01\x00\x00\x00" + item(0x30, b"1.2") * 2
                                                   + item(0x40, ILE.encode()))), None,
     "abort", "has 2 abstract syntaxes"),
    ("protocol-version-2", rq_pdu(version=2), None, "rj 1/2/2", "protocol version 2 not supported"),
    ("unknown-application-context", rq_pdu(app="1.2.3.4"), None, "rj 1/1/2",
     "application context 1.2.3.4 not supported"),
    ("message-id-empty", valid_rq(), _echo_command(message_id=b""), "abort", "MessageID has 0 bytes"),
    ("message-id-text", valid_rq(), _echo_command(message_id=b"abc "), "abort", "MessageID has 4 bytes"),
    ("message-id-out-of-range", valid_rq(), _echo_command(message_id=struct.pack("<L", 70000)), "abort",
     "MessageID has 4 bytes"),
    ("non-ascii-sop-class-in-command", valid_rq(), _echo_command(sop_class=ui("1.2.840.10008.1.1é".encode())),
     "abort", "AffectedSOPClassUID is not ASCII"),
    ("command-without-command-field", valid_rq(), command_set({0x0110: us(1), 0x0800: us(0x0101)}),
     "abort", "no Command Field"),
]


@pytest.mark.parametrize("rq,command,expected,logged", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_items_get_one_answer_and_one_log_line(two_servers, rq: bytes, command: bytes | None,
                                                         expected: str, logged: str) -> None:
    """Each malformed item or command: A-ASSOCIATE-RJ with the right reason or
    A-ABORT, one log line naming the problem, no traceback (with -q neither),
    and the server still answers a C-ECHO (the old storescp died or printed
    tracebacks on several of these)."""
    loud, quiet = two_servers
    for s in (loud, quiet):
        with Raw(s.port) as c:
            if command is None:
                c.send(rq)
            else:
                c.associate(rq)
                c.send(pdv_pdu(1, command))
            kind, body = c.outcome(timeout=5)
        if expected.startswith("rj"):
            assert kind == "rj", kind
            assert "rj " + "/".join(map(str, body[1:4])) == expected
        else:
            assert kind == "abort", kind
            assert body[2] == 2  # from the service provider
        if s is loud:
            _logged(s, c.port, logged)
        assert_echo(s.port)
        if s is loud:
            _once(s, c.port)
        assert not s.tracebacks(), "\n".join(s.stderr)
        assert not s.internal_errors(), "\n".join(s.stderr)
    assert not quiet.stderr, quiet.stderr


def _roles(classes: list[str]) -> bytes:
    return b"".join(item(0x54, struct.pack(">H", len(c)) + c.encode() + b"\x01\x01") for c in classes)


@pytest.mark.parametrize("repeat", [False, True], ids=["classes-not-proposed", "verification-repeated"])
def test_role_selection_items_are_answered_once_per_accepted_sop_class(server, repeat: bool) -> None:
    """A user information item filled to 65535 bytes with role selection
    sub-items (910 for SOP classes never proposed, or 2620 for Verification):
    the answer names each accepted SOP class once. Answering every sub-item
    made the A-ASSOCIATE-AC's user information item (our implementation UID
    and version name are longer than the peer's) too long to encode: the
    association died with an internal error."""
    from dcmcli.net.ul import decode_associate

    head = item(0x51, struct.pack(">L", 16384)) + item(0x52, b"1")
    sample = VERIFICATION if repeat else "1.2.826.0.1.3680043.9.7433.4." + "0" * 35
    n = (0xFFFF - len(head)) // len(_roles([sample]))
    classes = [VERIFICATION] * n if repeat else [f"1.2.826.0.1.3680043.9.7433.4.{k:035d}" for k in range(n)]
    info = head + _roles(classes)
    assert len(info) <= 0xFFFF and len(_roles(classes)) + 72 > 0xFFFF  # the AC's own sub-items take 72 bytes
    s = server()
    with Raw(s.port) as c:
        ac = decode_associate(0x02, c.associate(rq_pdu(_APP + context_item(1) + item(0x50, info))))
        assert [(r.sop_class, r.scu, r.scp) for r in ac.roles] == ([(VERIFICATION, True, False)] if repeat else [])
        c.send(pdv_pdu(1, c_echo_rq(1)))
        assert _rsp(c) == 0
    assert_echo(s.port)
    _no_tracebacks(s)


# -- 5. no .part file outlives its object ---------------------------------------------

SC_RQ = valid_rq([(1, SECONDARY_CAPTURE, (ILE,))])


def _parts(outdir: Path) -> list[Path]:
    return sorted(outdir.glob(".*.part"))


def _start_store(c: Raw, uid: str, s: Server) -> bytes:
    """Associate, send a C-STORE-RQ and the first half of its data set; wait
    for the server's .part file. Returns the data set's second half."""
    c.associate(SC_RQ)
    data = dataset(uid)
    c.send(pdv_pdu(1, c_store_rq(1, SECONDARY_CAPTURE, uid)))
    c.send(pdv_pdu(1, data[:40], command=False, last=False))
    s.wait_until(lambda: bool(_parts(s.outdir)), "the object's .part file")
    return data[40:]


def test_a_second_store_before_the_last_fragment_aborts_and_leaves_no_part(server) -> None:
    s = server()
    with Raw(s.port) as c:
        _start_store(c, "1.2.826.0.1.3680043.9.7433.5.1", s)
        c.send(pdv_pdu(1, c_store_rq(2, SECONDARY_CAPTURE, "1.2.826.0.1.3680043.9.7433.5.2")))
        c.expect_abort(timeout=5)
    _logged(s, c.port, "a command arrived before the previous message's data set was complete")
    s.wait_until(lambda: not _parts(s.outdir), "the .part file removed")
    assert not list(s.outdir.glob("*.dcm"))
    assert store_objects(s.port, [("1.2.826.0.1.3680043.9.7433.5.3", "1.2.826.0.1.3680043.9.7433.5")]) == [0]
    assert len(list(s.outdir.glob("*.dcm"))) == 1 and not _parts(s.outdir)
    _once(s, c.port)
    _no_tracebacks(s)


def test_a_non_ascii_sop_instance_uid_is_aborted_and_leaves_no_part(server) -> None:
    s = server()
    with Raw(s.port) as c:
        c.associate(SC_RQ)
        c.send(pdv_pdu(1, store_command(sop_instance=ui("1.2.826.0.1.3680043.9.7433.5é".encode()))))
        c.send(pdv_pdu(1, dataset("1.2.826.0.1.3680043.9.7433.5"), command=False))
        c.expect_abort(timeout=5)
    _logged(s, c.port, "AffectedSOPInstanceUID is not ASCII")
    assert_echo(s.port)
    _once(s, c.port)
    assert not _parts(s.outdir) and not list(s.outdir.glob("*.dcm"))
    _no_tracebacks(s)


def test_a_non_ascii_uid_in_the_data_set_is_refused_and_leaves_no_part(server) -> None:
    """The command's UID is fine, the data set's is not ASCII: 0xA900, nothing stored."""
    s = server()
    uid = "1.2.826.0.1.3680043.9.7433.5.4"
    with Raw(s.port) as c:
        c.associate(SC_RQ)
        c.send(pdv_pdu(1, c_store_rq(1, SECONDARY_CAPTURE, uid)))
        c.send(pdv_pdu(1, dataset(uid).replace(uid.encode(), uid[:-1].encode() + b"\xe9"), command=False))
        pdu_type, body = c.read_pdu()
        assert pdu_type == 0x04
    rsp = decode_command(body[6:])
    assert rsp.status == 0xA900
    s.wait_event("received")
    assert not _parts(s.outdir) and not list(s.outdir.glob("*.dcm"))
    assert store_objects(s.port, [(uid, "1.2.826.0.1.3680043.9.7433.5")]) == [0]
    _no_tracebacks(s)


def test_a_part_left_by_a_killed_server_is_removed_at_the_next_start(server, tmp_path: Path) -> None:
    """kill -9 in the middle of an object leaves its .<pid>-<hex>.part; the
    next storescp on that directory removes it (its pid is gone), but keeps
    the .part of a receiver that is still running."""
    import os
    import uuid

    outdir = tmp_path / "shared-rx"
    first = server(outdir=outdir)
    with Raw(first.port) as c:
        _start_store(c, "1.2.826.0.1.3680043.9.7433.5.5", first)
        first.proc.kill()
        first.proc.wait(10)  # reaped: its pid is gone
    (left,) = _parts(outdir)
    assert left.name.startswith(f".{first.pid}-")
    alive = outdir / f".{os.getpid()}-{uuid.uuid4().hex}.part"  # another receiver's object in flight
    alive.write_bytes(b"in flight")
    second = server("-v", outdir=outdir)
    assert _parts(outdir) == [alive]
    second.wait_log("removed 1 incomplete .part file(s)")
    assert not list(outdir.glob(f".{first.pid}-*"))  # its spare files too
    assert store_objects(second.port, [("1.2.826.0.1.3680043.9.7433.5.6", "1.2.826.0.1.3680043.9.7433.5")]) == [0]
    assert len(list(outdir.glob("*.dcm"))) == 1
    _no_tracebacks(second)


def _spares(outdir: Path) -> list[Path]:
    return sorted(outdir.glob(".*.spare"))


def test_spare_files_exist_only_while_objects_come(server) -> None:
    """The writer makes empty files ahead of the objects (creating a file is
    the dearest step of a small one): while objects come there are some,
    each empty and named for this server; a second after the last object
    none is left, and a stop leaves none either."""
    s = server()
    objects = [(f"1.2.826.0.1.3680043.9.7433.12.{n}", "1.2.826.0.1.3680043.9.7433.12") for n in range(1, 4)]
    assert store_objects(s.port, objects) == [0, 0, 0]
    spares = _spares(s.outdir)  # made after the first object, kept for a second
    assert spares and all(p.name.startswith(f".{s.pid}-") and p.stat().st_size == 0 for p in spares)
    assert len(list(s.outdir.glob("*.dcm"))) == 3 and not _parts(s.outdir)
    s.wait_until(lambda: not _spares(s.outdir), "the spare files removed when no object came for a second")
    assert store_objects(s.port, [("1.2.826.0.1.3680043.9.7433.12.4", "1.2.826.0.1.3680043.9.7433.12")]) == [0]
    s.wait_until(lambda: bool(_spares(s.outdir)), "spare files made again for the next objects")
    assert s.stop() == 0
    assert not _spares(s.outdir) and not _parts(s.outdir)
    assert len(list(s.outdir.glob("*.dcm"))) == 4


# -- 6. -td is honoured ---------------------------------------------------------------

def test_dimse_timeout_aborts_an_idle_association(server) -> None:
    """-td 1: an association idle after negotiation is aborted after about
    1 s (the old storescp ignored -td and waited for ever)."""
    s = server("-td", "1")
    with Raw(s.port) as c:
        c.associate()
        t0 = time.monotonic()
        c.expect_abort(timeout=5)
        idle = time.monotonic() - t0
    assert 0.9 <= idle <= 2.5, idle
    _logged(s, c.port, "no next message within 1 s (-td)")
    assert_echo(s.port)
    _once(s, c.port)
    _no_tracebacks(s)


def test_dimse_timeout_0_means_no_limit(server) -> None:
    """-td 0: an idle association stays; after 3 s it still answers a
    C-ECHO and is released normally."""
    s = server("-td", "0", "-ta", "1")
    with Raw(s.port) as c:
        c.associate()
        assert not c.readable(3.0), "the server ended an idle association despite -td 0"
        c.send(pdv_pdu(1, c_echo_rq(7)))
        pdu_type, body = c.read_pdu()
        assert pdu_type == 0x04
        rsp = decode_command(body[6:])
        assert rsp.responding_to == 7 and rsp.status == 0
        c.send(pdu(0x05, bytes(4)))
        assert c.read_pdu()[0] == 0x06
    assert_echo(s.port)
    assert not s.lines_about(c.port)  # nothing worth a warning happened
    _no_tracebacks(s)


# -- 7. -xcs: one scheduler thread, not one per study -----------------------------------

def test_end_of_study_commands_use_one_scheduler_thread(server, tmp_path: Path) -> None:
    """300 objects of 300 studies with -xcs and a long -tos: the server's
    thread count stays small (the old storescp started a timer thread per
    study)."""
    s = server("-xcs", "true", "-tos", "600")
    base = _idle_threads(s)
    objects = [(f"1.2.826.0.1.3680043.9.7433.7.{n}", f"1.2.826.0.1.3680043.9.7433.7.{n}.0") for n in range(300)]
    peak = 0

    def watch() -> None:
        nonlocal peak
        peak = max(peak, s.threads)

    with open_association(settings(), Peer("127.0.0.1", s.port), [Context(None, SECONDARY_CAPTURE, [ILE])]) as a:
        cid = next(iter(a.accepted))
        for n, (uid, study) in enumerate(objects, 1):
            a.send(cid, c_store_rq(n, SECONDARY_CAPTURE, uid), dataset(uid, study))
            assert a.receive().command.status == 0
            if n % 10 == 0:
                watch()
    s.wait_event("received", 300)
    watch()
    assert peak <= base + 3, f"{peak} threads for 300 studies (idle: {base})"
    assert len(list(s.outdir.glob("*.dcm"))) == 300
    _no_tracebacks(s)


# -- 8. --json stays pure with -xcr ---------------------------------------------------

def test_exec_on_reception_output_never_reaches_json_stdout(server) -> None:
    """The -xcr command's stdout goes to storescp's stderr: every stdout line
    is JSON (the old storescp let the command write into the JSON stream)."""
    s = server("-xcr", "echo NOT-JSON #f")
    uids = [f"1.2.826.0.1.3680043.9.7433.8.{n}" for n in range(3)]
    assert store_objects(s.port, [(u, "1.2.826.0.1.3680043.9.7433.8") for u in uids]) == [0, 0, 0]
    s.wait_log("NOT-JSON", count=3)  # the commands ran (their output is on stderr)
    assert s.stop() == 0
    import json

    assert s.stdout, "no output"
    events = [json.loads(line) for line in s.stdout]  # raises on any line that is not JSON
    assert [e["event"] for e in events if e["event"] != "association"] == [
        "listening", "received", "received", "received", "stopped"]
    _no_tracebacks(s)


# -- 9. strictness -------------------------------------------------------------------

def test_a_store_without_affected_sop_instance_uid_is_refused(server) -> None:
    s = server()
    with Raw(s.port) as c:
        c.associate(SC_RQ)
        c.send(pdv_pdu(1, store_command(sop_instance=None)))
        c.send(pdv_pdu(1, dataset("1.2.826.0.1.3680043.9.7433.9.1"), command=False))
        c.expect_abort(timeout=5)
    _logged(s, c.port, "C-STORE-RQ lacks AffectedSOPInstanceUID")
    assert_echo(s.port)
    _once(s, c.port)
    assert not list(s.outdir.iterdir())
    _no_tracebacks(s)


def test_data_on_another_context_than_its_command_is_aborted(server) -> None:
    s = server()
    uid = "1.2.826.0.1.3680043.9.7433.9.2"
    with Raw(s.port) as c:
        c.associate(STORE_RQ)
        c.send(pdv_pdu(1, c_store_rq(1, SECONDARY_CAPTURE, uid)))
        c.send(pdv_pdu(3, dataset(uid), command=False))
        c.expect_abort(timeout=5)
    _logged(s, c.port, "a data set on presentation context 3, its command on 1")
    s.wait_until(lambda: not _parts(s.outdir), "no .part file")
    assert not list(s.outdir.glob("*.dcm"))
    assert store_objects(s.port, [(uid, "1.2.826.0.1.3680043.9.7433.9")]) == [0]
    _once(s, c.port)
    _no_tracebacks(s)


def test_invalid_sop_instance_uids_are_refused_with_c000(server) -> None:
    """'.', '..', '1.2.3/4', '1.2.3_4' in the command: 0xC000 on the same
    association, nothing stored; a valid UID after them is stored."""
    s = server()
    bad = [".", "..", "1.2.3/4", "1.2.3_4", "1..2", "1.2."]
    good = "1.2.826.0.1.3680043.9.7433.9.3"
    with Raw(s.port) as c:
        c.associate(SC_RQ)
        statuses = []
        for n, uid in enumerate(bad + [good], 1):
            c.send(pdv_pdu(1, store_command(message_id=us(n), sop_instance=ui(uid))))
            c.send(pdv_pdu(1, dataset(uid), command=False))
            statuses.append(_rsp(c))
        c.send(pdu(0x05, bytes(4)))
        assert c.read_pdu()[0] == 0x06
    assert statuses == [0xC000] * len(bad) + [0]
    events = [s.wait_event("received", n) for n in range(1, len(bad) + 2)]
    assert [e["status"]["code"] for e in events] == [0xC000] * len(bad) + [0]  # type: ignore[index]
    assert [p.name for p in stored_in(s.outdir)] == [f"OT.{good}.dcm"]
    _no_tracebacks(s)


def test_a_data_set_nested_too_deep_to_walk_is_refused_not_an_internal_error(server) -> None:
    """3000 nested sequences of undefined length (16 bytes a level) in the
    first 64 KB: walking them for the SOP UIDs exceeded Python's recursion
    limit, and the RecursionError aborted the association as an internal
    error. It is a data set that cannot be parsed: 0xC000, nothing stored,
    and the association goes on."""
    s = server()
    level = struct.pack("<HHL", 0x0008, 0x0005, 0xFFFFFFFF) + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF)
    data = level * 3000
    with Raw(s.port) as c:
        c.associate(valid_rq([(1, SECONDARY_CAPTURE, (ILE,)), (3, VERIFICATION, (ILE,))]))
        c.send(pdv_pdu(1, c_store_rq(1, SECONDARY_CAPTURE, "1.2.826.0.1.3680043.9.7433.11.1")))
        for start in range(0, len(data), 16000):
            c.send(pdv_pdu(1, data[start:start + 16000], command=False, last=start + 16000 >= len(data)))
        assert _rsp(c) == 0xC000
        c.send(pdv_pdu(3, c_echo_rq(2)))
        assert _rsp(c) == 0
    s.wait_log("1.2.826.0.1.3680043.9.7433.11.1 from HOSTILE refused, its data set is broken: nested too deep")
    assert not stored_in(s.outdir)
    _no_tracebacks(s)

RECORD = """import json, pathlib, sys, uuid
pathlib.Path(sys.argv[1], uuid.uuid4().hex + ".json").write_text(json.dumps(sys.argv[2:]))
"""


def test_exec_placeholders_are_expanded_once_and_never_become_options(server, tmp_path: Path) -> None:
    """A calling AE title holding '#c' and '#r' reaches the -xcr command as
    it is (not expanded a second time); a calling AE title '-n' would become
    an option of the command, so the command is not run, with a warning."""
    import json
    import sys

    script = tmp_path / "record.py"
    script.write_text(RECORD)
    records = tmp_path / "records"
    records.mkdir()
    s = server("-xcr", f"{sys.executable} {script} {records} #a #c #r")
    study = "1.2.826.0.1.3680043.9.7433.9"
    assert store_objects(s.port, [(study + ".4", study)], aet="X#cY#r") == [0]
    s.wait_until(lambda: bool(list(records.iterdir())), "the command's record")
    (record,) = records.iterdir()
    assert json.loads(record.read_text()) == ["X#cY#r", "STORESCP", "127.0.0.1"]
    record.unlink()
    assert store_objects(s.port, [(study + ".5", study)], aet="-n") == [0]
    s.wait_log("would make the argument '-n' an option")
    assert store_objects(s.port, [(study + ".6", study)], aet="AFTER") == [0]  # runs again for a normal title
    s.wait_until(lambda: bool(list(records.iterdir())), "the next command's record")
    assert [json.loads(r.read_text())[0] for r in records.iterdir()] == ["AFTER"]
    _no_tracebacks(s)


def test_the_socket_is_closed_after_the_peer_aborts(server) -> None:
    s = server()
    with Raw(s.port) as c:
        c.associate()
        c.send(pdu(0x07, bytes((0, 0, 0, 0))))
        c.expect_closed(timeout=5)
    _logged(s, c.port, "aborted by the peer")
    assert_echo(s.port)
    _once(s, c.port)
    _no_tracebacks(s)


# -- 10. --fsync ----------------------------------------------------------------------

def test_fsync_stores_complete_files(server, tmp_path: Path) -> None:
    """--fsync: 200 small objects arrive complete; the time against the same
    without --fsync is printed (-s shows it), not asserted."""
    from pydicom import dcmread

    study = "1.2.826.0.1.3680043.9.7433.10"
    seconds = {}
    for label, args in (("plain", ()), ("fsync", ("--fsync",))):
        s = server(*args, outdir=tmp_path / label)
        objects = [(f"{study}.{n}", study) for n in range(200)]
        t0 = time.perf_counter()
        assert store_objects(s.port, objects) == [0] * 200
        seconds[label] = time.perf_counter() - t0
        files = sorted(s.outdir.glob("*.dcm"))
        assert len(files) == 200 and not _parts(s.outdir)
        for f in files:
            ds = dcmread(f)
            assert f.name == f"OT.{ds.SOPInstanceUID}.dcm" and ds.StudyInstanceUID == study
        _no_tracebacks(s)
    print(f"\n200 objects: {seconds['plain']:.3f} s without --fsync, {seconds['fsync']:.3f} s with "
          f"({1000 * (seconds['fsync'] - seconds['plain']) / 200:.2f} ms more per object)")


@pytest.mark.parametrize("store_as", [None, "1.2.840.10008.1.2.1"], ids=["as-received", "store-as-explicit"])
def test_fsync_reaches_every_stored_file_and_its_folder(tmp_path: Path, monkeypatch, store_as: str | None) -> None:
    """--fsync flushes the very file that ends up under the final name, and
    its folder. In-process: which inodes were fsynced is only visible there.
    With --store-as the converted file replaced the flushed .part, so what
    was stored had never been flushed."""
    import os

    from dcmcli.net.acceptor import AcceptorOptions
    from dcmcli.net.services.storage import StoreServer
    from dcmcli.net.services.writer import WriterOptions

    synced: set[tuple[int, int]] = set()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        synced.add((st.st_dev, st.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "rx"
    srv = StoreServer(settings("STORESCP"), AcceptorOptions(bind="127.0.0.1"),
                      WriterOptions(output_dir=out, fsync=True, store_as=store_as, template="{StudyInstanceUID}/"
                                    "{SOPInstanceUID}.dcm"))
    port = srv.start()
    study = "1.2.826.0.1.3680043.9.7433.10"
    try:
        assert store_objects(port, [(f"{study}.{n}", study) for n in range(3)]) == [0, 0, 0]
    finally:
        srv.stop(5)
    files = sorted(out.rglob("*.dcm"))
    assert len(files) == 3
    for f in files + [out / study]:
        st = f.stat()
        assert (st.st_dev, st.st_ino) in synced, f"{f} was never fsynced"
