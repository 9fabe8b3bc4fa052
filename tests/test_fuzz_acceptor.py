"""Fuzzing the acceptor: valid PDUs built with pynetdicom's PDU classes
(an independent encoder), mutated, sent to one running ``dcmcli storescp``.

Each case is a stream of PDUs (an A-ASSOCIATE-RQ with presentation
contexts and every kind of user information sub-item, then P-DATA-TF PDUs
with a real C-ECHO or C-STORE command set and data set, then A-RELEASE-RQ)
of which one PDU is mutated: bits flipped, cut short, a length field or an
item type changed, an item duplicated or dropped (enclosing lengths fixed
up, so the parser gets past them), a value replaced. The client sends the
stream, half-closes, and reads until the server closes. The server must end
every case within a deadline (A-ASSOCIATE-RJ, A-ABORT, its answers, or a
close), send only well-formed PDU types, never crash, never log an internal
error or a traceback, leave no thread and no .part file behind, and still
answer a C-ECHO at the end.

Examples come from hypothesis with ``derandomize=True`` (the same cases on
every run, no example database) and a fixed ``max_examples``, about 20 s.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from hostile_peer import ELE, ILE, SECONDARY_CAPTURE, VERIFICATION, assert_echo, dataset, server

__all__ = ["server"]  # the fixture

#: Cases per run: about 20 s on a 2-core machine (README's CI machine).
EXAMPLES = 4000
#: How long the server may take to end one case.
CASE_DEADLINE = 5.0


# -- valid PDUs from pynetdicom ------------------------------------------------------

def _associate_rq() -> bytes:
    from pynetdicom import pdu_primitives as pp
    from pynetdicom.pdu import A_ASSOCIATE_RQ
    from pynetdicom.presentation import PresentationContext

    a = pp.A_ASSOCIATE()
    a.application_context_name = "1.2.840.10008.3.1.1.1"
    a.calling_ae_title = "FUZZER"
    a.called_ae_title = "STORESCP"
    contexts = []
    for cid, abstract, syntaxes in ((1, VERIFICATION, [ILE]), (3, SECONDARY_CAPTURE, [ILE]),
                                    (5, "1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2.4.80", ELE])):
        cx = PresentationContext()
        cx.context_id, cx.abstract_syntax, cx.transfer_syntax = cid, abstract, syntaxes
        contexts.append(cx)
    a.presentation_context_definition_list = contexts
    max_length = pp.MaximumLengthNotification()
    max_length.maximum_length_received = 16384
    impl = pp.ImplementationClassUIDNotification()
    impl.implementation_class_uid = "1.2.826.0.1.3680043.9.7433.99"
    version = pp.ImplementationVersionNameNotification()
    version.implementation_version_name = "FUZZER_1"
    role = pp.SCP_SCU_RoleSelectionNegotiation()
    role.sop_class_uid, role.scu_role, role.scp_role = SECONDARY_CAPTURE, True, True
    window = pp.AsynchronousOperationsWindowNegotiation()
    window.maximum_number_operations_invoked = window.maximum_number_operations_performed = 4
    identity = pp.UserIdentityNegotiation()
    identity.user_identity_type, identity.positive_response_requested = 2, True
    identity.primary_field, identity.secondary_field = b"user", b"secret"
    extended = pp.SOPClassExtendedNegotiation()
    extended.sop_class_uid, extended.service_class_application_information = SECONDARY_CAPTURE, b"\x01\x00\x01"
    common = pp.SOPClassCommonExtendedNegotiation()
    common.sop_class_uid, common.service_class_uid = SECONDARY_CAPTURE, "1.2.840.10008.4.2"
    common.related_general_sop_class_identification = ["1.2.840.10008.5.1.4.1.1.7.1"]
    a.user_information = [max_length, impl, version, role, window, identity, extended, common]
    rq = A_ASSOCIATE_RQ()
    rq.from_primitive(a)
    return bytes(rq.encode())


def _p_data(message: object, context_id: int, max_pdu: int = 16384) -> list[bytes]:
    from pynetdicom.pdu import P_DATA_TF

    out = []
    for primitive in message.encode_msg(context_id, max_pdu):  # type: ignore[attr-defined]
        p = P_DATA_TF()
        p.from_primitive(primitive)
        out.append(bytes(p.encode()))
    return out


def _c_echo(message_id: int) -> list[bytes]:
    from pynetdicom import dimse_messages as dm, dimse_primitives as dp

    echo = dp.C_ECHO()
    echo.MessageID, echo.AffectedSOPClassUID = message_id, VERIFICATION
    msg = dm.C_ECHO_RQ()
    msg.primitive_to_message(echo)
    return _p_data(msg, 1)


def _c_store(message_id: int, uid: str, max_pdu: int = 16384) -> list[bytes]:
    from pynetdicom import dimse_messages as dm, dimse_primitives as dp

    store = dp.C_STORE()
    store.MessageID, store.Priority = message_id, 0
    store.AffectedSOPClassUID, store.AffectedSOPInstanceUID = SECONDARY_CAPTURE, uid
    store.DataSet = BytesIO(dataset(uid))
    msg = dm.C_STORE_RQ()
    msg.primitive_to_message(store)
    return _p_data(msg, 3, max_pdu)


RELEASE_RQ = struct.pack(">BBLL", 0x05, 0, 4, 0)


def _streams() -> list[list[bytes]]:
    rq = _associate_rq()
    uid = "1.2.826.0.1.3680043.9.7433.99.1"
    return [
        [rq],
        [rq, *_c_echo(1), RELEASE_RQ],
        [rq, *_c_store(1, uid), RELEASE_RQ],
        [rq, *_c_echo(1), *_c_store(2, uid), *_c_echo(3), RELEASE_RQ],
        [rq, *_c_store(1, uid, max_pdu=64), RELEASE_RQ],  # command and data set in fragments of 58 bytes
    ]


# -- the PDUs' structure, for mutations that know where lengths and types are -------------

@dataclass
class Node:
    """An item (or PDU, PDV, command element) in a PDU's bytes."""

    start: int
    end: int
    type_at: int | None  # offset of the type byte
    length_at: int  # offset of the length field
    length_size: int  # 2 or 4
    little: bool = False  # command elements' lengths are little endian
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    def ancestors(self) -> list[Node]:
        out, n = [], self.parent
        while n is not None:
            out.append(n)
            n = n.parent
        return out


def _items(data: bytes, start: int, end: int, parent: Node, nodes: list[Node], sub: dict[int, int]) -> None:
    """Walk A-ASSOCIATE items from ``start``; ``sub`` says where an item
    type's sub-items begin inside its value (walked too)."""
    pos = start
    while pos + 4 <= end:
        (length,) = struct.unpack_from(">H", data, pos + 2)
        stop = min(end, pos + 4 + length)
        node = Node(pos, stop, pos, pos + 2, 2, parent=parent)
        parent.children.append(node)
        nodes.append(node)
        if data[pos] in sub:
            _items(data, pos + 4 + sub[data[pos]], stop, node, nodes, {})
        pos = stop


def _elements(data: bytes, start: int, end: int, parent: Node, nodes: list[Node]) -> None:
    pos = start
    while pos + 8 <= end:
        (length,) = struct.unpack_from("<L", data, pos + 4)
        stop = min(end, pos + 8 + length)
        node = Node(pos, stop, None, pos + 4, 4, little=True, parent=parent)
        parent.children.append(node)
        nodes.append(node)
        pos = stop


def structure(data: bytes) -> list[Node]:
    """Every node of a PDU, the PDU itself first (none when even its header is cut)."""
    if len(data) < 6:
        return []
    root = Node(0, len(data), 0, 2, 4)
    nodes = [root]
    if data[0] == 0x01 and len(data) >= 74:
        _items(data, 74, len(data), root, nodes, {0x20: 4, 0x50: 0})
    elif data[0] == 0x04:
        pos = 6
        while pos + 6 <= len(data):
            (length,) = struct.unpack_from(">L", data, pos)
            stop = min(len(data), pos + 4 + length)
            pdv = Node(pos, stop, None, pos, 4, parent=root)
            root.children.append(pdv)
            nodes.append(pdv)
            if data[pos + 5] & 0x01:  # a command fragment: its elements
                _elements(data, pos + 6, stop, pdv, nodes)
            pos = stop
    return nodes


def _length(data: bytes | bytearray, node: Node) -> int:
    fmt = ("<" if node.little else ">") + ("H" if node.length_size == 2 else "L")
    return int(struct.unpack_from(fmt, data, node.length_at)[0])


def _set_length(data: bytearray, node: Node, value: int) -> None:
    fmt = ("<" if node.little else ">") + ("H" if node.length_size == 2 else "L")
    struct.pack_into(fmt, data, node.length_at, value % (1 << (8 * node.length_size)))


def _grow_ancestors(data: bytearray, node: Node, delta: int) -> None:
    """Bytes were inserted (or removed) inside or after ``node``: the enclosing
    items' lengths follow, so that the parser gets past them. Their length
    fields all lie before ``node``, where nothing moved."""
    for a in node.ancestors():
        _set_length(data, a, _length(data, a) + delta)


ITEM_TYPES = [0x00, 0x01, 0x02, 0x04, 0x07, 0x10, 0x20, 0x21, 0x30, 0x40, 0x50, 0x51, 0x52, 0x53, 0x54, 0x55,
              0x56, 0x57, 0x58, 0x59, 0x5A, 0x7F, 0x80, 0xFF]
COMMAND_ELEMENTS = [0x0000, 0x0002, 0x0100, 0x0110, 0x0120, 0x0700, 0x0800, 0x0900, 0x1000, 0x1030, 0x1031, 0xFFFF]
VALUES = [b"", b"\x00", b"1", b".", b"1..2", b"1.2.840.10008.1.1\xff", "é".encode(), b"1" * 65, b"\x00" * 64,
          b" " * 16, b"-n", b"#a#c#r", b"\xff" * 300, b"1.2.840.10008.1.2", b"1.2.840.10008.5.1.4.1.1.7",
          b"\x01\x00", b"\x30\x00", b"\x01\x01", b"\xff\xff\xff\xff"]
KINDS = ["flip", "truncate", "byte", "length", "type", "duplicate", "drop", "value"]


def mutate(data: bytes, draw: st.DataObject) -> bytes:
    """One to three mutations of a PDU, drawn by hypothesis."""
    out = bytearray(data)
    for _ in range(draw.draw(st.integers(1, 3), label="mutations")):
        if not out:
            break
        kind = draw.draw(st.sampled_from(KINDS), label="kind")
        if kind == "flip":
            for _ in range(draw.draw(st.integers(1, 8), label="bits")):
                out[draw.draw(st.integers(0, len(out) - 1))] ^= 1 << draw.draw(st.integers(0, 7))
            continue
        if kind == "truncate":
            del out[draw.draw(st.integers(0, len(out) - 1), label="cut at"):]
            continue
        if kind == "byte":
            out[draw.draw(st.integers(0, len(out) - 1), label="at")] = draw.draw(st.integers(0, 255))
            continue
        nodes = structure(bytes(out))
        if not nodes:
            continue
        node = nodes[draw.draw(st.integers(0, len(nodes) - 1), label="node")]
        value_start = node.length_at + node.length_size
        if kind == "length":
            current = _length(out, node)
            _set_length(out, node, draw.draw(st.sampled_from(
                [0, 1, 2, 3, 4, 5, 6, 7, current - 1, current + 1, 2 * current, 0xFFFF, 0xFFFFFFFF, 1 << 20,
                 (1 << 20) + 1]), label="length"))
        elif kind == "type":
            if node.type_at is not None:  # a PDU or an A-ASSOCIATE item
                out[node.type_at] = draw.draw(st.sampled_from(ITEM_TYPES), label="type")
            elif node.little:  # a command element: another element number
                struct.pack_into("<H", out, node.start + 2, draw.draw(st.sampled_from(COMMAND_ELEMENTS)))
            elif value_start + 2 <= len(out):  # a PDV: its context id and message control header
                out[value_start] = draw.draw(st.sampled_from([0, 1, 2, 3, 5, 7, 255]), label="context id")
                out[value_start + 1] = draw.draw(st.sampled_from([0, 1, 2, 3, 4, 0xFF]), label="control header")
        elif kind == "duplicate" and node.parent is not None:
            copies = bytes(out[node.start:node.end]) * draw.draw(st.integers(1, 70), label="copies")
            out[node.end:node.end] = copies
            _grow_ancestors(out, node, len(copies))
        elif kind == "drop" and node.parent is not None:
            size = node.end - node.start
            del out[node.start:node.end]
            _grow_ancestors(out, node, -size)
        elif kind == "value" and value_start <= node.end:
            value = draw.draw(st.sampled_from(VALUES) | st.binary(max_size=80), label="value")
            old = node.end - value_start
            out[value_start:node.end] = value
            _set_length(out, node, len(value))
            _grow_ancestors(out, node, len(value) - old)
    return bytes(out)


# -- sending a case -------------------------------------------------------------------------

def _pdu_types(data: bytes) -> list[int]:
    types, pos = [], 0
    while pos + 6 <= len(data):
        (length,) = struct.unpack_from(">L", data, pos + 2)
        types.append(data[pos])
        pos += 6 + length
    return types


def send_case(port: int, stream: bytes) -> tuple[int, list[int]]:
    """Send ``stream``, half-close, read until the server closes; (our port,
    the PDU types the server sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=CASE_DEADLINE)
    try:
        local = int(sock.getsockname()[1])
        try:
            sock.sendall(stream)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server has closed already (it refused what came first)
        deadline = time.monotonic() + CASE_DEADLINE
        got = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "the server neither answered nor closed within the deadline"
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except (TimeoutError, socket.timeout):
                raise AssertionError("the server neither answered nor closed within the deadline") from None
            if not chunk:
                break
            got += chunk
    finally:
        sock.close()
    return local, _pdu_types(bytes(got))


def test_fuzzed_pdus_never_hurt_the_acceptor(server, tmp_path: Path) -> None:
    s = server("-ta", "5", "-td", "5")
    assert_echo(s.port)
    idle = s.idle_threads
    streams = _streams()
    sent: dict[int, bytes] = {}  # client port -> the stream last sent from it, to name culprits
    cases = 0
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def case(data: st.DataObject) -> None:
        pdus = list(streams[data.draw(st.integers(0, len(streams) - 1), label="stream")])
        which = data.draw(st.integers(0, len(pdus) - 1), label="mutated PDU")
        pdus[which] = mutate(pdus[which], data)
        stream = b"".join(pdus)
        nonlocal cases
        port, answered = send_case(s.port, stream)
        sent[port] = stream
        cases += 1
        assert s.alive(), f"the server exited with {s.proc.returncode}"
        assert set(answered) <= {0x02, 0x03, 0x04, 0x06, 0x07}, answered
        # the case is over when its thread is: none leaks, none runs into the next case
        deadline = time.monotonic() + CASE_DEADLINE
        while s.threads > idle:
            assert time.monotonic() < deadline, f"{s.threads} threads, {idle} when idle"
            time.sleep(0.001)

    case()
    elapsed = time.monotonic() - started
    assert_echo(s.port)
    s.wait_until(lambda: s.threads <= idle, "no thread left")
    assert not list(s.outdir.glob(".*.part"))
    bad = s.tracebacks() + s.internal_errors()
    culprits = [sent[p].hex() for p in sent if any(f"127.0.0.1:{p} " in line for line in bad)]
    assert not bad, "\n".join(bad[:20] + ["streams that caused them (hex):"] + culprits[:5])
    assert s.stop() == 0
    print(f"\n{cases} fuzzed cases in {elapsed:.1f} s")
