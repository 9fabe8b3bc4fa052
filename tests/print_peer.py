"""An independent colour (and grayscale) Print SCP for the tests: pynetdicom's
AE serving Basic Color and Basic Grayscale Print Management Meta and Print Job.

Usage: python print_peer.py RECORD-FILE [--printer-status FAILURE] [--job FAILURE]
       [--job-via-get] [--grayscale-only] [--image-box-status HEX] [--tls KEY CERT CA]

Listens on a free port of 127.0.0.1 and prints ``listening PORT`` once ready.
Every request is appended to RECORD-FILE as one JSON line (operation, SOP
class, instance, the data set as DICOM JSON, binary values inline), flushed
at once, so a test reads exactly what arrived. Behaviour:

- N-GET of the Printer: Printer Status NORMAL (or as --printer-status), name,
  manufacturer, model; of a Print Job: its Execution Status; of the Printer
  Configuration Retrieval instance: one configuration item.
- N-CREATE of a film session: a new UID; of a film box: as many image boxes
  as its Image Display Format has (STANDARD\\C,R, ROW\\.., COL\\..), of the
  colour or grayscale class as the context's meta SOP class, and two
  annotation boxes when it has an Annotation Display Format ID.
- N-SET of an image or annotation box: 0000, or --image-box-status (a warning such as
  B604); 0x0112 for an unknown one.
- N-ACTION print of a film box or session: a Print Job, named in the response;
  then its N-EVENT-REPORT (3 DONE, or 4 FAILURE with --job FAILURE) on the
  same association, unless --job-via-get (then only N-GET tells).
- N-DELETE: 0000.
- ``--tls KEY CERT CA``: the server speaks TLS (tests/pynetdicom_peer.py).
"""

from __future__ import annotations

import json
import sys
import threading

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt

COLOR_META, GRAY_META = "1.2.840.10008.5.1.1.18", "1.2.840.10008.5.1.1.9"
FILM_SESSION, FILM_BOX = "1.2.840.10008.5.1.1.1", "1.2.840.10008.5.1.1.2"
GRAY_BOX, COLOR_BOX = "1.2.840.10008.5.1.1.4", "1.2.840.10008.5.1.1.4.1"
PRINTER, PRINT_JOB = "1.2.840.10008.5.1.1.16", "1.2.840.10008.5.1.1.14"
PRINTER_CONFIGURATION = "1.2.840.10008.5.1.1.16.376"
ANNOTATION_BOX = "1.2.840.10008.5.1.1.15"

from pynetdicom_peer import serve, tls_contexts

args = sys.argv[1:]
record_path = args[0]
server_tls, _ = tls_contexts(args)


def option(name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args else default


printer_state = option("--printer-status", "NORMAL")
job_end = option("--job", "DONE")
job_via_get = "--job-via-get" in args
grayscale_only = "--grayscale-only" in args
image_box_status = int(option("--image-box-status", "0000"), 16)
lock = threading.Lock()
image_boxes: set[str] = set()
jobs: dict[str, str] = {}


def record(op: str, event: object, sop_class: str, instance: str, ds: Dataset | None) -> None:
    line = {"op": op, "sop_class": sop_class, "instance": instance,
            "meta": event.context.abstract_syntax,  # type: ignore[attr-defined]
            "dataset": ds.to_json_dict(bulk_data_threshold=1 << 30) if ds is not None else None}
    with lock, open(record_path, "a") as f:
        f.write(json.dumps(line) + "\n")
        f.flush()


def boxes_of(display_format: str) -> int:
    kind, _, counts = display_format.partition("\\")
    numbers = [int(n) for n in counts.split(",")]
    return numbers[0] * numbers[1] if kind == "STANDARD" else sum(numbers)


def on_get(event: object) -> tuple[int, Dataset | None]:
    req = event.request  # type: ignore[attr-defined]
    sop_class, uid = str(req.RequestedSOPClassUID), str(req.RequestedSOPInstanceUID)
    record("N-GET", event, sop_class, uid, None)
    ds = Dataset()
    if sop_class == PRINTER:
        ds.PrinterStatus = printer_state
        ds.PrinterStatusInfo = "NORMAL" if printer_state == "NORMAL" else "ELEC DOWN"
        ds.PrinterName = "COLOR-PEER"
        ds.Manufacturer = "pynetdicom"
        ds.ManufacturerModelName = "test print SCP"
        return 0x0000, ds
    if sop_class == PRINT_JOB:
        if uid not in jobs:
            return 0x0112, None
        ds.ExecutionStatus = jobs[uid]
        ds.ExecutionStatusInfo = "NORMAL" if jobs[uid] == "DONE" else "PROC OVERFLOW"
        return 0x0000, ds
    if sop_class == PRINTER_CONFIGURATION:
        item = Dataset()
        item.SOPClassesSupported = [COLOR_META, GRAY_META, PRINT_JOB]
        item.MaximumMemoryAllocation = 64
        item.PrinterName = "COLOR-PEER"
        ds.PrinterConfigurationSequence = [item]
        return 0x0000, ds
    return 0x0118, None


def on_create(event: object) -> tuple[int, Dataset | None]:
    req = event.request  # type: ignore[attr-defined]
    sop_class = str(req.AffectedSOPClassUID)
    ds = event.attribute_list  # type: ignore[attr-defined]
    record("N-CREATE", event, sop_class, str(req.AffectedSOPInstanceUID or ""), ds)
    uid = str(req.AffectedSOPInstanceUID or "") or str(generate_uid())
    reply = Dataset()
    if sop_class == FILM_BOX:
        box_class = COLOR_BOX if event.context.abstract_syntax == COLOR_META else GRAY_BOX  # type: ignore[attr-defined]
        items = []
        for _ in range(boxes_of(str(ds.ImageDisplayFormat))):
            item = Dataset()
            item.ReferencedSOPClassUID = box_class
            item.ReferencedSOPInstanceUID = str(generate_uid())
            image_boxes.add(item.ReferencedSOPInstanceUID)
            items.append(item)
        reply.ImageDisplayFormat = ds.ImageDisplayFormat
        reply.ReferencedImageBoxSequence = items
        if ds.get("AnnotationDisplayFormatID"):
            notes = []
            for _ in range(2):
                item = Dataset()
                item.ReferencedSOPClassUID = ANNOTATION_BOX
                item.ReferencedSOPInstanceUID = str(generate_uid())
                image_boxes.add(item.ReferencedSOPInstanceUID)
                notes.append(item)
            reply.ReferencedBasicAnnotationBoxSequence = notes
    elif sop_class != FILM_SESSION:
        return 0x0118, None
    reply.AffectedSOPInstanceUID = uid  # pynetdicom moves it into the response's command set
    return 0x0000, reply


def on_set(event: object) -> tuple[int, Dataset | None]:
    req = event.request  # type: ignore[attr-defined]
    uid = str(req.RequestedSOPInstanceUID)
    record("N-SET", event, str(req.RequestedSOPClassUID), uid, event.attribute_list)  # type: ignore[attr-defined]
    if uid not in image_boxes:
        return 0x0112, None
    return image_box_status, None


after_response: dict[int, tuple[Dataset, int, str]] = {}


def on_action(event: object) -> tuple[int, Dataset | None]:
    req = event.request  # type: ignore[attr-defined]
    record("N-ACTION", event, str(req.RequestedSOPClassUID), str(req.RequestedSOPInstanceUID), None)
    job = str(generate_uid())
    jobs[job] = str(job_end)
    reply = Dataset()
    ref = Dataset()
    ref.ReferencedSOPClassUID = PRINT_JOB
    ref.ReferencedSOPInstanceUID = job
    reply.ReferencedPrintJobSequence = [ref]
    if not job_via_get:
        info = Dataset()
        info.ExecutionStatusInfo = "NORMAL" if job_end == "DONE" else "PROC OVERFLOW"
        info.PrinterName = "COLOR-PEER"
        after_response[id(event.assoc)] = (info, 3 if job_end == "DONE" else 4, job)  # type: ignore[attr-defined]
    return 0x0000, reply


def on_sent(event: object) -> None:
    if type(event.message).__name__ != "N_ACTION_RSP":  # type: ignore[attr-defined]
        return
    job = after_response.pop(id(event.assoc), None)  # type: ignore[attr-defined]
    if job is None:
        return
    info, event_type, uid = job

    def send() -> None:
        event.assoc.send_n_event_report(info, event_type, PRINT_JOB, uid)  # type: ignore[attr-defined]

    threading.Thread(target=send, daemon=True).start()


def on_delete(event: object) -> int:
    req = event.request  # type: ignore[attr-defined]
    record("N-DELETE", event, str(req.RequestedSOPClassUID), str(req.RequestedSOPInstanceUID), None)
    return 0x0000


ae = AE(ae_title="COLORSCP")
for cx in ([GRAY_META] if grayscale_only else [COLOR_META, GRAY_META]) + [PRINT_JOB, PRINTER_CONFIGURATION, ANNOTATION_BOX]:
    ae.add_supported_context(cx, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"], scu_role=True, scp_role=True)
server = ae.start_server(("127.0.0.1", 0), block=False, ssl_context=server_tls,
                         evt_handlers=[(evt.EVT_N_GET, on_get), (evt.EVT_N_CREATE, on_create), (evt.EVT_N_SET, on_set),
                                       (evt.EVT_N_ACTION, on_action), (evt.EVT_N_DELETE, on_delete),
                                       (evt.EVT_DIMSE_SENT, on_sent)])
serve(server)  # until the test closes our stdin (or kills us)
