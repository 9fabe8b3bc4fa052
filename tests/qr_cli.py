"""What the findscu, movescu and getscu tests share: module-scoped Q/R peers
(dcmqrscp and Orthanc loaded with ``qr_study``; a second pair loaded with
many small generated instances, for C-CANCEL), a runner that parses dcmcli's
JSON Lines, and comparisons of retrieved objects with the originals.

The fixtures here are module-scoped: each test module that imports them gets
its own peers, started on free loopback ports and stopped at its end. The
move destinations are named in the peers' configuration before they start
(dcmqrscp reads its HostTable once): ``STORESCP`` (a DCMTK storescp that a
test starts with ``dcmtk_receiver(port=archives.storescp_port)``) and
``MOVESCU`` (movescu's own receiver, ``+P archives.movescu_port``).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import dcmtk, json_lines, run_dcmcli
from qr_peers import DcmQRSCP, Orthanc, QRStudy, free_ports, start_dcmqrscp, start_orthanc, stop_group

A, B = "QRPAT-A", "QRPAT-B"
MANY = "QRPAT-MANY"

__all__ = ["A", "B", "MANY", "Archive", "Archives", "Run", "dcmcli", "archives", "many", "archive", "many_archive",
           "received_files", "assert_same_objects", "make_instances"]


@dataclass
class Run:
    """One dcmcli run: exit code, stdout, stderr and the JSON events it printed."""
    code: int
    stdout: str
    stderr: str
    args: tuple[str, ...]

    @property
    def events(self) -> list[dict[str, object]]:
        return json_lines(self.stdout)

    def of(self, event: str) -> list[dict[str, object]]:
        return [e for e in self.events if e["event"] == event]

    def one(self, event: str) -> dict[str, object]:
        found = self.of(event)
        assert len(found) == 1, (event, self)
        return found[0]

    @property
    def summary(self) -> dict[str, object]:
        return self.one("summary")

    def __str__(self) -> str:  # what a failed assertion shows
        return f"dcmcli {' '.join(self.args)} -> {self.code}\nstdout:\n{self.stdout[-3000:]}\nstderr:\n{self.stderr[-3000:]}"

    __repr__ = __str__


def dcmcli(*args: str, timeout: float = 60) -> Run:
    r = run_dcmcli(*args, timeout=timeout)
    return Run(r.returncode, r.stdout, r.stderr, args)


@dataclass
class Archive:
    """One Q/R peer as the tests address it."""
    kind: str  # "dcmqrscp" or "orthanc"
    port: int
    aec: str
    peer: DcmQRSCP | Orthanc

    def at(self) -> list[str]:
        """The called AE title and the peer, as dcmcli takes them."""
        return ["-aec", self.aec, "127.0.0.1", str(self.port)]


@dataclass
class Archives:
    q: Archive
    o: Archive
    storescp_port: int  # move destination STORESCP
    movescu_port: int   # move destination MOVESCU (movescu +P)
    procs: list[subprocess.Popen[bytes]] = field(repr=False)  # stopped at the module's end
    count: int = 0      # instances loaded (the ``many`` pair)

    def by_kind(self, kind: str) -> Archive:
        return self.q if kind == "dcmqrscp" else self.o


def _start_pair(base: Path, orthanc_base: Path | None = None) -> Archives:
    storescp_port, movescu_port = free_ports(2)
    dests = {"STORESCP": storescp_port, "MOVESCU": movescu_port}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        q = start_dcmqrscp(base / "dcmqrscp", move_destinations=dests)
        procs.append(q.proc)
        o = start_orthanc((orthanc_base or base) / "orthanc",
                          modalities={ae.lower(): (ae, port) for ae, port in dests.items()})
        procs.append(o.proc)
    except BaseException:
        for p in procs:
            stop_group(p, graceful=False)
        raise
    return Archives(Archive("dcmqrscp", q.port, q.ae, q), Archive("orthanc", o.port, o.aet, o),
                    storescp_port=storescp_port, movescu_port=movescu_port, procs=procs)


def _stop(pair: Archives) -> None:
    for p in reversed(pair.procs):
        stop_group(p, graceful=False)  # their data is temporary


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory, qr_study: QRStudy) -> Iterator[Archives]:
    """dcmqrscp and Orthanc, each holding exactly ``qr_study``."""
    pair = _start_pair(tmp_path_factory.mktemp("archives"))
    try:
        pair.q.peer.load(qr_study.paths)
        pair.o.peer.load(qr_study.paths)
        yield pair
    finally:
        _stop(pair)


def make_instances(folder: Path, count: int) -> list[Path]:
    """``count`` tiny CT images (2x2 pixels) of one series of patient
    QRPAT-MANY, in Explicit VR Little Endian (a class and syntax that
    dcmqrscp's C-MOVE profile sends uncompressed). One file is written with
    pydicom; the others are its bytes with the SOP Instance UID and the
    Instance Number replaced by values of the same length (a thousand
    pydicom writes would take a second and a half)."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    stem = "2.25." + str(uuid.uuid4().int)[:33]  # 2.25.<33 digits>.1NNNNN: 45 characters for every n
    sop_uid = f"{stem}.{100000}"  # (no leading zero in a UID component)
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = sop_uid
    ds.PatientName, ds.PatientID = "Many^Instances", MANY
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber, ds.StudyID = "20240301", "120000", "ACC-M1", "M1"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, "000000"
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(4)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    template = buf.getvalue()
    assert template.count(sop_uid.encode()) == 2
    number = b"IS\x06\x00000000"  # the Instance Number element's VR, length and value
    assert template.count(number) == 1
    paths = []
    for n in range(1, count + 1):
        data = template.replace(sop_uid.encode(), f"{stem}.{100000 + n}".encode())
        data = data.replace(number, b"IS\x06\x00" + f"{n:06d}".encode())
        path = folder / f"many{n:04d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def many(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archives]:
    """dcmqrscp and Orthanc holding one study of ``MANY_INSTANCES`` (a
    module attribute, default 40) generated instances; ``many.count``.

    dcmqrscp gets them through DCMTK's dcmqridx (registered in place, no
    association per file); Orthanc through its REST API, with its index and
    storage on a tmpfs when there is one (SQLite syncs every instance to
    disk otherwise: 2-3 ms each)."""
    count = int(getattr(request.module, "MANY_INSTANCES", 40))
    base = tmp_path_factory.mktemp("many")
    files = make_instances(base / "files", count)
    shm = Path("/dev/shm")
    fast = Path(tempfile.mkdtemp(prefix="dcmcli-qr-", dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else None
    pair = _start_pair(base, fast)
    try:
        q = pair.q.peer
        assert isinstance(q, DcmQRSCP)
        # both at once: dcmqridx works on its own, Orthanc indexes what the REST calls bring
        index = subprocess.Popen([dcmtk("dcmqridx"), "-q", str(q.storage), *map(str, files)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            pair.o.peer.load(files)  # type: ignore[union-attr]
            out, _ = index.communicate(timeout=120)
        finally:
            if index.poll() is None:
                index.kill()
                index.wait()
        assert index.returncode == 0, f"dcmqridx failed: {out.decode(errors='replace')}"
        pair.count = count
        yield pair
    finally:
        _stop(pair)
        if fast is not None:
            shutil.rmtree(fast, ignore_errors=True)


@pytest.fixture(params=["dcmqrscp", "orthanc"])
def archive(request: pytest.FixtureRequest, archives: Archives) -> Archive:
    """Each of the two peers holding ``qr_study``, in turn."""
    return archives.by_kind(request.param)


@pytest.fixture(params=["dcmqrscp", "orthanc"])
def many_archive(request: pytest.FixtureRequest, many: Archives) -> Archive:
    return many.by_kind(request.param)


# --------------------------------------------------------------------------
# comparing what was retrieved with the originals

def received_files(folder: Path) -> dict[str, Path]:
    """SOP Instance UID -> file, for every DICOM file below ``folder``
    (hidden partial files excluded)."""
    out: dict[str, Path] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith("."):
            uid = str(dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            assert uid not in out, f"{uid} stored twice: {out[uid]} and {p}"
            out[uid] = p
    return out


def _pixels(ds: Dataset) -> np.ndarray:
    return np.asarray(ds.pixel_array)


def assert_same_objects(folder: Path, originals: list, *, keep_compressed: bool = True,
                        stored_as: str | None = None) -> dict[str, Path]:
    """Every original (QRInstance) is in ``folder`` exactly once, nothing
    else is, and each is the same object: same SOP Class and Instance UIDs,
    patient and study, and pixel data equal (the same encapsulated bytes
    when it arrived in its own compressed syntax, equal pixels after
    decompression otherwise). ``stored_as``: every image must be in that
    syntax (getscu --store-as)."""
    got = received_files(folder)
    assert set(got) == {i.sop_instance_uid for i in originals}, (sorted(got), [i.path.name for i in originals])
    for i in originals:
        ds, orig = dcmread(got[i.sop_instance_uid]), dcmread(i.path)
        ts = str(ds.file_meta.TransferSyntaxUID)
        assert str(ds.SOPClassUID) == i.sop_class_uid
        assert (str(ds.PatientID), str(ds.PatientName), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)) == (
            i.patient_id, i.patient_name, i.study_uid, i.series_uid)
        if "PixelData" not in orig:
            assert "PixelData" not in ds
            assert ds.ContentSequence[0].TextValue == orig.ContentSequence[0].TextValue  # the SR's text
            continue
        if stored_as:
            assert ts == stored_as, (i.path.name, ts)
        elif i.compressed and keep_compressed:
            assert ts == i.transfer_syntax, (i.path.name, ts)
        if ts == i.transfer_syntax and i.compressed:
            assert ds.PixelData == orig.PixelData, i.path.name
        assert np.array_equal(_pixels(ds), _pixels(orig)), i.path.name
    return got


def match_uids(run: Run, keyword_tag: str) -> list[str]:
    """The values of one element (8 hex digits) in every match event."""
    out = []
    for m in run.of("match"):
        elem = m["dataset"].get(keyword_tag) or {}  # type: ignore[union-attr]
        values = elem.get("Value") or [""]
        out.append(str(values[0]))
    return out


def dataset_of(match: dict[str, object]) -> Dataset:
    return Dataset.from_json(json.dumps(match["dataset"]))


__all__ += ["match_uids", "dataset_of"]
