"""The WADO-RS part handler (dcmcli/web/retrieve.py ``DicomParts``) behind
python-multipart's parser, without a server: a multipart body of real files
fed in chunks of every awkward size, so that a part's file meta arrives whole,
split anywhere in its first 144 bytes, or spread over many tiny chunks. Each
stored file must hold the sent data set byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import copy_samples, sample
from dcmcli.dicomfile import read_file_info
from dcmcli.net.services.writer import StorageWriter, WriterOptions
from dcmcli.web.multipart import Truncated, read_parts
from dcmcli.web.retrieve import DicomParts, Retrieved

BOUNDARY = "b0undary-xyz"
CTYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def body(parts: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for ctype, data in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def retrieve(tmp_path: Path, data: bytes, size: int) -> tuple[list[Retrieved], Path]:
    out = tmp_path / f"out-{size}"
    writer = StorageWriter(WriterOptions(output_dir=out))
    writer.prepare()
    results: list[Retrieved] = []
    read_parts(chunked(data, size), CTYPE, DicomParts(writer, "test", results.append))
    return results, out


FILES = ["explicit-le", "implicit-le", "explicit-be", "deflated"]


def data_set(path: Path) -> bytes:
    return path.read_bytes()[read_file_info(path).dataset_offset:]


@pytest.mark.parametrize("size", [1, 7, 131, 132, 133, 143, 144, 150, 1000, 65536, 1 << 20])
def test_parts_split_anywhere_are_stored_whole(tmp_path: Path, size: int) -> None:
    paths = copy_samples(tmp_path / "in", FILES)  # a UID each (the MR samples share one)
    results, out = retrieve(tmp_path, body([("application/dicom", p.read_bytes()) for p in paths]), size)
    assert [r.outcome for r in results] == ["stored"] * len(paths), [r.message for r in results]
    for p, r in zip(paths, results):
        assert r.path is not None and Path(r.path).parent == out
        assert data_set(Path(r.path)) == data_set(p)
        assert r.size == len(data_set(p))  # the data set as it came (its file meta is dcmcli's)
    assert not list(out.glob(".*.part"))


def test_parts_that_are_not_dicom_are_reported_not_stored(tmp_path: Path) -> None:
    good = sample("explicit-le").read_bytes()
    results, out = retrieve(tmp_path, body([("application/dicom", b"short"), ("image/jpeg", b"\xff\xd8\xff" * 100),
                                            ("application/dicom", b"\0" * 128 + b"NOPE" + b"\0" * 200),
                                            ("application/dicom", good)]), 64)
    assert [r.outcome for r in results] == ["failed", "failed", "failed", "stored"]
    assert "no DICM prefix" in results[0].message
    assert "image/jpeg" in results[1].message
    assert "no DICM prefix" in results[2].message
    assert len(list(out.glob("*.dcm"))) == 1


def test_a_body_cut_inside_a_part_leaves_no_file(tmp_path: Path) -> None:
    good = sample("explicit-le").read_bytes()
    data = body([("application/dicom", good), ("application/dicom", good)])
    with pytest.raises(Truncated):
        retrieve(tmp_path, data[:len(data) - 3000], 4096)
    out = tmp_path / "out-4096"
    assert len(list(out.glob("*.dcm"))) == 1  # the first part, complete; the second one discarded
    assert not list(out.glob(".*.part"))
