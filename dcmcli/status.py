"""One DIMSE status table for every command (PS3.7 Annex C and PS3.4).

``describe(code, service)`` returns the category (success, warning, failure,
cancel, pending) and the meaning in plain words. Service-specific meanings
(C-STORE's B000 is "coercion of data elements", C-MOVE's B000 is "one or more
sub-operations failed") are looked up first, then the general ones, then the
ranges the standard reserves (A7xx, A9xx, Cxxx).
"""

from __future__ import annotations

from enum import Enum

from dcmcli.records import dataclass


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

# The normalized services (PS3.7 10.1, PS3.4): the general codes above, plus
# those of the service classes built on them.
_MEDIA_CREATION = {
    0xA510: (F, "an Initiate Media Creation action was already received for this instance"),
    0xC201: (F, "media creation request already completed"),
    0xC202: (F, "media creation request already in progress and cannot be interrupted"),
    0xC203: (F, "cancellation denied for an unspecified reason"),
}
#: Unified Procedure Step (PS3.4 CC.2): what each code means for the UPS asked about.
UPS: dict[int, tuple[Category, str]] = {
    0xB300: (W, "the UPS was created with modifications"),
    0xB301: (W, "deletion lock not granted"),
    0xB304: (W, "the UPS is already CANCELED"),
    0xB305: (W, "invalid values were coerced to valid ones"),
    0xB306: (W, "the UPS is already COMPLETED"),
    0xC300: (F, "the UPS may no longer be updated"),
    0xC301: (F, "wrong Transaction UID: the one given when the UPS was claimed is needed"),
    0xC302: (F, "the UPS is already IN PROGRESS"),
    0xC303: (F, "a UPS becomes SCHEDULED only by N-CREATE"),
    0xC304: (F, "the UPS does not meet the requirements of the final state asked for"),
    0xC307: (F, "no such UPS: the instance does not exist or is not a UPS this SCP manages"),
    0xC308: (F, "the receiving AE title is unknown to this SCP"),
    0xC309: (F, "the UPS State given was not SCHEDULED"),
    0xC310: (F, "the UPS is not IN PROGRESS yet"),
    0xC311: (F, "the UPS is already COMPLETED"),
    0xC312: (F, "the performer cannot be contacted"),
    0xC313: (F, "the performer chooses not to cancel"),
    0xC314: (F, "the action is not appropriate for this instance"),
    0xC315: (F, "the SCP does not support event reports"),
}
#: Print Management (PS3.4 H.4): film session, film box, image box and print job codes.
PRINT: dict[int, tuple[Category, str]] = {
    0xB600: (W, "memory allocation not supported by the printer"),
    0xB601: (W, "film session printing (collation) is not supported"),
    0xB602: (W, "the film session has no image boxes: an empty page"),
    0xB603: (W, "the film box has no image boxes: an empty page"),
    0xB604: (W, "the image is larger than its image box and was demagnified"),
    0xB605: (W, "the min or max density is outside the printer's range: its own limit is used"),
    0xB609: (W, "the image is larger than its image box and was cropped to fit"),
    0xB60A: (W, "the image is larger than its image box and was decimated to fit"),
    0xC600: (F, "the film session has no film boxes"),
    0xC601: (F, "cannot create a print job: the print queue is full"),
    0xC602: (F, "cannot create a print job for the film box: the print queue is full"),
    0xC603: (F, "the image is larger than its image box"),
    0xC604: (F, "image position collision: several images for one position"),
    0xC605: (F, "not enough memory in the printer to store the image"),
    0xC606: (F, "more than one VOI LUT"),
    0xC613: (F, "the combined print image is larger than the image box"),
    0xC616: (F, "an earlier film box has not been printed and the printer cannot print a whole film session"),
}
for _service in ("N-ACTION", "N-CREATE", "N-SET", "N-GET", "N-DELETE", "N-EVENT-REPORT"):
    SERVICE[_service] = {**_MEDIA_CREATION, **UPS, **PRINT}

#: Failure Reasons of a storage commitment report (PS3.4 J.3.2.1.2.1.2).
SERVICE["STORAGE-COMMITMENT"] = {
    0x0110: (F, "processing failure"),
    0x0112: (F, "no such object instance: the peer does not have it"),
    0x0213: (F, "resource limitation"),
    0x0122: (F, "referenced SOP class not supported"),
    0x0119: (F, "class-instance conflict: the peer has it with another SOP class"),
    0x0131: (F, "duplicate transaction UID"),
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
    **{n: ((0xC600, 0xC6FF, F, "print failure (a code of the print management range)"),)
       for n in ("N-ACTION", "N-CREATE", "N-SET", "N-GET", "N-DELETE")},
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
