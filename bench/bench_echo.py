#!/usr/bin/env python
"""Time dcmcli echoscu against pynetdicom's own echoscu app (and DCMTK's).

Starts one DCMTK storescp (``/usr/bin/storescp``, ``TCP_NODELAY=1``), which
answers C-ECHO, on a free port of 127.0.0.1, then:

* times one process each of ``dcmcli echoscu HOST PORT -r 1`` and
  ``python -m pynetdicom echoscu HOST PORT`` (wall-clock from start to exit,
  interpreter start-up included), interleaved, ``--repeat`` times (default
  10), and prints the ratio of the medians (target: <= 1.0);
* for reference, the start-up alone (``dcmcli --version``; ``python -m
  pynetdicom echoscu --version HOST PORT``, which exits before connecting)
  and DCMTK's ``/usr/bin/echoscu`` per process;
* round trips: ``dcmcli echoscu -r 100 --json`` (its ``rtt_ms`` fields)
  against DCMTK ``echoscu --repeat 1000`` (per echo: (T(1000) - T(1)) / 999,
  medians of 5 processes; DCMTK is too fast for 100 to rise above the noise).

Usage::

    python bench/bench_echo.py
    python bench/bench_echo.py --repeat 20 --echoes 200

Both Python tools run as ``sys.executable -m ...``. ``--pycache DIR`` lets
them cache compiled modules even where PYTHONDONTWRITEBYTECODE=1 is set (as
an installed package would have them); by default the environment is used
as it is. The storescp is stopped
at the end (SIGTERM, wait), also on errors.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import HOST, free_port, git_state, wait_listening  # noqa: E402

DCMTK_STORESCP = "/usr/bin/storescp"
DCMTK_ECHOSCU = "/usr/bin/echoscu"
PY = sys.executable
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
PY_ENV: dict[str, str] | None = None  # None: inherit; see --pycache


def timed(cmd: list[str], env: dict[str, str] | None = None, capture: bool = False
          ) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    cp = subprocess.run(cmd, stdin=subprocess.DEVNULL, env=env, text=True,
                        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                        stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if cp.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {cp.returncode}: {cp.stderr.strip()[:500]}")
    return dt, cp


def stats(xs: list[float]) -> tuple[float, float, float]:
    return statistics.median(xs), min(xs), max(xs)


def fmt_table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10, metavar="N", help="processes per tool (default 10)")
    ap.add_argument("--echoes", type=int, default=100, metavar="N",
                    help="C-ECHOs in one association for the round-trip part (default 100)")
    ap.add_argument("--pycache", metavar="DIR",
                    help="run both Python tools with PYTHONPYCACHEPREFIX=DIR and without "
                         "PYTHONDONTWRITEBYTECODE (compiled modules cached, as when installed)")
    args = ap.parse_args(argv)
    if args.echoes < 2 or args.repeat < 1:
        ap.error("--echoes must be >= 2 and --repeat >= 1")
    global PY_ENV
    if args.pycache:
        PY_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        PY_ENV["PYTHONPYCACHEPREFIX"] = os.path.abspath(args.pycache)
    for exe in (DCMTK_STORESCP, DCMTK_ECHOSCU):
        if not os.access(exe, os.X_OK):
            print(f"error: {exe} not found (apt-get install dcmtk)", file=sys.stderr)
            return 2

    port = free_port()
    workdir = tempfile.mkdtemp(prefix="bench-echo-")
    scp = subprocess.Popen([DCMTK_STORESCP, "-od", workdir, str(port)], env=DCMTK_ENV,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, scp)
        return run(args, port)
    finally:
        scp.send_signal(signal.SIGTERM)
        try:
            scp.wait(10)
        except subprocess.TimeoutExpired:
            scp.kill()
            scp.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def run(args, port: int) -> int:
    p = str(port)
    dcmcli_echo = [PY, "-m", "dcmcli", "echoscu", HOST, p, "-r", "1"]
    pynd_echo = [PY, "-m", "pynetdicom", "echoscu", HOST, p]
    dcmtk_echo = [DCMTK_ECHOSCU, HOST, p]
    dcmcli_ver = [PY, "-m", "dcmcli", "--version"]
    pynd_ver = [PY, "-m", "pynetdicom", "echoscu", "--version", HOST, p]  # needs addr port
    cmds = {"dcmcli echoscu -r 1": (dcmcli_echo, PY_ENV),
            "python -m pynetdicom echoscu": (pynd_echo, PY_ENV),
            "DCMTK /usr/bin/echoscu": (dcmtk_echo, DCMTK_ENV),
            "start-up: dcmcli --version": (dcmcli_ver, PY_ENV),
            "start-up: pynetdicom echoscu --version": (pynd_ver, PY_ENV)}
    env = PY_ENV if PY_ENV is not None else os.environ
    print(f"DCMTK storescp (TCP_NODELAY=1) on {HOST}:{port}; {args.repeat} processes per tool, "
          f"interleaved; {os.cpu_count()} CPUs; "
          f"PYTHONDONTWRITEBYTECODE={env.get('PYTHONDONTWRITEBYTECODE', '(unset)')}"
          f"{'; PYTHONPYCACHEPREFIX=' + env['PYTHONPYCACHEPREFIX'] if 'PYTHONPYCACHEPREFIX' in env else ''}")
    print(f"dcmcli source: {git_state()}")
    for cmd, env in cmds.values():  # warm-up (page cache, .pyc), not counted
        timed(cmd, env)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(args.repeat):
        for k, (cmd, env) in cmds.items():
            times[k].append(timed(cmd, env)[0])

    rows = []
    for k, xs in times.items():
        m, lo, hi = stats(xs)
        rows.append([k, f"{m:.3f}", f"{lo:.3f}", f"{hi:.3f}", str(len(xs))])
    print()
    print("Wall-clock per process (s)")
    print(fmt_table(rows, ["command", "median", "min", "max", "runs"]))
    d = statistics.median(times["dcmcli echoscu -r 1"])
    q = statistics.median(times["python -m pynetdicom echoscu"])
    ratio = d / q
    verdict = "pass" if ratio <= 1.0 else "FAIL"
    print(f"\nratio dcmcli echoscu / pynetdicom echoscu = {d:.3f} / {q:.3f} = {ratio:.2f}x "
          f"(target <= 1.0x): {verdict}")
    sd = statistics.median(times["start-up: dcmcli --version"])
    sq = statistics.median(times["start-up: pynetdicom echoscu --version"])
    print(f"  echo process minus its --version process: dcmcli {d - sd:.3f} s, "
          f"pynetdicom {q - sq:.3f} s (a rough split only: --version may import less)")

    # Round trips within one association.
    n = args.echoes
    wall, cp = timed([PY, "-m", "dcmcli", "echoscu", "--json", HOST, p, "-r", str(n)], PY_ENV,
                     capture=True)
    rtts = []
    for line in cp.stdout.splitlines():
        ev = json.loads(line)
        if ev.get("event") == "echo":
            if ev.get("status", {}).get("code") != 0:
                print(f"warning: echo {ev.get('n')} status {ev.get('status')}")
            rtts.append(float(ev["rtt_ms"]))
    if not rtts:
        raise RuntimeError("dcmcli echoscu --json printed no echo events")
    if len(rtts) != n:
        print(f"warning: dcmcli echoscu reported {len(rtts)} echo events, expected {n}")
    nd = max(n, 1000)
    t1 = statistics.median(timed(dcmtk_echo, DCMTK_ENV)[0] for _ in range(5))
    tn = statistics.median(timed([DCMTK_ECHOSCU, "--repeat", str(nd), HOST, p], DCMTK_ENV)[0]
                           for _ in range(5))
    per_dcmtk_ms = (tn - t1) / (nd - 1) * 1000
    rows = [
        [f"dcmcli echoscu -r {n} (rtt_ms)", f"{statistics.median(rtts):.3f}",
         f"{statistics.fmean(rtts):.3f}", f"{min(rtts):.3f}", f"{max(rtts):.3f}", f"{wall:.3f}"],
        [f"DCMTK echoscu --repeat {nd} ((T{nd}-T1)/{nd - 1})", f"{per_dcmtk_ms:.3f}", "-", "-", "-",
         f"{tn:.3f}"],
    ]
    print("\nRound trip per C-ECHO in one association (ms); process wall-clock (s)")
    print(fmt_table(rows, ["tool", "median ms", "mean ms", "min ms", "max ms", "process s"]))
    if per_dcmtk_ms > 0:
        print(f"  dcmcli / DCMTK per-echo round trip: {statistics.median(rtts) / per_dcmtk_ms:.1f}x")
    return 0 if ratio <= 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
