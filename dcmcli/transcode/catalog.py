"""The transfer-syntax catalog: what each syntax is, and what this
installation can decode and encode it with.

The facts about each syntax (lossless or not, encapsulated or not) are
DICOM's (PS3.5 Annex A, PS3.6 Table A-1); the capabilities are asked of
pydicom's decoders and encoders after dcmcli's plugin is registered, so they
follow what is installed rather than a hard-coded list.
"""

from __future__ import annotations


from dcmcli import uids
from dcmcli.records import dataclass


@dataclass(frozen=True)
class SyntaxInfo:
    uid: str
    name: str
    keyword: str
    short: str  # dcmcli's short name, '' if none
    lossless: bool
    encapsulated: bool
    decode: tuple[str, ...]  # plugins that can decode it here
    encode: tuple[str, ...]  # plugins that can encode it here
    decode_missing: tuple[str, ...] = ()  # what would provide a decoder
    encode_missing: tuple[str, ...] = ()  # what would provide an encoder

    @property
    def can_decode(self) -> bool:
        return bool(self.decode)

    @property
    def can_encode(self) -> bool:
        return bool(self.encode)

    def as_dict(self) -> dict[str, object]:
        return {
            "uid": self.uid, "name": self.name, "keyword": self.keyword, "short_name": self.short,
            "lossless": self.lossless, "encapsulated": self.encapsulated,
            "decode": list(self.decode), "encode": list(self.encode),
            "decode_missing": list(self.decode_missing), "encode_missing": list(self.encode_missing),
        }


#: The syntaxes dcmcli handles, in the order the catalog lists them.
SYNTAXES: tuple[str, ...] = (
    uids.ILE, uids.ELE, uids.EBE, uids.DEFLATED,
    uids.RLE,
    uids.JPEG_BASELINE, uids.JPEG_EXTENDED, uids.JPEG_LOSSLESS_P14, uids.JPEG_LOSSLESS_SV1,
    uids.JPEG_LS_LOSSLESS, uids.JPEG_LS_NEAR_LOSSLESS,
    uids.J2K_LOSSLESS, uids.J2K,
    uids.HTJ2K_LOSSLESS, uids.HTJ2K_LOSSLESS_RPCL, uids.HTJ2K,
    uids.JPEGXL_LOSSLESS, uids.JPEGXL_JPEG_RECOMPRESSION, uids.JPEGXL,
)

#: Lossless in the sense that matters for pixels: decoding gives back what was encoded.
LOSSLESS_TARGETS: frozenset[str] = frozenset(
    {ts for ts in SYNTAXES if not uids.is_lossy(ts)}
    | {uids.JPEGXL_JPEG_RECOMPRESSION}  # lossless with respect to the JPEG it carries
)

#: What a sender may compress to when a peer takes only compressed syntaxes,
#: best first (smallest and most widely decoded first).
LOSSLESS_PREFERENCE: tuple[str, ...] = (
    uids.JPEG_LS_LOSSLESS, uids.J2K_LOSSLESS, uids.HTJ2K_LOSSLESS, uids.HTJ2K_LOSSLESS_RPCL,
    uids.JPEG_LOSSLESS_SV1, uids.JPEG_LOSSLESS_P14, uids.RLE, uids.JPEGXL_LOSSLESS,
)

#: Lossy syntaxes a sender may use with --allow-lossy (or for a file that is lossy already).
LOSSY_PREFERENCE: tuple[str, ...] = (
    uids.J2K, uids.HTJ2K, uids.JPEG_LS_NEAR_LOSSLESS, uids.JPEG_BASELINE, uids.JPEG_EXTENDED, uids.JPEGXL,
)

_UNCOMPRESSED = frozenset({uids.ILE, uids.ELE, uids.EBE, uids.DEFLATED})


def _short_name(uid: str) -> str:
    names = [k for k, v in uids.SHORT_NAMES.items() if v == uid]
    return names[0] if names else ""


def _plugins(coder: object) -> tuple[tuple[str, ...], tuple[str, ...]]:
    available = tuple(getattr(coder, "available_plugins", ()))
    missing: list[str] = []
    for deps in getattr(coder, "_unavailable", {}).values():
        missing.extend(d for d in deps if d not in missing and d != "numpy")
    return available, tuple(missing)


def syntax_info(uid: str) -> SyntaxInfo:
    """Everything the catalog knows about ``uid`` on this installation."""
    from pydicom.pixels.decoders.base import _PIXEL_DATA_DECODERS
    from pydicom.pixels.encoders.base import _PIXEL_DATA_ENCODERS
    from pydicom.uid import UID

    from dcmcli.transcode.plugins import register

    register()
    u = UID(uid)
    name = uids.uid_name(uid)
    keyword = u.keyword or uids.EXTRA_SYNTAXES.get(uid, ("", ""))[1]
    if uid in _UNCOMPRESSED:
        decode = encode = ("pydicom",)
        decode_missing = encode_missing = ()
    else:
        dec = _PIXEL_DATA_DECODERS.get(u)
        enc = _PIXEL_DATA_ENCODERS.get(u)
        decode, decode_missing = _plugins(dec[0]) if dec else ((), ())
        encode, encode_missing = _plugins(enc[0]) if enc else ((), ())
    return SyntaxInfo(uid=uid, name=name, keyword=keyword, short=_short_name(uid),
                      lossless=not uids.is_lossy(uid),
                      encapsulated=uid not in _UNCOMPRESSED, decode=decode, encode=encode,
                      decode_missing=decode_missing, encode_missing=encode_missing)


def catalog() -> list[SyntaxInfo]:
    """The catalog, in ``SYNTAXES`` order."""
    return [syntax_info(uid) for uid in SYNTAXES]
