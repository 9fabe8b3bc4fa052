"""dcmcli movescu against real Query/Retrieve peers (dcmqrscp, Orthanc)
moving to real destinations: DCMTK's storescp and movescu's own receiver
(+P). The peers' configuration names both destinations (qr_cli.Archives)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qr_cli import (A, B, MANY, Archive, Archives, Run, archive, archives, assert_same_objects, dcmcli,  # noqa: F401
                    many, many_archive, received_files)
from qr_peers import QRStudy, free_ports

pytestmark = pytest.mark.interop

MANY_INSTANCES = 40


def _move(archive: Archive, *args: str, files: tuple[Path, ...] = ()) -> Run:
    return dcmcli("movescu", "--json", *args, *archive.at(), *map(str, files))


def _to_me(archives: Archives, outdir: Path) -> list[str]:
    """Options that make movescu the destination (MOVESCU, +P its port)."""
    return ["-aem", "MOVESCU", "+P", str(archives.movescu_port), "-od", str(outdir)]


# --------------------------------------------------------------------------
# to DCMTK's storescp, to our own receiver

def test_move_study_to_dcmtk_storescp(archives: Archives, archive: Archive, qr_study: QRStudy,
                                      dcmtk_receiver) -> None:
    rx = dcmtk_receiver(port=archives.storescp_port, ae="STORESCP")  # +xa: every syntax
    a = qr_study.study_uids(A)[0]
    r = _move(archive, "-aem", "STORESCP", "-k", f"StudyInstanceUID={a}")
    assert r.code == 0, r
    s = r.summary
    assert (s["completed"], s["failed"], s["warning"], s["status"]["hex"]) == (7, 0, 0, "0x0000"), s  # type: ignore[index]
    assert s["failed_sop_instance_uids"] == [] and s["exit_code"] == 0
    # the JPEG-LS SC arrives as stored, the rest uncompressed; all equal to the originals
    assert_same_objects(rx.outdir, qr_study.select(study_uid=a))
    human = dcmcli("movescu", "-aem", "STORESCP", "-k", f"StudyInstanceUID={qr_study.study_uids(B)[0]}",
                   *archive.at())
    assert human.code == 0, human
    assert "C-MOVE: 2 completed, 0 failed, 0 warning in " in human.stdout and "success (0x0000)" in human.stdout
    assert len(received_files(rx.outdir)) == 9


def test_move_to_the_built_in_receiver(archives: Archives, archive: Archive, qr_study: QRStudy,
                                       tmp_path: Path) -> None:
    a = qr_study.study_uids(A)[0]
    r = _move(archive, *_to_me(archives, tmp_path / "rx"), "-k", f"StudyInstanceUID={a}")
    assert r.code == 0, r
    assert r.one("listening")["port"] == archives.movescu_port
    received = r.of("received")
    assert sorted(e["sop_instance_uid"] for e in received) == sorted(qr_study.sop_instance_uids(study_uid=a))
    assert {e["calling_aet"] for e in received} == {archive.aec} and {e["called_aet"] for e in received} == {"MOVESCU"}
    progress = r.of("progress")
    pending = [p for p in progress if p["status"]["category"] == "pending"]  # type: ignore[index]
    assert pending and [p["completed"] for p in pending] == sorted(p["completed"] for p in pending)
    assert pending[-1]["completed"] + pending[-1]["remaining"] == 7  # type: ignore[operator]
    assert progress[-1]["status"]["hex"] == "0x0000"  # type: ignore[index]
    s = r.summary
    assert (s["completed"], s["failed"], s["received"], s["refused"], s["missing"]) == (7, 0, 7, 0, 0), s
    assert s["exit_code"] == 0
    assert_same_objects(tmp_path / "rx", qr_study.select(study_uid=a))


def test_move_from_files(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    """Exactly the instances of the files named: one CT of A's CT series
    and the US of B (two studies), whatever else their series hold."""
    ct = qr_study.select(patient_id=A, modality="CT")[1]
    us = qr_study.select(patient_id=B, modality="US")[0]
    for archive, model in ((archives.q, "-S"), (archives.o, "-P")):
        out = tmp_path / archive.kind
        r = _move(archive, model, "-d", *_to_me(archives, out), "--from-files", str(ct.path), "--from-files",
                  str(us.path))
        assert r.code == 0, r
        assert r.summary["completed"] == 2 and r.summary["received"] == 2
        assert_same_objects(out, [ct, us])
        if model == "-P":  # Patient Root identifiers name the patient too
            assert f"(0010,0020) Patient ID                          LO: '{A}'" in r.stderr


def test_keys_without_the_unique_key_are_found_first(archives: Archives, qr_study: QRStudy, tmp_path: Path) -> None:
    """dcmqrscp: -P PATIENT level by name (the C-FIND finds QRPAT-B);
    Orthanc: SERIES level by modality (the C-FIND finds the MR series)."""
    r = _move(archives.q, "-v", "-P", "-L", "PATIENT", "-k", "PatientName=Doe*", *_to_me(archives, tmp_path / "q"))
    assert r.code == 0, r
    assert "1 patient matches the keys; retrieving it by PatientID" in r.stderr
    assert_same_objects(tmp_path / "q", qr_study.select(patient_id=B))
    a = qr_study.study_uids(A)[0]
    r = _move(archives.o, "-v", "-L", "SERIES", "-k", f"StudyInstanceUID={a}", "-k", "Modality=MR",
              *_to_me(archives, tmp_path / "o"))
    assert r.code == 0, r
    assert "1 series matches the keys; retrieving it by SeriesInstanceUID" in r.stderr
    assert r.summary["completed"] == 2
    assert_same_objects(tmp_path / "o", qr_study.select(study_uid=a, modality="MR"))


def test_nothing_matches(archives: Archives, tmp_path: Path) -> None:
    r = dcmcli("movescu", "-k", "PatientID=NOBODY", *_to_me(archives, tmp_path / "rx"), *archives.q.at())
    assert r.code == 0, r
    assert "C-MOVE: nothing to retrieve (no instance matched)" in r.stdout


# --------------------------------------------------------------------------
# destinations the peer does not know, or cannot reach

def test_unknown_move_destination(archive: Archive, qr_study: QRStudy) -> None:
    r = dcmcli("movescu", "-aem", "NOBODY", "-k", f"StudyInstanceUID={qr_study.study_uids(A)[0]}", *archive.at())
    assert r.code == 66, r
    if archive.kind == "dcmqrscp":
        assert "C-MOVE failed: refused: move destination unknown (0xA801)" in r.stderr
        assert ("the peer does not know the move destination AE title 'NOBODY': add NOBODY with this host and the "
                "receiver's port to the peer's configuration") in r.stderr
        assert "for dcmqrscp: its HostTable" in r.stderr
    else:  # Orthanc says "unable to process"
        assert "C-MOVE failed: unable to process (0xC000)" in r.stderr
        assert "if it does not know the destination 'NOBODY' (Orthanc answers C000 then)" in r.stderr
        assert "DicomModalities" in r.stderr


def test_destination_known_but_not_listening(archives: Archives, qr_study: QRStudy) -> None:
    """Nothing listens on STORESCP's port: dcmqrscp's sub-operations fail
    (A702); the hint points at the destination, not at storage contexts."""
    r = _move(archives.q, "-aem", "STORESCP", "-k", f"StudyInstanceUID={qr_study.study_uids(B)[0]}")
    assert r.code == 66, r
    s = r.summary
    assert s["status"]["hex"] == "0xA702" and s["failed"] == 2 and s["completed"] == 0  # type: ignore[index]
    assert sorted(s["failed_sop_instance_uids"]) == sorted(qr_study.sop_instance_uids(patient_id=B))  # type: ignore[arg-type]
    assert "the peer could not send the objects to 'STORESCP': is that receiver running" in str(s["hint"])
    assert "C-GET" not in str(s["hint"])


def test_orthanc_aborting_an_unknown_calling_ae(orthanc, qr_study: QRStudy) -> None:
    """Orthanc with its default Dicom* flags accepts the association of an
    AE it does not know, then aborts the C-MOVE: exit 62 and the hint about
    DicomModalities, never a bare timeout."""
    peer = orthanc(modalities={"known": ("KNOWN", free_ports(1)[0])}, always_allow=False,
                   overrides={"DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True})
    r = dcmcli("movescu", "-aet", "STRANGER", "-aem", "KNOWN", "-td", "10", "-k",
               f"StudyInstanceUID={qr_study.study_uids(A)[0]}", "-aec", peer.aet, "127.0.0.1", str(peer.port))
    assert r.code == 62, r
    assert "lost while waiting for the C-MOVE response: the peer aborted" in r.stderr
    assert "add STRANGER with this host to the peer's configuration (for Orthanc: DicomModalities)" in r.stderr
    assert "timeout" not in r.stderr


# --------------------------------------------------------------------------
# C-CANCEL

def test_cancel_after(many: Archives, many_archive: Archive, tmp_path: Path) -> None:
    r = _move(many_archive, *_to_me(many, tmp_path / "rx"), "-k", f"PatientID={MANY}", "--cancel-after", "3")
    assert r.code == 0, r
    s = r.summary
    assert s["status"]["hex"] == "0xFE00" and s["cancelled"] is True, s  # type: ignore[index]
    assert 3 <= s["completed"] < MANY_INSTANCES and s["failed"] == 0, s  # type: ignore[operator]
    assert s["remaining"] and s["completed"] + s["remaining"] <= MANY_INSTANCES  # type: ignore[operator]
    assert s["received"] >= s["completed"] and s["missing"] == 0  # type: ignore[operator]
    assert len(received_files(tmp_path / "rx")) == s["received"]


# --------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("args,code,message", [
    (["-k", "StudyInstanceUIDD=1.2.3"], 1, "unknown attribute 'StudyInstanceUIDD' in key 'StudyInstanceUIDD=1.2.3'; "
                                           "did you mean StudyInstanceUID?"),
    (["-k", "(0020,000X)=1.2.3"], 1, "malformed tag '(0020,000X)'"),
    (["-O", "-L", "IMAGE", "-k", "SOPInstanceUID=1.2.3"], 1,
     "the Patient/Study Only (retired) model has no IMAGE level; use one of PATIENT, STUDY"),
    (["-aem", "BAD\\AE", "-k", "StudyInstanceUID=1.2.3"], 1, "move destination (-aem)"),
])
def test_bad_keys_and_options(archives: Archives, args: list[str], code: int, message: str) -> None:
    r = dcmcli("movescu", *args, *archives.q.at())
    assert r.code == code, r
    assert message in r.stderr and "Traceback" not in r.stderr


def test_query_file_that_is_not_dicom(archives: Archives, tmp_path: Path) -> None:
    bad = tmp_path / "study.txt"
    bad.write_text("StudyInstanceUID=1.2.3\n")
    r = dcmcli("movescu", *archives.q.at(), str(bad))
    assert r.code == 22, r
    assert f"query file '{bad}' is neither DICOM nor DICOM JSON" in r.stderr


def test_orthanc_refuses_patient_study_only(archives: Archives, qr_study: QRStudy) -> None:
    r = dcmcli("movescu", "-O", "-k", f"PatientID={A}", "-k", f"StudyInstanceUID={qr_study.study_uids(A)[0]}",
               *archives.o.at())
    assert r.code == 65, r
    assert "accepted the association but none of the 1 presentation contexts" in r.stderr
    assert "Patient/Study Only Query/Retrieve Information Model - MOVE" in r.stderr


def test_connection_refused_and_wrong_called_ae(archives: Archives) -> None:
    (port,) = free_ports(1)
    r = dcmcli("movescu", "-k", "StudyInstanceUID=1.2.3", "127.0.0.1", str(port))
    assert r.code == 60 and f"cannot connect to 127.0.0.1:{port}: connection refused" in r.stderr, r
    r = dcmcli("movescu", "-k", "StudyInstanceUID=1.2.3", "-aec", "NOTQRSCP", "127.0.0.1", str(archives.q.port))
    assert r.code == 61, r
    assert "called AE title not recognised" in r.stderr and "check -aec (sent 'NOTQRSCP')" in r.stderr


def test_from_files_needs_a_model_with_an_image_level(archives: Archives, qr_study: QRStudy) -> None:
    """Patient/Study Only has no IMAGE level to name instances at (dcmqrscp
    would answer Success with nothing sent): refused before any request."""
    r = dcmcli("movescu", "-O", "-aem", "STORESCP", "--from-files", str(qr_study.instances[0].path),
               *archives.q.at())
    assert r.code == 1, r
    assert "--from-files retrieves instances by SOP Instance UID (IMAGE level), which the Patient/Study Only " \
           "(retired) model does not have; use -S (Study Root) or -P (Patient Root)" in r.stderr
