"""Running a server until SIGINT/SIGTERM: storescp and mwlscp share it; the
way their threads' log lines reach the output, and how every receiver
(storescp, movescu, getscu) shows a received object."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from dcmcli.output import Output
from dcmcli.uids import uid_name

if TYPE_CHECKING:
    from dcmcli.net.services.writer import Received


class Server(Protocol):
    @property
    def listening(self) -> bool: ...

    def start(self) -> int: ...

    def stop(self, timeout: float | None = None) -> int: ...

    def listening_info(self) -> dict[str, Any]: ...


def serve(out: Output, server: Server, describe: Callable[[dict[str, Any]], str]) -> int:
    """Start ``server``, print the ``listening`` event (``describe`` words it
    for people), serve until SIGINT or SIGTERM, then stop: no new associations,
    those in flight get the shutdown timeout. Returns how many were aborted."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        info = server.listening_info()
        out.emit("listening", info, describe(info))
        # Never one unbounded wait: the kernel may deliver SIGTERM to another
        # thread (a hook command's, the acceptor's), and then a main thread
        # asleep in a lock never runs the Python handler. Waking up now and
        # then lets it run (found as a storescp that ignored SIGTERM under load).
        while not stop.wait(0.2):
            pass
        out.info("stopping: no new associations; waiting for those in flight")
        return server.stop()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if server.listening:
            server.stop(0)


def log_printer(out: Output) -> Callable[[str, str], None]:
    """Log lines of a server's threads, by level."""

    def on_log(level: str, message: str) -> None:
        {"debug": out.debug, "info": out.info, "warning": out.warn}.get(level, out.error)(message)

    return on_log


def received_printer(out: Output) -> Callable[[Received], None]:
    """How every receiver (storescp, movescu, getscu) shows a received object."""

    def on_received(r: Received) -> None:
        if r.status == 0:
            stored = (f", stored as {uid_name(r.stored_transfer_syntax)}"
                      if r.stored_transfer_syntax and r.stored_transfer_syntax != r.transfer_syntax else "")
            human = (f"received {r.path or r.sop_instance_uid} ({uid_name(r.sop_class_uid)}, "
                     f"{uid_name(r.transfer_syntax)}{stored}) from {r.calling_aet}, {r.size} bytes")
            out.emit("received", r.as_dict, human if out.verbosity >= 0 else None, plain=True)
        else:
            out.emit("received", r.as_dict,
                     f"[red]refused[/] {r.sop_instance_uid} from {r.calling_aet}: {r.message} (0x{r.status:04X})")

    return on_received
