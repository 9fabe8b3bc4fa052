"""How nactionscu and ncreatescu show what the normalized services answer
(not a subcommand): responses, event reports, --out, the exit code."""

from __future__ import annotations

from pathlib import Path

from dcmcli.errors import ExitCode, OutputError, worst
from dcmcli.net.services.normalized import EventReport, NResult
from dcmcli.output import Output
from dcmcli.status import Category
from dcmcli.uids import uid_name


def _dataset_text(ds: object) -> str:
    return "\n".join("  " + line for line in str(ds).splitlines())


def show_response(out: Output, r: NResult, what: str = "") -> None:
    """One response: a line (status, meaning, comment), then its data set (people), or a ``response`` event."""
    action = f" {r.action_type_id}" if r.action_type_id is not None else ""
    comment = f": {r.error_comment}" if r.error_comment else ""
    human = (f"{r.operation}{action} {what or uid_name(r.sop_class_uid)} {r.sop_instance_uid or ''}: "
             f"{r.status.meaning} ({r.status.hex}){comment}").replace("  ", " ")
    ds = r.dataset() if r.data else None
    if ds is not None and out.verbosity >= 0:
        human += "\n" + _dataset_text(ds)
    out.emit("response", r.as_dict, human, plain=True)


def show_event(out: Output, e: EventReport) -> None:
    ds = e.dataset() if e.data else None
    human = (f"N-EVENT-REPORT {e.event_type_id} of {uid_name(e.sop_class_uid)} {e.sop_instance_uid} from "
             f"{e.calling_aet} ({e.via.replace('-', ' ')})")
    if ds is not None and out.verbosity >= 0:
        human += "\n" + _dataset_text(ds)
    out.emit("event-report", e.as_dict, human, plain=True)


def write_out(path: str | None, results: list[NResult]) -> None:
    """--out: the last response's data set as a DICOM file."""
    if not path:
        return
    from dcmcli.dataset import write_part10

    with_data = [r for r in results if r.data]
    if not with_data:
        raise OutputError(f"--out {path}: the response has no data set to write", "leave out --out")
    r = with_data[-1]
    try:
        write_part10(r.dataset(), Path(path), r.sop_class_uid)
    except OSError as exc:
        raise OutputError(f"cannot write {path!r}: {exc.strerror or exc}", "check the path") from None


def status_exit(results: list[NResult], warnings_as_errors: bool) -> ExitCode:
    codes = [ExitCode.OK]
    for r in results:
        if r.status.category in (Category.FAILURE, Category.CANCEL):
            codes.append(ExitCode.OPERATION_FAILED)
        elif r.status.category == Category.WARNING and warnings_as_errors:
            codes.append(ExitCode.OPERATION_WARNING)
    return worst(*codes)


def hint_for(r: NResult) -> str:
    """What to try after a failure status."""
    return {
        0x0123: "the peer does not know this action type for this SOP class; check the ACTION-TYPE-ID",
        0x0112: "the peer has no such instance: check the SOP Instance UID",
        0x0118: "the peer does not know this SOP class for this request",
        0x0120: "a required attribute is missing from the data set: add it with -s or --dataset (-d shows what "
                "was sent)",
        0x0121: "a required attribute is empty: give it a value with -s",
        0x0106: "an attribute value was refused: check the values given with -s or --dataset",
        0x0105: "the peer does not know an attribute given: check -s and --dataset",
        0x0117: "the peer refuses this SOP instance: check the INSTANCE argument",
        0xC301: "give the Transaction UID printed when the UPS was claimed (--transaction-uid)",
        0xC307: "check the UPS UID",
    }.get(r.status.code, "see the peer's log (-d shows what was sent)")


def failure_line(out: Output, results: list[NResult]) -> None:
    for r in results:
        if r.status.category in (Category.FAILURE, Category.CANCEL):
            comment = f": {r.error_comment}" if r.error_comment else ""
            out.error_line(f"{r.operation} failed: {r.status.meaning} ({r.status.hex}){comment}; {hint_for(r)}")
            return
