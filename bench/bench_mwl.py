#!/usr/bin/env python
"""Time dcmcli mwlscp against DCMTK wlmscpfs serving the same 10,000-item worklist.

A folder in wlmscpfs's layout (``DATA/mwl/BENCH/*.wl``, one item per file,
generated here once with pydicom and reused) holds 10,000 items: five
modalities in turn, Scheduled Procedure Step Start Dates over ten days.
Both servers run on free ports of 127.0.0.1 and are queried by the same
client, DCMTK ``findscu -W -q`` (timed quiet: its default output logs every
answer, which costs it about a second for 10,000 answers whichever server
sent them; one run with ``-v`` before counts the answers of each server):

* ``subset``: Modality CT and a date range of five days: 1,000 matches;
* ``all``: every item (Patient Name universal): 10,000 matches.

Each query runs ``--repeat`` times per server, interleaved; the medians and
their ratio (dcmcli / wlmscpfs, target <= 0.5) are printed, and the peak
resident memory of the dcmcli server (VmHWM, target < 200 MB) after all
queries. dcmcli reads the whole folder at start (its cache); wlmscpfs reads
every file on every query.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import HOST, free_port, git_state, wait_listening  # noqa: E402

DCMTK = Path(os.environ.get("DCMTK_BIN", "/usr/bin"))
MODALITIES = ("CT", "MR", "US", "CR", "XA")


def make_worklist(root: Path, n: int) -> Path:
    folder = root / "BENCH"
    marker = folder / f".complete-{n}"
    if marker.exists():
        return root
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lockfile").touch()
    for i in range(n):
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.AccessionNumber = f"A{i:06d}"
        ds.PatientName = f"PATIENT{i:05d}^GIVEN"
        ds.PatientID = f"P{i:06d}"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "MF"[i % 2]
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.10.1000.{i}"
        ds.RequestedProcedureID = f"RP{i}"
        ds.RequestedProcedureDescription = "BENCH PROCEDURE"
        sps = Dataset()
        sps.Modality = MODALITIES[i % len(MODALITIES)]
        sps.ScheduledStationAETitle = f"STATION{i % 7}"
        sps.ScheduledProcedureStepStartDate = f"202612{1 + (i // 5) % 10:02d}"
        sps.ScheduledProcedureStepStartTime = f"{8 + i % 10:02d}0000"
        sps.ScheduledPerformingPhysicianName = "DOCTOR^WHO"
        sps.ScheduledProcedureStepDescription = "STEP"
        sps.ScheduledProcedureStepID = f"SPS{i}"
        ds.ScheduledProcedureStepSequence = Sequence([sps])
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"
        ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.10.1001.{i}"
        ds.save_as(folder / f"item{i:05d}.wl", enforce_file_format=True)
    marker.touch()
    return root


QUERIES = {
    "subset": ["-k", "PatientName", "-k", "PatientID", "-k", "(0040,0100)[0].Modality=CT",
               "-k", "(0040,0100)[0].ScheduledProcedureStepStartDate=20261201-20261205",
               "-k", "(0040,0100)[0].ScheduledProcedureStepID"],
    "all": ["-k", "PatientName", "-k", "PatientID", "-k", "(0040,0100)[0].Modality",
            "-k", "(0040,0100)[0].ScheduledProcedureStepStartDate"],
}


def run_query(port: int, keys: list[str], verbose: bool = False) -> tuple[float, int]:
    """One findscu run: its wall time, and (``verbose``: with -v, which logs
    every response) the number of matches."""
    t = time.perf_counter()
    r = subprocess.run([str(DCMTK / "findscu"), "-W", *(["-v"] if verbose else ["-q"]), "-aec", "BENCH", HOST,
                        str(port), *keys], capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"findscu failed: {r.stderr[-500:]}")
    matches = r.stdout.count("Find Response:") + r.stderr.count("Find Response:")
    return seconds, matches


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parent / "data")
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    root = make_worklist(args.data / "mwl", args.items)
    print(f"dcmcli: {git_state()}")
    wl_port, me_port = free_port(), free_port()
    wl = subprocess.Popen([str(DCMTK / "wlmscpfs"), "-dfp", str(root), str(wl_port)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    me = subprocess.Popen([sys.executable, "-m", "dcmcli", "mwlscp", "-q", "--bind", HOST, "-dfp", str(root),
                           str(me_port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_listening(wl_port, wl)
        wait_listening(me_port, me, timeout=300)
        print(f"dcmcli mwlscp read {args.items} items and listened after {time.perf_counter() - started:.1f} s")
        results: dict[str, dict[str, list[float]]] = {}
        for name, keys in QUERIES.items():
            times: dict[str, list[float]] = {"wlmscpfs": [], "dcmcli": []}
            counts: dict[str, set[int]] = {"wlmscpfs": set(), "dcmcli": set()}
            for who, port in (("wlmscpfs", wl_port), ("dcmcli", me_port)):
                counts[who].add(run_query(port, keys, verbose=True)[1])  # the answers, counted (and a warm-up)
            for _ in range(args.repeat):
                for who, port in (("wlmscpfs", wl_port), ("dcmcli", me_port)):
                    times[who].append(run_query(port, keys)[0])
            results[name] = times
            a, b = statistics.median(times["wlmscpfs"]), statistics.median(times["dcmcli"])
            print(f"{name:7s} matches wlmscpfs {sorted(counts['wlmscpfs'])} dcmcli {sorted(counts['dcmcli'])}: "
                  f"wlmscpfs {a:.3f} s, dcmcli {b:.3f} s, ratio {b / a:.2f}x (target <= 0.5x)")
        status = Path(f"/proc/{me.pid}/status").read_text()
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        print(f"dcmcli mwlscp peak memory: {hwm.split(':')[1].strip()} (target < 200 MB)")
        print(json.dumps({k: {w: statistics.median(v) for w, v in t.items()} for k, t in results.items()}))
    finally:
        for p in (wl, me):
            p.terminate()
            p.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
