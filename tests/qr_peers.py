"""Real Query/Retrieve peers for the findscu/movescu/getscu interop tests.

* ``dcmqrscp``: DCMTK's archive (C-ECHO/STORE/FIND/GET/MOVE), a factory.
* ``orthanc``: Orthanc 1.10 with the DICOMweb (and worklist) plugins, a factory.
* ``dcmtk_receiver``: DCMTK storescp on a port chosen in advance (a C-MOVE
  destination that a peer's configuration names before it starts).
* ``qr_study``: a two-patient test archive with deterministic UIDs.

Every process runs on a free loopback port, is waited for by a C-ECHO or an
HTTP GET (never by sleeping) and is stopped at teardown; dcmqrscp forks per
association, so it runs in a process group of its own that is killed whole.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (PYDICOM_ROOT_UID, UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless,
                         JPEGLSLossless, generate_uid)

from conftest import dcmtk, peer_tool, wait_listening

__all__ = [
    "QRInstance", "QRStudy", "build_qr_study", "qr_study", "PATIENT_A", "PATIENT_B",
    "DcmQRSCP", "start_dcmqrscp", "dcmqrscp", "DCMQRSCP_SEND_AS", "dcmqrscp_association_config",
    "Orthanc", "start_orthanc", "orthanc", "orthanc_config",
    "Receiver", "start_receiver", "dcmtk_receiver",
    "free_ports", "c_echo", "wait_echo", "http_get", "wait_http", "stop_group", "dcmtk_env", "dcmsend_files",
    "dcmtk_client", "dcmtk_find", "dimse_statuses", "final_counts",
]


# --------------------------------------------------------------------------
# helpers

def free_ports(n: int = 1) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1, for peers whose
    configuration must name a port before anything listens on it (move
    destinations). All are held at once while picked, so they differ."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def c_echo(port: int, aec: str, aet: str = "ECHOSCU", timeout: int = 5) -> subprocess.CompletedProcess[str]:
    """One DCMTK echoscu C-ECHO to 127.0.0.1:port."""
    return subprocess.run([dcmtk("echoscu"), "-to", str(timeout), "-ta", str(timeout), "-td", str(timeout),
                           "-aet", aet, "-aec", aec, "127.0.0.1", str(port)],
                          capture_output=True, text=True, timeout=timeout * 4, stdin=subprocess.DEVNULL,
                          env=dcmtk_env())


def _exited(proc: subprocess.Popen[bytes], log: Path | None) -> str:
    text = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    return f"peer exited with {proc.returncode} before answering: {text}"


def wait_echo(port: int, aec: str, proc: subprocess.Popen[bytes], log: Path | None = None,
              timeout: float = 30.0) -> None:
    """Poll until the peer accepts a connection and answers a C-ECHO."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(_exited(proc, log))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            time.sleep(0.02)  # polling a connect, not synchronising on time
            continue
        if c_echo(port, aec).returncode == 0:
            return
        time.sleep(0.05)  # polling, as above
    raise RuntimeError(f"no C-ECHO answer on port {port} after {timeout} s")


def http_get(url: str, auth: tuple[str, str] | None = None, timeout: float = 10.0) -> bytes:
    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return bytes(r.read())


def wait_http(url: str, proc: subprocess.Popen[bytes], auth: tuple[str, str] | None = None,
              log: Path | None = None, timeout: float = 30.0) -> None:
    """Poll until ``GET url`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(_exited(proc, log))
        try:
            http_get(url, auth, timeout=2)
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.02)  # polling a connect, not synchronising on time
    raise RuntimeError(f"no HTTP answer from {url} after {timeout} s")


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 10.0, graceful: bool = True) -> None:
    """Stop a peer started with ``start_new_session=True`` and every process
    it forked (its process group), then reap it. ``graceful=False`` kills
    at once (Orthanc takes 3 s to shut down its HTTP and DICOM servers)."""
    if proc.poll() is None and graceful:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    # forked children may outlive the parent: kill what is left of the group
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)


def dcmtk_env(**extra: str) -> dict[str, str]:
    """The environment to run DCMTK in: TCP_NODELAY=1 turns Nagle's
    algorithm off in Debian's DCMTK, without which every DIMSE exchange
    waits for a delayed ACK (a C-ECHO takes 120 ms instead of 20)."""
    return {**os.environ, "TCP_NODELAY": "1", **extra}


def dcmsend_files(port: int, aec: str, paths: Iterable[Path | str], aet: str = "LOADER", timeout: float = 120) -> int:
    """Send files or folders (recursively) to 127.0.0.1:port with DCMTK
    dcmsend, each in its own transfer syntax (never decompressed); fails
    unless every file is stored with status Success. Returns the count."""
    args = [str(p) for p in paths]
    if not args:
        return 0
    r = subprocess.run([dcmtk("dcmsend"), "-v", "-aet", aet, "-aec", aec, "+sd", "+r", "-dn", "--no-halt",
                        "127.0.0.1", str(port), *args],
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=dcmtk_env())
    out = r.stdout + r.stderr
    total = re.search(r"Number of SOP instances\s*:\s*(\d+)", out)
    ok = re.search(r"with status SUCCESS\s*:\s*(\d+)", out)
    if r.returncode != 0 or not total or not ok or total.group(1) != ok.group(1) or "\nE: " in out:
        raise RuntimeError(f"dcmsend to {aec} on port {port} did not store everything ({r.returncode}):\n{out}")
    return int(total.group(1))


def dcmtk_client(tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK client (findscu, movescu, getscu, ...) from DCMTK_BIN with
    TCP_NODELAY; output as text (undecodable bytes replaced)."""
    return subprocess.run([dcmtk(tool), *args], capture_output=True, text=True, errors="replace",
                          timeout=timeout, stdin=subprocess.DEVNULL, env=dcmtk_env())


def dcmtk_find(port: int, aec: str, keys: Iterable[str], outdir: Path, model: str = "-S", extra: Iterable[str] = (),
               aet: str = "FINDSCU") -> tuple[subprocess.CompletedProcess[str], list[Dataset]]:
    """DCMTK findscu with ``-k`` keys (e.g. "QueryRetrieveLevel=STUDY",
    "StudyInstanceUID"); every response identifier is extracted (-X) into a
    fresh folder under ``outdir`` and returned read, in order. Runs with -d
    so that ``dimse_statuses()`` finds the statuses. findscu exits 0 whatever
    the status: look at them."""
    outdir.mkdir(parents=True, exist_ok=True)
    n = len(list(outdir.glob("find-*")))
    out = outdir / f"find-{n}"
    out.mkdir()
    args = ["-d", model, "-aet", aet, "-aec", aec, "-X", "-od", str(out), *extra]
    for k in keys:
        args += ["-k", k]
    r = dcmtk_client("findscu", *args, "127.0.0.1", str(port))
    return r, [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def dimse_statuses(output: str) -> list[int]:
    """Every "DIMSE Status : 0x...." a DCMTK client logged with -d, in order
    (for movescu/getscu the last one is the final C-MOVE/C-GET response)."""
    return [int(m, 16) for m in re.findall(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]{4})", output)]


def final_counts(output: str) -> dict[str, int | None]:
    """The sub-operation counts of the last C-MOVE/C-GET response a DCMTK
    client logged with -d (None where the response left one out)."""
    out: dict[str, int | None] = {}
    for name in ("Remaining", "Completed", "Failed", "Warning"):
        found = re.findall(rf"^D:\s+{name} Suboperations\s*:\s*(\d+|none)", output, re.M)
        out[name.lower()] = None if not found or found[-1] == "none" else int(found[-1])
    return out


# --------------------------------------------------------------------------
# test data: two patients, deterministic UIDs

_UID_ROOT = PYDICOM_ROOT_UID  # "1.2.826.0.1.3680043.8.498."


def _uid(*parts: object) -> str:
    return str(generate_uid(_UID_ROOT, entropy_srcs=["dcmcli-qr-study", *map(str, parts)]))


@dataclass(frozen=True)
class QRInstance:
    """One file of the test archive and the keys a Q/R peer indexes it by."""
    path: Path
    patient_id: str
    patient_name: str          # as text (decoded), e.g. "Müller^Hans"
    study_uid: str
    study_date: str
    accession_number: str
    series_uid: str
    series_number: int
    modality: str
    sop_instance_uid: str
    sop_class_uid: str
    instance_number: int
    transfer_syntax: str

    @property
    def compressed(self) -> bool:
        return UID(self.transfer_syntax).is_compressed


@dataclass(frozen=True)
class QRStudy:
    """The test archive: ``instances`` in a fixed order (patient, study,
    series number, instance number); the rest are views of it."""
    root: Path
    instances: tuple[QRInstance, ...]

    @property
    def paths(self) -> list[Path]:
        return [i.path for i in self.instances]

    def select(self, **keys: object) -> list[QRInstance]:
        """Instances whose attributes equal every given value, e.g.
        ``select(patient_id="QRPAT-A", modality="CT")``."""
        return [i for i in self.instances if all(getattr(i, k) == v for k, v in keys.items())]

    @property
    def patient_ids(self) -> list[str]:
        return list(dict.fromkeys(i.patient_id for i in self.instances))

    def study_uids(self, patient_id: str | None = None) -> list[str]:
        return list(dict.fromkeys(i.study_uid for i in self.instances if patient_id in (None, i.patient_id)))

    def series_uids(self, study_uid: str | None = None) -> list[str]:
        return list(dict.fromkeys(i.series_uid for i in self.instances if study_uid in (None, i.study_uid)))

    def sop_instance_uids(self, **keys: object) -> list[str]:
        return [i.sop_instance_uid for i in self.select(**keys)]

    @property
    def compressed(self) -> list[QRInstance]:
        return [i for i in self.instances if i.compressed]

    @property
    def send_as(self) -> dict[str, str]:
        """SOP Class UID -> transfer syntax of its compressed instances (the
        archive never mixes syntaxes within one SOP class; see dcmqrscp)."""
        return {i.sop_class_uid: i.transfer_syntax for i in self.compressed}


# Patient A: one study, four series (one compressed); patient B: one study,
# two series (one compressed). Each SOP class appears in one transfer syntax
# only: dcmqrscp sends every instance of a SOP class in the one presentation
# context it negotiated for it and cannot transcode, so a class in two
# syntaxes could never be retrieved whole from it.
PATIENT_A = {"PatientName": "Müller^Hans", "PatientID": "QRPAT-A", "PatientBirthDate": "19600412",
             "PatientSex": "M", "charset": "ISO_IR 100",
             "study": {"StudyDate": "20240115", "StudyTime": "101500", "AccessionNumber": "ACC-A1",
                       "StudyID": "A1", "StudyDescription": "QR test study A",
                       "ReferringPhysicianName": "Referrer^Rita"}}
PATIENT_B = {"PatientName": "Doe^Jane", "PatientID": "QRPAT-B", "PatientBirthDate": "19751103",
             "PatientSex": "F", "charset": None,
             "study": {"StudyDate": "20240220", "StudyTime": "083000", "AccessionNumber": "ACC-B1",
                       "StudyID": "B1", "StudyDescription": "QR test study B",
                       "ReferringPhysicianName": ""}}

_SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR Storage
_SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"      # Secondary Capture Image Storage

# (patient, series number, modality, description, source, how many, how to store)
_SERIES = [
    (PATIENT_A, 1, "CT", "CT axial", "CT_small.dcm", 3, "explicit"),
    (PATIENT_A, 2, "MR", "MR T1", "MR_small.dcm", 2, "explicit"),
    (PATIENT_A, 3, "OT", "Secondary capture JPEG-LS", "CT_small.dcm", 1, "sc-jpegls"),
    (PATIENT_A, 4, "SR", "Report", None, 1, "sr"),
    (PATIENT_B, 1, "CT", "CT scout", "CT_small.dcm", 1, "implicit"),
    (PATIENT_B, 2, "US", "US JPEG 2000 lossless", "examples_jpeg2k.dcm", 1, "as-is"),
]

# Whatever the sample carried at these levels is replaced or dropped, so that
# every file of a study says the same about its patient and study.
_DROP = ["OtherPatientIDs", "OtherPatientNames", "PatientAge", "PatientSize", "PatientWeight", "IssuerOfPatientID",
         "InstitutionName", "StudyComments", "NameOfPhysiciansReadingStudy", "ReferencedStudySequence",
         "ReferencedPatientSequence", "RequestAttributesSequence", "PerformedProcedureStepID",
         "ReferencedImageSequence", "SourceImageSequence", "ProtocolName", "SeriesDescription",
         "OperatorsName", "PerformingPhysicianName", "AdmittingDiagnosesDescription"]


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def _basic_text_sr() -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = _SR_CLASS
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
    ds.ContinuityOfContent = "SEPARATE"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.Manufacturer = "dcmcli tests"
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.PerformedProcedureCodeSequence = Sequence()
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
    item.TextValue = "Befund unauffällig."  # Latin-1 text under ISO_IR 100
    ds.ContentSequence = Sequence([item])
    return ds


def _write(ds: Dataset, path: Path, syntax: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)


def build_qr_study(root: Path) -> QRStudy:
    """Write the test archive under ``root`` (same UIDs on every call)."""
    root.mkdir(parents=True, exist_ok=True)
    out: list[QRInstance] = []
    for patient, number, modality, description, source, count, how in _SERIES:
        pid = patient["PatientID"]
        study = patient["study"]
        study_uid = _uid(pid, "study")
        series_uid = _uid(pid, "series", number)
        for n in range(1, count + 1):
            ds = _basic_text_sr() if source is None else dcmread(get_testdata_file(source))
            if how == "as-is":
                syntax = str(ds.file_meta.TransferSyntaxUID)
            for kw in _DROP:
                if kw in ds:
                    delattr(ds, kw)
            if patient["charset"]:
                ds.SpecificCharacterSet = patient["charset"]
            elif "SpecificCharacterSet" in ds:
                del ds.SpecificCharacterSet
            for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
                setattr(ds, kw, patient[kw])
            for kw, value in study.items():
                setattr(ds, kw, value)
            ds.StudyInstanceUID = study_uid
            ds.SeriesInstanceUID = series_uid
            ds.SeriesNumber = number
            ds.SeriesDescription = description
            ds.SeriesDate = ds.ContentDate = study["StudyDate"]
            ds.SeriesTime = study["StudyTime"]
            ds.ContentTime = f"{int(study['StudyTime']) + n:06d}"
            ds.Modality = modality
            ds.InstanceNumber = n
            ds.SOPInstanceUID = _uid(pid, "instance", number, n)
            if "FrameOfReferenceUID" in ds:
                ds.FrameOfReferenceUID = _uid(pid, "frame-of-reference", number)
            if how == "sc-jpegls":
                ds.SOPClassUID = _SC_CLASS
                ds.ConversionType = "WSD"
                for kw in ("KVP", "DataCollectionDiameter", "ReconstructionDiameter", "GantryDetectorTilt",
                           "TableHeight", "RotationDirection", "ExposureTime", "XRayTubeCurrent", "Exposure",
                           "FilterType", "GeneratorPower", "FocalSpots", "ConvolutionKernel", "ImageType",
                           "ScanOptions", "SliceThickness", "ImagePositionPatient", "ImageOrientationPatient",
                           "SliceLocation", "PositionReferenceIndicator", "FrameOfReferenceUID"):
                    if kw in ds:
                        delattr(ds, kw)
            path = root / f"{pid}_s{number}_i{n}.dcm"
            if how == "as-is":
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.save_as(path, enforce_file_format=True)
            elif how == "sc-jpegls":
                plain = root / f".{path.name}.plain"
                _write(ds, plain, ExplicitVRLittleEndian)
                subprocess.run([dcmtk("dcmcjpls"), str(plain), str(path)], check=True, capture_output=True)
                plain.unlink()
                syntax = JPEGLSLossless
            else:
                syntax = ImplicitVRLittleEndian if how == "implicit" else ExplicitVRLittleEndian
                _write(ds, path, syntax)
            check = dcmread(path, stop_before_pixels=True)
            assert str(check.file_meta.TransferSyntaxUID) == syntax, (path, check.file_meta.TransferSyntaxUID)
            assert check.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
            out.append(QRInstance(path=path, patient_id=pid, patient_name=patient["PatientName"],
                                  study_uid=study_uid, study_date=study["StudyDate"],
                                  accession_number=study["AccessionNumber"], series_uid=series_uid,
                                  series_number=number, modality=modality,
                                  sop_instance_uid=str(ds.SOPInstanceUID), sop_class_uid=str(check.SOPClassUID),
                                  instance_number=n, transfer_syntax=str(syntax)))
    return QRStudy(root=root, instances=tuple(out))


@pytest.fixture(scope="session")
def qr_study(tmp_path_factory: pytest.TempPathFactory) -> QRStudy:
    """Two patients: A ("Müller^Hans", ISO_IR 100) with one study of CT x3,
    MR x2, a JPEG-LS lossless Secondary Capture and a Basic Text SR; B
    ("Doe^Jane") with one study of a CT (stored implicit VR) and a JPEG 2000
    lossless US. Read-only: copy files before changing them."""
    return build_qr_study(tmp_path_factory.mktemp("qr-study"))


# --------------------------------------------------------------------------
# DCMTK dcmqrscp

_UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"]
# Every compressed syntax DCMTK 3.6.7 knows (it has no HTJ2K or JPEG XL),
# lossless first, plus deflated explicit VR.
_COMPRESSED = ["1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.70",
               "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90",
               "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91",
               "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
               "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
               "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
               "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"]

#: What dcmqrscp sends compressed, by default: qr_study's compressed classes.
DCMQRSCP_SEND_AS: dict[str, str] = {_SC_CLASS: JPEGLSLossless, "1.2.840.10008.5.1.4.1.1.6.1": JPEG2000Lossless}

# The storage SOP classes dcmqrscp negotiates, first. DCMTK takes at most 128
# presentation contexts in a profile, incoming ones too, so the list is
# these, then other current classes of pydicom's dictionary up to 128.
_COMMON_CLASSES = [
    "ComputedRadiographyImageStorage", "DigitalXRayImageStorageForPresentation",
    "DigitalXRayImageStorageForProcessing", "DigitalMammographyXRayImageStorageForPresentation",
    "DigitalMammographyXRayImageStorageForProcessing", "DigitalIntraOralXRayImageStorageForPresentation",
    "CTImageStorage", "EnhancedCTImageStorage", "LegacyConvertedEnhancedCTImageStorage",
    "UltrasoundMultiFrameImageStorage", "MRImageStorage", "EnhancedMRImageStorage", "EnhancedMRColorImageStorage",
    "MRSpectroscopyStorage", "LegacyConvertedEnhancedMRImageStorage", "UltrasoundImageStorage",
    "EnhancedUSVolumeStorage", "SecondaryCaptureImageStorage", "MultiFrameSingleBitSecondaryCaptureImageStorage",
    "MultiFrameGrayscaleByteSecondaryCaptureImageStorage", "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
    "MultiFrameTrueColorSecondaryCaptureImageStorage", "TwelveLeadECGWaveformStorage",
    "GeneralECGWaveformStorage", "GrayscaleSoftcopyPresentationStateStorage",
    "ColorSoftcopyPresentationStateStorage", "XRayAngiographicImageStorage", "EnhancedXAImageStorage",
    "XRayRadiofluoroscopicImageStorage", "EnhancedXRFImageStorage", "XRay3DAngiographicImageStorage",
    "BreastTomosynthesisImageStorage", "NuclearMedicineImageStorage", "ParametricMapStorage",
    "RawDataStorage", "SpatialRegistrationStorage", "SpatialFiducialsStorage",
    "DeformableSpatialRegistrationStorage", "SegmentationStorage", "SurfaceSegmentationStorage",
    "RealWorldValueMappingStorage", "VLEndoscopicImageStorage", "VideoEndoscopicImageStorage",
    "VLMicroscopicImageStorage", "VLSlideCoordinatesMicroscopicImageStorage", "VLPhotographicImageStorage",
    "VideoPhotographicImageStorage", "OphthalmicPhotography8BitImageStorage",
    "OphthalmicPhotography16BitImageStorage", "VLWholeSlideMicroscopyImageStorage",
    "BasicTextSRStorage", "EnhancedSRStorage", "ComprehensiveSRStorage", "Comprehensive3DSRStorage",
    "ExtensibleSRStorage", "KeyObjectSelectionDocumentStorage", "MammographyCADSRStorage",
    "ChestCADSRStorage", "XRayRadiationDoseSRStorage", "EncapsulatedPDFStorage", "EncapsulatedCDAStorage",
    "EncapsulatedSTLStorage", "PositronEmissionTomographyImageStorage", "EnhancedPETImageStorage",
    "LegacyConvertedEnhancedPETImageStorage", "RTImageStorage", "RTDoseStorage", "RTStructureSetStorage",
    "RTBeamsTreatmentRecordStorage", "RTPlanStorage", "RTBrachyTreatmentRecordStorage",
    "RTTreatmentSummaryRecordStorage", "RTIonPlanStorage", "RTIonBeamsTreatmentRecordStorage",
]


def _storage_classes(send_as: Mapping[str, str]) -> list[str]:
    import pydicom.uid as pu
    from pydicom._uid_dict import UID_dictionary
    out = list(dict.fromkeys([*send_as, *(str(getattr(pu, kw)) for kw in _COMMON_CLASSES)]))
    for uid, (name, kind, _, retired, *_) in UID_dictionary.items():
        if len(out) == 128:
            break
        if (kind == "SOP Class" and uid.startswith("1.2.840.10008.5.1.4.1.1.") and "Storage" in name
                and not retired and uid not in out):
            out.append(uid)
    return out[:128]


def dcmqrscp_association_config(send_as: Mapping[str, str]) -> str:
    """An association negotiation file (DCMTK's asconfig.txt) with profiles
    "In" and "Out" for ``dcmqrscp -xf FILE In Out``.

    In: 128 storage SOP classes (DCMTK's limit for a profile: the
    ``send_as`` ones, common ones, then other current ones; the rest are
    refused) in any syntax DCMTK knows, so that compressed files are stored
    as they come; uncompressed preferred, but for the ``send_as`` classes,
    whose own syntax comes first, so that a C-GET requestor proposing it
    besides uncompressed ones gets it. Role BOTH lets a C-GET requestor be
    the Storage SCP on its own association (without a role, dcmqrscp would
    not send C-GET sub-operations; with SCP only, storescu's default-role
    contexts would be refused).
    Out (C-MOVE sub-associations): the ``send_as`` classes in their syntax
    only, the others uncompressed only.
    dcmqrscp sends each instance on the first accepted context for its SOP
    class and never transcodes: an instance in another syntax fails."""
    lines = ["[[TransferSyntaxes]]", "[Uncompressed]"]
    lines += [f"TransferSyntax{n} = {ts}" for n, ts in enumerate(_UNCOMPRESSED, 1)]
    lines += ["[Any]"]
    lines += [f"TransferSyntax{n} = {ts}" for n, ts in enumerate(_UNCOMPRESSED + _COMPRESSED, 1)]
    syntax_key: dict[str, str] = {}
    for n, ts in enumerate(sorted(set(send_as.values())), 1):
        syntax_key[ts] = f"Prefer{n}"
        lines += [f"[Prefer{n}]"]
        order = [ts] + [t for t in _COMPRESSED if t != ts] + _UNCOMPRESSED
        lines += [f"TransferSyntax{k} = {t}" for k, t in enumerate(order, 1)]
        lines += [f"[Only{n}]", f"TransferSyntax1 = {ts}"]
    storage = _storage_classes(send_as)
    lines += ["[[PresentationContexts]]", "[InContexts]"]
    lines += [f"PresentationContext{n} = {uid}\\{syntax_key.get(send_as.get(uid, ''), 'Any')}"
              for n, uid in enumerate(storage, 1)]
    lines += ["[OutContexts]"]
    lines += [f"PresentationContext{n} = {uid}\\"
              + (syntax_key[send_as[uid]].replace("Prefer", "Only") if uid in send_as else "Uncompressed")
              for n, uid in enumerate(storage, 1)]
    lines += ["[[SCPSCURoleSelection]]", "[InRoles]"]
    lines += [f"Role{n} = {uid}\\BOTH" for n, uid in enumerate(storage, 1)]
    lines += ["[[Profiles]]", "[In]", "PresentationContexts = InContexts", "SCPSCURoleSelection = InRoles",
              "[Out]", "PresentationContexts = OutContexts"]
    return "\n".join(lines) + "\n"


@dataclass
class DcmQRSCP:
    """A running dcmqrscp: ``port``, called AE ``ae``, its ``storage`` folder
    (with dcmqrscp's own index.dat), its ``config`` file, the C-MOVE
    ``destinations`` its HostTable names (AE -> port) and its ``log``."""
    port: int
    ae: str
    storage: Path
    config: Path
    destinations: dict[str, int]
    log: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def load(self, paths: Iterable[Path | str], aet: str = "LOADER") -> int:
        """Store files (or folders, recursively) with DCMTK dcmsend, which
        proposes each file's own syntax (compressed ones too) and is told
        never to decompress; every file must be stored. Returns the count."""
        return dcmsend_files(self.port, self.ae, paths, aet=aet)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_dcmqrscp(workdir: Path, ae: str = "QRSCP", move_destinations: Mapping[str, int] | None = None,
                   extra_args: Iterable[str] = (), send_as: Mapping[str, str] | None = None,
                   max_pdu: int = 65536) -> DcmQRSCP:
    """Write a config under ``workdir`` and start dcmqrscp on a free port."""
    binary = dcmtk("dcmqrscp")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "db" / ae
    storage.mkdir(parents=True)
    destinations = dict(move_destinations or {})
    send_as = DCMQRSCP_SEND_AS if send_as is None else send_as
    port = free_ports(1)[0]
    hosts = "\n".join(f"dest{n} = ({dest_ae}, 127.0.0.1, {dest_port})"
                      for n, (dest_ae, dest_port) in enumerate(destinations.items()))
    config = workdir / "dcmqrscp.cfg"
    config.write_text(f"""NetworkTCPPort  = {port}
MaxPDUSize      = {max_pdu}
MaxAssociations = 16

HostTable BEGIN
{hosts}
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
{ae}  {storage}  RW  (2000, 1024mb)  ANY
AETable END
""")
    assoc = workdir / "dcmqrscp-assoc.cfg"
    assoc.write_text(dcmqrscp_association_config(send_as))
    log = workdir / "dcmqrscp.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-c", str(config), "-xf", str(assoc), "In", "Out",
                                 "-dhl", "-ll", "info", *extra_args, str(port)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, start_new_session=True, env=dcmtk_env())
    peer = DcmQRSCP(port=port, ae=ae, storage=storage, config=config, destinations=destinations, log=log,
                    proc=proc)
    try:
        wait_echo(port, ae, proc, log)
    except BaseException:
        stop_group(proc)
        raise
    return peer


# --------------------------------------------------------------------------
# Orthanc

ORTHANC_BIN = Path(os.environ.get("ORTHANC_BIN", "/usr/sbin"))
ORTHANC_PLUGINS = Path(os.environ.get("ORTHANC_PLUGINS", "/usr/share/orthanc/plugins"))


@dataclass
class Orthanc:
    """A running Orthanc: DICOM ``port`` with AE title ``aet``, ``http_port``
    and base ``url`` (REST API, DICOMweb under ``url + "/dicom-web"``), the
    ``auth`` it demands (or None), its ``config`` dict and file, ``log``."""
    port: int
    http_port: int
    aet: str
    url: str
    auth: tuple[str, str] | None
    config: dict[str, object]
    config_path: Path
    log: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    # REST helpers (urllib, no dependency)
    def request(self, method: str, path: str, body: bytes | dict[str, object] | list[object] | None = None,
                content_type: str = "application/json", timeout: float = 30) -> object:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self.auth:
            token = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            req.add_header("Authorization", "Basic " + token)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            if "json" in r.headers.get("Content-Type", ""):
                return json.loads(raw)
            return raw

    def get(self, path: str) -> object:
        return self.request("GET", path)

    def load(self, paths: Iterable[Path | str]) -> list[dict[str, object]]:
        """Upload files (or folders, recursively) with POST /instances, each
        as it is (compressed ones too); every one must be stored. Returns
        Orthanc's answers (ID, ParentStudy, Status "Success" or
        "AlreadyStored", ...)."""
        files: list[Path] = []
        for p in map(Path, paths):
            files += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        answers = []
        for f in files:
            a = self.request("POST", "/instances", f.read_bytes(), "application/dicom")
            assert isinstance(a, dict) and a.get("Status") in ("Success", "AlreadyStored"), (f, a)
            answers.append(a)
        return answers

    def store_scu(self, paths: Iterable[Path | str], aet: str = "LOADER") -> int:
        """Store over DICOM instead (DCMTK dcmsend, each file in its syntax)."""
        return dcmsend_files(self.port, self.aet, paths, aet=aet)

    def add_modality(self, name: str, aet: str, port: int, **options: object) -> None:
        """Declare (or replace) a DicomModalities entry at run time
        (PUT /modalities/name), e.g. a C-MOVE destination started later."""
        self.request("PUT", f"/modalities/{name}", {"AET": aet, "Host": "127.0.0.1", "Port": port, **options})

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def orthanc_config(workdir: Path, dicom_port: int, http_port: int, aet: str = "ORTHANC",
                   modalities: Mapping[str, tuple[str, int]] | None = None, worklist_dir: Path | None = None,
                   dicomweb: bool = True, auth: tuple[str, str] | None = None, always_allow: bool = True,
                   overrides: Mapping[str, object] | None = None) -> dict[str, object]:
    plugins = []
    if dicomweb:
        plugins.append(peer_tool(ORTHANC_PLUGINS, "libOrthancDicomWeb.so", "Orthanc", "orthanc-dicomweb"))
    if worklist_dir is not None:
        plugins.append(peer_tool(ORTHANC_PLUGINS, "libModalityWorklists.so", "Orthanc", "orthanc"))
    config: dict[str, object] = {
        "Name": "dcmcli-test",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "TemporaryDirectory": str(workdir / "tmp"),
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": auth is not None,
        "RegisteredUsers": {auth[0]: auth[1]} if auth else {},
        "HttpDescribeErrors": True,
        "WebDavEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomCheckModalityHost": False,
        "DicomAlwaysAllowEcho": always_allow,
        "DicomAlwaysAllowStore": always_allow,
        "DicomAlwaysAllowFind": always_allow,
        "DicomAlwaysAllowFindWorklist": always_allow,
        "DicomAlwaysAllowGet": always_allow,
        "DicomAlwaysAllowMove": always_allow,
        "DicomModalities": {name: {"AET": m_aet, "Host": "127.0.0.1", "Port": m_port}
                            for name, (m_aet, m_port) in (modalities or {}).items()},
        "DicomScuTimeout": 10,
        "DicomScpTimeout": 30,
        "DicomAssociationCloseDelay": 0,
        "SaveJobs": False,
        "StableAge": 1,
        "Plugins": plugins,
    }
    if dicomweb:
        config["DicomWeb"] = {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "WadoRoot": "/wado",
                              "Ssl": False, "StudiesMetadata": "Full", "SeriesMetadata": "Full"}
    if worklist_dir is not None:
        config["Worklists"] = {"Enable": True, "Database": str(worklist_dir)}
    config.update(overrides or {})
    return config


def start_orthanc(workdir: Path, modalities: Mapping[str, tuple[str, int]] | None = None,
                  worklist_dir: Path | None = None, dicomweb: bool = True, auth: tuple[str, str] | None = None,
                  aet: str = "ORTHANC", always_allow: bool = True,
                  overrides: Mapping[str, object] | None = None) -> Orthanc:
    """Write a JSON config under ``workdir`` and start Orthanc on two free
    ports; ready once a C-ECHO and GET /system answer."""
    binary = peer_tool(ORTHANC_BIN, "Orthanc", "Orthanc", "orthanc")
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("storage", "index", "tmp"):
        (workdir / sub).mkdir(exist_ok=True)
    dicom_port, http_port = free_ports(2)
    config = orthanc_config(workdir, dicom_port, http_port, aet, modalities, worklist_dir, dicomweb, auth,
                            always_allow, overrides)
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = workdir / "orthanc.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "--no-jobs", str(config_path)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=workdir, start_new_session=True)
    url = f"http://127.0.0.1:{http_port}"
    peer = Orthanc(port=dicom_port, http_port=http_port, aet=aet, url=url, auth=auth, config=config,
                   config_path=config_path, log=log, proc=proc)
    listed = {str(m["AET"]) if isinstance(m, dict) else str(m[0])  # type: ignore[index]
              for m in dict(config["DicomModalities"]).values()}  # type: ignore[call-overload]
    try:
        wait_http(url + "/system", proc, auth, log)
        if config.get("DicomTlsEnabled"):  # a plain C-ECHO would not get through: a connect is all one can ask
            wait_listening(dicom_port, proc)
        elif config["DicomAlwaysAllowEcho"] or "ECHOSCU" in listed:
            wait_echo(dicom_port, aet, proc, log)
        else:  # an unknown AE's association is refused: a connect is all one can ask
            wait_listening(dicom_port, proc)
    except BaseException:
        stop_group(proc, graceful=False)
        raise
    return peer


# --------------------------------------------------------------------------
# a C-MOVE destination on a port chosen in advance

@dataclass
class Receiver:
    """DCMTK storescp listening on ``port`` (AE ``ae``: storescp answers to
    any called AE), writing into ``outdir``."""
    port: int
    ae: str
    outdir: Path
    log: Path
    proc: subprocess.Popen[bytes] = field(repr=False)

    def files(self) -> list[Path]:
        return sorted(p for p in self.outdir.rglob("*") if p.is_file())

    def sop_instance_uids(self) -> set[str]:
        return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in self.files()}


def start_receiver(workdir: Path, port: int | None = None, ae: str = "STORESCP",
                   args: Iterable[str] = ("+xa",)) -> Receiver:
    binary = dcmtk("storescp")
    port = port or free_ports(1)[0]
    outdir = workdir / f"rx-{ae}-{port}"
    outdir.mkdir(parents=True)
    log = workdir / f"storescp-{ae}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-aet", ae, "-od", str(outdir), "-dhl", *args, str(port)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=dcmtk_env())
    try:
        wait_echo(port, ae, proc, log)
    except BaseException:
        stop_group(proc)
        raise
    return Receiver(port=port, ae=ae, outdir=outdir, log=log, proc=proc)


# --------------------------------------------------------------------------
# fixtures

class _Started:
    """What a factory fixture started, stopped in reverse order."""

    def __init__(self, base: Path, graceful: bool = True) -> None:
        self.base = base
        self.graceful = graceful
        self.procs: list[subprocess.Popen[bytes]] = []
        self.count = 0

    def workdir(self, name: str) -> Path:
        self.count += 1
        return self.base / f"{name}-{self.count}"

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop_group(proc, graceful=self.graceful)


@pytest.fixture
def dcmqrscp(tmp_path: Path) -> Iterator:
    """Factory: ``start(ae="QRSCP", move_destinations={AE: port}, extra_args=(),
    send_as=DCMQRSCP_SEND_AS) -> DcmQRSCP``. Move destinations are read once at
    start: reserve their ports first with ``free_ports()``."""
    started = _Started(tmp_path)

    def start(ae: str = "QRSCP", move_destinations: Mapping[str, int] | None = None,
              extra_args: Iterable[str] = (), send_as: Mapping[str, str] | None = None) -> DcmQRSCP:
        peer = start_dcmqrscp(started.workdir("dcmqrscp"), ae, move_destinations, extra_args, send_as)
        started.procs.append(peer.proc)
        return peer

    yield start
    started.close()


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator:
    """Factory: ``start(modalities={name: (AET, port)}, worklist_dir=None,
    dicomweb=True, auth=None, aet="ORTHANC", always_allow=True, overrides=None)
    -> Orthanc``. Killed at teardown (its data is temporary; a graceful stop
    takes 3 s)."""
    started = _Started(tmp_path, graceful=False)

    def start(modalities: Mapping[str, tuple[str, int]] | None = None, worklist_dir: Path | None = None,
              dicomweb: bool = True, auth: tuple[str, str] | None = None, aet: str = "ORTHANC",
              always_allow: bool = True, overrides: Mapping[str, object] | None = None) -> Orthanc:
        peer = start_orthanc(started.workdir("orthanc"), modalities, worklist_dir, dicomweb, auth, aet,
                             always_allow, overrides)
        started.procs.append(peer.proc)
        return peer

    yield start
    started.close()


@pytest.fixture
def dcmtk_receiver(tmp_path: Path) -> Iterator:
    """Factory: ``start(port=None, ae="STORESCP", args=("+xa",)) -> Receiver``:
    DCMTK storescp (accepting every syntax by default) on the given port, e.g.
    one reserved with ``free_ports()`` and named in a peer's configuration."""
    started = _Started(tmp_path)

    def start(port: int | None = None, ae: str = "STORESCP", args: Iterable[str] = ("+xa",)) -> Receiver:
        peer = start_receiver(started.workdir("receiver"), port, ae, args)
        started.procs.append(peer.proc)
        return peer

    yield start
    started.close()
