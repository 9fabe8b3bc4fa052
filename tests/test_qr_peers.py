"""The Query/Retrieve peer fixtures (tests/qr_peers.py) work: dcmqrscp and
Orthanc loaded with qr_study answer DCMTK's own findscu, movescu and getscu
as documented there. No dcmcli code runs here."""

from __future__ import annotations

import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless

from qr_peers import (DCMQRSCP_SEND_AS, QRStudy, build_qr_study, c_echo, dcmtk_client, dcmtk_find, dimse_statuses,
                      final_counts, free_ports, http_get)

pytestmark = pytest.mark.interop

A, B = "QRPAT-A", "QRPAT-B"


@dataclass
class Archive:
    kind: str       # "dcmqrscp" or "orthanc"
    port: int
    aec: str
    dest_port: int  # the port its configuration gives move destination STORESCP
    peer: object


@pytest.fixture(params=["dcmqrscp", "orthanc"])
def archive(request: pytest.FixtureRequest, qr_study: QRStudy, dcmqrscp, orthanc) -> Archive:
    (dest,) = free_ports(1)
    if request.param == "dcmqrscp":
        peer = dcmqrscp(move_destinations={"STORESCP": dest})
        aec = peer.ae
    else:
        peer = orthanc(modalities={"storescp": ("STORESCP", dest)})
        aec = peer.aet
    peer.load(qr_study.paths)
    return Archive(request.param, peer.port, aec, dest, peer)


def _received(folder: Path) -> dict[str, str]:
    """SOP Instance UID -> transfer syntax of the files in a folder."""
    out = {}
    for p in folder.iterdir():
        ds = dcmread(p, stop_before_pixels=True)
        out[str(ds.SOPInstanceUID)] = str(ds.file_meta.TransferSyntaxUID)
    return out


# --------------------------------------------------------------------------
# the test data

def test_qr_study_describes_its_files(qr_study: QRStudy, tmp_path: Path) -> None:
    assert qr_study.patient_ids == [A, B]
    assert len(qr_study.study_uids()) == 2 and len(qr_study.series_uids()) == 6 and len(qr_study.instances) == 9
    study_a = qr_study.study_uids(A)[0]
    assert [len(qr_study.select(series_uid=s)) for s in qr_study.series_uids(study_a)] == [3, 2, 1, 1]
    assert [i.modality for i in qr_study.select(patient_id=A, instance_number=1)] == ["CT", "MR", "OT", "SR"]
    assert {i.transfer_syntax for i in qr_study.compressed} == {JPEGLSLossless, JPEG2000Lossless}
    # one syntax per SOP class (what dcmqrscp needs), the one the fixture sends
    assert qr_study.send_as == DCMQRSCP_SEND_AS
    for i in qr_study.instances:
        ds = dcmread(i.path, stop_before_pixels=True)
        assert (str(ds.PatientID), str(ds.PatientName), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                str(ds.SOPInstanceUID), str(ds.SOPClassUID), str(ds.StudyDate), str(ds.AccessionNumber),
                str(ds.Modality), int(ds.SeriesNumber), int(ds.InstanceNumber)) == (
            i.patient_id, i.patient_name, i.study_uid, i.series_uid, i.sop_instance_uid, i.sop_class_uid,
            i.study_date, i.accession_number, i.modality, i.series_number, i.instance_number)
        assert ds.file_meta.MediaStorageSOPInstanceUID == i.sop_instance_uid
        assert ds.file_meta.MediaStorageSOPClassUID == i.sop_class_uid
        assert str(ds.file_meta.TransferSyntaxUID) == i.transfer_syntax
    assert qr_study.select(patient_id=A)[0].patient_name == "Müller^Hans"
    assert dcmread(qr_study.select(patient_id=A)[0].path).PatientName.original_string == b"M\xfcller^Hans"
    # deterministic: built again elsewhere, the same UIDs
    again = build_qr_study(tmp_path / "again")
    assert [i.sop_instance_uid for i in again.instances] == [i.sop_instance_uid for i in qr_study.instances]


# --------------------------------------------------------------------------
# C-FIND

def _find_cases(s: QRStudy) -> list[tuple[str, list[str], str, set[str]]]:
    a = s.study_uids(A)[0]
    ct = s.select(patient_id=A, modality="CT")[0].series_uid
    return [
        ("-P", ["QueryRetrieveLevel=PATIENT", "PatientID", "PatientName"], "PatientID", set(s.patient_ids)),
        ("-P", ["QueryRetrieveLevel=STUDY", f"PatientID={A}", "StudyInstanceUID"], "StudyInstanceUID",
         set(s.study_uids(A))),
        ("-P", ["QueryRetrieveLevel=SERIES", f"PatientID={A}", f"StudyInstanceUID={a}", "SeriesInstanceUID"],
         "SeriesInstanceUID", set(s.series_uids(a))),
        ("-P", ["QueryRetrieveLevel=IMAGE", f"PatientID={A}", f"StudyInstanceUID={a}", f"SeriesInstanceUID={ct}",
                "SOPInstanceUID"], "SOPInstanceUID", set(s.sop_instance_uids(series_uid=ct))),
        ("-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "AccessionNumber"], "StudyInstanceUID",
         set(s.study_uids())),
        ("-S", ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={a}", "SeriesInstanceUID", "Modality"],
         "SeriesInstanceUID", set(s.series_uids(a))),
        # dcmqrscp wants the higher levels' unique keys present, even empty
        ("-S", ["QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={a}", "SeriesInstanceUID", "SOPInstanceUID"],
         "SOPInstanceUID", set(s.sop_instance_uids(study_uid=a))),
    ]


@pytest.mark.parametrize("case", range(7), ids=["P-patient", "P-study", "P-series", "P-image", "S-study",
                                                "S-series", "S-image"])
def test_find_counts(archive: Archive, qr_study: QRStudy, tmp_path: Path, case: int) -> None:
    model, keys, key, expected = _find_cases(qr_study)[case]
    r, rsps = dcmtk_find(archive.port, archive.aec, keys, tmp_path, model=model)
    assert dimse_statuses(r.stdout + r.stderr)[-1] == 0x0000, r.stdout + r.stderr
    assert len(rsps) == len(expected)
    assert {str(ds[key].value) for ds in rsps} == expected


def test_find_image_level_attributes(archive: Archive, qr_study: QRStudy, tmp_path: Path) -> None:
    """Orthanc returns SOP Class UID and an empty Available Transfer Syntax
    UID at IMAGE level; dcmqrscp drops both keys (and any it does not index)."""
    a = qr_study.study_uids(A)[0]
    r, rsps = dcmtk_find(archive.port, archive.aec,
                         ["QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={a}", "SeriesInstanceUID", "SOPInstanceUID",
                          "SOPClassUID", "AvailableTransferSyntaxUID", "InstanceNumber", "Rows"], tmp_path)
    assert len(rsps) == 7
    by_uid = {str(ds.SOPInstanceUID): ds for ds in rsps}
    for i in qr_study.select(study_uid=a):
        ds = by_uid[i.sop_instance_uid]
        assert int(ds.InstanceNumber) == i.instance_number
        if archive.kind == "orthanc":
            assert str(ds.SOPClassUID) == i.sop_class_uid
            assert ds["AvailableTransferSyntaxUID"].is_empty
        else:
            assert "SOPClassUID" not in ds and "AvailableTransferSyntaxUID" not in ds and "Rows" not in ds


def test_find_non_ascii_patient_name(archive: Archive, tmp_path: Path) -> None:
    """Asked in UTF-8, dcmqrscp converts to it; Orthanc answers in its
    default Latin-1 whatever was asked. Both name Müller correctly."""
    r, rsps = dcmtk_find(archive.port, archive.aec, ["QueryRetrieveLevel=PATIENT", f"PatientID={A}", "PatientName",
                                                     "SpecificCharacterSet=ISO_IR 192"], tmp_path, model="-P")
    assert len(rsps) == 1
    assert str(rsps[0].PatientName) == "Müller^Hans"
    assert rsps[0].SpecificCharacterSet == ("ISO_IR 192" if archive.kind == "dcmqrscp" else "ISO_IR 100")


def test_patient_study_only_model(archive: Archive, tmp_path: Path) -> None:
    r, rsps = dcmtk_find(archive.port, archive.aec, ["QueryRetrieveLevel=PATIENT", "PatientID"], tmp_path,
                         model="-O")
    if archive.kind == "dcmqrscp":
        assert dimse_statuses(r.stdout + r.stderr)[-1] == 0x0000 and len(rsps) == 2
    else:  # Orthanc does not offer the retired model
        assert "No Acceptable Presentation Contexts" in r.stdout + r.stderr and rsps == []


# --------------------------------------------------------------------------
# C-MOVE

def _movescu(archive: Archive, dest: str, study_uid: str, *extra: str):
    return dcmtk_client("movescu", "-d", "-S", "-aet", "MOVESCU", "-aec", archive.aec, "-aem", dest, *extra,
                        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
                        "127.0.0.1", str(archive.port))


def test_move_study_to_storescp(archive: Archive, qr_study: QRStudy, dcmtk_receiver) -> None:
    rx = dcmtk_receiver(port=archive.dest_port, ae="STORESCP")  # storescp +xa
    a = qr_study.study_uids(A)[0]
    r = _movescu(archive, "STORESCP", a)
    out = r.stdout + r.stderr
    assert dimse_statuses(out)[-1] == 0x0000, out
    assert final_counts(out) == {"remaining": None, "completed": 7, "failed": 0, "warning": 0}
    got = _received(rx.outdir)
    assert set(got) == set(qr_study.sop_instance_uids(study_uid=a))
    sc = qr_study.select(study_uid=a, modality="OT")[0]
    assert got[sc.sop_instance_uid] == JPEGLSLossless  # both send it as stored when accepted


def test_unknown_move_destination(archive: Archive, qr_study: QRStudy) -> None:
    r = _movescu(archive, "NOBODY", qr_study.study_uids(A)[0])
    # dcmqrscp: A801 (Move Destination unknown); Orthanc: C000 (Unable to process)
    assert dimse_statuses(r.stdout + r.stderr)[-1] == (0xA801 if archive.kind == "dcmqrscp" else 0xC000)


def test_orthanc_move_destination_declared_at_run_time(orthanc, qr_study: QRStudy, dcmtk_receiver) -> None:
    peer = orthanc()
    peer.load(qr_study.paths)
    rx = dcmtk_receiver(ae="LATE")
    peer.add_modality("late", "LATE", rx.port)
    b = qr_study.study_uids(B)[0]
    r = _movescu(Archive("orthanc", peer.port, peer.aet, rx.port, peer), "LATE", b)
    assert dimse_statuses(r.stdout + r.stderr)[-1] == 0x0000
    assert _received(rx.outdir) == {i.sop_instance_uid: i.transfer_syntax for i in qr_study.select(study_uid=b)}


# --------------------------------------------------------------------------
# C-GET

def _getscu(archive: Archive, outdir: Path, study_uid: str, *extra: str):
    outdir.mkdir()
    return dcmtk_client("getscu", "-d", "-S", "-aet", "GETSCU", "-aec", archive.aec, "-od", str(outdir), *extra,
                        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
                        "127.0.0.1", str(archive.port))


def test_get_study_with_jpegls_object(archive: Archive, qr_study: QRStudy, tmp_path: Path) -> None:
    """getscu +xt proposes JPEG-LS lossless besides uncompressed for every
    storage class: dcmqrscp (whose profile prefers it for Secondary Capture)
    sends the SC as stored; Orthanc accepts uncompressed and decompresses."""
    a = qr_study.study_uids(A)[0]
    r = _getscu(archive, tmp_path / "got", a, "+xt")
    out = r.stdout + r.stderr
    assert dimse_statuses(out)[-1] == 0x0000, out
    assert final_counts(out) == {"remaining": None, "completed": 7, "failed": 0, "warning": 0}
    got = _received(tmp_path / "got")
    assert set(got) == set(qr_study.sop_instance_uids(study_uid=a))
    sc = qr_study.select(study_uid=a, modality="OT")[0]
    assert got[sc.sop_instance_uid] == (JPEGLSLossless if archive.kind == "dcmqrscp" else ExplicitVRLittleEndian)
    received = next(p for p in (tmp_path / "got").iterdir() if p.name.endswith(sc.sop_instance_uid))
    assert np.array_equal(dcmread(received).pixel_array, dcmread(sc.path).pixel_array)


def test_get_uncompressed_only(archive: Archive, qr_study: QRStudy, tmp_path: Path) -> None:
    """Offered uncompressed contexts only, dcmqrscp cannot send the JPEG-LS SC
    (B000, one failed, the others sent); Orthanc decompresses it."""
    a = qr_study.study_uids(A)[0]
    r = _getscu(archive, tmp_path / "got", a)
    out = r.stdout + r.stderr
    sc = qr_study.select(study_uid=a, modality="OT")[0]
    got = _received(tmp_path / "got")
    if archive.kind == "dcmqrscp":
        assert dimse_statuses(out)[-1] == 0xB000
        assert final_counts(out) == {"remaining": None, "completed": 6, "failed": 1, "warning": 0}
        assert set(got) == set(qr_study.sop_instance_uids(study_uid=a)) - {sc.sop_instance_uid}
    else:
        assert dimse_statuses(out)[-1] == 0x0000
        assert got[sc.sop_instance_uid] == ExplicitVRLittleEndian and len(got) == 7


def test_get_study_with_jpeg2000_object(archive: Archive, qr_study: QRStudy, tmp_path: Path) -> None:
    """getscu +xv: dcmqrscp sends the JPEG 2000 US as stored; Orthanc accepts
    uncompressed, cannot decode JPEG 2000 and ends the C-GET at once with
    C000 (one failed, nothing sent, the CT never tried)."""
    b = qr_study.study_uids(B)[0]
    r = _getscu(archive, tmp_path / "got", b, "+xv")
    out = r.stdout + r.stderr
    got = _received(tmp_path / "got")
    us = qr_study.select(study_uid=b, modality="US")[0]
    if archive.kind == "dcmqrscp":
        assert dimse_statuses(out)[-1] == 0x0000
        assert set(got) == set(qr_study.sop_instance_uids(study_uid=b))
        assert got[us.sop_instance_uid] == JPEG2000Lossless
    else:
        assert dimse_statuses(out)[-1] == 0xC000
        assert final_counts(out) == {"remaining": None, "completed": 0, "failed": 1, "warning": 0}
        assert "(0008,0058) UI [" + us.sop_instance_uid in out  # Failed SOP Instance UID List
        assert got == {}


# --------------------------------------------------------------------------
# Orthanc's options

def test_orthanc_refuses_unlisted_calling_ae(orthanc) -> None:
    peer = orthanc(modalities={"known": ("KNOWN", free_ports(1)[0])}, always_allow=False)
    r = c_echo(peer.port, peer.aet, aet="STRANGER")
    assert r.returncode != 0 and "Calling AE Title Not Recognized" in r.stdout + r.stderr
    assert c_echo(peer.port, peer.aet, aet="KNOWN").returncode == 0


def test_orthanc_auth_dicomweb_and_worklists(orthanc, qr_study: QRStudy, tmp_path: Path) -> None:
    wl = tmp_path / "worklists"
    wl.mkdir()
    dump = Path("/usr/share/doc/dcmtk/examples/wlistdb/OFFIS/wklist1.dump")
    if not dump.exists():
        pytest.skip("DCMTK's worklist examples are not installed")
    dcmtk_client("dump2dcm", "+te", str(dump), str(wl / "wklist1.wl"))
    peer = orthanc(worklist_dir=wl, auth=("alice", "s3cret"))
    with pytest.raises(urllib.error.HTTPError) as refused:
        http_get(peer.url + "/system")
    assert refused.value.code == 401
    peer.load(qr_study.paths)
    studies = peer.get("/dicom-web/studies")
    assert isinstance(studies, list) and len(studies) == 2
    r = dcmtk_client("findscu", "-d", "-W", "-aec", peer.aet, "-k", "PatientID", "-k", "PatientName",
                     "127.0.0.1", str(peer.port))
    assert dimse_statuses(r.stdout + r.stderr)[-1] == 0x0000
    assert "AV35674" in r.stdout + r.stderr
