"""transcode(): one data set from its transfer syntax to another.

Decoding and encoding are pydicom's (its decoders and ``Encoder`` objects,
with the pylibjpeg, pyjpegls and imagecodecs plugins); this module decides
what has to happen to the pixels and keeps the metadata right:

* Photometric Interpretation after the codec (RGB after decompressing YCbCr,
  YBR_FULL_422 for lossy JPEG colour, YBR_RCT / YBR_ICT for JPEG 2000 and
  HTJ2K colour), Planar Configuration 0 (colour-by-pixel);
* Bits Stored, High Bit and Pixel Representation kept;
* one fragment per frame, a Basic Offset Table, odd lengths padded;
* lossy output: Lossy Image Compression 01, its ratio and method appended,
  a new SOP Instance UID (unless asked to keep it) with a Source Image
  Sequence pointing at the original;
* lossless output is decoded again and compared with the source pixels bit
  for bit (``verify``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import field
from typing import TYPE_CHECKING, Any

from dcmcli import uids
from dcmcli.records import dataclass
from dcmcli.transcode.catalog import LOSSLESS_TARGETS, syntax_info

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset


class TranscodeError(Exception):
    """The object cannot be transcoded as asked; the message says why."""


@dataclass
class TranscodeOptions:
    quality: int = 90  # JPEG baseline and extended, 1-100
    ratio: float = 10.0  # JPEG 2000 lossy: target compression ratio
    near: int = 2  # JPEG-LS near-lossless: largest allowed error
    distance: float = 1.0  # JPEG XL lossy: Butteraugli distance (0.1 best .. 25)
    effort: int = 3  # JPEG XL: encoder effort 1 (fast) .. 9 (small)
    qstep: float | None = None  # HTJ2K lossy: quantisation step relative to the Bits Stored range (else: ratio)
    predictor: int = 1  # JPEG lossless process 14: predictor 1-7
    keep_uid: bool = False  # keep the SOP Instance UID after lossy compression
    verify: bool = True  # decode lossless output again and compare
    utf8: bool = False  # convert text to UTF-8 (ISO_IR 192)


@dataclass
class TranscodeResult:
    source_syntax: str
    target_syntax: str
    pixels: str  # unchanged | re-encoded | none (no pixel data)
    lossy: bool = False  # this transcode lost information
    ratio: float | None = None  # uncompressed / compressed size, when compressed
    new_sop_instance_uid: str | None = None
    verified: bool | None = None  # lossless round trip checked
    frames: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "source_transfer_syntax": self.source_syntax, "transfer_syntax": self.target_syntax,
            "pixels": self.pixels, "lossy": self.lossy,
            "ratio": round(self.ratio, 3) if self.ratio else None,
            "new_sop_instance_uid": self.new_sop_instance_uid, "verified": self.verified,
            "frames": self.frames, "notes": self.notes,
        }


_UNCOMPRESSED = frozenset({uids.ILE, uids.ELE, uids.EBE, uids.DEFLATED})
_METHOD = {
    uids.JPEG_BASELINE: "ISO_10918_1", uids.JPEG_EXTENDED: "ISO_10918_1",
    uids.JPEG_LS_NEAR_LOSSLESS: "ISO_14495_1", uids.J2K: "ISO_15444_1",
    uids.HTJ2K: "ISO_15444_15", uids.JPEGXL: "ISO_18181_1",
}
_PIXEL_KEYWORDS = ("FloatPixelData", "DoubleFloatPixelData")


def _name(uid: str) -> str:
    return uids.uid_name(uid)


def source_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return str(ts)
    return uids.ILE if getattr(ds, "is_implicit_VR", False) else uids.ELE


def _plugins(uid: str, what: str) -> tuple[str, ...]:
    """The installed plugins for ``what`` ('encode' or 'decode'), preferred
    first, or a clear error naming the package to install."""
    info = syntax_info(uid)
    plugins = info.encode if what == "encode" else info.decode
    if plugins:
        from dcmcli.transcode.plugins import PREFERENCE

        preferred = [label for label in PREFERENCE.get(uid, ()) if label in plugins]
        return tuple(dict.fromkeys([*preferred, *plugins]))
    missing = info.encode_missing if what == "encode" else info.decode_missing
    hint = f"install {' or '.join(missing)}" if missing else "no installed library can do it"
    raise TranscodeError(f"cannot {what} {_name(uid)} on this installation; {hint}")


def _require(uid: str, what: str) -> str:
    """The plugin to use for ``what`` ('encode' or 'decode'), or a clear error naming the package to install."""
    return _plugins(uid, what)[0]


# -- decoding ---------------------------------------------------------------------

def _decode(ds: Dataset, ts: str) -> tuple[np.ndarray, dict[str, Any]]:
    """The pixels as an array (frames, rows, columns[, samples]) and the
    Image Pixel values that describe it (RGB for decoded YCbCr).

    Each installed decoder is tried in turn (pylibjpeg's libjpeg refuses some
    12-bit JPEG that libjpeg-turbo, through imagecodecs, decodes as DCMTK
    does); the decoders' own messages go to the debug log, and the error,
    if every one fails, is one plain line."""
    from pydicom.pixels.decoders.base import get_decoder

    plugins = ("",) if ts in _UNCOMPRESSED else _plugins(ts, "decode")
    for plugin in plugins:
        try:
            arr, meta = get_decoder(ts).as_array(ds, raw=False, decoding_plugin=plugin)
            break
        except Exception as exc:  # plugins raise many types
            logging.getLogger("dcmcli").debug("decoding %s with %s failed: %s", _name(ts), plugin or "pydicom",
                                              _one_line(exc))
    else:
        tried = " and ".join(p or "pydicom" for p in plugins)
        raise TranscodeError(f"cannot decode the {_name(ts)} pixel data: {tried} failed (damaged data, or a "
                             "variant of the syntax they do not support); -d shows their messages")
    frames = int(meta.get("number_of_frames", 1) or 1)
    spp = int(meta.get("samples_per_pixel", 1))
    shape = (frames, int(meta["rows"]), int(meta["columns"])) + ((spp,) if spp > 1 else ())
    return arr.reshape(shape), dict(meta)


def decode_pixels(ds: Dataset) -> tuple[np.ndarray, dict[str, Any]]:
    """The pixels of any syntax this installation decodes, as an array
    (frames, rows, columns[, samples]; YCbCr as RGB) and the values that
    describe it (printscu's image preparation)."""
    from dcmcli.transcode.plugins import register

    register()
    return _decode(ds, source_syntax(ds))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(t.strip() for t in text[:3]) if text else type(exc).__name__


# -- metadata -------------------------------------------------------------------

def _set_image_pixel(ds: Dataset, meta: dict[str, Any], pi: str) -> None:
    ds.PhotometricInterpretation = pi
    ds.BitsAllocated = int(meta["bits_allocated"])
    if int(meta.get("samples_per_pixel", 1)) > 1:
        ds.PlanarConfiguration = 0
    elif "PlanarConfiguration" in ds:
        del ds.PlanarConfiguration


def _mark_lossy(ds: Dataset, target: str, ratio: float, options: TranscodeOptions, result: TranscodeResult) -> None:
    from pydicom.dataset import Dataset as DS
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    ds.LossyImageCompression = "01"
    ratios = [str(v) for v in _as_list(ds.get("LossyImageCompressionRatio"))]
    methods = [str(v) for v in _as_list(ds.get("LossyImageCompressionMethod"))]
    ds.LossyImageCompressionRatio = [*ratios, f"{ratio:.2f}"[:16]]
    ds.LossyImageCompressionMethod = [*methods, _METHOD.get(target, "")]
    result.lossy = True
    if options.keep_uid:
        result.notes.append("SOP Instance UID kept after lossy compression (--keep-uid)")
        return
    old_uid = str(ds.get("SOPInstanceUID", ""))
    new_uid = generate_uid()
    if old_uid and "SOPClassUID" in ds:
        ref = DS()
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = old_uid
        existing = list(ds.get("SourceImageSequence", []))
        ds.SourceImageSequence = Sequence([*existing, ref])
    ds.SOPInstanceUID = new_uid
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = new_uid
    if "ImageType" in ds:
        values = _as_list(ds.ImageType)
        if values:
            values[0] = "DERIVED"
            ds.ImageType = values
    description = f"Lossy compression: {_name(target)}, ratio {ratio:.1f}:1"
    old = str(ds.get("DerivationDescription", ""))
    ds.DerivationDescription = (old + "; " if old else "") + description
    result.new_sop_instance_uid = new_uid


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


def convert_to_utf8(ds: Dataset) -> bool:
    """Re-encode every text value as UTF-8 (ISO_IR 192), like DCMTK's +U8.
    Returns True if anything changed."""
    current = ds.get("SpecificCharacterSet")
    if current is not None and _as_list(current) == ["ISO_IR 192"]:
        return False
    try:
        ds.decode()  # every text value to str, with the declared character sets
    except Exception as exc:
        raise TranscodeError(f"cannot decode the text values for conversion to UTF-8: {_one_line(exc)}") from None

    def strip_nested(d: Dataset) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value:
                    if "SpecificCharacterSet" in item:
                        del item.SpecificCharacterSet
                    strip_nested(item)

    strip_nested(ds)
    ds.SpecificCharacterSet = "ISO_IR 192"
    return True


# -- encoding -------------------------------------------------------------------

def _target_pi(target: str, pi: str, spp: int) -> str:
    """Photometric Interpretation of the encoded data (PS3.5 8.2)."""
    if spp == 1:
        return pi
    if target in (uids.JPEG_BASELINE, uids.JPEG_EXTENDED):
        return "YBR_FULL_422"
    if target in (uids.J2K_LOSSLESS, uids.HTJ2K_LOSSLESS, uids.HTJ2K_LOSSLESS_RPCL):
        return "YBR_RCT"
    if target in (uids.J2K, uids.HTJ2K):
        return "YBR_ICT"
    return "RGB" if pi.startswith("YBR") or pi == "RGB" else pi


def _check_encodable(arr: np.ndarray, meta: dict[str, Any], target: str) -> None:
    """Refuse clearly what a codec cannot carry, before trying."""
    bits_stored = int(meta.get("bits_stored", meta["bits_allocated"]))
    signed = int(meta.get("pixel_representation", 0)) == 1
    spp = int(meta.get("samples_per_pixel", 1))
    name = _name(target)
    if target == uids.JPEG_BASELINE and (bits_stored > 8 or int(meta["bits_allocated"]) != 8):
        raise TranscodeError(f"a {bits_stored}-bit image cannot be encoded as {name} (8 bits only); "
                             "use jpeg-extended (12 bits) or a lossless syntax")
    if target == uids.JPEG_EXTENDED and bits_stored > 12:
        raise TranscodeError(f"a {bits_stored}-bit image cannot be encoded as {name} (12 bits at most); "
                             "use a lossless syntax or JPEG 2000")
    if target in (uids.JPEG_BASELINE, uids.JPEG_EXTENDED) and signed:
        raise TranscodeError(f"signed pixel data cannot be encoded as {name}")
    if target == uids.JPEG_EXTENDED and spp != 1:
        raise TranscodeError(f"colour images cannot be encoded as {name} (greyscale only); "
                             "use jpeg-baseline or a lossless syntax")
    if target in (uids.JPEGXL_LOSSLESS, uids.JPEGXL) and signed:
        raise TranscodeError(f"signed pixel data cannot be encoded as {name}; use JPEG 2000 or HTJ2K")
    # pydicom's RLE encoder takes 8 and 16 bits only; OpenJPH writes > 16-bit HTJ2K
    # that no decoder here (pylibjpeg-openjpeg) reads back.
    if bits_stored > 16 and target not in (uids.J2K_LOSSLESS, uids.J2K):
        raise TranscodeError(f"{bits_stored}-bit pixel data cannot be encoded as {name} (16 bits at most); "
                             "use j2k-lossless or an uncompressed syntax")
    if spp not in (1, 3):
        raise TranscodeError(f"{spp} samples per pixel cannot be encoded as {name}")
    if int(meta["bits_allocated"]) == 1:
        raise TranscodeError(f"1-bit (bit-packed) pixel data cannot be encoded as {name}")


#: SOP classes whose pixel values are segment numbers or labels, not intensities.
_LABEL_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation",
}


def _label_pixels(ds: Dataset, meta: dict[str, Any], pi: str) -> str | None:
    """What makes the pixel values indices or labels (which a lossy codec
    would turn into other colours or other segments), or None."""
    if int(meta["bits_allocated"]) == 1:
        return "1-bit pixel data (a bitmap)"
    if pi == "PALETTE COLOR":
        return "PALETTE COLOR pixel data (indices into a colour table)"
    label = _LABEL_SOP_CLASSES.get(str(ds.get("SOPClassUID", "")))
    if label:
        return f"{label} pixel data (segment labels)"
    return None


def check_lossy_allowed(ds: Dataset, meta: dict[str, Any], pi: str, target: str) -> None:
    """Refuse a lossy ``target`` for pixels that are indices or labels: a
    value moved by a lossy codec is another colour or another segment, not a
    nearby intensity (PS3.5 Table 8.2.4-1 allows PALETTE COLOR only with
    lossless syntaxes). The one check every lossy target goes through."""
    if target in LOSSLESS_TARGETS or target in _UNCOMPRESSED:
        return
    what = _label_pixels(ds, meta, pi)
    if what is None:
        return
    hint = ("use an uncompressed syntax" if int(meta["bits_allocated"]) == 1
            else "use a lossless syntax (jpeg-ls-lossless, j2k-lossless, rle) or an uncompressed one")
    raise TranscodeError(f"{what} cannot be compressed lossily as {_name(target)}; {hint}")


def _encode_frames(arr: np.ndarray, meta: dict[str, Any], target: str, pi: str,
                   options: TranscodeOptions) -> list[bytes]:
    from pydicom.pixels.encoders.base import get_encoder

    plugin = _require(target, "encode")
    bits_stored = int(meta.get("bits_stored", meta["bits_allocated"]))
    signed = int(meta.get("pixel_representation", 0)) == 1
    kwargs: dict[str, Any] = {
        "rows": int(meta["rows"]), "columns": int(meta["columns"]), "number_of_frames": arr.shape[0],
        "samples_per_pixel": int(meta.get("samples_per_pixel", 1)),
        "bits_allocated": int(meta["bits_allocated"]), "bits_stored": bits_stored,
        "pixel_representation": int(signed), "photometric_interpretation": pi,
        "planar_configuration": 0,
        # our plugin's options
        "jpeg_quality": options.quality, "jpeg_predictor": options.predictor,
        "jxl_distance": options.distance, "jxl_effort": options.effort,
    }
    if options.qstep is not None:
        kwargs["htj2k_quantization"] = options.qstep * (2 ** bits_stored) / (2 ** int(meta["bits_allocated"]))
    if target == uids.JPEG_LS_NEAR_LOSSLESS:
        kwargs["jls_error"] = options.near
    if target == uids.HTJ2K:
        kwargs["j2k_cr"] = [options.ratio]
    if target == uids.J2K:
        kwargs["j2k_cr"] = [options.ratio]
        # pylibjpeg-openjpeg honours the ratio but always uses 6 resolution levels,
        # which needs at least 32 rows and columns: smaller images go to imagecodecs.
        if "pylibjpeg" in syntax_info(target).encode and min(kwargs["rows"], kwargs["columns"]) >= 32:
            plugin = "pylibjpeg"
    if target in (uids.J2K_LOSSLESS, uids.J2K) and plugin == "pylibjpeg":
        kwargs["use_mct"] = pi in ("YBR_RCT", "YBR_ICT")
    encoder = get_encoder(target)
    data = arr if arr.shape[0] > 1 else arr[0]
    try:
        return [bytes(f) for f in encoder.iter_encode(data, encoding_plugin=plugin, **kwargs)]
    except TranscodeError:
        raise
    except Exception as exc:
        raise TranscodeError(f"cannot encode as {_name(target)}: {_one_line(exc)}") from None


def _verify(ds: Dataset, target: str, original: np.ndarray, meta: dict[str, Any]) -> None:
    """Decode the new pixel data and compare with the source, masked to Bits Stored."""
    import numpy as np

    from dcmcli.transcode.plugins import stored_bits

    decoded, _ = _decode(ds, target)
    bits = int(meta.get("bits_stored", 0) or 0)
    a = stored_bits(original, bits)
    b = stored_bits(decoded.reshape(original.shape), bits)
    if a.shape != b.shape or not np.array_equal(a, b):
        diff = int(np.count_nonzero(a != b)) if a.shape == b.shape else -1
        raise TranscodeError(f"lossless verification failed for {_name(target)}: "
                             f"{diff} samples differ after decoding; not written")


def _jpeg_frames(ds: Dataset) -> list[bytes]:
    from pydicom.encaps import generate_frames

    n = int(ds.get("NumberOfFrames", 1) or 1)
    return [bytes(f) for f in generate_frames(ds.PixelData, number_of_frames=n)]


def _encapsulate(ds: Dataset, frames: list[bytes]) -> int:
    from pydicom.encaps import encapsulate

    ds.PixelData = encapsulate(frames, has_bot=True)
    elem = ds["PixelData"]
    elem.VR = "OB"
    elem.is_undefined_length = True
    return sum(len(f) for f in frames)


def transcode(ds: Dataset, target: str, options: TranscodeOptions | None = None) -> TranscodeResult:
    """Change ``ds`` in place to transfer syntax ``target``; raise
    ``TranscodeError`` with a one-line reason when it cannot be done."""
    from dcmcli.transcode.plugins import register

    register()
    options = options or TranscodeOptions()
    t0 = time.perf_counter()
    target = str(target)
    source = source_syntax(ds)
    result = TranscodeResult(source, target, "unchanged")
    swapped = False
    if target not in _UNCOMPRESSED:
        info = syntax_info(target)
        if not info.encapsulated:  # pragma: no cover - catalog is consistent
            raise TranscodeError(f"unknown transfer syntax {target}")
    if options.utf8 and convert_to_utf8(ds):
        result.notes.append("text converted to UTF-8")

    has_pixels = "PixelData" in ds
    if not has_pixels:
        if any(k in ds for k in _PIXEL_KEYWORDS) and target not in _UNCOMPRESSED:
            raise TranscodeError(f"float pixel data cannot be encoded as {_name(target)}; "
                                 "only uncompressed syntaxes carry it")
        result.pixels = "none"
        if target not in _UNCOMPRESSED:  # as DCMTK's encoders: written as is, under the new syntax
            result.notes.append("no Pixel Data to compress: only the transfer syntax changed")
    elif source == target or (source in _UNCOMPRESSED and target in _UNCOMPRESSED):
        if (source == uids.EBE) != (target == uids.EBE):
            _swap_binary(ds, pixel_data=True)
            result.pixels = "re-encoded"
            swapped = True
    elif target == uids.JPEGXL_JPEG_RECOMPRESSION:
        _to_jxl_recompression(ds, source, options, result)
    elif source == uids.JPEGXL_JPEG_RECOMPRESSION and target == uids.JPEG_BASELINE:
        _from_jxl_recompression(ds, result)
    else:
        _reencode(ds, source, target, options, result)
    if not swapped and (source == uids.EBE) != (target == uids.EBE):
        _swap_binary(ds, pixel_data=False)  # Pixel Data was rebuilt in the new order
    _set_syntax(ds, target)
    result.seconds = time.perf_counter() - t0
    return result


def _set_syntax(ds: Dataset, target: str) -> None:
    from pydicom.dataset import FileMetaDataset

    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = target


_WORD = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _swap_binary(ds: Dataset, *, pixel_data: bool) -> None:
    """Byte-swap the words of OW/OF/OL/OD/OV values (pydicom holds and writes
    them as raw bytes) when the byte order changes; Pixel Data only if asked."""
    import numpy as np

    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _swap_binary(item, pixel_data=pixel_data)
            continue
        # OW is swapped within each 16-bit word (PS3.5 Table 6.2-1), 8-bit
        # samples in OW Pixel Data too (pydicom and DCMTK read it so); OB is not.
        if elem.tag == 0x7FE00010 and (not pixel_data or elem.VR == "OB"):
            continue
        width = _WORD.get(elem.VR)
        value = elem.value
        if width and isinstance(value, (bytes, bytearray)) and len(value) % width == 0 and value:
            elem.value = np.frombuffer(value, dtype=f"u{width}").byteswap().tobytes()


def _reencode(ds: Dataset, source: str, target: str, options: TranscodeOptions, result: TranscodeResult) -> None:
    arr, meta = _decode(ds, source)
    src_pi = str(meta.get("photometric_interpretation", ds.get("PhotometricInterpretation", "MONOCHROME2")))
    spp = int(meta.get("samples_per_pixel", 1))
    result.frames = int(arr.shape[0])
    result.pixels = "re-encoded"
    if target in _UNCOMPRESSED:
        _set_image_pixel(ds, meta, src_pi)
        native = arr
        if target == uids.EBE and arr.dtype.itemsize > 1:
            native = arr.astype(arr.dtype.newbyteorder(">"))
        ds.PixelData = native.tobytes()
        ds["PixelData"].VR = "OW" if arr.dtype.itemsize > 1 else "OB"
        ds["PixelData"].is_undefined_length = False
        if uids.is_lossy(source):
            ds.LossyImageCompression = "01"  # decompressing keeps the loss on record
        return
    check_lossy_allowed(ds, meta, src_pi, target)
    _check_encodable(arr, meta, target)
    pi = _target_pi(target, src_pi, spp)
    frames = _encode_frames(arr, meta, target, pi, options)
    compressed = _encapsulate(ds, frames)
    _set_image_pixel(ds, meta, pi)
    result.ratio = arr.nbytes / compressed if compressed else None
    if target in LOSSLESS_TARGETS:
        if options.verify:
            _set_syntax(ds, target)
            _verify(ds, target, arr, meta)
            result.verified = True
        if uids.is_lossy(source):
            ds.LossyImageCompression = "01"
    else:
        _mark_lossy(ds, target, result.ratio or 0.0, options, result)


def _to_jxl_recompression(ds: Dataset, source: str, options: TranscodeOptions, result: TranscodeResult) -> None:
    """JPEG XL's lossless repacking of a JPEG Baseline codestream (PS3.5 8.2.15)."""
    if source != uids.JPEG_BASELINE:
        raise TranscodeError(f"{_name(uids.JPEGXL_JPEG_RECOMPRESSION)} repacks JPEG Baseline data; "
                             f"this object is {_name(source)}")
    _require(uids.JPEGXL_JPEG_RECOMPRESSION, "encode")
    import imagecodecs

    jpegs = _jpeg_frames(ds)
    try:
        frames = [bytes(imagecodecs.jpegxl_encode_jpeg(j)) for j in jpegs]
    except Exception as exc:
        raise TranscodeError(f"cannot recompress the JPEG data as JPEG XL: {_one_line(exc)}") from None
    if options.verify:
        for j, x in zip(jpegs, frames):
            restored = bytes(imagecodecs.jpegxl_decode_jpeg(x, numthreads=1))
            if restored not in (j, j[:-1]):  # the fragment may carry a pad byte
                raise TranscodeError("JPEG XL recompression does not give back the JPEG codestream; not written")
        result.verified = True
    compressed = _encapsulate(ds, frames)
    result.ratio = sum(len(j) for j in jpegs) / compressed if compressed else None
    result.frames = len(frames)
    result.pixels = "re-encoded"
    result.notes.append("JPEG codestream repacked losslessly; pixels unchanged")


def _from_jxl_recompression(ds: Dataset, result: TranscodeResult) -> None:
    """Give back the original JPEG Baseline codestream of a recompressed file."""
    _require(uids.JPEGXL_JPEG_RECOMPRESSION, "decode")
    import imagecodecs

    try:
        frames = [bytes(imagecodecs.jpegxl_decode_jpeg(x, numthreads=1)) for x in _jpeg_frames(ds)]
    except Exception as exc:
        raise TranscodeError(f"cannot restore the JPEG codestream: {_one_line(exc)}") from None
    _encapsulate(ds, frames)
    result.frames = len(frames)
    result.pixels = "re-encoded"
    result.notes.append("original JPEG codestream restored from JPEG XL")
