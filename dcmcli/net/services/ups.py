"""Unified Procedure Step SCU (PS3.4 CC): the data sets of UPS Push, Watch
and Event requests (ncreatescu --ups, nactionscu --ups-state, --ups-cancel,
--ups-subscribe, --ups-unsubscribe). The requests go through
``normalized.NSession``; the event reports come to its handlers or to an
``EventListener``.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from dcmcli.errors import UsageError
from dcmcli.conformance import ApplicationEntity, Contexts
from dcmcli.net.services.normalized import NORMALIZED_SYNTAXES
from dcmcli.uids import UPS_EVENT, UPS_GLOBAL_SUBSCRIPTION, UPS_PUSH, UPS_WATCH

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: N-ACTION Action Type IDs (PS3.4 CC.2.2 - CC.2.4).
CHANGE_STATE, REQUEST_CANCEL, SUBSCRIBE, UNSUBSCRIBE, SUSPEND_GLOBAL = 1, 2, 3, 4, 5
STATES = ("IN PROGRESS", "COMPLETED", "CANCELED")


def scheduled(now: datetime.datetime | None = None) -> Dataset:
    """The defaults of a new UPS (N-CREATE, PS3.4 CC.2.5 Table CC.2.5-3
    type 1 attributes): SCHEDULED, READY, MEDIUM, starting now; the user's
    data set goes on top."""
    from pydicom.dataset import Dataset as DS

    now = now or datetime.datetime.now()
    ds = DS()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ProcedureStepState = "SCHEDULED"
    ds.InputReadinessState = "READY"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ScheduledProcedureStepStartDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.ProcedureStepLabel = "dcmcli"
    ds.WorklistLabel = ""
    ds.PatientName = ""
    ds.PatientID = ""
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.ScheduledWorkitemCodeSequence = []
    ds.InputInformationSequence = []
    ds.ScheduledStationNameCodeSequence = []
    ds.ScheduledProcedureStepModificationDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.ExpectedCompletionDateTime = ""
    ds.ScheduledProcessingParametersSequence = []
    return ds


def parse_state(text: str) -> str:
    state = " ".join(text.replace("_", " ").replace("-", " ").upper().split())
    if state == "CANCELLED":
        state = "CANCELED"
    if state not in STATES:
        raise UsageError(f"invalid UPS state {text!r}", "give IN PROGRESS, COMPLETED or CANCELED")
    return state


def change_state(state: str, transaction_uid: str) -> Dataset:
    from pydicom.dataset import Dataset as DS

    ds = DS()
    ds.ProcedureStepState = state
    ds.TransactionUID = transaction_uid
    return ds


def subscription(receiving_aet: str, deletion_lock: bool | None) -> Dataset:
    from pydicom.dataset import Dataset as DS

    ds = DS()
    ds.ReceivingAE = receiving_aet
    if deletion_lock is not None:
        ds.DeletionLock = "TRUE" if deletion_lock else "FALSE"
    return ds


def subscription_instance(ups_uid: str | None) -> str:
    """The UPS subscribed to, or the global subscription's well-known instance."""
    return ups_uid or UPS_GLOBAL_SUBSCRIPTION


#: The UPS presets of nactionscu and ncreatescu (dcmcli/conformance).
CONFORMANCE = [
    ApplicationEntity("NACTIONSCU", "nactionscu", contexts=(
        Contexts((UPS_PUSH,), NORMALIZED_SYNTAXES, "SCU", True, when="--ups-state, --ups-cancel",
                 note="N-ACTION 1 (Change UPS State) with a Transaction UID, N-ACTION 2 (Request UPS Cancel)"),
        Contexts((UPS_WATCH, UPS_EVENT), NORMALIZED_SYNTAXES, "SCU", True, when="--ups-subscribe, --ups-unsubscribe",
                 note="N-ACTION 3 / 4 / 5 (subscribe, unsubscribe, suspend global); the UPS Event reports that "
                      "arrive are printed"),
        Contexts((UPS_EVENT,), NORMALIZED_SYNTAXES, "SCU", False, when="--ups-subscribe --port PORT",
                 role_selection="answered: the peer may be SCP (it sends the reports as SCP of the class)",
                 note="event reports on a new association from the peer"),
    )),
    ApplicationEntity("NCREATESCU", "ncreatescu", contexts=(
        Contexts((UPS_PUSH,), NORMALIZED_SYNTAXES, "SCU", True, when="--ups",
                 note="N-CREATE of a SCHEDULED workitem"),)),
]
