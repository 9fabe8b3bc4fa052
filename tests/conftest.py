"""Fixtures: real peers (DCMTK, dcmcli's own storescp) on free loopback ports.

Every server a test starts is stopped by its fixture; readiness is waited for
by connecting (DCMTK) or by reading the "listening" event (dcmcli), never by
sleeping.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

# pynetdicom installs scripts named storescp/echoscu/... that shadow DCMTK's
# on PATH: always call DCMTK's binaries by their Debian path.
DCMTK_BIN = Path(os.environ.get("DCMTK_BIN", "/usr/bin"))

# `python -m dcmcli` in the tests' subprocesses runs this checkout's dcmcli,
# not whichever checkout `pip install -e` last pointed at (git worktrees).
_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join([_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])

#: One pydicom sample per transfer syntax the interop tests cover.
SAMPLES: dict[str, str] = {
    "explicit-le": "CT_small.dcm",
    "implicit-le": "MR_small_implicit.dcm",
    "explicit-be": "MR_small_bigendian.dcm",
    "deflated": "image_dfl.dcm",
    "rle": "MR_small_RLE.dcm",
    "rle-rgb": "SC_rgb_rle.dcm",
    "jpeg-baseline": "SC_rgb_dcmtk_+eb+cy+np.dcm",
    "jpeg-extended": "JPGExtended.dcm",
    "jpeg-lossless-sv1": "SC_rgb_jpeg_gdcm.dcm",
    # pydicom's MR_small_jpeg_ls_lossless.dcm has Pixel Data DCMTK reads as
    # odd-length OW; DCMTK's own encoder makes a well-formed one instead.
    "jpeg-ls-lossless": "dcmcjpls:CT_small.dcm",
    "jpeg-ls-near": "JPEGLSNearLossless_16.dcm",
    "j2k-lossless": "MR_small_jp2klossless.dcm",
    "j2k": "JPEG2000.dcm",
}


_MADE = Path(tempfile.gettempdir()) / f"dcmcli-test-samples-{os.getuid()}"


def sample(name: str) -> Path:
    spec = SAMPLES.get(name, name)
    if spec.startswith("dcmcjpls:"):
        target = _MADE / f"{name}.dcm"
        if not target.exists():
            _MADE.mkdir(exist_ok=True)
            source = get_testdata_file(spec.split(":", 1)[1])
            subprocess.run([dcmtk("dcmcjpls"), str(source), str(target)], check=True, capture_output=True)
        return target
    path = get_testdata_file(spec)
    assert path, f"pydicom sample {name} missing"
    return Path(path)


def peer_tool(folder: Path, tool: str, owner: str, package: str) -> str:
    """A real peer's binary: fail in CI (.ci/run must install it), skip elsewhere."""
    path = folder / tool
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{owner}'s {tool} is missing at {path}: .ci/run must install {package}")
        pytest.skip(f"{owner}'s {tool} is not installed (Debian package {package})")
    return str(path)


def dcmtk(tool: str) -> str:
    return peer_tool(DCMTK_BIN, tool, "DCMTK", "dcmtk")


def free_port() -> int:
    """A free TCP port on 127.0.0.1 for peers that cannot take port 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise RuntimeError(f"peer exited with {proc.returncode} before listening: {out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)  # polling a connect, not synchronising on time
    raise RuntimeError(f"nothing listening on port {port} after {timeout} s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return int(proc.returncode)


def without_read_access(path: Path) -> list[str]:
    """chmod 000 ``path``; return the command prefix under which a process
    cannot read it: none for an ordinary user, and for root (whom file modes
    do not stop) setpriv without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
    Skips only when running as root and setpriv cannot drop them."""
    path.chmod(0)
    candidates: list[list[str]] = [[]]
    setpriv = shutil.which("setpriv")
    if setpriv:
        caps = "-dac_override,-dac_read_search"
        candidates.append([setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"])
    for prefix in candidates:
        probe = subprocess.run([*prefix, sys.executable, "-c", "import sys; open(sys.argv[1], 'rb')", str(path)],
                               capture_output=True, text=True, timeout=30)
        if probe.returncode != 0 and "PermissionError" in probe.stderr:
            return prefix
    pytest.skip("running as root, where chmod 000 does not stop reading, and setpriv cannot drop "
                "CAP_DAC_OVERRIDE here")


def dcmcli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "dcmcli", *args]


def _event_validator():  # type: ignore[no-untyped-def]
    import functools

    @functools.lru_cache(maxsize=1)
    def load():  # type: ignore[no-untyped-def]
        import jsonschema

        schema = json.loads((Path(__file__).resolve().parents[1] / "dcmcli" / "events.schema.json").read_text())
        return jsonschema.Draft202012Validator(schema)

    return load


validator = _event_validator()


def check_event(event: dict[str, object]) -> dict[str, object]:
    """Every --json event any test sees must follow dcmcli/events.schema.json."""
    errors = sorted(validator().iter_errors(event), key=lambda e: list(e.path))
    if errors:
        raise AssertionError(f"event does not follow events.schema.json: {errors[0].message} "
                             f"at {'/'.join(map(str, errors[0].path)) or 'top'}: {json.dumps(event)[:400]}")
    return event


def run_dcmcli(*args: str, timeout: float = 120.0, **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(dcmcli_cmd(*args), capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    if "--json" in args and isinstance(r.stdout, str):
        json_lines(r.stdout)  # validates every event
    return r


def json_lines(text: str) -> list[dict[str, object]]:
    """The JSON events of a dcmcli run, each checked against the schema."""
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            if "event" in event and "command" in event:
                check_event(event)
            events.append(event)
    return events


@dataclass
class Peer:
    port: int
    outdir: Path
    proc: subprocess.Popen[bytes]
    log: list[str] = field(default_factory=list)
    #: JSON events a dcmcli server printed, read by a thread as they come
    #: (a server blocked on a full stdout pipe would stall the test).
    events: queue.Queue[dict[str, object] | None] | None = None
    reader: threading.Thread | None = None


def _read_events(stream: object, into: queue.Queue[dict[str, object] | None]) -> None:
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        line = raw.decode(errors="replace")
        if line.startswith("{"):
            event = json.loads(line)
            try:
                check_event(event)
            except AssertionError as exc:  # seen by the test as an event it cannot ignore
                event = {"event": "schema-violation", "error": str(exc)}
            into.put(event)
    into.put(None)  # end of output


@pytest.fixture
def dcmtk_storescp(tmp_path: Path) -> Iterator:
    """Start DCMTK storescp with extra arguments; stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Peer:
        port = free_port()
        outdir = tmp_path / f"dcmtk-rx-{len(procs)}"
        outdir.mkdir()
        proc = subprocess.Popen([dcmtk("storescp"), *args, "-od", str(outdir), str(port)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "TCP_NODELAY": "1", **(env or {})})
        procs.append(proc)
        wait_listening(port, proc)
        return Peer(port, outdir, proc)

    yield start
    for p in procs:
        stop(p)


def start_dcmcli_server(argv: list[str], outdir: Path, *, prefix: list[str] | None = None,
                        preexec_fn: object = None) -> Peer:
    """A dcmcli server (``dcmcli_cmd(*argv)``, ending in port 0) started; its
    listening event read for the port, its later events read by a thread as
    they come (a server blocked on a full stdout pipe would stall the test)."""
    proc = subprocess.Popen([*(prefix or []), *dcmcli_cmd(*argv)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, preexec_fn=preexec_fn, bufsize=0)  # type: ignore[arg-type]
    # unbuffered: select() on the pipe then tells the truth about unread lines
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line:
        err = proc.stderr.read().decode() if proc.stderr else ""
        stop(proc)
        raise RuntimeError(f"dcmcli {argv[0]} did not start: {err}")
    event = json.loads(line)
    assert event["event"] == "listening", event
    events: queue.Queue[dict[str, object] | None] = queue.Queue()
    reader = threading.Thread(target=_read_events, args=(proc.stdout, events), daemon=True)
    reader.start()
    return Peer(int(event["port"]), outdir, proc, events=events, reader=reader)


def stop_servers(peers: list[Peer]) -> None:
    for p in peers:
        stop(p.proc)
        if p.reader is not None:
            p.reader.join(5)  # its readline ends at EOF; closing the pipe under it would raise in the thread
        for stream in (p.proc.stdout, p.proc.stderr):
            if stream:
                stream.close()


@pytest.fixture
def dcmcli_storescp(tmp_path: Path) -> Iterator:
    """Start dcmcli storescp on a free port (it picks port 0 and tells us)."""
    peers: list[Peer] = []

    def start(*args: str, outdir: Path | None = None, preexec_fn: object = None, bind: str = "127.0.0.1") -> Peer:
        out = outdir or (tmp_path / f"dcmcli-rx-{len(peers)}")
        peer = start_dcmcli_server(["storescp", "--json", "--bind", bind, "-od", str(out), *args, "0"], out,
                                   preexec_fn=preexec_fn)
        peers.append(peer)
        return peer

    yield start
    stop_servers(peers)


@pytest.fixture
def dcmcli_mwlscp(tmp_path: Path) -> Iterator:
    """Start dcmcli mwlscp on a free port; ``prefix`` runs it under another command (setpriv)."""
    peers: list[Peer] = []

    def start(*args: str, prefix: list[str] | None = None) -> Peer:
        peer = start_dcmcli_server(["mwlscp", "--json", "--bind", "127.0.0.1", *args, "0"], tmp_path, prefix=prefix)
        peers.append(peer)
        return peer

    yield start
    stop_servers(peers)


@dataclass
class RecordingPeer:
    """pynetdicom's AE in a test script (tests/nservice_peer.py, tests/print_peer.py, tests/storage_peer.py):
    the SCP of services no Debian peer provides, writing every request it receives
    to ``record`` as JSON lines."""

    port: int
    record: Path
    proc: subprocess.Popen[str]
    #: The script's stdout lines after "listening PORT" (its pause points), read by a thread.
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    reader: threading.Thread | None = None

    def received(self) -> list[dict[str, object]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def wait_paused(self, name: str, timeout: float = 30.0) -> None:
        """Wait until the script stops at its pause point ``name`` (tests/pynetdicom_peer.py)."""
        next_matching(self.lines, lambda line: line.strip() == f"paused {name}", timeout,
                      f"the pynetdicom peer did not reach {name!r} within {timeout:g} s",
                      f"the pynetdicom peer ended before reaching {name!r}")

    def resume(self) -> None:
        """Let the script go on from its pause point."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()


def recording_peers(script: Path, tmp_path: Path, what: str) -> Iterator:
    """The body of a factory fixture: ``start(*args) -> RecordingPeer`` runs
    ``script RECORD *args``, which prints "listening PORT" when ready and stops
    when its stdin closes; every peer is stopped at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> RecordingPeer:
        record = tmp_path / f"{script.stem}-received-{len(procs)}.jsonl"
        proc = subprocess.Popen([sys.executable, str(script), str(record), *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening "), f"the pynetdicom {what} did not start: {line!r}"
        peer = RecordingPeer(int(line.split()[1]), record, proc)

        def read() -> None:
            for later in iter(proc.stdout.readline, ""):  # type: ignore[union-attr]
                peer.lines.put(later)
            peer.lines.put(None)

        peer.reader = threading.Thread(target=read, daemon=True)
        peer.reader.start()
        peers.append(peer)
        return peer

    peers: list[RecordingPeer] = []
    yield start
    for p in procs:
        if p.stdin:
            p.stdin.close()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            stop(p)  # type: ignore[arg-type]
    for peer in peers:
        if peer.reader is not None:
            peer.reader.join(5)  # its readline ends at EOF; closing the pipe under it would raise in the thread
    for p in procs:
        if p.stdout:
            p.stdout.close()


@pytest.fixture
def storage_peer(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Factory: pynetdicom's AE as a storage (C-GET, C-FIND) SCP recording what it received (tests/storage_peer.py)."""
    yield from recording_peers(Path(__file__).with_name("storage_peer.py"), tmp_path, "storage peer")


def next_matching(q: queue.Queue, match, timeout: float, late: str, ended: str):  # type: ignore[no-untyped-def]
    """The next item of ``q`` that ``match``es, within ``timeout`` seconds;
    None in the queue is its end (put back for the next reader). ``late``,
    ``ended``: the assertion messages."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            item = q.get(timeout=max(0.001, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(late) from None
        if item is None:
            q.put(None)
            raise AssertionError(ended)
        if isinstance(item, dict) and item.get("event") == "schema-violation":
            raise AssertionError(item["error"])
        if match(item):
            return item


def next_event(peer: Peer, name: str, timeout: float = 30.0) -> dict[str, object]:
    """The next ``name`` event of a dcmcli server (others are skipped)."""
    assert peer.events is not None
    return next_matching(peer.events, lambda ev: ev["event"] == name, timeout,
                         f"no {name} event within {timeout} s", f"the server ended before a {name} event")


def received_events(peer: Peer, count: int, timeout: float = 60.0) -> list[dict[str, object]]:
    """Read ``count`` 'received' JSON events from a dcmcli storescp."""
    assert peer.events is not None
    events: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        try:
            ev = peer.events.get(timeout=max(0.001, deadline - time.monotonic()))
        except queue.Empty:
            break
        if ev is None:
            peer.events.put(None)
            break
        if ev["event"] == "schema-violation":
            raise AssertionError(ev["error"])
        if ev["event"] == "received":
            events.append(ev)
    return events


def remaining_events(peer: Peer, timeout: float = 60.0) -> list[dict[str, object]]:
    """Every event a dcmcli server prints until its output ends (it exited)."""
    assert peer.events is not None
    out: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    while True:
        ev = peer.events.get(timeout=max(0.001, deadline - time.monotonic()))
        if ev is None:
            peer.events.put(None)
            return out
        if ev["event"] == "schema-violation":
            raise AssertionError(ev["error"])
        out.append(ev)


def stored_in(folder: Path) -> list[Path]:
    """What a running receiver's output folder holds, sorted, without the
    storage writer's spare files: empty ``.<pid>-<hex>.spare`` files it makes
    ahead of the objects while they come (removed a second after the last
    one, and when it stops). Asserts that each spare is empty, so that no
    object's bytes can hide behind that name."""
    import re

    entries = sorted(folder.iterdir())
    spares = [p for p in entries if re.fullmatch(r"\.\d+-[0-9a-f]{32}\.spare", p.name)]
    assert all(p.stat().st_size == 0 for p in spares), [(p.name, p.stat().st_size) for p in spares]
    return [p for p in entries if p not in spares]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs: a real file system that fills up (the disk-full tests
    of storescp, getscu and wado retrieve); skipped where no tmpfs can be mounted."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def has_dcmtk() -> None:
    dcmtk("storescp")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def copy_samples(dest: Path, names: list[str]) -> list[Path]:
    """Copies of samples, each with a SOP Instance UID of its own (several
    pydicom samples are one image in different syntaxes, sharing the UID)."""
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        p = dest / f"{n}.dcm"
        ds = dcmread(sample(n))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(p, enforce_file_format=True)
        out.append(p)
    return out


from qr_peers import *  # noqa: E402,F401,F403
# the test CA (tests/tls_certs.py): made once per session for every module that asks for it
from tls_certs import pki  # noqa: E402,F401
