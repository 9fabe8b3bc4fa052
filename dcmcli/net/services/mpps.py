"""Modality Performed Procedure Step SCU (PS3.4 F.7): ncreatescu --mpps.

One MPPS per study, built from the images' headers (patient and study
attributes, modality, station, start date/time, Performed Series Sequence
with each series' Referenced Image Sequence): N-CREATE IN PROGRESS, then on
the same association N-SET COMPLETED or DISCONTINUED (with a reason code),
or nothing (left IN PROGRESS). An MPPS created earlier is completed or
discontinued by its UID (N-SET only).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.net.services.normalized import N_SCU_BEHAVIOUR, NORMALIZED_SYNTAXES, NResult, NSession, sop_reference
from dcmcli.records import dataclass
from dcmcli.uids import MPPS

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

IN_PROGRESS, COMPLETED, DISCONTINUED = "IN PROGRESS", "COMPLETED", "DISCONTINUED"

_PATIENT = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
_SCHEDULED = ("StudyInstanceUID", "AccessionNumber", "RequestedProcedureID", "RequestedProcedureDescription",
              "ScheduledProcedureStepID", "ScheduledProcedureStepDescription")


@dataclass
class StudyImages:
    """What one study's files say, for its MPPS."""

    study_instance_uid: str
    first: Dataset  # the first file's header (patient, study, station)
    series: dict[str, list[Dataset]] = field(default_factory=dict)  # Series Instance UID -> headers
    start: tuple[str, str] = ("", "")  # earliest (date, time) among the images
    end: tuple[str, str] = ("", "")


def read_studies(paths: Sequence[str], on_skip: Callable[[Any], None] | None = None) -> list[StudyImages]:
    """The files' headers grouped by study (pixel data is never read);
    ``on_skip`` sees each input not used (``dicomfile.Skipped``: why, and its exit code)."""
    from pydicom import dcmread

    from dcmcli.dicomfile import collect_inputs
    from dcmcli.errors import InputError

    inputs = collect_inputs(paths, action="used")
    if not inputs.files:
        problem = inputs.nothing_to_send()
        first = (inputs.unreadable + inputs.skipped)[:1]
        detail = f" ({first[0].warning})" if first else ""
        raise InputError(f"{problem[1] if problem else 'no DICOM files'}{detail}",
                         "name DICOM files or folders holding them", exit_code=problem[0] if problem else None)
    for skipped in inputs.unreadable + inputs.skipped:
        if on_skip:
            on_skip(skipped)
    studies: dict[str, StudyImages] = {}
    for info in inputs.files:
        ds = dcmread(info.path, stop_before_pixels=True)
        study = str(ds.get("StudyInstanceUID", ""))
        s = studies.setdefault(study, StudyImages(study, ds))
        s.series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
        when = (str(ds.get("AcquisitionDate") or ds.get("ContentDate") or ds.get("SeriesDate")
                    or ds.get("StudyDate") or ""),
                str(ds.get("AcquisitionTime") or ds.get("ContentTime") or ds.get("SeriesTime")
                    or ds.get("StudyTime") or ""))
        if when[0] and (not s.start[0] or when < s.start):
            s.start = when
        if when[0] and when > s.end:
            s.end = when
    return list(studies.values())


def _now() -> tuple[str, str]:
    now = datetime.datetime.now()
    return now.strftime("%Y%m%d"), now.strftime("%H%M%S")


def creation(study: StudyImages, station_aet: str) -> Dataset:
    """The N-CREATE data set: IN PROGRESS, with what the images say."""
    from pydicom.dataset import Dataset as DS

    first = study.first
    ds = DS()
    ds.SpecificCharacterSet = first.get("SpecificCharacterSet", "ISO_IR 100") or "ISO_IR 100"
    sched = DS()
    for kw in _SCHEDULED:
        setattr(sched, kw, first.get(kw, ""))
    sched.ReferencedStudySequence = []
    ds.ScheduledStepAttributesSequence = [sched]
    for kw in _PATIENT:
        if kw != "IssuerOfPatientID" or kw in first:
            setattr(ds, kw, first.get(kw, ""))
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = str(first.get("StudyID", "") or "")[:16]
    ds.PerformedStationAETitle = station_aet
    ds.PerformedStationName = str(first.get("StationName", "") or "")[:16]
    ds.PerformedLocation = str(first.get("InstitutionName", "") or "")[:16]
    start = study.start if study.start[0] else _now()
    ds.PerformedProcedureStepStartDate, ds.PerformedProcedureStepStartTime = start
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.PerformedProcedureStepStatus = IN_PROGRESS
    ds.PerformedProcedureStepDescription = first.get("StudyDescription", "")
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.Modality = first.get("Modality", "")
    ds.StudyID = first.get("StudyID", "")
    ds.PerformedProtocolCodeSequence = []
    ds.PerformedSeriesSequence = []
    return ds


def performed_series(study: StudyImages, retrieve_aet: str = "") -> list[Dataset]:
    from pydicom.dataset import Dataset as DS

    out = []
    for series_uid, headers in study.series.items():
        h = headers[0]
        item = DS()
        item.PerformingPhysicianName = h.get("PerformingPhysicianName", "")
        item.ProtocolName = h.get("ProtocolName", "")
        item.OperatorsName = h.get("OperatorsName", "")
        item.SeriesInstanceUID = series_uid
        item.SeriesDescription = h.get("SeriesDescription", "")
        item.RetrieveAETitle = retrieve_aet
        item.ReferencedImageSequence = [sop_reference(img.SOPClassUID, img.SOPInstanceUID) for img in headers]
        item.ReferencedNonImageCompositeSOPInstanceSequence = []
        out.append(item)
    return out


def final_state(state: str, study: StudyImages | None, reason: tuple[str, str, str] | None = None) -> Dataset:
    """The N-SET data set that ends an MPPS: COMPLETED or DISCONTINUED (with
    the reason code), end date/time, and the Performed Series Sequence when
    the images are known."""
    from pydicom.dataset import Dataset as DS

    ds = DS()
    ds.PerformedProcedureStepStatus = state
    end = study.end if study is not None and study.end[0] else _now()
    ds.PerformedProcedureStepEndDate, ds.PerformedProcedureStepEndTime = end
    if study is not None:
        ds.PerformedSeriesSequence = performed_series(study)
    if state == DISCONTINUED and reason is not None:
        code = DS()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = reason
        ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = [code]
    return ds


#: PS3.16 CID 9300 (Procedure Discontinuation Reasons), the common ones.
DISCONTINUATION_REASONS = {
    "110500": "Doctor canceled procedure", "110501": "Equipment failure", "110502": "Incorrect procedure ordered",
    "110503": "Patient allergic to media/contrast", "110504": "Patient died", "110505": "Patient refused to continue",
    "110506": "Patient taken for treatment or surgery", "110507": "Patient did not arrive",
    "110508": "Patient pregnant", "110509": "Change of procedure for correct charging",
    "110510": "Duplicate order", "110511": "Nursing unit cancel", "110512": "Incorrect side ordered",
    "110513": "Discontinued for unspecified reason", "110514": "Incorrect worklist entry selected",
    "110515": "Patient condition prevented continuing", "110516": "Equipment change",
}


def parse_reason(text: str) -> tuple[str, str, str]:
    """``CODE`` (a DCM code of CID 9300) or ``SCHEME:CODE[:MEANING]``."""
    from dcmcli.errors import UsageError

    parts = text.split(":", 2)
    if len(parts) == 1:
        code, scheme, meaning = parts[0], "DCM", DISCONTINUATION_REASONS.get(parts[0], "")
        if not meaning:
            raise UsageError(f"unknown discontinuation reason {text!r}",
                             "give a code of CID 9300 such as 110514, or SCHEME:CODE:MEANING")
    else:
        scheme, code = parts[0], parts[1]
        meaning = parts[2] if len(parts) > 2 else DISCONTINUATION_REASONS.get(code, code) if scheme == "DCM" else code
    if not code or not scheme:
        raise UsageError(f"invalid discontinuation reason {text!r}", "give CODE or SCHEME:CODE[:MEANING]")
    return code, scheme, meaning


@dataclass
class MppsStep:
    """One MPPS handled: its UID and the responses."""

    sop_instance_uid: str
    study_instance_uid: str | None
    results: list[NResult] = field(default_factory=list)


def run_mpps(session: NSession, studies: Sequence[StudyImages], *, final: str | None,
             reason: tuple[str, str, str] | None, mpps_uid: str | None, station_aet: str,
             edit: Callable[[Dataset], Dataset] | None = None,
             on_result: Callable[[MppsStep, NResult], None] | None = None) -> list[MppsStep]:
    """Create (unless ``mpps_uid``: an MPPS created earlier) and end each study's MPPS.

    ``edit`` applies the user's ``-s``/``--dataset`` on top of each N-CREATE data set.
    A failure status stops that study's MPPS (no N-SET after a refused N-CREATE)."""
    from pydicom.uid import generate_uid

    from dcmcli.status import Category

    steps: list[MppsStep] = []
    for study in (studies or [None]):  # type: ignore[list-item]
        if mpps_uid is not None:
            step = MppsStep(mpps_uid, study.study_instance_uid if study else None)
        else:
            assert study is not None
            step = MppsStep(str(generate_uid()), study.study_instance_uid)
            ds = creation(study, station_aet)
            if edit:
                ds = edit(ds)
            r = session.create(MPPS, step.sop_instance_uid, ds)
            step.sop_instance_uid = r.sop_instance_uid or step.sop_instance_uid
            step.results.append(r)
            if on_result:
                on_result(step, r)
            if r.status.category == Category.FAILURE:
                steps.append(step)
                continue
        if final is not None:
            r = session.set(MPPS, step.sop_instance_uid, final_state(final, study, reason))
            step.results.append(r)
            if on_result:
                on_result(step, r)
        steps.append(step)
    return steps


#: ncreatescu --mpps (dcmcli/conformance).
CONFORMANCE = [ApplicationEntity("NCREATESCU", "ncreatescu", contexts=(
    Contexts((MPPS,), NORMALIZED_SYNTAXES, "SCU", True, when="--mpps",
             note="N-CREATE IN PROGRESS, then N-SET COMPLETED or DISCONTINUED on the same association "
                  "(--in-progress: N-CREATE only; --mpps-uid: N-SET only)"),),
    statuses=(Statuses("N-SET", "SCU", behaviour=N_SCU_BEHAVIOUR),))]
