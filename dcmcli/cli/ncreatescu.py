"""dcmcli ncreatescu: one N-CREATE (any SOP class), or a preset that does the
whole job: MPPS (created, then completed or discontinued), Instance
Availability Notification, a scheduled UPS."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.nservice import failure_line, show_event, show_response, status_exit, write_out
from dcmcli.cli.options import (Common, DatasetFile, PeerArgument, ResponseOut, SetKey, WarningsAsErrors,
                                dcmcli_command)
from dcmcli.cli.report import show_report
from dcmcli.errors import ExitCode, UsageError, worst

PRESETS = "Presets"

#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ("A modality's MPPS for the images of a study: N-CREATE IN PROGRESS, then N-SET COMPLETED.",
     "dcmcli ncreatescu -aet CT01 --mpps ris 104 study/"),
    ("Start it now (IN PROGRESS) and complete it later, from a second command, by its UID.",
     "dcmcli ncreatescu --mpps --in-progress ris 104 study/ && "
     "dcmcli ncreatescu --mpps --complete --mpps-uid 1.2.3.4 ris 104 study/"),
    ("Discontinued: wrong worklist entry (CID 9300 code 110514).",
     "dcmcli ncreatescu --mpps --discontinue 110514 ris 104 study/"),
    ("Tell the RIS the images are online at ARCHIVE (Instance Availability Notification).",
     "dcmcli ncreatescu --ian --availability ONLINE --retrieve-aet ARCHIVE ris 104 study/"),
    ("A scheduled UPS (UPS Push), its attributes from a DICOM JSON file and -s.",
     "dcmcli ncreatescu --ups --dataset ups.json -s ProcedureStepLabel=Review ris 104"),
    ("Media Creation Management: a request to burn two instances (then nactionscu ... 1 initiates it).",
     "dcmcli ncreatescu --dataset media.json media 104 MediaCreationManagement"),
    ("Procedural Event Logging is an N-ACTION: see nactionscu; any other N-CREATE, by SOP class UID:",
     "dcmcli ncreatescu -s PatientID=123 peer 104 1.2.840.10008.3.1.2.3.3 1.2.3.4.5"),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["association", "response", "event-report", "summary"]


@dcmcli_command(app, "ncreatescu", network="scu", default_aet="NCREATESCU")
def ncreatescu(
    common: Common,
    peer: PeerArgument,
    args: Annotated[list[str] | None, typer.Argument(
        metavar="[PORT] SOPCLASS [INSTANCE] | FILE-OR-DIR...",
        help="The request: SOP class (keyword, short name such as mpps, ian, ups-push, media-creation, or UID) "
             "and, optionally, the new instance's UID (else the SCP assigns one); with --mpps and --ian the files "
             "or folders the notification is about.")] = None,
    keys: SetKey = None,
    dataset_files: DatasetFile = None,
    wait: Annotated[float, typer.Option("--wait", min=0, metavar="SECONDS",
                                        help="Wait this long for N-EVENT-REPORTs before releasing.")] = 0.0,
    mpps: Annotated[bool, typer.Option(
        "--mpps", rich_help_panel=PRESETS,
        help="Modality Performed Procedure Step for the images given, one per study: N-CREATE IN PROGRESS, then "
             "N-SET COMPLETED (default), DISCONTINUED (--discontinue) or nothing (--in-progress).")] = False,
    complete: Annotated[bool, typer.Option("--complete", rich_help_panel=PRESETS,
                                           help="--mpps: end it COMPLETED (the default).")] = False,
    discontinue: Annotated[str | None, typer.Option(
        "--discontinue", metavar="CODE", rich_help_panel=PRESETS,
        help="--mpps: end it DISCONTINUED with this reason (a CID 9300 code such as 110514, or "
             "SCHEME:CODE:MEANING).")] = None,
    in_progress: Annotated[bool, typer.Option("--in-progress", rich_help_panel=PRESETS,
                                              help="--mpps: create it and leave it IN PROGRESS.")] = False,
    mpps_uid: Annotated[str | None, typer.Option(
        "--mpps-uid", metavar="UID", rich_help_panel=PRESETS,
        help="--mpps: end the MPPS created earlier with this UID (N-SET only); --ian: the MPPS that made the "
             "images.")] = None,
    ian: Annotated[bool, typer.Option(
        "--ian", rich_help_panel=PRESETS,
        help="Instance Availability Notification of the files given, one per study.")] = False,
    availability: Annotated[str, typer.Option(
        "--availability", metavar="ONLINE|NEARLINE|OFFLINE|UNAVAILABLE", rich_help_panel=PRESETS,
        help="--ian: Instance Availability.")] = "ONLINE",
    retrieve_aet: Annotated[str | None, typer.Option(
        "--retrieve-aet", metavar="AETITLE", rich_help_panel=PRESETS,
        help="--ian: Retrieve AE Title (default: my AE title); --mpps: in the Performed Series Sequence.")] = None,
    ups_create: Annotated[bool, typer.Option(
        "--ups", rich_help_panel=PRESETS,
        help="A scheduled UPS (UPS Push): SCHEDULED, READY, MEDIUM, starting now, with -s/--dataset on top.")] = False,
    out_file: ResponseOut = None,
    warnings_as_errors: WarningsAsErrors = False,
) -> int:
    """Send one N-CREATE and print the status (plain words), the instance UID, the returned data set and any N-EVENT-REPORT.

    Usage: dcmcli ncreatescu OPTIONS peer port SOPCLASS [INSTANCE];
    dcmcli ncreatescu --mpps|--ian OPTIONS peer port FILE-OR-DIR...
    """
    out = common.out
    from dcmcli.net.peer import parse_peer, validate_ae_title
    from dcmcli.net.services.normalized import NResult, build_dataset, open_session
    from dcmcli.uids import IAN, MPPS, UPS_PUSH, is_uid, parse_sop_class

    target, rest = parse_peer(peer, list(args or []))
    presets = [n for n, on in (("--mpps", mpps), ("--ian", ian), ("--ups", ups_create)) if on]
    if len(presets) > 1:
        raise UsageError(f"{' and '.join(presets)} are different requests", "give one of them")
    endings = [n for n, on in (("--complete", complete), ("--discontinue", discontinue is not None),
                               ("--in-progress", in_progress)) if on]
    if endings and not mpps:
        raise UsageError(f"{endings[0]} goes with --mpps", "add --mpps or leave it out")
    if len(endings) > 1:
        raise UsageError(f"{' and '.join(endings)} end an MPPS in different ways", "give one of them")
    if mpps_uid is not None and not is_uid(mpps_uid):
        raise UsageError(f"invalid --mpps-uid {mpps_uid!r}", "give a UID (digits and dots)")
    if mpps_uid and in_progress:
        raise UsageError("--mpps-uid names an MPPS to end, --in-progress leaves it as it is", "give one of them")
    retrieve = validate_ae_title(retrieve_aet, "--retrieve-aet") if retrieve_aet else common.settings.calling_aet
    t0 = time.perf_counter()
    results: list[NResult] = []
    events: list[object] = []
    created: list[str] = []
    input_codes: list[ExitCode] = []

    def on_event(e: object) -> None:
        events.append(e)
        show_event(out, e)  # type: ignore[arg-type]

    def shown(r: NResult, what: str = "") -> NResult:
        results.append(r)
        show_response(out, r, what)
        return r

    if mpps or ian:
        from dcmcli.net.services.mpps import read_studies

        if not rest and not (mpps and mpps_uid):
            raise UsageError(f"{presets[0]} needs the image files or folders after the peer",
                             f"dcmcli ncreatescu {presets[0]} peer port FILE-OR-DIR...")
        from dcmcli.net.services.mpps import COMPLETED, DISCONTINUED, parse_reason, run_mpps

        reason = parse_reason(discontinue) if discontinue is not None else None
        def on_skip(skipped: object) -> None:
            out.warn(skipped.warning)  # type: ignore[attr-defined]
            input_codes.append(skipped.exit_code)  # type: ignore[attr-defined]

        studies = read_studies(rest, on_skip) if rest else []
        if mpps:
            final = None if in_progress else DISCONTINUED if discontinue is not None else COMPLETED
            if mpps_uid and len(studies) > 1:
                raise UsageError(f"--mpps-uid names one MPPS, the files hold {len(studies)} studies",
                                 "give the files of that MPPS's study only")

            def edit(ds: object) -> object:
                return build_dataset(keys or [], dataset_files or [], ds)  # type: ignore[arg-type]

            with open_session(common.settings, target, [MPPS], on_event=on_event,
                              on_report=lambda r: show_report(out, r)) as session:
                steps = run_mpps(session, studies, final=final, reason=reason, mpps_uid=mpps_uid,
                                 station_aet=common.settings.calling_aet, edit=edit,  # type: ignore[arg-type]
                                 on_result=lambda step, r: shown(r, "MPPS"))
                session.wait(wait)
            created = [s.sop_instance_uid for s in steps]
        else:
            from dcmcli.net.services.ian import AVAILABILITY, notifications
            from pydicom.uid import generate_uid

            level = availability.upper()
            if level not in AVAILABILITY:
                raise UsageError(f"invalid --availability {availability!r}", f"give one of {', '.join(AVAILABILITY)}")
            with open_session(common.settings, target, [IAN], on_event=on_event,
                              on_report=lambda r: show_report(out, r)) as session:
                for ds in notifications(studies, level, retrieve, mpps_uid):
                    uid = str(generate_uid())
                    r = shown(session.create(IAN, uid, build_dataset(keys or [], dataset_files or [], ds)), "IAN")
                    created.append(r.sop_instance_uid or uid)
                session.wait(wait)
        mode = presets[0][2:]
    else:
        if ups_create:
            from dcmcli.net.services.ups import scheduled
            from pydicom.uid import generate_uid

            if len(rest) > 1:
                raise UsageError("--ups takes at most one argument after the peer, the new UPS's UID",
                                 "dcmcli ncreatescu --ups peer port [UPS-UID]")
            sop_class, instance = UPS_PUSH, rest[0] if rest else str(generate_uid())
            ds = build_dataset(keys or [], dataset_files or [], scheduled())
            mode = "ups"
        else:
            if not 1 <= len(rest) <= 2:
                raise UsageError(f"ncreatescu needs SOPCLASS [INSTANCE] after the peer (got {len(rest)} "
                                 f"argument{'s' if len(rest) != 1 else ''})",
                                 "dcmcli ncreatescu peer port SOPCLASS [INSTANCE], or a preset such as --mpps")
            try:
                sop_class = parse_sop_class(rest[0])
            except UsageError as exc:
                raise UsageError(exc.message, "give a UID, a keyword such as ModalityPerformedProcedureStep, or a "
                                              "short name (mpps, ian, ups-push, media-creation)") from None
            instance = rest[1] if len(rest) > 1 else None
            ds = build_dataset(keys or [], dataset_files or [])
            mode = "generic"
        if instance is not None and not is_uid(instance):
            raise UsageError(f"invalid SOP instance {instance!r}", "give a UID (digits and dots), or none")
        if common.debug and ds is not None:
            out.debug(f"data set:\n{ds}")
        with open_session(common.settings, target, [sop_class], on_event=on_event,
                          on_report=lambda r: show_report(out, r)) as session:
            r = shown(session.create(sop_class, instance, ds))
            if r.sop_instance_uid:
                created.append(r.sop_instance_uid)
            session.wait(wait)
    write_out(out_file, results)
    code = worst(status_exit(results, warnings_as_errors), *input_codes)
    from dcmcli.status import Category

    ok = [r for r in results if r.status.category != Category.FAILURE]
    summary = {"mode": mode, "requests": len(results), "failed": len(results) - len(ok),
               "status": results[-1].status.as_dict() if results else None, "sop_instance_uids": created,
               "event_reports": len(events), "seconds": round(time.perf_counter() - t0, 3), "exit_code": int(code)}
    human = None
    if created and code != ExitCode.OPERATION_FAILED:
        human = f"instance UID{'s' if len(created) > 1 else ''}: {' '.join(created)}"
    out.emit("summary", summary, human, plain=True)
    if code == ExitCode.OPERATION_FAILED:
        failure_line(out, results)
    return int(code)
