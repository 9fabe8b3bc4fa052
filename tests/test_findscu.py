"""dcmcli findscu against real Query/Retrieve peers: DCMTK's dcmqrscp
(hierarchical) and Orthanc (relational), loaded with qr_study; C-CANCEL
against both loaded with many generated instances. No mocks."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from conftest import dcmtk
from qr_cli import (A, B, MANY, Archive, Archives, Run, archive, archives, dataset_of, dcmcli,  # noqa: F401
                    many, many_archive, match_uids)
from qr_peers import QRStudy, free_ports

pytestmark = pytest.mark.interop

#: Enough instances that a C-CANCEL after a few responses reaches the peer
#: before it has sent them all (both peers pushed up to ~320 responses past
#: the cancel here: the first match costs dcmcli its lazy imports).
MANY_INSTANCES = 1000

STUDY_UID, SERIES_UID, SOP_UID, PATIENT_ID = "0020000D", "0020000E", "00080018", "00100020"


def _find(archive: Archive, *args: str, files: tuple[Path, ...] = ()) -> Run:
    return dcmcli("findscu", "--json", *args, *archive.at(), *map(str, files))


# --------------------------------------------------------------------------
# every level of every model

def _level_cases(s: QRStudy) -> dict[str, tuple[list[str], str, set[str]]]:
    a, b = s.study_uids(A)[0], s.study_uids(B)[0]
    ct = s.select(patient_id=A, modality="CT")[0].series_uid
    return {
        # model and level options, keys -> the level's unique key, what it must list
        "P-patient": (["-P"], PATIENT_ID, set(s.patient_ids)),
        "P-study": (["-P", "-L", "STUDY", "-k", f"PatientID={A}"], STUDY_UID, {a}),
        "P-series": (["-P", "-k", "QueryRetrieveLevel=SERIES", "-k", f"PatientID={A}", "-k", f"StudyInstanceUID={a}"],
                     SERIES_UID, set(s.series_uids(a))),
        "P-image": (["-P", "-L", "IMAGE", "-k", f"PatientID={A}", "-k", f"StudyInstanceUID={a}",
                     "-k", f"SeriesInstanceUID={ct}"], SOP_UID, set(s.sop_instance_uids(series_uid=ct))),
        "S-study": (["-S"], STUDY_UID, {a, b}),
        "S-series": (["-S", "-L", "SERIES", "-k", f"StudyInstanceUID={b}"], SERIES_UID, set(s.series_uids(b))),
        "S-image": (["-L", "image", "-k", f"StudyInstanceUID={a}"], SOP_UID, set(s.sop_instance_uids(study_uid=a))),
        "O-patient": (["-O", "-L", "PATIENT"], PATIENT_ID, set(s.patient_ids)),
        "O-study": (["-O", "-k", f"PatientID={B}"], STUDY_UID, {b}),
    }


LEVELS = ["P-patient", "P-study", "P-series", "P-image", "S-study", "S-series", "S-image", "O-patient", "O-study"]


@pytest.mark.parametrize("case", LEVELS)
def test_every_level_of_every_model_against_dcmqrscp(archives: Archives, qr_study: QRStudy, case: str) -> None:
    options, unique, expected = _level_cases(qr_study)[case]
    r = _find(archives.q, *options)
    assert r.code == 0, r
    level = {"patient": "PATIENT", "study": "STUDY", "series": "SERIES", "image": "IMAGE"}[case.split("-")[1]]
    assert sorted(match_uids(r, unique)) == sorted(expected), r
    assert {str(dataset_of(m).QueryRetrieveLevel) for m in r.of("match")} == {level}
    assert r.summary["matches"] == len(expected) and r.summary["exit_code"] == 0
    assert r.summary["status"]["hex"] == "0x0000"  # type: ignore[index]


@pytest.mark.parametrize("case", ["P-patient", "P-series", "S-study", "S-image"])
def test_levels_against_orthanc(archives: Archives, qr_study: QRStudy, case: str) -> None:
    options, unique, expected = _level_cases(qr_study)[case]
    r = _find(archives.o, *options)
    assert r.code == 0, r
    assert sorted(match_uids(r, unique)) == sorted(expected), r
    if case == "S-study":  # the default keys of a level: Orthanc computes the counts dcmqrscp leaves out
        by_study = {str(ds.StudyInstanceUID): ds for ds in map(dataset_of, r.of("match"))}
        a = by_study[qr_study.study_uids(A)[0]]
        assert int(a.NumberOfStudyRelatedInstances) == 7 and int(a.NumberOfStudyRelatedSeries) == 4
        assert list(a.ModalitiesInStudy) == ["CT", "MR", "OT", "SR"]
        assert str(a.PatientName) == "Müller^Hans"


def test_default_keys_are_shown_as_a_table(archives: Archives) -> None:
    r = dcmcli("findscu", "-S", *archives.q.at())
    assert r.code == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["PatientName", "PatientID", "StudyDate", "StudyTime", "AccessionNumber"]
    assert lines[0].split()[-1] == "StudyInstanceUID"
    assert any(line.startswith("Müller^Hans") and "QRPAT-A" in line and "20240115" in line for line in lines[1:])
    assert "2 matches" in r.stdout + r.stderr


# --------------------------------------------------------------------------
# matching

def test_wildcard(archive: Archive) -> None:
    r = _find(archive, "-P", "-k", "PatientName=M*", "-k", "PatientID")
    assert r.code == 0, r
    assert match_uids(r, PATIENT_ID) == [A]
    assert str(dataset_of(r.one("match")).PatientName) == "Müller^Hans"


def test_date_ranges(archive: Archive) -> None:
    for dates, patients in (("20240101-20240131", [A]), ("20240201-", [B])):
        r = _find(archive, "-S", "-k", f"StudyDate={dates}", "-k", "PatientID")
        assert r.code == 0, r
        assert sorted(match_uids(r, PATIENT_ID)) == patients, dates
        assert r.stderr == ""  # a valid range: no warning


def test_date_with_a_wildcard_is_warned_about(archive: Archive) -> None:
    """Sent as given, with a warning in plain words: dcmqrscp matches it
    literally (nothing); Orthanc fails the query (C000), exit 66."""
    r = _find(archive, "-S", "-k", "StudyDate=2024*")
    assert "StudyDate='2024*' is not a valid DA match" in r.stderr and "20240101-20241231" in r.stderr
    if archive.kind == "dcmqrscp":
        assert r.code == 0 and r.summary["matches"] == 0, r
    else:
        assert r.code == 66, r
        assert r.summary["status"]["hex"] == "0xC000" and r.summary["exit_code"] == 66  # type: ignore[index]
        assert "C-FIND failed after 0 matches: unable to process (0xC000)" in r.stderr
        assert "see its log (-d shows the identifier sent)" in r.stderr


def test_uid_list(archive: Archive, qr_study: QRStudy) -> None:
    a, b = qr_study.study_uids(A)[0], qr_study.study_uids(B)[0]
    r = _find(archive, "-S", "-L", "SERIES", "-k", f"StudyInstanceUID={a}\\{b}", "-k", "Modality")
    assert r.code == 0, r
    assert sorted(match_uids(r, SERIES_UID)) == sorted(qr_study.series_uids())


def test_sequence_return_key_answered_by_orthanc(archives: Archives, qr_study: QRStudy) -> None:
    a = qr_study.study_uids(A)[0]
    r = _find(archives.o, "-L", "IMAGE", "-k", f"StudyInstanceUID={a}", "-k", "Modality=SR",
              "-k", "(0040,A043)[0].(0008,0100)", "-k", "ConceptNameCodeSequence[0].CodeMeaning")
    assert r.code == 0, r
    ds = dataset_of(r.one("match"))
    assert ds.SOPInstanceUID == qr_study.select(study_uid=a, modality="SR")[0].sop_instance_uid
    assert ds.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    assert ds.ConceptNameCodeSequence[0].CodeMeaning == "Diagnostic Imaging Report"


def test_sequence_key_is_sent(archives: Archives) -> None:
    """dcmqrscp does not index Procedure Code Sequence (it drops the key):
    -d shows that the identifier carried it, as an item with a return key."""
    r = dcmcli("findscu", "-d", "-S", "-k", "(0008,1032)[0].(0008,0100)=CT123", *archives.q.at())
    assert r.code == 0, r
    ident = r.stderr.split("identifier:", 1)[1].split("A-ASSOCIATE-RQ", 1)[0]
    assert "(0008,1032)" in ident and "Procedure Code Sequence" in ident and "1 item(s)" in ident
    assert "(0008,0100) Code Value" in ident and "CT123" in ident


def test_relational_query_against_orthanc(archives: Archives, qr_study: QRStudy) -> None:
    """IMAGE level with no study or series key: Orthanc matches relationally."""
    r = _find(archives.o, "-v", "--relational", "-L", "IMAGE", "-k", "PatientName=Doe*", "-k", "Modality")
    assert r.code == 0, r
    assert sorted(match_uids(r, SOP_UID)) == sorted(qr_study.sop_instance_uids(patient_id=B))
    assert sorted(str(dataset_of(m).Modality) for m in r.of("match")) == ["CT", "US"]
    assert "extended negotiation" in r.stderr and "proposed [1, 0, 0, 0]" in r.stderr


def test_zero_matches(archive: Archive) -> None:
    r = dcmcli("findscu", "-P", "-k", "PatientName=Nobody*", *archive.at())
    assert r.code == 0, r
    assert r.stdout.startswith("no matches in ") and r.stderr == ""


# --------------------------------------------------------------------------
# output: DICOM JSON, NDJSON, CSV, -X

def test_json_match_events_carry_dicom_json(archives: Archives) -> None:
    r = _find(archives.q, "-P", "-k", f"PatientID={A}", "-k", "PatientName", "-k", "PatientBirthDate")
    assert r.code == 0, r
    m = r.one("match")
    assert m["command"] == "findscu" and m["n"] == 1 and m["status"]["hex"] == "0xFF00"  # type: ignore[index]
    record = m["dataset"]
    assert record["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Müller^Hans"}]}  # type: ignore[index]
    assert record["00100020"] == {"vr": "LO", "Value": [A]}  # type: ignore[index]
    assert record["00100030"] == {"vr": "DA", "Value": ["19600412"]}  # type: ignore[index]
    assert record["00080052"] == {"vr": "CS", "Value": ["PATIENT"]}  # type: ignore[index]
    assert r.of("association")[0]["outcome"] == "accepted"
    assert r.summary["queries"] == 1


def test_csv_to_stdout(archives: Archives) -> None:
    r = dcmcli("findscu", "-S", "-k", "PatientName", "-k", "StudyDate", "-k", "AccessionNumber", "--csv", "-",
               *archives.q.at())
    assert r.code == 0, r
    rows = list(csv.reader(io.StringIO(r.stdout)))
    assert rows[0] == ["PatientName", "StudyDate", "AccessionNumber", "StudyInstanceUID"]
    assert sorted(row[:3] for row in rows[1:]) == [["Doe^Jane", "20240220", "ACC-B1"],
                                                   ["Müller^Hans", "20240115", "ACC-A1"]]


def test_ndjson_to_stdout(archives: Archives, qr_study: QRStudy) -> None:
    r = dcmcli("findscu", "-S", "-L", "SERIES", "-k", f"StudyInstanceUID={qr_study.study_uids(A)[0]}",
               "-k", "Modality", "-k", "SeriesNumber", "--ndjson", "-", *archives.o.at())
    assert r.code == 0, r
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(records) == 4  # nothing else on stdout
    assert sorted((rec["00200011"]["Value"][0], rec["00080060"]["Value"][0]) for rec in records) == [
        (1, "CT"), (2, "MR"), (3, "OT"), (4, "SR")]


def test_json_and_csv_both_on_stdout_is_a_usage_error(archives: Archives) -> None:
    r = dcmcli("findscu", "--json", "--csv", "-", *archives.q.at())
    assert r.code == 1 and "--json and --csv - / --ndjson - both write to stdout" in r.stderr


def test_extract_writes_files_dcmdump_reads(archives: Archives, tmp_path: Path) -> None:
    out = tmp_path / "rsp"
    r = dcmcli("findscu", "-P", "-k", "PatientName", "-k", "PatientID", "-X", "-od", str(out), *archives.q.at())
    assert r.code == 0, r
    files = sorted(p.name for p in out.iterdir())
    assert files == ["rsp0001.dcm", "rsp0002.dcm"]
    names = set()
    for f in files:
        d = subprocess.run([dcmtk("dcmdump"), "+U8", str(out / f)], capture_output=True, text=True, timeout=30)
        assert d.returncode == 0 and "E:" not in d.stderr, d.stderr
        assert "(0002,0002) UI =FINDPatientRootQueryRetrieveInformationModel" in d.stdout
        names.add(d.stdout.split("(0010,0010) PN [", 1)[1].split("]", 1)[0])
    assert names == {"Müller^Hans", "Doe^Jane"}


# --------------------------------------------------------------------------
# character sets

def test_non_ascii_name_from_dcmqrscp_in_latin1_and_in_utf8(archives: Archives, tmp_path: Path) -> None:
    """Asked in ASCII, dcmqrscp answers with the stored ISO_IR 100 bytes; a
    key with ü makes dcmcli ask in UTF-8 (ISO_IR 192), which dcmqrscp
    converts its answer to. Both decode to Müller."""
    latin = _find(archives.q, "-P", "-k", f"PatientID={A}", "-k", "PatientName")
    assert latin.code == 0, latin
    ds = dataset_of(latin.one("match"))
    assert ds.SpecificCharacterSet == "ISO_IR 100" and str(ds.PatientName) == "Müller^Hans"
    out = tmp_path / "rsp"
    utf8 = dcmcli("findscu", "-P", "-k", "PatientName=Müller*", "-k", "PatientID", "--csv", "-", "-X",
                  "-od", str(out), *archives.q.at())
    assert utf8.code == 0, utf8
    assert list(csv.reader(io.StringIO(utf8.stdout))) == [["PatientName", "PatientID"], ["Müller^Hans", A]]
    raw = (out / "rsp0001.dcm").read_bytes()
    assert b"ISO_IR 192" in raw and "Müller^Hans".encode() in raw  # written as received, in UTF-8


def test_non_ascii_name_from_orthanc(archives: Archives) -> None:
    """Orthanc answers in ISO_IR 100, also when asked in UTF-8."""
    r = _find(archives.o, "-P", "-k", "PatientName=Müller*", "-k", "PatientID")
    assert r.code == 0, r
    ds = dataset_of(r.one("match"))
    assert ds.SpecificCharacterSet == "ISO_IR 100" and str(ds.PatientName) == "Müller^Hans"
    assert str(ds.PatientID) == A


# --------------------------------------------------------------------------
# query files

def test_dicom_query_file_from_dump2dcm_and_k_overrides_it(archives: Archives, tmp_path: Path) -> None:
    archive = archives.q
    dump = tmp_path / "query.dump"
    dump.write_text("(0008,0052) CS [STUDY]\n(0010,0010) PN [M*]\n(0010,0020) LO []\n(0008,0050) SH []\n")
    query = tmp_path / "query.dcm"
    subprocess.run([dcmtk("dump2dcm"), str(dump), str(query)], check=True, capture_output=True, timeout=30)
    r = _find(archive, files=(query,))
    assert r.code == 0, r
    ds = dataset_of(r.one("match"))
    assert (str(ds.PatientID), str(ds.AccessionNumber)) == (A, "ACC-A1")
    over = _find(archive, "-k", "PatientName=D*", files=(query,))
    assert over.code == 0, over
    ds = dataset_of(over.one("match"))
    assert (str(ds.PatientID), str(ds.AccessionNumber)) == (B, "ACC-B1")  # the file's return keys kept


def test_dicom_json_query_file(archives: Archives, tmp_path: Path, qr_study: QRStudy) -> None:
    archive = archives.o
    query = tmp_path / "query.json"
    query.write_text(json.dumps({"00080052": {"vr": "CS", "Value": ["SERIES"]},
                                 "0020000D": {"vr": "UI", "Value": [qr_study.study_uids(B)[0]]},
                                 "00080060": {"vr": "CS"}}))
    r = _find(archive, files=(query,))
    assert r.code == 0, r
    assert sorted(str(dataset_of(m).Modality) for m in r.of("match")) == ["CT", "US"]
    two = _find(archive, "-k", "Modality=US", files=(query,))
    assert [str(dataset_of(m).Modality) for m in two.of("match")] == ["US"]


def test_repeat(archives: Archives) -> None:
    r = _find(archives.q, "-S", "-k", "PatientID", "--repeat", "3")
    assert r.code == 0, r
    assert [m["repeat"] for m in r.of("match")] == [1, 1, 2, 2, 3, 3]
    assert r.summary["queries"] == 3 and r.summary["matches"] == 6
    assert [o["matches"] for o in r.summary["outcomes"]] == [2, 2, 2]  # type: ignore[index,union-attr]
    assert len(r.of("association")) == 1  # one association for the three


# --------------------------------------------------------------------------
# C-CANCEL and --limit against many instances

def _many_query(archive: Archive, *extra: str) -> Run:
    return _find(archive, "-L", "IMAGE", "-k", f"PatientID={MANY}", "-k", "StudyInstanceUID",
                 "-k", "SeriesInstanceUID", *extra)


def test_cancel_ends_with_fe00(many: Archives, many_archive: Archive) -> None:
    r = _many_query(many_archive, "--cancel", "5")
    assert r.code == 0, r
    s = r.summary
    assert s["status"]["hex"] == "0xFE00", s  # type: ignore[index]
    assert s["cancelled"] is True
    total = many.count
    assert 5 <= s["matches"] < total, s  # type: ignore[operator]
    assert len(r.of("match")) == s["matches"]  # --cancel prints what came before the peer stopped


def test_limit_prints_exactly_n(many: Archives) -> None:
    r = _many_query(many.q, "--limit", "7")
    assert r.code == 0, r
    assert [m["n"] for m in r.of("match")] == [1, 2, 3, 4, 5, 6, 7] and r.summary["matches"] == 7
    assert r.summary["status"]["hex"] in ("0xFE00", "0x0000") and r.summary["cancelled"] is True  # type: ignore[index]
    table = dcmcli("findscu", "-L", "IMAGE", "-k", f"PatientID={MANY}", "-k", "StudyInstanceUID",
                   "-k", "SeriesInstanceUID", "--limit", "3", "--csv", "-", *many.o.at())
    assert table.code == 0, table
    lines = table.stdout.splitlines()
    assert lines[0] == "PatientID,StudyInstanceUID,SeriesInstanceUID,SOPInstanceUID" and len(lines) == 1 + 3


# --------------------------------------------------------------------------
# bad input and peers that say no

def test_unknown_keyword_gets_a_did_you_mean(archives: Archives) -> None:
    r = dcmcli("findscu", "-k", "PatientNme=Doe*", *archives.q.at())
    assert r.code == 1
    assert r.stderr.strip() == ("findscu: error: unknown attribute 'PatientNme' in key 'PatientNme=Doe*'; "
                                "did you mean PatientName?")


@pytest.mark.parametrize("key,message", [
    ("(0010,001G)=X", "malformed tag '(0010,001G)'"),
    ("PatientName[0].PatientID=X", "PatientName in key 'PatientName[0].PatientID=X' is not a sequence"),
])
def test_malformed_keys(archives: Archives, key: str, message: str) -> None:
    r = dcmcli("findscu", "-k", key, *archives.q.at())
    assert r.code == 1 and message in r.stderr, r
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("model,level,levels", [("-S", "PATIENT", "STUDY, SERIES, IMAGE"),
                                                 ("-O", "SERIES", "PATIENT, STUDY")])
def test_level_the_model_does_not_have(archives: Archives, model: str, level: str, levels: str) -> None:
    r = dcmcli("findscu", model, "-L", level, *archives.q.at())
    assert r.code == 1
    assert f"model has no {level} level; use one of {levels}" in r.stderr


def test_query_file_that_is_not_dicom(archives: Archives, tmp_path: Path) -> None:
    bad = tmp_path / "query.txt"
    bad.write_text("PatientName=Doe*\n")
    r = dcmcli("findscu", *archives.q.at(), str(bad))
    assert r.code == 22
    assert f"query file '{bad}' is neither DICOM nor DICOM JSON" in r.stderr and "dump2dcm" in r.stderr
    broken = tmp_path / "query.json"
    broken.write_text('{"00100010": ')
    r = dcmcli("findscu", *archives.q.at(), str(broken))
    assert r.code == 22 and "is not valid JSON" in r.stderr
    r = dcmcli("findscu", *archives.q.at(), str(tmp_path / "missing.dcm"))
    assert r.code == 20 and "cannot read query file" in r.stderr


def test_orthanc_refuses_patient_study_only(archives: Archives) -> None:
    r = dcmcli("findscu", "-O", "-k", f"PatientID={A}", *archives.o.at())
    assert r.code == 65
    assert "accepted the association but none of the 1 presentation contexts" in r.stderr
    assert "Patient/Study Only Query/Retrieve Information Model - FIND" in r.stderr


def test_connection_refused() -> None:
    (port,) = free_ports(1)  # nothing listens there
    r = dcmcli("findscu", "127.0.0.1", str(port))
    assert r.code == 60
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in r.stderr


def test_wrong_called_ae_title_is_rejected_by_dcmqrscp(archives: Archives) -> None:
    r = dcmcli("findscu", "-aec", "NOTQRSCP", "127.0.0.1", str(archives.q.port))
    assert r.code == 61
    assert "association rejected" in r.stderr and "called AE title not recognised" in r.stderr
    assert "check -aec (sent 'NOTQRSCP')" in r.stderr


def test_orthanc_aborting_an_unknown_calling_ae(orthanc) -> None:
    """Orthanc with its default Dicom* flags (echo and store allowed, the
    rest for DicomModalities only) accepts the association, then aborts the
    C-FIND: the hint names DicomModalities, exit 62, never a timeout."""
    peer = orthanc(modalities={"known": ("KNOWN", free_ports(1)[0])}, always_allow=False,
                   overrides={"DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True})
    r = dcmcli("findscu", "-aet", "STRANGER", "-aec", peer.aet, "-td", "10", "127.0.0.1", str(peer.port))
    assert r.code == 62, r
    assert "the peer aborted" in r.stderr and "it aborted right after the request" in r.stderr
    assert "add STRANGER with this host to the peer's configuration (for Orthanc: DicomModalities)" in r.stderr
    assert "timeout" not in r.stderr
