"""Names of UIDs, the transfer syntax and storage SOP class lists the network
core uses, and parsing of user-given UIDs, keywords and short names."""

from __future__ import annotations

import re

import pydicom.uid as pu
from pydicom.uid import UID
from pynetdicom import AllStoragePresentationContexts
from pynetdicom import sop_class as _sop_class

from dcmcli.errors import UsageError

ELE = pu.ExplicitVRLittleEndian
ILE = pu.ImplicitVRLittleEndian
EBE = pu.ExplicitVRBigEndian
DEFLATED = pu.DeflatedExplicitVRLittleEndian

#: What a sender falls back to when the peer refuses the file's own syntax.
UNCOMPRESSED_FALLBACK: tuple[str, ...] = (ELE, ILE)
UNCOMPRESSED: frozenset[str] = frozenset({ELE, ILE, EBE, DEFLATED})

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")

#: Short names accepted wherever a transfer syntax is asked for.
SHORT_NAMES: dict[str, str] = {
    "ile": ILE, "implicit": ILE,
    "ele": ELE, "explicit": ELE,
    "ebe": EBE, "big": EBE,
    "deflate": DEFLATED, "deflated": DEFLATED,
    "rle": pu.RLELossless,
    "jpeg-baseline": pu.JPEGBaseline8Bit, "jpeg8": pu.JPEGBaseline8Bit,
    "jpeg-extended": pu.JPEGExtended12Bit, "jpeg12": pu.JPEGExtended12Bit,
    "jpeg-lossless": pu.JPEGLosslessSV1, "jpeg-lossless-sv1": pu.JPEGLosslessSV1,
    "jpeg-lossless-p14": pu.JPEGLossless,
    "jpeg-ls-lossless": pu.JPEGLSLossless, "jpeg-ls": pu.JPEGLSLossless,
    "jpeg-ls-near-lossless": pu.JPEGLSNearLossless,
    "j2k-lossless": pu.JPEG2000Lossless, "jpeg2000-lossless": pu.JPEG2000Lossless,
    "j2k": pu.JPEG2000, "jpeg2000": pu.JPEG2000,
    "htj2k-lossless": pu.HTJ2KLossless, "htj2k-lossless-rpcl": pu.HTJ2KLosslessRPCL, "htj2k": pu.HTJ2K,
}

_LOSSLESS_COMPRESSED = (
    pu.RLELossless, pu.JPEGLSLossless, pu.JPEGLosslessSV1, pu.JPEGLossless, pu.JPEG2000Lossless,
    pu.HTJ2KLossless, pu.HTJ2KLosslessRPCL, pu.JPEG2000MCLossless,
)

#: Syntaxes whose pixel data went through lossy compression.
LOSSY: frozenset[str] = frozenset(str(t) for t in (
    pu.JPEGBaseline8Bit, pu.JPEGExtended12Bit, pu.JPEGLSNearLossless, pu.JPEG2000, pu.JPEG2000MC, pu.HTJ2K,
    *(t for t in pu.AllTransferSyntaxes if UID(t).keyword.startswith(("MPEG", "HEVC"))),
))


def is_lossy(ts: str) -> bool:
    return str(ts) in LOSSY


def all_transfer_syntaxes() -> list[str]:
    """Every transfer syntax pydicom knows, in storescp's default preference order.

    Compressed syntaxes come first (lossless, then lossy and video), as with
    DCMTK's storescp +xa: a sender that offers its file's own compressed
    syntax beside uncompressed ones then never has to transcode, and the
    object is stored as it was. Uncompressed last: explicit little endian,
    implicit little endian, deflated, explicit big endian.
    """
    order: list[str] = [str(t) for t in _LOSSLESS_COMPRESSED]
    for ts in pu.AllTransferSyntaxes:
        if str(ts) not in order and str(ts) not in UNCOMPRESSED:
            order.append(str(ts))
    return order + [str(t) for t in (ELE, ILE, DEFLATED, EBE)]


def uid_name(uid: str) -> str:
    name = UID(uid).name
    return name if name and name != uid else uid


def ts_name(uid: str) -> str:
    return uid_name(uid)


def is_compressed(ts: str) -> bool:
    return UID(ts).is_compressed


def parse_transfer_syntax(text: str) -> str:
    """A transfer syntax from a UID, a pydicom keyword or a short name."""
    t = text.strip()
    if _UID_RE.match(t):
        return t
    low = t.lower()
    if low in SHORT_NAMES:
        return str(SHORT_NAMES[low])
    for ts in pu.AllTransferSyntaxes:
        if UID(ts).keyword.lower() == low:
            return str(ts)
    raise UsageError(f"unknown transfer syntax {text!r}",
                     f"give a UID, a keyword such as JPEGLSLossless, or one of: {', '.join(sorted(SHORT_NAMES))}")


def storage_sop_classes() -> list[str]:
    """Every storage SOP class pynetdicom knows (170 in pynetdicom 3.0)."""
    return [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]


def parse_sop_class(text: str) -> str:
    """A SOP class from a UID or a keyword such as ``CTImageStorage``."""
    t = text.strip()
    if _UID_RE.match(t):
        return t
    uid = getattr(_sop_class, t, None)
    if isinstance(uid, str):
        return str(uid)
    for ts_kw in dir(_sop_class):
        if ts_kw.lower() == t.lower():
            value = getattr(_sop_class, ts_kw)
            if isinstance(value, str):
                return str(value)
    raise UsageError(f"unknown SOP class {text!r}", "give a UID or a keyword such as CTImageStorage")
