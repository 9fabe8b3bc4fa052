"""Flat identifiers (dcmcli/identifier.py): a retrieve's usual keys built and
encoded without pydicom, byte for byte as pydicom writes them; anything else
still a pydicom data set; getscu against dcmqrscp never imports pydicom."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

from dcmcli.dataset import encode
from dcmcli.identifier import KEYS, FlatIdentifier, is_flat
from dcmcli.keys import parse_key
from dcmcli.net.services.query import build_query
from dcmcli.net.services.retrieve import inventory_request
from dcmcli.uids import EBE, ELE, ILE, QUERY_MODELS
from qr_cli import Archives, archives  # noqa: F401
from qr_peers import QRStudy

STUDY_ROOT = next(m for m in QUERY_MODELS if m.name == "study")
PATIENT_ROOT = next(m for m in QUERY_MODELS if m.name == "patient")


def test_the_table_is_pydicoms_dictionary() -> None:
    for keyword, (tag, vr) in KEYS.items():
        assert tag_for_keyword(keyword) == tag, keyword
        assert dictionary_VR(tag) == vr, keyword


@pytest.mark.parametrize("keys", [
    ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=1.2.3"],  # odd length: padded with NUL
    ["QueryRetrieveLevel=SERIES", "StudyInstanceUID=1.2.34", "SeriesInstanceUID=1.2.3\\1.2.44"],  # a UID list
    ["PatientName=Doe^J*", "PatientID", "StudyDate=20240101-20241231", "AccessionNumber=A1"],  # PN, return key, range
    ["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=1.2", "SeriesInstanceUID=1.3", "SOPInstanceUID=1.4",
     "InstanceNumber=7", "Modality=CT"],
])
def test_flat_identifiers_encode_as_pydicom_does(keys: list[str]) -> None:
    query = build_query(STUDY_ROOT, None, keys, [], default_keys=False)
    flat = query.identifier
    assert isinstance(flat, FlatIdentifier)
    ds = flat.to_dataset()
    for ts in (ILE, ELE, EBE):
        assert encode(flat, ts) == encode(ds, ts), ts
    # the same keys through pydicom's path (findscu's): the same elements
    reference = build_query(STUDY_ROOT, None, keys, [Dataset()], default_keys=False).identifier
    assert isinstance(reference, Dataset)
    assert encode(flat, ELE) == encode(reference, ELE)


def test_what_the_core_asks_of_an_identifier() -> None:
    flat = build_query(PATIENT_ROOT, "STUDY", ["StudyInstanceUID=1.2.3"], [], default_keys=False).identifier
    assert isinstance(flat, FlatIdentifier)
    assert flat.QueryRetrieveLevel == "STUDY" and flat.get("PatientID") == ""  # the level above, a return key
    assert "StudyInstanceUID" in flat and "SeriesInstanceUID" not in flat and flat.get("SeriesInstanceUID") is None
    with pytest.raises(AttributeError):
        flat.SeriesInstanceUID  # noqa: B018
    with pytest.raises(AttributeError):
        flat.PatientSex = "F"  # not a key of the table
    twin = copy.deepcopy(flat)
    twin.StudyInstanceUID = ["1.2", "1.3"]
    assert twin.StudyInstanceUID == "1.2\\1.3" and flat.StudyInstanceUID == "1.2.3"
    assert [e.tag for e in flat] == sorted(e.tag for e in flat)
    assert "Study Instance UID" in str(flat)  # pydicom's listing, for -d
    sop_class, ask = inventory_request(STUDY_ROOT, flat)  # type: ignore[misc]
    _, reference = inventory_request(STUDY_ROOT, flat.to_dataset())  # type: ignore[misc]
    assert isinstance(ask, FlatIdentifier) and encode(ask, ILE) == encode(reference, ILE)


@pytest.mark.parametrize("keys,files,why", [
    (["StudyInstanceUID=1.2", "PatientSex=F"], False, "a key not in the table"),
    (["StudyInstanceUID=1.2", "PatientName=Müller"], False, "a value outside ASCII"),
    (["StudyInstanceUID=1.2", "ReferencedStudySequence[0].ReferencedSOPInstanceUID=1.3"], False, "a sequence"),
    (["StudyInstanceUID=1.2", "SeriesNumber=4\\5"], False, "is flat: a control"),
    (["StudyInstanceUID=1.2"], True, "a query file"),
])
def test_anything_else_is_pydicoms(keys: list[str], files: bool, why: str) -> None:
    query = build_query(STUDY_ROOT, None, keys, [Dataset()] if files else [], default_keys=False)
    assert isinstance(query.identifier, FlatIdentifier if why == "is flat: a control" else Dataset), why


def test_a_number_key_that_is_no_number_is_a_usage_error() -> None:
    """SeriesNumber=one was pydicom's ValueError, an internal error (70), in findscu and the retrieves."""
    from conftest import run_dcmcli

    for command in ("findscu", "getscu"):
        r = run_dcmcli(command, "-k", "StudyInstanceUID=1.2", "-k", "SeriesNumber=one", "127.0.0.1", "9")
        assert r.returncode == 1, r.stderr
        assert "value 'one' of SeriesNumber is not a number (IS)" in r.stderr and "internal" not in r.stderr


def test_findscu_without_keys_keeps_pydicom() -> None:
    """findscu without keys asks for the level's usual return keys: not flat."""
    assert isinstance(build_query(STUDY_ROOT, None, [], []).identifier, Dataset)
    assert isinstance(build_query(STUDY_ROOT, "SERIES", ["QueryRetrieveLevel=SERIES"], []).identifier, Dataset)
    assert not is_flat(parse_key("PatientName=Doe").tag, "D\x00e")


def test_findscu_with_its_keys_is_flat() -> None:
    """Named keys add no default return keys: flat, and the same bytes as pydicom's path."""
    keys = ["QueryRetrieveLevel=IMAGE", "StudyInstanceUID=1.2", "SeriesInstanceUID=1.2.3", "SOPInstanceUID",
            "InstanceNumber", "SOPClassUID"]
    query = build_query(STUDY_ROOT, None, keys, [])
    reference = build_query(STUDY_ROOT, None, keys, [Dataset()])
    assert isinstance(query.identifier, FlatIdentifier) and isinstance(reference.identifier, Dataset)
    assert encode(query.identifier, ELE) == encode(reference.identifier, ELE)
    assert query.columns == reference.columns and query.level == reference.level == "IMAGE"


def _in_one_process(argv: list[str], modules: tuple[str, ...], stdout: Path | None = None) -> str:
    """Run dcmcli with ``argv`` in one fresh interpreter (its stdout to a
    file if given); the line it ends with: its exit code, and whether each
    of ``modules`` was loaded ("exit 0 pydicom False ...")."""
    report = ", ".join(f"{m!r}, {m!r} in sys.modules" for m in modules)
    script = ("import runpy, sys\n"
              f"sys.argv = {argv!r}\n"
              + (f"sys.stdout = open({str(stdout)!r}, 'w')\n" if stdout else "")
              + "try:\n    runpy.run_module('dcmcli', run_name='__main__')\n"
              "except SystemExit as e:\n    code = e.code\n"
              "sys.stdout.flush()\n"
              f"print('exit', code, {report}, file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    return lines[-1] if lines else f"no report (stdout {r.stdout!r})"


def test_getscu_from_dcmqrscp_never_imports_pydicom(archives: Archives, qr_study: QRStudy,  # noqa: F811
                                                     tmp_path: Path) -> None:
    """The whole C-GET of a study (inventory C-FIND, cancelled; 9 objects
    stored), in one process that then says whether pydicom was loaded."""
    q = archives.q
    argv = ["dcmcli", "getscu", "-q", "-od", str(tmp_path / "got"), "-k", "QueryRetrieveLevel=STUDY",
            "-k", f"StudyInstanceUID={chr(92).join(qr_study.study_uids())}", *q.at()]
    last = _in_one_process(argv, ("pydicom",))
    assert last == "exit 0 pydicom False", last
    assert len(list((tmp_path / "got").glob("*.dcm"))) == len(qr_study.instances)


def test_findscu_to_a_file_imports_neither_pydicom_nor_rich(archives: Archives, qr_study: QRStudy,  # noqa: F811
                                                            tmp_path: Path) -> None:
    """findscu with its keys, its table to a file: the matches and the summary
    written, in one process that then says whether pydicom or rich was loaded."""
    q = archives.q
    study = qr_study.study_uids()[0]
    table = tmp_path / "table.txt"
    argv = ["dcmcli", "findscu", "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}",
            "-k", "SeriesInstanceUID", "-k", "Modality", *q.at()]
    last = _in_one_process(argv, ("pydicom", "rich"), stdout=table)
    assert last == "exit 0 pydicom False rich False", last
    lines = table.read_text().splitlines()
    series = qr_study.series_uids(study)
    assert lines[0].split() == ["StudyInstanceUID", "SeriesInstanceUID", "Modality"]
    assert sorted(ln.split()[1] for ln in lines[1:-1]) == sorted(series)
    assert lines[-1].startswith(f"{len(series)} match"), lines[-1]
