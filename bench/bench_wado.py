#!/usr/bin/env python
"""wado retrieve and wado store against curl and dicomweb-client, on one Orthanc.

One Orthanc 1.10 with its DICOMweb plugin runs on free loopback ports, its
storage in a temporary folder. In each round, interleaved:

* retrieve the study (``bench/data/large``: 500 CT of 512x512x16, 263 MB,
  made by ``bench/gen_data.py``) with
  - ``curl`` saving the multipart answer to one file (the limit of what the
    server can send),
  - ``dcmcli wado retrieve`` (each part parsed and written as it streams,
    through the storage writer),
  - dicomweb-client's Python API (``iter_study``, each instance written with
    pydicom's ``save_as``), in a process of its own;
* store the same files, into an emptied Orthanc, with
  - ``curl`` posting a prebuilt multipart body (built once, before timing;
    ``-T``, streamed from the file),
  - ``dcmcli wado store`` (default batches of 50, and all in one request).

Wall-clock time of each client process (Python start-up included) and its
peak resident memory (``wait4``'s ru_maxrss) are recorded; medians of
``--repeat`` rounds and the ratios are printed.

    python bench/gen_data.py --large 500 --small 0
    python -m venv --system-site-packages /tmp/dwc && /tmp/dwc/bin/pip install dicomweb-client
    python bench/bench_wado.py --repeat 3 --pycache bench/out/pycache --dicomweb-python /tmp/dwc/bin/python

dicomweb-client goes into a virtual environment of its own: it pulls in
Pillow, which pydicom then uses as one more JPEG decoder, and that changes
what dcmcli dcmconv reports (tests/test_interop_codecs.py expects exactly
pylibjpeg and imagecodecs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from _common import BenchError, free_port, git_state  # noqa: E402

DEFAULT_DATA = HERE / "data" / "large"
ORTHANC = os.environ.get("ORTHANC_BIN", "/usr/sbin/Orthanc")
PLUGIN = os.environ.get("ORTHANC_DICOMWEB", "/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}

DICOMWEB_CLIENT = r"""
import sys
from pathlib import Path
from dicomweb_client.api import DICOMwebClient
base, study, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
client = DICOMwebClient(url=base)
n = 0
for ds in client.iter_study(study, media_types=(("application/dicom", "*"),)):
    ds.save_as(out / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    n += 1
print(n)
"""


class Orthanc:
    def __init__(self, work: Path) -> None:
        self.http_port, self.dicom_port = free_port(), free_port()
        for sub in ("storage", "index", "tmp"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        config = {"Name": "bench", "StorageDirectory": str(work / "storage"), "IndexDirectory": str(work / "index"),
                  "TemporaryDirectory": str(work / "tmp"), "HttpPort": self.http_port, "DicomPort": self.dicom_port,
                  "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomServerEnabled": False,
                  "SaveJobs": False, "Plugins": [PLUGIN], "HttpCompressionEnabled": False,
                  "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "WadoRoot": "/wado",
                               "Ssl": False}}
        (work / "orthanc.json").write_text(json.dumps(config))
        self.log = (work / "orthanc.log").open("wb")
        self.proc = subprocess.Popen([ORTHANC, "--no-jobs", str(work / "orthanc.json")], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.http_port}"
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"Orthanc exited with {self.proc.returncode}; see {work / 'orthanc.log'}")
            try:
                urllib.request.urlopen(self.url + "/system", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("Orthanc did not answer GET /system") from None
                time.sleep(0.05)  # polling a connect, not synchronising on time

    def rest(self, method: str, path: str) -> object:
        req = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(req, timeout=120) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def clear(self) -> None:
        for study in self.rest("GET", "/studies") or []:  # type: ignore[union-attr]
            self.rest("DELETE", f"/studies/{study}")

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.log.close()


def timed(argv: list[str], **kw: object) -> tuple[float, float, float, str]:
    """Run a client; (seconds, peak RSS in MB, CPU seconds (user + system), stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=ENV, **kw)  # type: ignore[call-overload]
    out = proc.stdout.read()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(f"{argv[0]} {' '.join(argv[1:4])}... exited {proc.returncode}: "
                         f"{err.decode(errors='replace')[-800:]}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, out.decode(errors="replace")


def multipart_body(files: list[Path], path: Path) -> str:
    boundary = "bench-boundary-0123456789"
    with path.open("wb") as out:
        for f in files:
            out.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
            out.write(f.read_bytes())
            out.write(b"\r\n")
        out.write(f"--{boundary}--\r\n".encode())
    return f'multipart/related; type="application/dicom"; boundary={boundary}'


def study_uid(path: Path) -> str:
    sys.path.insert(0, str(ROOT))
    from dcmcli.dicomfile import read_top_level, read_file_info

    info = read_file_info(path)
    return read_top_level(path, info.dataset_offset, info.transfer_syntax, [0x0020000D])[0x0020000D] \
        .decode().strip("\x00 ")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR", help="the study's files")
    ap.add_argument("--repeat", type=int, default=3, metavar="N")
    ap.add_argument("--out", type=Path, default=HERE / "out", metavar="DIR",
                    help="scratch folder (default bench/out, as the other benches). Creating a file costs 0.03 ms "
                         "to 0.7 ms of kernel time on this machine, depending on how busy its file system is: wado "
                         "pays it 500 times, curl once; the rounds interleave, so both see the same moments")
    ap.add_argument("--dicomweb-python", default=sys.executable, metavar="PYTHON",
                    help="the interpreter that has dicomweb-client (default: this one)")
    ap.add_argument("--pycache", type=Path, metavar="DIR",
                    help="run the Python clients with PYTHONPYCACHEPREFIX=DIR and without PYTHONDONTWRITEBYTECODE "
                         "(compiled modules cached, as when installed)")
    args = ap.parse_args(argv)
    if args.pycache:
        ENV.pop("PYTHONDONTWRITEBYTECODE", None)
        ENV["PYTHONPYCACHEPREFIX"] = str(args.pycache.resolve())
    files = sorted(args.data.glob("*.dcm"))
    if not files:
        raise SystemExit(f"no files in {args.data}: run python bench/gen_data.py --large 500 --small 0")
    size = sum(f.stat().st_size for f in files)
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-wado-", dir=args.out))
    print(f"dcmcli: {git_state()}")
    print(f"data: {len(files)} files, {size / 1e6:.0f} MB; scratch {work}")
    orthanc = Orthanc(work / "orthanc")
    base = orthanc.url + "/dicom-web"
    dcmcli = [sys.executable, "-m", "dcmcli"]
    results: dict[str, list[tuple[float, float, float]]] = {}

    def record(name: str, t: float, rss: float, cpu: float) -> None:
        results.setdefault(name, []).append((t, rss, cpu))
        print(f"  {name:<28} {t:6.2f} s  {rss:6.0f} MB  cpu {cpu:5.2f} s", flush=True)

    try:
        ctype = multipart_body(files, work / "body.mp")
        uid = study_uid(files[0])
        for n in range(1, args.repeat + 1):
            print(f"round {n}")
            # store: into an empty Orthanc each time
            orthanc.clear()
            t, rss, cpu, _ = timed(["curl", "-sS", "-f", "-o", "/dev/null", "-X", "POST", "-H", f"Content-Type: {ctype}",
                               "-H", "Accept: application/dicom+json", "-H", "Expect:", "-T", str(work / "body.mp"),
                               base + "/studies"])
            record("store: curl (one body)", t, rss, cpu)
            orthanc.clear()
            t, rss, cpu, _ = timed([*dcmcli, "wado", "store", "-q", base, str(args.data)])
            record("store: wado store", t, rss, cpu)
            orthanc.clear()
            t, rss, cpu, _ = timed([*dcmcli, "wado", "store", "-q", "--batch", "100000", "--batch-size", "100000", base,
                               str(args.data)])
            record("store: wado store (1 batch)", t, rss, cpu)
            # retrieve (the study is stored now)
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            t, rss, cpu, _ = timed(["curl", "-sS", "-f", "-o", str(out / "study.mp"), "-H",
                               'Accept: multipart/related; type="application/dicom"; transfer-syntax=*',
                               f"{base}/studies/{uid}"])
            record("retrieve: curl (one file)", t, rss, cpu)
            shutil.rmtree(out)
            t, rss, cpu, _ = timed([*dcmcli, "wado", "retrieve", "-q", "--study", uid, "-od", str(out), base])
            record("retrieve: wado retrieve", t, rss, cpu)
            got = len(list(out.glob("*.dcm")))
            if got != len(files):
                raise BenchError(f"wado retrieve wrote {got} files, not {len(files)}")
            shutil.rmtree(out)
            t, rss, cpu, _ = timed([*dcmcli, "wado", "retrieve", "-q", "-j", "2", "--study", uid, "-od", str(out), base])
            record("retrieve: wado retrieve -j 2", t, rss, cpu)
            shutil.rmtree(out)
            t, rss, cpu, printed = timed([args.dicomweb_python, "-c", DICOMWEB_CLIENT, base, uid, str(out)])
            record("retrieve: dicomweb-client", t, rss, cpu)
            if printed.strip() != str(len(files)):
                raise BenchError(f"dicomweb-client wrote {printed.strip()} files, not {len(files)}")
            shutil.rmtree(out)
    finally:
        orthanc.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(name: str) -> tuple[float, float, float]:
        rows = results[name]
        return statistics.median(r[0] for r in rows), max(r[1] for r in rows), statistics.median(r[2] for r in rows)

    print(f"\nmedians of {args.repeat} (peak RSS: the largest of the rounds; cpu: the client's user + system)")
    for name in results:
        t, rss, cpu = med(name)
        print(f"  {name:<28} {t:6.2f} s  {rss:6.0f} MB  cpu {cpu:5.2f} s  {size / 1e6 / t:6.0f} MB/s")
    curl_r, curl_s = med("retrieve: curl (one file)")[0], med("store: curl (one body)")[0]
    print("\nratios")
    for name in ("retrieve: wado retrieve", "retrieve: wado retrieve -j 2", "retrieve: dicomweb-client"):
        print(f"  {name:<28} {med(name)[0] / curl_r:5.2f}x curl")
    print(f"  wado retrieve vs dicomweb-client: {med('retrieve: wado retrieve')[0] / med('retrieve: dicomweb-client')[0]:5.2f}x")
    for name in ("store: wado store", "store: wado store (1 batch)"):
        print(f"  {name:<28} {med(name)[0] / curl_s:5.2f}x curl")
    return 0


if __name__ == "__main__":
    sys.exit(main())
