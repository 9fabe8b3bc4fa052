"""nactionscu, ncreatescu and storescp --commitment against real peers:
Orthanc as Storage Commitment SCP (its report on a new association to our
listener) and as commitment SCU, pynetdicom's AE as the SCP of MPPS, IAN,
UPS, Storage Commitment on the same association and the generic commands
(tests/nservice_peer.py, which records what it received), and dcmcli's own
storescp --commitment."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (copy_samples, dcmcli_cmd, json_lines, next_event, received_events, recording_peers,
                      run_dcmcli, stop)
from qr_peers import free_ports

PEER_SCRIPT = Path(__file__).with_name("nservice_peer.py")
MPPS, IAN = "1.2.840.10008.3.1.2.3.3", "1.2.840.10008.5.1.4.33"
UPS_PUSH, UPS_WATCH = "1.2.840.10008.5.1.4.34.6.1", "1.2.840.10008.5.1.4.34.6.2"
COMMITMENT, COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1", "1.2.840.10008.1.20.1.1"


def value(ds: dict[str, object], keyword_tag: str) -> object:
    """The first value of a DICOM JSON element (tag as 'ggggeeee'), None when absent or empty."""
    elem = ds.get(keyword_tag)
    if not isinstance(elem, dict):
        return None
    values = elem.get("Value") or [None]
    v = values[0]
    return v.get("Alphabetic") if isinstance(v, dict) and "Alphabetic" in v else v


def items(ds: dict[str, object], tag: str) -> list[dict[str, object]]:
    elem = ds.get(tag)
    return list(elem.get("Value") or []) if isinstance(elem, dict) else []


@pytest.fixture
def npeer(tmp_path: Path) -> Iterator:
    """Factory: pynetdicom's AE (tests/nservice_peer.py) on a free port; stopped at teardown."""
    yield from recording_peers(PEER_SCRIPT, tmp_path, "peer")


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    """Two images of one study (CT) and one of another (MR), each with its own SOP Instance UID."""
    from pydicom import dcmread

    files = copy_samples(tmp_path / "images", ["explicit-le", "implicit-le"])
    extra = tmp_path / "images" / "ct-2.dcm"
    ds = dcmread(files[0])
    from pydicom.uid import generate_uid

    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(extra, enforce_file_format=True)
    return [files[0], extra, files[1]]


def sop_uid(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def events(r: subprocess.CompletedProcess[str], name: str) -> list[dict[str, object]]:
    return [e for e in json_lines(r.stdout) if e.get("event") == name]


# -- storage commitment against Orthanc ---------------------------------------------------

def test_commit_to_orthanc_report_on_a_new_association(orthanc, images: list[Path]) -> None:
    """Orthanc commits what it has; an instance it never got comes back failed with 0112.
    Its report comes on a new association to our listener, as listed in its DicomModalities."""
    (listen,) = free_ports(1)
    o = orthanc(modalities={"stgcmt": ("STGCMTSCU", listen)}, dicomweb=False)
    o.load(images[:2])
    r = run_dcmcli("nactionscu", "--json", "-aet", "STGCMTSCU", "--commit", "--port", str(listen), "--wait", "30",
                   "127.0.0.1", str(o.port), *map(str, images))
    assert r.returncode == 66, r.stderr
    (result,) = events(r, "commitment")
    assert result["via"] == "new-association" and result["outcome"] == "failed"
    assert {c["sop_instance_uid"] for c in result["committed"]} == {sop_uid(p) for p in images[:2]}
    (failed,) = result["failed"]
    assert failed["sop_instance_uid"] == sop_uid(images[2]) and failed["path"] == str(images[2])
    assert failed["failure_reason"]["code"] == 0x0112 and "no such object instance" in failed["failure_reason"]["meaning"]
    summary = events(r, "summary")[-1]
    assert (summary["committed"], summary["failed"], summary["exit_code"]) == (2, 1, 66)
    assert events(r, "listening")[0]["port"] == listen


def test_commit_to_orthanc_all_committed_one_request_per_study(orthanc, images: list[Path]) -> None:
    (listen,) = free_ports(1)
    o = orthanc(modalities={"stgcmt": ("STGCMTSCU", listen)}, dicomweb=False)
    o.load(images)
    r = run_dcmcli("nactionscu", "-aet", "STGCMTSCU", "--commit", "--one-per-study", "--port", str(listen),
                   "127.0.0.1", str(o.port), str(images[0].parent))
    assert r.returncode == 0, r.stderr
    assert "3 of 3 committed" in r.stdout
    assert r.stdout.count("new association from") == 2  # two studies, two transactions, two reports


def test_commit_report_never_comes(orthanc, images: list[Path]) -> None:
    """Orthanc sends its report to the port in its DicomModalities; we listen elsewhere: no report, exit 63."""
    wrong, listen = free_ports(2)
    o = orthanc(modalities={"stgcmt": ("STGCMTSCU", wrong)}, dicomweb=False)
    o.load(images[:1])
    t0 = time.monotonic()
    r = run_dcmcli("nactionscu", "--json", "-aet", "STGCMTSCU", "--commit", "--port", str(listen), "--wait", "2",
                   "127.0.0.1", str(o.port), str(images[0]))
    assert r.returncode == 63, r.stderr
    assert time.monotonic() - t0 < 30
    assert "no storage commitment report on this association or on port" in r.stderr
    assert "DicomModalities" in r.stderr
    assert events(r, "summary")[-1]["not_reported"] == 1


def test_commit_inputs_that_are_not_dicom(npeer, images: list[Path], tmp_path: Path) -> None:
    """A file named on the command line that is not DICOM: warned, exit 22, the rest still committed."""
    junk = tmp_path / "notes.txt"
    junk.write_text("not DICOM")
    p = npeer()
    r = run_dcmcli("nactionscu", "--commit", "--wait", "20", "127.0.0.1", str(p.port), str(images[0]), str(junk))
    assert r.returncode == 22, r.stderr
    assert "notes.txt" in r.stderr and "1 of 1 committed" in r.stdout
    r = run_dcmcli("nactionscu", "--commit", "127.0.0.1", str(p.port), str(junk))
    assert r.returncode == 23 and "none of the 1 input files is usable DICOM" in r.stderr


# -- storage commitment on the same association (pynetdicom) -------------------------------

def test_commit_report_on_the_same_association(npeer, images: list[Path], tmp_path: Path) -> None:
    from pydicom import dcmread

    unknown = tmp_path / "unknown.dcm"
    ds = dcmread(images[0])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.999"  # the peer fails these
    ds.save_as(unknown, enforce_file_format=True)
    p = npeer()
    r = run_dcmcli("nactionscu", "--json", "--commit", "--wait", "20", "127.0.0.1", str(p.port),
                   str(images[0]), str(unknown))
    assert r.returncode == 66, r.stderr
    (result,) = events(r, "commitment")
    assert result["via"] == "same-association"
    assert [f["sop_instance_uid"] for f in result["failed"]] == ["1.2.3.4.999"]
    (got,) = p.received()
    assert (got["op"], got["sop_class"], got["instance"], got["action_type"]) == \
        ("N-ACTION", COMMITMENT, COMMITMENT_INSTANCE, 1)
    assert value(got["dataset"], "00081195") == result["transaction_uid"]  # Transaction UID
    refs = items(got["dataset"], "00081199")  # Referenced SOP Sequence
    assert [(value(i, "00081150"), value(i, "00081155")) for i in refs] == \
        [("1.2.840.10008.5.1.4.1.1.2", sop_uid(images[0])), ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.999")]


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def test_silent_connections_at_the_commitment_listener_do_not_hold_nactionscu(npeer, images: list[Path]) -> None:
    """nactionscu --commit --port -ta 60: five connections to its listener that
    never send a byte, opened while pynetdicom's SCP holds its report (pause
    point), do not keep nactionscu once the report came on a new association:
    it closes them and exits in seconds (it waited out -ta for them, 60 s)."""
    import socket

    (listen,) = free_ports(1)
    p = npeer("--report-to", str(listen))
    proc = subprocess.Popen(dcmcli_cmd("nactionscu", "--json", "-v", "-ta", "60", "-aet", "STGCMTSCU", "--commit",
                                       "--port", str(listen), "--wait", "60", "127.0.0.1", str(p.port),
                                       str(images[0])),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    silent: list[socket.socket] = []
    try:
        p.wait_paused("report")
        base = _threads(proc.pid)
        silent = [socket.create_connection(("127.0.0.1", listen), timeout=10) for _ in range(5)]
        deadline = time.monotonic() + 30
        while _threads(proc.pid) < base + 5:  # each connection accepted, its thread waiting for a request
            assert time.monotonic() < deadline and proc.poll() is None, "the connections were not accepted"
            time.sleep(0.02)  # polling /proc, not synchronising on time
        t0 = time.monotonic()
        p.resume()
        out, err = proc.communicate(timeout=50)
        took = time.monotonic() - t0
        for s in silent:
            try:
                assert s.recv(1) == b""
            except ConnectionResetError:
                pass
    finally:
        if proc.poll() is None:
            stop(proc)  # type: ignore[arg-type]
            proc.communicate()
        for s in silent:
            s.close()
    assert proc.returncode == 0, err
    assert took < 20, f"nactionscu took {took:.1f} s after its report (-ta 60)"
    (result,) = [e for e in json_lines(out) if e["event"] == "commitment"]
    assert (result["via"], result["outcome"]) == ("new-association", "committed")
    assert "closed 5 connections that had not asked for an association" in err
    assert [(r["op"], r.get("status")) for r in p.received()] == [("N-ACTION", None), ("N-EVENT-REPORT", 0)]


# -- MPPS, IAN --------------------------------------------------------------------------

def test_mpps_created_then_completed_on_the_same_instance(npeer, images: list[Path]) -> None:
    p = npeer()
    r = run_dcmcli("ncreatescu", "--json", "-aet", "CT01", "--mpps", "127.0.0.1", str(p.port), str(images[0]),
                   str(images[1]))
    assert r.returncode == 0, r.stderr
    create, nset = p.received()
    assert create["op"] == "N-CREATE" and create["sop_class"] == MPPS and nset["op"] == "N-SET"
    assert nset["instance"] == create["instance"] == events(r, "summary")[-1]["sop_instance_uids"][0]
    c = create["dataset"]
    assert value(c, "00400252") == "IN PROGRESS"  # Performed Procedure Step Status
    assert value(c, "00100010") == "CompressedSamples^CT1" and value(c, "00100020") == "1CT1"
    assert value(c, "00080060") == "CT" and value(c, "00400241") == "CT01"  # Modality, Performed Station AE
    assert value(c, "00400244") == "19970430"  # start date, from the images
    (sched,) = items(c, "00400270")
    assert value(sched, "0020000D") == "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    s = nset["dataset"]
    assert value(s, "00400252") == "COMPLETED" and value(s, "00400250")  # end date
    (series,) = items(s, "00400340")  # Performed Series Sequence
    assert sorted(value(i, "00081155") for i in items(series, "00081140")) == sorted(map(sop_uid, images[:2]))
    assert {e["operation"] for e in events(r, "response")} == {"N-CREATE", "N-SET"}


def test_mpps_in_progress_then_discontinued_from_a_second_command(npeer, images: list[Path]) -> None:
    p = npeer()
    r = run_dcmcli("ncreatescu", "--mpps", "--in-progress", "127.0.0.1", str(p.port), str(images[2]))
    assert r.returncode == 0, r.stderr
    (create,) = p.received()
    uid = create["instance"]
    assert f"instance UID: {uid}" in r.stdout
    r = run_dcmcli("ncreatescu", "--mpps", "--discontinue", "110514", "--mpps-uid", uid, "127.0.0.1", str(p.port),
                   str(images[2]))
    assert r.returncode == 0, r.stderr
    _, nset = p.received()
    assert (nset["op"], nset["instance"]) == ("N-SET", uid)
    assert value(nset["dataset"], "00400252") == "DISCONTINUED"
    (reason,) = items(nset["dataset"], "00400281")
    assert (value(reason, "00080100"), value(reason, "00080102"), value(reason, "00080104")) == \
        ("110514", "DCM", "Incorrect worklist entry selected")
    # an MPPS the peer does not know
    r = run_dcmcli("ncreatescu", "--mpps", "--mpps-uid", "1.2.3.4.5", "127.0.0.1", str(p.port))
    assert r.returncode == 66 and "no such SOP instance (0x0112)" in r.stderr


def test_ian_references(npeer, images: list[Path]) -> None:
    p = npeer()
    r = run_dcmcli("ncreatescu", "--ian", "--availability", "nearline", "--retrieve-aet", "ARCHIVE",
                   "--mpps-uid", "1.2.3.7", "127.0.0.1", str(p.port), str(images[0].parent))
    assert r.returncode == 0, r.stderr
    got = p.received()
    assert [g["sop_class"] for g in got] == [IAN, IAN]  # one per study
    by_study = {value(g["dataset"], "0020000D"): g["dataset"] for g in got}
    ct = by_study["1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"]
    (series,) = items(ct, "00081115")  # Referenced Series Sequence
    refs = items(series, "00081199")
    assert sorted(value(i, "00081155") for i in refs) == sorted(map(sop_uid, images[:2]))
    assert {value(i, "00080056") for i in refs} == {"NEARLINE"}  # Instance Availability
    assert {value(i, "00080054") for i in refs} == {"ARCHIVE"}  # Retrieve AE Title
    (pps,) = items(ct, "00081111")
    assert value(pps, "00081155") == "1.2.3.7"


# -- storescp --commitment ----------------------------------------------------------------

def test_storescp_commitment_against_nactionscu(dcmcli_storescp, images: list[Path]) -> None:
    """What storescp stored is committed, the rest fails with 0112; the report on the same association."""
    scp = dcmcli_storescp("--commitment")
    r = run_dcmcli("storescu", "127.0.0.1", str(scp.port), str(images[0]), str(images[1]))
    assert r.returncode == 0, r.stderr
    assert len(received_events(scp, 2)) == 2
    r = run_dcmcli("nactionscu", "--json", "--commit", "--wait", "20", "127.0.0.1", str(scp.port), *map(str, images))
    assert r.returncode == 66, r.stderr
    (result,) = events(r, "commitment")
    assert result["via"] == "same-association"
    assert {c["sop_instance_uid"] for c in result["committed"]} == set(map(sop_uid, images[:2]))
    assert [(f["sop_instance_uid"], f["failure_reason"]["code"]) for f in result["failed"]] == \
        [(sop_uid(images[2]), 0x0112)]
    served = next_event(scp, "commitment-served")
    assert served["transaction_uid"] == result["transaction_uid"] and served["via"] == "same-association"
    r = run_dcmcli("nactionscu", "--commit", "127.0.0.1", str(scp.port), str(images[0]))
    assert r.returncode == 0 and "1 of 1 committed" in r.stdout, r.stderr


def test_storescp_commitment_for_orthanc_as_scu(dcmcli_storescp, orthanc, images: list[Path]) -> None:
    """Orthanc asks (REST /modalities/.../storage-commitment); storescp reports to Orthanc's own port,
    named by --commitment-peer, since Orthanc's association is gone by then."""
    o = orthanc(dicomweb=False)
    scp = dcmcli_storescp("--commitment", "--commitment-peer", f"ORTHANC=127.0.0.1:{o.port}", "-aet", "STORESCP")
    o.add_modality("scp", "STORESCP", scp.port)
    r = run_dcmcli("storescu", "127.0.0.1", str(scp.port), str(images[0]))
    assert r.returncode == 0, r.stderr
    instances = [{"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "SOPInstanceUID": sop_uid(p)} for p in images[:2]]
    job = o.request("POST", "/modalities/scp/storage-commitment", {"DicomInstances": instances, "Timeout": 20})
    assert isinstance(job, dict) and "ID" in job, job
    served = next_event(scp, "commitment-served")
    # Orthanc releases right after the N-ACTION response: the report goes on a new association
    assert (served["calling_aet"], served["via"], served["error"]) == ("ORTHANC", "new-association", None)
    assert [c["sop_instance_uid"] for c in served["committed"]] == [sop_uid(images[0])]
    report = o.get(f"/storage-commitment/{job['ID']}")
    assert isinstance(report, dict) and report["Status"] == "Failure", report
    assert [f["SOPInstanceUID"] for f in report["Failures"]] == [sop_uid(images[1])]
    assert [s["SOPInstanceUID"] for s in report["Success"]] == [sop_uid(images[0])]


# -- UPS --------------------------------------------------------------------------------

def test_ups_create_claim_complete_with_the_transaction_uid(npeer, tmp_path: Path) -> None:
    p = npeer()
    spec = tmp_path / "ups.json"
    spec.write_text(json.dumps({"00741204": {"vr": "LO", "Value": ["Nightly QA"]},  # Procedure Step Label
                                "00100020": {"vr": "LO", "Value": ["P-42"]}}))
    r = run_dcmcli("ncreatescu", "--json", "--ups", "--dataset", str(spec), "-s", "PatientName=Doe^Jane",
                   "127.0.0.1", str(p.port))
    assert r.returncode == 0, r.stderr
    ups_uid = events(r, "summary")[-1]["sop_instance_uids"][0]
    (create,) = p.received()
    assert (create["op"], create["sop_class"], create["instance"]) == ("N-CREATE", UPS_PUSH, ups_uid)
    c = create["dataset"]
    assert value(c, "00741000") == "SCHEDULED" and value(c, "00404041") == "READY"  # state, input readiness
    assert value(c, "00741204") == "Nightly QA" and value(c, "00100020") == "P-42"
    assert value(c, "00100010") == "Doe^Jane" and value(c, "00741200") == "MEDIUM"

    # completing before claiming: refused by the peer (C310), in plain words
    r = run_dcmcli("nactionscu", "--ups-state", "COMPLETED", "--transaction-uid", "1.2.3", "127.0.0.1",
                   str(p.port), ups_uid)
    assert r.returncode == 66 and "the UPS is not IN PROGRESS yet (0xC310)" in r.stderr

    r = run_dcmcli("nactionscu", "--json", "--ups-state", "in progress", "127.0.0.1", str(p.port), ups_uid)
    assert r.returncode == 0, r.stderr
    (claim,) = events(r, "transaction")
    tuid = claim["transaction_uid"]
    action = p.received()[-1]
    assert (action["op"], action["instance"], action["action_type"]) == ("N-ACTION", ups_uid, 1)
    assert (value(action["dataset"], "00741000"), value(action["dataset"], "00081195")) == ("IN PROGRESS", tuid)

    # the wrong Transaction UID, then the right one
    r = run_dcmcli("nactionscu", "--ups-state", "COMPLETED", "--transaction-uid", "1.2.3", "127.0.0.1",
                   str(p.port), ups_uid)
    assert r.returncode == 66 and "wrong Transaction UID" in r.stderr and "(0xC301)" in r.stderr
    r = run_dcmcli("nactionscu", "--ups-state", "COMPLETED", "--transaction-uid", tuid, "127.0.0.1", str(p.port),
                   ups_uid)
    assert r.returncode == 0, r.stderr
    last = p.received()[-1]
    assert (value(last["dataset"], "00741000"), value(last["dataset"], "00081195")) == ("COMPLETED", tuid)
    r = run_dcmcli("nactionscu", "--ups-state", "COMPLETED", "127.0.0.1", str(p.port), ups_uid)
    assert r.returncode == 1 and "--transaction-uid" in r.stderr


def test_ups_cancel_request_and_subscriptions(npeer) -> None:
    p = npeer()
    r = run_dcmcli("ncreatescu", "--ups", "127.0.0.1", str(p.port), "1.2.3.4.77")
    assert r.returncode == 0, r.stderr
    r = run_dcmcli("nactionscu", "--ups-cancel", "-s", "ReasonForCancellation=patient left", "127.0.0.1",
                   str(p.port), "1.2.3.4.77")
    assert r.returncode == 0, r.stderr
    cancel = p.received()[-1]
    assert (cancel["action_type"], value(cancel["dataset"], "00741238")) == (2, "patient left")
    # subscribe to the UPS: the peer sends a state report on this association, printed as it comes
    r = run_dcmcli("nactionscu", "--json", "-aet", "WATCHER", "--ups-subscribe", "--deletion-lock", "--wait", "30",
                   "--stop-after", "1",
                   "127.0.0.1", str(p.port), "1.2.3.4.77")
    assert r.returncode == 0, r.stderr
    sub = p.received()[-1]
    assert (sub["sop_class"], sub["instance"], sub["action_type"]) == (UPS_WATCH, "1.2.3.4.77", 3)
    assert (value(sub["dataset"], "00741234"), value(sub["dataset"], "00741230")) == ("WATCHER", "TRUE")
    (report,) = events(r, "event-report")
    assert (report["sop_instance_uid"], report["event_type_id"], report["via"]) == \
        ("1.2.3.4.77", 1, "same-association")
    assert value(report["dataset"], "00741000") == "SCHEDULED"
    # global unsubscribe: the well-known instance
    r = run_dcmcli("nactionscu", "-aet", "WATCHER", "--ups-unsubscribe", "127.0.0.1", str(p.port))
    assert r.returncode == 0, r.stderr
    unsub = p.received()[-1]
    assert (unsub["instance"], unsub["action_type"]) == ("1.2.840.10008.5.1.4.34.5", 4)


# -- the generic commands, and what users get wrong ---------------------------------------

def test_generic_nactionscu_media_creation_and_event_logging(npeer, tmp_path: Path) -> None:
    p = npeer()
    out = tmp_path / "answer.dcm"
    r = run_dcmcli("nactionscu", "--json", "--out", str(out), "-s", "RequestPriority=HIGH", "127.0.0.1", str(p.port),
                   "MediaCreationManagement", "1.2.3.4.8", "1")
    assert r.returncode == 0, r.stderr
    (resp,) = events(r, "response")
    assert resp["status"]["meaning"] == "success" and value(resp["dataset"], "21000020") == "IDLE"
    from pydicom import dcmread

    assert dcmread(out).ExecutionStatus == "IDLE"
    got = p.received()[-1]
    assert (got["sop_class"], got["instance"], got["action_type"]) == ("1.2.840.10008.5.1.1.33", "1.2.3.4.8", 1)
    assert value(got["dataset"], "22000020") == "HIGH"  # Request Priority
    r = run_dcmcli("nactionscu", "-s", "ContentSequence[0].ConceptNameCodeSequence[0].CodeValue=110101", "127.0.0.1", str(p.port),
                   "event-logging", "event-logging", "1")
    assert r.returncode == 0, r.stderr
    got = p.received()[-1]
    assert (got["sop_class"], got["instance"]) == ("1.2.840.10008.1.40", "1.2.840.10008.1.40.1")
    (content,) = items(got["dataset"], "0040A730")  # Content Sequence
    (code,) = items(content, "0040A043")  # Concept Name Code Sequence
    assert value(code, "00080100") == "110101"
    r = run_dcmcli("ncreatescu", "--json", "-s", "PatientID=7", "127.0.0.1", str(p.port), "media-creation")
    assert r.returncode == 0, r.stderr
    create = p.received()[-1]
    assert create["instance"] == ""  # we named none: the SCP assigned one and returned it
    (assigned,) = events(r, "summary")[-1]["sop_instance_uids"]
    assert assigned.startswith("1.2.826.0.1.3680043") and events(r, "response")[0]["sop_instance_uid"] == assigned


def test_an_action_the_peer_refuses(npeer) -> None:
    p = npeer()
    r = run_dcmcli("nactionscu", "--json", "127.0.0.1", str(p.port), "MediaCreationManagement", "1.2.3.4.8", "7")
    assert r.returncode == 66
    assert "N-ACTION failed: no such action (0x0123)" in r.stderr and "ACTION-TYPE-ID" in r.stderr
    assert events(r, "summary")[-1]["status"]["code"] == 0x0123


def test_a_create_the_peer_refuses(npeer) -> None:
    p = npeer("--refuse-create")
    r = run_dcmcli("ncreatescu", "-s", "PatientID=7", "127.0.0.1", str(p.port), "mpps")
    assert r.returncode == 66 and "invalid attribute value (0x0106)" in r.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["NoSuchClass", "1.2.3", "1"], "unknown SOP class 'NoSuchClass'"),
    (["mpps", "1.2.3"], "needs SOPCLASS INSTANCE ACTION-TYPE-ID"),
    (["mpps", "not-a-uid", "1"], "invalid SOP instance 'not-a-uid'"),
    (["mpps", "1.2.3", "one"], "invalid Action Type ID 'one'"),
    (["--commit"], "--commit needs the files"),
    (["--commit", "--ups-cancel", "x"], "are different requests"),
])
def test_bad_usage(args: list[str], message: str) -> None:
    r = run_dcmcli("nactionscu", "127.0.0.1", "1", *args)
    assert r.returncode == 1 and message in r.stderr, r.stderr


def test_dataset_file_that_is_neither_dicom_nor_json(npeer, tmp_path: Path) -> None:
    bad = tmp_path / "attrs.txt"
    bad.write_text("PatientID=7\n")
    p = npeer()
    r = run_dcmcli("ncreatescu", "--dataset", str(bad), "127.0.0.1", str(p.port), "mpps")
    assert r.returncode == 22 and "data set file" in r.stderr and "neither DICOM nor DICOM JSON" in r.stderr
    assert p.received() == []  # nothing was sent


def test_peer_that_does_not_support_the_class(dcmcli_storescp) -> None:
    scp = dcmcli_storescp()
    r = run_dcmcli("ncreatescu", "127.0.0.1", str(scp.port), "mpps")
    assert r.returncode == 65, r.stderr
    assert "Modality Performed Procedure Step" in r.stderr


def test_orthanc_aborts_a_commitment_request_from_an_unknown_ae(orthanc, images: list[Path]) -> None:
    """Orthanc aborts an N-ACTION from an AE title missing from its DicomModalities: the hint says so."""
    o = orthanc(dicomweb=False)
    r = run_dcmcli("nactionscu", "-aet", "STRANGER", "--commit", "127.0.0.1", str(o.port), str(images[0]))
    assert r.returncode == 62, r.stderr
    assert "aborted" in r.stderr and "DicomModalities" in r.stderr and "STRANGER" in r.stderr


def test_mpps_with_a_file_that_is_not_dicom(npeer, images: list[Path], tmp_path: Path) -> None:
    junk = tmp_path / "scan.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not DICOM")
    p = npeer()
    r = run_dcmcli("ncreatescu", "--mpps", "127.0.0.1", str(p.port), str(images[2]), str(junk))
    assert r.returncode == 22, r.stderr
    assert "scan.jpg" in r.stderr
    assert [g["op"] for g in p.received()] == ["N-CREATE", "N-SET"]  # the image's MPPS still went
