#!/usr/bin/env python
"""Generate the benchmark data sets for bench_store.py.

Two data sets of synthetic CT images (CT Image Storage, Explicit VR Little
Endian, valid file meta, one study and one series per set, random-ish 16-bit
pixel data):

* ``bench/data/large/``: 500 images of 512x512x16 bit (about 0.5 MB each,
  about 250 MB in all);
* ``bench/data/small/``: 2000 images of 140x140x16 bit (about 40 KB each).

A set whose directory already holds the requested number of ``*.dcm`` files is
left alone; otherwise the directory is emptied and regenerated. ``bench/data/``
is git-ignored.

Usage::

    python bench/gen_data.py                       # full size
    python bench/gen_data.py --large 50 --small 200  # quick run
    python bench/gen_data.py && python bench/bench_store.py

Use ``--force`` to regenerate even when the counts match, and ``--data DIR``
to write somewhere else (pass the same ``--data`` to bench_store.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import datetime
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data"

# name -> (rows, columns); counts come from the command line.
SETS = {"large": (512, 512), "small": (140, 140)}


def make_pixels(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """A CT-like slice: a fixed smooth phantom plus per-image noise (so that
    every file differs and nothing compresses to nothing)."""
    noise = rng.integers(-60, 60, size=base.shape, dtype=np.int16)
    return np.clip(base + noise, 0, 4095).astype(np.uint16)


def phantom(rows: int, cols: int) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:cols]
    cy, cx = rows / 2, cols / 2
    r = np.hypot((y - cy) / (rows / 2), (x - cx) / (cols / 2))
    body = np.where(r < 0.85, 1040, 24).astype(np.int16)  # water ~ 1024 + offset, air ~ 0
    bone = np.where((r > 0.70) & (r < 0.80), 800, 0).astype(np.int16)
    return body + bone


def make_dataset(path: Path, index: int, rows: int, cols: int, pixels: np.ndarray,
                 study_uid: str, series_uid: str, frame_uid: str, set_name: str) -> None:
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "DCMCLI_BENCH"

    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    now = datetime.datetime.now()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = now.strftime("%Y%m%d")
    ds.SeriesDate = ds.StudyDate
    ds.ContentDate = ds.StudyDate
    ds.StudyTime = now.strftime("%H%M%S")
    ds.SeriesTime = ds.StudyTime
    ds.ContentTime = ds.StudyTime
    ds.AccessionNumber = "BENCH" + set_name.upper()
    ds.Modality = "CT"
    ds.Manufacturer = "dcmcli bench"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = f"dcmcli benchmark ({set_name})"
    ds.SeriesDescription = f"{rows}x{cols} synthetic"
    ds.PatientName = f"Bench^{set_name.capitalize()}"
    ds.PatientID = f"BENCH-{set_name.upper()}"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-125.0, -125.0, float(index)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = float(index)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [0.488, 0.488]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OW"
    ds.save_as(path, enforce_file_format=True)


def existing_count(directory: Path) -> int:
    return sum(1 for _ in directory.glob("*.dcm")) if directory.is_dir() else 0


def write_series(directory: Path, count: int, rows: int, cols: int, set_name: str, stem: str,
                 pixels_for: Callable[[np.random.Generator, int], np.ndarray], *, seed: int,
                 force: bool) -> tuple[int, float | None]:
    """Write one series of ``count`` CT images (``stem_NNN.dcm``, pixels from
    ``pixels_for(rng, index)``) into an emptied ``directory``, unless it holds
    exactly that many ``*.dcm`` files already and ``force`` is false.
    Returns the bytes in the directory and the seconds taken (None: skipped)."""
    if existing_count(directory) == count and not force:
        return sum(p.stat().st_size for p in directory.glob("*.dcm")), None
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    t0 = time.perf_counter()
    width = max(3, len(str(count)))
    for i in range(count):
        make_dataset(directory / f"{stem}_{i:0{width}d}.dcm", i, rows, cols, pixels_for(rng, i),
                     study_uid, series_uid, frame_uid, set_name)
    return sum(p.stat().st_size for p in directory.glob("*.dcm")), time.perf_counter() - t0


def generate(directory: Path, name: str, count: int, force: bool, seed: int) -> None:
    rows, cols = SETS[name]
    base = phantom(rows, cols)
    size, seconds = write_series(directory, count, rows, cols, name, name,
                                 lambda rng, i: make_pixels(rng, base), seed=seed, force=force)
    if seconds is None:
        print(f"{name}: {count} files already in {directory} ({size / 1e6:.1f} MB), skipped")
        return
    print(f"{name}: wrote {count} files of {rows}x{cols}x16 bit to {directory} "
          f"({size / 1e6:.1f} MB, {size / count / 1e3:.1f} KB each) in {seconds:.1f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--large", type=int, default=500, metavar="N",
                    help="number of 512x512 images (default 500; 0 skips the set)")
    ap.add_argument("--small", type=int, default=2000, metavar="N",
                    help="number of 140x140 images (default 2000; 0 skips the set)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                    help=f"data directory (default {DEFAULT_DATA})")
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    ap.add_argument("--seed", type=int, default=20240601, help="random seed")
    args = ap.parse_args(argv)
    if args.large < 0 or args.small < 0:
        ap.error("counts must be >= 0")
    for offset, (name, count) in enumerate((("large", args.large), ("small", args.small))):
        if count:
            generate(args.data / name, name, count, args.force, args.seed + offset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
