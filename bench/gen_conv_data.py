#!/usr/bin/env python
"""Generate the input images for bench_conv.py.

``bench/data/conv/in/``: by default 100 CT images (CT Image Storage, Explicit
VR Little Endian, valid file meta, one study and one series) of 512x512,
16 bits allocated, 12 bits stored, high bit 11, PixelRepresentation 0,
RescaleIntercept -1024 (stored value = HU + 1024).

The content is a smooth synthetic abdomen phantom, not random noise (the speed
and the ratio of lossless compression depend on the content): air around the
body (-1000 HU), an elliptical body with a subcutaneous fat layer, liver,
spleen, kidneys, aorta, a vertebral body with its cortex, a few bowel gas
pockets and a ring of bone (ribs). Edges are soft (a logistic profile, like
the partial-volume blur of a real scanner), the organs change size and place
slowly along the series, and every image has spatially correlated Gaussian
noise (about 10 HU in tissue, 3 HU in air), so every file differs.

A directory that already holds the requested number of ``*.dcm`` files is left
alone; otherwise it is emptied and regenerated. ``bench/data/`` is git-ignored.

Usage::

    python bench/gen_conv_data.py                  # 100 images
    python bench/gen_conv_data.py --count 20       # a quick run
    python bench/gen_conv_data.py --force          # regenerate

bench_conv.py calls :func:`generate` itself when its input is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_data import write_series

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE / "data" / "conv" / "in"
ROWS = COLS = 512
SET_NAME = "conv"
INTERCEPT = -1024  # stored value = HU - INTERCEPT
STORED_MAX = 4095  # 12 bits stored


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float,
             edge: float = 1.2) -> np.ndarray:
    """A soft ellipse mask in [0, 1]: 1 inside, 0 outside, with a logistic edge
    about ``edge`` pixels wide."""
    r = np.hypot((y - cy) / ry, (x - cx) / rx)
    # (1 - r) * min(ry, rx) is about the distance to the edge in pixels.
    t = np.clip((1.0 - r) * (min(ry, rx) / edge), -60.0, 60.0)
    return 1.0 / (1.0 + np.exp(-t))


def phantom_hu(z: float) -> np.ndarray:
    """The noiseless slice at position z in [0, 1] along the series, in HU."""
    y, x = np.mgrid[0:ROWS, 0:COLS].astype(np.float32)
    cy, cx = ROWS / 2 + 10, COLS / 2
    wave = np.sin(np.pi * z)  # organs grow then shrink along the series
    img = np.full((ROWS, COLS), -1000.0, dtype=np.float32)

    def paint(mask: np.ndarray, hu: float) -> None:
        nonlocal img
        img = img + mask * (hu - img)

    by, bx = 150 + 8 * wave, 215 + 10 * wave  # body semi-axes
    paint(_ellipse(y, x, cy, cx, by, bx), -100)  # subcutaneous fat
    paint(_ellipse(y, x, cy, cx, by - 14, bx - 16), 40)  # muscle / soft tissue
    # Ribs: a ring of bone with gaps between the ribs.
    ring = _ellipse(y, x, cy, cx, by - 22, bx - 26) * (1 - _ellipse(y, x, cy, cx, by - 32, bx - 36))
    angle = np.arctan2(y - cy, x - cx)
    ribs = ring * (0.5 + 0.5 * np.tanh(4 * np.sin(9 * angle + 3 * z)))
    behind_spine = np.exp(-(((angle - np.pi / 2) / 0.35) ** 2))  # no ribs across the spine
    paint(ribs * (1 - behind_spine), 700)
    paint(_ellipse(y, x, cy - 10, cx - 80, 85 + 25 * wave, 95 + 20 * wave), 60)  # liver
    paint(_ellipse(y, x, cy - 40, cx + 120, 45 + 10 * wave, 35), 50)  # spleen
    for side in (-1, 1):  # kidneys, cortex and medulla
        ky, kx = cy + 55, cx + side * 85
        paint(_ellipse(y, x, ky, kx, 38 * (0.6 + 0.4 * wave), 24), 150)
        paint(_ellipse(y, x, ky, kx + side * 6, 18 * (0.6 + 0.4 * wave), 10), 35)
    paint(_ellipse(y, x, cy + 30, cx + 22, 13, 13), 220)  # aorta with contrast
    paint(_ellipse(y, x, cy + 30, cx - 22, 15, 12), 120)  # vena cava
    vy = cy + 72  # vertebral body: cortex then trabecular bone; spinal canal behind it
    paint(_ellipse(y, x, vy, cx, 34, 38), 1100)
    paint(_ellipse(y, x, vy, cx, 29, 33), 280)
    paint(_ellipse(y, x, vy + 47, cx, 16, 18), 900)
    paint(_ellipse(y, x, vy + 47, cx, 11, 12), 20)
    for gy, gx, gr in ((cy - 60, cx + 30, 14), (cy - 20, cx + 60, 9), (cy + 10, cx - 10, 7)):
        r = gr * (0.5 + 0.5 * abs(np.cos(3 * np.pi * z + gx)))
        paint(_ellipse(y, x, gy, gx, r, r * 1.4), -900)  # bowel gas
    return img


def make_pixels(rng: np.random.Generator, hu: np.ndarray) -> np.ndarray:
    """Add spatially correlated noise (about 10 HU in tissue, 3 HU in air) and
    store as 12-bit unsigned values (HU + 1024)."""
    white = rng.standard_normal(hu.shape).astype(np.float32)
    # A 2x2 box filter: noise grains of about two pixels, like CT noise.
    noise = (white + np.roll(white, 1, 0) + np.roll(white, 1, 1) + np.roll(white, (1, 1), (0, 1))) / 2
    sigma = np.where(hu < -800, 3.0, 10.0).astype(np.float32)
    stored = np.rint(hu + sigma * noise) - INTERCEPT
    return np.clip(stored, 0, STORED_MAX).astype(np.uint16)


def generate(directory: Path = DEFAULT_DIR, count: int = 100, force: bool = False,
             seed: int = 20240602, quiet: bool = False) -> None:
    """Write ``count`` images to ``directory`` unless it already holds exactly
    that many ``*.dcm`` files (and ``force`` is false)."""
    size, seconds = write_series(directory, count, ROWS, COLS, SET_NAME, "ct",
                                 lambda rng, i: make_pixels(rng, phantom_hu(i / max(count - 1, 1))),
                                 seed=seed, force=force)
    if seconds is None:
        if not quiet:
            print(f"{count} files already in {directory} ({size / 1e6:.1f} MB), skipped")
        return
    print(f"wrote {count} CT images of {ROWS}x{COLS} (16 bits allocated, 12 stored) to "
          f"{directory} ({size / 1e6:.1f} MB) in {seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100, metavar="N", help="number of images (default 100)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DIR, metavar="DIR",
                    help=f"output directory (default {DEFAULT_DIR})")
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    ap.add_argument("--seed", type=int, default=20240602, help="random seed")
    args = ap.parse_args(argv)
    if args.count < 1:
        ap.error("--count must be >= 1")
    generate(args.data, args.count, args.force, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
