"""Flat identifiers without pydicom: the C-GET and C-MOVE requests most runs
send (the Query/Retrieve Level, unique keys, a few matching keys; ASCII
values, no sequences), built and encoded here, so that getscu and movescu
start without importing pydicom (0.06 s of a 0.2 s start, measured with
``-X importtime``). Any other identifier (another key, a sequence, a value
outside ASCII, a query file) is a pydicom data set, as before; so is one that
a debug line prints (``str``) or a later step turns into one (``to_dataset``).

It answers the part of pydicom's ``Dataset`` the query/retrieve core uses:
``kw in ds``, ``ds.get(kw)``, ``ds.Keyword`` and ``ds.Keyword = value``,
``add_new``, ``copy.deepcopy`` and iteration over elements with ``tag``,
``VR`` and ``value``. Below both cores, like ``dcmcli.keys``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from dcmcli.uids import EBE, ILE

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

#: keyword -> (tag, VR) of the attributes commands name most, known without
#: pydicom: what a flat identifier may hold, and the fields of the storage
#: writer's naming templates and layouts. A test checks them against
#: pydicom's data dictionary.
KEYS: dict[str, tuple[int, str]] = {
    "SpecificCharacterSet": (0x00080005, "CS"),
    "StudyDate": (0x00080020, "DA"),
    "SeriesDate": (0x00080021, "DA"),
    "StudyTime": (0x00080030, "TM"),
    "AccessionNumber": (0x00080050, "SH"),
    "QueryRetrieveLevel": (0x00080052, "CS"),
    "Modality": (0x00080060, "CS"),
    "ModalitiesInStudy": (0x00080061, "CS"),
    "SOPClassUID": (0x00080016, "UI"),
    "SOPInstanceUID": (0x00080018, "UI"),
    "AvailableTransferSyntaxUID": (0x00083002, "UI"),
    "InstitutionName": (0x00080080, "LO"),
    "StationName": (0x00081010, "SH"),
    "StudyDescription": (0x00081030, "LO"),
    "SeriesDescription": (0x0008103E, "LO"),
    "PatientName": (0x00100010, "PN"),
    "PatientID": (0x00100020, "LO"),
    "PatientBirthDate": (0x00100030, "DA"),
    "StudyInstanceUID": (0x0020000D, "UI"),
    "SeriesInstanceUID": (0x0020000E, "UI"),
    "StudyID": (0x00200010, "SH"),
    "SeriesNumber": (0x00200011, "IS"),
    "AcquisitionNumber": (0x00200012, "IS"),
    "InstanceNumber": (0x00200013, "IS"),
}
_BY_TAG: dict[int, tuple[str, str]] = {tag: (kw, vr) for kw, (tag, vr) in KEYS.items()}


def vr_of(tag: int) -> str | None:
    """The VR of a flat identifier's key, or None (not one: ask pydicom)."""
    entry = _BY_TAG.get(tag)
    return entry[1] if entry else None


def keyword_of(tag: int) -> str:
    """A tag's keyword: the table's, else pydicom's dictionary's ("" if it has none)."""
    entry = _BY_TAG.get(tag)
    if entry:
        return entry[0]
    from pydicom.datadict import keyword_for_tag

    return str(keyword_for_tag(tag) or "")


def is_flat(tag: int, value: str | None) -> bool:
    """Whether a key (one element, not in a sequence) can go into a flat
    identifier: a key of the table, an ASCII value, and for IS whole numbers
    (pydicom's path checks anything else, with its messages)."""
    if tag not in _BY_TAG or not (value is None or (value.isascii() and value.isprintable())):
        return False
    if _BY_TAG[tag][1] == "IS" and value:
        return all(p.strip().lstrip("+-").isdigit() for p in value.split("\\"))
    return True


class Element(NamedTuple):
    tag: int
    VR: str
    value: str  # "" for a return key


class FlatIdentifier:
    """A flat identifier: tag -> value, encoded in order of tags."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[int, str] | None = None) -> None:
        object.__setattr__(self, "_values", dict(values or {}))

    # -- what the core asks ---------------------------------------------------
    @staticmethod
    def _tag(key: str | int) -> int | None:
        if isinstance(key, int):
            return key
        entry = KEYS.get(key)
        return entry[0] if entry else None

    def __contains__(self, key: object) -> bool:
        tag = self._tag(key) if isinstance(key, (str, int)) else None
        return tag is not None and tag in self._values

    def get(self, key: str | int, default: Any = None) -> Any:
        tag = self._tag(key)
        if tag is None or tag not in self._values:
            return default
        return self._values[tag]

    def __getattr__(self, name: str) -> Any:
        tag = self._tag(name)
        if tag is None or tag not in self._values:
            raise AttributeError(name)
        return self._values[tag]

    def __setattr__(self, name: str, value: object) -> None:
        tag = self._tag(name)
        if tag is None:
            raise AttributeError(f"{name} is not a key of a flat identifier")
        self.set(tag, value)

    def set(self, tag: int, value: object) -> None:
        if tag not in _BY_TAG:
            raise KeyError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is not a key of a flat identifier")
        if isinstance(value, (list, tuple)):
            value = "\\".join(str(v) for v in value)
        self._values[tag] = "" if value is None else str(value)

    def add_new(self, tag: int, vr: str, value: object) -> None:
        if _BY_TAG.get(tag, ("", ""))[1] != vr:
            raise KeyError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr} is not a key of a flat identifier")
        self.set(tag, value)

    def __iter__(self) -> Iterator[Element]:
        for tag in sorted(self._values):
            yield Element(tag, _BY_TAG[tag][1], self._values[tag])

    def __len__(self) -> int:
        return len(self._values)

    def __deepcopy__(self, memo: dict[int, Any]) -> FlatIdentifier:
        return FlatIdentifier(self._values)

    # -- bytes --------------------------------------------------------------------
    def encode(self, transfer_syntax: str) -> bytes:
        """The identifier in an uncompressed transfer syntax (as pydicom writes it)."""
        big = transfer_syntax == EBE
        implicit = transfer_syntax == ILE
        head = struct.Struct(">HH" if big else "<HH")
        out = bytearray()
        for tag in sorted(self._values):
            vr = _BY_TAG[tag][1]
            raw = self._values[tag].encode("ascii")
            if len(raw) % 2:
                raw += b"\x00" if vr == "UI" else b" "
            out += head.pack(tag >> 16, tag & 0xFFFF)
            if implicit:
                out += struct.pack("<L", len(raw))
            else:
                out += vr.encode("ascii") + struct.pack(">H" if big else "<H", len(raw))
            out += raw
        return bytes(out)

    # -- as pydicom's ---------------------------------------------------------------
    def to_dataset(self) -> Dataset:
        from pydicom.dataset import Dataset as DS

        ds = DS()
        for elem in self:
            ds.add_new(elem.tag, elem.VR, elem.value)
        return ds

    def __str__(self) -> str:  # a debug line: pydicom's listing
        return str(self.to_dataset())

    def __repr__(self) -> str:
        return f"FlatIdentifier({ {_BY_TAG[t][0]: v for t, v in sorted(self._values.items())} })"
