#!/usr/bin/env python
"""Time dcmcli getscu, movescu and findscu against DCMTK's on the same dcmqrscp.

One DCMTK ``dcmqrscp`` (3.6.7) is started on a free port of 127.0.0.1 with
three AE titles, one per data set, each with its own storage folder and index:

* ``QRLARGE``: gen_data.py's ``large`` set, 500 CT images of 512x512x16 bit
  (about 263 MB), one study;
* ``QRSMALL``: gen_data.py's ``small`` set, 2000 CT images of about 40 KB;
* ``QRFIND``: 5000 tiny CT images (8x8 pixels, made here with pydicom,
  deterministic UIDs, one study and series), for the C-FIND benchmark.

Its AETable gives each ``(4000, 2048mb)`` (dcmqrscp deletes the oldest images
of a study over its quota: every load is checked), its association profile
accepts CT Image Storage uncompressed with role BOTH (so a C-GET requestor
may be the Storage SCP; DCMTK getscu proposes many more classes, which are
refused, dcmcli getscu only what its first C-FIND at IMAGE level lists), and
its HostTable names one C-MOVE destination per client, ``DCMTKMOVE`` and
``DCMCLIMOVE``, on ports chosen before it starts. Loading uses DCMTK dcmsend
(dcmqrscp's index makes that quadratic: 2000 files take 15 s, 5000 about
90 s), so the loaded storage is cached in ``DATA/qrdb/`` with a manifest and
reused while the manifest matches the source and every file is there
(``--fresh-db`` reloads); every start checks with a DCMTK findscu at IMAGE
level that the index holds every instance.

Benchmarks (``--benches``), each running DCMTK and dcmcli on the same peer and
data in the same run, interleaved, ``--repeat`` times (medians):

* ``get``: DCMTK ``getscu`` (``TCP_NODELAY=1``, ``-pdu 131072``) against
  ``dcmcli getscu`` (``-pdu 131072`` is its default), Study Root, STUDY
  level, the set's StudyInstanceUID; both write to a fresh directory on disk
  each run. Extra rows: ``dcmcli getscu -q`` (no line per object on
  stdout; DCMTK prints none by default) and ``--no-find`` (no C-FIND at
  IMAGE level first). Target <= 1.2x (dcmcli's defaults).
* ``move``: DCMTK ``movescu +P PORT -od DIR`` against ``dcmcli movescu
  +P PORT -od DIR`` (their own receivers; DCMTK with ``-pdu 131072``).
  Target <= 1.2x.
* ``find``: 5000 matches at IMAGE level (Study Root; StudyInstanceUID and
  SeriesInstanceUID given; SOPInstanceUID, InstanceNumber, SOPClassUID asked
  for; the same identifier for every client). DCMTK ``findscu`` at its
  default log level, which prints every response (a "Find Response" header
  and a dump of the identifier) to its log, stdout and stderr redirected to a
  file; ``dcmcli findscu`` with its table to a file, and ``--json`` to a
  file. Every run checks the 5000 matches in the output. Targets: table
  <= 1.5x, ``--json`` <= 2x.
* ``store``: runs ``bench/bench_store.py`` (dcmcli storescu -> dcmcli storescp
  on the acceptor against DCMTK -> DCMTK; configurations dcmtk,dcmcli) with
  the same ``--repeat``, ``--data``, ``--out`` and ``--pycache``, and reports
  its ratios next to those the README records (1.20x large, 1.16x small).

The measure is the client's wall-clock from start to exit (Python start-up
included; ``dcmcli --version`` is timed too), and a run counts only if the
client exits 0 and every object (or match) is there. Each retrieve's output
is removed and ``sync`` run between runs, outside the timing. DCMTK tools are
run by their full path (``/usr/bin``; ``DCMTK_BIN`` to change), since a
``getscu`` or ``findscu`` on PATH may be pynetdicom's. dcmcli runs as
``sys.executable -m dcmcli`` with PYTHONPATH set to this checkout.

Usage::

    python bench/gen_data.py                        # large and small (or let this script make them)
    python bench/bench_qr.py --repeat 3 --pycache bench/out/pycache
    python bench/bench_qr.py --benches find --repeat 5 --json qr.json
    python bench/bench_qr.py --benches get,move --sets small --configs dcmtk,dcmcli
    git archive HEAD dcmcli | tar -x -C /tmp/base    # a change against its base, same rounds:
    python bench/bench_qr.py --also /tmp/base --configs dcmtk,dcmcli,dcmcli-json
    python bench/bench_qr.py --serve                 # archive up, commands printed: profile by hand

dcmqrscp runs in a process group of its own (it forks per association) and
the group is killed at the end, also on errors and Ctrl-C; the temporary
folders below ``--out`` (default ``bench/out``, git-ignored) are removed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HOST, BenchError, run_reaped  # noqa: E402
from bench_store import count_files, fmt_table, warm_cache  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = HERE / "data"
DEFAULT_OUT = HERE / "out"
DCMTK_BIN = Path(os.environ.get("DCMTK_BIN", "/usr/bin"))
DCMCLI = [sys.executable, "-m", "dcmcli"]
BEST_PDU = "131072"
CT = "1.2.840.10008.5.1.4.1.1.2"
UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.2"]
SET_AE = {"large": "QRLARGE", "small": "QRSMALL", "find": "QRFIND"}
FIND_COUNT = 5000
TARGETS = {"get": 1.2, "move": 1.2, "find": 1.5, "find-json": 2.0}
README_STORE = {"large": 1.20, "small": 1.16}  # README "Speed (bench/)", dcmcli defaults


def dcmtk(tool: str) -> str:
    path = DCMTK_BIN / tool
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} not found (apt-get install dcmtk, or set DCMTK_BIN)")
    return str(path)


# --------------------------------------------------------------------------
# environments

PYCACHE: Path | None = None  # --pycache
TIMEOUT = 600.0  # --timeout


def dcmtk_env() -> dict[str, str]:
    return {**os.environ, "TCP_NODELAY": "1"}


def dcmcli_env(source: Path | None = None) -> dict[str, str]:
    """dcmcli from this checkout, or from ``source`` (--also)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(source or REPO), *filter(None, [env.get("PYTHONPATH")])])
    if PYCACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def dcmcli_source(source: Path | None = None) -> str:
    """Which dcmcli the dcmcli processes import (must be this checkout, or --also's)."""
    r = subprocess.run([sys.executable, "-c", "import dcmcli; print(dcmcli.__file__)"], capture_output=True,
                       text=True, env=dcmcli_env(source), cwd=tempfile.gettempdir())
    return r.stdout.strip()


def checkout_state() -> str:
    """This checkout's commit and whether dcmcli/ has local changes."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *a], capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--", "dcmcli")
    return f"{REPO} at {git('rev-parse', '--short', 'HEAD') or '?'}{' + uncommitted changes in dcmcli/' if dirty else ''}"


def free_ports(n: int) -> list[int]:
    """n distinct free ports, all held while picked."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# data

def ensure_gen_data(data: Path, name: str, count: int) -> None:
    """gen_data.py's large or small set, made when missing (seeds as gen_data.py)."""
    import gen_data

    offset = {"large": 0, "small": 1}[name]
    gen_data.generate(data / name, name, count, False, 20240601 + offset)


def ensure_find_data(directory: Path, count: int) -> None:
    """``count`` tiny CT images (8x8x16 bit, ~1.6 KB each), one study and
    series, deterministic UIDs, InstanceNumber 1..count; kept while the
    folder holds exactly that many files."""
    if directory.is_dir() and sum(1 for _ in directory.glob("*.dcm")) == count:
        return
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, PYDICOM_ROOT_UID, generate_uid

    def uid(*parts: object) -> str:
        return str(generate_uid(PYDICOM_ROOT_UID, entropy_srcs=["dcmcli-bench-find", *map(str, parts)]))

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    t0 = time.perf_counter()
    study, series, frame = uid("study"), uid("series"), uid("frame")
    pixels = bytes(range(128))
    width = len(str(count))
    for i in range(count):
        sop = uid("instance", i)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "DCMCLI_BENCH"
        ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CT
        ds.SOPInstanceUID = sop
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240601"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber = "BENCHFIND"
        ds.Modality = "CT"
        ds.Manufacturer = "dcmcli bench"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "dcmcli benchmark (find)"
        ds.SeriesDescription = "8x8 tiny"
        ds.PatientName = "Bench^Find"
        ds.PatientID = "BENCH-FIND"
        ds.PatientBirthDate = ""
        ds.PatientSex = "O"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.StudyID = "1"
        ds.SeriesNumber = 1
        ds.InstanceNumber = i + 1
        ds.FrameOfReferenceUID = frame
        ds.PositionReferenceIndicator = ""
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = 8
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.PixelData = pixels
        ds["PixelData"].VR = "OW"
        ds.save_as(directory / f"find_{i:0{width}d}.dcm", enforce_file_format=True)
    print(f"find: wrote {count} tiny CT files to {directory} in {time.perf_counter() - t0:.1f} s")


@dataclass
class DataSet:
    name: str
    src: Path
    files: int
    nbytes: int
    study_uid: str
    series_uid: str
    ae: str


def describe(name: str, src: Path) -> DataSet:
    from pydicom import dcmread

    files = sorted(src.glob("*.dcm"))
    if not files:
        raise BenchError(f"no data in {src}")
    first = dcmread(files[0], stop_before_pixels=True)
    return DataSet(name, src, len(files), sum(p.stat().st_size for p in files), str(first.StudyInstanceUID),
                   str(first.SeriesInstanceUID), SET_AE[name])


# --------------------------------------------------------------------------
# dcmqrscp

def association_config() -> str:
    """dcmqrscp's -xf file: profile In (CT Image Storage, uncompressed, role
    BOTH, for loading and for C-GET requestors) and Out (CT uncompressed, for
    C-MOVE sub-associations). The Q/R contexts are dcmqrscp's own."""
    lines = ["[[TransferSyntaxes]]", "[Uncompressed]"]
    lines += [f"TransferSyntax{n} = {ts}" for n, ts in enumerate(UNCOMPRESSED, 1)]
    lines += ["[[PresentationContexts]]", "[InContexts]", f"PresentationContext1 = {CT}\\Uncompressed",
              "[OutContexts]", f"PresentationContext1 = {CT}\\Uncompressed",
              "[[SCPSCURoleSelection]]", "[InRoles]", f"Role1 = {CT}\\BOTH",
              "[[Profiles]]", "[In]", "PresentationContexts = InContexts", "SCPSCURoleSelection = InRoles",
              "[Out]", "PresentationContexts = OutContexts"]
    return "\n".join(lines) + "\n"


@dataclass
class QRSCP:
    port: int
    workdir: Path
    log: Path
    proc: subprocess.Popen = field(repr=False)


def start_dcmqrscp(workdir: Path, storages: dict[str, Path], destinations: dict[str, int]) -> QRSCP:
    port = free_ports(1)[0]
    hosts = "\n".join(f"dest{n} = ({ae}, {HOST}, {p})" for n, (ae, p) in enumerate(destinations.items()))
    aes = "\n".join(f"{ae}  {path}  RW  (4000, 2048mb)  ANY" for ae, path in storages.items())
    config = workdir / "dcmqrscp.cfg"
    config.write_text(f"NetworkTCPPort  = {port}\nMaxPDUSize      = {BEST_PDU}\nMaxAssociations = 16\n\n"
                      f"HostTable BEGIN\n{hosts}\nHostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
                      f"AETable BEGIN\n{aes}\nAETable END\n")
    assoc = workdir / "dcmqrscp-assoc.cfg"
    assoc.write_text(association_config())
    log = workdir / "dcmqrscp.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([dcmtk("dcmqrscp"), "-c", str(config), "-xf", str(assoc), "In", "Out", "-dhl",
                                 str(port)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, start_new_session=True, env=dcmtk_env())
    peer = QRSCP(port, workdir, log, proc)
    try:
        wait_echo(peer, next(iter(storages)))
    except BaseException:
        stop_group(proc)
        raise
    return peer


def wait_echo(peer: QRSCP, ae: str, timeout: float = 30.0) -> None:
    """Poll with C-ECHO until dcmqrscp answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if peer.proc.poll() is not None:
            raise BenchError(f"dcmqrscp exited with {peer.proc.returncode}: {peer.log.read_text()[-2000:]}")
        r = subprocess.run([dcmtk("echoscu"), "-to", "2", "-aec", ae, HOST, str(peer.port)], capture_output=True,
                           env=dcmtk_env(), stdin=subprocess.DEVNULL)
        if r.returncode == 0:
            return
        time.sleep(0.05)  # polling, not synchronising on time
    raise BenchError(f"dcmqrscp not answering C-ECHO on port {peer.port} after {timeout} s")


def stop_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group (dcmqrscp and its per-association children),
    then SIGKILL what is left, and reap."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)


def fingerprint(src: Path) -> str:
    h = hashlib.sha1()
    for p in sorted(src.glob("*.dcm")):
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def storage_files(storage: Path) -> int:
    return sum(1 for p in storage.iterdir() if p.is_file() and p.name != "index.dat") if storage.is_dir() else 0


def prepare_storages(dbroot: Path, sets: list[DataSet], fresh: bool) -> tuple[dict[str, Path], list[DataSet]]:
    """Each set's dcmqrscp storage folder; the sets whose cached storage is
    missing, stale or incomplete are emptied and returned (to be loaded)."""
    storages, to_load = {}, []
    for ds in sets:
        storage = dbroot / ds.ae
        manifest = dbroot / f"{ds.ae}.json"
        want = {"source": str(ds.src.resolve()), "files": ds.files, "fingerprint": fingerprint(ds.src),
                "storage": str(storage.resolve())}
        try:
            have = json.loads(manifest.read_text())
        except (OSError, ValueError):
            have = None
        if fresh or have != want or storage_files(storage) != ds.files or not (storage / "index.dat").exists():
            manifest.unlink(missing_ok=True)
            shutil.rmtree(storage, ignore_errors=True)
            storage.mkdir(parents=True)
            to_load.append(ds)
        storages[ds.ae] = storage
    return storages, to_load


def load(peer: QRSCP, ds: DataSet, dbroot: Path) -> None:
    """dcmsend every file of the set; all must be stored with Success."""
    t0 = time.perf_counter()
    r = subprocess.run([dcmtk("dcmsend"), "-v", "-aet", "LOADER", "-aec", ds.ae, "+sd", "-dn", "--no-halt",
                        HOST, str(peer.port), str(ds.src)], capture_output=True, text=True, errors="replace",
                       stdin=subprocess.DEVNULL, env=dcmtk_env(), timeout=3600)
    out = r.stdout + r.stderr
    total = re.search(r"Number of SOP instances\s*:\s*(\d+)", out)
    ok = re.search(r"with status SUCCESS\s*:\s*(\d+)", out)
    if r.returncode != 0 or not total or not ok or int(ok.group(1)) != ds.files or int(total.group(1)) != ds.files:
        raise BenchError(f"dcmsend to {ds.ae} did not store all {ds.files} files (exit {r.returncode}):\n"
                         f"{out[-3000:]}")
    stored = storage_files(dbroot / ds.ae)
    if stored != ds.files:
        raise BenchError(f"{ds.ae} holds {stored} files after loading {ds.files} (quota?); see {peer.log}")
    (dbroot / f"{ds.ae}.json").write_text(json.dumps(
        {"source": str(ds.src.resolve()), "files": ds.files, "fingerprint": fingerprint(ds.src),
         "storage": str((dbroot / ds.ae).resolve())}))
    print(f"loaded {ds.files} files of {ds.name} into dcmqrscp {ds.ae} in {time.perf_counter() - t0:.1f} s")


FIND_KEYS = ["QueryRetrieveLevel=IMAGE", "StudyInstanceUID={study}", "SeriesInstanceUID={series}",
             "SOPInstanceUID", "InstanceNumber", "SOPClassUID"]


def find_keys(ds: DataSet) -> list[str]:
    out = []
    for k in FIND_KEYS:
        out += ["-k", k.format(study=ds.study_uid, series=ds.series_uid)]
    return out


def check_index(peer: QRSCP, ds: DataSet) -> None:
    """A DCMTK findscu at IMAGE level must list every instance of the set."""
    r = subprocess.run([dcmtk("findscu"), "-S", "-aec", ds.ae, *find_keys(ds), HOST, str(peer.port)],
                       capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL, env=dcmtk_env())
    n = len(re.findall(r"Find Response: \d+ \(Pending\)", r.stdout + r.stderr))
    if r.returncode != 0 or n != ds.files:
        raise BenchError(f"dcmqrscp {ds.ae} lists {n} of {ds.files} instances (findscu exit {r.returncode}); "
                         f"rerun with --fresh-db")


# --------------------------------------------------------------------------
# one timed run

@dataclass
class Run:
    seconds: float
    ok: bool
    note: str = ""
    cpu_s: float = 0.0  # the client's user + system CPU time (its threads included)


@dataclass
class Config:
    key: str
    name: str
    kind: str  # dcmtk or dcmcli
    bench: str  # get, move, find
    extra: list[str] = field(default_factory=list)
    target: str | None = None  # key of TARGETS for this row's ratio
    source: Path | None = None  # another dcmcli tree (--also); None: this checkout


CONFIGS: dict[str, list[Config]] = {
    "get": [Config("dcmtk", "DCMTK getscu (-pdu 131072, TCP_NODELAY=1)", "dcmtk", "get"),
            Config("dcmcli", "dcmcli getscu (defaults)", "dcmcli", "get", [], "get"),
            Config("dcmcli-q", "dcmcli getscu -q (no line per object)", "dcmcli", "get", ["-q"]),
            Config("dcmcli-nofind", "dcmcli getscu --no-find", "dcmcli", "get", ["--no-find"])],
    "move": [Config("dcmtk", "DCMTK movescu +P (-pdu 131072, TCP_NODELAY=1)", "dcmtk", "move"),
             Config("dcmcli", "dcmcli movescu +P (defaults)", "dcmcli", "move", [], "move")],
    "find": [Config("dcmtk", "DCMTK findscu (default log, to a file)", "dcmtk", "find"),
             Config("dcmcli", "dcmcli findscu (table to a file)", "dcmcli", "find", [], "find"),
             Config("dcmcli-json", "dcmcli findscu --json (to a file)", "dcmcli", "find", ["--json"], "find-json")],
}
MOVE_AE = {"dcmtk": "DCMTKMOVE", "dcmcli": "DCMCLIMOVE"}


def client_cmd(cfg: Config, ds: DataSet, peer: QRSCP, od: Path, move_port: int) -> list[str]:
    study = ["-S", "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={ds.study_uid}"]
    target = [HOST, str(peer.port)]
    if cfg.kind == "dcmtk":
        common = ["-aec", ds.ae, "-pdu", BEST_PDU]
        if cfg.bench == "get":
            return [dcmtk("getscu"), "-aet", "GETSCU", *common, *study, "-od", str(od), *target]
        if cfg.bench == "move":
            ae = MOVE_AE["dcmtk"]
            return [dcmtk("movescu"), "-aet", ae, "-aem", ae, *common, "+P", str(move_port), *study,
                    "-od", str(od), *target]
        return [dcmtk("findscu"), "-aet", "FINDSCU", *common, "-S", *find_keys(ds), *target]
    common = ["-aec", ds.ae, *cfg.extra]
    if cfg.bench == "get":
        return [*DCMCLI, "getscu", *common, *study, "-od", str(od), *target]
    if cfg.bench == "move":
        ae = MOVE_AE["dcmcli"]
        return [*DCMCLI, "movescu", "-aet", ae, *common, "+P", str(move_port), *study, "-od", str(od), *target]
    return [*DCMCLI, "findscu", *common, "-S", *find_keys(ds), *target]


def count_matches(cfg: Config, out: str) -> int:
    if cfg.kind == "dcmtk":
        return len(re.findall(r"Find Response: \d+ \(Pending\)", out))
    if "--json" in cfg.extra:
        return sum(1 for line in out.splitlines() if line.startswith('{"event":"match"'))
    # the table: a header line, then one line per match whose first column is the StudyInstanceUID
    lines = out.splitlines()
    return max(0, sum(1 for line in lines[1:] if line.startswith("1.")))


def one_run(cfg: Config, ds: DataSet, peer: QRSCP, out_base: Path, log_path: Path, move_port: int) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix=f"{cfg.bench}-{cfg.key}-", dir=out_base))
    try:
        return _one_run(cfg, ds, peer, workdir, log_path, move_port)
    finally:  # also when interrupted: no output folder stays behind
        shutil.rmtree(workdir, ignore_errors=True)
        os.sync()  # this run's writes must not slow the next one


def _one_run(cfg: Config, ds: DataSet, peer: QRSCP, workdir: Path, log_path: Path, move_port: int) -> Run:
    od = workdir / "od"
    od.mkdir()
    stdout_path = workdir / "stdout.txt"
    notes = []
    cmd = client_cmd(cfg, ds, peer, od, move_port)
    env = dcmtk_env() if cfg.kind == "dcmtk" else dcmcli_env(cfg.source)
    with open(log_path, "a") as logf, open(stdout_path, "w") as stdout:
        logf.write(f"\n=== {cfg.bench} {ds.name} {cfg.name}\n{' '.join(cmd)}\n")
        logf.flush()
        # findscu: everything it prints is the output that is timed (DCMTK
        # logs the matches); the retrieves' logs go to the common log.
        err = stdout if cfg.bench == "find" else logf
        seconds, cpu, killed, code = run_reaped(cmd, TIMEOUT, stdout=stdout, stderr=err, env=env, cwd=workdir)
        if killed:
            notes.append(f"killed after {TIMEOUT} s")
        if code != 0:
            notes.append(f"exit {code}")
        if cfg.bench == "find":
            n = count_matches(cfg, stdout_path.read_text(errors="replace"))
            expected = ds.files
            what = "matches"
        else:
            n = count_files(od)
            expected = ds.files
            what = "files"
        if n != expected:
            notes.append(f"{n} of {expected} {what}")
        if cfg.bench != "find" or notes:
            logf.write(stdout_path.read_text(errors="replace")[-3000:])
        logf.write(f"--- {seconds:.3f} s, {n} {what}, notes {notes}\n")
    return Run(seconds, not notes, "; ".join(notes), cpu)


def time_cmd(cmd: list[str], repeat: int, env: dict[str, str]) -> float:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def serve(peer: QRSCP, sets: list[DataSet], cfgs: dict[str, list[Config]], move_ports: dict[str, int],
          out: Path) -> None:
    """--serve: print each benchmark's command lines against the running
    dcmqrscp and wait for Ctrl-C."""
    print(f"\ndcmqrscp (pid {peer.proc.pid}, log {peer.log}) serves on {HOST}:{peer.port}; commands "
          f"(DCMTK with TCP_NODELAY=1; dcmcli with PYTHONPATH={REPO}; OD: an output folder):")
    for bench, configs in cfgs.items():
        for ds in sets:
            if (bench == "find") != (ds.name == "find"):
                continue
            for cfg in configs:
                cmd = client_cmd(cfg, ds, peer, Path("OD"), move_ports[cfg.kind])
                print(f"  {bench} {ds.name} {cfg.key}: {' '.join(cmd)}")
    print("Ctrl-C (or SIGTERM) stops it.", flush=True)
    try:
        while peer.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def med(runs: list[Run], attr: str = "seconds") -> float | None:
    ok = [getattr(r, attr) for r in runs if r.ok]
    return statistics.median(ok) if ok else None


def f3(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


# --------------------------------------------------------------------------
# the storescp benchmark (bench_store.py)

def paired_store(runs: dict[str, list[dict]]) -> str:
    pairs = [c["sender_s"] / t["sender_s"] for c, t in zip(runs.get("dcmcli", []), runs.get("dcmtk", []))
             if c["ok"] and t["ok"]]
    return f"{statistics.median(pairs):.2f}x" if pairs else "-"


def run_store(args: argparse.Namespace, sets: list[str]) -> dict:
    json_path = Path(tempfile.mkstemp(prefix="bench_store-", suffix=".json", dir=args.out)[1])
    cmd = [sys.executable, str(HERE / "bench_store.py"), "--repeat", str(args.repeat), "--configs", "dcmtk,dcmcli",
           "--sets", ",".join(sets), "--data", str(args.data), "--out", str(args.out), "--json", str(json_path),
           "--timeout", str(TIMEOUT)]
    if PYCACHE is not None:
        cmd += ["--pycache", str(PYCACHE)]
    print(f"\nstore: {' '.join(cmd)}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL)
    try:
        data = json.loads(json_path.read_text())
    except (OSError, ValueError):
        data = {}
    json_path.unlink(missing_ok=True)
    return {"exit": r.returncode, "data": data}


# --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--benches", default="get,move,find,store", help="get,move,find,store (default all)")
    ap.add_argument("--sets", default="large,small", help="sets for get, move and store (default large,small)")
    ap.add_argument("--configs", default="", help="only these configuration keys (e.g. dcmtk,dcmcli); "
                    "default all: " + "; ".join(f"{b}: {','.join(c.key for c in cs)}" for b, cs in CONFIGS.items()))
    ap.add_argument("--repeat", type=int, default=3, metavar="N", help="runs per configuration (default 3)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                    help="data directory (gen_data.py's sets; find/ and qrdb/ are made here)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                    help="parent of the temporary folders (on disk; default bench/out)")
    ap.add_argument("--find-count", type=int, default=FIND_COUNT, metavar="N", help="instances for find (5000)")
    ap.add_argument("--fresh-db", action="store_true", help="reload dcmqrscp's storage even when cached")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write every timing as JSON")
    ap.add_argument("--timeout", type=float, default=600.0, metavar="S", help="kill a client after S s (600)")
    ap.add_argument("--also", type=Path, metavar="DIR",
                    help="also run the dcmcli package found in DIR (a folder holding dcmcli/, e.g. made by "
                         "`git archive COMMIT dcmcli | tar -x -C DIR`) in the same rounds, as rows 'KEY@also' "
                         "without a verdict: a change's effect measured against its base under the same load")
    ap.add_argument("--serve", action="store_true",
                    help="only start dcmqrscp with the sets loaded, print the commands the benchmarks run, and "
                         "wait for Ctrl-C (for profiling one client by hand)")
    ap.add_argument("--pycache", type=Path, metavar="DIR",
                    help="run dcmcli with PYTHONPYCACHEPREFIX=DIR and without PYTHONDONTWRITEBYTECODE "
                         "(compiled modules cached, as when installed)")
    args = ap.parse_args(argv)
    global PYCACHE, TIMEOUT
    PYCACHE = args.pycache.resolve() if args.pycache else None
    TIMEOUT = args.timeout
    benches = [b for b in args.benches.split(",") if b]
    sets = [s for s in args.sets.split(",") if s]
    only = {c for c in args.configs.split(",") if c}
    for b in benches:
        if b not in (*CONFIGS, "store"):
            ap.error(f"unknown benchmark {b!r}")
    for s in sets:
        if s not in ("large", "small"):
            ap.error(f"unknown set {s!r} (large, small)")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    args.data = args.data.resolve()
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "bench_qr.log"
    log_path.write_text("")

    for s, n in (("large", 500), ("small", 2000)):
        if s in sets and not (args.data / s).is_dir():
            ensure_gen_data(args.data, s, n)
    qr_sets: list[DataSet] = []
    if any(b in benches for b in ("get", "move")) or args.serve:
        qr_sets += [describe(s, args.data / s) for s in sets]
    if "find" in benches or args.serve:
        ensure_find_data(args.data / "find", args.find_count)
        qr_sets.append(describe("find", args.data / "find"))

    src = dcmcli_source()
    print(f"dcmcli source: {src} ({checkout_state()})")
    if not src.startswith(str(REPO)):
        print(f"error: dcmcli processes import {src}, not {REPO}", file=sys.stderr)
        return 2
    startup = time_cmd([*DCMCLI, "--version"], 5, dcmcli_env())
    print(f"start-up: `{sys.executable} -m dcmcli --version` median {startup:.3f} s (5 runs); "
          f"{os.cpu_count()} CPUs; repeats {args.repeat}; log {log_path}; "
          f"PYTHONDONTWRITEBYTECODE={dcmcli_env().get('PYTHONDONTWRITEBYTECODE', '(unset)')}"
          f"{f'; PYTHONPYCACHEPREFIX={PYCACHE}' if PYCACHE else ''}", flush=True)

    cfgs = {b: [c for c in CONFIGS[b] if not only or c.key in only] for b in CONFIGS}
    if args.also:
        also = args.also.resolve()
        found = dcmcli_source(also)
        if not found.startswith(str(also)):
            print(f"error: --also {also}: dcmcli imports from {found or '(nothing)'}", file=sys.stderr)
            return 2
        print(f"--also: {found}")
        for b, cs in cfgs.items():
            cfgs[b] = [x for c in cs for x in ([c] if c.kind == "dcmtk" else
                                               [c, Config(f"{c.key}@also", f"{c.name} [--also]", c.kind, c.bench,
                                                          c.extra, None, also)])]
    workdir = Path(tempfile.mkdtemp(prefix="qrscp-", dir=args.out))
    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        return _main(args, benches, sets, cfgs, qr_sets, workdir, log_path, startup)
    except KeyboardInterrupt:
        print("\ninterrupted: dcmqrscp and the running client stopped, temporary folders removed", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(workdir, ignore_errors=True)


def _main(args: argparse.Namespace, benches: list[str], sets: list[str], cfgs: dict[str, list[Config]],
          qr_sets: list[DataSet], workdir: Path, log_path: Path, startup: float) -> int:
    results: dict[str, dict[str, dict[str, list[Run]]]] = {}
    store = None
    peer = None
    try:
        if qr_sets:
            dbroot = args.data / "qrdb"
            storages, to_load = prepare_storages(dbroot, qr_sets, args.fresh_db)
            move_ports = dict(zip(("dcmtk", "dcmcli"), free_ports(2)))
            peer = start_dcmqrscp(workdir, storages, {MOVE_AE[k]: p for k, p in move_ports.items()})
            for ds in to_load:
                load(peer, ds, dbroot)
            for ds in qr_sets:
                check_index(peer, ds)
            print(f"dcmqrscp on port {peer.port}: " + ", ".join(
                f"{ds.ae} {ds.files} instances ({ds.nbytes / 1e6:.1f} MB)" for ds in qr_sets), flush=True)
            if args.serve:
                serve(peer, qr_sets, cfgs, move_ports, args.out)
                return 0
            for ds in qr_sets:
                warm_cache(storages[ds.ae])  # read once so that every run finds them in the page cache
            for bench in ("get", "move", "find"):
                if bench not in benches:
                    continue
                for ds in qr_sets:
                    if (bench == "find") != (ds.name == "find"):
                        continue
                    print(f"\n{bench} {ds.name}: {ds.files} instances, {ds.nbytes / 1e6:.1f} MB", flush=True)
                    runs = results.setdefault(bench, {}).setdefault(ds.name, {c.key: [] for c in cfgs[bench]})
                    for rep in range(args.repeat):
                        for cfg in cfgs[bench]:
                            run = one_run(cfg, ds, peer, args.out, log_path, move_ports[cfg.kind])
                            runs[cfg.key].append(run)
                            print(f"  run {rep + 1}/{args.repeat} {cfg.name:48s} {run.seconds:7.3f} s "
                                  f"(CPU {run.cpu_s:6.3f} s)  "
                                  f"{'ok' if run.ok else 'FAIL: ' + run.note}", flush=True)
            stop_group(peer.proc)
            peer = None
        if "store" in benches:
            store = run_store(args, sets)
    finally:
        if peer is not None:
            stop_group(peer.proc)

    header = ["benchmark", "configuration", "median s", "DCMTK s", "ratio", "target", "result", "paired",
              "min-max s", "CPU s", "DCMTK CPU s", "ok runs"]
    rows = []
    all_ok = True
    for bench, by_set in results.items():
        for name, by_cfg in by_set.items():
            n = next(ds.files for ds in qr_sets if ds.name == name)
            dcmtk_runs = by_cfg.get("dcmtk", [])
            d, d_cpu = med(dcmtk_runs), med(dcmtk_runs, "cpu_s")
            for cfg in cfgs[bench]:
                runs = by_cfg[cfg.key]
                m = med(runs)
                ratio = target = verdict = paired = "-"
                if cfg.kind == "dcmcli" and d and m:
                    ratio = f"{m / d:.2f}x"
                    pairs = [r.seconds / t.seconds for r, t in zip(runs, dcmtk_runs) if r.ok and t.ok]
                    paired = f"{statistics.median(pairs):.2f}x" if pairs else "-"
                    if cfg.target:
                        t = TARGETS[cfg.target]
                        target = f"<= {t}x"
                        verdict = "met" if m / d <= t else "MISSED"
                        all_ok &= m / d <= t
                n_ok = sum(r.ok for r in runs)
                if n_ok < len(runs):
                    verdict = f"ERROR ({verdict})"
                    all_ok = False
                ok_times = [r.seconds for r in runs if r.ok]
                spread = f"{min(ok_times):.2f}-{max(ok_times):.2f}" if ok_times else "-"
                rows.append([f"{bench} {name} ({n})", cfg.name, f3(m), f3(d), ratio, target, verdict, paired, spread,
                             f3(med(runs, "cpu_s")), f3(d_cpu), f"{n_ok}/{len(runs)}"])
    if store is not None:
        sdata = store["data"].get("sets", {})
        for s in sets:
            runs = sdata.get(s, {}).get("runs", {})
            d = statistics.median([r["sender_s"] for r in runs.get("dcmtk", []) if r["ok"]] or [0]) or None
            m = statistics.median([r["sender_s"] for r in runs.get("dcmcli", []) if r["ok"]] or [0]) or None
            ratio = f"{m / d:.2f}x" if m and d else "-"
            n_ok = sum(r["ok"] for r in runs.get("dcmcli", []))
            rows.append([f"store {s} ({sdata.get(s, {}).get('files', '?')})",
                         f"dcmcli storescu -> storescp (README: {README_STORE[s]:.2f}x)", f3(m), f3(d), ratio,
                         "<= 1.5x" if s == "large" else "<= 2.5x",
                         ("met" if m / d <= (1.5 if s == "large" else 2.5) else "MISSED") if m and d else "ERROR",
                         paired_store(runs), "-", "-", "-", f"{n_ok}/{len(runs.get('dcmcli', []))}"])
        all_ok &= store["exit"] == 0
    print(f"\nMedians of the successful runs out of {args.repeat}; the client's wall-clock from start to exit "
          f"(dcmcli start-up included: `dcmcli --version` {startup:.2f} s); ratio = dcmcli / DCMTK medians "
          f"(the verdict); paired = median of each round's dcmcli / DCMTK (runs next to each other, less "
          f"sensitive to load that drifts); CPU s = the client's user + system time.")
    print(fmt_table(rows, header))
    errors = [(b, s, k, r.note) for b, by_set in results.items() for s, by_cfg in by_set.items()
              for k, runs in by_cfg.items() for r in runs if not r.ok]
    if errors:
        print("\nerrors:")
        for b, s, k, note in errors:
            print(f"  {b} {s} {k}: {note}")
    if args.json:
        args.json.write_text(json.dumps({
            "startup_s": startup, "repeat": args.repeat, "pycache": str(PYCACHE) if PYCACHE else None,
            "sets": {ds.name: {"files": ds.files, "bytes": ds.nbytes, "ae": ds.ae} for ds in qr_sets},
            "runs": {b: {s: {k: [asdict(r) for r in runs] for k, runs in by_cfg.items()}
                         for s, by_cfg in by_set.items()} for b, by_set in results.items()},
            "store": store}, indent=1))
    print("\noverall:", "every target met, no failed run" if all_ok else "MISSED or failed (see above)")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
