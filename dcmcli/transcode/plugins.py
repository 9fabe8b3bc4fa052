"""imagecodecs as a pydicom encoding and decoding plugin.

pydicom 3.0 encodes only RLE, JPEG-LS and JPEG 2000, and does not know the
JPEG XL syntaxes at all. This module is a plugin in pydicom's own format
(``is_available``, ``ENCODER_DEPENDENCIES``, ``DECODER_DEPENDENCIES``, a
frame function taking the raw frame and pydicom's runner) backed by
imagecodecs (libjpeg-turbo, CharLS, OpenJPEG, OpenJPH, libjxl), and
``register()`` adds it to pydicom's encoders and decoders: new ``Encoder``
objects for JPEG baseline, extended, lossless, HTJ2K and JPEG XL, and new
``Decoder`` objects for JPEG XL. Everything after that (validation against
PS3.5's encoding profiles, frame iteration, the choice of plugin) is
pydicom's.

Colour handling follows the Photometric Interpretation the runner asks for,
which is the value *after* encoding (as in pydicom's profiles): YBR_FULL_422
means convert RGB to YCbCr and subsample, YBR_RCT / YBR_ICT mean the JPEG
2000 multi-component transform, RGB and MONOCHROME* mean no transform.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from dcmcli import uids

if TYPE_CHECKING:
    import numpy as np
    from pydicom.pixels.decoders.base import DecodeRunner
    from pydicom.pixels.encoders.base import EncodeRunner

_IC = ("numpy", "imagecodecs>=2024.9.22")

#: What this plugin encodes, and the imagecodecs codec that does it.
ENCODER_CODECS: dict[str, str] = {
    uids.JPEG_BASELINE: "JPEG8",
    uids.JPEG_EXTENDED: "JPEG8",
    uids.JPEG_LOSSLESS_P14: "JPEG8",
    uids.JPEG_LOSSLESS_SV1: "JPEG8",
    uids.JPEG_LS_LOSSLESS: "JPEGLS",
    uids.JPEG_LS_NEAR_LOSSLESS: "JPEGLS",
    uids.J2K_LOSSLESS: "JPEG2K",
    uids.J2K: "JPEG2K",
    uids.HTJ2K_LOSSLESS: "HTJ2K",
    uids.HTJ2K_LOSSLESS_RPCL: "HTJ2K",
    uids.HTJ2K: "HTJ2K",
    uids.JPEGXL_LOSSLESS: "JPEGXL",
    uids.JPEGXL_JPEG_RECOMPRESSION: "JPEGXL",
    uids.JPEGXL: "JPEGXL",
}
#: What this plugin decodes: JPEG XL, which pydicom's own plugins do not, and
#: JPEG as a second decoder (libjpeg-turbo reads 12-bit JPEG that pylibjpeg's
#: libjpeg refuses: pydicom's JPEG-lossy.dcm).
DECODER_CODECS: dict[str, str] = {
    uids.JPEG_BASELINE: "JPEG8",
    uids.JPEG_EXTENDED: "JPEG8",
    uids.JPEG_LOSSLESS_P14: "JPEG8",
    uids.JPEG_LOSSLESS_SV1: "JPEG8",
    uids.JPEGXL_LOSSLESS: "JPEGXL",
    uids.JPEGXL_JPEG_RECOMPRESSION: "JPEGXL",
    uids.JPEGXL: "JPEGXL",
}

ENCODER_DEPENDENCIES = {uid: _IC for uid in ENCODER_CODECS}
DECODER_DEPENDENCIES = {uid: _IC for uid in DECODER_CODECS}

#: PS3.5 8.2 encoding profiles pydicom 3.0 lacks: (Photometric Interpretation
#: after encoding, Samples per Pixel, Pixel Representation, Bits Allocated, Bits Stored).
_HTJ2K_PROFILE = [
    ("MONOCHROME1", 1, (0, 1), (8, 16, 32), range(1, 33)),
    ("MONOCHROME2", 1, (0, 1), (8, 16, 32), range(1, 33)),
    ("RGB", 3, (0,), (8, 16), range(1, 17)),
    ("YBR_FULL", 3, (0,), (8, 16), range(1, 17)),
]
# PALETTE COLOR with lossless syntaxes only (PS3.5 8.2.4), as pydicom's JPEG 2000 profiles.
_PALETTE = ("PALETTE COLOR", 1, (0,), (8, 16), range(1, 17))
EXTRA_PROFILES: dict[str, list[tuple[str, int, Any, Any, Any]]] = {
    uids.HTJ2K_LOSSLESS: [*_HTJ2K_PROFILE, _PALETTE, ("YBR_RCT", 3, (0,), (8, 16), range(1, 17))],
    uids.HTJ2K_LOSSLESS_RPCL: [*_HTJ2K_PROFILE, _PALETTE, ("YBR_RCT", 3, (0,), (8, 16), range(1, 17))],
    uids.HTJ2K: [*_HTJ2K_PROFILE, ("YBR_ICT", 3, (0,), (8, 16), range(1, 17))],
    # JPEG XL (PS3.5 8.2.15): grey or RGB, unsigned, up to 16 bits.
    uids.JPEGXL_LOSSLESS: [
        ("MONOCHROME1", 1, (0,), (8, 16), range(1, 17)),
        ("MONOCHROME2", 1, (0,), (8, 16), range(1, 17)),
        ("RGB", 3, (0,), (8, 16), range(1, 17)),
    ],
    uids.JPEGXL: [
        ("MONOCHROME1", 1, (0,), (8, 16), range(1, 17)),
        ("MONOCHROME2", 1, (0,), (8, 16), range(1, 17)),
        ("RGB", 3, (0,), (8, 16), range(1, 17)),
    ],
    uids.JPEGXL_JPEG_RECOMPRESSION: [
        ("MONOCHROME1", 1, (0,), (8,), (8,)),
        ("MONOCHROME2", 1, (0,), (8,), (8,)),
        ("YBR_FULL_422", 3, (0,), (8,), (8,)),
        ("RGB", 3, (0,), (8,), (8,)),
    ],
}


@functools.lru_cache(maxsize=1)
def _imagecodecs() -> Any:
    try:
        import imagecodecs
    except ImportError:
        return None
    return imagecodecs


def is_available(uid: str) -> bool:
    """True when imagecodecs is installed and built with the codec for ``uid``."""
    ic = _imagecodecs()
    name = ENCODER_CODECS.get(str(uid)) or DECODER_CODECS.get(str(uid))
    if ic is None or name is None:
        return False
    codec = getattr(ic, name, None)
    return bool(getattr(codec, "available", False))


# -- encoding -------------------------------------------------------------------

def _frame_array(src: bytes, runner: EncodeRunner) -> np.ndarray:
    """One frame of raw little-endian pixels as an array (rows, columns[, samples])."""
    import numpy as np

    nbytes = runner.bits_allocated // 8
    signed = runner.pixel_representation == 1
    dtype = np.dtype(f"<{'i' if signed else 'u'}{nbytes}")
    arr = np.frombuffer(src, dtype=dtype)
    spp = runner.samples_per_pixel
    if spp == 1:
        return arr.reshape(runner.rows, runner.columns)
    if runner.planar_configuration == 1:
        return arr.reshape(spp, runner.rows, runner.columns).transpose(1, 2, 0)
    return arr.reshape(runner.rows, runner.columns, spp)


def stored_bits(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """The samples as the unsigned bit pattern of their ``bits_stored`` bits.

    Signed samples become their two's complement pattern, which is how PS3.5
    carries signed data in JPEG and JPEG-LS (the decoder sign-extends by Pixel
    Representation); unused high bits (overlays, garbage) are cleared, as
    DCMTK's encoders do, so a lossless encoder with a precision of Bits Stored
    neither fails nor changes values. Also what lossless verification compares.
    """
    import numpy as np

    if arr.dtype.kind not in "ui":
        return arr
    unsigned = arr.view(arr.dtype.str.replace("i", "u"))
    if not 0 < bits_stored < unsigned.dtype.itemsize * 8:
        return unsigned
    return np.bitwise_and(unsigned, np.array((1 << bits_stored) - 1, dtype=unsigned.dtype))


def encode_frame(src: bytes, runner: EncodeRunner) -> bytes | bytearray:
    """pydicom encoding plugin entry point: one raw frame to one codestream."""
    ic = _imagecodecs()
    ts = str(runner.transfer_syntax)
    arr = _frame_array(src, runner)
    bits = int(runner.bits_stored)
    pi = str(runner.photometric_interpretation)
    colour = runner.samples_per_pixel == 3
    lossless = not uids.is_lossy(ts)

    if ts in (uids.JPEG_BASELINE, uids.JPEG_EXTENDED):
        quality = int(runner.get_option("jpeg_quality", 90))
        # Process 1 is 8-bit; process 2/4 (.51) is 8-bit for 8-bit data (libjpeg-turbo
        # refuses 12-bit precision for uint8 samples) and 12-bit otherwise.
        precision = 8 if ts == uids.JPEG_BASELINE or arr.dtype.itemsize == 1 else 12
        kwargs: dict[str, Any] = {"level": quality, "bitspersample": precision}
        if colour:
            kwargs["colorspace"] = "RGB"
            if pi.startswith("YBR_FULL"):
                kwargs["outcolorspace"] = "YCbCr"
                kwargs["subsampling"] = "422" if pi == "YBR_FULL_422" else "444"
            else:
                kwargs["outcolorspace"] = "RGB"
        return ic.jpeg8_encode(stored_bits(arr, bits), **kwargs)

    if ts in (uids.JPEG_LOSSLESS_P14, uids.JPEG_LOSSLESS_SV1):
        predictor = 1 if ts == uids.JPEG_LOSSLESS_SV1 else int(runner.get_option("jpeg_predictor", 1))
        kwargs = {"lossless": True, "predictor": predictor, "bitspersample": max(bits, 2)}
        if colour:
            kwargs.update(colorspace="RGB", outcolorspace="RGB")
        return ic.jpeg8_encode(stored_bits(arr, bits), **kwargs)

    if ts in (uids.JPEG_LS_LOSSLESS, uids.JPEG_LS_NEAR_LOSSLESS):
        near = int(runner.get_option("jls_error", 0)) if not lossless else 0
        return ic.jpegls_encode(stored_bits(arr, bits), level=near)

    if ts in (uids.J2K_LOSSLESS, uids.J2K):
        level = None if lossless else runner.get_option("j2k_psnr", None)
        return ic.jpeg2k_encode(arr, level=level, codecformat="J2K", reversible=lossless,
                                mct=pi in ("YBR_RCT", "YBR_ICT"), bitspersample=bits)

    if ts in (uids.HTJ2K_LOSSLESS, uids.HTJ2K_LOSSLESS_RPCL, uids.HTJ2K):
        # OpenJPH writes RPCL progression; .202 also asks for TLM markers (PS3.5 A.4.7).
        rgb = pi in ("YBR_RCT", "YBR_ICT")
        if lossless:
            return ic.htj2k_encode(arr, reversible=True, rgb=rgb, tlm=ts == uids.HTJ2K_LOSSLESS_RPCL)
        qstep = runner.get_option("htj2k_quantization", None)
        if qstep is not None:
            return ic.htj2k_encode(arr, level=float(qstep), reversible=False, rgb=rgb)
        return _htj2k_for_ratio(ic, arr, float(runner.get_option("j2k_cr", [10.0])[0]), rgb)

    if ts in (uids.JPEGXL_LOSSLESS, uids.JPEGXL):
        effort = int(runner.get_option("jxl_effort", 3))
        if lossless:
            return ic.jpegxl_encode(arr, lossless=True, effort=effort, bitspersample=bits)
        distance = float(runner.get_option("jxl_distance", 1.0))
        return ic.jpegxl_encode(arr, distance=distance, effort=effort, bitspersample=bits)

    if ts == uids.JPEGXL_JPEG_RECOMPRESSION:
        jpeg = runner.get_option("jpeg_bitstream", None)
        if jpeg is None:
            raise ValueError("JPEG XL JPEG Recompression needs the JPEG Baseline codestream of the source")
        return ic.jpegxl_encode_jpeg(jpeg)

    raise ValueError(f"the imagecodecs plugin does not encode {uids.uid_name(ts)}")


def _htj2k_for_ratio(ic: Any, arr: np.ndarray, ratio: float, rgb: bool) -> bytes | bytearray:
    """Lossy HTJ2K at a target compression ratio. OpenJPH takes only a
    quantisation step, so search it (log scale, 12 encodes of a few ms each)
    for the finest step whose codestream is no larger than raw size / ratio."""
    import math

    budget = arr.nbytes / max(ratio, 1.0)
    lo, hi = math.log(1e-7), math.log(0.5)  # step relative to the sample type's range
    coarsest = ic.htj2k_encode(arr, level=0.5, reversible=False, rgb=rgb)
    if len(coarsest) > budget:  # tiny images: headers alone exceed it; do not ruin the pixels for nothing
        return ic.htj2k_encode(arr, level=1e-4, reversible=False, rgb=rgb)
    best = coarsest
    for _ in range(12):
        mid = (lo + hi) / 2
        data = ic.htj2k_encode(arr, level=math.exp(mid), reversible=False, rgb=rgb)
        if len(data) <= budget:
            best, hi = data, mid  # small enough: try a finer step
        else:
            lo = mid
    return best


# -- decoding -------------------------------------------------------------------

def decode_frame(src: bytes, runner: DecodeRunner) -> bytes | bytearray:
    """pydicom decoding plugin entry point: one JPEG or JPEG XL codestream to raw pixels."""
    ic = _imagecodecs()
    if DECODER_CODECS.get(str(runner.transfer_syntax)) == "JPEG8":
        # No colour conversion (as pydicom's other JPEG plugins): YCbCr stays
        # YCbCr, and pydicom converts it to RGB when asked.
        colour = {"colorspace": "RGB", "outcolorspace": "RGB"} if runner.samples_per_pixel == 3 else {}
        arr = ic.jpeg8_decode(src, **colour)
        if arr.ndim == 3:
            runner.set_option("planar_configuration", 0)
        runner.set_option("bits_allocated", arr.dtype.itemsize * 8)  # 12-bit comes as 16-bit samples
        return arr.tobytes()
    arr = ic.jpegxl_decode(src)
    if arr.ndim == 3 and runner.photometric_interpretation in ("YBR_FULL_422", "YBR_FULL"):
        runner.set_option("photometric_interpretation", "RGB")  # libjxl returns RGB
    if arr.ndim == 3:
        runner.set_option("planar_configuration", 0)
    return arr.tobytes()


# -- registration -----------------------------------------------------------------

_registered = False
_lock = threading.Lock()

#: Preferred plugin order per syntax (first available wins), by measured speed.
PREFERENCE: dict[str, tuple[str, ...]] = {
    uids.RLE: ("pylibjpeg", "gdcm", "pydicom"),
    # decoding; imagecodecs is the only JPEG encoder and the second decoder
    uids.JPEG_BASELINE: ("pylibjpeg", "imagecodecs"),
    uids.JPEG_EXTENDED: ("pylibjpeg", "imagecodecs"),
    uids.JPEG_LOSSLESS_P14: ("pylibjpeg", "imagecodecs"),
    uids.JPEG_LOSSLESS_SV1: ("pylibjpeg", "imagecodecs"),
    uids.JPEG_LS_LOSSLESS: ("imagecodecs", "pyjpegls", "gdcm"),
    uids.JPEG_LS_NEAR_LOSSLESS: ("imagecodecs", "pyjpegls", "gdcm"),
    uids.J2K_LOSSLESS: ("imagecodecs", "pylibjpeg", "gdcm"),
    uids.J2K: ("imagecodecs", "pylibjpeg", "gdcm"),
}

PLUGIN = "imagecodecs"


def register() -> None:
    """Teach pydicom the JPEG XL syntaxes and add the imagecodecs plugin to its
    encoders and decoders. Idempotent and thread-safe."""
    global _registered
    with _lock:
        if _registered:
            return
        from pydicom import _uid_dict
        from pydicom.pixels.decoders import base as dbase
        from pydicom.pixels.encoders import base as ebase
        from pydicom.uid import UID

        for uid, (name, keyword) in uids.EXTRA_SYNTAXES.items():
            _uid_dict.UID_dictionary.setdefault(uid, (name, "Transfer Syntax", "", "", keyword))
        for uid, profile in EXTRA_PROFILES.items():
            ebase.ENCODING_PROFILES.setdefault(UID(uid), profile)  # type: ignore[arg-type]
        for uids_, registry, coder, func in ((ENCODER_CODECS, ebase._PIXEL_DATA_ENCODERS, ebase.Encoder, "encode_frame"),
                                             (DECODER_CODECS, dbase._PIXEL_DATA_DECODERS, dbase.Decoder, "decode_frame")):
            for uid in uids_:
                u = UID(uid)
                if u not in registry:  # a syntax pydicom has no Encoder/Decoder object for
                    registry[u] = (coder(u), "dcmcli")  # type: ignore[index]
                obj = registry[u][0]  # type: ignore[index]
                if PLUGIN not in obj._available and PLUGIN not in obj._unavailable:
                    obj.add_plugin(PLUGIN, (__name__, func))
        _registered = True
