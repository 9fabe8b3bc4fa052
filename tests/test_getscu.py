"""dcmcli getscu against real Query/Retrieve peers (dcmqrscp, Orthanc)
holding a mixed archive (CT, MR, SR, a JPEG-LS Secondary Capture, a JPEG
2000 US): objects compared with the originals, the storage options shared
with storescp, sub-operations that fail, a full disk, bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import JPEGLSLossless

from qr_cli import (A, B, MANY, Archive, Archives, Run, archive, archives, assert_same_objects, dcmcli,  # noqa: F401
                    many, many_archive, received_files)
from conftest import copy_samples, run_dcmcli
from qr_peers import QRStudy, free_ports

pytestmark = pytest.mark.interop

MANY_INSTANCES = 40


def _get(archive: Archive, outdir: Path, *args: str, files: tuple[Path, ...] = ()) -> Run:
    return dcmcli("getscu", "--json", "-od", str(outdir), *args, *archive.at(), *map(str, files))


def _both(s: QRStudy) -> str:
    return "\\".join(s.study_uids())


# --------------------------------------------------------------------------
# the whole archive, compared with the originals

def test_get_mixed_studies(archive: Archive, qr_study: QRStudy, tmp_path: Path) -> None:
    """Both studies in one C-GET (a UID list): the C-FIND first names five
    SOP classes; the JPEG-LS SC and the JPEG 2000 US arrive in their own
    syntax (from Orthanc too, which would decompress the one and fail the
    other given uncompressed contexts only), the others uncompressed."""
    r = _get(archive, tmp_path / "got", "-v", "-k", f"StudyInstanceUID={_both(qr_study)}")
    assert r.code == 0, r
    s = r.summary
    assert (s["completed"], s["failed"], s["warning"], s["received"], s["missing"]) == (9, 0, 0, 9, 0), s
    assert s["status"]["hex"] == "0x0000" and s["exit_code"] == 0  # type: ignore[index]
    if archive.kind == "orthanc":
        assert "the peer lists 9 instances of 5 SOP classes" in r.stderr
    else:  # dcmqrscp drops SOP Class UID at IMAGE level (its C-FIND is cancelled, if not all answered by then)
        assert "the peer does not say which SOP classes the objects have: proposing the common storage classes" \
            in r.stderr
    received = r.of("received")
    assert sorted(e["sop_instance_uid"] for e in received) == sorted(i.sop_instance_uid for i in qr_study.instances)
    assert {e["calling_aet"] for e in received} == {archive.aec}
    assert_same_objects(tmp_path / "got", list(qr_study.instances))


def test_no_find(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    """--no-find proposes the common storage classes, one context each with
    every syntax: dcmqrscp (whose profile prefers the stored syntax) sends
    the JPEG 2000 US as stored; Orthanc picks uncompressed and decompresses
    the JPEG-LS SC."""
    b, a = qr_study.study_uids(B)[0], qr_study.study_uids(A)[0]
    r = _get(archives.q, tmp_path / "q", "-v", "--no-find", "-k", f"StudyInstanceUID={b}")
    assert r.code == 0, r
    assert "the peer lists" not in r.stderr and r.summary["received"] == 2
    assert_same_objects(tmp_path / "q", qr_study.select(study_uid=b))
    r = _get(archives.o, tmp_path / "o", "--no-find", "-k", f"StudyInstanceUID={a}")
    assert r.code == 0, r
    assert_same_objects(tmp_path / "o", qr_study.select(study_uid=a), keep_compressed=False)


def test_from_files(archive: Archive, qr_study: QRStudy, tmp_path: Path) -> None:
    """Exactly the files' instances, from three series: the JPEG-LS SC and
    the JPEG 2000 US arrive as stored (the files name their syntaxes, so
    those are proposed; Orthanc cannot decompress JPEG 2000)."""
    sc = qr_study.select(patient_id=A, modality="OT")[0]
    mr = qr_study.select(patient_id=A, modality="MR")[1]
    us = qr_study.select(patient_id=B, modality="US")[0]
    r = _get(archive, tmp_path / "got", "-v", *[a for i in (sc, mr, us) for a in ("--from-files", str(i.path))])
    assert r.code == 0, r
    assert r.summary["completed"] == 3 and r.summary["received"] == 3
    assert "the files name 3 instances of 3 SOP classes" in r.stderr and "the peer lists" not in r.stderr
    assert_same_objects(tmp_path / "got", [sc, mr, us])


def test_nothing_matches(archives: Archives, tmp_path: Path) -> None:
    r = dcmcli("getscu", "-od", str(tmp_path / "got"), "-k", "PatientID=NOBODY", *archives.o.at())
    assert r.code == 0, r
    assert "C-GET: nothing to retrieve (no instance matched)" in r.stdout
    assert not (tmp_path / "got").exists() or not any((tmp_path / "got").iterdir())


# --------------------------------------------------------------------------
# the storage options storescp has

def test_layout_and_template(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    b = qr_study.study_uids(B)[0]
    r = _get(archives.q, tmp_path / "study", "--layout", "study", "-k", f"StudyInstanceUID={b}")
    assert r.code == 0, r
    got = {p.relative_to(tmp_path / "study").as_posix() for p in (tmp_path / "study").rglob("*.dcm")}
    assert got == {f"{b}/{i.series_uid}/{i.modality}.{i.sop_instance_uid}.dcm" for i in qr_study.select(study_uid=b)}
    template = "{PatientID}/{Modality}/{InstanceNumber}-{SOPInstanceUID}.dcm"
    r = _get(archives.o, tmp_path / "t", "--template", template, "-k", f"StudyInstanceUID={b}")
    assert r.code == 0, r
    got = {p.relative_to(tmp_path / "t").as_posix() for p in (tmp_path / "t").rglob("*.dcm")}
    assert got == {f"{B}/{i.modality}/{i.instance_number}-{i.sop_instance_uid}.dcm" for i in qr_study.select(study_uid=b)}
    assert {e["path"] for e in r.of("received")} == {str(tmp_path / "t" / p) for p in got}


def test_on_duplicate(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    b = qr_study.study_uids(B)[0]
    out = tmp_path / "got"
    assert _get(archives.q, out, "-k", f"StudyInstanceUID={b}").code == 0
    first = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    rejected = _get(archives.q, out, "--on-duplicate", "reject", "-k", f"StudyInstanceUID={b}")
    assert rejected.code == 66, rejected
    s = rejected.summary
    assert (s["completed"], s["failed"], s["received"], s["refused"]) == (0, 2, 0, 2), s
    assert {e["status"]["hex"] for e in rejected.of("received")} == {"0x0111"}  # type: ignore[index]
    assert "we refused 2 objects ourselves" in str(s["hint"]) and "storage contexts" not in str(s["hint"])
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == first  # untouched
    renamed = _get(archives.o, out, "--on-duplicate", "rename", "-k", f"StudyInstanceUID={b}")
    assert renamed.code == 0, renamed
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 4 and sum(n.endswith(".1.dcm") for n in names) == 2
    for p in out.iterdir():  # the copies are the same objects
        assert str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) in qr_study.sop_instance_uids(study_uid=b)


def test_store_as(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    """--store-as converts what arrives (the CT uncompressed, the US in
    JPEG 2000) to JPEG-LS before naming it; the pixels are unchanged."""
    b = qr_study.study_uids(B)[0]
    r = _get(archives.q, tmp_path / "got", "--store-as", "jpeg-ls-lossless", "-k", f"StudyInstanceUID={b}")
    assert r.code == 0, r
    assert {(e["transfer_syntax"], e["stored_transfer_syntax"]) for e in r.of("received")} == {
        ("1.2.840.10008.1.2.1", JPEGLSLossless), ("1.2.840.10008.1.2.4.90", JPEGLSLossless)}
    assert_same_objects(tmp_path / "got", qr_study.select(study_uid=b), stored_as=JPEGLSLossless)


# --------------------------------------------------------------------------
# --store-tc, and sub-operations that fail

def test_store_tc_chooses_the_contexts(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    b = qr_study.study_uids(B)[0]
    r = _get(archives.o, tmp_path / "got", "-v", "--store-tc", "UltrasoundImageStorage:j2k-lossless",
             "--store-tc", "1.2.840.10008.5.1.4.1.1.2:ele", "-k", f"StudyInstanceUID={b}")
    assert r.code == 0, r
    assert "the peer lists" not in r.stderr  # no C-FIND first
    report = r.of("association")[0]
    storage = [(c["abstract_syntax"], c["proposed_transfer_syntaxes"]) for c in report["contexts"][1:]]  # type: ignore[index]
    assert storage == [("1.2.840.10008.5.1.4.1.1.6.1", ["1.2.840.10008.1.2.4.90"]),
                       ("1.2.840.10008.5.1.4.1.1.2", ["1.2.840.10008.1.2.1"])]
    assert_same_objects(tmp_path / "got", qr_study.select(study_uid=b))


def test_store_tc_without_the_stored_syntax_fails_a_sub_operation(archive: Archive, qr_study: QRStudy,
                                                                   tmp_path: Path) -> None:
    """Offered only uncompressed for the JPEG 2000 US: dcmqrscp (which
    cannot transcode) fails it and sends the CT (B000, one failed); Orthanc
    (which cannot decode JPEG 2000) fails it and stops there (C000, the CT
    never tried). Either way exit 66 and the failed UID shown."""
    b = qr_study.study_uids(B)[0]
    us = qr_study.select(study_uid=b, modality="US")[0]
    ct = qr_study.select(study_uid=b, modality="CT")[0]
    r = dcmcli("getscu", "-od", str(tmp_path / "got"), "--store-tc", "UltrasoundImageStorage:ele,ile",
               "--store-tc", "CTImageStorage", "-k", f"StudyInstanceUID={b}", *archive.at())
    assert r.code == 66, r
    assert f"failed SOP instances: {us.sop_instance_uid}" in r.stderr
    got = received_files(tmp_path / "got") if (tmp_path / "got").exists() else {}
    if archive.kind == "dcmqrscp":
        assert "C-GET: 1 completed, 1 failed, 0 warning; 1 received" in r.stdout
        assert "(0xB000)" in r.stdout
        assert "C-GET incomplete: 1 sub-operation failed; the peer may not be able to send them in the syntaxes " \
               "offered" in r.stderr
        assert set(got) == {ct.sop_instance_uid}
    else:
        assert "C-GET failed: unable to process (0xC000); 0 completed, 1 failed, 0 warning; 0 received" in r.stderr
        assert got == {}
    j = _get(archive, tmp_path / "json", "--store-tc", "UltrasoundImageStorage:ele,ile", "--store-tc", "CTImageStorage",
             "-k", f"StudyInstanceUID={b}")
    assert j.code == 66 and j.summary["failed_sop_instance_uids"] == [us.sop_instance_uid], j
    assert j.summary["failed"] == 1 and j.summary["exit_code"] == 66


def test_full_disk_answers_a700(archive: Archive, qr_study: QRStudy, full_disk: Path) -> None:
    b = qr_study.study_uids(B)[0]  # a 39 KB CT and a 153 KB US: neither fits in 16 KiB
    r = _get(archive, full_disk, "-k", f"StudyInstanceUID={b}")
    assert r.code == 66, r
    assert {e["status"]["hex"] for e in r.of("received")} == {"0xA700"}  # type: ignore[index]
    assert all("no space left" in str(e["message"]) for e in r.of("received"))
    s = r.summary
    assert s["received"] == 0 and s["refused"] >= 1 and s["failed"] >= 1, s
    assert "we refused" in str(s["hint"])
    assert "no space left on the output device; answered 0xA700" in r.stderr
    assert list(full_disk.iterdir()) == []  # no half-written object left behind


# --------------------------------------------------------------------------
# C-CANCEL

def test_cancel_after(many: Archives, many_archive: Archive, tmp_path: Path) -> None:
    r = _get(many_archive, tmp_path / "got", "-k", f"PatientID={MANY}", "--cancel-after", "3")
    assert r.code == 0, r
    s = r.summary
    assert s["status"]["hex"] == "0xFE00" and s["cancelled"] is True, s  # type: ignore[index]
    assert 3 <= s["completed"] < MANY_INSTANCES and s["failed"] == 0, s  # type: ignore[operator]
    # Orthanc counts the sub-operation in flight at the cancel as remaining, though it sent it
    assert s["completed"] <= s["received"] <= s["completed"] + 1 and s["missing"] == 0, s  # type: ignore[operator]
    assert len(received_files(tmp_path / "got")) == s["received"]


def test_inventory_cancelled_when_the_answers_lack_sop_classes(storage_peer, workdir: Path, tmp_path: Path) -> None:
    """A peer that leaves SOP Class UID out of its C-FIND answers at IMAGE
    level (as dcmqrscp does) shows it in its first: getscu sends C-CANCEL
    there instead of reading one answer per instance for nothing (0.25 s of
    2,000), and retrieves with the common storage classes. pynetdicom's AE
    records the C-CANCEL (whether it stops in time is its business)."""
    files = copy_samples(workdir, ["explicit-le", "implicit-le"])
    peer = storage_peer("--find", "200", "--get", str(files[0]), "--get", str(files[1]))
    r = run_dcmcli("getscu", "--json", "-v", "-od", str(tmp_path / "got"), "127.0.0.1", str(peer.port),
                   "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3")
    assert r.returncode == 0, r.stderr
    assert re.search(r"C-FIND at IMAGE level cancelled after \d+ answers?: no SOP Class UID in them"
                     r"|no SOP Class UID in the C-FIND's 200 answers", r.stderr), r.stderr
    assert "proposing the common storage classes" in r.stderr
    records = peer.received()
    assert [e for e in records if e["op"] == "C-CANCEL"] == [{"op": "C-CANCEL", "message_id": 1}], records
    assert len(received_files(tmp_path / "got")) == 2


# --------------------------------------------------------------------------
# bad input and peers that say no

@pytest.mark.parametrize("args,message", [
    (["-k", "SeriesInstanceUid=1.2.3"], "unknown attribute 'SeriesInstanceUid' in key 'SeriesInstanceUid=1.2.3'; "
                                        "did you mean SeriesInstanceUID?"),
    (["-k", "0020,000D)=1.2.3)"], "malformed tag '0020,000D)'"),
    (["-S", "-L", "PATIENT"], "the Study Root model has no PATIENT level; use one of STUDY, SERIES, IMAGE"),
])
def test_bad_keys(archives: Archives, tmp_path: Path, args: list[str], message: str) -> None:
    r = dcmcli("getscu", "-od", str(tmp_path), *args, *archives.q.at())
    assert r.code == 1, r
    assert message in r.stderr and "Traceback" not in r.stderr


def test_query_file_that_is_not_dicom(archives: Archives, tmp_path: Path) -> None:
    bad = tmp_path / "keys.csv"
    bad.write_text("StudyInstanceUID,1.2.3\n")
    r = dcmcli("getscu", "-od", str(tmp_path / "got"), *archives.q.at(), str(bad))
    assert r.code == 22, r
    assert f"query file '{bad}' is neither DICOM nor DICOM JSON" in r.stderr


def test_without_bulk_data_refused(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    r = _get(archives.o, tmp_path / "got", "--without-bulk-data", "-k", f"StudyInstanceUID={qr_study.study_uids(A)[0]}")
    assert r.code == 65, r
    assert ("accepted the association but not Composite Instance Retrieve Without Bulk Data - GET; the peer does not "
            "support C-GET with this information model") in r.stderr


def test_orthanc_refuses_patient_study_only(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    r = dcmcli("getscu", "-od", str(tmp_path), "-O", "-k", f"PatientID={A}",
               "-k", f"StudyInstanceUID={qr_study.study_uids(A)[0]}", *archives.o.at())
    assert r.code == 65, r
    assert "Patient/Study Only Query/Retrieve Information Model - GET" in r.stderr


def test_connection_refused_and_wrong_called_ae(archives: Archives, tmp_path: Path) -> None:
    (port,) = free_ports(1)
    r = dcmcli("getscu", "-od", str(tmp_path), "-k", "StudyInstanceUID=1.2.3", "127.0.0.1", str(port))
    assert r.code == 60 and f"cannot connect to 127.0.0.1:{port}: connection refused" in r.stderr, r
    r = dcmcli("getscu", "-od", str(tmp_path), "-k", "StudyInstanceUID=1.2.3", "-aec", "NOTQRSCP", "127.0.0.1",
               str(archives.q.port))
    assert r.code == 61, r
    assert "called AE title not recognised" in r.stderr and "check -aec (sent 'NOTQRSCP')" in r.stderr


def test_orthanc_aborting_an_unknown_calling_ae(orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    """Accepted, then aborted: on the C-FIND getscu asks first, and on the
    C-GET itself with --no-find. Exit 62 with the DicomModalities hint."""
    peer = orthanc(modalities={"known": ("KNOWN", free_ports(1)[0])}, always_allow=False,
                   overrides={"DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True})
    for extra, service in (([], "C-FIND"), (["--no-find"], "C-GET")):
        r = dcmcli("getscu", "-od", str(tmp_path), "-aet", "STRANGER", "-td", "10", *extra,
                   "-k", f"StudyInstanceUID={qr_study.study_uids(A)[0]}", "-aec", peer.aet, "127.0.0.1", str(peer.port))
        assert r.code == 62, r
        assert f"lost while waiting for the {service} response: the peer aborted" in r.stderr
        assert "add STRANGER with this host to the peer's configuration (for Orthanc: DicomModalities)" in r.stderr
        assert "timeout" not in r.stderr
