"""Instance Availability Notification SCU (PS3.4 R): ncreatescu --ian.

One N-CREATE per study, built from the files' headers: the study, each
series with its instances' SOP Class and Instance UIDs, Instance
Availability and Retrieve AE Title, and the MPPS that made them when known.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dcmcli.conformance import ApplicationEntity, Contexts
from dcmcli.net.services.mpps import StudyImages
from dcmcli.net.services.normalized import NORMALIZED_SYNTAXES, sop_reference
from dcmcli.uids import IAN

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

AVAILABILITY = ("ONLINE", "NEARLINE", "OFFLINE", "UNAVAILABLE")


def notification(study: StudyImages, availability: str, retrieve_aet: str, mpps_uid: str | None = None) -> Dataset:
    """The N-CREATE data set of one study's IAN."""
    from pydicom.dataset import Dataset as DS

    from dcmcli.uids import MPPS

    ds = DS()
    pps = []
    if mpps_uid:
        pps.append(sop_reference(MPPS, mpps_uid, PerformedWorkitemCodeSequence=[]))
    ds.ReferencedPerformedProcedureStepSequence = pps
    ds.StudyInstanceUID = study.study_instance_uid
    series_items = []
    for series_uid, headers in study.series.items():
        item = DS()
        item.SeriesInstanceUID = series_uid
        item.ReferencedSOPSequence = [sop_reference(h.SOPClassUID, h.SOPInstanceUID, InstanceAvailability=availability,
                                                    RetrieveAETitle=retrieve_aet) for h in headers]
        series_items.append(item)
    ds.ReferencedSeriesSequence = series_items
    return ds


def notifications(studies: Sequence[StudyImages], availability: str, retrieve_aet: str,
                  mpps_uid: str | None = None) -> list[Dataset]:
    return [notification(s, availability, retrieve_aet, mpps_uid) for s in studies]


#: ncreatescu --ian (dcmcli/conformance).
CONFORMANCE = [ApplicationEntity("NCREATESCU", "ncreatescu", contexts=(
    Contexts((IAN,), NORMALIZED_SYNTAXES, "SCU", True, when="--ian",
             note="one N-CREATE per study, every instance with --availability and --retrieve-aet"),))]
