"""UIDs the network core uses, their names, and parsing of user-given UIDs,
keywords and short names.

The constants are plain strings so that sending and receiving need neither
pydicom nor pynetdicom (importing them costs about 0.9 s); their
dictionaries are loaded only when a name or a list is asked for.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

from dcmcli.errors import UsageError

VERIFICATION = "1.2.840.10008.1.1"

ILE = "1.2.840.10008.1.2"
ELE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
EBE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS_P14 = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
J2K_MC_LOSSLESS = "1.2.840.10008.1.2.4.92"
J2K_MC = "1.2.840.10008.1.2.4.93"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
JPEGXL_LOSSLESS = "1.2.840.10008.1.2.4.110"
JPEGXL_JPEG_RECOMPRESSION = "1.2.840.10008.1.2.4.111"
JPEGXL = "1.2.840.10008.1.2.4.112"
RLE = "1.2.840.10008.1.2.5"

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
    "rle": RLE,
    "jpeg-baseline": JPEG_BASELINE, "jpeg8": JPEG_BASELINE,
    "jpeg-extended": JPEG_EXTENDED, "jpeg12": JPEG_EXTENDED,
    "jpeg-lossless": JPEG_LOSSLESS_SV1, "jpeg-lossless-sv1": JPEG_LOSSLESS_SV1,
    "jpeg-lossless-p14": JPEG_LOSSLESS_P14,
    "jpeg-ls-lossless": JPEG_LS_LOSSLESS, "jpeg-ls": JPEG_LS_LOSSLESS,
    "jpeg-ls-near-lossless": JPEG_LS_NEAR_LOSSLESS,
    "j2k-lossless": J2K_LOSSLESS, "jpeg2000-lossless": J2K_LOSSLESS,
    "j2k": J2K, "jpeg2000": J2K,
    "htj2k-lossless": HTJ2K_LOSSLESS, "htj2k-lossless-rpcl": HTJ2K_LOSSLESS_RPCL, "htj2k": HTJ2K,
    "jpegxl-lossless": JPEGXL_LOSSLESS, "jxl-lossless": JPEGXL_LOSSLESS,
    "jpegxl-recompression": JPEGXL_JPEG_RECOMPRESSION, "jxl-jpeg": JPEGXL_JPEG_RECOMPRESSION,
    "jpegxl": JPEGXL, "jxl": JPEGXL,
}

#: Transfer syntaxes newer than pydicom 3.0's dictionary: (name, keyword).
EXTRA_SYNTAXES: dict[str, tuple[str, str]] = {
    JPEGXL_LOSSLESS: ("JPEG XL Lossless", "JPEGXLLossless"),
    JPEGXL_JPEG_RECOMPRESSION: ("JPEG XL JPEG Recompression", "JPEGXLJPEGRecompression"),
    JPEGXL: ("JPEG XL", "JPEGXL"),
}

_LOSSLESS_COMPRESSED = (RLE, JPEG_LS_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LOSSLESS_P14, J2K_LOSSLESS,
                        HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL, J2K_MC_LOSSLESS, JPEGXL_LOSSLESS)

#: Syntaxes whose pixel data went through lossy compression (video included).
#: JPEG XL JPEG Recompression carries a (lossy) baseline JPEG losslessly: the pixels are lossy.
_LOSSY_IMAGE = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LS_NEAR_LOSSLESS, J2K, J2K_MC, HTJ2K,
                          JPEGXL_JPEG_RECOMPRESSION, JPEGXL})


def is_lossy(ts: str) -> bool:
    """True for lossy image syntaxes and the MPEG/HEVC video syntaxes (.4.100 - .4.108)."""
    ts = str(ts)
    if ts in _LOSSY_IMAGE:
        return True
    prefix = "1.2.840.10008.1.2.4."
    if ts.startswith(prefix):
        head = ts[len(prefix):].split(".")[0]
        return head.isdigit() and 100 <= int(head) <= 108
    return False


@functools.lru_cache(maxsize=1)
def all_transfer_syntaxes() -> list[str]:
    """Every transfer syntax pydicom knows, in storescp's default preference order.

    Compressed syntaxes come first (lossless, then lossy and video), as with
    DCMTK's storescp +xa: a sender that offers its file's own compressed
    syntax beside uncompressed ones then never has to transcode, and the
    object is stored as it was. Uncompressed last: explicit little endian,
    implicit little endian, deflated, explicit big endian.
    """
    import pydicom.uid as pu

    order: list[str] = list(_LOSSLESS_COMPRESSED)
    for ts in [*pu.AllTransferSyntaxes, *EXTRA_SYNTAXES]:
        if str(ts) not in order and str(ts) not in UNCOMPRESSED:
            order.append(str(ts))
    return order + [ELE, ILE, DEFLATED, EBE]


@functools.lru_cache(maxsize=1)
def _uid_dictionary() -> dict[str, tuple[str, ...]]:
    """pydicom's UID dictionary, read from its data module without importing
    the pydicom package (which would pull in numpy: half a second)."""
    try:
        spec = importlib.util.find_spec("pydicom")
        locations = list(spec.submodule_search_locations or []) if spec else []
        path = Path(locations[0]) / "_uid_dict.py"
        namespace: dict[str, object] = {}
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)  # a plain dict literal
        return namespace["UID_dictionary"]  # type: ignore[return-value]
    except Exception:  # another layout: take the slow road
        from pydicom._uid_dict import UID_dictionary

        return UID_dictionary  # type: ignore[return-value]


@functools.lru_cache(maxsize=4096)
def uid_name(uid: str) -> str:
    """The UID's name from pydicom's dictionary, or the UID itself."""
    entry = _uid_dictionary().get(str(uid))
    if entry:
        return entry[0]
    extra = EXTRA_SYNTAXES.get(str(uid))
    return extra[0] if extra else str(uid)


def parse_transfer_syntax(text: str) -> str:
    """A transfer syntax from a UID, a pydicom keyword or a short name."""
    t = text.strip()
    if _UID_RE.match(t):
        return t
    low = t.lower()
    if low in SHORT_NAMES:
        return SHORT_NAMES[low]
    import pydicom.uid as pu
    from pydicom.uid import UID

    for ts in pu.AllTransferSyntaxes:
        if UID(ts).keyword.lower() == low:
            return str(ts)
    for ts, (_, keyword) in EXTRA_SYNTAXES.items():
        if keyword.lower() == low:
            return ts
    raise UsageError(f"unknown transfer syntax {text!r}",
                     f"give a UID, a keyword such as JPEGLSLossless, or one of: {', '.join(sorted(SHORT_NAMES))}")


@functools.lru_cache(maxsize=1)
def storage_sop_classes() -> list[str]:
    """Every storage SOP class pynetdicom knows (170 in pynetdicom 3.0)."""
    from pynetdicom import AllStoragePresentationContexts

    return [str(cx.abstract_syntax) for cx in AllStoragePresentationContexts]


def parse_sop_class(text: str) -> str:
    """A SOP class from a UID or a keyword such as ``CTImageStorage``."""
    t = text.strip()
    if _UID_RE.match(t):
        return t
    from pynetdicom import sop_class

    for keyword in dir(sop_class):
        if keyword.lower() == t.lower():
            value = getattr(sop_class, keyword)
            if isinstance(value, str):
                return str(value)
    raise UsageError(f"unknown SOP class {text!r}", "give a UID or a keyword such as CTImageStorage")
