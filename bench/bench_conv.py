#!/usr/bin/env python
"""Time ``dcmcli dcmconv`` against DCMTK and GDCM compressing CT images losslessly.

Input: the images made by gen_conv_data.py (by default 100 CT images of
512x512, 16 bits allocated, 12 stored, Explicit VR Little Endian, a smooth
synthetic phantom with CT-like noise, about 52 MB; made on the first run if
missing). For each codec, in one run:

===================  =======================================  ==========================================
codec (dcmcli -t)    peer, one process per file               transfer syntax
===================  =======================================  ==========================================
jpeg-ls-lossless     ``/usr/bin/dcmcjpls IN OUT``             1.2.840.10008.1.2.4.80 JPEG-LS Lossless
rle                  ``/usr/bin/dcmcrle IN OUT``              1.2.840.10008.1.2.5 RLE Lossless
jpeg-lossless        ``/usr/bin/dcmcjpeg +e1 IN OUT``         1.2.840.10008.1.2.4.70 JPEG Lossless SV1
j2k-lossless         ``/usr/bin/gdcmconv --j2k IN OUT``       1.2.840.10008.1.2.4.90 JPEG 2000 Lossless
===================  =======================================  ==========================================

(``+e1``, lossless selection value 1, is dcmcjpeg's default; it is spelled
out. gdcmconv ``--j2k`` is lossless unless ``--irreversible``, ``-q`` or
``-r`` is given.) The peer runs the way its users run it: one process per
file, sequentially, and the whole loop is timed. dcmcli runs once over the
directory, ``dcmcli dcmconv -t CODEC -q IN_DIR OUT_DIR``, with its default
``--jobs`` (the number of cores) and again with ``--jobs 1`` (so the
comparison is also shown without parallelism). dcmcli is run as
``sys.executable -m dcmcli`` with this checkout first on PYTHONPATH, so the
time includes interpreter start-up (reported separately).

Every run writes into a fresh, empty output directory below ``--out`` (default
``bench/out/conv``, git-ignored; the last run's files are left there for
inspection). The timings are wall-clock, from start to exit. Not timed, after
each run: exit codes, one output per input, the transfer syntax of every
output (from its file meta), and for ``--verify N`` outputs (default 3) that
the decoded pixels equal the input's (pydicom with the pylibjpeg/pyjpegls
plugins; outputs are matched to inputs by SOP Instance UID, else by name). A
run that fails a check is reported as ERROR and left out of the medians.
Runs are interleaved (peer, dcmcli, dcmcli --jobs 1) ``--repeat`` times and
the median is reported.

Target: dcmcli (default ``--jobs``) takes no longer than the peer, for every
codec. The ``--jobs 1`` row is for information.

Usage::

    python bench/bench_conv.py                          # 100 images, all codecs, once
    python bench/bench_conv.py --repeat 3 --codecs rle,jpeg-ls-lossless
    python bench/bench_conv.py --count 20 --peers-only  # the peers alone (no dcmconv needed)

Options: ``--count N`` (default 100), ``--repeat R`` (default 1, median),
``--codecs LIST``, ``--data DIR`` (the input directory; default
``bench/data/conv/in``), ``--out DIR``, ``--verify N``, ``--peers-only``,
``--timeout S``, ``--json FILE`` (raw timings). Needs DCMTK (``apt-get install
dcmtk``) and GDCM's tools (``apt-get install libgdcm-tools``).
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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(REPO))  # git_state() imports dcmcli: this checkout
from _common import BenchError, git_state

DEFAULT_DATA = HERE / "data" / "conv" / "in"
DEFAULT_OUT = HERE / "out" / "conv"
DCMCJPLS = "/usr/bin/dcmcjpls"
DCMCRLE = "/usr/bin/dcmcrle"
DCMCJPEG = "/usr/bin/dcmcjpeg"
GDCMCONV = "/usr/bin/gdcmconv"
DCMDUMP = "/usr/bin/dcmdump"
DCMCLI = [sys.executable, "-m", "dcmcli"]
TARGET = 1.0  # dcmcli / peer


@dataclass(frozen=True)
class Codec:
    key: str  # dcmcli dcmconv -t value
    ts_uid: str
    ts_name: str
    peer_name: str
    peer_exe: str
    peer_args: tuple[str, ...]  # before IN OUT
    package: str  # Debian package of the peer

    def peer_cmd(self, src: Path, dst: Path) -> list[str]:
        return [self.peer_exe, *self.peer_args, str(src), str(dst)]


CODECS: dict[str, Codec] = {c.key: c for c in (
    Codec("jpeg-ls-lossless", "1.2.840.10008.1.2.4.80", "JPEG-LS Lossless",
          "DCMTK dcmcjpls", DCMCJPLS, (), "dcmtk"),
    Codec("rle", "1.2.840.10008.1.2.5", "RLE Lossless",
          "DCMTK dcmcrle", DCMCRLE, (), "dcmtk"),
    Codec("jpeg-lossless", "1.2.840.10008.1.2.4.70", "JPEG Lossless SV1",
          "DCMTK dcmcjpeg", DCMCJPEG, ("+e1",), "dcmtk"),
    Codec("j2k-lossless", "1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless",
          "GDCM gdcmconv", GDCMCONV, ("--j2k",), "libgdcm-tools"),
)}

# The configurations run for every codec, in this order; "peer" first.
CONFIGS = ("peer", "dcmcli", "dcmcli-j1")


def config_label(cfg: str, codec: Codec, cpus: int) -> str:
    if cfg == "peer":
        return f"{codec.peer_name} (one process per file)"
    if cfg == "dcmcli":
        return f"dcmcli dcmconv (default --jobs, {cpus} CPUs)"
    return "dcmcli dcmconv --jobs 1"


def dcmcli_cmd(codec: Codec, cfg: str, src: Path, dst: Path) -> list[str]:
    jobs = ["--jobs", "1"] if cfg == "dcmcli-j1" else []
    return [*DCMCLI, "dcmconv", "-t", codec.key, "-q", *jobs, str(src), str(dst)]


def child_env() -> dict[str, str]:
    """The environment of the dcmcli processes: this checkout first on
    PYTHONPATH (so ``-m dcmcli`` finds it from any working directory)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


# --------------------------------------------------------------------------
# Running processes


@dataclass
class Proc:
    rc: int | None  # None: killed after the timeout
    seconds: float


def run_proc(cmd: list[str], log: TextIO, timeout: float, env: dict[str, str] | None = None) -> Proc:
    """Run cmd to completion (output to the log), in its own process group so
    that it and any workers it starts are killed together on a timeout or an
    interrupt. Returns its exit code and wall-clock time."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    try:
        rc: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None
    except BaseException:
        _kill_group(proc)
        raise
    seconds = time.perf_counter() - t0
    if rc is None:
        _kill_group(proc)
    return Proc(rc, seconds)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    text = (out.stdout or out.stderr).strip()
    if not text:
        return f"? (exit {out.returncode})"
    # "$dcmtk: dcmcjpls v3.6.7 2022-04-22 $", "gdcmconv: gdcm 3.0.21 $Date$"
    return " ".join(text.splitlines()[0].replace("$Date$", "").replace("$", "").split())


def time_startup(repeat: int = 3) -> float | None:
    """Median wall-clock of ``python -m dcmcli --version`` (after one warm-up)."""
    times = []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        out = subprocess.run([*DCMCLI, "--version"], capture_output=True, env=child_env(), check=False)
        times.append(time.perf_counter() - t0)
        if out.returncode != 0:
            return None
    return statistics.median(times[1:])


def dcmconv_available() -> tuple[bool, str]:
    out = subprocess.run([*DCMCLI, "dcmconv", "--help"], capture_output=True, text=True,
                         env=child_env(), timeout=60, check=False)
    if out.returncode == 0:
        return True, ""
    lines = (out.stderr or out.stdout).strip().splitlines()
    return False, lines[-1] if lines else f"exit {out.returncode}"


# --------------------------------------------------------------------------
# Checking the outputs (not timed)


def output_files(directory: Path) -> list[Path]:
    """Regular non-hidden files below directory (hidden names are skipped, as
    are hidden directories: temporary files of a tool that writes atomically)."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return found


def read_uid(path: Path) -> str | None:
    import pydicom
    try:
        return str(pydicom.dcmread(path, specific_tags=["SOPInstanceUID"]).get("SOPInstanceUID"))
    except Exception:  # noqa: BLE001 -- not DICOM: matched by name instead
        return None


def check_outputs(codec: Codec, outputs: list[Path], inputs: list[Path],
                  by_uid: dict[str, Path], verify: int) -> tuple[list[str], list[str]]:
    """Problems with a run's outputs (count, transfer syntax, and for
    ``verify`` outputs spread over the set, the lossless round trip), and
    warnings (a new SOP Instance UID: DCMTK keeps it for lossless)."""
    import numpy as np
    import pydicom
    from pydicom.filereader import read_file_meta_info

    problems: list[str] = []
    warnings: list[str] = []
    if len(outputs) != len(inputs):
        problems.append(f"{len(outputs)} outputs for {len(inputs)} inputs")
    wrong: dict[str, int] = {}
    for p in outputs:
        try:
            ts = str(read_file_meta_info(p).get("TransferSyntaxUID", "none"))
        except Exception as exc:  # noqa: BLE001 -- reported as a problem
            ts = f"unreadable ({type(exc).__name__})"
        if ts != codec.ts_uid:
            wrong[ts] = wrong.get(ts, 0) + 1
    for ts, n in wrong.items():
        problems.append(f"{n} outputs in transfer syntax {ts}, expected {codec.ts_uid} ({codec.ts_name})")
    if verify and outputs and not wrong:
        by_name = {p.name: p for p in inputs}
        step = max(1, len(outputs) // verify)
        for out_path in outputs[::step][:verify]:
            try:
                out = pydicom.dcmread(out_path)
                uid = str(out.get("SOPInstanceUID"))
                ref_path = by_uid.get(uid) or by_name.get(out_path.name)
                if ref_path is None:
                    problems.append(f"{out_path.name}: no input with SOP Instance UID {uid} or this name")
                    continue
                if uid not in by_uid:
                    warnings.append("new SOP Instance UIDs (DCMTK and GDCM keep them when lossless)")
                ref = pydicom.dcmread(ref_path)
                if not np.array_equal(out.pixel_array, ref.pixel_array):
                    problems.append(f"{out_path.name}: decoded pixels differ from {ref_path.name}")
                for kw in ("BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                           "RescaleIntercept", "PhotometricInterpretation"):
                    if out.get(kw) != ref.get(kw):
                        problems.append(f"{out_path.name}: {kw} {out.get(kw)!r} != {ref.get(kw)!r}")
            except Exception as exc:  # noqa: BLE001 -- reported as a problem
                problems.append(f"{out_path.name}: cannot verify ({type(exc).__name__}: {exc})")
    return problems, sorted(set(warnings))


def dcmdump_ts(path: Path) -> str:
    """The (0002,0010) line of ``dcmdump -M +P 0002,0010`` for one file."""
    out = subprocess.run([DCMDUMP, "-M", "+P", "0002,0010", str(path)], capture_output=True, text=True,
                         check=False)
    return (out.stdout.strip() or out.stderr.strip() or f"exit {out.returncode}").splitlines()[0]


# --------------------------------------------------------------------------
# One run


@dataclass
class Run:
    seconds: float
    ok: bool
    out_bytes: int = 0
    n_out: int = 0
    note: str = ""
    warning: str = ""


@dataclass
class Bench:
    inputs: list[Path]
    by_uid: dict[str, Path]
    out_root: Path
    log: TextIO
    timeout: float
    verify: int
    commands: dict[str, str] = field(default_factory=dict)  # shown once per (codec, config)

    def run(self, codec: Codec, cfg: str) -> Run:
        outdir = self.out_root / codec.key / cfg
        if outdir.exists():
            shutil.rmtree(outdir)
        outdir.mkdir(parents=True)
        self.log.write(f"\n=== {codec.key} {cfg} -> {outdir}\n")
        self.log.flush()
        notes: list[str] = []
        if cfg == "peer":
            failures = []
            t0 = time.perf_counter()  # the whole loop, as a shell loop would be timed
            for src in self.inputs:
                res = run_proc(codec.peer_cmd(src, outdir / src.name), self.log, self.timeout)
                if res.rc != 0:
                    failures.append(f"{src.name}: {'timeout' if res.rc is None else f'exit {res.rc}'}")
            seconds = time.perf_counter() - t0
            self.commands.setdefault(f"{codec.key}/{cfg}", " ".join(
                codec.peer_cmd(Path("IN_DIR") / "FILE.dcm", Path("OUT_DIR") / "FILE.dcm"))
                + f"   (x{len(self.inputs)}, sequential)")
            if failures:
                notes.append(f"{len(failures)} peer calls failed (first: {failures[0]})")
        else:
            cmd = dcmcli_cmd(codec, cfg, self.inputs[0].parent, outdir)
            self.commands.setdefault(f"{codec.key}/{cfg}", " ".join(
                dcmcli_cmd(codec, cfg, Path("IN_DIR"), Path("OUT_DIR"))))
            self.log.write(" ".join(cmd) + "\n")
            self.log.flush()
            res = run_proc(cmd, self.log, self.timeout, child_env())
            seconds = res.seconds
            if res.rc != 0:
                notes.append(f"killed after {self.timeout} s" if res.rc is None else f"exit {res.rc}")
        outputs = output_files(outdir)
        out_bytes = sum(p.stat().st_size for p in outputs)
        problems, warnings = check_outputs(codec, outputs, self.inputs, self.by_uid, self.verify)
        notes += problems
        self.log.write(f"--- {seconds:.3f} s, {len(outputs)} outputs, {out_bytes} bytes, "
                       f"problems {notes}, warnings {warnings}\n")
        self.log.flush()
        os.sync()  # flush this run's writes so that they do not slow the next run
        return Run(seconds, not notes, out_bytes, len(outputs), "; ".join(notes), "; ".join(warnings))


# --------------------------------------------------------------------------
# Report


def med(runs: list[Run], attr: str) -> float | None:
    ok = [getattr(r, attr) for r in runs if r.ok]
    return statistics.median(ok) if ok else None


def fmt_table(rows: list[list[str]], header: list[str], left: int = 2) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def prepare_input(data: Path, count: int) -> list[Path]:
    """The input files; generated (gen_conv_data.py) when the directory is the
    default one or missing/empty, and only then (it is emptied first)."""
    files = sorted(data.glob("*.dcm"))
    if len(files) == count:
        return files
    if files and data.resolve() != DEFAULT_DATA.resolve():
        raise BenchError(f"{data} holds {len(files)} *.dcm files, not {count}; make them with "
                         f"python bench/gen_conv_data.py --data {data} --count {count}")
    from gen_conv_data import generate
    generate(data, count, force=True)
    return sorted(data.glob("*.dcm"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100, metavar="N", help="number of images (default 100)")
    ap.add_argument("--repeat", type=int, default=1, metavar="R", help="runs per configuration (median; default 1)")
    ap.add_argument("--codecs", default=",".join(CODECS),
                    help=f"comma-separated (default all: {','.join(CODECS)})")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                    help=f"input directory (default {DEFAULT_DATA.relative_to(REPO)}; made if missing)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                    help=f"output root (default {DEFAULT_OUT.relative_to(REPO)}); "
                         "each run writes to DIR/CODEC/CONFIG, emptied first")
    ap.add_argument("--verify", type=int, default=3, metavar="N",
                    help="decode N outputs per run and compare with the input (default 3; 0: off)")
    ap.add_argument("--peers-only", action="store_true", help="run the peers only (no dcmcli)")
    ap.add_argument("--timeout", type=float, default=900.0, metavar="S",
                    help="kill a dcmcli run, or one peer call, after S seconds (default 900)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the raw timings as JSON")
    args = ap.parse_args(argv)
    codecs = [c for c in args.codecs.split(",") if c]
    for c in codecs:
        if c not in CODECS:
            ap.error(f"unknown codec {c!r} (known: {', '.join(CODECS)})")
    if args.count < 1 or args.repeat < 1 or args.verify < 0:
        ap.error("--count and --repeat must be >= 1, --verify >= 0")
    for exe, pkg in {CODECS[c].peer_exe: CODECS[c].package for c in codecs}.items():
        if not os.access(exe, os.X_OK):
            print(f"error: {exe} not found (apt-get install {pkg})", file=sys.stderr)
            return 2
    cpus = os.cpu_count() or 1

    try:
        inputs = prepare_input(args.data, args.count)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    in_bytes = sum(len(p.read_bytes()) for p in inputs)  # also warms the page cache
    by_uid = {uid: p for p in inputs if (uid := read_uid(p))}

    configs = ["peer"] if args.peers_only else list(CONFIGS)
    dcmconv_note = ""
    startup = None
    if not args.peers_only:
        ok, why = dcmconv_available()
        if not ok:
            dcmconv_note = f"`dcmcli dcmconv --help` fails: {why}"
            configs = ["peer"]
        startup = time_startup()

    print(f"dcmcli source: {git_state()}")
    print(f"{cpus} CPUs; Python {sys.version.split()[0]}; repeats {args.repeat}; "
          f"dcmcli start-up (`python -m dcmcli --version`): "
          f"{'-' if startup is None else f'{startup:.3f} s'}")
    print("peers: " + "; ".join(sorted({first_line([CODECS[c].peer_exe, "--version"]) for c in codecs})))
    print(f"input: {len(inputs)} files in {args.data}, {in_bytes / 1e6:.1f} MB "
          f"(512x512, 16 bits allocated, 12 stored, Explicit VR Little Endian)")
    if dcmconv_note:
        print(f"NOTE: dcmcli side skipped, {dcmconv_note}")
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "bench_conv.log"

    results: dict[str, dict[str, list[Run]]] = {c: {k: [] for k in configs} for c in codecs}
    with open(log_path, "w") as log:
        bench = Bench(inputs, by_uid, args.out, log, args.timeout, args.verify)
        for rep in range(args.repeat):
            for c in codecs:
                for k in configs:
                    run = bench.run(CODECS[c], k)
                    results[c][k].append(run)
                    print(f"  run {rep + 1}/{args.repeat} {c:17s} {config_label(k, CODECS[c], cpus):44s} "
                          f"{run.seconds:8.3f} s  {'ok' if run.ok else 'ERROR: ' + run.note}"
                          f"{'  (warning: ' + run.warning + ')' if run.warning else ''}", flush=True)

    print("\ncommands:")
    for key, cmd in bench.commands.items():
        print(f"  {key:28s} {cmd}")
    print("\ntransfer syntax of the first output (dcmdump -M +P 0002,0010):")
    for c in codecs:
        for k in configs:
            outs = output_files(args.out / c / k)
            print(f"  {c + '/' + k:28s} {dcmdump_ts(outs[0]) if outs else '(no output)'}")

    header = ["codec", "tool", "seconds", "vs peer", "target", "result", "files/s",
              "output MB", "compression", "ok runs"]
    rows: list[list[str]] = []
    all_ok = True
    for c in codecs:
        peer_s = med(results[c]["peer"], "seconds")
        for k in configs:
            runs = results[c][k]
            s, nbytes = med(runs, "seconds"), med(runs, "out_bytes")
            n_ok = sum(r.ok for r in runs)
            ratio = target = verdict = "-"
            if k != "peer" and s is not None and peer_s:
                r = s / peer_s
                ratio, target = f"{r:.2f}x", f"<= {TARGET:.2f}x"
                verdict = "pass" if r <= TARGET else "FAIL"
                if k == "dcmcli" and r > TARGET:
                    all_ok = False
                if k != "dcmcli":  # information only
                    target, verdict = f"({target})", f"({verdict})"
            if n_ok < len(runs):
                verdict, all_ok = "ERROR", False
            rows.append([c if k == "peer" else "", config_label(k, CODECS[c], cpus),
                         "-" if s is None else f"{s:.3f}", ratio, target, verdict,
                         "-" if not s else f"{len(inputs) / s:.1f}",
                         "-" if nbytes is None else f"{nbytes / 1e6:.2f}",
                         "-" if not nbytes else f"{in_bytes / nbytes:.2f}:1",
                         f"{n_ok}/{len(runs)}"])
    print(f"\nMedian of the successful runs out of {args.repeat}; wall-clock seconds for "
          f"{len(inputs)} files ({in_bytes / 1e6:.1f} MB in); vs peer = dcmcli / peer; "
          f"compression = input bytes / output bytes (whole files); (...) = not part of the target.")
    print(fmt_table(rows, header))
    for title, attr in (("errors (runs left out)", "note"), ("warnings", "warning")):
        seen = {(c, k, getattr(r, attr)): None for c in codecs for k in configs
                for r in results[c][k] if getattr(r, attr)}
        if seen:
            print(f"\n{title}, see {log_path}:")
            for c, k, text in seen:
                print(f"  {c} {k}: {text}")
    if args.json:
        args.json.write_text(json.dumps({
            "count": len(inputs), "input_bytes": in_bytes, "cpus": cpus, "repeat": args.repeat,
            "dcmcli_startup_s": startup, "dcmconv_note": dcmconv_note,
            "runs": {c: {k: [asdict(r) for r in results[c][k]] for k in configs} for c in codecs}},
            indent=1))
    if "dcmcli" in configs:
        print("\noverall (dcmcli default --jobs no slower than the peer for every codec, no failed runs):",
              "pass" if all_ok else "FAIL")
        return 0 if all_ok else 1
    print("\noverall: peers only" + (" (dcmcli dcmconv not available)" if dcmconv_note else "")
          + ("" if all_ok else ", with failed runs"))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
