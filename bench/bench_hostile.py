#!/usr/bin/env python
"""Listeners under hostile load, plain TCP and TLS: the figures README gives.

For each server on the shared acceptor (dcmcli storescp, dcmcli mwlscp,
movescu's receiver, nactionscu's storage-commitment listener), plain and
over TLS (a test CA made with openssl), on a free port of 127.0.0.1:

* 20 connections that never send a byte (a stalled handshake or request),
  10 that send garbage (random bytes, a TLS record to a plain port, plain
  PDUs to a TLS port), while a normal client works: storescp receives the
  small set (``gen_data.py``'s 2000 files, or ``--files N`` of them) from
  dcmcli storescu, mwlscp answers 20 queries from DCMTK findscu, movescu
  +P receives the small set from pynetdicom's C-MOVE SCP
  (``tests/move_peer.py``, the tests' peer; TLS on both associations), the
  hostile connections started while the SCP holds the move at its pause
  point; nactionscu --commit --port asks pynetdicom's storage-commitment
  SCP (``tests/nservice_peer.py --report-to``; TLS on both associations)
  to commit the small set, and the SCP holds its N-EVENT-REPORT at its
  pause point until the 20 stalled connections are open at nactionscu's
  listener, then sends it there on a new association;
* measured: objects lost (sent and acknowledged but not on disk; storescp;
  for movescu: completed sub-operations not on disk; for nactionscu:
  instances not in a report received on the new association), queries,
  sub-operations or instances (not committed) failed, the server's memory
  high-water mark (VmHWM), and how long the server took to drop a stalled
  connection (it runs with ``-ta 2``; the time from connect to the server's
  close; nactionscu closes them when it stops listening, its report in,
  which comes before ``-ta``).

Run: ``python bench/gen_data.py && python bench/bench_hostile.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # git_state(): this checkout
from _common import HOST, free_port, git_state  # noqa: E402

REPO = HERE.parent
DCMTK = Path(os.environ.get("DCMTK_BIN", "/usr/bin"))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}


def make_pki(root: Path) -> tuple[list[str], list[str]]:
    sys.path.insert(0, str(HERE))
    from bench_store import make_pki as mk

    return mk(root)


def start(cmd: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=ENV)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"server did not start: {cmd}")
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()  # type: ignore[union-attr]
    return proc, int(json.loads(line)["port"])


def hwm(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return line.split(":")[1].strip()
    return "?"


def sample_hwm(proc: subprocess.Popen, peak: list[str]) -> None:
    """Until ``proc`` exits, keep its VmHWM in ``peak[0]`` (it only grows: the last reading is the peak)."""
    while proc.poll() is None:
        try:
            got = hwm(proc.pid)
        except OSError:
            return
        if got != "?":  # an exited process not yet reaped (a zombie) has no VmHWM: keep the last reading
            peak[0] = got
        time.sleep(0.1)  # sampling /proc, not synchronising


def stalled(port: int, n: int, opened: threading.Event | None = None) -> list[float]:
    """Open n silent connections; return how long each took to be dropped
    (``opened`` is set once all n are connected)."""
    socks = [socket.create_connection((HOST, port)) for _ in range(n)]
    t0 = time.monotonic()
    if opened is not None:
        opened.set()
    times: list[float] = []
    lock = threading.Lock()

    def wait(s: socket.socket) -> None:
        s.settimeout(60)
        try:
            s.recv(1)
        except OSError:
            pass
        with lock:
            times.append(time.monotonic() - t0)
        s.close()

    threads = [threading.Thread(target=wait, args=(s,)) for s in socks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return times


def garbage(port: int, n: int) -> None:
    rnd = random.Random(7)
    for i in range(n):
        try:
            s = socket.create_connection((HOST, port), timeout=5)
            blobs = [bytes(rnd.randrange(256) for _ in range(200)), b"\x16\x03\x01\x00\x05hello",
                     b"\x01\x00\x00\x00\x00\x10" + b"\x00" * 16]
            s.sendall(blobs[i % len(blobs)])
            s.settimeout(10)
            try:
                s.recv(100)
            except OSError:
                pass
            s.close()
        except OSError:
            pass


def run_movescu(tls: list[str], cli_tls: list[str], files: list[Path], work: Path) -> dict[str, object]:
    """movescu +P under hostile load: pynetdicom's C-MOVE SCP (tests/move_peer.py) sends ``files``."""
    from pydicom import dcmread

    out = work / "rx"
    port = free_port()
    peer_tls = ["--tls", cli_tls[1], cli_tls[2], cli_tls[4]] if cli_tls else []  # KEY CERT CA
    peer = subprocess.Popen([sys.executable, str(REPO / "tests" / "move_peer.py"), str(work / "moves.jsonl"),
                             "--destination", f"MOVESCU={port}", *peer_tls, *map(str, files)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=ENV)
    mover = None
    try:
        assert peer.stdout is not None and peer.stdin is not None
        line = peer.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"move_peer.py did not start: {line!r}")
        study = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        mover = subprocess.Popen([sys.executable, "-m", "dcmcli", "movescu", "--json", "-q", "-ta", "2", *tls,
                                  "-aet", "MOVESCU", "+P", str(port), "-od", str(out), "-k",
                                  f"StudyInstanceUID={study}", "127.0.0.1", line.split()[1]],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
        if peer.stdout.readline().strip() != "paused move":  # the receiver is up, the sub-association not yet
            raise RuntimeError("move_peer.py did not get the C-MOVE")
        peak = ["?"]
        drops: list[float] = []
        threads = [threading.Thread(target=lambda: drops.extend(stalled(port, 20))),
                   threading.Thread(target=garbage, args=(port, 10)),
                   threading.Thread(target=sample_hwm, args=(mover, peak))]
        for t in threads:
            t.start()
        peer.stdin.write("go\n")
        peer.stdin.flush()
        stdout, _ = mover.communicate(timeout=900)
        for t in threads:
            t.join(120)
        summary = json.loads(stdout.strip().splitlines()[-1])
        on_disk = sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
        return row("movescu +P", tls, int(summary.get("failed", 0)), int(summary.get("completed", 0)) - on_disk,
                   peak[0], drops)
    finally:
        stop_pair(mover, peer)


def row(server: str, tls: list[str], failed: int, lost: int, vmhwm: str, drops: list[float]) -> dict[str, object]:
    """One line of the table (movescu's and nactionscu's listeners)."""
    return {"server": server, "tls": bool(tls), "failed": failed, "lost": lost, "vmhwm": vmhwm,
            "drop_median_s": round(statistics.median(drops), 2) if drops else None,
            "drop_max_s": round(max(drops), 2) if drops else None}


def stop_pair(client: subprocess.Popen | None, peer: subprocess.Popen) -> None:
    """The dcmcli command under test (if still running) and the pynetdicom peer feeding it."""
    if client is not None and client.poll() is None:
        client.terminate()
        client.wait(30)
    if peer.stdin:
        peer.stdin.close()
    try:
        peer.wait(30)
    except subprocess.TimeoutExpired:
        peer.kill()
        peer.wait(5)


def run_commitment(tls: list[str], cli_tls: list[str], files: list[Path], work: Path) -> dict[str, object]:
    """nactionscu --commit --port under hostile load: pynetdicom's commitment SCP
    (tests/nservice_peer.py --report-to) answers the N-ACTION for ``files``, holds
    its N-EVENT-REPORT at its pause point while the hostile connections are opened
    at nactionscu's listener, then sends it on a new association to it."""
    import queue

    listen = free_port()
    src = work / "src"
    src.mkdir()
    for f in files:
        os.symlink(f, src / f.name)
    record = work / "nservice.jsonl"
    peer_tls = ["--tls", cli_tls[1], cli_tls[2], cli_tls[4]] if cli_tls else []  # KEY CERT CA
    peer = subprocess.Popen([sys.executable, str(REPO / "tests" / "nservice_peer.py"), str(record),
                             "--report-to", str(listen), *peer_tls],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=ENV)
    lines: queue.Queue[str | None] = queue.Queue()
    committer = None
    err = open(work / "nactionscu.err", "w+")
    try:
        assert peer.stdout is not None and peer.stdin is not None
        line = peer.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"nservice_peer.py did not start: {line!r}")

        def read_peer() -> None:  # its pause points, as tests/conftest.py's RecordingPeer reads them
            for later in iter(peer.stdout.readline, ""):  # type: ignore[union-attr]
                lines.put(later)
            lines.put(None)

        threading.Thread(target=read_peer, daemon=True).start()
        committer = subprocess.Popen([sys.executable, "-m", "dcmcli", "nactionscu", "--json", "-q", "-ta", "2", *tls,
                                      "-aet", "STGCMTSCU", "--commit", "--port", str(listen), "--wait", "600",
                                      "localhost", line.split()[1], str(src)],
                                     stdout=subprocess.PIPE, stderr=err, text=True, env=ENV)
        peak = ["?"]
        sampler = threading.Thread(target=sample_hwm, args=(committer, peak))
        sampler.start()
        deadline = time.monotonic() + 300
        while True:  # the N-ACTION answered, nactionscu's listener up, the report not sent yet
            try:
                got = lines.get(timeout=1)  # a line, or a look at whether nactionscu is still there
            except queue.Empty:
                got = ""
            if got is None or committer.poll() is not None or time.monotonic() > deadline:
                err.seek(0)
                raise RuntimeError(f"nservice_peer.py did not get to its report; nactionscu: {err.read()[-2000:]}")
            if got.strip() == "paused report":
                break
        drops: list[float] = []
        opened = threading.Event()
        threads = [threading.Thread(target=lambda: drops.extend(stalled(listen, 20, opened))),
                   threading.Thread(target=garbage, args=(listen, 10))]
        for t in threads:
            t.start()
        opened.wait(60)  # the 20 stalled connections held open while the report comes
        peer.stdin.write("go\n")
        peer.stdin.flush()
        stdout, _ = committer.communicate(timeout=900)
        for t in [*threads, sampler]:
            t.join(120)
        events = [json.loads(x) for x in stdout.splitlines() if x.startswith("{")]
        summary = events[-1] if events and events[-1].get("event") == "summary" else {}
        results = [e for e in events if e.get("event") == "commitment"]
        n = int(summary.get("instances", len(files)))
        reported = sum(len(r["committed"]) + len(r["failed"]) for r in results if r.get("via") == "new-association")
        answers = [json.loads(x) for x in record.read_text().splitlines()] if record.exists() else []
        if [a.get("status") for a in answers if a.get("op") == "N-EVENT-REPORT"] != [0]:
            reported = 0  # the peer's report association failed or was not answered 0000
        return row("nactionscu --port", tls, n - int(summary.get("committed", 0)), n - reported, peak[0], drops)
    finally:
        stop_pair(committer, peer)
        err.close()


def run(server: str, tls: list[str], cli_tls: list[str], files: list[Path], work: Path) -> dict[str, object]:
    if server == "movescu":
        return run_movescu(tls, cli_tls, files, work)
    if server == "commitment":
        return run_commitment(tls, cli_tls, files, work)
    out = work / "rx"
    out.mkdir()
    if server == "storescp":
        cmd = [sys.executable, "-m", "dcmcli", "storescp", "--json", "-q", "--bind", HOST, "-ta", "2", *tls,
               "-od", str(out), "0"]
    else:
        csv = work / "wl.csv"
        csv.write_text("PatientName,PatientID,ScheduledProcedureStepSequence[0].Modality\n"
                       + "".join(f"P{i}^X,P{i},CT\n" for i in range(200)))
        cmd = [sys.executable, "-m", "dcmcli", "mwlscp", "--json", "-q", "--bind", HOST, "-ta", "2", *tls,
               "--source", str(csv), "0"]
    proc, port = start(cmd)
    try:
        drops: list[float] = []
        hostile = [threading.Thread(target=lambda: drops.extend(stalled(port, 20))),
                   threading.Thread(target=garbage, args=(port, 10))]
        for t in hostile:
            t.start()
        failed = lost = 0
        if server == "storescp":
            src = work / "src"
            src.mkdir()
            for f in files:
                os.symlink(f, src / f.name)
            r = subprocess.run([sys.executable, "-m", "dcmcli", "storescu", "-q", "--json", *cli_tls, "localhost",
                                str(port), str(src)], capture_output=True, text=True, env=ENV, timeout=600)
            summary = json.loads(r.stdout.strip().splitlines()[-1])
            sent = int(summary.get("sent", 0)) + int(summary.get("warned", 0))
            failed = int(summary.get("failed", 0))
            for t in hostile:
                t.join(120)
            on_disk = sum(1 for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
            lost = sent - on_disk
        else:
            dcmtk_tls = ["+tls", *cli_tls[1:]] if cli_tls else []
            for _ in range(20):
                r = subprocess.run([str(DCMTK / "findscu"), "-W", "-q", *dcmtk_tls, "-k", "PatientID", "localhost",
                                    str(port)], capture_output=True, timeout=120)
                failed += r.returncode != 0
            for t in hostile:
                t.join(120)
        return {"server": server, "tls": bool(tls), "failed": failed, "lost": lost, "vmhwm": hwm(proc.pid),
                "drop_median_s": round(statistics.median(drops), 2) if drops else None,
                "drop_max_s": round(max(drops), 2) if drops else None}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE / "data" / "small")
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--servers", default="storescp,mwlscp,movescu,commitment", help="which servers (comma-separated)")
    args = ap.parse_args()
    files = sorted(args.data.glob("*.dcm"))[:args.files]
    if not files:
        print("no input: run bench/gen_data.py first", file=sys.stderr)
        return 2
    print(f"dcmcli: {git_state()}; {len(files)} files")
    pki = Path(tempfile.mkdtemp(prefix="dcmcli-hostile-pki-"))
    try:
        scp_tls, scu_tls = make_pki(pki)
        print("server            TLS  failed  lost  VmHWM       stalled connection dropped after (median / max)")
        for server in args.servers.split(","):
            for tls, cli in (([], []), (scp_tls, scu_tls)):
                work = Path(tempfile.mkdtemp(prefix="dcmcli-hostile-"))
                try:
                    r = run(server, tls, cli, files, work)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                print(f"{r['server']:17s} {'yes' if tls else 'no ':3s}  {r['failed']:6}  {r['lost']:4}  "
                      f"{r['vmhwm']:10s}  {r['drop_median_s']} s / {r['drop_max_s']} s")
    finally:
        shutil.rmtree(pki, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
