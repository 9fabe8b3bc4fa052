"""Data sets as both cores and every command see them: bytes on the wire in
a transfer syntax, files (DICOM or DICOM JSON, PS3.18 F), and DICOM JSON.

Below both cores, like ``dcmcli.uids`` and ``dcmcli.dicomfile``. pydicom is
imported here, so only commands that build or read data sets (findscu,
movescu, getscu, the N-services) import this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcmcli.errors import DcmcliError, ExitCode, InputError
from dcmcli.uids import EBE, ILE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dcmcli.identifier import FlatIdentifier


def skip_pixel_imports() -> None:
    """Commands that never decode pixel data (findscu; getscu and movescu
    without --store-as) keep pydicom from importing the optional packages it
    loads for pixels and downloads (numpy, PIL, requests, tqdm, pylibjpeg's
    plugin scan): 0.15-0.2 s of each start, measured. pydicom treats each as
    not installed. Call it before pydicom is first imported; a module already
    loaded is kept."""
    import sys

    for optional in ("numpy", "requests", "tqdm", "PIL", "pylibjpeg"):
        sys.modules.setdefault(optional, None)  # type: ignore[arg-type]


def quiet_pydicom() -> None:
    """Values that break a VR's rules (a peer's, or a user's ``2024*`` date)
    are reported by dcmcli in its own words, not by pydicom's warnings."""
    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE


class InvalidDataset(Exception):
    """A data set that cannot be parsed."""


def encode(ds: Dataset | FlatIdentifier, transfer_syntax: str) -> bytes:
    """The data set's bytes in an uncompressed transfer syntax (no file meta)."""
    from dcmcli.identifier import FlatIdentifier

    if isinstance(ds, FlatIdentifier):  # a retrieve's usual identifier: no pydicom
        return ds.encode(transfer_syntax)
    quiet_pydicom()
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_little_endian = transfer_syntax != EBE
    fp.is_implicit_VR = transfer_syntax == ILE
    write_dataset(fp, ds)
    return fp.getvalue()


def write_part10(ds: Dataset, path: Path, sop_class: str) -> None:
    """A data set as a DICOM file (preamble, dcmcli's file meta, Explicit VR
    Little Endian) with a new Media Storage SOP Instance UID: what findscu -X
    writes for each answer, as DCMTK's findscu does."""
    from pydicom.uid import generate_uid

    from dcmcli.dicomfile import encode_file_meta
    from dcmcli.uids import ELE

    path.write_bytes(encode_file_meta(sop_class, str(generate_uid()), ELE) + encode(ds, ELE))


def decode(data: bytes, transfer_syntax: str) -> Dataset:
    """A data set read from its bytes (as sent in a DIMSE message), with its
    values decoded in whatever character set it declares (ISO 2022 included)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    quiet_pydicom()
    try:
        # read_dataset records the encoding itself, the character set as
        # Python codec names (convert_encodings); the DICOM term ("ISO_IR 192")
        # is no codec name, and only "ISO_IR 100" happened to be an alias.
        return read_dataset(DicomBytesIO(data), transfer_syntax == ILE, transfer_syntax != EBE)
    except Exception as exc:  # pydicom raises many kinds for broken data
        raise InvalidDataset(f"cannot parse the data set: {exc}") from None


def to_json(ds: Dataset) -> dict[str, Any]:
    """DICOM JSON (PS3.18 F.2) of a data set; binary values inline, base64."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ds.to_json_dict(bulk_data_threshold=1 << 30)  # type: ignore[no-any-return]


def from_json(obj: dict[str, Any]) -> Dataset:
    from pydicom.dataset import Dataset

    try:
        return Dataset.from_json(obj)
    except Exception as exc:
        raise InvalidDataset(f"not a DICOM JSON object: {exc}") from None


def read_dataset_file(path: Path, what: str = "query file") -> list[Dataset]:
    """Data sets from a DICOM file (Part 10 or bare, as DCMTK's query files)
    or a DICOM JSON file (one object, or an array of them)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}",
                         "check the path and its permissions") from None
    head = raw.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            import json

            obj = json.loads(raw)
        except ValueError as exc:
            raise DcmcliError(f"{what} {str(path)!r} is not valid JSON: {exc}",
                              "give a DICOM file or a DICOM JSON object", exit_code=ExitCode.INVALID_INPUT) from None
        items = obj if isinstance(obj, list) else [obj]
        out = []
        for n, item in enumerate(items):
            if not isinstance(item, dict):
                raise DcmcliError(f"{what} {str(path)!r}: item {n} is not a JSON object", "give DICOM JSON (PS3.18 F)",
                                  exit_code=ExitCode.INVALID_INPUT)
            try:
                out.append(from_json(item))
            except InvalidDataset as exc:
                raise DcmcliError(f"{what} {str(path)!r}: {exc}", "give DICOM JSON (PS3.18 F)",
                                  exit_code=ExitCode.INVALID_INPUT) from None
        return out
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    try:
        ds = dcmread(path, force=True)
        if not len(ds):
            raise InvalidDicomError("no elements")
        # A bare data set read with force=True can come out as garbage
        # elements: text read as a tag and a length of millions of bytes,
        # whose value pydicom cuts short at the end of the file without a
        # word. A value shorter than its length is no data set.
        _check_lengths(ds)
        for elem in ds:
            _ = elem.value
    except Exception as exc:
        raise DcmcliError(f"{what} {str(path)!r} is neither DICOM nor DICOM JSON ({type(exc).__name__}: {exc})",
                          "write it with dump2dcm, or as a DICOM JSON object", exit_code=ExitCode.INVALID_INPUT) from None
    ds.file_meta = None  # type: ignore[assignment]
    return [ds]


def _check_lengths(ds: Dataset) -> None:
    """Raise when an element read from a file holds fewer bytes than its
    header says (the file ended inside it)."""
    from pydicom.dataelem import RawDataElement

    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.length != 0xFFFFFFFF and isinstance(raw.value, bytes) \
                and len(raw.value) < raw.length:
            raise ValueError(f"element ({tag >> 16:04X},{tag & 0xFFFF:04X}) claims {raw.length} bytes, "
                             f"the file holds {len(raw.value)}")


# -- a fast path for flat identifiers (C-FIND responses) ------------------------

_TEXT_MULTI = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC", "UI"})
_TEXT_SINGLE = frozenset({"LT", "ST", "UT", "UR"})
_CHARSET_TEXT = frozenset({"LO", "SH", "LT", "ST", "UT", "UC", "PN"})
_BINARY_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_LONG = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_CODECS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}


def fast_json(data: bytes, transfer_syntax: str) -> dict[str, Any] | None:
    """DICOM JSON of a flat data set straight from its bytes, as
    ``to_json(decode(...))`` would give it, for little endian data sets of
    text, number and PN values in the default, Latin-1 or UTF-8 character
    set; None for anything else (sequences, binary values, other character
    sets, malformed data), which the caller then hands to pydicom."""
    import struct

    if transfer_syntax == EBE:
        return None
    implicit = transfer_syntax == ILE
    if implicit:
        from pydicom.datadict import dictionary_VR
    out: dict[str, Any] = {}
    codec = "latin_1"
    pos, end = 0, len(data)
    unpack = struct.unpack_from
    try:
        while pos < end:
            if end - pos < 8:
                return None
            group, elem = unpack("<HH", data, pos)
            tag = group << 16 | elem
            if implicit:
                length = unpack("<L", data, pos + 4)[0]
                pos += 8
                if group & 1 or elem == 0:
                    return None
                vr = dictionary_VR(tag)
            else:
                vr = data[pos + 4:pos + 6].decode("ascii")
                if vr in _LONG:
                    length = unpack("<L", data, pos + 8)[0]
                    pos += 12
                else:
                    length = unpack("<H", data, pos + 6)[0]
                    pos += 8
            if length == 0xFFFFFFFF or pos + length > end:
                return None
            raw = data[pos:pos + length]
            pos += length
            key = f"{tag:08X}"
            if tag == 0x00080005:
                name = raw.decode("ascii").strip(" \x00")
                if name not in _CODECS:
                    return None
                codec = _CODECS[name]
            if not raw:
                out[key] = {"vr": vr}
                continue
            if vr in _TEXT_MULTI or vr in _TEXT_SINGLE or vr == "PN":
                text = raw.decode(codec if vr in _CHARSET_TEXT else "latin_1")
                text = text.rstrip(" \x00")
                if vr in _TEXT_SINGLE:
                    values: list[Any] = [text]
                else:
                    values = [v.rstrip(" \x00") for v in text.split("\\")]
                if vr == "PN":
                    pn = []
                    for v in values:
                        parts = v.split("=")
                        d = {k: p for k, p in zip(("Alphabetic", "Ideographic", "Phonetic"), parts) if p}
                        pn.append(d)
                    values = pn
                if values == [""]:
                    out[key] = {"vr": vr}
                    continue
                out[key] = {"vr": vr, "Value": values}
            elif vr in ("IS", "DS"):
                items = raw.decode("ascii").strip(" \x00").split("\\")
                conv: list[Any] = []
                for v in items:
                    v = v.strip()
                    if not v:
                        conv.append(None)
                    elif vr == "IS":
                        conv.append(int(v) if v.lstrip("+-").isdigit() else int(float(v)))
                    else:
                        conv.append(float(v))
                out[key] = {"vr": vr, "Value": conv}
            elif vr in _BINARY_NUMBERS:
                fmt = _BINARY_NUMBERS[vr]
                size = struct.calcsize(fmt)
                if length % size:
                    return None
                out[key] = {"vr": vr, "Value": list(struct.unpack(f"<{length // size}{fmt}", raw))}
            elif vr == "AT":
                if length % 4:
                    return None
                ats = struct.unpack(f"<{length // 2}H", raw)
                out[key] = {"vr": vr, "Value": [f"{ats[i]:04X}{ats[i + 1]:04X}" for i in range(0, len(ats), 2)]}
            else:
                return None
    except (UnicodeDecodeError, ValueError, struct.error, KeyError):
        return None
    return out
