"""dcmcli dcmdir against the real DICOMDIR tools: DCMTK's dcmmkdir and
dcmdump, GDCM's gdcminfo/gdcmdump, pydicom's FileSet; and storescu --dicomdir.

These tools exit 0 on most corruption (see peers.md), so the tests read their
messages as well as their exit codes.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import struct
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import dcmcli_cmd, dcmtk, json_lines, peer_tool, received_events, run_dcmcli

GDCM_BIN = Path("/usr/bin")
COMPLIANT = re.compile(r"^[A-Z0-9_]{1,8}$")


def gdcm(tool: str) -> str:
    return peer_tool(GDCM_BIN, tool, "GDCM", "libgdcm-tools")


# -- test objects ------------------------------------------------------------------

PATIENT = {"PatientName": "MEDIA^TEST", "PatientID": "PID001"}
STUDY_UID = "1.2.826.0.1.3680043.8.498.1001"


def _save(ds: Dataset, path: Path) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _base(sop_class: str, modality: str, series_no: int, **extra: object) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.update(PATIENT)  # type: ignore[arg-type]
    ds.StudyInstanceUID = STUDY_UID
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20261201", "101500", "S1", "ACC1"
    ds.StudyDescription = "MEDIA TEST"
    ds.SeriesInstanceUID = f"{STUDY_UID}.{series_no}"
    ds.SeriesNumber = series_no
    ds.Modality = modality
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = "20261201", "101600"
    for k, v in extra.items():
        setattr(ds, k, v)
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def make_sr(path: Path) -> Path:
    ds = _base("1.2.840.10008.5.1.4.1.1.88.33", "SR", 3, CompletionFlag="COMPLETE", VerificationFlag="UNVERIFIED",
               ValueType="CONTAINER", ContinuityOfContent="SEPARATE")
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
    mod = Dataset()
    mod.RelationshipType, mod.ValueType = "HAS CONCEPT MOD", "CODE"
    mod.ConceptNameCodeSequence = Sequence([_code("121049", "DCM", "Language of Content Item and Descendants")])
    mod.ConceptCodeSequence = Sequence([_code("en", "RFC5646", "English")])
    texts = []
    for i in range(20):  # a content tree that must not end up in the record
        t = Dataset()
        t.RelationshipType, t.ValueType = "CONTAINS", "TEXT"
        t.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
        t.TextValue = f"finding {i} " + "x" * 200
        texts.append(t)
    ds.ContentSequence = Sequence([mod, *texts])
    return _save(ds, path)


def make_pr(path: Path, referenced: Dataset) -> Path:
    ds = _base("1.2.840.10008.5.1.4.1.1.11.1", "PR", 4, PresentationCreationDate="20261201",
               PresentationCreationTime="102000", ContentLabel="KEY_VIEW", ContentDescription="key view",
               ContentCreatorName="DOE^JANE")
    img = Dataset()
    img.ReferencedSOPClassUID, img.ReferencedSOPInstanceUID = referenced.SOPClassUID, referenced.SOPInstanceUID
    ser = Dataset()
    ser.SeriesInstanceUID = referenced.SeriesInstanceUID
    ser.ReferencedImageSequence = Sequence([img])
    ds.ReferencedSeriesSequence = Sequence([ser])
    return _save(ds, path)


def make_pdf(path: Path) -> Path:
    ds = _base("1.2.840.10008.5.1.4.1.1.104.1", "DOC", 5, MIMETypeOfEncapsulatedDocument="application/pdf",
               DocumentTitle="REPORT", BurnedInAnnotation="YES")
    ds.ConceptNameCodeSequence = Sequence([])
    ds.EncapsulatedDocument = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    return _save(ds, path)


def make_multiframe(path: Path, frames: int = 3) -> Path:
    ds = _base("1.2.840.10008.5.1.4.1.1.7.3", "OT", 6, NumberOfFrames=frames, Rows=8, Columns=8,
               SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2", BitsAllocated=16, BitsStored=12,
               HighBit=11, PixelRepresentation=0)
    ds.FrameIncrementPointer = 0x00181063
    ds.PixelData = bytes(range(128)) * frames
    return _save(ds, path)


def make_ko(path: Path, referenced: Dataset) -> Path:
    ds = _base("1.2.840.10008.5.1.4.1.1.88.59", "KO", 8, ValueType="CONTAINER", ContinuityOfContent="SEPARATE")
    ds.ConceptNameCodeSequence = Sequence([_code("113000", "DCM", "Of Interest")])
    item = Dataset()
    item.RelationshipType, item.ValueType = "CONTAINS", "IMAGE"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = referenced.SOPClassUID, referenced.SOPInstanceUID
    item.ReferencedSOPSequence = Sequence([ref])
    ds.ContentSequence = Sequence([item])
    return _save(ds, path)


def make_private(path: Path) -> Path:
    return _save(_base("1.2.826.0.1.3680043.8.498.77777.1", "OT", 7), path)


def from_sample(name: str, path: Path, *, ele: bool = False, **fix: object) -> Path:
    """A copy of a pydicom sample with a new SOP Instance UID, in its own
    transfer syntax (or Explicit VR Little Endian with ``ele``)."""
    ds = dcmread(get_testdata_file(name))
    ds.SOPInstanceUID = generate_uid()
    for k, v in fix.items():
        setattr(ds, k, v)
    if not ele:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        return path
    return _save(ds, path)


def make_mixed(folder: Path) -> dict[str, Path]:
    """CT, MR, SR, RT plan, presentation state, encapsulated PDF, a multi-frame image, a private class,
    a key object selection, a 12-lead ECG."""
    ct = from_sample("CT_small.dcm", folder / "ct.dcm")
    files = {
        "ct": ct,
        "mr": from_sample("MR_small.dcm", folder / "sub" / "mr.dcm"),
        "sr": make_sr(folder / "report.sr.dcm"),
        "rtplan": from_sample("rtplan.dcm", folder / "plan.dcm", ele=True, InstanceNumber=1),
        "pr": make_pr(folder / "gsps.dcm", dcmread(ct, stop_before_pixels=True)),
        "pdf": make_pdf(folder / "doc.pdf.dcm"),
        "mf": make_multiframe(folder / "multi frame.dcm"),
        "private": make_private(folder / "private.dcm"),
        "ko": make_ko(folder / "ko.dcm", dcmread(ct, stop_before_pixels=True)),
        "ecg": from_sample("waveform_ecg.dcm", folder / "ecg.dcm", SeriesNumber=9, **PATIENT),
    }
    return files


EXPECTED_TYPES = {"ct": "IMAGE", "mr": "IMAGE", "sr": "SR DOCUMENT", "rtplan": "RT PLAN", "pr": "PRESENTATION",
                  "pdf": "ENCAP DOC", "mf": "IMAGE", "private": "PRIVATE",
                  "ko": "KEY OBJECT DOC", "ecg": "WAVEFORM"}


def dcmdump_ok(path: Path) -> str:
    r = subprocess.run([dcmtk("dcmdump"), "-q", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not re.search(r"^[EFW]: ", r.stderr, re.M), r.stderr
    return r.stdout


def records(dicomdir: Path) -> list[dict[str, object]]:
    r = run_dcmcli("dcmdir", "list", "--json", str(dicomdir))
    assert r.returncode == 0, r.stderr
    return [e for e in json_lines(r.stdout) if e["event"] == "record"]


def compliant_names(media: Path) -> list[str]:
    bad = []
    for p in media.rglob("*"):
        rel = p.relative_to(media)
        if p.is_file() and (len(rel.parts) > 8 or not all(COMPLIANT.match(x) for x in rel.parts)):
            bad.append(str(rel))
    return bad


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_mixed(tmp_path_factory.mktemp("mixed") / "in")


@pytest.fixture(scope="module")
def media(mixed: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A media folder made by dcmcli from the mixed input."""
    out = tmp_path_factory.mktemp("media") / "usb"
    r = run_dcmcli("dcmdir", "create", "--json", "--copy-to", str(out), "+F", "MIXED_1",
                   "-Nxc", str(mixed["ct"].parent))
    assert r.returncode == 0, r.stderr
    events = json_lines(r.stdout)
    assert [e["outcome"] for e in events if e["event"] == "result"].count("added") == len(mixed)
    return out


# -- create --copy-to, record types, other readers ------------------------------------

def test_copy_to_gives_each_class_its_record_type_and_only_compliant_names(media: Path, mixed: dict[str, Path]
                                                                          ) -> None:
    assert compliant_names(media) == []
    recs = records(media / "DICOMDIR")
    by_uid = {r["keys"].get("ReferencedSOPInstanceUIDInFile"): r for r in recs if r["file"]}
    for name, path in mixed.items():
        uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
        assert by_uid[uid]["type"] == EXPECTED_TYPES[name], name
        assert (media / by_uid[uid]["file"]).read_bytes() == path.read_bytes()  # copied as it was
    assert [r["type"] for r in recs if r["depth"] == 0] == ["PATIENT"] * 4
    private = next(r for r in recs if r["type"] == "PRIVATE")
    assert private["keys"]["PrivateRecordUID"] == "1.2.826.0.1.3680043.8.498.77777.1"
    # one study of the generated objects, one series each
    study = next(r for r in recs if r["type"] == "STUDY" and r["keys"]["StudyInstanceUID"] == STUDY_UID)
    series = [r for r in recs if r["parent_offset"] == study["offset"]]
    assert len(series) == 6 and {r["type"] for r in series} == {"SERIES"}


def test_sr_record_keeps_only_the_concept_modifiers(media: Path) -> None:
    ds = dcmread(media / "DICOMDIR")
    sr = next(r for r in ds.DirectoryRecordSequence if r.DirectoryRecordType == "SR DOCUMENT")
    assert [i.RelationshipType for i in sr.ContentSequence] == ["HAS CONCEPT MOD"]
    assert sr.CompletionFlag == "COMPLETE" and sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    assert os.path.getsize(media / "DICOMDIR") < 8000  # the 20 findings are not in it


def test_dcmcli_dicomdir_is_read_by_dcmdump_pydicom_and_gdcm(media: Path, mixed: dict[str, Path]) -> None:
    dump = dcmdump_ok(media / "DICOMDIR")
    assert dump.count('"Directory Record" SR DOCUMENT') == 1 and 'MIXED_1' in dump
    from pydicom.fileset import FileSet

    fs = FileSet(media / "DICOMDIR")
    assert len(fs) == len(mixed)
    assert fs.ID == "MIXED_1"
    assert {i.SOPInstanceUID for i in fs} == {dcmread(p, stop_before_pixels=True).SOPInstanceUID
                                             for p in mixed.values()}
    r = subprocess.run([gdcm("gdcmdump"), str(media / "DICOMDIR")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stderr
    assert "PRESENTATION" in r.stdout
    r = subprocess.run([gdcm("gdcminfo"), str(media / "DICOMDIR")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "error" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    assert "Media Storage Directory Storage" in r.stdout


def test_check_passes_a_fresh_media_folder_and_dcmmkdir_updates_it(media: Path, tmp_path: Path) -> None:
    r = run_dcmcli("dcmdir", "check", "--json", str(media / "DICOMDIR"))
    assert r.returncode == 0, r.stdout + r.stderr
    summary = json_lines(r.stdout)[-1]
    assert summary["problems"] == 0 and summary["records"] >= 14
    # DCMTK reads every record of it as its own (+A appends, re-reading the existing ones)
    copy = tmp_path / "m"
    shutil.copytree(media, copy)
    extra = from_sample("CT_small.dcm", copy / "EXTRA" / "CT2")
    r = subprocess.run([dcmtk("dcmmkdir"), "+A", "-Nxc", "-Pgp", "EXTRA/CT2"], cwd=copy, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and not re.search(r"^[EF]: ", r.stderr, re.M), r.stderr
    assert len([x for x in records(copy / "DICOMDIR") if x["file"]]) == len(EXPECTED_TYPES) + 1
    assert extra.exists()


# -- create in place: PS3.10 names ------------------------------------------------------

def test_create_in_place_names_every_file_that_breaks_ps310(tmp_path: Path) -> None:
    root = tmp_path / "m"
    good = from_sample("CT_small.dcm", root / "DICOM" / "CT1")
    bad = [from_sample("CT_small.dcm", root / "DICOM" / "ct2"),
           from_sample("CT_small.dcm", root / "DICOM" / "TOOLONGNAME"),
           from_sample("CT_small.dcm", root / "DICOM" / "CT3.DCM")]
    r = run_dcmcli("dcmdir", "create", str(root / "DICOMDIR"), str(root / "DICOM"))
    assert r.returncode == 25, r.stderr
    for p in bad:
        assert str(p) in r.stderr
    assert "lower-case" in r.stderr and "11 characters" in r.stderr and "'.'" in r.stderr
    assert str(good) not in r.stderr and "--copy-to" in r.stderr
    assert not (root / "DICOMDIR").exists()
    outside = from_sample("CT_small.dcm", tmp_path / "OUT" / "CT9")
    r = run_dcmcli("dcmdir", "create", str(root / "DICOMDIR"), str(outside))
    assert r.returncode == 25 and "not below the DICOMDIR's folder" in r.stderr
    for p in bad:
        p.unlink()
    (root / "README").write_text("A test file-set\n")
    r = run_dcmcli("dcmdir", "create", "+F", "IN_PLACE", "+R", str(root / "README"), str(root / "DICOMDIR"),
                   str(root / "DICOM"))
    assert r.returncode == 0, r.stderr
    ds = dcmread(root / "DICOMDIR")
    assert ds.FileSetDescriptorFileID == "README" and ds.SpecificCharacterSetOfFileSetDescriptorFile == "ISO_IR 100"
    assert "created" in r.stdout and "1 added" in r.stdout
    assert [x["file"] for x in records(root / "DICOMDIR") if x["file"]] == ["DICOM/CT1"]
    dcmdump_ok(root / "DICOMDIR")


def test_create_refuses_to_replace_an_existing_dicomdir(media: Path) -> None:
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(media), str(media / "DICOM"))
    assert r.returncode == 1 and "exists already" in r.stderr and "update" in r.stderr


# -- DCMTK's DICOMDIRs: list, check, update; dcmmkdir +A afterwards -----------------------

def test_dcmmkdir_dicomdir_listed_checked_updated_and_appended_by_dcmtk(tmp_path: Path) -> None:
    root = tmp_path / "cd"
    a = from_sample("CT_small.dcm", root / "IMG" / "A1")
    b = from_sample("MR_small.dcm", root / "IMG" / "B1")
    r = subprocess.run([dcmtk("dcmmkdir"), "+r", "-Pgp", "+F", "DCMTK_SET", "IMG"], cwd=root, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    recs = records(root / "DICOMDIR")
    assert sorted(x["file"] for x in recs if x["file"]) == ["IMG/A1", "IMG/B1"]
    tree = run_dcmcli("dcmdir", "list", str(root / "DICOMDIR"))
    assert tree.returncode == 0 and "DCMTK_SET" in tree.stdout and "IMAGE #1 IMG/A1" in tree.stdout
    assert run_dcmcli("dcmdir", "check", str(root / "DICOMDIR")).returncode == 0
    c = make_sr(root / "NEW" / "SR1")
    dup = root / "NEW" / "DUP1"
    shutil.copyfile(a, dup)
    r = run_dcmcli("dcmdir", "update", "--json", str(root / "DICOMDIR"), str(root / "NEW"))
    assert r.returncode == 0, r.stderr
    outcomes = {Path(e["path"]).name: e["outcome"] for e in json_lines(r.stdout) if e["event"] == "result"}
    assert outcomes == {"SR1": "added", "DUP1": "duplicate"}
    r = run_dcmcli("dcmdir", "update", str(root / "DICOMDIR"), str(dup))
    assert r.returncode == 0 and "is in the DICOMDIR already" in r.stderr and "unchanged" in r.stdout
    assert dcmread(root / "DICOMDIR").FileSetID == "DCMTK_SET"  # kept what was there
    dcmdump_ok(root / "DICOMDIR")
    d = from_sample("CT_small.dcm", root / "IMG" / "D1")
    r = subprocess.run([dcmtk("dcmmkdir"), "+A", "-Pgp", "IMG/D1"], cwd=root, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and not re.search(r"^[EF]: ", r.stderr, re.M), r.stderr
    files = sorted(x["file"] for x in records(root / "DICOMDIR") if x["file"])
    assert files == ["IMG/A1", "IMG/B1", "IMG/D1", "NEW/SR1"]
    assert run_dcmcli("dcmdir", "check", str(root / "DICOMDIR")).returncode == 0
    assert b.exists() and c.exists() and d.exists()


# -- bad input ------------------------------------------------------------------------------

def test_truncated_dicomdir(media: Path, tmp_path: Path) -> None:
    cut = tmp_path / "DICOMDIR"
    data = (media / "DICOMDIR").read_bytes()
    cut.write_bytes(data[:len(data) // 2])
    r = run_dcmcli("dcmdir", "list", str(cut))
    assert r.returncode == 26 and "truncated" in r.stderr and "Traceback" not in r.stderr
    r = run_dcmcli("dcmdir", "check", "--json", str(cut))
    assert r.returncode == 26
    problems = [e for e in json_lines(r.stdout) if e["event"] == "problem"]
    assert problems and problems[0]["rule"] == "readable" and "truncated" in problems[0]["message"]
    r = run_dcmcli("dcmdir", "update", str(cut), str(media / "DICOM"))
    assert r.returncode == 26 and "truncated" in r.stderr
    assert cut.read_bytes() == data[:len(data) // 2]  # left as it was


def test_check_reports_missing_and_mismatching_files(media: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(media, copy)
    leaves = [x for x in records(copy / "DICOMDIR") if x["file"]]
    (copy / leaves[0]["file"]).unlink()
    other = from_sample("CT_small.dcm", tmp_path / "other.dcm")
    shutil.copyfile(other, copy / leaves[1]["file"])
    (copy / leaves[2]["file"]).write_bytes(b"not dicom at all")
    r = run_dcmcli("dcmdir", "check", str(copy / "DICOMDIR"))
    assert r.returncode == 26
    lines = r.stdout.splitlines()
    assert any("missing" in x and leaves[0]["file"] in x for x in lines)
    assert any("SOP Instance UID" in x and leaves[1]["file"] in x for x in lines)
    assert any("not usable DICOM" in x and leaves[2]["file"] in x for x in lines)
    assert re.search(r"\b[34] problems in \d+ records", r.stderr), r.stderr


def test_check_reports_broken_offsets_and_blank_keys(media: Path, tmp_path: Path) -> None:
    from dcmcli.media.dicomdir import read_dicomdir, write_dicomdir
    from dcmcli.media.records import text_element, KEYWORD_TAG

    copy = tmp_path / "m"
    shutil.copytree(media, copy)
    d = read_dicomdir(copy / "DICOMDIR")
    patient = d.roots[0]
    patient.elements[KEYWORD_TAG["PatientID"]] = text_element(KEYWORD_TAG["PatientID"], "")
    write_dicomdir(d)
    data = bytearray((copy / "DICOMDIR").read_bytes())
    series = next(r for r in read_dicomdir(copy / "DICOMDIR").walk() if r.type == "SERIES")
    # its Offset of Referenced Lower-Level Directory Entity (third element of the item) to nowhere
    struct.pack_into("<L", data, series.offset + 8 + 12 + 10 + 8, 7)
    (copy / "DICOMDIR").write_bytes(bytes(data))
    r = run_dcmcli("dcmdir", "check", "--json", str(copy / "DICOMDIR"))
    assert r.returncode == 26
    problems = [e for e in json_lines(r.stdout) if e["event"] == "problem"]
    rules = {p["rule"] for p in problems}
    assert {"keys", "structure"} <= rules
    assert any("PatientID" in p["message"] and "empty" in p["message"] for p in problems)
    assert any("points to no record" in p["message"] for p in problems)
    assert any("orphan" in p["message"] for p in problems)


def _without_write_access(folder: Path) -> list[str]:
    """The command prefix under which ``folder`` (mode 555) cannot be written:
    none for an ordinary user; for root, setpriv without CAP_DAC_OVERRIDE."""
    candidates: list[list[str]] = [[]]
    setpriv = shutil.which("setpriv")
    if setpriv:
        caps = "-dac_override,-dac_read_search"
        candidates.append([setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"])
    for n, prefix in enumerate(candidates):
        probe = subprocess.run([*prefix, "python3", "-c", "import sys; open(sys.argv[1], 'x')",
                                str(folder / f"probe{n}")], capture_output=True, text=True, timeout=30)
        (folder / f"probe{n}").unlink(missing_ok=True)
        if probe.returncode != 0 and "PermissionError" in probe.stderr:
            return prefix
    pytest.skip("running as root and setpriv cannot drop CAP_DAC_OVERRIDE here")


def test_a_cycle_of_offsets_is_reported_not_followed(media: Path, tmp_path: Path) -> None:
    from dcmcli.media.dicomdir import read_dicomdir

    copy = tmp_path / "DICOMDIR"
    data = bytearray((media / "DICOMDIR").read_bytes())
    d = read_dicomdir(media / "DICOMDIR")
    last, first = d.roots[-1], d.roots[0]
    struct.pack_into("<L", data, last.offset + 8 + 8, first.offset)  # its next record: the first again
    copy.write_bytes(bytes(data))
    r = run_dcmcli("dcmdir", "list", str(copy))
    assert r.returncode == 0 and "cycle" in r.stderr
    assert r.stdout.count("PATIENT ") == 4  # each once
    r = run_dcmcli("dcmdir", "check", str(copy))
    assert r.returncode == 26 and "cycle" in r.stdout


def test_update_copy_to_adds_to_a_media_folder(media: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(media, copy)
    new = make_sr(tmp_path / "in" / "extra sr.dcm")
    before = len(list((copy / "DICOM").rglob("I*")))
    r = run_dcmcli("dcmdir", "update", "--copy-to", str(copy), str(new), str(copy / "DICOM"))
    assert r.returncode == 0, r.stderr
    assert "1 added" in r.stdout and f"{before} duplicates" in r.stdout
    assert compliant_names(copy) == []
    assert len([x for x in records(copy / "DICOMDIR") if x["file"]]) == before + 1
    assert run_dcmcli("dcmdir", "check", str(copy / "DICOMDIR")).returncode == 0


def test_non_dicom_inputs_and_readonly_output(tmp_path: Path) -> None:
    src = tmp_path / "in"
    from_sample("CT_small.dcm", src / "ct.dcm")
    (src / "notes.txt").write_text("not DICOM")
    named = src / "also.txt"
    named.write_text("neither")
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(tmp_path / "m1"), str(src))
    assert r.returncode == 0 and "notes.txt" in r.stderr  # found in a folder: a warning
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(tmp_path / "m2"), str(src / "ct.dcm"), str(named))
    assert r.returncode == 22 and "also.txt" in r.stderr  # named: exit 22, the rest still done
    assert (tmp_path / "m2" / "DICOMDIR").exists()
    cut = src / "cut.dcm"
    data = (src / "ct.dcm").read_bytes()
    cut.write_bytes(data[:len(data) - 100])
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(tmp_path / "m4"), str(cut), str(src / "ct.dcm"))
    assert r.returncode == 22 and "truncated" in r.stderr and str(cut) in r.stderr
    assert len([x for x in records(tmp_path / "m4" / "DICOMDIR") if x["file"]]) == 1  # ct.dcm, not its cut copy
    cut.unlink()
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(tmp_path / "m3"), str(named))
    assert r.returncode == 23 and not (tmp_path / "m3" / "DICOMDIR").exists()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    try:
        prefix = _without_write_access(ro)
        r = subprocess.run([*prefix, *dcmcli_cmd("dcmdir", "create", "--copy-to", str(ro), str(src / "ct.dcm"))],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 40 and "Traceback" not in r.stderr, r.stderr
        assert "cannot" in r.stderr and not (ro / "DICOMDIR").exists()
    finally:
        ro.chmod(stat.S_IRWXU)


def test_missing_type1_key_fails_the_file_unless_invent(tmp_path: Path) -> None:
    src = from_sample("rtplan.dcm", tmp_path / "in" / "plan.dcm")  # no InstanceNumber
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(tmp_path / "m"), "-Nxc", str(src))
    assert "Implicit VR Little Endian is not allowed by STD-GEN-CD" in r.stderr  # -Nxc: a warning
    assert r.returncode == 22 and "InstanceNumber (0020,0013) is missing" in r.stderr and "--invent" in r.stderr
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(tmp_path / "m2"), "-Nxc", "+I", str(src))
    assert r.returncode == 0 and "invented" in r.stderr
    assert [x["type"] for x in records(tmp_path / "m2" / "DICOMDIR") if x["file"]] == ["RT PLAN"]


# -- profiles and --transcode ---------------------------------------------------------------

def test_profile_transfer_syntaxes_and_transcode(tmp_path: Path) -> None:
    src = tmp_path / "in"
    rle = from_sample("MR_small_RLE.dcm", src / "rle.dcm")
    implicit = from_sample("MR_small_implicit.dcm", src / "implicit.dcm")
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(tmp_path / "cd"), str(src))
    assert r.returncode == 27 and str(rle) in r.stderr and str(implicit) in r.stderr and "STD-GEN-CD" in r.stderr
    r = run_dcmcli("dcmdir", "create", "--json", "--copy-to", str(tmp_path / "cd"), str(src))
    problems = [e for e in json_lines(r.stdout) if e["event"] == "problem"]
    assert r.returncode == 27 and {p["rule"] for p in problems} == {"profile"} and len(problems) == 2
    assert json_lines(r.stdout)[-1]["exit_code"] == 27
    r = run_dcmcli("dcmdir", "create", "--json", "--copy-to", str(tmp_path / "cd"), "--transcode", str(src))
    assert r.returncode == 0, r.stderr
    recs = [x for x in records(tmp_path / "cd" / "DICOMDIR") if x["file"]]
    assert {x["keys"]["ReferencedTransferSyntaxUIDInFile"] for x in recs} == {ExplicitVRLittleEndian}
    for x in recs:
        assert dcmread(tmp_path / "cd" / x["file"]).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    r = run_dcmcli("dcmdir", "check", "--profile", "STD-GEN-CD", str(tmp_path / "cd" / "DICOMDIR"))
    assert r.returncode == 0, r.stdout + r.stderr
    # a lossless J2K file on a JPEG DVD: JPEG lossless, bit for bit
    j2k = from_sample("MR_small_jp2klossless.dcm", tmp_path / "in2" / "j2k.dcm")
    r = run_dcmcli("dcmdir", "create", "--copy-to", str(tmp_path / "dvd"), "--profile", "STD-GEN-DVD-JPEG",
                   "--transcode", str(j2k))
    assert r.returncode == 0, r.stderr
    leaf = next(x for x in records(tmp_path / "dvd" / "DICOMDIR") if x["file"])
    assert leaf["keys"]["ReferencedTransferSyntaxUIDInFile"] == "1.2.840.10008.1.2.4.70"
    ds = dcmread(tmp_path / "dvd" / leaf["file"])
    assert (ds.pixel_array == dcmread(j2k).pixel_array).all()
    r = run_dcmcli("dcmdir", "check", "--profile", "STD-GEN-CD", str(tmp_path / "dvd" / "DICOMDIR"))
    assert r.returncode == 26 and "not allowed by STD-GEN-CD" in r.stdout


# -- delete ----------------------------------------------------------------------------------

def test_delete_a_series_and_purge_its_files(media: Path, tmp_path: Path, mixed: dict[str, Path]) -> None:
    copy = tmp_path / "m"
    shutil.copytree(media, copy)
    sr_series = dcmread(mixed["sr"], stop_before_pixels=True).SeriesInstanceUID
    sr_file = next(x["file"] for x in records(copy / "DICOMDIR") if x["type"] == "SR DOCUMENT")
    ct_uid = dcmread(mixed["ct"], stop_before_pixels=True).SOPInstanceUID
    r = run_dcmcli("dcmdir", "delete", "--json", "--purge", str(copy / "DICOMDIR"), sr_series, ct_uid)
    assert r.returncode == 0, r.stderr
    assert [e["outcome"] for e in json_lines(r.stdout) if e["event"] == "result"] == ["purged", "purged"]
    assert not (copy / sr_file).exists()
    left = records(copy / "DICOMDIR")
    assert "SR DOCUMENT" not in {x["type"] for x in left}
    assert len([x for x in left if x["type"] == "PATIENT"]) == 3  # CT_small's patient had only the CT: gone
    assert run_dcmcli("dcmdir", "check", str(copy / "DICOMDIR")).returncode == 0
    dcmdump_ok(copy / "DICOMDIR")
    r = run_dcmcli("dcmdir", "delete", str(copy / "DICOMDIR"), "1.2.3.4.5.404")
    assert r.returncode == 21 and "no record" in r.stderr


# -- storescu --dicomdir -----------------------------------------------------------------------

def test_storescu_sends_what_a_dicomdir_references(media: Path, mixed: dict[str, Path], dcmcli_storescp,
                                                   tmp_path: Path) -> None:
    peer = dcmcli_storescp("-pm")
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), "--dicomdir", str(media / "DICOMDIR"))
    assert r.returncode == 0, r.stderr
    sent = [e for e in json_lines(r.stdout) if e["event"] == "result" and e["outcome"] == "sent"]
    assert len(sent) == len(mixed)
    assert len(received_events(peer, len(mixed))) == len(mixed)
    # a DICOMDIR named among the inputs is read the same way; a referenced file that is missing is exit 20
    copy = tmp_path / "m"
    shutil.copytree(media, copy)
    gone = next(x["file"] for x in records(copy / "DICOMDIR") if x["file"])
    (copy / gone).unlink()
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(copy / "DICOMDIR"))
    assert r.returncode == 20, r.stderr
    assert json_lines(r.stdout)[-1]["sent"] == len(mixed) - 1 and gone.split("/")[-1] in r.stderr


# -- units ------------------------------------------------------------------------------------

def test_file_id_rules() -> None:
    from dcmcli.media.records import file_id_problem

    assert file_id_problem(("DICOM", "P0000001", "I_1")) is None
    assert "lower-case" in (file_id_problem(("dicom",)) or "")
    assert "9 characters" in (file_id_problem(("ABCDEFGHI",)) or "")
    assert "'.'" in (file_id_problem(("IM.DCM",)) or "")
    assert "9 components" in (file_id_problem(tuple("ABCDEFGHI")) or "")


def test_record_types_by_sop_class() -> None:
    from dcmcli.media.records import record_type

    assert record_type("1.2.840.10008.5.1.4.1.1.2") == "IMAGE"
    assert record_type("1.2.840.10008.5.1.4.1.1.88.22") == "SR DOCUMENT"
    assert record_type("1.2.840.10008.5.1.4.1.1.88.59") == "KEY OBJECT DOC"
    assert record_type("1.2.840.10008.5.1.4.1.1.9.1.1") == "WAVEFORM"
    assert record_type("1.2.840.10008.5.1.4.1.1.4.2") == "SPECTROSCOPY"
    assert record_type("1.2.840.10008.5.1.4.1.1.66") == "RAW DATA"
    assert record_type("1.2.840.10008.5.1.4.1.1.481.2") == "RT DOSE"
    assert record_type("1.2.840.10008.5.1.4.1.1.104.1") == "ENCAP DOC"
    assert record_type("1.2.840.10008.5.1.4.38.1") == "HANGING PROTOCOL"
    assert record_type("1.2.3.4.5.6") == "PRIVATE"


def test_fast_reader_agrees_with_the_general_one_on_every_cut(tmp_path: Path, mixed: dict[str, Path]) -> None:
    """records.read_instance (one read, the create path) finds truncation where dicomfile.read_file_info does."""
    from dcmcli.dicomfile import InvalidFile, read_file_info
    from dcmcli.media.records import read_instance

    for name in ("ct", "sr", "pr"):
        data = mixed[name].read_bytes()
        info, values = read_instance(mixed[name])
        assert info.sop_instance_uid == dcmread(mixed[name], stop_before_pixels=True).SOPInstanceUID
        assert values[0x00100020].rstrip(b" ") in (b"PID001", b"1CT1")
        cut = tmp_path / f"{name}.cut"
        for end in range(140, len(data), 97 if name == "ct" else 13):
            cut.write_bytes(data[:end])
            try:
                read_file_info(cut)
                general = None
            except InvalidFile as exc:
                general = str(exc)
            try:
                read_instance(cut)
                fast = None
            except InvalidFile as exc:
                fast = str(exc)
            assert (general is None) == (fast is None), (name, end, general, fast)


def test_pydicom_sample_dicomdirs(tmp_path: Path) -> None:
    """pydicom's sample file-set (written by DCMTK 3.6.0) checks clean, files included; its damaged variants do not."""
    folder = Path(get_testdata_file("DICOMDIR")).parent
    r = run_dcmcli("dcmdir", "check", "--json", str(folder / "DICOMDIR"))
    assert r.returncode == 0, r.stdout
    assert json_lines(r.stdout)[-1]["records"] == 52
    r = run_dcmcli("dcmdir", "check", str(folder / "DICOMDIR-nopatient"))
    assert r.returncode == 26 and "an IMAGE record cannot be below the root" in r.stdout
    # an Implicit VR DICOMDIR (old media) is read, reported, and written as PS3.10 asks by an update
    copy = tmp_path / "set"
    shutil.copytree(folder, copy)
    (copy / "DICOMDIR").unlink()
    (copy / "DICOMDIR-implicit").rename(copy / "DICOMDIR")
    r = run_dcmcli("dcmdir", "check", str(copy / "DICOMDIR"))
    assert r.returncode == 26 and "encoded in Implicit VR Little Endian" in r.stdout
    assert len(records(copy / "DICOMDIR")) == 52
    from_sample("CT_small.dcm", copy / "NEW" / "CT1")
    r = run_dcmcli("dcmdir", "update", str(copy / "DICOMDIR"), str(copy / "NEW"))
    assert r.returncode == 0, r.stderr
    assert dcmread(copy / "DICOMDIR").file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    r = run_dcmcli("dcmdir", "check", str(copy / "DICOMDIR"))
    assert r.returncode == 0, r.stdout
    assert len(records(copy / "DICOMDIR")) == 56
    dcmdump_ok(copy / "DICOMDIR")


def test_list_as_csv_and_as_a_tree_on_a_terminal(media: Path, mixed: dict[str, Path]) -> None:
    import csv
    import io
    import pty

    r = run_dcmcli("dcmdir", "list", "--csv", "-", str(media / "DICOMDIR"))
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == len(mixed)
    sr = next(x for x in rows if x["RecordType"] == "SR DOCUMENT")
    assert sr["PatientID"] == "PID001" and sr["StudyInstanceUID"] == STUDY_UID and sr["Modality"] == "SR"
    assert (media / sr["ReferencedFileID"]).is_file()
    pid, fd = pty.fork()
    if pid == 0:  # the child: dcmcli with a terminal on stdout
        try:
            os.execvp(dcmcli_cmd()[0], [*dcmcli_cmd("dcmdir", "list", str(media / "DICOMDIR"))])
        finally:
            os._exit(127)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.WEXITSTATUS(status) == 0, text
    assert "└── " in text and "SR DOCUMENT" in text and "MEDIA^TEST" in text


def test_delete_by_file_id_of_a_file_already_gone(media: Path, tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(media, copy)
    leaf = next(x for x in records(copy / "DICOMDIR") if x["type"] == "PRIVATE")
    (copy / leaf["file"]).unlink()
    assert run_dcmcli("dcmdir", "check", str(copy / "DICOMDIR")).returncode == 26
    r = run_dcmcli("dcmdir", "delete", str(copy / "DICOMDIR"), leaf["file"])
    assert r.returncode == 0, r.stderr
    assert "PRIVATE" not in {x["type"] for x in records(copy / "DICOMDIR")}
    assert run_dcmcli("dcmdir", "check", str(copy / "DICOMDIR")).returncode == 0


def test_referenced_files_of_a_cd_mounted_in_lower_case(media: Path, tmp_path: Path) -> None:
    """Linux shows an ISO 9660 CD's names in lower case (map=normal): storescu --dicomdir still finds them."""
    from dcmcli.media.fileset import referenced_files

    copy = tmp_path / "cdrom"
    shutil.copytree(media, copy)
    for p in sorted(copy.rglob("*"), key=lambda x: -len(x.parts)):
        if p.name != "DICOMDIR":
            p.rename(p.with_name(p.name.lower()))
    files, problems = referenced_files(copy / "DICOMDIR")
    assert problems == [] and files and all(f.is_file() for f in files)
    assert all(f.relative_to(copy).parts[0] == "dicom" for f in files)
