"""dcmcli getscu: retrieve objects on our own association (C-GET) and store them like storescp."""

from __future__ import annotations

from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import (CancelAfter, Common, CommonExtNeg, FromFiles, PeerArgument, QueryFilesArgument,
                                RelatedGeneral, WarningsAsErrors, common_extended_options, dcmcli_command)
from dcmcli.cli.report import show_report
from dcmcli.cli.retrieving import (finish, identifiers_from_keys, nothing_to_retrieve, progress_bar,
                                   skip_pixel_imports_unless_converting)
from dcmcli.cli.serving import log_printer, received_printer
from dcmcli.net.peer import parse_peer
from dcmcli.net.services.retrieve import (Inventory, RetrieveOptions, get, identifiers_from_files,
                                          inventory_from_files, parse_store_tc, plan_storage)
from dcmcli.net.services.writer import StorageWriter
from dcmcli.uids import uid_name


#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('Retrieve a study on our own association (DCMTK: getscu -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=...).',
     'dcmcli getscu -aec ARCHIVE -od in pacs 104 -k StudyInstanceUID=1.2.3'),
    ('Choose the storage contexts exactly.',
     'dcmcli getscu --store-tc CTImageStorage:jpeg-ls-lossless,ele -od in pacs 104 -k StudyInstanceUID=1.2.3'),
    ('Headers only (Composite Instance Retrieve Without Bulk Data).',
     'dcmcli getscu --without-bulk-data -od headers pacs 104 -k StudyInstanceUID=1.2.3'),
    ('Store what arrives as JPEG 2000 lossless, one folder per series.',
     'dcmcli getscu --store-as j2k-lossless --layout study -od in pacs 104 -k PatientID=123'),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["association", "progress", "received", "summary"]


@dcmcli_command(app, "getscu", network="scu", default_aet="GETSCU", storage=True, query=True)
def getscu(
    common: Common,
    peer: PeerArgument,
    args: QueryFilesArgument = None,
    without_bulk_data: Annotated[bool, typer.Option(
        "--without-bulk-data", help="Composite Instance Retrieve Without Bulk Data (no pixel data and other bulk "
                                    "data).")] = False,
    store_tc: Annotated[list[str] | None, typer.Option(
        "--store-tc", metavar="SOPCLASS[:TS,...]",
        help="Propose exactly these storage contexts (repeatable), e.g. CTImageStorage:jpeg-ls-lossless,ele.")] = None,
    no_find: Annotated[bool, typer.Option(
        "--no-find", help="Do not ask first (C-FIND at IMAGE level) which SOP classes the objects have; propose the "
                          "common storage classes instead.")] = False,
    from_files: FromFiles = None,
    cancel_after: CancelAfter = None,
    warnings_as_errors: WarningsAsErrors = False,
    common_ext_neg: CommonExtNeg = False,
    related_general: RelatedGeneral = None,
) -> int:
    """Retrieve objects from a peer on this association (C-GET) and store them like storescp.

    The storage contexts come from a C-FIND at IMAGE level first, on the same association (which SOP classes the
    objects have), so any study fits 128 contexts, over several associations if it must. Exit codes as movescu.
    Usage as in DCMTK: dcmcli getscu OPTIONS peer port [query-file...]
    """
    out = common.out
    assert common.query is not None and common.writer is not None
    skip_pixel_imports_unless_converting(common)
    target, files = parse_peer(peer, list(args or []))
    cen, related = common_extended_options(common_ext_neg, related_general)
    model, sop_class = common.query.resolve("get", "without-bulk-data" if without_bulk_data else None)
    inv = None
    if from_files:
        identifiers = identifiers_from_files(from_files, model)
        identifier = identifiers[0] if len(identifiers) == 1 else None
        inv = inventory_from_files(from_files)  # the files say which classes and syntaxes come
        out.info(f"the files name {inv.matches} instance{'s' if inv.matches != 1 else ''} of {len(inv.classes)} "
                 f"SOP class{'es' if len(inv.classes) != 1 else ''}: " + ", ".join(uid_name(c) for c in inv.classes))
    else:
        identifier, identifiers = identifiers_from_keys(common, target, model, files)
        if not identifiers:
            return nothing_to_retrieve(out, "C-GET")
    if common.debug:
        for ident in identifiers:
            out.debug(f"identifier:\n{ident}")
    exact = parse_store_tc(store_tc) if store_tc else None
    # By default the first association asks (C-FIND at IMAGE level) which SOP classes come, then
    # C-GETs on it (the peer does not say) or on associations planned for them (it does).
    ask = (model, identifier) if exact is None and not no_find and identifier is not None and inv is None else None
    asked: list[Inventory | None] = []

    def on_inventory(found: Inventory | None) -> None:
        asked.append(found)
        if found is not None:
            out.info(f"the peer lists {found.matches} instance{'s' if found.matches != 1 else ''} of "
                     f"{len(found.classes)} SOP class{'es' if len(found.classes) != 1 else ''}: "
                     + ", ".join(uid_name(c) for c in found.classes))
        else:
            out.info("the peer does not say which SOP classes the objects have: proposing the common storage classes")

    if inv is not None and inv.matches == 0:
        return nothing_to_retrieve(out, "C-GET")
    plans = plan_storage(inv.classes if inv else None, inv.instances if inv else None, identifier, exact)
    writer = StorageWriter(common.writer, on_log=log_printer(out))
    writer.prepare()
    try:
        with progress_bar(out, f"retrieving from {target}") as on_progress:
            outcome = get(common.settings, target, sop_class, identifiers, plans, writer,
                          RetrieveOptions(cancel_after=cancel_after, common_extended=cen, related_general=related),
                          on_received=received_printer(out),
                          on_report=lambda r: show_report(out, r), on_progress=on_progress, on_log=log_printer(out),
                          ask=ask, on_inventory=on_inventory)
    finally:
        writer.close()
    if asked and asked[0] is not None and asked[0].matches == 0:
        return nothing_to_retrieve(out, "C-GET")
    return finish(out, outcome, "C-GET", receiving=True, warnings_as_errors=warnings_as_errors)
