"""Image preparation for a film: any decodable DICOM image to the pixels an
image box carries (PS3.4 H.4.3, PS3.3 C.13.5).

Grayscale: Modality LUT (rescale), VOI (``--window``, the file's VOI LUT or
first window, else the pixel range), MONOCHROME1 and an INVERSE Presentation
LUT Shape turned over, to MONOCHROME2 P-values of 8 or 12 bits. Colour:
RGB (YBR decoded to RGB by the transcoding core, palettes looked up), 8 bits,
sent colour-by-plane (Planar Configuration 1). A colour image for a
grayscale printer becomes its luminance. ``max_size`` resamples (bilinear) an
image larger than the printer takes. The preview draws these same arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from dcmcli.errors import ExitCode, InputError
from dcmcli.records import dataclass

if TYPE_CHECKING:
    import numpy as np
    from pydicom.dataset import Dataset


@dataclass(frozen=True)
class Preparation:
    """How every image of a job is prepared."""

    color: bool = False  # RGB for a colour image box (else MONOCHROME2 P-values)
    bits: int = 8  # grayscale P-values: 8 or 12
    window: tuple[float, float] | None = None  # (centre, width) for every image
    auto_window: bool = False  # the pixel range, whatever the file says
    max_size: int | None = None  # largest rows/columns sent


@dataclass
class PreparedImage:
    """One frame as an image box carries it: ``pixels`` (rows, columns) of
    P-values (uint8, or uint16 holding 12 bits), or (rows, columns, 3) RGB uint8."""

    source: str
    frame: int  # 1-based
    pixels: np.ndarray
    color: bool
    bits: int
    notes: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def columns(self) -> int:
        return int(self.pixels.shape[1])

    def image_item(self) -> Dataset:
        """The item of the Basic Grayscale (or Color) Image Sequence."""
        from pydicom.dataset import Dataset

        item = Dataset()
        item.SamplesPerPixel = 3 if self.color else 1
        item.PhotometricInterpretation = "RGB" if self.color else "MONOCHROME2"
        if self.color:
            item.PlanarConfiguration = 1
        item.Rows, item.Columns = self.rows, self.columns
        item.PixelAspectRatio = [1, 1]
        item.BitsAllocated = 8 if self.bits == 8 else 16
        item.BitsStored = self.bits
        item.HighBit = self.bits - 1
        item.PixelRepresentation = 0
        if self.color:
            data = self.pixels.transpose(2, 0, 1).tobytes()  # R plane, G plane, B plane
        else:
            data = self.pixels.astype("<u2" if self.bits > 8 else "u1").tobytes()
        if len(data) % 2:
            data += b"\x00"
        item.add_new(0x7FE00010, "OB" if self.bits == 8 else "OW", data)
        return item


class ImageSkipped(Exception):
    """An input that is not an image that can be printed; ``exit_code`` from the shared table."""

    def __init__(self, path: str, why: str, exit_code: ExitCode) -> None:
        super().__init__(f"{path}: {why}")
        self.path, self.why, self.exit_code = path, why, exit_code


def read_images(paths: Sequence[str], prep: Preparation,
                on_skip: Callable[[ImageSkipped], None]) -> Iterator[PreparedImage]:
    """Every frame of every image file found, prepared, in the order given
    (folders sorted by name). What is not an image, or cannot be decoded,
    goes to ``on_skip`` (22 for a file that is not an image, 24 for pixels
    that cannot be decoded)."""
    from dcmcli.dicomfile import collect_inputs

    inputs = collect_inputs(paths, action="printed")
    for s in inputs.unreadable + inputs.skipped:
        on_skip(ImageSkipped(s.path, s.reason, s.exit_code if s.exit_code != ExitCode.OK else ExitCode.OK))
    if not inputs.files and not inputs.unreadable + inputs.skipped:
        raise InputError("no input files found", "name image files or folders holding them",
                         exit_code=ExitCode.NO_INPUT_FILES)
    for info in inputs.files:
        path = str(info.path)
        if not info.has_pixels:
            on_skip(ImageSkipped(path, "not an image (no Pixel Data): nothing to print", ExitCode.INVALID_INPUT))
            continue
        try:
            frames = list(prepare_file(path, prep))
        except ImageSkipped as exc:
            on_skip(exc)
            continue
        yield from frames


def prepare_file(path: str, prep: Preparation) -> Iterator[PreparedImage]:
    from pydicom import dcmread

    from dcmcli.dataset import quiet_pydicom
    from dcmcli.transcode.core import TranscodeError, decode_pixels

    quiet_pydicom()
    try:
        ds = dcmread(path)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types
        raise ImageSkipped(path, f"cannot be read ({exc})", ExitCode.INVALID_INPUT) from None
    if "PixelData" not in ds:
        raise ImageSkipped(path, "not an image (no Pixel Data): nothing to print", ExitCode.INVALID_INPUT)
    try:
        arr, meta = decode_pixels(ds)
    except TranscodeError as exc:
        raise ImageSkipped(path, f"cannot print it: {exc}", ExitCode.CANNOT_CONVERT) from None
    except Exception as exc:  # noqa: BLE001 - damaged pixel data
        raise ImageSkipped(path, f"cannot print it: its pixel data cannot be decoded ({exc})",
                           ExitCode.CANNOT_CONVERT) from None
    for i in range(arr.shape[0]):
        yield prepare_frame(ds, arr[i], meta, prep, path, i + 1)


def is_color(path: str) -> bool:
    """Whether a file's image is colour (its header only)."""
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True)
    except Exception:  # noqa: BLE001
        return False
    return int(ds.get("SamplesPerPixel", 1) or 1) > 1 or str(ds.get("PhotometricInterpretation", "")) == "PALETTE COLOR"


def prepare_frame(ds: Dataset, frame: np.ndarray, meta: dict[str, Any], prep: Preparation, path: str = "",
                  number: int = 1) -> PreparedImage:
    """One decoded frame to the pixels of its image box."""
    import numpy as np

    pi = str(meta.get("photometric_interpretation", ds.get("PhotometricInterpretation", "MONOCHROME2")))
    notes: list[str] = []
    if pi == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        frame = apply_color_lut(frame, ds)
        pi = "RGB"
    if frame.ndim == 3:  # colour: RGB after the core's decoding (YBR converted)
        rgb = frame.astype(np.float64)
        top = float(2 ** int(meta.get("bits_stored", ds.get("BitsStored", 8)) or 8) - 1)
        if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
            top = 65535.0 if frame.dtype.itemsize > 1 and frame.max() > 255 else 255.0
        unit = np.clip(rgb / top, 0.0, 1.0)
        if prep.color:
            pixels = np.rint(unit * 255).astype(np.uint8)
            return _fit(PreparedImage(path, number, pixels, True, 8, tuple(notes)), prep)
        gray = unit[..., 0] * 0.299 + unit[..., 1] * 0.587 + unit[..., 2] * 0.114
        notes.append("colour image printed as its luminance (grayscale printer)")
        return _fit(_gray(gray, prep, path, number, notes), prep)
    values = frame.astype(np.float64)
    slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    if "ModalityLUTSequence" in ds:
        from pydicom.pixels import apply_modality_lut

        values = apply_modality_lut(frame, ds).astype(np.float64)
    elif slope != 1 or intercept != 0:
        values = values * slope + intercept
    unit = _voi(values, ds, frame, prep, notes)
    if pi == "MONOCHROME1":
        unit = 1.0 - unit
    if str(ds.get("PresentationLUTShape", "")).upper() == "INVERSE":
        unit = 1.0 - unit
    image = _gray(unit, prep, path, number, notes)
    if prep.color:  # a grayscale image in a colour film: R = G = B
        rgb = np.repeat(((image.pixels.astype(np.uint32) * 255) // (2 ** image.bits - 1)).astype(np.uint8)[..., None],
                        3, axis=2)
        image = PreparedImage(path, number, rgb, True, 8, image.notes)
    return _fit(image, prep)


def _voi(values: np.ndarray, ds: Dataset, raw: np.ndarray, prep: Preparation, notes: list[str]) -> np.ndarray:
    """Values of interest to [0, 1]."""
    import numpy as np

    if prep.window is not None and not prep.auto_window:
        return window_unit(values, *prep.window)
    if not prep.auto_window:
        if "VOILUTSequence" in ds:
            from pydicom.pixels import apply_voi

            item = ds.VOILUTSequence[0]
            out = apply_voi(raw, ds, index=0).astype(np.float64)
            depth = int(item.LUTDescriptor[2]) if "LUTDescriptor" in item else 16
            return np.clip(out / float(2 ** depth - 1), 0.0, 1.0)
        centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
        if centre is not None and width is not None:
            c = float(centre[0] if _multi(centre) else centre)
            w = float(width[0] if _multi(width) else width)
            if w >= 1:
                return window_unit(values, c, w)
    lo, hi = float(values.min()), float(values.max())
    notes.append(f"window from the pixel range {lo:g}..{hi:g}")
    if hi <= lo:
        return np.zeros(values.shape)
    return (values - lo) / (hi - lo)


def _multi(value: object) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


def window_unit(values: np.ndarray, centre: float, width: float) -> np.ndarray:
    """The linear window of PS3.3 C.11.2.1.2.1, to [0, 1]."""
    import numpy as np

    if width <= 1:
        return (values > centre - 0.5).astype(np.float64)
    return np.clip((values - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _gray(unit: np.ndarray, prep: Preparation, path: str, number: int, notes: list[str]) -> PreparedImage:
    import numpy as np

    top = 2 ** prep.bits - 1
    pixels = np.rint(np.clip(unit, 0.0, 1.0) * top).astype(np.uint8 if prep.bits == 8 else np.uint16)
    return PreparedImage(path, number, pixels, False, prep.bits, tuple(notes))


def to_gray(image: PreparedImage, bits: int) -> PreparedImage:
    """A prepared colour image as its luminance, for a grayscale printer (grayscale images as they are)."""
    if not image.color:
        return image
    unit = (image.pixels[..., 0] * 0.299 + image.pixels[..., 1] * 0.587 + image.pixels[..., 2] * 0.114) / 255.0
    notes = [*image.notes, "colour image printed as its luminance (grayscale printer)"]
    return _gray(unit, Preparation(False, bits), image.source, image.frame, notes)


def _fit(image: PreparedImage, prep: Preparation) -> PreparedImage:
    """Resampled (bilinear) to at most ``max_size`` rows and columns."""
    if not prep.max_size or max(image.rows, image.columns) <= prep.max_size:
        return image
    scale = prep.max_size / max(image.rows, image.columns)
    rows, cols = max(1, round(image.rows * scale)), max(1, round(image.columns * scale))
    pixels = resample(image.pixels, rows, cols)
    note = f"resampled from {image.columns}x{image.rows} to {cols}x{rows} (--max-size)"
    return PreparedImage(image.source, image.frame, pixels, image.color, image.bits, (*image.notes, note))


def resample(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Bilinear resampling of a (rows, columns[, samples]) array, same dtype."""
    import numpy as np

    ys = np.linspace(0, a.shape[0] - 1, rows)
    xs = np.linspace(0, a.shape[1] - 1, cols)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, a.shape[0] - 1), np.minimum(x0 + 1, a.shape[1] - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    f = a.astype(np.float64)
    if f.ndim == 3:
        wy, wx = wy[..., None], wx[..., None]
    top = f[y0][:, x0] * (1 - wx) + f[y0][:, x1] * wx
    bottom = f[y1][:, x0] * (1 - wx) + f[y1][:, x1] * wx
    return np.rint(top * (1 - wy) + bottom * wy).astype(a.dtype)
