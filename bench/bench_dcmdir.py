#!/usr/bin/env python
"""Time ``dcmcli dcmdir`` against DCMTK: creating a DICOMDIR for 10,000 files
(dcmmkdir) and listing it (dcmdump).

Input: 10,000 small CT images (16x16, Explicit VR Little Endian, 20
patients x 2 studies x 5 series x 50 images) under PS3.10 names,
``DICOM/Pnn/Snn/Rnn/Innnn``, made on the first run below ``--out``
(default ``bench/out/dcmdir``, git-ignored).

Each round, interleaved, ``--repeat`` times (medians reported):

- create: ``dcmmkdir +r -Pgp DICOM`` (DCMTK 3.6.7, run in the media folder,
  DICOMDIR removed before each run) against ``dcmcli dcmdir create -q
  DICOMDIR DICOM``. Both read every file and write the DICOMDIR.
- list: ``dcmdump DICOMDIR > /dev/null`` against ``dcmcli dcmdir list
  DICOMDIR > /dev/null`` (the tree as plain text; stdout is not a terminal)
  and ``--json``.
- read with pydicom's ``FileSet`` (in this process, for the README's
  "why not FileSet" numbers), once.

dcmcli runs as ``sys.executable -m dcmcli`` with this checkout first on
PYTHONPATH, so its times include the interpreter's start-up.
Targets: create <= 1.0x dcmmkdir, list <= 1.0x dcmdump.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import git_state  # noqa: E402

DCMTK = Path("/usr/bin")


def generate(media: Path, n: int) -> None:
    """n small CT images under compliant names (made once)."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    marker = media / f".made-{n}"
    if marker.exists():
        return
    import shutil

    shutil.rmtree(media, ignore_errors=True)
    base = dcmread(get_testdata_file("CT_small.dcm"))
    base.Rows = base.Columns = 16
    base.PixelData = bytes(512)
    per_series, series_per_study, studies_per_patient = 50, 5, 2
    i = 0
    while i < n:
        p, rest = divmod(i, per_series * series_per_study * studies_per_patient)
        s, rest = divmod(rest, per_series * series_per_study)
        r, k = divmod(rest, per_series)
        ds = base
        ds.PatientID = f"PAT{p:04d}"
        ds.PatientName = f"BENCH^PATIENT{p}"
        ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.9.{p}.{s}"
        ds.StudyID = f"{s + 1}"
        ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.9.{p}.{s}.{r}"
        ds.SeriesNumber = r + 1
        ds.InstanceNumber = k + 1
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = media / "DICOM" / f"P{p:02d}" / f"S{s:02d}" / f"R{r:02d}" / f"I{k:04d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        i += 1
    marker.write_text("")


def timed(cmd: list[str], cwd: Path, env: dict[str, str], stdout: object = subprocess.DEVNULL) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr[-500:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "dcmdir")
    ap.add_argument("--fileset-files", type=int, default=0, metavar="N",
                    help="also time pydicom's FileSet adding and writing N of the files (the issue measured 2000: 48 s)")
    ap.add_argument("--pycache", type=Path, metavar="DIR",
                    help="run dcmcli with PYTHONPYCACHEPREFIX=DIR and without PYTHONDONTWRITEBYTECODE "
                         "(compiled modules cached, as when installed)")
    args = ap.parse_args(argv)
    media = args.out / "media"
    print(f"dcmcli: {git_state()}")
    generate(media, args.files)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if args.pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(args.pycache.resolve())
    dcmcli = [sys.executable, "-m", "dcmcli", "dcmdir"]
    dicomdir = media / "DICOMDIR"
    timed([*dcmcli, "list", "--help"], media, env)  # warm-up (and, with --pycache, the compiled modules)
    times: dict[str, list[float]] = {k: [] for k in ("dcmmkdir", "create", "dcmdump", "list", "list --json")}
    for _ in range(args.repeat):
        dicomdir.unlink(missing_ok=True)
        times["dcmmkdir"].append(timed([str(DCMTK / "dcmmkdir"), "-q", "+r", "-Pgp", "DICOM"], media, env))
        dicomdir.unlink()
        times["create"].append(timed([*dcmcli, "create", "-q", "DICOMDIR", "DICOM"], media, env))
        times["dcmdump"].append(timed([str(DCMTK / "dcmdump"), "DICOMDIR"], media, env))
        times["list"].append(timed([*dcmcli, "list", "DICOMDIR"], media, env))
        times["list --json"].append(timed([*dcmcli, "list", "--json", "DICOMDIR"], media, env))
    med = {k: statistics.median(v) for k, v in times.items()}
    t0 = time.perf_counter()
    from pydicom.fileset import FileSet

    fs = FileSet(dicomdir)
    pydicom_read = time.perf_counter() - t0
    records = sum(1 for _ in dcmread_records(dicomdir))
    print(f"PYTHONDONTWRITEBYTECODE={env.get('PYTHONDONTWRITEBYTECODE', '(unset)')}"
          f"{'; PYTHONPYCACHEPREFIX=' + env['PYTHONPYCACHEPREFIX'] if 'PYTHONPYCACHEPREFIX' in env else ''}")
    print(f"{args.files} files, {records} records, DICOMDIR {dicomdir.stat().st_size / 1e6:.1f} MB; "
          f"medians of {args.repeat}")
    def paired(mine: str, peer: str) -> float:  # the median of each round's ratio: less sensitive to load drift
        return statistics.median(a / b for a, b in zip(times[mine], times[peer]))

    print(f"create: dcmmkdir {med['dcmmkdir']:.2f} s, dcmcli {med['create']:.2f} s, "
          f"ratio {med['create'] / med['dcmmkdir']:.2f}x (paired {paired('create', 'dcmmkdir'):.2f}x; target 1.0x)")
    print(f"list:   dcmdump {med['dcmdump']:.2f} s, dcmcli {med['list']:.2f} s, "
          f"ratio {med['list'] / med['dcmdump']:.2f}x (paired {paired('list', 'dcmdump'):.2f}x; target 1.0x); "
          f"--json {med['list --json']:.2f} s")
    print("rounds: " + "; ".join(f"{k} " + " ".join(f"{v:.2f}" for v in vals) for k, vals in times.items()))
    print(f"pydicom FileSet reading it: {pydicom_read:.2f} s ({len(fs)} instances)")
    if args.fileset_files:
        import shutil
        import tempfile

        files = sorted((media / "DICOM").rglob("I*"))[:args.fileset_files]
        with tempfile.TemporaryDirectory(dir=args.out) as tmp:
            t0 = time.perf_counter()
            fs = FileSet()
            for f in files:
                fs.add(f)
            fs.write(tmp)
            fs_write = time.perf_counter() - t0
            shutil.rmtree(tmp, ignore_errors=True)
        sub = args.out / "sub"
        shutil.rmtree(sub, ignore_errors=True)
        for f in files:
            dest = sub / f.relative_to(media)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        mine = timed([*dcmcli, "create", "-q", "DICOMDIR", "DICOM"], sub, env)
        print(f"pydicom FileSet adding and writing {len(files)} files: {fs_write:.2f} s; dcmcli create {mine:.2f} s")
    return 0


def dcmread_records(path: Path):  # type: ignore[no-untyped-def]
    from dcmcli.media.dicomdir import read_dicomdir

    return read_dicomdir(path).walk()


if __name__ == "__main__":
    sys.exit(main())
