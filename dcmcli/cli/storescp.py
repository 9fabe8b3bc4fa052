"""dcmcli storescp: receive objects (C-STORE SCP) and write them to disk."""

from __future__ import annotations

from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import (DCMTK_PANEL, Common, WriteBig, WriteDeflated, WriteImplicit, WriteLittle,
                                dcmcli_command, written_syntax)
from dcmcli.cli.report import show_report
from dcmcli.cli.serving import log_printer, received_printer, serve
from dcmcli.errors import ExitCode, UsageError
from dcmcli.net.peer import validate_port
from dcmcli.net.services.storage import StorageOptions, StoreServer
from dcmcli.net.services.writer import LAYOUTS, Received, safe_component
from dcmcli.output import Output
from dcmcli.uids import all_transfer_syntaxes, parse_transfer_syntax




#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ("Receive on port 11112 into ./in, one folder per study (DCMTK: storescp -od in -su '' 11112).",
     'dcmcli storescp -od in --layout study 11112'),
    ('Only accept ARCHIVE as caller, reject duplicates, store as JPEG-LS lossless.',
     'dcmcli storescp --allow-calling ARCHIVE --on-duplicate reject --store-as jpeg-ls-lossless -od in 11112'),
    ('Run a command for every object and at the end of each study (no shell: #p folder, #f file).',
     "dcmcli storescp -xcr 'ln -s #p/#f /srv/new/' -xcs 'notify-study #p' -tos 20 -od in 11112"),
    ('Any free port, printed in the listening event.',
     'dcmcli storescp --json -od in 0'),
    ("Answer storage commitment for what it stored; reports to MODALITY on a new association once it released.",
     'dcmcli storescp --commitment --commitment-peer MODALITY=ct01:11113 -od in 11112'),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["listening", "association", "received", "commitment-served", "stopped"]


@dcmcli_command(app, "storescp", network="scp", default_aet="STORESCP", storage=True, listener=True)
def storescp(
    common: Common,
    port: Annotated[str, typer.Argument(metavar="PORT", help="TCP port to listen on (0: any free port, printed).")],
    commitment: Annotated[bool, typer.Option(
        "--commitment", help="Also be a Storage Commitment SCP for what this storescp stored since it started: the "
                             "report on the requester's association while it is open, else on a new one "
                             "(--commitment-peer).")] = False,
    commitment_peer: Annotated[list[str] | None, typer.Option(
        "--commitment-peer", metavar="AET=HOST:PORT",
        help="Where to send the commitment report for requests from AET when its association has ended "
             "(repeatable).")] = None,
    promiscuous: Annotated[bool, typer.Option("-pm", "--promiscuous",
                                              help="Also accept unknown and private storage SOP classes.")] = False,
    no_common_ext_neg: Annotated[bool, typer.Option(
        "--no-common-ext-neg",
        help="Refuse a SOP class we do not know even when the requestor's SOP Class Common Extended Negotiation "
             "says it is storage (service class Storage, or a storage class as its related general class); "
             "by default it is accepted and stored (PS3.4 B.4.1.2).")] = False,
    accept_ts: Annotated[list[str] | None, typer.Option(
        "--accept-ts", metavar="SYNTAX",
        help="Accept only these transfer syntaxes for storage, in this order of preference (repeatable). "
             "Default: every syntax pydicom knows, compressed first (as DCMTK +xa). Verification is always "
             "accepted in both little endian syntaxes.")] = None,
    accept_all: Annotated[bool, typer.Option(
        "+xa", "--accept-all", "+x=", "--prefer-uncompr", "+xe", "--prefer-little", "+xb", "--prefer-big", "+xs",
        "--prefer-lossless", "+xy", "--prefer-jpeg8", "+xx", "--prefer-jpeg12", "+xv", "--prefer-j2k-lossless",
        "+xw", "--prefer-j2k-lossy", "+xt", "--prefer-jls-lossless", "+xu", "--prefer-jls-lossy", "+xr",
        "--prefer-rle", "+xd", "--prefer-deflated", rich_help_panel=DCMTK_PANEL,
        help="Accepted for DCMTK scripts: every syntax is accepted already, and a sender's own compressed syntax "
             "is preferred (--accept-ts restricts and orders).")] = False,
    implicit_only: Annotated[bool, typer.Option("+xi", "--implicit", rich_help_panel=DCMTK_PANEL,
                                                help="Accept Implicit VR Little Endian only (as --accept-ts ile).")] = False,
    write_little: WriteLittle = False,
    write_big: WriteBig = False,
    write_implicit: WriteImplicit = False,
    write_deflated: WriteDeflated = False,
    sort_study: Annotated[str | None, typer.Option(
        "-su", "--sort-on-study-uid", "-ss", "--sort-conc-studies", metavar="PREFIX", rich_help_panel=DCMTK_PANEL,
        help="One folder per study, PREFIX_StudyInstanceUID (--template PREFIX_{StudyInstanceUID}/...).")] = None,
    sort_patient: Annotated[bool, typer.Option(
        "-sp", "--sort-on-patientname", rich_help_panel=DCMTK_PANEL,
        help="One folder per patient and study (--layout patient).")] = False,
    unique_names: Annotated[bool, typer.Option("+uf", "--unique-filenames", rich_help_panel=DCMTK_PANEL,
                                               help="Never overwrite: a second copy gets a new name "
                                                    "(--on-duplicate rename).")] = False,
    extension: Annotated[str | None, typer.Option("-fe", "--filename-extension", metavar="EXT",
                                                  rich_help_panel=DCMTK_PANEL,
                                                  help="File name extension instead of .dcm (e.g. '' or .DCM).")] = None,
) -> int:
    """Receive DICOM objects and write them as received, atomically, below -od.

    Usage as in DCMTK: dcmcli storescp OPTIONS port
    """
    out = common.out
    writer = common.writer
    assert writer is not None
    if accept_all:
        out.debug("+xa/+x?: dcmcli accepts every syntax and prefers the sender's compressed one already")
    if implicit_only:
        accept_ts = [*(accept_ts or []), "ile"]
    syntaxes = [parse_transfer_syntax(t) for t in accept_ts] if accept_ts else all_transfer_syntaxes()
    writer.store_as = written_syntax(write_little, write_implicit, write_big, write_deflated, writer.store_as,
                                     "--store-as")
    layouts = [x for x in (sort_study is not None, sort_patient, writer.template != LAYOUTS["flat"]) if x]
    if len(layouts) > 1:
        raise UsageError("more than one output layout given", "give one of --layout, --template, -su, -ss, -sp")
    if sort_study is not None:
        prefix = safe_component(sort_study, fallback="") if sort_study else ""
        writer.template = (f"{prefix}_" if prefix else "") + "{StudyInstanceUID}/{Modality}.{SOPInstanceUID}.dcm"
    elif sort_patient:
        writer.template = LAYOUTS["patient"]
    if unique_names:
        writer.duplicates = "rename"
    if extension is not None:
        if "/" in extension or "\\" in extension:
            raise UsageError(f"invalid file name extension {extension!r}", "give something like .dcm, or ''")
        if writer.template.endswith(".dcm"):
            writer.template = writer.template[:-4] + extension
    acceptor = common.acceptor
    assert acceptor is not None
    acceptor.port = validate_port(port)
    on_received = received_printer(out)
    extra = []
    if commitment or commitment_peer:
        from dcmcli.net.services.commitment import CommitmentIndex, CommitmentService, parse_commitment_peer

        if not commitment:
            raise UsageError("--commitment-peer goes with --commitment", "add --commitment")
        index = CommitmentIndex()
        extra.append(CommitmentService(index, common.settings, dict(map(parse_commitment_peer, commitment_peer or [])),
                                       on_commitment=commitment_printer(out)))
        show = on_received

        def on_received(r: Received) -> None:
            if r.status == 0 and r.path is not None:
                index.add(r.sop_instance_uid, r.sop_class_uid, str(r.path))
            show(r)
    server = StoreServer(common.settings, acceptor, writer,
                         StorageOptions(transfer_syntaxes=syntaxes, promiscuous=promiscuous,
                                        common_extended=not no_common_ext_neg),
                         on_received=on_received, on_log=log_printer(out),
                         on_association=lambda report: show_report(out, report), extra_services=extra)
    aborted = serve(out, server, lambda info: f"listening on {info['bind']}:{info['port']} as {info['ae_title']}, "
                                              f"writing to {info['output_dir']}")
    n = server.count
    out.emit("stopped", {"received": n, "failed": server.failures, "aborted_associations": aborted},
             f"stopped: {n} object{'s' if n != 1 else ''} received, {server.failures} refused"
             + (f", {aborted} association{'s' if aborted != 1 else ''} aborted" if aborted else ""))
    return int(ExitCode.OK)


def commitment_printer(out: Output):  # type: ignore[no-untyped-def]
    """How storescp --commitment shows a commitment request it answered."""

    def on_commitment(c) -> None:  # type: ignore[no-untyped-def]
        sent = {"same-association": "on the same association", "new-association": "on a new association"}.get(
            c.via or "", f"not sent ({c.error})")
        out.emit("commitment-served", c.as_dict,
                 f"storage commitment {c.transaction_uid} from {c.calling_aet}: {len(c.committed)} committed, "
                 f"{len(c.failed)} failed; report {sent}", plain=True)

    return on_commitment

