"""Helpers the bench scripts share: free ports, readiness, the git state."""

from __future__ import annotations

import socket
import subprocess
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
