"""An independent normalized-service SCP for the tests: pynetdicom's AE
serving MPPS, IAN, UPS (Push, Watch, Event), Storage Commitment, Media
Creation Management and Procedural Event Logging.

Usage: python nservice_peer.py RECORD-FILE [--refuse-create] [--tls KEY CERT CA] [--report-to PORT]

Listens on a free port of 127.0.0.1 and prints ``listening PORT`` once
ready. Every request it receives is appended to RECORD-FILE as one JSON
line (operation, SOP class, instance, action/event type, the data set as
DICOM JSON, the calling AE title), flushed at once, so a test reads exactly
what arrived. Behaviour:

- N-CREATE: 0000, the data set echoed; an MPPS or UPS is remembered.
- N-SET of an MPPS: 0000 (0x0112 for an unknown one); the MPPS's status updated.
- N-ACTION of a UPS: change state checks the Transaction UID (C301 when it
  differs, C310 for COMPLETED before IN PROGRESS); subscribe answers 0000 and
  then sends a UPS State Report (event 1) on the same association.
- N-ACTION of Storage Commitment type 1: 0000, then the report on the same
  association (event 1, or 2 with Failure Reason 0112 for instances whose
  UID ends in .999).
  With ``--report-to PORT`` the report goes on a new association to
  127.0.0.1:PORT instead (called AE title: the requester's; Storage
  Commitment proposed with the SCP role), after the pause point ``report``
  (tests/pynetdicom_peer.py), and its N-EVENT-REPORT-RSP status is
  recorded as an ``N-EVENT-REPORT`` line.
- Any other action type: 0123 (no such action).
- ``--tls KEY CERT CA``: the server and the report association over TLS.
"""

from __future__ import annotations

import json
import sys
import threading

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (InstanceAvailabilityNotification, MediaCreationManagement,
                                  ModalityPerformedProcedureStep, ProceduralEventLogging,
                                  StorageCommitmentPushModel, UnifiedProcedureStepEvent, UnifiedProcedureStepPull,
                                  UnifiedProcedureStepPush, UnifiedProcedureStepWatch, Verification)

from pynetdicom_peer import option_values, pause, serve, tls_contexts

record_path = sys.argv[1]
refuse_create = "--refuse-create" in sys.argv
server_tls, client_tls = tls_contexts(sys.argv)
report_to = int((option_values(sys.argv, "--report-to") or ["0"])[0]) or None
lock = threading.Lock()
mpps: dict[str, str] = {}
ups: dict[str, dict[str, str]] = {}


def record_line(line: dict[str, object]) -> None:
    with lock, open(record_path, "a") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()


def record(op: str, event: object, **extra: object) -> None:
    req = event.request  # type: ignore[attr-defined]
    ds = None
    if op != "N-ACTION" or req.ActionInformation is not None:
        try:
            got = event.action_information if op == "N-ACTION" else (  # type: ignore[attr-defined]
                event.attribute_list if op in ("N-CREATE", "N-SET") else None)  # type: ignore[attr-defined]
            ds = got.to_json_dict() if got is not None else None
        except Exception as exc:  # noqa: BLE001
            ds = {"error": str(exc)}
    sop_class = req.AffectedSOPClassUID if op == "N-CREATE" else req.RequestedSOPClassUID
    instance = req.AffectedSOPInstanceUID if op == "N-CREATE" else req.RequestedSOPInstanceUID
    line = {"op": op, "sop_class": str(sop_class or ""), "instance": str(instance or ""),
            "calling_aet": event.assoc.requestor.ae_title, "dataset": ds, **extra}  # type: ignore[attr-defined]
    record_line(line)


#: Reports to send once the N-ACTION response that prompts them has gone out.
after_response: dict[int, tuple[Dataset, int, str, str]] = {}


def on_sent(event: object) -> None:
    msg = event.message  # type: ignore[attr-defined]
    if type(msg).__name__ != "N_ACTION_RSP":
        return
    job = after_response.pop(id(event.assoc), None)  # type: ignore[attr-defined]
    if job is None:
        return
    ds, event_type, sop_class, instance = job

    def send() -> None:
        if report_to is not None and sop_class == StorageCommitmentPushModel:
            return report_on_new_association(event.assoc.requestor.ae_title, ds, event_type)  # type: ignore[attr-defined]
        event.assoc.send_n_event_report(ds, event_type, sop_class, instance)  # type: ignore[attr-defined]

    threading.Thread(target=send, daemon=True).start()


def report_on_new_association(requester: str, ds: Dataset, event_type: int) -> None:
    """The storage commitment report on an association of our own to the requester's listener."""
    pause("report")
    assoc = ae.associate("127.0.0.1", report_to, ae_title=requester, tls_args=client_tls,
                         ext_neg=[build_role(StorageCommitmentPushModel, scp_role=True)])
    if not assoc.is_established:
        record_line({"op": "N-EVENT-REPORT", "error": "association to the requester not established"})
        return
    rsp = assoc.send_n_event_report(ds, event_type, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
    record_line({"op": "N-EVENT-REPORT", "status": int(rsp[0].Status) if rsp and rsp[0] else None})
    assoc.release()


def on_create(event: object) -> tuple[int, Dataset | None]:
    record("N-CREATE", event)
    if refuse_create:
        return 0x0106, None
    req = event.request  # type: ignore[attr-defined]
    ds = event.attribute_list  # type: ignore[attr-defined]
    uid = str(req.AffectedSOPInstanceUID or "")
    if not uid:
        from pydicom.uid import generate_uid

        uid = str(generate_uid())
        ds.AffectedSOPInstanceUID = uid  # pynetdicom moves it into the response's command set
    if req.AffectedSOPClassUID == ModalityPerformedProcedureStep:
        mpps[uid] = str(ds.get("PerformedProcedureStepStatus", ""))
    elif req.AffectedSOPClassUID == UnifiedProcedureStepPush:
        ups[uid] = {"state": str(ds.get("ProcedureStepState", "")), "transaction": ""}
    return 0x0000, ds


def on_set(event: object) -> tuple[int, Dataset | None]:
    record("N-SET", event)
    req = event.request  # type: ignore[attr-defined]
    uid = str(req.RequestedSOPInstanceUID)
    ds = event.attribute_list  # type: ignore[attr-defined]
    if req.RequestedSOPClassUID == ModalityPerformedProcedureStep:
        if uid not in mpps:
            return 0x0112, None
        mpps[uid] = str(ds.get("PerformedProcedureStepStatus", mpps[uid]))
    return 0x0000, ds


def on_action(event: object) -> tuple[int, Dataset | None]:
    req = event.request  # type: ignore[attr-defined]
    action = int(req.ActionTypeID)
    record("N-ACTION", event, action_type=action)
    sop_class = req.RequestedSOPClassUID
    uid = str(req.RequestedSOPInstanceUID)
    info = event.action_information if req.ActionInformation is not None else Dataset()  # type: ignore[attr-defined]
    if sop_class == StorageCommitmentPushModel and action == 1:
        report = Dataset()
        report.TransactionUID = info.TransactionUID
        ok, failed = [], []
        for item in info.ReferencedSOPSequence:
            ref = Dataset()
            ref.ReferencedSOPClassUID = item.ReferencedSOPClassUID
            ref.ReferencedSOPInstanceUID = item.ReferencedSOPInstanceUID
            if str(item.ReferencedSOPInstanceUID).endswith(".999"):
                ref.FailureReason = 0x0112
                failed.append(ref)
            else:
                ok.append(ref)
        if ok:
            report.ReferencedSOPSequence = ok
        if failed:
            report.FailedSOPSequence = failed
        after_response[id(event.assoc)] = (report, 2 if failed else 1, StorageCommitmentPushModel,  # type: ignore[attr-defined]
                                           "1.2.840.10008.1.20.1.1")
        return 0x0000, None
    if sop_class == UnifiedProcedureStepPush and action == 1:
        item = ups.get(uid)
        if item is None:
            return 0xC307, None
        state, tuid = str(info.get("ProcedureStepState", "")), str(info.get("TransactionUID", ""))
        if state == "IN PROGRESS":
            if item["state"] != "SCHEDULED":
                return 0xC302, None
            item.update(state=state, transaction=tuid)
        else:
            if item["state"] != "IN PROGRESS":
                return 0xC310, None
            if tuid != item["transaction"]:
                return 0xC301, None
            item["state"] = state
        return 0x0000, None
    if sop_class == UnifiedProcedureStepPush and action == 2:
        return (0x0000 if uid in ups else 0xC307), None
    if sop_class == UnifiedProcedureStepWatch and action in (3, 4):
        if action == 3:
            report = Dataset()
            report.ProcedureStepState = ups.get(uid, {}).get("state", "SCHEDULED")
            report.InputReadinessState = "READY"
            after_response[id(event.assoc)] = (report, 1, UnifiedProcedureStepEvent, uid)  # type: ignore[attr-defined]
        return 0x0000, None
    if sop_class in (MediaCreationManagement, ProceduralEventLogging) and action == 1:
        if sop_class == ProceduralEventLogging:
            return 0x0000, None
        reply = Dataset()
        reply.ExecutionStatus = "IDLE"
        return 0x0000, reply
    return 0x0123, None


ae = AE(ae_title="NSCP")
for cx in (ModalityPerformedProcedureStep, InstanceAvailabilityNotification, UnifiedProcedureStepPush,
           UnifiedProcedureStepWatch, UnifiedProcedureStepPull, UnifiedProcedureStepEvent,
           StorageCommitmentPushModel, MediaCreationManagement, ProceduralEventLogging, Verification):
    ae.add_supported_context(cx, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"], scu_role=True, scp_role=True)
ae.add_requested_context(StorageCommitmentPushModel, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=server_tls,
                         evt_handlers=[(evt.EVT_N_CREATE, on_create), (evt.EVT_N_SET, on_set),
                                       (evt.EVT_N_ACTION, on_action), (evt.EVT_DIMSE_SENT, on_sent)])
serve(server)  # until the test closes our stdin (or kills us)
