"""The film as the printer lays it out, as a PNG (printscu --preview).

Each film is a canvas with the film size's proportions (LANDSCAPE turned),
divided into the layout's boxes; each image (the very array its image box
N-SET carries, turned over for REVERSE polarity) is placed in the centre of
its box, each pixel repeated (``zoom`` times, an integer, as REPLICATE
magnification does) to fill the box as far as it goes; the film around the images has the border density, boxes without
an image the empty-image density (BLACK, WHITE, or hundredths of optical
density between the min and max density). The scale is the smallest at which
every image fits its box. PNG is written by imagecodecs (a dependency
already, for the codecs): no imaging library is needed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from dcmcli.errors import OutputError
from dcmcli.net.services.print.image import PreparedImage
from dcmcli.net.services.print.job import FilmOptions, Layout
from dcmcli.records import dataclass

if TYPE_CHECKING:
    import numpy as np

GAP = 4  # pixels of border kept around each image inside its box
_NAMED_SIZES = {"A4": (210.0, 297.0), "A3": (297.0, 420.0)}


def film_proportions(film_size: str | None, orientation: str | None) -> tuple[float, float]:
    """(width, height) of the film in any unit: 14INX17IN -> (14, 17)."""
    w, h = 14.0, 17.0
    if film_size:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(IN|CM|MM)X(\d+(?:\.\d+)?)(IN|CM|MM)", film_size.upper())
        if m:
            w, h = float(m.group(1)), float(m.group(3))
        elif film_size.upper() in _NAMED_SIZES:
            w, h = _NAMED_SIZES[film_size.upper()]
    if (orientation or "PORTRAIT").upper() == "LANDSCAPE":
        w, h = max(w, h), min(w, h)
    return w, h


def density_value(density: str | None, default: str, top: int, film: FilmOptions) -> int:
    """A density (BLACK, WHITE, hundredths of OD) as a P-value (0 black .. top white)."""
    d = (density or default).upper()
    if d == "BLACK":
        return 0
    if d == "WHITE":
        return top
    try:
        od = float(d)
    except ValueError:
        return 0
    lo, hi = float(film.min_density or 20), float(film.max_density or 300)
    if hi <= lo:
        return 0
    return round(top * (1 - min(1.0, max(0.0, (od - lo) / (hi - lo)))))


@dataclass
class Placed:
    position: int
    x: int
    y: int
    width: int
    height: int
    image: PreparedImage | None
    zoom: int = 1


def compose(film: list[PreparedImage], layout: Layout, options: FilmOptions, polarity: str | None,
            color: bool) -> tuple[np.ndarray, list[Placed]]:
    """One film's pixels (P-values in the images' own depth) and where each box's image went."""
    import numpy as np

    fw, fh = film_proportions(options.film_size, options.orientation)
    cells = layout.cells()
    scale = 1.0
    for (_, _, wf, hf), image in zip(cells, film):
        scale = max(scale, (image.columns + 2 * GAP) / (wf * fw), (image.rows + 2 * GAP) / (hf * fh))
    if not film:
        scale = 64 / min(fw * cells[0][2], fh * cells[0][3])
    width, height = math.ceil(fw * scale), math.ceil(fh * scale)
    bits = max((i.bits for i in film), default=8)
    top = 2 ** bits - 1
    canvas = np.full((height, width, 3) if color else (height, width),
                     density_value(options.border_density, "BLACK", top, options),
                     dtype=np.uint8 if bits == 8 else np.uint16)
    placed: list[Placed] = []
    for position, (xf, yf, wf, hf) in enumerate(cells, 1):
        x0, y0 = round(xf * width), round(yf * height)
        x1, y1 = round((xf + wf) * width), round((yf + hf) * height)
        image = film[position - 1] if position <= len(film) else None
        if image is None:
            canvas[y0 + GAP:y1 - GAP, x0 + GAP:x1 - GAP] = density_value(options.empty_density, "WHITE", top, options)
            placed.append(Placed(position, x0 + GAP, y0 + GAP, max(0, x1 - x0 - 2 * GAP), max(0, y1 - y0 - 2 * GAP),
                                 None))
            continue
        pixels = image.pixels
        if (polarity or "NORMAL").upper() == "REVERSE":
            pixels = (2 ** image.bits - 1) - pixels
        zoom = max(1, min((x1 - x0 - 2 * GAP) // image.columns, (y1 - y0 - 2 * GAP) // image.rows))
        if zoom > 1:
            pixels = pixels.repeat(zoom, axis=0).repeat(zoom, axis=1)
        w, h = image.columns * zoom, image.rows * zoom
        x, y = x0 + (x1 - x0 - w) // 2, y0 + (y1 - y0 - h) // 2
        canvas[y:y + h, x:x + w] = pixels
        placed.append(Placed(position, x, y, w, h, image, zoom))
    return canvas, placed


def preview_paths(path: Path, films: int) -> list[Path]:
    """FILE.png for the first film, FILE-2.png ... for the next ones."""
    return [path if i == 0 else path.with_name(f"{path.stem}-{i + 1}{path.suffix or '.png'}") for i in range(films)]


def write_png(path: Path, canvas: np.ndarray, bits: int) -> None:
    """8-bit P-values as they are; 12-bit ones in a 16-bit PNG (bits replicated: v << 4 | v >> 8)."""
    import imagecodecs

    data = canvas if bits == 8 else ((canvas.astype("uint32") << 4) | (canvas.astype("uint32") >> 8)).astype("uint16")
    try:
        path.write_bytes(imagecodecs.png_encode(data))
    except OSError as exc:
        raise OutputError(f"cannot write the preview {str(path)!r}: {exc.strerror or exc}",
                          "check the path and its folder's permissions") from None


def write_preview(path: Path, films: list[list[PreparedImage]], layout: Layout, options: FilmOptions,
                  polarity: str | None, color: bool) -> list[dict[str, object]]:
    """One PNG per film; what each holds (for the ``preview`` event)."""
    out = []
    for file, film in zip(preview_paths(path, len(films)), films):
        canvas, placed = compose(film, layout, options, polarity, color)
        bits = max((i.bits for i in film), default=8)
        write_png(file, canvas, bits)
        out.append({"path": str(file), "width": int(canvas.shape[1]), "height": int(canvas.shape[0]),
                    "bits": bits, "boxes": [{"position": p.position, "x": p.x, "y": p.y, "width": p.width,
                                             "height": p.height, "zoom": p.zoom,
                                             "source": p.image.source if p.image else None,
                                             "frame": p.image.frame if p.image else None} for p in placed]})
    return out
