"""dcmcli storescp: receive objects (C-STORE SCP) and write them to disk."""

from __future__ import annotations

import signal
import threading
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import Common, dcmcli_command
from dcmcli.errors import ExitCode
from dcmcli.net.peer import validate_ae_title, validate_port
from dcmcli.net.storescp import DUPLICATE_POLICIES, LAYOUTS, Received, ServerOptions, StoreServer, listening_info
from dcmcli.uids import all_transfer_syntaxes, parse_transfer_syntax, uid_name


Layout = Enum("Layout", {name: name for name in LAYOUTS}, type=str)  # type: ignore[misc]
OnDuplicate = Enum("OnDuplicate", {name: name for name in DUPLICATE_POLICIES}, type=str)  # type: ignore[misc]


@dcmcli_command(app, "storescp", network="scp", default_aet="STORESCP")
def storescp(
    common: Common,
    port: Annotated[str, typer.Argument(metavar="PORT", help="TCP port to listen on (0: any free port, printed).")],
    output_directory: Annotated[Path, typer.Option("-od", "--output-directory", metavar="DIR",
                                                   help="Write received objects below DIR.")] = Path("."),
    bind: Annotated[str, typer.Option("--bind", metavar="ADDRESS",
                                      help="Address to listen on (default: all IPv4 addresses); :: for IPv6.")] = "",
    layout: Annotated[Layout, typer.Option("--layout",  # type: ignore[valid-type]
                                           help="Output layout: flat (default), study (study/series folders), "
                                                "patient (patient/study/series).")] = "flat",  # type: ignore[assignment]
    template: Annotated[str | None, typer.Option(
        "--template", metavar="TEMPLATE",
        help="Attribute template for file names, e.g. {PatientID}/{StudyInstanceUID}/{SOPInstanceUID}.dcm")] = None,
    on_duplicate: Annotated[OnDuplicate, typer.Option(  # type: ignore[valid-type]
        "--on-duplicate", help="A SOP instance that is already stored: overwrite (default), "
                               "keep the first, rename the new one, or reject (0111).")] = "overwrite",  # type: ignore[assignment]
    promiscuous: Annotated[bool, typer.Option("-pm", "--promiscuous",
                                              help="Also accept unknown and private storage SOP classes.")] = False,
    accept_ts: Annotated[list[str] | None, typer.Option(
        "--accept-ts", metavar="SYNTAX",
        help="Accept only these transfer syntaxes, in this order of preference (repeatable). "
             "Default: every syntax pydicom knows, compressed first (as DCMTK +xa).")] = None,
    allow_calling: Annotated[list[str] | None, typer.Option(
        "--allow-calling", metavar="AETITLE", help="Accept only these calling AE titles (repeatable).")] = None,
    require_called: Annotated[bool, typer.Option(
        "--require-called", help="Reject associations whose called AE title is not -aet.")] = False,
    max_associations: Annotated[int, typer.Option("--max-associations", min=1, metavar="N",
                                                  help="Simultaneous associations; more are rejected.")] = 10,
    exec_on_reception: Annotated[str | None, typer.Option(
        "-xcr", "--exec-on-reception", metavar="COMMAND",
        help="Run COMMAND after each object (#p dir, #f file, #a calling AE, #c called AE, #r peer); no shell.")] = None,
    exec_on_eostudy: Annotated[str | None, typer.Option(
        "-xcs", "--exec-on-eostudy", metavar="COMMAND",
        help="Run COMMAND when a study is complete (no object for --eostudy-timeout); placeholders as -xcr.")] = None,
    eostudy_timeout: Annotated[float, typer.Option("-tos", "--eostudy-timeout", min=0.1, metavar="SECONDS",
                                                   help="Seconds without objects that end a study.")] = 30.0,
    shutdown_timeout: Annotated[float, typer.Option(
        "--shutdown-timeout", min=0, metavar="SECONDS",
        help="On SIGINT/SIGTERM, wait this long for associations in flight before aborting them.")] = 30.0,
    ignore: Annotated[bool, typer.Option("--ignore", help="Receive and acknowledge, but store nothing.")] = False,
    store_as: Annotated[str | None, typer.Option(
        "--store-as", metavar="SYNTAX",
        help="Store received objects in this transfer syntax (e.g. jpeg-ls-lossless, ele); an object that "
             "cannot be converted is stored as received, with a warning. A lossy syntax keeps the SOP "
             "Instance UID (marked Lossy Image Compression 01).")] = None,
) -> int:
    """Receive DICOM objects and write them as received, atomically, below -od.

    Usage as in DCMTK: dcmcli storescp OPTIONS port
    """
    out = common.out
    syntaxes = [parse_transfer_syntax(t) for t in accept_ts] if accept_ts else all_transfer_syntaxes()
    options = ServerOptions(
        port=validate_port(port), output_dir=output_directory, bind=bind,
        template=template or LAYOUTS[Layout(layout).value], duplicates=OnDuplicate(on_duplicate).value, promiscuous=promiscuous,
        transfer_syntaxes=syntaxes,
        allowed_calling=[validate_ae_title(a, "calling AE title (--allow-calling)") for a in (allow_calling or [])],
        require_called=require_called, max_associations=max_associations,
        exec_on_reception=exec_on_reception, exec_on_eostudy=exec_on_eostudy,
        eostudy_timeout=eostudy_timeout, shutdown_timeout=shutdown_timeout, ignore=ignore,
        store_as=parse_transfer_syntax(store_as) if store_as else None)

    def on_received(r: Received) -> None:
        if r.status == 0:
            stored = (f", stored as {uid_name(r.stored_transfer_syntax)}"
                      if r.stored_transfer_syntax and r.stored_transfer_syntax != r.transfer_syntax else "")
            human = (f"received {r.path or r.sop_instance_uid} ({uid_name(r.sop_class_uid)}, "
                     f"{uid_name(r.transfer_syntax)}{stored}) from {r.calling_aet}, {r.size} bytes")
            out.emit("received", r.as_dict, human if out.verbosity >= 0 else None)
        else:
            out.emit("received", r.as_dict,
                     f"[red]refused[/] {r.sop_instance_uid} from {r.calling_aet}: {r.message} (0x{r.status:04X})")

    def on_log(level: str, message: str) -> None:
        {"debug": out.debug, "warning": out.warn}.get(level, out.error)(message)

    server = StoreServer(common.settings, options, on_received=on_received, on_log=on_log)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        info = listening_info(server)
        out.emit("listening", info, f"listening on {info['bind']}:{info['port']} as {info['ae_title']}, "
                                    f"writing to {info['output_dir']}")
        stop.wait()
        out.info("stopping: no new associations; waiting for those in flight")
        aborted = server.stop()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if server.server is not None:
            server.stop(0)
    out.emit("stopped", {"received": server.count, "failed": server.failures, "aborted_associations": aborted},
             f"stopped: {server.count} objects received, {server.failures} refused"
             + (f", {aborted} associations aborted" if aborted else ""))
    return int(ExitCode.OK)
