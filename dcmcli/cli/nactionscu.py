"""dcmcli nactionscu: one N-ACTION (any SOP class), or a preset that does the
whole job: storage commitment (--commit), UPS state changes, cancellation
requests and subscriptions."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.nservice import failure_line, show_event, show_response, status_exit, write_out
from dcmcli.cli.options import (Common, DatasetFile, EventListenPort, PeerArgument, ResponseOut, SetKey,
                                WarningsAsErrors, dcmcli_command)
from dcmcli.cli.report import show_report
from dcmcli.errors import ExitCode, UsageError, worst
from dcmcli.net.peer import parse_peer
from dcmcli.output import Output

PRESETS = "Presets"

#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ("Does the archive commit what was sent? Report on this association or on a new one to port 11113 "
     "(the archive must know STGCMTSCU at this host and port).",
     "dcmcli nactionscu -aet STGCMTSCU --commit --port 11113 --wait 120 pacs 104 study/"),
    ("The same, one request per study, as JSON Lines.",
     "dcmcli nactionscu --json --commit --one-per-study --port 11113 pacs 104 exported/"),
    ("Any N-ACTION: Media Creation Management, initiate (action 1) on a media creation request made with ncreatescu.",
     "dcmcli nactionscu -s RequestPriority=HIGH media 104 MediaCreationManagement 1.2.3.4 1"),
    ("Claim a UPS (IN PROGRESS): the Transaction UID is printed; give it back to complete it.",
     "dcmcli nactionscu --ups-state 'IN PROGRESS' ris 104 1.2.3.4.5"),
    ("Complete it.",
     "dcmcli nactionscu --ups-state COMPLETED --transaction-uid 2.25.123 ris 104 1.2.3.4.5"),
    ("Subscribe to every UPS (global subscription) and print the event reports for ten minutes.",
     "dcmcli nactionscu --ups-subscribe --port 11113 --wait 600 ris 104"),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["association", "listening", "response", "event-report", "commitment", "summary"]


@dcmcli_command(app, "nactionscu", network="scu", default_aet="NACTIONSCU")
def nactionscu(
    common: Common,
    peer: PeerArgument,
    args: Annotated[list[str] | None, typer.Argument(
        metavar="[PORT] SOPCLASS INSTANCE ACTION-TYPE-ID | FILE-OR-DIR... | UPS-UID",
        help="The request: SOP class (keyword such as StorageCommitmentPushModel, a short name such as "
             "commitment, mpps, ups-push, or a UID), SOP instance (a UID, or commitment, event-logging, "
             "ups-global) and Action Type ID; with --commit the files or folders to commit; with the UPS presets "
             "the UPS's UID.")] = None,
    keys: SetKey = None,
    dataset_files: DatasetFile = None,
    wait: Annotated[float | None, typer.Option(
        "--wait", min=0, metavar="SECONDS",
        help="Wait this long for N-EVENT-REPORTs before releasing (default 0; with --commit the longest wait for "
             "the commitment report, default 60). Reports are printed as they come.")] = None,
    listen_port: EventListenPort = None,
    stop_after: Annotated[int | None, typer.Option(
        "--stop-after", min=1, metavar="N", help="Stop waiting (--wait) after N N-EVENT-REPORTs.")] = None,
    commit: Annotated[bool, typer.Option(
        "--commit", rich_help_panel=PRESETS,
        help="Storage commitment of the files given: a new Transaction UID, their SOP Class/Instance UIDs, "
             "N-ACTION 1 to the well-known instance, then the report (this association, or --port). Exit 0 only "
             "when every instance is committed.")] = False,
    one_per_study: Annotated[bool, typer.Option("--one-per-study", rich_help_panel=PRESETS,
                                                help="--commit: one request (Transaction UID) per study.")] = False,
    ups_state: Annotated[str | None, typer.Option(
        "--ups-state", metavar="STATE", rich_help_panel=PRESETS,
        help="Change a UPS's state: 'IN PROGRESS' (claims it: a new Transaction UID, printed), COMPLETED or "
             "CANCELED (give --transaction-uid).")] = None,
    transaction_uid: Annotated[str | None, typer.Option(
        "--transaction-uid", metavar="UID", rich_help_panel=PRESETS,
        help="The Transaction UID of a claimed UPS (printed by --ups-state 'IN PROGRESS').")] = None,
    ups_cancel: Annotated[bool, typer.Option(
        "--ups-cancel", rich_help_panel=PRESETS,
        help="Request cancellation of a UPS (its performer decides); -s ReasonForCancellation=... adds why.")] = False,
    ups_subscribe: Annotated[bool, typer.Option(
        "--ups-subscribe", rich_help_panel=PRESETS,
        help="Subscribe this AE title to a UPS's events (or, without a UPS UID, to all: global subscription).")] = False,
    ups_unsubscribe: Annotated[bool, typer.Option(
        "--ups-unsubscribe", rich_help_panel=PRESETS,
        help="Unsubscribe from a UPS (or, without a UPS UID, from the global subscription).")] = False,
    deletion_lock: Annotated[bool, typer.Option("--deletion-lock", rich_help_panel=PRESETS,
                                                help="--ups-subscribe: ask for a deletion lock.")] = False,
    out_file: ResponseOut = None,
    warnings_as_errors: WarningsAsErrors = False,
) -> int:
    """Send one N-ACTION and print the status (plain words), the returned data set and any N-EVENT-REPORT.

    Usage: dcmcli nactionscu OPTIONS peer port SOPCLASS INSTANCE ACTION-TYPE-ID;
    dcmcli nactionscu --commit OPTIONS peer port FILE-OR-DIR...
    """
    out = common.out
    target, rest = parse_peer(peer, list(args or []))
    presets = [n for n, on in (("--commit", commit), ("--ups-state", ups_state is not None),
                               ("--ups-cancel", ups_cancel), ("--ups-subscribe", ups_subscribe),
                               ("--ups-unsubscribe", ups_unsubscribe)) if on]
    if len(presets) > 1:
        raise UsageError(f"{' and '.join(presets)} are different requests", "give one of them")
    if one_per_study and not commit:
        raise UsageError("--one-per-study goes with --commit", "add --commit or leave it out")
    t0 = time.perf_counter()
    if commit:
        return _commit(common, target, rest, one_per_study, 60.0 if wait is None else wait, listen_port, t0)
    from dcmcli.net.services import ups
    from dcmcli.net.services.normalized import build_dataset, open_session
    from dcmcli.uids import UPS_EVENT, UPS_PUSH, UPS_WATCH, WELL_KNOWN_INSTANCES, is_uid, parse_sop_class

    def one_uid(what: str, optional: bool = False) -> str | None:
        if len(rest) > 1 or (not rest and not optional):
            raise UsageError(f"{presets[0]} takes {'at most ' if optional else ''}one argument after the peer, "
                             f"the {what}", f"dcmcli nactionscu {presets[0]} peer port UID")
        if rest and not is_uid(rest[0]):
            raise UsageError(f"invalid {what} {rest[0]!r}", "give a UID (digits and dots)")
        return rest[0] if rest else None

    mode = "generic"
    new_transaction: str | None = None
    classes: list[str]
    if ups_state is not None:
        mode = "ups-state"
        state = ups.parse_state(ups_state)
        uid = one_uid("UPS UID")
        if state == "IN PROGRESS":
            from pydicom.uid import generate_uid

            new_transaction = transaction_uid or str(generate_uid())
            tuid = new_transaction
        elif not transaction_uid:
            raise UsageError(f"--ups-state {state} needs the Transaction UID given when the UPS was claimed",
                             "add --transaction-uid UID (printed by --ups-state 'IN PROGRESS')")
        else:
            tuid = transaction_uid
        sop_class, instance, action = UPS_PUSH, uid, ups.CHANGE_STATE
        base = ups.change_state(state, tuid)
        classes = [UPS_PUSH]
    elif ups_cancel:
        mode = "ups-cancel"
        sop_class, instance, action, base = UPS_PUSH, one_uid("UPS UID"), ups.REQUEST_CANCEL, None
        classes = [UPS_PUSH]
    elif ups_subscribe or ups_unsubscribe:
        mode = "ups-subscribe" if ups_subscribe else "ups-unsubscribe"
        sop_class = UPS_WATCH
        instance = ups.subscription_instance(one_uid("UPS UID", optional=True))
        action = ups.SUBSCRIBE if ups_subscribe else ups.UNSUBSCRIBE
        base = ups.subscription(common.settings.calling_aet, deletion_lock if ups_subscribe else None)
        classes = [UPS_WATCH, UPS_EVENT]
    else:
        if len(rest) != 3:
            raise UsageError(f"nactionscu needs SOPCLASS INSTANCE ACTION-TYPE-ID after the peer (got {len(rest)} "
                             f"argument{'s' if len(rest) != 1 else ''})",
                             "dcmcli nactionscu peer port SOPCLASS INSTANCE ACTION-TYPE-ID, or a preset such as --commit")
        try:
            sop_class = parse_sop_class(rest[0])
        except UsageError as exc:
            raise UsageError(exc.message, "give a UID, a keyword such as StorageCommitmentPushModel, or a short name "
                                          "(commitment, mpps, ian, ups-push, ups-watch, media-creation, "
                                          "event-logging)") from None
        instance = WELL_KNOWN_INSTANCES.get(rest[1].lower(), rest[1])
        if not is_uid(instance):
            raise UsageError(f"invalid SOP instance {rest[1]!r}",
                             f"give a UID or one of {', '.join(WELL_KNOWN_INSTANCES)}")
        try:
            action = int(rest[2], 0)
        except ValueError:
            raise UsageError(f"invalid Action Type ID {rest[2]!r}: not a number", "give a number such as 1") from None
        if not 0 <= action <= 0xFFFF:
            raise UsageError(f"invalid Action Type ID {action}: out of range", "give a number from 0 to 65535")
        base = None
        classes = [sop_class]
    assert instance is not None
    ds = build_dataset(keys or [], dataset_files or [], base)
    if common.debug and ds is not None:
        out.debug(f"action information:\n{ds}")
    events = []

    def on_event(e: object) -> None:
        events.append(e)
        show_event(out, e)  # type: ignore[arg-type]

    acceptor = _listener(common, target, listen_port, [c for c in classes if c in (UPS_EVENT,)] or classes, on_event)
    try:
        with open_session(common.settings, target, classes, on_event=on_event,
                          on_report=lambda r: show_report(out, r)) as session:
            result = session.action(sop_class, instance, action, ds)
            show_response(out, result)
            if new_transaction and result.status.ok:
                out.emit("transaction", {"sop_instance_uid": instance, "transaction_uid": new_transaction},
                         f"claimed: Transaction UID {new_transaction} (give it back with --transaction-uid)")
            if wait:  # the listener (--port) serves meanwhile, in its own threads
                session.wait(wait, lambda: stop_after is not None and len(events) >= stop_after)
    finally:
        if acceptor is not None:
            acceptor.stop(5.0)
    write_out(out_file, [result])
    code = status_exit([result], warnings_as_errors)
    summary = {"mode": mode, "requests": 1, "status": result.status.as_dict(), "sop_instance_uid": instance,
               "transaction_uid": new_transaction or transaction_uid, "event_reports": len(events),
               "seconds": round(time.perf_counter() - t0, 3), "exit_code": int(code)}
    if code == ExitCode.OPERATION_FAILED:
        out.emit("summary", summary, None)
        failure_line(out, [result])
    else:
        out.emit("summary", summary, None)
    return int(code)


def _listener(common: Common, target: object, port: int | None, classes: list[str], on_event: object):  # type: ignore[no-untyped-def]
    """--port: the shared acceptor, for event reports on a new association from the peer only."""
    if port is None:
        return None
    from dcmcli.cli.serving import log_printer
    from dcmcli.net.acceptor import Acceptor, AcceptorOptions
    from dcmcli.net.association import resolve
    from dcmcli.net.services.normalized import EventListener

    out = common.out
    acceptor = Acceptor(common.settings, AcceptorOptions(port=port, allowed_hosts=[resolve(target)[0]],  # type: ignore[arg-type]
                                                         max_associations=4, shutdown_timeout=5.0),
                        [EventListener(classes, on_event)], on_log=log_printer(out),  # type: ignore[arg-type]
                        on_association=lambda r: show_report(out, r))
    actual = acceptor.start()
    _listening(out, common, actual)
    return acceptor


def _listening(out: Output, common: Common, port: int) -> None:
    out.emit("listening", {"port": port, "bind": "0.0.0.0", "output_dir": None, "ae_title": common.settings.calling_aet},
             f"listening for N-EVENT-REPORTs on port {port} as {common.settings.calling_aet}")


def _commit(common: Common, target: object, paths: list[str], one_per_study: bool, wait: float,
            listen_port: int | None, t0: float) -> int:
    from dcmcli.cli.serving import log_printer
    from dcmcli.dicomfile import collect_inputs
    from dcmcli.net.services.commitment import CommitResult, commit, requests_from_files

    out = common.out
    if not paths:
        raise UsageError("--commit needs the files or folders to commit after the peer",
                         "dcmcli nactionscu --commit peer port FILE-OR-DIR...")
    inputs = collect_inputs(paths, action="committed")
    for s in inputs.unreadable + inputs.skipped:
        out.warn(s.warning)
    problem = inputs.nothing_to_send()
    if problem:
        from dcmcli.errors import DcmcliError

        raise DcmcliError(f"--commit: {problem[1]}", "name DICOM files or folders holding them", exit_code=problem[0])
    requests = requests_from_files(inputs.files, one_per_study)
    n = sum(len(r.references) for r in requests)
    out.info(f"asking {target} to commit {n} instance{'s' if n != 1 else ''} in {len(requests)} "
             f"request{'s' if len(requests) != 1 else ''}")

    def on_response(r: CommitResult) -> None:
        assert r.response is not None
        show_response(out, r.response, f"(storage commitment, transaction {r.request.transaction_uid})")

    def on_result(r: CommitResult) -> None:
        human = [f"storage commitment {r.request.transaction_uid} ({r.report.via.replace('-', ' ')} from "  # type: ignore[union-attr]
                 f"{r.report.calling_aet}): {len(r.committed)} committed, {len(r.failed)} failed"]  # type: ignore[union-attr]
        for ref, status in r.failed:
            human.append(f"  failed {ref.sop_instance_uid} ({ref.path or ref.sop_class_uid}): {status.meaning} "
                         f"({status.hex})")
        for ref in r.unreported():
            human.append(f"  not in the report: {ref.sop_instance_uid} ({ref.path})")
        if out.verbosity > 0:
            human += [f"  committed {ref.sop_instance_uid} ({ref.path})" for ref in r.committed]
        out.emit("commitment", r.as_dict, "\n".join(human), plain=True)

    results = commit(common.settings, target, requests, wait=wait, listen_port=listen_port,  # type: ignore[arg-type]
                     on_listening=lambda port: _listening(out, common, port), on_response=on_response,
                     on_result=on_result, on_report=lambda r: show_report(out, r), on_log=log_printer(out))
    committed = sum(len(r.committed) for r in results)
    failed = sum(len(r.failed) + len(r.unreported()) for r in results)
    refused = [r for r in results if r.outcome == "refused"]
    missing = [r for r in results if r.outcome == "no-report"]
    not_reported = sum(len(r.request.references) for r in missing)
    codes = [ExitCode.OK] + [ExitCode.OPERATION_FAILED] * bool(failed or refused) + [ExitCode.NO_REPORT] * bool(missing)
    codes += [c for c in inputs.exit_codes()]
    code = worst(*codes)
    summary = {"mode": "commit", "requests": len(results), "instances": n, "committed": committed, "failed": failed,
               "refused": sum(len(r.request.references) for r in refused), "not_reported": not_reported,
               "transaction_uids": [r.request.transaction_uid for r in results],
               "seconds": round(time.perf_counter() - t0, 3), "exit_code": int(code)}
    human = f"{committed} of {n} committed" + (f", {failed} failed" if failed else "")
    out.emit("summary", summary, human if not refused and not missing else None)
    if refused:
        failure_line(out, [r.response for r in refused if r.response is not None])
    elif missing:
        listen = "on this association" + (f" or on port {listen_port}" if listen_port is not None else "")
        hint = ("the peer may send it on a new association: give --port and declare this AE title, host and port "
                "in the peer (for Orthanc: DicomModalities)" if listen_port is None else
                "check that the peer knows this AE title with this host and port (for Orthanc: DicomModalities), "
                "or raise --wait")
        out.error_line(f"no storage commitment report {listen} within {wait:g} s for {not_reported} "
                       f"instance{'s' if not_reported != 1 else ''}; {hint}")
    return int(code)
