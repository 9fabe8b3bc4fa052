"""Helpers the bench scripts share: free ports, readiness, the git state."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Poll a TCP connect until the server listens (not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"receiver exited early with code {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise BenchError(f"receiver not listening on port {port} after {timeout} s")


def git_state() -> str:
    """The commit of the dcmcli checkout and whether it has local changes
    (the numbers depend on it)."""
    try:
        import dcmcli
        repo = Path(dcmcli.__file__).resolve().parent.parent
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "dcmcli"],
                               capture_output=True, text=True).stdout.strip()
        return f"{repo} at {head or '?'}{' + uncommitted changes in dcmcli/' if dirty else ''}"
    except Exception as exc:  # informational only
        return f"unknown ({exc})"


def wait_rusage(proc: subprocess.Popen, timeout: float) -> tuple[float, bool]:
    """Reap the client with wait4, for its CPU time (the machine is shared:
    wall-clock is noisy, CPU time much less so); kill it after ``timeout``
    s. It returns the moment the client ends (``Popen.wait(timeout)`` polls
    with sleeps of up to 50 ms, which put a client's time on a 50 ms grid).
    The wait is a select on a pidfd in this thread, so that SIGTERM or
    Ctrl-C interrupts it at once (a timer thread could take the signal and
    leave the main thread blocked in wait4 until the client ends)."""
    killed = False
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd: a timer thread kills instead
        fd = None
    timer = None
    if fd is not None:
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
        finally:
            os.close(fd)
        if not ready:
            proc.kill()
            killed = True
    else:
        fired = threading.Event()
        timer = threading.Timer(timeout, lambda: (fired.set(), proc.kill()))
        timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        if timer is not None:
            timer.cancel()
            killed = fired.is_set()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, killed


def run_reaped(cmd: list[str], timeout: float, **popen: object) -> tuple[float, float, bool, int]:
    """Run a client to its end: (wall seconds, CPU seconds, killed after
    ``timeout``, exit code). Interrupted (Ctrl-C, SIGTERM), the client is
    killed: it never outlives the bench."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **popen)  # type: ignore[call-overload]
    try:
        cpu, killed = wait_rusage(proc, timeout)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
        raise
    return time.perf_counter() - t0, cpu, killed, proc.returncode
