"""One DIMSE status table for every command (PS3.7 Annex C and PS3.4).

``describe(code, service)`` returns the category (success, warning, failure,
cancel, pending) and the meaning in plain words. Service-specific meanings
(C-STORE's B000 is "coercion of data elements", C-MOVE's B000 is "one or more
sub-operations failed") are looked up first, then the general ones, then the
ranges the standard reserves (A7xx, A9xx, Cxxx).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Category(str, Enum):
    SUCCESS = "success"
    WARNING = "warning"
    FAILURE = "failure"
    CANCEL = "cancel"
    PENDING = "pending"


@dataclass(frozen=True)
class Status:
    code: int
    category: Category
    meaning: str

    @property
    def hex(self) -> str:
        return f"0x{self.code:04X}"

    @property
    def ok(self) -> bool:
        return self.category in (Category.SUCCESS, Category.PENDING)

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "hex": self.hex, "category": self.category.value, "meaning": self.meaning}


S, W, F, C, P = Category.SUCCESS, Category.WARNING, Category.FAILURE, Category.CANCEL, Category.PENDING

# General statuses, PS3.7 C.1 - C.5.
GENERAL: dict[int, tuple[Category, str]] = {
    0x0000: (S, "success"),
    0x0001: (W, "requested optional attributes are not supported"),
    0x0107: (W, "attribute list error"),
    0x0116: (W, "attribute value out of range"),
    0x0105: (F, "no such attribute"),
    0x0106: (F, "invalid attribute value"),
    0x0110: (F, "processing failure"),
    0x0111: (F, "duplicate SOP instance"),
    0x0112: (F, "no such SOP instance"),
    0x0113: (F, "no such event type"),
    0x0114: (F, "no such argument"),
    0x0115: (F, "invalid argument value"),
    0x0117: (F, "invalid object instance"),
    0x0118: (F, "no such SOP class"),
    0x0119: (F, "class-instance conflict"),
    0x0120: (F, "missing attribute"),
    0x0121: (F, "missing attribute value"),
    0x0122: (F, "SOP class not supported"),
    0x0123: (F, "no such action"),
    0x0124: (F, "not authorised"),
    0x0210: (F, "duplicate invocation"),
    0x0211: (F, "unrecognised operation"),
    0x0212: (F, "mistyped argument"),
    0x0213: (F, "resource limitation"),
    0xFE00: (C, "cancelled"),
    0xFF00: (P, "pending"),
    0xFF01: (P, "pending: one or more optional keys not supported"),
}

SERVICE: dict[str, dict[int, tuple[Category, str]]] = {
    "C-ECHO": {},
    "C-STORE": {
        0xB000: (W, "coercion of data elements"),
        0xB006: (W, "elements discarded"),
        0xB007: (W, "data set does not match SOP class"),
        0xA700: (F, "refused: out of resources"),
        0xA900: (F, "data set does not match SOP class"),
        0xC000: (F, "cannot understand"),
    },
    "C-FIND": {
        0xA700: (F, "refused: out of resources"),
        0xA900: (F, "identifier does not match SOP class"),
        0xC000: (F, "unable to process"),
    },
    "C-MOVE": {
        0xA701: (F, "refused: out of resources, unable to calculate number of matches"),
        0xA702: (F, "refused: out of resources, unable to perform sub-operations"),
        0xA801: (F, "refused: move destination unknown"),
        0xA900: (F, "identifier does not match SOP class"),
        0xB000: (W, "sub-operations complete, one or more failures"),
        0xC000: (F, "unable to process"),
    },
    "C-GET": {
        0xA701: (F, "refused: out of resources, unable to calculate number of matches"),
        0xA702: (F, "refused: out of resources, unable to perform sub-operations"),
        0xA900: (F, "identifier does not match SOP class"),
        0xB000: (W, "sub-operations complete, one or more failures or warnings"),
        0xC000: (F, "unable to process"),
    },
}

# Ranges the standard reserves, checked after the exact codes.
RANGES: dict[str, tuple[tuple[int, int, Category, str], ...]] = {
    "C-STORE": (
        (0xA700, 0xA7FF, F, "refused: out of resources"),
        (0xA900, 0xA9FF, F, "data set does not match SOP class"),
        (0xC000, 0xCFFF, F, "cannot understand"),
    ),
    "C-FIND": ((0xC000, 0xCFFF, F, "unable to process"),),
    "C-MOVE": ((0xC000, 0xCFFF, F, "unable to process"),),
    "C-GET": ((0xC000, 0xCFFF, F, "unable to process"),),
}


def describe(code: int, service: str = "C-STORE") -> Status:
    """Return the category and meaning of DIMSE status ``code`` for ``service``."""
    entry = SERVICE.get(service, {}).get(code) or GENERAL.get(code)
    if entry:
        return Status(code, entry[0], entry[1])
    for lo, hi, cat, meaning in RANGES.get(service, ()):
        if lo <= code <= hi:
            return Status(code, cat, meaning)
    # PS3.7 C.1: unknown codes. Bxxx are warnings by convention; anything
    # else unrecognised is treated as a failure, the safe reading.
    if 0xB000 <= code <= 0xBFFF:
        return Status(code, W, "warning (code not defined by the standard)")
    return Status(code, F, "failure (code not defined by the standard)")
