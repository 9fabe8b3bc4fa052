"""dcmcli movescu: have a peer send objects to a destination (C-MOVE), optionally to a receiver of our own (+P)."""

from __future__ import annotations

from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import (CancelAfter, Common, FromFiles, PeerArgument, QueryFilesArgument, WarningsAsErrors,
                                dcmcli_command)
from dcmcli.cli.report import show_report
from dcmcli.cli.retrieving import (finish, identifiers_from_keys, nothing_to_retrieve, progress_bar,
                                   skip_pixel_imports_unless_converting)
from dcmcli.cli.serving import log_printer, received_printer
from dcmcli.net.peer import parse_peer, validate_ae_title, validate_port
from dcmcli.net.services.retrieve import (RetrieveOptions, identifiers_from_files, move, move_receiver,
                                          peer_addresses)


#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('Move a study to a third AE (DCMTK: movescu -aem WORKSTATION -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=...).',
     'dcmcli movescu -aec ARCHIVE -aem WORKSTATION pacs 104 -k StudyInstanceUID=1.2.3'),
    ('Move to ourselves: receive on port 11113 into ./in (the peer must know MOVESCU at this host, port 11113).',
     'dcmcli movescu -aet MOVESCU +P 11113 -od in --layout study pacs 104 -k StudyInstanceUID=1.2.3'),
    ('Every study of a patient (found by C-FIND first, then moved by UID).',
     'dcmcli movescu +P 11113 -od in pacs 104 -k PatientID=123'),
    ('Exactly the instances of some files.',
     'dcmcli movescu +P 11113 -od in --from-files old-copies/ pacs 104'),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["association", "listening", "progress", "received", "summary"]


@dcmcli_command(app, "movescu", network="scu", default_aet="MOVESCU", storage=True, query=True)
def movescu(
    common: Common,
    peer: PeerArgument,
    args: QueryFilesArgument = None,
    move_destination: Annotated[str | None, typer.Option(
        "-aem", "--move", metavar="AETITLE", help="Move destination AE title (default: my AE title, -aet).")] = None,
    port: Annotated[int | None, typer.Option(
        "+P", "--port", min=0, max=65535, metavar="PORT",
        help="Receive the objects here myself: a storage SCP on PORT for the duration of the move, accepting "
             "only the peer's address (storage options as storescp).")] = None,
    any_sender: Annotated[bool, typer.Option(
        "--any-sender", help="With +P, accept sub-associations from any address, not only the peer's.")] = False,
    from_files: FromFiles = None,
    cancel_after: CancelAfter = None,
    warnings_as_errors: WarningsAsErrors = False,
) -> int:
    """Ask a peer to send objects to a move destination (C-MOVE); +P receives them here.

    Exit codes: a failure status, or any failed sub-operation (or, with +P, an object that never arrived): 66;
    warnings only: 0 (67 with --warnings-as-errors). Usage as in DCMTK: dcmcli movescu OPTIONS peer port [query-file...]
    """
    out = common.out
    assert common.query is not None and common.writer is not None
    skip_pixel_imports_unless_converting(common)
    target, files = parse_peer(peer, list(args or []))
    model, sop_class = common.query.resolve("move")
    destination = validate_ae_title(move_destination or common.settings.calling_aet, "move destination (-aem)")
    if from_files:
        identifiers = identifiers_from_files(from_files, model)
    else:
        identifier, identifiers = identifiers_from_keys(common, target, model, files)
        if not identifiers:
            return nothing_to_retrieve(out, "C-MOVE")
    if common.debug:
        for ident in identifiers:
            out.debug(f"identifier:\n{ident}")
    receiver = None
    if port is not None:
        receiver = move_receiver(common.settings, validate_port(port), common.writer,
                                None if any_sender else peer_addresses(target),
                                on_received=received_printer(out), on_log=log_printer(out),
                                on_association=lambda r: show_report(out, r))
        bound = receiver.start()
        out.emit("listening", {**receiver.listening_info(), "ae_title": destination},
                 f"receiving on port {bound} as {destination}, writing to {common.writer.output_dir}"
                 if out.verbosity > 0 else None)
    try:
        with progress_bar(out, f"moving to {destination}") as on_progress:
            outcome = move(common.settings, target, sop_class, identifiers, destination,
                           RetrieveOptions(cancel_after=cancel_after), receiver=receiver,
                           on_report=lambda r: show_report(out, r), on_progress=on_progress)
    finally:
        if receiver is not None and receiver.listening:
            receiver.stop(0)
    return finish(out, outcome, "C-MOVE", receiving=receiver is not None, warnings_as_errors=warnings_as_errors)
