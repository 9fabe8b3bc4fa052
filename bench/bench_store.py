#!/usr/bin/env python
"""Time dcmcli storescu -> dcmcli storescp against DCMTK storescu -> DCMTK storescp.

For each data set made by gen_data.py (``large``: 500 CT images of 512x512x16
bit, about 250 MB; ``small``: 2000 CT images of about 40 KB), in one run:

* DCMTK 3.6.7 at its best settings: ``TCP_NODELAY=1`` in the environment and
  ``-pdu 131072`` on both ends (``/usr/bin/storescp``, ``/usr/bin/storescu +sd``);
* dcmcli with its defaults (the measured configuration for the targets);
* dcmcli with ``-pdu 131072`` on both ends;
* dcmcli storescu ``--jobs 2`` and ``--jobs 4`` (default PDU), extra rows.

Every run starts a fresh receiver on a free port writing to a fresh directory
on disk, waits for it by polling a TCP connect, times the *sender* process
wall-clock from start to exit (this is the measure, so interpreter start-up is
included; it is reported separately by timing ``dcmcli --version``), then
polls the output directory until every file has arrived (the time until then,
counted from the sender's start, is the "receiver-included" time), checks the
count, stops the receiver (SIGTERM, wait) and removes the output. Runs of the
different configurations are interleaved, ``--repeat`` times (default 3), and
the median is reported. Ratios are dcmcli / DCMTK (single association).

Targets (from the issue): large files at most 1.5x DCMTK's time, small files
at most 2.5x.

Usage::

    python bench/gen_data.py && python bench/bench_store.py
    python bench/gen_data.py --large 50 --small 200 && python bench/bench_store.py --repeat 1
    git archive HEAD~1 dcmcli | tar -x -C /tmp/base  # a change against its base, same rounds:
    python bench/bench_store.py --also /tmp/base --configs dcmtk,dcmcli

Options: ``--sets large,small``, ``--repeat N``, ``--configs dcmtk,dcmcli,...``
(see ``--help``), ``--data DIR``, ``--out DIR`` (where the temporary output
directories are made; default ``bench/out``, git-ignored), ``--json FILE``
(write all raw timings), ``--pycache DIR`` (let the dcmcli processes cache
their compiled modules even where PYTHONDONTWRITEBYTECODE=1 is set, as an
installed package would; the default measures the environment as it is).
dcmcli is run as ``sys.executable -m dcmcli`` with this checkout first on
PYTHONPATH (from any working directory; an installed dcmcli is not used).
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
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # git_state(): this checkout
from _common import HOST, BenchError, free_port, git_state, run_reaped, wait_listening  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = HERE / "data"
DEFAULT_OUT = HERE / "out"
DCMTK_STORESCP = "/usr/bin/storescp"
DCMTK_STORESCU = "/usr/bin/storescu"
DCMCLI = [sys.executable, "-m", "dcmcli"]
BEST_PDU = "131072"
TARGETS = {"large": 1.5, "small": 2.5}


@dataclass
class Config:
    name: str
    kind: str  # "dcmtk" or "dcmcli"
    scp_args: list[str] = field(default_factory=list)
    scu_args: list[str] = field(default_factory=list)
    source: Path | None = None  # another dcmcli tree (--also); None: this checkout


CONFIGS = {
    "dcmtk": Config("DCMTK (-pdu 131072, TCP_NODELAY=1)", "dcmtk",
                    ["-pdu", BEST_PDU], ["-pdu", BEST_PDU]),
    "dcmcli": Config("dcmcli (defaults)", "dcmcli"),
    "dcmcli-pdu": Config("dcmcli -pdu 131072 both ends", "dcmcli",
                         ["-pdu", BEST_PDU], ["-pdu", BEST_PDU]),
    "dcmcli-j2": Config("dcmcli storescu --jobs 2", "dcmcli", [], ["--jobs", "2"]),
    "dcmcli-j4": Config("dcmcli storescu --jobs 4", "dcmcli", [], ["--jobs", "4"]),
}


def count_files(directory: Path) -> int:
    """Regular, non-hidden files below directory, ignoring hidden directories
    (dcmcli's .dcmcli-incoming and .part files)."""
    n = 0
    stack = [directory]
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except FileNotFoundError:
            continue
        for e in entries:
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))
            elif e.is_file(follow_symlinks=False):
                n += 1
    return n


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


PYCACHE: Path | None = None  # --pycache
#: --tls: the same options for both pairs (DCMTK and dcmcli spell them alike):
#: mutual TLS with a test CA's certificates, the default profile (BCP 195
#: non-downgrading) on both ends.
TLS_SCP: list[str] = []
TLS_SCU: list[str] = []


def make_pki(root: Path) -> tuple[list[str], list[str]]:
    """A test CA, a server certificate for 127.0.0.1 and a client one (openssl)."""
    root.mkdir(parents=True, exist_ok=True)

    def ssl(*a: str) -> None:
        subprocess.run(["openssl", *a], cwd=root, check=True, capture_output=True)

    if not (root / "client.pem").exists():
        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign")
        for who in ("server", "client"):
            ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
                "-subj", f"/CN={who}")
            (root / f"{who}.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
            ssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{who}.pem", "-days", "30", "-extfile", f"{who}.ext")
    ca = str(root / "ca.pem")
    return (["+tls", str(root / "server.key"), str(root / "server.pem"), "+cf", ca],
            ["+tls", str(root / "client.key"), str(root / "client.pem"), "+cf", ca])
SENDER_TIMEOUT = 600.0  # --timeout


def env_for(kind: str, source: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if kind == "dcmtk":
        env["TCP_NODELAY"] = "1"
        return env
    # this checkout's dcmcli (or --also's) from any working directory (not an installed one)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(source or REPO), env.get("PYTHONPATH")) if p)
    if PYCACHE is not None:
        # Let Python cache compiled modules (as an installed package would
        # have them) even where PYTHONDONTWRITEBYTECODE is set.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def start_receiver(cfg: Config, outdir: Path, logf, events: Path) -> tuple[subprocess.Popen, int]:
    """Start the receiver writing below outdir; return it and its port once a
    TCP connect succeeds. dcmcli's storescp picks its own port (PORT 0) and
    announces it in the first JSON line; its JSON events go to ``events`` (a
    file, so that a full pipe can never stall it)."""
    env = env_for(cfg.kind, cfg.source)
    if cfg.kind == "dcmtk":
        port = free_port()
        cmd = [DCMTK_STORESCP, *cfg.scp_args, *TLS_SCP, "-od", str(outdir), str(port)]
        proc = subprocess.Popen(cmd, stdout=logf, stderr=logf, stdin=subprocess.DEVNULL, env=env)
    else:
        cmd = [*DCMCLI, "storescp", "-q", "--json", "--bind", HOST, *cfg.scp_args, *TLS_SCP,
               "-od", str(outdir), "0"]
        with open(events, "w") as ev:
            proc = subprocess.Popen(cmd, stdout=ev, stderr=logf, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 20.0
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = events.read_text()
            if "\n" in text:
                line = text.split("\n", 1)[0]
                break
            time.sleep(0.02)
        try:
            event = json.loads(line)
            port = int(event["port"])
            assert event.get("event") == "listening"
        except Exception as exc:
            stop(proc)
            raise BenchError(f"dcmcli storescp: unexpected first line {line!r} "
                             f"(exit {proc.returncode}): {exc}") from exc
    try:
        wait_listening(port, proc)
    except BaseException:
        stop(proc)
        raise
    return proc, port


def sender_cmd(cfg: Config, port: int, src: Path) -> list[str]:
    if cfg.kind == "dcmtk":
        return [DCMTK_STORESCU, *cfg.scu_args, *TLS_SCU, "+sd", HOST, str(port), str(src)]
    return [*DCMCLI, "storescu", "-q", *cfg.scu_args, *TLS_SCU, HOST, str(port), str(src)]


@dataclass
class Run:
    sender_s: float
    received_s: float
    ok: bool
    note: str = ""


def one_run(cfg: Config, src: Path, expected: int, out_base: Path, log_path: Path) -> Run:
    workdir = Path(tempfile.mkdtemp(prefix=f"{cfg.kind}-", dir=out_base))
    outdir = workdir / "od"
    outdir.mkdir()
    events = workdir / "events.jsonl"
    notes = []
    with open(log_path, "a") as logf:
        logf.write(f"\n=== {cfg.name} {src} -> {outdir}\n")
        logf.flush()
        proc, port = start_receiver(cfg, outdir, logf, events)
        try:
            cmd = sender_cmd(cfg, port, src)
            logf.write(" ".join(cmd) + "\n")
            logf.flush()
            t0 = time.perf_counter()
            sender_s, _cpu, killed, code = run_reaped(cmd, SENDER_TIMEOUT, stdout=logf, stderr=logf,
                                                      env=env_for(cfg.kind, cfg.source))
            if killed:
                notes.append(f"sender killed after {SENDER_TIMEOUT} s")
            if code != 0:
                notes.append(f"sender exit {code}")
            # Every file should already be there (the C-STORE-RSP follows the
            # write); poll briefly in case it is not.
            deadline = time.perf_counter() + 30.0
            n = count_files(outdir)
            while n < expected and time.perf_counter() < deadline and proc.poll() is None:
                time.sleep(0.01)
                n = count_files(outdir)
            received_s = time.perf_counter() - t0
            if n != expected:
                notes.append(f"received {n} of {expected} files")
        finally:
            rc = stop(proc)
        if rc is None:
            notes.append("receiver did not stop on SIGTERM (killed)")
        elif cfg.kind == "dcmcli" and rc != 0:
            notes.append(f"receiver exit {rc} after SIGTERM")
        if cfg.kind == "dcmcli":
            # Cross-check the receiver's own summary and look for failures.
            received_events = stopped = None
            other = []
            for line in events.read_text().splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    other.append(line)
                    continue
                if ev.get("event") == "stopped":
                    stopped = ev
                elif ev.get("event") == "received":
                    received_events = (received_events or 0) + 1
                    if (ev.get("status") or {}).get("code") not in (0, None):
                        other.append(line)
                elif ev.get("event") not in ("listening", "association", "released"):
                    other.append(line)
            if stopped is None:
                notes.append("no 'stopped' event from dcmcli storescp")
            elif stopped.get("received") != expected or stopped.get("failed") or \
                    stopped.get("aborted_associations"):
                notes.append(f"storescp summary {stopped}")
            if other:
                logf.write("dcmcli storescp events:\n" + "\n".join(other[:20]) + "\n")
        logf.write(f"--- sender {sender_s:.3f} s, received {n} in {received_s:.3f} s, "
                   f"receiver exit {rc}, notes {notes}\n")
    shutil.rmtree(workdir, ignore_errors=True)
    os.sync()  # flush this run's writes so they do not slow the next one
    return Run(sender_s, received_s, not notes, "; ".join(notes))


def time_cmd(cmd: list[str], repeat: int, env: dict[str, str] | None = None) -> float:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def warm_cache(src: Path) -> int:
    total = 0
    for p in sorted(src.glob("*.dcm")):
        total += len(p.read_bytes())
    return total


def med(runs: list[Run], attr: str) -> float | None:
    """Median over the successful runs (None if there are none)."""
    ok = [getattr(r, attr) for r in runs if r.ok]
    return statistics.median(ok) if ok else None


def f3(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def fmt_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    def line(cells):
        return "  ".join(str(c).rjust(w) if i not in (0, 1) else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                    help="parent of the temporary output directories (on disk)")
    ap.add_argument("--sets", default="large,small", help="data sets (default large,small)")
    ap.add_argument("--repeat", type=int, default=3, metavar="N", help="runs per configuration")
    ap.add_argument("--configs", default=",".join(CONFIGS),
                    help=f"configurations (default all: {','.join(CONFIGS)}); "
                         "dcmtk and dcmcli are needed for the ratios")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write raw timings as JSON")
    ap.add_argument("--timeout", type=float, default=600.0, metavar="S",
                    help="kill a sender still running after S seconds (default 600)")
    ap.add_argument("--pycache", type=Path, metavar="DIR",
                    help="run dcmcli with PYTHONPYCACHEPREFIX=DIR and without "
                         "PYTHONDONTWRITEBYTECODE (compiled modules cached, as when installed)")
    ap.add_argument("--tls", action="store_true",
                    help="both pairs over mutual TLS (a test CA made with openssl in OUT/pki); target 1.5x")
    ap.add_argument("--also", type=Path, metavar="DIR",
                    help="also run the dcmcli package found in DIR (a folder holding dcmcli/, e.g. made by "
                         "`git archive COMMIT dcmcli | tar -x -C DIR`) in the same rounds, both ends, as rows "
                         "'KEY@also' without a verdict: a change's effect measured against its base under the "
                         "same load")
    args = ap.parse_args(argv)
    global PYCACHE, SENDER_TIMEOUT, TLS_SCP, TLS_SCU
    if args.tls:
        TLS_SCP, TLS_SCU = make_pki(args.out.resolve() / "pki")
    SENDER_TIMEOUT = args.timeout
    PYCACHE = args.pycache.resolve() if args.pycache else None

    sets = [s for s in args.sets.split(",") if s]
    cfg_keys = [c for c in args.configs.split(",") if c]
    for c in cfg_keys:
        if c not in CONFIGS:
            ap.error(f"unknown configuration {c!r}")
    for s in sets:
        if s not in TARGETS:
            ap.error(f"unknown data set {s!r}")
    if args.also:
        also = args.also.resolve()
        if not (also / "dcmcli" / "__init__.py").is_file():
            ap.error(f"--also {also}: no dcmcli/ package there")
        for c in [c for c in cfg_keys if CONFIGS[c].kind == "dcmcli"]:
            base = CONFIGS[c]
            CONFIGS[f"{c}@also"] = Config(f"{base.name} [--also]", base.kind, base.scp_args, base.scu_args, also)
            cfg_keys.insert(cfg_keys.index(c) + 1, f"{c}@also")
    for exe in (DCMTK_STORESCP, DCMTK_STORESCU):
        if not os.access(exe, os.X_OK):
            print(f"error: {exe} not found (apt-get install dcmtk)", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / "bench_store.log"
    log_path.write_text("")

    startup = time_cmd([*DCMCLI, "--version"], 5, env_for("dcmcli"))
    dcmtk_startup = time_cmd([DCMTK_STORESCU, "--version"], 5)
    print(f"interpreter + import start-up: `{sys.executable} -m dcmcli --version` "
          f"median {startup:.3f} s (5 runs); `storescu --version` {dcmtk_startup:.3f} s")
    print(f"dcmcli source: {git_state()}")
    print(f"{os.cpu_count()} CPUs; repeats {args.repeat}; log {log_path}; "
          f"PYTHONDONTWRITEBYTECODE={env_for('dcmcli').get('PYTHONDONTWRITEBYTECODE', '(unset)')}"
          f"{f'; PYTHONPYCACHEPREFIX={PYCACHE}' if PYCACHE else ''}")

    results: dict[str, dict[str, list[Run]]] = {}
    info: dict[str, tuple[int, int]] = {}
    for s in sets:
        src = args.data / s
        files = sorted(src.glob("*.dcm"))
        if not files:
            print(f"error: no data in {src}; run python bench/gen_data.py first", file=sys.stderr)
            return 2
        nbytes = warm_cache(src)
        info[s] = (len(files), nbytes)
        print(f"\n{s}: {len(files)} files, {nbytes / 1e6:.1f} MB")
        results[s] = {k: [] for k in cfg_keys}
        for rep in range(args.repeat):
            for k in cfg_keys:
                run = one_run(CONFIGS[k], src, len(files), args.out, log_path)
                results[s][k].append(run)
                print(f"  run {rep + 1}/{args.repeat} {CONFIGS[k].name:36s} sender {run.sender_s:7.3f} s"
                      f"  received {run.received_s:7.3f} s  {'ok' if run.ok else 'FAIL: ' + run.note}",
                      flush=True)

    header = ["set", "configuration", "sender s", "DCMTK s", "ratio", "target", "result",
              "recv-incl s", "DCMTK recv s", "MB/s", "ok runs"]
    rows = []
    all_ok = True
    for s in sets:
        n, nbytes = info[s]
        dcmtk_runs = results[s].get("dcmtk")
        d_send = med(dcmtk_runs, "sender_s") if dcmtk_runs else None
        d_recv = med(dcmtk_runs, "received_s") if dcmtk_runs else None
        for k in cfg_keys:
            runs = results[s][k]
            snd, rcv = med(runs, "sender_s"), med(runs, "received_s")
            n_ok = sum(r.ok for r in runs)
            ratio = target = verdict = "-"
            if k != "dcmtk" and d_send and snd:
                r = snd / d_send
                ratio = f"{r:.2f}x"
                if "@" not in k:  # --also rows: a comparison, no verdict
                    target = f"<= {TARGETS[s]}x"
                    verdict = "pass" if r <= TARGETS[s] else "FAIL"
                    if k == "dcmcli" and r > TARGETS[s]:
                        all_ok = False
            if n_ok < len(runs):
                verdict = f"ERROR ({verdict})" if verdict != "-" else "ERROR"
                all_ok = False
            rows.append([f"{s} ({n})", CONFIGS[k].name, f3(snd), f3(d_send), ratio, target, verdict,
                         f3(rcv), f3(d_recv), f"{nbytes / 1e6 / snd:.1f}" if snd else "-",
                         f"{n_ok}/{len(runs)}"])
    print()
    print(f"Median of the successful runs out of {args.repeat}; sender wall-clock is the measure "
          f"(includes dcmcli start-up; `dcmcli --version` takes {startup:.2f} s); ratio = dcmcli / DCMTK single association."
          + (f" ERROR: some runs failed (see errors below and {log_path})." if not all_ok and any(
              not r.ok for s in sets for k in cfg_keys for r in results[s][k]) else ""))
    print(fmt_table(rows, header))
    errors = [(s, k, r.note) for s in sets for k in cfg_keys for r in results[s][k] if not r.ok]
    if errors:
        print("\nerrors:")
        for s, k, note in errors:
            print(f"  {s} {k}: {note}")
    if args.json:
        args.json.write_text(json.dumps({
            "startup_s": startup, "pycache": str(PYCACHE) if PYCACHE else None, "dcmtk_startup_s": dcmtk_startup, "repeat": args.repeat,
            "sets": {s: {"files": info[s][0], "bytes": info[s][1],
                         "runs": {k: [r.__dict__ for r in results[s][k]] for k in cfg_keys}}
                     for s in sets}}, indent=1))
    compared = "dcmtk" in cfg_keys and "dcmcli" in cfg_keys
    print("\noverall (dcmcli defaults vs DCMTK, no failed runs):",
          ("pass" if all_ok else "FAIL") if compared else ("n/a" if all_ok else "FAIL (failed runs)"))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
