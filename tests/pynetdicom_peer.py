"""What the pynetdicom peer scripts (tests/nservice_peer.py, print_peer.py,
move_peer.py) share: ``--tls KEY CERT CA``, pause points a test releases,
and the main loop that serves until the test closes the script's stdin.

- ``--tls KEY CERT CA``: the script's server speaks TLS (its certificate
  KEY/CERT, client certificates verified against CA when presented) and the
  associations it opens itself (C-MOVE sub-operations, reports on a new
  association) use TLS too, presenting the same certificate.
- ``pause(name)``: prints ``paused NAME`` and blocks until the test writes
  ``go`` to stdin (RecordingPeer.wait_paused / resume in tests/conftest.py):
  the test acts while the peer is at a known point, without sleeping.

Importing it also closes a race of pynetdicom 3.0.4's association reactor
(``_keep_responses_for_their_sender``), which otherwise loses a response
now and then on a loaded machine.
"""

from __future__ import annotations

import ssl
import sys
import threading
from typing import Any

_go = threading.Condition()
_released = 0
_stdin_closed = False


def _keep_responses_for_their_sender() -> None:
    """pynetdicom's send_*() methods pause the association's reactor thread
    (clear ``_reactor_checkpoint``, wait for ``_is_paused``) and then wait for
    the response themselves. But the reactor sets ``_is_paused`` before it
    blocks and clears it after: a sender that pauses it in between sees the
    stale flag, sends, and the reactor, preempted there, takes the response
    off the queue ("Received unexpected C-STORE service message"; the sender
    waits out its DIMSE timeout and aborts). Seen here about once in a
    thousand C-STOREs of a C-MOVE under load. The reactor is the only caller
    that does not block: a message it takes while a sender has paused it goes
    back to the front of the queue, for the sender."""
    from pynetdicom.dimse import DIMSEServiceProvider

    original = DIMSEServiceProvider.get_msg

    def get_msg(self: Any, block: bool = False) -> Any:
        item = original(self, block)
        if not block and item[1] is not None and not self.assoc._reactor_checkpoint.is_set():
            q = self.msg_queue
            with q.mutex:
                q.queue.appendleft(item)
                q.unfinished_tasks += 1
                q.not_empty.notify()
            return None, None
        return item

    DIMSEServiceProvider.get_msg = get_msg  # type: ignore[method-assign]


_keep_responses_for_their_sender()


def option_values(args: list[str], name: str, n: int = 1) -> list[str] | None:
    """The ``n`` values after ``name`` in ``args`` (None when absent)."""
    if name not in args:
        return None
    i = args.index(name)
    return args[i + 1:i + 1 + n]


def tls_contexts(args: list[str]) -> tuple[ssl.SSLContext | None, tuple[ssl.SSLContext, str] | None]:
    """(server context for start_server, tls_args for associate) from ``--tls KEY CERT CA``; (None, None) without."""
    given = option_values(args, "--tls", 3)
    if given is None:
        return None, None
    key, cert, ca = given
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    server.load_cert_chain(cert, key)
    server.verify_mode = ssl.CERT_OPTIONAL
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    client.load_cert_chain(cert, key)
    return server, (client, "localhost")


def pause(name: str) -> None:
    """Tell the test we are at ``name`` and wait for its ``go`` (or for stdin to close)."""
    global _released
    with _go:
        print(f"paused {name}", flush=True)
        while _released == 0 and not _stdin_closed:
            _go.wait()
        if _released:
            _released -= 1


def serve(server: Any) -> None:
    """Print the port, then serve until stdin closes; each ``go`` line releases one pause."""
    global _released, _stdin_closed
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "go":
                with _go:
                    _released += 1
                    _go.notify_all()
    finally:
        with _go:
            _stdin_closed = True
            _go.notify_all()
        server.shutdown()
