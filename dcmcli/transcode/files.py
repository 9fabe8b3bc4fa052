"""Files in and out of the transcoding core: reading, writing (atomically,
with dcmcli's file meta), converting one file, and converting many in
parallel processes. Also what the network senders need: an object loaded and
transcoded for a peer, and a data set encoded without file meta.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcmcli import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dcmcli.dicomfile import FileInfo
from dcmcli.errors import ExitCode, UsageError
from dcmcli import uids
from dcmcli.records import dataclass
from dcmcli.transcode.core import TranscodeError, TranscodeOptions, transcode

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


# -- the network senders' needs ------------------------------------------------

def load_as(path: Path, target: str, options: TranscodeOptions | None = None) -> Dataset:
    """Read ``path`` and transcode it to ``target`` (raises ``TranscodeError``).

    Decompression never adds loss: a lossy-compressed file stays marked as
    lossy. Colour data decoded from YCbCr becomes RGB."""
    from pydicom import dcmread

    ds = dcmread(path)
    transcode(ds, target, options or TranscodeOptions())
    return ds


def encode_dataset(ds: Dataset, *, implicit: bool) -> bytes | None:
    """The data set (no file meta) encoded little endian, implicit or explicit VR."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buf = DicomBytesIO()
    buf.is_little_endian = True
    buf.is_implicit_VR = implicit
    try:
        write_dataset(buf, ds)
    except Exception:  # pydicom cannot encode this data set this way
        return None
    return buf.getvalue()


# -- writing --------------------------------------------------------------------

class OutputError(Exception):
    """The output file cannot be written."""


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new, hidden file next to ``path``, opened for writing. Its mode is
    0666 less the umask, as for any file open() creates (tempfile.mkstemp's
    are 0600 whatever the umask, and os.replace keeps that)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {path}")


def write_file(ds: Dataset, path: Path, *, meta: bool = True) -> int:
    """Write ``ds`` to ``path`` through a temporary file in the same directory
    (no partial file is ever left under the final name), with the mode the
    umask gives. With ``meta``, a Part 10 file whose file meta names dcmcli;
    without, the bare data set. Returns the size written."""
    from pydicom.filewriter import dcmwrite

    ts = str(ds.file_meta.TransferSyntaxUID)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path)
    except OSError as exc:
        raise OutputError(f"cannot write {path.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fp:
            if meta:
                fm = ds.file_meta
                fm.MediaStorageSOPClassUID = ds.SOPClassUID
                fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                fm.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
                fm.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
                ds.preamble = b"\0" * 128
                dcmwrite(fp, ds, enforce_file_format=True)
            else:
                saved, preamble = ds.file_meta, ds.preamble
                del ds.file_meta
                ds.preamble = None  # no preamble, no "DICM": the bare data set
                try:
                    dcmwrite(fp, ds, implicit_vr=ts == uids.ILE, little_endian=ts != uids.EBE)
                finally:
                    ds.file_meta, ds.preamble = saved, preamble
            size = fp.tell()
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _unlink(tmp)
        raise
    return size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


# -- converting -------------------------------------------------------------------

@dataclass
class ConvertJob:
    source: Path
    destination: Path
    target: str  # transfer syntax UID


def plan_jobs(inputs: Sequence[str], output: str, files: Sequence[FileInfo], target: str | None, *,
              overwrite_input: bool = False) -> list[ConvertJob]:
    """What to write where: one input file to the output file, or every file
    below the output directory with each input directory's tree mirrored
    (files named directly go to its top). Without ``target`` each file keeps
    its own syntax. Raises ``UsageError`` for an output that would replace an
    input (unless ``overwrite_input``) or receive two files."""
    out = Path(output)
    single = (len(inputs) == 1 and Path(inputs[0]).is_file() and not out.is_dir()
              and not output.endswith(os.sep))
    if not single and out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file, but several inputs need an output directory",
                         "name a directory as the last argument")
    roots = [Path(a) for a in inputs if Path(a).is_dir()]
    jobs: list[ConvertJob] = []
    for f in files:
        if single:
            dest = out
        else:
            root = next((r for r in roots if f.path.is_relative_to(r)), None)
            dest = out / (f.path.relative_to(root) if root is not None else Path(f.path.name))
        jobs.append(ConvertJob(f.path, dest, target or f.transfer_syntax))
    if not overwrite_input:
        sources = {j.source.resolve() for j in jobs}
        clash = next((j.destination for j in jobs if j.destination.resolve() in sources), None)
        if clash is not None:
            raise UsageError(f"the output {clash} would replace an input file",
                             "choose another output, or give --overwrite-input")
    seen: dict[Path, Path] = {}
    for j in jobs:
        if j.destination in seen:
            raise UsageError(f"{j.source} and {seen[j.destination]} would both be written to {j.destination}",
                             "convert them into different directories")
        seen[j.destination] = j.source
    return jobs


def convert_file(job: ConvertJob, options: TranscodeOptions, meta: bool = True) -> dict[str, Any]:
    """Convert one file; never raises for a per-file problem. The result is a
    plain dict (it crosses process boundaries): path, output, outcome
    (converted | failed), message, exit_code and the transcode details."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    t0 = time.perf_counter()
    base: dict[str, Any] = {"path": str(job.source), "output": str(job.destination)}

    def failed(code: ExitCode, message: str) -> dict[str, Any]:
        # the fields of a converted result, empty: one schema for the event
        return {**base, "outcome": "failed", "message": message, "exit_code": int(code), "bytes": None,
                "seconds": round(time.perf_counter() - t0, 6), "source_transfer_syntax": None,
                "transfer_syntax": job.target, "pixels": None, "lossy": None, "ratio": None,
                "new_sop_instance_uid": None, "verified": None, "frames": None, "notes": []}

    try:
        ds = dcmread(job.source)
        if "PixelData" in ds:
            ds.PixelData  # noqa: B018 - load it now, so a truncated file fails here
    except InvalidDicomError as exc:
        return failed(ExitCode.INVALID_INPUT, f"not a DICOM file: {exc}")
    except OSError as exc:
        return failed(ExitCode.INPUT_UNREADABLE, f"cannot read the file: {exc.strerror or exc}")
    except Exception as exc:  # pydicom raises many types for damaged files
        return failed(ExitCode.INVALID_INPUT, f"cannot parse the file (truncated or damaged?): {exc}")
    target = job.target
    try:
        result = transcode(ds, target, options)
    except TranscodeError as exc:
        return failed(ExitCode.CANNOT_CONVERT, str(exc))
    except Exception as exc:  # a bug: this file fails, the others go on
        return failed(ExitCode.INTERNAL, f"internal error while converting: {type(exc).__name__}: {exc}; "
                                         "please report it")
    # PS3.10: Source Application Entity Title is the AE that wrote the file.
    # dcmconv writes it now, under its own implementation UID, and is no AE.
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is not None and "SourceApplicationEntityTitle" in file_meta:
        del file_meta.SourceApplicationEntityTitle
    try:
        size = write_file(ds, job.destination, meta=meta)
    except OutputError as exc:
        return failed(ExitCode.OUTPUT_NOT_WRITABLE, str(exc))
    except Exception as exc:  # pydicom cannot encode a value in the new syntax
        return failed(ExitCode.CANNOT_CONVERT, f"cannot write the data set as {uids.uid_name(target)}: {exc}")
    return {**base, "outcome": "converted", "message": "", "exit_code": 0, "bytes": size,
            "seconds": round(time.perf_counter() - t0, 6), **result.as_dict()}


def _warm_up() -> None:
    """Import what every conversion needs once, before the workers fork."""
    import pydicom.pixels  # noqa: F401

    from dcmcli.transcode.plugins import register

    register()


def convert_many(jobs: Sequence[ConvertJob], options: TranscodeOptions, *, meta: bool = True, workers: int = 1,
                 on_result: Callable[[dict[str, Any]], None] | None = None,
                 on_start: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Convert every job; in ``workers`` processes when more than one.

    Results come back in completion order through ``on_result`` and are
    returned in job order. ``on_start`` runs once the workers exist: start
    threads (a progress bar) there, not before, as the workers are forked.
    """
    callback = on_result or (lambda r: None)
    results: list[dict[str, Any] | None] = [None] * len(jobs)
    _warm_up()
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        if on_start:
            on_start()
        for i, job in enumerate(jobs):
            results[i] = convert_file(job, options, meta)
            callback(results[i])  # type: ignore[arg-type]
        return [r for r in results if r is not None]
    import multiprocessing

    # fork: the workers inherit the imported codecs (forkserver measured 0.3 s
    # slower for 100 files); with fork all of them start at the first submit.
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: dict[Future[dict[str, Any]], int] = {}
        queue: Iterator[tuple[int, ConvertJob]] = iter(enumerate(jobs))
        for i, job in queue:  # a bounded window keeps memory flat for huge trees
            pending[pool.submit(convert_file, job, options, meta)] = i
            if len(pending) >= workers * 4:
                break
        if on_start:
            on_start()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                results[i] = fut.result()
                callback(results[i])  # type: ignore[arg-type]
                nxt = next(queue, None)
                if nxt is not None:
                    pending[pool.submit(convert_file, nxt[1], options, meta)] = nxt[0]
    return [r for r in results if r is not None]
