"""Hostile peers for dcmcli's acceptor (tests/test_acceptor_hostile.py,
tests/test_fuzz_acceptor.py).

* ``Server``: a ``dcmcli storescp --json`` subprocess on a free port whose
  stdout and stderr are both read line by line by threads (raw lines kept:
  the tests check what is *not* JSON and what is logged), with the
  process's thread count, resident memory and open descriptors from /proc.
* ``Raw``: a client socket that sends whatever bytes a test builds and
  reads PDUs back against a deadline.
* Builders for A-ASSOCIATE-RQ items, P-DATA PDVs, command sets and small
  data sets, valid or not.

Nothing here sleeps to synchronise: every wait polls a condition (a log
line, an event, a /proc value, a socket) against a deadline.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from dcmcli.net.association import AssociationSettings, open_association
from dcmcli.net.dimse import C_ECHO_RSP, C_STORE_RSP, c_echo_rq, c_store_rq
from dcmcli.net.peer import Peer
from dcmcli.net.ul import APPLICATION_CONTEXT, Associate, Context, encode_associate_rq

VERIFICATION = "1.2.840.10008.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
ILE = "1.2.840.10008.1.2"
ELE = "1.2.840.10008.1.2.1"

#: How long anything a test waits for may take (a loaded CI machine included).
DEADLINE = 15.0

PDU_NAMES = {1: "A-ASSOCIATE-RQ", 2: "A-ASSOCIATE-AC", 3: "A-ASSOCIATE-RJ", 4: "P-DATA-TF", 5: "A-RELEASE-RQ",
             6: "A-RELEASE-RP", 7: "A-ABORT"}


# -- the server -----------------------------------------------------------------

#: Set by tests/test_acceptor_hostile_tls.py for its module: every Server
#: then listens over TLS (``server_args``), every Raw client and normal peer
#: connects over TLS (``client``: an ssl.SSLContext, ``tls``: TlsOptions).
TLS: dict[str, object] | None = None


class Server:
    """A dcmcli storescp subprocess, its output read as it comes."""

    def __init__(self, args: Sequence[str], outdir: Path, *, preexec_fn: Callable[[], None] | None = None) -> None:
        self.outdir = outdir
        self.args = list(args)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dcmcli", "storescp", "--json", "--bind", "127.0.0.1", "-od", str(outdir),
             *args, *(TLS["server_args"] if TLS else []), "0"],  # type: ignore[misc]
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
        self.pid = self.proc.pid
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._cond = threading.Condition()
        self._open = 2
        self._readers = [threading.Thread(target=self._read, args=(s, lst), daemon=True)
                         for s, lst in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))]
        for t in self._readers:
            t.start()
        listening = self.wait_event("listening", timeout=30.0)
        self.port = int(listening["port"])  # type: ignore[arg-type]
        #: Threads of the idle server (main, accept loop).
        self.idle_threads = self.threads

    def _read(self, stream: object, into: list[str]) -> None:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            with self._cond:
                into.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._open -= 1
            self._cond.notify_all()

    # -- waiting for output ------------------------------------------------
    def _wait(self, check: Callable[[], object], timeout: float, what: str) -> object:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = check()
                if found:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self._open == 0 and not check()):
                    raise AssertionError(f"{what} not seen within {timeout:g} s; stderr:\n" + "\n".join(self.stderr))
                self._cond.wait(remaining)

    def events(self, kind: str | None = None) -> list[dict[str, object]]:
        with self._cond:
            lines = list(self.stdout)
        out = []
        for line in lines:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if kind is None or ev.get("event") == kind:
                out.append(ev)
        return out

    def wait_event(self, kind: str, count: int = 1, timeout: float = DEADLINE) -> dict[str, object]:
        """The ``count``-th event of ``kind`` (waits for it)."""
        def check() -> object:
            found = self.events(kind)
            return found[count - 1] if len(found) >= count else None

        return self._wait(check, timeout, f"{count} {kind!r} event(s)")  # type: ignore[return-value]

    def log_lines(self, needle: str) -> list[str]:
        with self._cond:
            return [line for line in self.stderr if needle in line]

    def wait_log(self, needle: str, timeout: float = DEADLINE, count: int = 1) -> list[str]:
        """Wait until ``count`` stderr lines contain ``needle``; return them all."""
        return self._wait(lambda: (lambda f: f if len(f) >= count else None)(self.log_lines(needle)),  # type: ignore[return-value]
                          timeout, f"a log line with {needle!r}")

    def lines_about(self, client_port: int) -> list[str]:
        """Log lines about the connection from 127.0.0.1:``client_port``."""
        return self.log_lines(f"127.0.0.1:{client_port} ")

    # -- the process ---------------------------------------------------------
    def proc_status(self, key: str) -> int:
        """A number from /proc/PID/status (Threads; VmRSS in kB)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    @property
    def threads(self) -> int:
        return self.proc_status("Threads")

    @property
    def rss_kb(self) -> int:
        return self.proc_status("VmRSS")

    @property
    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def active_connections(self) -> int:
        """Sockets the server has open besides its listening one."""
        fd_dir = f"/proc/{self.pid}/fd"
        n = 0
        for name in os.listdir(fd_dir):
            try:
                n += os.readlink(f"{fd_dir}/{name}").startswith("socket:")
            except OSError:
                pass
        return max(0, n - 1)

    def unread_bytes(self) -> int:
        """Bytes clients sent that the server has not read yet (the receive
        queues of its established connections, /proc/PID/net/tcp)."""
        total = 0
        with open(f"/proc/{self.pid}/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, queues = fields[1], fields[3], fields[4]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == self.port:
                    total += int(queues.split(":")[1], 16)
        return total

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        """Poll a condition on the process (/proc, files) until it holds."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:g} s; stderr:\n" + "\n".join(self.stderr[-20:]))
            if self.proc.poll() is not None:
                raise AssertionError(f"{what}: the server exited with {self.proc.returncode}")
            time.sleep(0.02)  # polling /proc, not synchronising on time

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._readers:
            t.join(5)
        return int(self.proc.returncode)

    def tracebacks(self) -> list[str]:
        return self.log_lines("Traceback")

    def internal_errors(self) -> list[str]:
        return self.log_lines("internal error")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``dcmcli storescp`` with extra arguments; stopped at teardown."""
    started: list[Server] = []

    def start(*args: str, outdir: Path | None = None, preexec_fn: Callable[[], None] | None = None) -> Server:
        s = Server(args, outdir or tmp_path / f"rx-{len(started)}", preexec_fn=preexec_fn)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


# -- normal peers ---------------------------------------------------------------

def settings(aet: str = "NORMAL") -> AssociationSettings:
    s = AssociationSettings()
    s.calling_aet = aet
    s.called_aet = "STORESCP"
    s.connect_timeout = s.acse_timeout = s.dimse_timeout = DEADLINE
    if TLS:
        s.tls = TLS["tls"]  # type: ignore[assignment]
    return s


def assert_echo(port: int, aet: str = "NORMAL") -> None:
    """A normal C-ECHO on a new association succeeds."""
    with open_association(settings(aet), Peer("127.0.0.1", port), [Context(None, VERIFICATION, [ELE, ILE])]) as a:
        cid = next(iter(a.accepted))
        a.send(cid, c_echo_rq(1))
        rsp = a.receive().command
        assert rsp.field == C_ECHO_RSP and rsp.status == 0


def dataset(sop_instance: str, study: str = "1.2.826.0.1.3680043.9.7433.1",
            sop_class: str = SECONDARY_CAPTURE) -> bytes:
    """A small Implicit VR Little Endian data set (no pixels)."""
    def el(group: int, elem: int, text: str, pad: bytes = b"\x00") -> bytes:
        raw = text.encode("ascii")
        if len(raw) % 2:
            raw += pad
        return struct.pack("<HHL", group, elem, len(raw)) + raw

    return b"".join([el(0x0008, 0x0016, sop_class), el(0x0008, 0x0018, sop_instance),
                     el(0x0008, 0x0060, "OT", b" "), el(0x0010, 0x0020, "HOSTILE", b" "),
                     el(0x0020, 0x000D, study), el(0x0020, 0x000E, study + ".1")])


def store_objects(port: int, objects: Iterable[tuple[str, str]], aet: str = "NORMAL") -> list[int]:
    """C-STORE (SOP instance, study) pairs on one association; their statuses."""
    statuses = []
    with open_association(settings(aet), Peer("127.0.0.1", port),
                          [Context(None, SECONDARY_CAPTURE, [ILE])]) as a:
        cid = next(iter(a.accepted))
        for n, (uid, study) in enumerate(objects, 1):
            a.send(cid, c_store_rq(n, SECONDARY_CAPTURE, uid), dataset(uid, study))
            rsp = a.receive().command
            assert rsp.field == C_STORE_RSP and rsp.responding_to == n
            statuses.append(rsp.status)
    return statuses


# -- building PDUs by hand --------------------------------------------------------

def item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(body)) + body


def context_item(cid: int, abstract: str = VERIFICATION, syntaxes: Sequence[str] = (ILE,)) -> bytes:
    return item(0x20, bytes((cid, 0, 0, 0)) + item(0x30, abstract.encode()) + b"".join(
        item(0x40, ts.encode()) for ts in syntaxes))


def user_info(max_pdu: int = 16384, extra: bytes = b"") -> bytes:
    return item(0x50, item(0x51, struct.pack(">L", max_pdu)) + item(0x52, b"1.2.826.0.1.3680043.9.7433.9")
                + extra)


def rq_pdu(items: bytes | None = None, *, version: int = 1, called: str = "STORESCP", calling: str = "HOSTILE",
           app: str = APPLICATION_CONTEXT, contexts: bytes | None = None, max_pdu: int = 16384) -> bytes:
    """An A-ASSOCIATE-RQ whose variable items are ``items`` (default: the
    application context, one Verification context, user information)."""
    if items is None:
        items = (item(0x10, app.encode()) + (context_item(1) if contexts is None else contexts)
                 + user_info(max_pdu))
    head = struct.pack(">HH", version, 0) + called.encode().ljust(16) + calling.encode().ljust(16) + bytes(32)
    return pdu(0x01, head + items)


def valid_rq(contexts: Sequence[tuple[int, str, Sequence[str]]] = ((1, VERIFICATION, (ILE,)),),
             calling: str = "HOSTILE", max_pdu: int = 16384) -> bytes:
    """A well-formed A-ASSOCIATE-RQ (dcmcli's own encoder)."""
    return encode_associate_rq(Associate(calling_ae_title=calling, called_ae_title="STORESCP", max_pdu=max_pdu,
                                         contexts=[Context(c, a, list(t)) for c, a, t in contexts]))


def pdv_pdu(cid: int, value: bytes, *, command: bool = True, last: bool = True) -> bytes:
    """A P-DATA-TF PDU with one presentation data value."""
    mch = (0x01 if command else 0) | (0x02 if last else 0)
    return pdu(0x04, struct.pack(">LBB", len(value) + 2, cid, mch) + value)


def element(elem: int, raw: bytes) -> bytes:
    """A command element (group 0000), Implicit VR Little Endian, value as given."""
    return struct.pack("<HHL", 0x0000, elem, len(raw)) + raw


def command_set(elements: dict[int, bytes]) -> bytes:
    body = b"".join(element(e, elements[e]) for e in sorted(elements))
    return element(0x0000, struct.pack("<L", len(body))) + body


def us(n: int) -> bytes:
    return struct.pack("<H", n)


def ui(text: str | bytes) -> bytes:
    raw = text.encode("ascii") if isinstance(text, str) else text
    return raw + b"\x00" if len(raw) % 2 else raw


def store_command(message_id: bytes = us(1), sop_class: bytes = ui(SECONDARY_CAPTURE),
                  sop_instance: bytes | None = ui("1.2.826.0.1.3680043.9.7433.2")) -> bytes:
    """A C-STORE-RQ command set with fields given as raw values (None: absent)."""
    elements = {0x0002: sop_class, 0x0100: us(0x0001), 0x0110: message_id, 0x0700: us(0), 0x0800: us(0)}
    if sop_instance is not None:
        elements[0x1000] = sop_instance
    return command_set(elements)


# -- the raw client ---------------------------------------------------------------

class Closed(Exception):
    """The server closed the connection (EOF or reset)."""


class Raw:
    """A TCP client that speaks whatever bytes it is given."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = int(self.sock.getsockname()[1])
        self._dead = False
        if TLS:
            try:
                self.sock = TLS["client"].wrap_socket(self.sock, server_hostname="localhost")  # type: ignore[attr-defined]
            except OSError:  # the server closed before the handshake (a connection over a limit): as a close
                self.sock.close()
                self.sock, other = socket.socketpair()
                other.close()
                self._dead = True
        self._buf = bytearray()

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        if self._dead:
            return  # closed by the server during the TLS handshake: nothing to send to
        self.sock.sendall(data)

    def _fill(self, n: int, deadline: float) -> None:
        while len(self._buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer from the server")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                raise Closed("reset") from None
            except (TimeoutError, socket.timeout):
                raise TimeoutError("no answer from the server") from None
            if not chunk:
                raise Closed("EOF")
            self._buf += chunk

    def read_pdu(self, timeout: float = DEADLINE) -> tuple[int, bytes]:
        """The next PDU (type, body); ``Closed`` at EOF, ``TimeoutError`` past the deadline."""
        deadline = time.monotonic() + timeout
        self._fill(6, deadline)
        pdu_type, _, length = struct.unpack_from(">BBL", self._buf)
        self._fill(6 + length, deadline)
        body = bytes(self._buf[6:6 + length])
        del self._buf[:6 + length]
        return pdu_type, body

    def readable(self, timeout: float) -> bool:
        """Whether the server sent something (or closed) within ``timeout``."""
        if self._buf:
            return True
        ready, _, _ = select.select([self.sock], [], [], timeout)
        return bool(ready)

    def associate(self, rq: bytes | None = None) -> bytes:
        """Send an A-ASSOCIATE-RQ (default: Verification) and expect the AC; its body."""
        self.send(rq or valid_rq())
        pdu_type, body = self.read_pdu()
        assert pdu_type == 0x02, f"expected A-ASSOCIATE-AC, got {PDU_NAMES.get(pdu_type, pdu_type)} {body!r}"
        return body

    def outcome(self, timeout: float = DEADLINE) -> tuple[str, bytes]:
        """How the server ended this connection: ("abort", body), ("rj", body)
        or ("closed", b"") after EOF or reset, reading (and skipping) anything
        else on the way; ``TimeoutError`` when it does neither in time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                pdu_type, body = self.read_pdu(max(0.0, deadline - time.monotonic()))
            except Closed:
                return "closed", b""
            if pdu_type == 0x07:
                return "abort", body
            if pdu_type == 0x03:
                return "rj", body

    def expect_abort(self, timeout: float = DEADLINE) -> bytes:
        """The server's A-ABORT (then EOF); returns its body."""
        kind, body = self.outcome(timeout)
        assert kind == "abort", f"expected an A-ABORT, got {kind}"
        return body

    def expect_closed(self, timeout: float = DEADLINE) -> None:
        """The server closes the connection (EOF or reset) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.read_pdu(max(0.0, deadline - time.monotonic()))
            except Closed:
                return


# -- hostile TLS clients (any listener on the shared acceptor) ----------------------

def tls_hostile_clients(port: int, *, acse_timeout: float, ca: Path, rogue_key: Path, rogue_cert: Path,
                        certificate_required: bool = False) -> dict[int, str]:
    """Hostile clients at the TLS listener on 127.0.0.1:``port``, each of
    which the listener must drop without answering a PDU: a connection that
    never starts the handshake (dropped after ``acse_timeout``, -ta: timed
    here), garbage in a TLS record instead of a ClientHello, a plain DICOM
    A-ASSOCIATE-RQ in the clear, a client certificate from a CA the listener
    does not trust, and (``certificate_required``, -rc) no client certificate.
    Returns {client port: words the listener's log line about it must hold}."""
    import ssl

    expected: dict[int, str] = {}

    def connect(words: str) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        expected[int(s.getsockname()[1])] = words
        return s

    def dropped(s: socket.socket) -> bytes:
        """All the listener sent before it closed: at most a TLS alert, never a PDU."""
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass
        s.close()
        assert got == b"" or got[0] == 0x15, f"expected a close (or a TLS alert), got {got[:16]!r}"
        return got

    stalled = connect("no handshake within the ACSE timeout (-ta)")
    t0 = time.monotonic()
    for blob, words in ((b"\x16\x03\x01\x00\x05hello" + bytes(range(256)), "it sent a broken TLS handshake"),
                        (rq_pdu(), "it does not speak TLS (a plain DICOM association on this TLS port?)")):
        s = connect(words)
        s.sendall(blob)
        dropped(s)
    for cert, words in (((rogue_cert, rogue_key), "its certificate is not trusted"),
                        *([(None, "it sent no client certificate, and one is required (-rc)")]
                          if certificate_required else [])):
        ctx = ssl.create_default_context(cafile=str(ca))
        if cert is not None:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        raw = connect(words)
        try:
            # TLS 1.3: our handshake ends before the listener judged our certificate; its verdict follows
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                assert s.recv(1) == b"", "a client the listener must refuse got data"
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as exc:
            assert not isinstance(exc, ssl.SSLCertVerificationError), f"the listener's certificate: {exc}"
    stalled.settimeout(acse_timeout + DEADLINE)
    assert stalled.recv(1) == b"", "a stalled handshake got data"
    waited = time.monotonic() - t0
    stalled.close()
    assert acse_timeout * 0.8 <= waited < acse_timeout + 5, f"stalled handshake dropped after {waited:.2f} s"
    return expected


def assert_tls_refusals_logged(log: str, expected: dict[int, str]) -> None:
    """Each of ``tls_hostile_clients``' connections has its log line, in plain words."""
    for client_port, words in expected.items():
        lines = [line for line in log.splitlines() if f"TLS handshake with 127.0.0.1:{client_port} failed" in line]
        assert lines and words in lines[0] and lines[0].endswith("; connection closed"), (client_port, words, log)
    assert "Traceback" not in log and "internal error" not in log, log
