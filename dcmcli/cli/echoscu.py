"""dcmcli echoscu: C-ECHO, and a probe of the storage SOP classes a peer accepts."""

from __future__ import annotations

import statistics
import time
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import Common, CommonExtNeg, PeerArgument, RelatedGeneral, common_extended_options, dcmcli_command
from dcmcli.cli.report import show_report
from dcmcli.errors import ExitCode, UsageError
from dcmcli.net.services.echo import echo, probe
from dcmcli.net.peer import parse_peer
from dcmcli.uids import parse_sop_class, parse_transfer_syntax, storage_sop_classes, uid_name
from dcmcli.status import Category

PROBE_DEFAULT_TS = ["ile", "ele", "rle", "jpeg-baseline", "jpeg-lossless", "jpeg-ls-lossless", "j2k-lossless", "j2k"]
#: the same, as UIDs, is what the conformance statement says (services/echo.py PROBE_SYNTAXES); a test checks both agree


#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('Check that a PACS answers (DCMTK: echoscu -aec ARCHIVE pacs 104).',
     'dcmcli echoscu -aec ARCHIVE pacs 104'),
    ('The same, with the called AE title in the peer argument, and 10 round-trip times.',
     'dcmcli echoscu -r 10 ARCHIVE@pacs:104'),
    ('Which storage SOP classes and transfer syntaxes does the peer accept?',
     'dcmcli echoscu --propose-storage -v pacs 104'),
    ('Would the archive store a private SOP class sent as storage (SOP Class Common Extended Negotiation)?',
     'dcmcli echoscu --propose 1.2.826.0.1.3680043.8.498.77.1 -cen --related-general '
     '1.2.826.0.1.3680043.8.498.77.1=SecondaryCaptureImageStorage pacs 104'),
    ('Script it: JSON Lines, one event per line.',
     'dcmcli echoscu --json pacs 104 | jq -c \'select(.event=="echo")\''),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["association", "echo", "probe", "probe-class", "summary"]


@dcmcli_command(app, "echoscu", network="scu", default_aet="ECHOSCU")
def echoscu(
    common: Common,
    peer: PeerArgument,
    port: Annotated[str | None, typer.Argument(metavar="PORT", help="TCP port (unless PEER has :port).")] = None,
    repeat: Annotated[int, typer.Option("-r", "--repeat", min=1, metavar="N", help="Send N C-ECHO requests.")] = 1,
    propose_storage: Annotated[bool, typer.Option(
        "--propose-storage", help="Probe: propose every storage SOP class and list what the peer accepts.")] = False,
    propose: Annotated[list[str] | None, typer.Option(
        "--propose", metavar="UID-OR-KEYWORD", help="Probe these SOP classes only (repeatable).")] = None,
    probe_ts: Annotated[list[str] | None, typer.Option(
        "--probe-ts", metavar="SYNTAX",
        help=f"Transfer syntaxes to probe (repeatable; default: {', '.join(PROBE_DEFAULT_TS)}).")] = None,
    common_ext_neg: CommonExtNeg = False,
    related_general: RelatedGeneral = None,
) -> int:
    """Verify a peer (C-ECHO) and measure round-trip times; optionally probe its storage support.

    Usage as in DCMTK: dcmcli echoscu OPTIONS peer port
    """
    target, rest = parse_peer(peer, [port] if port else [])
    out = common.out
    t0 = time.perf_counter()

    if (common_ext_neg or related_general) and not (propose_storage or propose):
        raise UsageError("-cen and --related-general go with the storage probe",
                         "add --propose-storage, or --propose SOPCLASS")
    if propose_storage or propose:
        sops = [parse_sop_class(p) for p in propose] if propose else storage_sop_classes()
        syntaxes = [parse_transfer_syntax(t) for t in (probe_ts or PROBE_DEFAULT_TS)]
        cen, related = common_extended_options(common_ext_neg, related_general)
        results = probe(common.settings, target, sops, syntaxes, on_report=lambda r: show_report(out, r),
                        common_extended=cen, related_general=related)
        accepted: dict[str, list[str]] = {}
        for r in results:
            out.emit("probe", r.as_dict())
            if r.accepted:
                accepted.setdefault(r.sop_class_uid, []).append(r.transfer_syntax)
        refused = [sop for sop in sops if sop not in accepted]
        for sop in sops:
            data = {"sop_class_uid": sop, "sop_class": uid_name(sop), "accepted": sop in accepted,
                    "accepted_transfer_syntaxes": accepted.get(sop, [])}
            if sop in accepted:
                out.emit("probe-class", data, f"[green]accepted[/] {uid_name(sop)}: "
                         + ", ".join(uid_name(t) for t in accepted[sop]))
            else:
                out.emit("probe-class", data, f"[red]refused[/]  {uid_name(sop)}" if out.verbosity > 0 else None)
        code = ExitCode.OK if accepted else ExitCode.NO_ACCEPTABLE_CONTEXT
        human = (f"{len(accepted)} of {len(sops)} SOP classes accepted "
                 f"({sum(1 for r in results if r.accepted)} of {len(results)} contexts)")
        if refused and out.verbosity <= 0:
            names = [uid_name(s) for s in refused]
            human += (f"; refused: {', '.join(names[:8])}" + (f" and {len(names) - 8} more (-v lists them)"
                                                             if len(names) > 8 else ""))
        out.emit("summary", {"mode": "probe", "peer": target, "proposed_sop_classes": len(sops),
                             "accepted_sop_classes": len(accepted), "refused_sop_classes": refused,
                             "proposed_contexts": len(results),
                             "accepted_contexts": sum(1 for r in results if r.accepted),
                             "seconds": round(time.perf_counter() - t0, 3), "exit_code": int(code)}, human)
        return int(code)

    def on_result(r) -> None:  # type: ignore[no-untyped-def]
        colour = "green" if r.status.category == Category.SUCCESS else "red"
        out.emit("echo", {"peer": target, **r.as_dict()},
                 f"C-ECHO {r.number} to {target}: [{colour}]{r.status.meaning}[/] ({r.status.hex}) "
                 f"in {r.rtt_ms:.2f} ms")

    results = echo(common.settings, target, repeat, on_report=lambda r: show_report(out, r), on_result=on_result)
    rtts = [r.rtt_ms for r in results]
    failed = [r for r in results if r.status.category != Category.SUCCESS]
    code = ExitCode.OPERATION_FAILED if failed else ExitCode.OK
    summary = {"mode": "echo", "peer": target, "sent": len(results), "failed": len(failed),
               "rtt_ms": {"min": round(min(rtts), 3), "mean": round(statistics.fmean(rtts), 3),
                          "max": round(max(rtts), 3)},
               "seconds": round(time.perf_counter() - t0, 3), "exit_code": int(code)}
    if repeat > 1:
        out.emit("summary", summary, f"{len(results)} echoes, {len(failed)} failed; round trip min/mean/max "
                 f"{min(rtts):.2f}/{statistics.fmean(rtts):.2f}/{max(rtts):.2f} ms")
    else:
        out.emit("summary", summary, None)
    return int(code)
