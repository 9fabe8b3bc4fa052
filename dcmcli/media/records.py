"""Directory record rules (PS3.3 Annex F), PS3.10 file IDs and the
general-purpose media application profiles (PS3.11).

The record rules follow pydicom's ``fileset`` module (its
``DIRECTORY_RECORDERS`` and SOP-class tables are the reference), with two
differences: an SR DOCUMENT record keeps only the root's concept-modifier
content items (PS3.3 F.5.21; pydicom copies the whole content tree), and an
instance of a SOP class no dictionary knows gets a PRIVATE record.

Records built for images (the hot path) come from the file's element
headers: the keys are read as bytes and written again in Explicit VR Little
Endian without pydicom. Other leaf records (SR, presentation states, RT,
encapsulated documents, ...) carry sequences and read the file with pydicom.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import field
from pathlib import Path

from dcmcli import uids
from dcmcli.records import dataclass

#: tag -> (keyword, VR) of every element a directory record or the DICOMDIR header uses.
TAGS: dict[int, tuple[str, str]] = {
    0x00041130: ("FileSetID", "CS"),
    0x00041141: ("FileSetDescriptorFileID", "CS"),
    0x00041142: ("SpecificCharacterSetOfFileSetDescriptorFile", "CS"),
    0x00041200: ("OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity", "UL"),
    0x00041202: ("OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity", "UL"),
    0x00041212: ("FileSetConsistencyFlag", "US"),
    0x00041220: ("DirectoryRecordSequence", "SQ"),
    0x00041400: ("OffsetOfTheNextDirectoryRecord", "UL"),
    0x00041410: ("RecordInUseFlag", "US"),
    0x00041420: ("OffsetOfReferencedLowerLevelDirectoryEntity", "UL"),
    0x00041430: ("DirectoryRecordType", "CS"),
    0x00041432: ("PrivateRecordUID", "UI"),
    0x00041500: ("ReferencedFileID", "CS"),
    0x00041510: ("ReferencedSOPClassUIDInFile", "UI"),
    0x00041511: ("ReferencedSOPInstanceUIDInFile", "UI"),
    0x00041512: ("ReferencedTransferSyntaxUIDInFile", "UI"),
    0x0004151A: ("ReferencedRelatedGeneralSOPClassUIDInFile", "UI"),
    0x00080005: ("SpecificCharacterSet", "CS"),
    0x00080008: ("ImageType", "CS"),
    0x00080012: ("InstanceCreationDate", "DA"),
    0x00080013: ("InstanceCreationTime", "TM"),
    0x00080016: ("SOPClassUID", "UI"),
    0x00080018: ("SOPInstanceUID", "UI"),
    0x00080020: ("StudyDate", "DA"),
    0x00080023: ("ContentDate", "DA"),
    0x00080030: ("StudyTime", "TM"),
    0x00080033: ("ContentTime", "TM"),
    0x00080050: ("AccessionNumber", "SH"),
    0x00080060: ("Modality", "CS"),
    0x00080070: ("Manufacturer", "LO"),
    0x00081030: ("StudyDescription", "LO"),
    0x0008103E: ("SeriesDescription", "LO"),
    0x00081115: ("ReferencedSeriesSequence", "SQ"),
    0x00089092: ("ReferencedImageEvidenceSequence", "SQ"),
    0x00100010: ("PatientName", "PN"),
    0x00100020: ("PatientID", "LO"),
    0x00100030: ("PatientBirthDate", "DA"),
    0x00100040: ("PatientSex", "CS"),
    0x0020000D: ("StudyInstanceUID", "UI"),
    0x0020000E: ("SeriesInstanceUID", "UI"),
    0x00200010: ("StudyID", "SH"),
    0x00200011: ("SeriesNumber", "IS"),
    0x00200013: ("InstanceNumber", "IS"),
    0x00280008: ("NumberOfFrames", "IS"),
    0x00280010: ("Rows", "US"),
    0x00280011: ("Columns", "US"),
    0x00289001: ("DataPointRows", "UL"),
    0x00289002: ("DataPointColumns", "UL"),
    0x00700080: ("ContentLabel", "CS"),
    0x00700081: ("ContentDescription", "LO"),
    0x00700082: ("PresentationCreationDate", "DA"),
    0x00700083: ("PresentationCreationTime", "TM"),
    0x00700084: ("ContentCreatorName", "PN"),
    0x00700402: ("BlendingSequence", "SQ"),
    0x0040A491: ("CompletionFlag", "CS"),
    0x0040A493: ("VerificationFlag", "CS"),
    0x0040A030: ("VerificationDateTime", "DT"),
    0x0040A043: ("ConceptNameCodeSequence", "SQ"),
    0x0040A730: ("ContentSequence", "SQ"),
    0x3004000A: ("DoseSummationType", "CS"),
    0x30060002: ("StructureSetLabel", "SH"),
    0x30060008: ("StructureSetDate", "DA"),
    0x30060009: ("StructureSetTime", "TM"),
    0x300A0002: ("RTPlanLabel", "SH"),
    0x300A0006: ("RTPlanDate", "DA"),
    0x300A0007: ("RTPlanTime", "TM"),
    0x30080250: ("TreatmentDate", "DA"),
    0x30080251: ("TreatmentTime", "TM"),
    0x00420012: ("MIMETypeOfEncapsulatedDocument", "LO"),
    0x00420010: ("DocumentTitle", "ST"),
    0x0040E001: ("HL7InstanceIdentifier", "ST"),
    0x00720008: ("HangingProtocolCreator", "LO"),
    0x0072000A: ("HangingProtocolCreationDateTime", "DT"),
    0x0072000C: ("HangingProtocolDefinitionSequence", "SQ"),
    0x00720014: ("NumberOfPriorsReferenced", "US"),
    0x0072000E: ("HangingProtocolUserIdentificationCodeSequence", "SQ"),
    0x00221095: ("ImplantName", "LO"),
    0x00221097: ("ImplantPartNumber", "LO"),
    0x00686210: ("ImplantSize", "LO"),
    0x00760001: ("ImplantAssemblyTemplateName", "LO"),
    0x00760020: ("ProcedureTypeCodeSequence", "SQ"),
    0x00780001: ("ImplantTemplateGroupName", "LO"),
    0x00780020: ("ImplantTemplateGroupIssuer", "LO"),
    0x30100033: ("UserContentLabel", "SH"),
    0x30100034: ("UserContentLongLabel", "LO"),
    0x00880200: ("IconImageSequence", "SQ"),
}
KEYWORD_TAG = {kw: tag for tag, (kw, _vr) in TAGS.items()}

NEXT, IN_USE, LOWER = 0x00041400, 0x00041410, 0x00041420
RECORD_TYPE, PRIVATE_UID, FILE_ID = 0x00041430, 0x00041432, 0x00041500
REF_CLASS, REF_INSTANCE, REF_SYNTAX = 0x00041510, 0x00041511, 0x00041512
CHARSET = 0x00080005
#: The elements the writer computes for every record (never copied).
STRUCTURAL = frozenset({NEXT, IN_USE, LOWER})

# VRs with a 2-byte reserved field and a 4-byte length in explicit VR.
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_UID_PAD = frozenset({"UI"})
_BINARY = {"US": "<H", "UL": "<L"}


def element(tag: int, vr: str, value: bytes) -> bytes:
    """One element in Explicit VR Little Endian (value padded to even length)."""
    if len(value) % 2:
        value += b"\x00" if vr in _UID_PAD or vr in ("OB", "UN") else b" "
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr in LONG_VRS:
        return head + b"\x00\x00" + struct.pack("<L", len(value)) + value
    return head + struct.pack("<H", len(value)) + value


def text_element(tag: int, value: str) -> bytes:
    vr = TAGS[tag][1]
    if vr in _BINARY:
        return element(tag, vr, struct.pack(_BINARY[vr], int(value)))
    return element(tag, vr, value.encode("utf-8") if vr not in _UID_PAD else value.encode("ascii"))


# -- which record a SOP class gets (PS3.3 F.5; pydicom's tables the reference) -----

_LEAF_BY_KEYWORD: dict[str, str] = {
    "RTDoseStorage": "RT DOSE", "RTStructureSetStorage": "RT STRUCTURE SET", "RTPlanStorage": "RT PLAN",
    "RTIonPlanStorage": "RT PLAN", "RTBeamsTreatmentRecordStorage": "RT TREAT RECORD",
    "RTBrachyTreatmentRecordStorage": "RT TREAT RECORD", "RTTreatmentSummaryRecordStorage": "RT TREAT RECORD",
    "RTIonBeamsTreatmentRecordStorage": "RT TREAT RECORD",
    "GrayscaleSoftcopyPresentationStateStorage": "PRESENTATION",
    "ColorSoftcopyPresentationStateStorage": "PRESENTATION",
    "PseudoColorSoftcopyPresentationStateStorage": "PRESENTATION",
    "BlendingSoftcopyPresentationStateStorage": "PRESENTATION",
    "XAXRFGrayscaleSoftcopyPresentationStateStorage": "PRESENTATION",
    "BasicStructuredDisplayStorage": "PRESENTATION",
    "KeyObjectSelectionDocumentStorage": "KEY OBJECT DOC", "MRSpectroscopyStorage": "SPECTROSCOPY",
    "RawDataStorage": "RAW DATA", "SpatialRegistrationStorage": "REGISTRATION",
    "DeformableSpatialRegistrationStorage": "REGISTRATION", "SpatialFiducialsStorage": "FIDUCIAL",
    "RealWorldValueMappingStorage": "VALUE MAP", "StereometricRelationshipStorage": "STEREOMETRIC",
    "EncapsulatedPDFStorage": "ENCAP DOC", "EncapsulatedCDAStorage": "ENCAP DOC",
    "EncapsulatedSTLStorage": "ENCAP DOC", "EncapsulatedOBJStorage": "ENCAP DOC",
    "EncapsulatedMTLStorage": "ENCAP DOC", "SurfaceSegmentationStorage": "SURFACE",
    "SurfaceScanMeshStorage": "SURFACE SCAN", "SurfaceScanPointCloudStorage": "SURFACE SCAN",
    "TractographyResultsStorage": "TRACT", "ContentAssessmentResultsStorage": "ASSESSMENT",
}
#: Top-level records (no patient above them).
_SINGLE_LEVEL: dict[str, str] = {
    "HangingProtocolStorage": "HANGING PROTOCOL", "ColorPaletteStorage": "PALETTE",
    "GenericImplantTemplateStorage": "IMPLANT", "ImplantAssemblyTemplateStorage": "IMPLANT ASSY",
    "ImplantTemplateGroupStorage": "IMPLANT GROUP",
}
LEAF_TYPES = frozenset(set(_LEAF_BY_KEYWORD.values()) | {"IMAGE", "SR DOCUMENT", "WAVEFORM", "MEASUREMENT",
                                                         "RADIOTHERAPY", "PLAN", "PRIVATE"})
SINGLE_LEVEL_TYPES = frozenset(_SINGLE_LEVEL.values())


def record_type(sop_class: str, modality: str = "") -> str:
    """The leaf record type of an instance (PS3.3 F.4 / F.5)."""
    if modality in ("RTINTENT", "RTSEGANN", "RTRAD"):
        return "RADIOTHERAPY"
    if modality == "PLAN":
        return "PLAN"
    keyword = uids.keyword_of(sop_class)
    if not keyword or keyword == sop_class:  # no dictionary knows it
        return "PRIVATE"
    if keyword in _SINGLE_LEVEL:
        return _SINGLE_LEVEL[keyword]
    if keyword in _LEAF_BY_KEYWORD:
        return _LEAF_BY_KEYWORD[keyword]
    if keyword.endswith("SRStorage") or keyword.endswith("ReportStorage") or keyword == "ProcedureLogStorage":
        return "SR DOCUMENT"
    if "Waveform" in keyword:
        return "WAVEFORM"
    if keyword.endswith("MeasurementsStorage"):
        return "MEASUREMENT"
    return "IMAGE"


# -- the keys of each record type: (type 1, type 2), PS3.3 F.5 -----------------

_CONTENT_ID = (("InstanceNumber", "ContentDate", "ContentTime", "ContentLabel"),
               ("ContentDescription", "ContentCreatorName"))
REQUIRED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "PATIENT": (("PatientID",), ("PatientName",)),
    "STUDY": (("StudyDate", "StudyTime", "StudyID", "StudyInstanceUID"), ("StudyDescription", "AccessionNumber")),
    "SERIES": (("Modality", "SeriesInstanceUID", "SeriesNumber"), ()),
    "IMAGE": (("InstanceNumber",), ()),
    "RT DOSE": (("InstanceNumber", "DoseSummationType"), ()),
    "RT STRUCTURE SET": (("InstanceNumber", "StructureSetLabel"), ("StructureSetDate", "StructureSetTime")),
    "RT PLAN": (("InstanceNumber", "RTPlanLabel"), ("RTPlanDate", "RTPlanTime")),
    "RT TREAT RECORD": (("InstanceNumber",), ("TreatmentDate", "TreatmentTime")),
    "PRESENTATION": (("PresentationCreationDate", "PresentationCreationTime", "InstanceNumber", "ContentLabel"),
                     ("ContentDescription", "ContentCreatorName")),
    "WAVEFORM": (("InstanceNumber", "ContentDate", "ContentTime"), ()),
    "RAW DATA": (("InstanceNumber", "ContentDate", "ContentTime"), ()),
    "SR DOCUMENT": (("InstanceNumber", "CompletionFlag", "VerificationFlag", "ContentDate", "ContentTime",
                     "ConceptNameCodeSequence"), ()),
    "KEY OBJECT DOC": (("InstanceNumber", "ContentDate", "ContentTime", "ConceptNameCodeSequence"), ()),
    "SPECTROSCOPY": (("ImageType", "ContentDate", "ContentTime", "InstanceNumber", "NumberOfFrames", "Rows",
                      "Columns", "DataPointRows", "DataPointColumns"), ()),
    "ENCAP DOC": (("InstanceNumber", "MIMETypeOfEncapsulatedDocument"),
                  ("ContentDate", "ContentTime", "DocumentTitle", "ConceptNameCodeSequence")),
    "REGISTRATION": _CONTENT_ID, "FIDUCIAL": _CONTENT_ID, "VALUE MAP": _CONTENT_ID, "MEASUREMENT": _CONTENT_ID,
    "SURFACE": _CONTENT_ID, "TRACT": _CONTENT_ID,
    "SURFACE SCAN": (("ContentDate", "ContentTime"), ()),
    "ASSESSMENT": (("InstanceNumber", "InstanceCreationDate"), ()),
    "RADIOTHERAPY": (("InstanceNumber",), ("ContentDescription", "ContentCreatorName")),
    "HANGING PROTOCOL": (("HangingProtocolCreator", "HangingProtocolCreationDateTime",
                          "HangingProtocolDefinitionSequence", "NumberOfPriorsReferenced"), ()),
    "PALETTE": (("ContentLabel",), ("ContentDescription",)),
    "IMPLANT": (("Manufacturer", "ImplantName", "ImplantPartNumber"), ()),
    "IMPLANT ASSY": (("ImplantAssemblyTemplateName", "Manufacturer", "ProcedureTypeCodeSequence"), ()),
    "IMPLANT GROUP": (("ImplantTemplateGroupName", "ImplantTemplateGroupIssuer"), ()),
    "STEREOMETRIC": ((), ()), "PLAN": ((), ()),
    "PRIVATE": (("PrivateRecordUID",), ()),
}
#: The record types a record of each type may hold (PS3.3 F.4); leaves hold none.
CHILDREN: dict[str, frozenset[str]] = {
    "ROOT": frozenset({"PATIENT"} | SINGLE_LEVEL_TYPES | {"PRIVATE", "TOPIC"}),
    "PATIENT": frozenset({"STUDY", "PRIVATE", "HL7 STRUC DOC"}),
    "STUDY": frozenset({"SERIES", "PRIVATE", "FILM SESSION"}),
    "SERIES": LEAF_TYPES,
}
LEVEL_KEYS: dict[str, tuple[str, ...]] = {
    "PATIENT": ("PatientName", "PatientID"),
    "STUDY": ("StudyDate", "StudyTime", "StudyDescription", "StudyInstanceUID", "StudyID", "AccessionNumber"),
    "SERIES": ("Modality", "SeriesInstanceUID", "SeriesNumber"),
    "IMAGE": ("InstanceNumber",),
}
#: What the fast path reads from an instance's top level.
SCANNED = frozenset({KEYWORD_TAG[k] for k in ("SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "Modality",
                                              "PatientName", "PatientID", "StudyDate", "StudyTime",
                                              "StudyDescription", "StudyInstanceUID", "StudyID", "AccessionNumber",
                                              "SeriesInstanceUID", "SeriesNumber", "InstanceNumber")})


class RecordError(Exception):
    """An instance lacks what its directory records need (the message names it)."""


def _value_text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip(" \x00")


@dataclass
class InstanceRecords:
    """The records one instance contributes: its patient, study, series and
    leaf record (elements as Explicit VR Little Endian bytes, by tag), plus
    what identifies them."""

    leaf_type: str
    patient_id: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    patient: dict[int, bytes] = field(default_factory=dict)
    study: dict[int, bytes] = field(default_factory=dict)
    series: dict[int, bytes] = field(default_factory=dict)
    leaf: dict[int, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _level(values: dict[int, bytes], rtype: str, charset: bytes | None, invent: dict[str, str] | None,
           notes: list[str]) -> dict[int, bytes]:
    rec: dict[int, bytes] = {RECORD_TYPE: text_element(RECORD_TYPE, rtype)}
    if charset is not None:
        rec[CHARSET] = charset
    type1, type2 = REQUIRED[rtype]
    for kw in LEVEL_KEYS[rtype]:
        tag = KEYWORD_TAG[kw]
        raw = values.get(tag)
        text = _value_text(raw) if raw is not None else ""
        if not text and kw in type1:
            if invent is None or kw not in invent:
                missing = "empty" if raw is not None else "missing"
                raise RecordError(f"{kw} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is {missing}, and a {rtype} "
                                  "record needs it (PS3.3 F.5); give --invent to make one up")
            notes.append(f"{kw} invented as {invent[kw]!r}")
            rec[tag] = text_element(tag, invent[kw])
        elif raw is not None or kw in type2 or kw in type1:
            rec[tag] = element(tag, TAGS[tag][1], raw.rstrip(b"\x00 ") if raw else b"")
    return rec


def build_records(info: object, *, invent: bool = False, sequence_no: int = 1,
                  values: dict[int, bytes] | None = None) -> InstanceRecords:
    """The records of one instance (a ``dicomfile.FileInfo``), without its
    file ID (the caller knows where the file goes). Raises ``RecordError``
    when a type 1 key is missing and ``invent`` is off."""
    from dcmcli.dicomfile import read_top_level
    from dcmcli.uids import DEFLATED

    path: Path = info.path  # type: ignore[attr-defined]
    ts: str = info.transfer_syntax  # type: ignore[attr-defined]
    offset: int = info.dataset_offset  # type: ignore[attr-defined]
    if values is not None:
        pass  # read_instance read them
    elif ts == DEFLATED:
        values = read_top_level(path, offset, ts, SCANNED)
    else:
        values = scan_head(path, offset, ts)
    sop_class = info.sop_class_uid  # type: ignore[attr-defined]
    sop_instance = info.sop_instance_uid  # type: ignore[attr-defined]
    modality = _value_text(values.get(KEYWORD_TAG["Modality"], b""))
    rtype = record_type(sop_class, modality)
    charset_raw = values.get(CHARSET)
    charset = element(CHARSET, "CS", charset_raw.rstrip(b" \x00")) if charset_raw and charset_raw.strip() else None
    notes: list[str] = []
    made_up = None
    if invent:
        made_up = {"PatientID": "DCMCLI_" + (_value_text(values.get(KEYWORD_TAG["StudyInstanceUID"], b""))
                                              or sop_instance)[-20:],
                   "StudyDate": "19000101", "StudyTime": "000000", "StudyID": "1",
                   "StudyInstanceUID": sop_instance + ".1" if len(sop_instance) < 62 else sop_instance,
                   "Modality": "OT", "SeriesInstanceUID": sop_instance + ".2" if len(sop_instance) < 62 else sop_instance,
                   "SeriesNumber": "1", "InstanceNumber": str(sequence_no), "ContentDate": "19000101",
                   "ContentTime": "000000", "ContentLabel": "UNNAMED", "RTPlanLabel": "UNNAMED",
                   "StructureSetLabel": "UNNAMED", "PresentationCreationDate": "19000101",
                   "PresentationCreationTime": "000000", "CompletionFlag": "PARTIAL",
                   "VerificationFlag": "UNVERIFIED"}
    if rtype in SINGLE_LEVEL_TYPES:
        patient = study = series = {}
    else:
        patient = _level(values, "PATIENT", charset, made_up, notes)
        study = _level(values, "STUDY", charset, made_up, notes)
        series = _level(values, "SERIES", charset, made_up, notes)
    if rtype == "IMAGE":
        leaf = _level(values, "IMAGE", charset, made_up, notes)
    else:
        leaf = _leaf_with_pydicom(path, rtype, sop_class, charset, made_up, notes)
    leaf[FILE_ID] = b""  # set by the caller
    leaf[REF_CLASS] = text_element(REF_CLASS, sop_class)
    leaf[REF_INSTANCE] = text_element(REF_INSTANCE, sop_instance)
    leaf[REF_SYNTAX] = text_element(REF_SYNTAX, ts)

    def ident(rec: dict[int, bytes], tag: int) -> str:
        raw = rec.get(tag)
        return _value_text(_element_value(raw)) if raw else ""

    return InstanceRecords(rtype, ident(patient, KEYWORD_TAG["PatientID"]),
                           ident(study, KEYWORD_TAG["StudyInstanceUID"]),
                           ident(series, KEYWORD_TAG["SeriesInstanceUID"]), sop_instance, sop_class, ts,
                           patient, study, series, leaf, notes)


HEAD = 64 * 1024


_LONG_VR_BYTES = frozenset(v.encode() for v in LONG_VRS)
_VR_BYTES = frozenset(b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR "
                      b"US UT UV".split())
_UNDEF = 0xFFFFFFFF


def read_instance(path: Path) -> tuple[object, dict[int, bytes]]:
    """A file's ``FileInfo`` and its SCANNED keys, from one read of its first
    64 KB: file meta, keys and a walk over every top-level element header (a
    truncated file raises ``InvalidFile``), in memory; the file itself is
    walked only past the head (after a large Pixel Data, rarely). Files not in
    Explicit VR Little Endian go through ``dicomfile.read_file_info``."""
    from dcmcli.dicomfile import FileInfo, InvalidFile, UnreadableFile, read_file_info
    from dcmcli.uids import ELE

    try:
        fp = path.open("rb")
    except OSError as exc:
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    with fp:
        try:
            size = os.fstat(fp.fileno()).st_size
            buf = fp.read(HEAD)
        except OSError as exc:
            raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
        if size == 0:
            raise InvalidFile("empty file")
        if len(buf) < 132 or buf[128:132] != b"DICM":
            raise InvalidFile("not a DICOM file (no 'DICM' prefix after the 128-byte preamble)")
        unpack = struct.unpack_from
        meta: dict[int, str] = {}
        pos, n = 132, len(buf)
        try:
            while pos + 8 <= n:
                group, elem, vr = unpack("<HH2s", buf, pos)
                if group != 2:
                    break
                if vr in _LONG_VR_BYTES:
                    length, hl = unpack("<L", buf, pos + 8)[0], 12
                else:
                    length, hl = unpack("<H", buf, pos + 6)[0], 8
                if length == _UNDEF or pos + hl + length > size:
                    raise InvalidFile("truncated inside the file meta information")
                if vr in (b"UI", b"AE", b"SH"):
                    meta[elem] = buf[pos + hl:pos + hl + length].decode("ascii", "replace").strip(" \x00")
                pos += hl + length
        except struct.error:
            raise InvalidFile("truncated inside the file meta information") from None
        ts = meta.get(0x0010, "")
        if ts != ELE or pos + 8 > n:  # other syntaxes, or a file meta longer than 64 KB: the general reader
            info = read_file_info(path)
            return info, scan_head(path, info.dataset_offset, info.transfer_syntax)
        missing = [name for tag, name in ((0x0002, "MediaStorageSOPClassUID"), (0x0003, "MediaStorageSOPInstanceUID"))
                   if not meta.get(tag)]
        if missing:
            raise InvalidFile(f"file meta information lacks {', '.join(missing)}")
        values = _walk_explicit_le(fp, buf, pos, size, path)
    sop_class = _value_text(values.get(0x00080016, b"")) or meta[0x0002]
    sop_instance = _value_text(values.get(0x00080018, b"")) or meta[0x0003]
    return FileInfo(path, sop_class, sop_instance, ts, size, pos, meta[0x0002], meta[0x0003]), values


def _walk_explicit_le(fp: object, buf: bytes, start: int, size: int, path: Path) -> dict[int, bytes]:
    """The SCANNED keys of an Explicit VR Little Endian data set starting at
    ``start`` in ``buf`` (the file's first bytes), walking every top-level
    element header. Two loops: the keys' (up to (0020,0013)), then a bare walk."""
    from dcmcli.dicomfile import InvalidFile, _Walker, scan_top_level
    from dcmcli.media.dicomdir import DicomdirError, _skip_sequence

    values: dict[int, bytes] = {}
    unpack = struct.unpack_from
    long_vrs, vrs, wanted = _LONG_VR_BYTES, _VR_BYTES, SCANNED
    highest = max(SCANNED)
    n = len(buf)
    pos = at = start
    group = elem = 0
    passed = False

    def skip_sequence(body: int) -> int:
        if group == 0x7FE0:
            raise InvalidFile("encapsulated (compressed) Pixel Data in an uncompressed transfer syntax")
        try:
            return _skip_sequence(buf, body, n)
        except DicomdirError:
            if n == size:
                raise InvalidFile(f"truncated or corrupt inside ({group:04X},{elem:04X})") from None
            raise struct.error("past the head") from None

    try:
        while pos < size:
            at = pos
            group, elem, vr, length = unpack("<HH2sH", buf, pos)
            if vr in long_vrs:
                length = unpack("<L", buf, pos + 8)[0]
                pos += 12
            elif vr in vrs:
                pos += 8
            else:
                raise InvalidFile(f"corrupt: element ({group:04X},{elem:04X}) has no valid VR")
            if length == _UNDEF:
                pos = skip_sequence(pos)
                continue
            key = group << 16 | elem
            if key in wanted:
                values[key] = buf[pos:pos + length]
            elif key > highest:
                passed = True
                pos += length
                break
            pos += length
        while pos < size:  # the rest: headers only
            at = pos
            group, elem, vr, length = unpack("<HH2sH", buf, pos)
            if vr in long_vrs:
                length = unpack("<L", buf, pos + 8)[0]
                if length == _UNDEF:
                    pos = skip_sequence(pos + 12)
                    continue
                pos += 12 + length
            elif vr in vrs:
                pos += 8 + length
            else:
                raise InvalidFile(f"corrupt: element ({group:04X},{elem:04X}) has no valid VR")
    except struct.error:  # a header past the head: the file (or its end) tells
        if n == size:
            raise InvalidFile(f"truncated: the file ends at byte {size} inside an element header") from None
        if not passed:  # the keys may be further on
            fp.seek(start)  # type: ignore[attr-defined]
            values = scan_top_level(fp, size, "1.2.840.10008.1.2.1", set(SCANNED))  # type: ignore[arg-type]
        fp.seek(at)  # type: ignore[attr-defined]
        _Walker(fp, size, implicit=False, little=True).walk_dataset(None)  # type: ignore[arg-type]
        return values
    if pos > size:
        raise InvalidFile(f"truncated: element ({group:04X},{elem:04X}) needs {pos - at} bytes but the file ends "
                          f"{size - at} bytes after its start")
    return values


def scan_head(path: Path, offset: int, ts: str) -> dict[int, bytes]:
    """The SCANNED keys of a file not in Explicit VR Little Endian, and a walk
    over its element headers (``InvalidFile`` when truncated)."""
    from dcmcli.dicomfile import InvalidFile, check_received, scan_buffer, scan_top_level

    with path.open("rb") as fp:
        fp.seek(offset)
        head = fp.read(HEAD)
        try:
            values = scan_buffer(head, ts, set(SCANNED))
        except InvalidFile:
            if offset + len(head) >= path.stat().st_size:
                raise
            fp.seek(offset)
            values = scan_top_level(fp, path.stat().st_size, ts, set(SCANNED))
    check_received(path, offset, ts, head)
    return values


def _element_value(raw: bytes) -> bytes:
    vr = raw[4:6].decode("ascii", "replace")
    return raw[12:] if vr in LONG_VRS else raw[8:]


def _leaf_with_pydicom(path: Path, rtype: str, sop_class: str, charset: bytes | None,
                       invent: dict[str, str] | None, notes: list[str]) -> dict[int, bytes]:
    """A non-IMAGE leaf record, by pydicom's record rules (sequences included)."""
    from pydicom import dcmread
    from pydicom.dataset import Dataset
    from pydicom.fileset import DIRECTORY_RECORDERS

    from dcmcli.dataset import encode, quiet_pydicom
    from dcmcli.media.dicomdir import split_elements

    quiet_pydicom()
    ds = dcmread(path, stop_before_pixels=True, defer_size=4096)
    if rtype == "PRIVATE":
        record = Dataset()
        record.PrivateRecordUID = sop_class
        record.InstanceNumber = ds.get("InstanceNumber")
    else:
        type1, _type2 = REQUIRED[rtype]
        for kw in type1:
            if kw not in ds or ds[kw].VM == 0:
                if invent is None or kw not in invent:
                    tag = KEYWORD_TAG[kw]
                    raise RecordError(f"{kw} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is "
                                      f"{'empty' if kw in ds else 'missing'}, and a {rtype} record needs it "
                                      "(PS3.3 F.5); give --invent to make one up")
                setattr(ds, kw, invent[kw])
                notes.append(f"{kw} invented as {invent[kw]!r}")
        try:
            record = DIRECTORY_RECORDERS[rtype](ds)
        except (ValueError, KeyError, AttributeError) as exc:
            raise RecordError(f"{exc} (needed in a {rtype} record, PS3.3 F.5)") from None
        if rtype == "SR DOCUMENT" and "ContentSequence" in record:
            # F.5.21: only the root's concept modifiers belong in the record, not the content tree
            mods = [item for item in record.ContentSequence if item.get("RelationshipType") == "HAS CONCEPT MOD"]
            if mods:
                record.ContentSequence = mods
            else:
                del record.ContentSequence
        if rtype == "KEY OBJECT DOC" and "ContentSequence" in record:
            del record.ContentSequence
    for elem in list(record):
        if elem.value is None:
            record[elem.tag].value = ""  # type 2: present and empty
    rec = dict(split_elements(encode(record, uids.ELE)))
    rec[RECORD_TYPE] = text_element(RECORD_TYPE, rtype)
    if charset is not None:
        rec[CHARSET] = charset
    return rec


# -- PS3.10 file IDs ----------------------------------------------------------------

_COMPONENT = re.compile(r"^[A-Z0-9_]{1,8}$")


def file_id_problem(parts: tuple[str, ...]) -> str | None:
    """Why a file ID (its path components below the DICOMDIR's folder)
    breaks PS3.10 8.2 / 8.5, or None."""
    if len(parts) > 8:
        return f"{len(parts)} components (at most 8)"
    for part in parts:
        if not _COMPONENT.match(part):
            why = []
            if len(part) > 8:
                why.append(f"{part!r} has {len(part)} characters (at most 8)")
            bad = sorted({c for c in part if not ("A" <= c <= "Z" or "0" <= c <= "9" or c == "_")})
            if bad:
                lower = any("a" <= c <= "z" for c in bad)
                shown = "".join(c for c in bad if not ("a" <= c <= "z"))
                text = []
                if lower:
                    text.append("lower-case letters")
                if shown:
                    text.append(f"characters {shown!r}")
                why.append(f"{part!r} has {' and '.join(text)} (only A-Z, 0-9, _)")
            if not part:
                why.append("an empty component")
            return "; ".join(why)
    return None


# -- media application profiles (PS3.11) ---------------------------------------------

_GEN = (uids.ELE,)
_JPEG = (uids.ELE, uids.JPEG_BASELINE, uids.JPEG_EXTENDED, uids.JPEG_LOSSLESS_SV1)
_J2K = (uids.ELE, uids.J2K_LOSSLESS, uids.J2K)


@dataclass(frozen=True)
class Profile:
    name: str
    syntaxes: tuple[str, ...]
    #: the syntax --transcode converts images to (lossless); others go to Explicit VR Little Endian
    lossless_target: str
    description: str


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("STD-GEN-CD", _GEN, uids.ELE, "General Purpose CD-R Interchange (uncompressed)"),
    Profile("STD-GEN-DVD-RAM", _GEN, uids.ELE, "General Purpose DVD-RAM Interchange (uncompressed)"),
    Profile("STD-GEN-BD", _GEN, uids.ELE, "General Purpose BD Interchange (uncompressed)"),
    Profile("STD-GEN-MIME", _GEN, uids.ELE, "General Purpose MIME Interchange"),
    Profile("STD-GEN-DVD-JPEG", _JPEG, uids.JPEG_LOSSLESS_SV1, "General Purpose DVD Interchange with JPEG"),
    Profile("STD-GEN-DVD-J2K", _J2K, uids.J2K_LOSSLESS, "General Purpose DVD Interchange with JPEG 2000"),
    Profile("STD-GEN-BD-JPEG", _JPEG, uids.JPEG_LOSSLESS_SV1, "General Purpose BD Interchange with JPEG"),
    Profile("STD-GEN-BD-J2K", _J2K, uids.J2K_LOSSLESS, "General Purpose BD Interchange with JPEG 2000"),
    *(Profile(f"STD-GEN-{medium}-JPEG", _JPEG, uids.JPEG_LOSSLESS_SV1,
              f"General Purpose {medium} Interchange with JPEG") for medium in ("USB", "MMC", "CF", "SD")),
    *(Profile(f"STD-GEN-{medium}-J2K", _J2K, uids.J2K_LOSSLESS,
              f"General Purpose {medium} Interchange with JPEG 2000") for medium in ("USB", "MMC", "CF", "SD")),
)}


def parse_profile(text: str) -> Profile:
    from dcmcli.errors import UsageError

    name = text.strip().upper()
    if not name.startswith("STD-"):
        name = "STD-" + name
    if name not in PROFILES:
        raise UsageError(f"unknown media profile {text!r}", f"give one of {', '.join(PROFILES)}")
    return PROFILES[name]
