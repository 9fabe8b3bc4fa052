"""An independent C-MOVE SCP for the tests: pynetdicom's AE serving Study
Root and Patient Root C-MOVE of the DICOM files it is given.

Usage: python move_peer.py RECORD-FILE --destination AET=PORT [--tls KEY CERT CA] FILE...

Listens on a free port of 127.0.0.1 and prints ``listening PORT`` once
ready (tests/pynetdicom_peer.py). Each C-MOVE request is appended to
RECORD-FILE as one JSON line (destination, identifier as DICOM JSON) and
answered by sending the files whose Patient ID, Study, Series and SOP
Instance UIDs match the identifier's (those it has) to 127.0.0.1:PORT of
the destination, after the pause point ``move``; over TLS with ``--tls``
(the sub-association presents this peer's certificate). An unknown
destination gets A801.
"""

from __future__ import annotations

import json
import sys

from pydicom import dcmread
from pynetdicom import AE, evt
from pynetdicom.sop_class import PatientRootQueryRetrieveInformationModelMove, StudyRootQueryRetrieveInformationModelMove

from pynetdicom_peer import option_values, pause, serve, tls_contexts

args = sys.argv[1:]
record_path = args[0]
server_tls, client_tls = tls_contexts(args)
aet, _, port = (option_values(args, "--destination") or ["="])[0].partition("=")
destinations = {aet: int(port)} if port else {}
skip = {i for name, n in (("--tls", 3), ("--destination", 1)) if name in args
        for i in range(args.index(name), args.index(name) + n + 1)}
files = [dcmread(a) for i, a in enumerate(args) if i and i not in skip]
KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def on_move(event: object):  # type: ignore[no-untyped-def]
    ident = event.identifier  # type: ignore[attr-defined]
    with open(record_path, "a") as f:
        f.write(json.dumps({"op": "C-MOVE", "destination": event.move_destination.strip(),  # type: ignore[attr-defined]
                            "identifier": ident.to_json_dict()}) + "\n")
    port = destinations.get(event.move_destination.strip())  # type: ignore[attr-defined]
    if port is None:
        yield None, None
        return
    matches = [ds for ds in files
               if all(str(ds.get(k, "")) == str(ident.get(k)) for k in KEYS if ident.get(k))]
    pause("move")
    yield "127.0.0.1", port, ({"tls_args": client_tls} if client_tls else {})
    yield len(matches)
    for ds in matches:
        if event.is_cancelled:  # type: ignore[attr-defined]
            yield 0xFE00, None
            return
        yield 0xFF00, ds


ae = AE(ae_title="MOVESCP")
for model in (StudyRootQueryRetrieveInformationModelMove, PatientRootQueryRetrieveInformationModelMove):
    ae.add_supported_context(model, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])
for sop_class, syntax in {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in files}:
    ae.add_requested_context(sop_class, [syntax])
server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=server_tls, evt_handlers=[(evt.EVT_C_MOVE, on_move)])
serve(server)  # until the test closes our stdin (or kills us)
