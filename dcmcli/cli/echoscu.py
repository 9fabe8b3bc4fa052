"""dcmcli echoscu: C-ECHO, and a probe of the storage SOP classes a peer accepts."""

from __future__ import annotations

import statistics
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import Common, dcmcli_command
from dcmcli.cli.report import show_report
from dcmcli.errors import ExitCode
from dcmcli.net.services.echo import echo, probe
from dcmcli.net.peer import parse_peer
from dcmcli.uids import parse_sop_class, parse_transfer_syntax, storage_sop_classes, uid_name
from dcmcli.status import Category

PROBE_DEFAULT_TS = ["ile", "ele", "rle", "jpeg-baseline", "jpeg-lossless", "jpeg-ls-lossless", "j2k-lossless", "j2k"]


@dcmcli_command(app, "echoscu", network="scu", default_aet="ECHOSCU")
def echoscu(
    common: Common,
    peer: Annotated[str, typer.Argument(metavar="PEER", help="Host name or address, or [AET@]host:port.")],
    port: Annotated[str | None, typer.Argument(metavar="PORT", help="TCP port (unless PEER has :port).")] = None,
    repeat: Annotated[int, typer.Option("-r", "--repeat", min=1, metavar="N", help="Send N C-ECHO requests.")] = 1,
    propose_storage: Annotated[bool, typer.Option(
        "--propose-storage", help="Probe: propose every storage SOP class and list what the peer accepts.")] = False,
    propose: Annotated[list[str] | None, typer.Option(
        "--propose", metavar="UID-OR-KEYWORD", help="Probe these SOP classes only (repeatable).")] = None,
    probe_ts: Annotated[list[str] | None, typer.Option(
        "--probe-ts", metavar="SYNTAX",
        help=f"Transfer syntaxes to probe (repeatable; default: {', '.join(PROBE_DEFAULT_TS)}).")] = None,
) -> int:
    """Verify a peer (C-ECHO) and measure round-trip times; optionally probe its storage support.

    Usage as in DCMTK: dcmcli echoscu OPTIONS peer port
    """
    target, rest = parse_peer(peer, [port] if port else [])
    out = common.out

    if propose_storage or propose:
        sops = [parse_sop_class(p) for p in propose] if propose else storage_sop_classes()
        syntaxes = [parse_transfer_syntax(t) for t in (probe_ts or PROBE_DEFAULT_TS)]
        results = probe(common.settings, target, sops, syntaxes, on_report=lambda r: show_report(out, r))
        accepted: dict[str, list[str]] = {}
        for r in results:
            out.emit("probe", r.as_dict())
            if r.accepted:
                accepted.setdefault(r.sop_class_uid, []).append(r.transfer_syntax)
        for sop in sops:
            if sop in accepted:
                out.emit("probe-summary", {}, f"[green]accepted[/] {uid_name(sop)}: "
                         + ", ".join(uid_name(t) for t in accepted[sop]))
            elif out.verbosity > 0:
                out.emit("probe-summary", {}, f"[red]refused[/]  {uid_name(sop)}")
        out.emit("summary", {"proposed_sop_classes": len(sops), "accepted_sop_classes": len(accepted),
                             "proposed_contexts": len(results),
                             "accepted_contexts": sum(1 for r in results if r.accepted)},
                 f"{len(accepted)} of {len(sops)} SOP classes accepted "
                 f"({sum(1 for r in results if r.accepted)} of {len(results)} contexts)")
        return int(ExitCode.OK) if accepted else int(ExitCode.NO_ACCEPTABLE_CONTEXT)

    def on_result(r) -> None:  # type: ignore[no-untyped-def]
        colour = "green" if r.status.category == Category.SUCCESS else "red"
        out.emit("echo", {"peer": target, **r.as_dict()},
                 f"C-ECHO {r.number} to {target}: [{colour}]{r.status.meaning}[/] ({r.status.hex}) "
                 f"in {r.rtt_ms:.2f} ms")

    results = echo(common.settings, target, repeat, on_report=lambda r: show_report(out, r), on_result=on_result)
    rtts = [r.rtt_ms for r in results]
    failed = [r for r in results if r.status.category != Category.SUCCESS]
    summary = {"peer": target, "sent": len(results), "failed": len(failed),
               "rtt_ms": {"min": round(min(rtts), 3), "mean": round(statistics.fmean(rtts), 3),
                          "max": round(max(rtts), 3)}}
    if repeat > 1:
        out.emit("summary", summary, f"{len(results)} echoes, {len(failed)} failed; round trip min/mean/max "
                 f"{min(rtts):.2f}/{statistics.fmean(rtts):.2f}/{max(rtts):.2f} ms")
    else:
        out.emit("summary", summary, None)
    return int(ExitCode.OPERATION_FAILED) if failed else int(ExitCode.OK)

