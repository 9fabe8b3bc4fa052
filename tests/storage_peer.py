"""An independent storage SCP for the tests: pynetdicom's AE recording the
SOP Class Common Extended Negotiation items (PS3.7 D.3.3.6) and the C-STOREs
it receives.

Usage: python storage_peer.py RECORD-FILE [--private UID]... [--get FILE]... [--find N]

Listens on a free port of 127.0.0.1 and prints ``listening PORT`` once
ready; stops when its stdin closes. Accepts Verification and every storage
SOP class pynetdicom knows, in both little endian syntaxes, and each
``--private UID`` too. Every Common Extended Negotiation item of an
association request is appended to RECORD-FILE as one JSON line (op
"common-extended": SOP class, service class, related general SOP classes)
and accepted, so pynetdicom handles a private class its item names as
storage (its own reading of the item); every C-STORE is a line too (op
"C-STORE": SOP class, instance, and the service class pynetdicom mapped the
class to, from the accepted items). Flushed at once: a test reads exactly what
arrived. With ``--get FILE`` it is a C-GET SCP too (Study and Patient Root):
every C-GET (op "C-GET") is answered with those files as C-STORE
sub-operations on the requestor's association, whatever the identifier.
With ``--find N`` it is a Study Root C-FIND SCP that answers like dcmqrscp at
IMAGE level: N matches, none with SOP Class UID, recording how many it sent
and whether it saw a C-CANCEL between them (op "C-FIND"); every C-CANCEL-RQ
that arrives is a line too (op "C-CANCEL", whenever pynetdicom gets to it).
"""

from __future__ import annotations

import json
import sys
import threading

from pydicom import dcmread
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (PatientRootQueryRetrieveInformationModelGet,
                                  StudyRootQueryRetrieveInformationModelFind,
                                  StudyRootQueryRetrieveInformationModelGet, Verification)

record_path = sys.argv[1]
private = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--private"]
to_get = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--get"]
find_matches = int(next((sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--find"), 0))
lock = threading.Lock()
SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


def record(line: dict[str, object]) -> None:
    with lock, open(record_path, "a") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()


def on_common(event: object) -> dict[object, object]:
    items = event.items  # type: ignore[attr-defined]
    for uid, item in items.items():
        record({"op": "common-extended", "calling_aet": event.assoc.requestor.ae_title,  # type: ignore[attr-defined]
                "sop_class": str(uid), "service_class": str(item.service_class_uid),
                "related": [str(u) for u in item.related_general_sop_class_identification]})
    return dict(items)  # all accepted: pynetdicom then treats each class as its service class says


def on_store(event: object) -> int:
    req = event.request  # type: ignore[attr-defined]
    sop_class = str(req.AffectedSOPClassUID)
    accepted = event.assoc.acceptor.accepted_common_extended  # type: ignore[attr-defined]
    record({"op": "C-STORE", "sop_class": sop_class, "instance": str(req.AffectedSOPInstanceUID),
            "service_class": str(accepted[sop_class][0]) if sop_class in accepted else None})
    return 0x0000


def on_get(event: object):  # type: ignore[no-untyped-def]
    record({"op": "C-GET", "calling_aet": event.assoc.requestor.ae_title})  # type: ignore[attr-defined]
    yield len(to_get)
    for path in to_get:
        if event.is_cancelled:  # type: ignore[attr-defined]
            yield 0xFE00, None
            return
        yield 0xFF00, dcmread(path)


def on_find(event: object):  # type: ignore[no-untyped-def]
    from pydicom.dataset import Dataset

    sent, cancelled = 0, False
    for n in range(find_matches):
        if event.is_cancelled:  # type: ignore[attr-defined]
            cancelled = True
            break
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.2.3", "1.2.3.4", f"1.2.3.4.{n + 1}"
        sent += 1
        yield 0xFF00, ds
    record({"op": "C-FIND", "answered": sent, "cancelled": cancelled})
    if cancelled:
        yield 0xFE00, None


def on_dimse(event: object) -> None:
    msg = event.message  # type: ignore[attr-defined]
    if type(msg).__name__ == "C_CANCEL_RQ":
        record({"op": "C-CANCEL", "message_id": int(msg.command_set.MessageIDBeingRespondedTo)})


ae = AE(ae_title="STORAGEPEER")
ae.add_supported_context(Verification, SYNTAXES)
# Both roles accepted as proposed: a storage SCU's contexts, and a C-GET's (the requestor is the SCP).
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, SYNTAXES, scu_role=True, scp_role=True)
for uid in private:
    ae.add_supported_context(uid, SYNTAXES, scu_role=True, scp_role=True)
if to_get:
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet, SYNTAXES)
    ae.add_supported_context(PatientRootQueryRetrieveInformationModelGet, SYNTAXES)
if find_matches:
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind, SYNTAXES)
server = ae.start_server(("127.0.0.1", 0), block=False,
                         evt_handlers=[(evt.EVT_SOP_COMMON, on_common), (evt.EVT_C_STORE, on_store),
                                       (evt.EVT_C_GET, on_get), (evt.EVT_C_FIND, on_find),
                                       (evt.EVT_DIMSE_RECV, on_dimse)])
print(f"listening {server.server_address[1]}", flush=True)
try:
    sys.stdin.read()  # until the test closes our stdin (or kills us)
finally:
    server.shutdown()
