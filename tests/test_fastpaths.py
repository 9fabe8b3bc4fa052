"""The fast paths give what the slow, pydicom-based paths give.

findscu turns flat answers into DICOM JSON straight from their bytes
(``dataset.fast_json``), the storage writer scans a received object's first
64 KB in memory (``dicomfile.scan_buffer``); both must agree with pydicom and
with the file walker on every input, or step aside (None) for pydicom."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dcmcli.dataset import encode, fast_json, to_json
from dcmcli.dicomfile import InvalidFile, read_file_info, scan_buffer, scan_top_level

ILE, ELE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1"


def _answer(charset: str | None, name: str) -> Dataset:
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = name
    ds.PatientID = "ID 7"
    ds.StudyDate = "20240115"
    ds.StudyTime = "101500.5"
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.StudyDescription = "Thorax "
    ds.NumberOfStudyRelatedInstances = "12"
    ds.add_new(0x00181050, "DS", ["0.5", "1.25"])  # Spatial Resolution
    ds.add_new(0x00280010, "US", 512)
    ds.add_new(0x00209165, "AT", [0x00100010, 0x00200013])
    ds.StudyInstanceUID = "1.2.3.4"
    ds.AccessionNumber = ""
    ds.add_new(0x00081030, "LO", None)
    ds.PatientComments = "line one\\with a backslash"  # LT: one value
    return ds


@pytest.mark.parametrize("ts", [ILE, ELE])
@pytest.mark.parametrize("charset,name", [(None, "Doe^John"), ("ISO_IR 100", "Müller^Hans"),
                                          ("ISO_IR 192", "Ærøskøbing^Åse=偉^Yamada"), (None, "")])
def test_fast_json_equals_pydicom(ts: str, charset: str | None, name: str) -> None:
    ds = _answer(charset, name)
    data = encode(ds, ts)
    from dcmcli.dataset import decode

    assert fast_json(data, ts) == to_json(decode(data, ts))


def test_fast_json_steps_aside_for_what_it_does_not_do() -> None:
    ds = _answer(None, "A")
    ds.ReferencedStudySequence = Sequence([Dataset()])
    assert fast_json(encode(ds, ELE), ELE) is None  # a sequence
    ds = _answer("ISO 2022 IR 87", "A")
    assert fast_json(encode(ds, ELE), ELE) is None  # ISO 2022
    assert fast_json(b"\x08\x00\x20\x00DA\x08\x00", ELE) is None  # cut short
    ds = Dataset()
    ds.add_new(0x00091010, "OB", b"\x00\x01")
    assert fast_json(encode(ds, ELE), ELE) is None  # binary


def _samples() -> list[Path]:
    names = ["CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "rtplan.dcm", "JPEG2000.dcm",
             "SC_rgb_rle.dcm", "examples_palette.dcm"]
    return [Path(p) for p in (get_testdata_file(n) for n in names) if p]


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.name)
@pytest.mark.parametrize("cut", [None, 200, 1000, 4000])
def test_scan_buffer_equals_the_walker(path: Path, cut: int | None) -> None:
    info = read_file_info(path)
    raw = path.read_bytes()[info.dataset_offset:]
    head = raw[:cut] if cut else raw[:64 * 1024]
    wanted = {0x00080016, 0x00080018, 0x00080060, 0x0020000D, 0x00100020}

    def one(f):  # type: ignore[no-untyped-def]
        try:
            return f()
        except InvalidFile as exc:
            return type(exc)

    assert one(lambda: scan_buffer(head, info.transfer_syntax, wanted)) == \
        one(lambda: scan_top_level(io.BytesIO(head), len(head), info.transfer_syntax, wanted))


@pytest.mark.parametrize("path", _samples(), ids=lambda p: p.name)
@pytest.mark.parametrize("cut", [None, 300, -100, -3])
@pytest.mark.parametrize("head", [0, 64, 64 * 1024])
def test_check_received_reads_the_head_as_the_file(path: Path, cut: int | None, head: int, tmp_path: Path) -> None:
    """The walk over the in-memory head and the file walk judge alike (whole and cut files)."""
    from dcmcli.dicomfile import check_received

    info = read_file_info(path)
    raw = path.read_bytes()
    f = tmp_path / "x.dcm"
    f.write_bytes(raw[:cut] if cut else raw)
    data = f.read_bytes()[info.dataset_offset:]

    def verdict(h: bytes) -> str:
        try:
            check_received(f, info.dataset_offset, info.transfer_syntax, h)
        except InvalidFile as exc:
            return "invalid: " + str(exc).split(":")[0]
        return "ok"

    assert verdict(bytearray(data[:head])) == verdict(b"")
