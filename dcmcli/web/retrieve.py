"""WADO-RS (PS3.18 10.4): instances into the storage writer, and the other
resources (metadata, frames, rendered images, thumbnails, bulk data) into files.

Instances come as ``multipart/related; type="application/dicom"``; each part
is written, as its bytes arrive, through storescp's ``StorageWriter``
(dcmcli/net/services/writer.py: layouts, templates, a hidden ``.part`` file
renamed when complete), so memory stays flat whatever the study's size and a
final name never holds half an object. The part's own file meta is read
from its first bytes and replaced by dcmcli's, as for an object received
over DIMSE; the data set is written as it came.
"""

from __future__ import annotations

import io
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from dcmcli.errors import ExitCode, OutputError, UsageError
from dcmcli.conformance import ApplicationEntity
from dcmcli.net.services.writer import Incoming, StorageWriter
from dcmcli.records import dataclass
from dcmcli.web.http import WebClient, WebError, run_each
from dcmcli.web.multipart import MultipartError, PartHandler, Truncated, parse_content_type, read_parts

#: Media types of single-part answers and file name extensions for them.
EXTENSIONS = {"application/dicom": ".dcm", "application/octet-stream": ".raw", "image/jpeg": ".jpg",
              "image/png": ".png", "image/gif": ".gif", "image/jp2": ".jp2", "image/jpx": ".jpx",
              "image/jls": ".jls", "image/dicom-rle": ".rle", "image/jxl": ".jxl", "video/mpeg": ".mpg",
              "video/mp4": ".mp4", "application/dicom+json": ".json", "application/json": ".json",
              "application/pdf": ".pdf", "text/xml": ".xml", "application/dicom+xml": ".xml"}


def resource(study: str | None, series: str | None = None, instance: str | None = None) -> str:
    if not study:
        raise UsageError("no study given", "give --study UID (and --series, --instance to narrow)")
    if instance and not series:
        raise UsageError("--instance needs --series", "give the series' UID too (wado query -L instances lists them)")
    path = f"studies/{study}"
    if series:
        path += f"/series/{series}"
    if instance:
        path += f"/instances/{instance}"
    return path


def dicom_accept(transfer_syntax: str) -> str:
    return f'multipart/related; type="application/dicom"; transfer-syntax={transfer_syntax or "*"}'


@dataclass
class Retrieved:
    """One instance of a WADO-RS answer (the ``retrieved`` event)."""

    path: str | None
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    size: int
    outcome: str  # stored, failed
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        from dcmcli.uids import uid_name

        return {"path": self.path, "sop_class_uid": self.sop_class_uid,
                "sop_class": uid_name(self.sop_class_uid) if self.sop_class_uid else "",
                "sop_instance_uid": self.sop_instance_uid, "transfer_syntax": self.transfer_syntax,
                "bytes": self.size, "outcome": self.outcome, "message": self.message}


#: Part media types stored as DICOM objects.
_DICOM_TYPES = ("application/dicom", "application/octet-stream")


class DicomParts(PartHandler):
    """Each application/dicom part into the storage writer."""

    def __init__(self, writer: StorageWriter, source: str, on_result: Callable[[Retrieved], None]) -> None:
        self.writer = writer
        self.source = source
        self.on_result = on_result
        self.buf = bytearray()
        self.inc: Incoming | None = None
        self.skip: str | None = None
        self.size = 0
        self.lock = threading.Lock()

    def begin(self, headers: dict[str, str]) -> None:
        self.buf = bytearray()
        self.inc = None
        self.size = 0
        ctype = headers.get("content-type", "application/dicom")
        media = ctype if ctype in _DICOM_TYPES else parse_content_type(ctype)[0]  # the usual one without email's parser
        self.skip = None if media in _DICOM_TYPES else f"a part of type {media}, not application/dicom"

    def data(self, chunk: bytes | memoryview) -> None:
        self.size += len(chunk)
        if self.skip:
            return
        view = chunk if isinstance(chunk, memoryview) else memoryview(chunk)
        if self.inc is not None:
            self.inc.write(view)
            return
        if self.buf:  # the file meta came in pieces: gather it
            self.buf += view
            view = memoryview(self.buf)
        if not self._start(view, final=False) and not self.buf:
            self.buf = bytearray(view)  # too short to read the meta yet (a small copy: the part's first bytes)

    def _start(self, view: memoryview, final: bool) -> bool:
        """Read the part's file meta from its first bytes; then stream the rest of
        ``view`` (not copied: a part's first chunk is most of a CT) into the writer.
        False: more bytes are needed first."""
        from dcmcli.dicomfile import InvalidFile, _read_meta

        if len(view) < 132 or view[128:132] != b"DICM":
            if len(view) < 132 and not final:
                return False
            self.skip = "not a DICOM file (no DICM prefix)"
            return True
        need = 0
        if view[132:136] == b"\x02\x00\x00\x00" and view[136:138] == b"UL":
            if len(view) < 144 and not final:
                return False
            need = 144 + int.from_bytes(view[140:144], "little")
        elif not final and len(view) < 65536:
            return False  # no group length: wait for more, then walk
        if len(view) < need and not final:
            return False
        try:
            values, offset = _read_meta(io.BytesIO(bytes(view[132:max(need, 132)] if need else view[132:])),
                                        (need - 132) if need else len(view) - 132)
        except InvalidFile as exc:
            self.skip = f"not a DICOM file: {exc}"
            return True
        offset += 132
        sop_class, sop_instance, ts = values.get(0x0002, ""), values.get(0x0003, ""), values.get(0x0010, "")
        if not (sop_instance and ts):
            self.skip = "its file meta names no SOP Instance UID or transfer syntax"
            return True
        self.inc = self.writer.begin(sop_class, sop_instance, ts, "")
        self.buf = bytearray()
        if len(view) > offset:
            self.inc.write(view[offset:])
        return True

    def end(self) -> None:
        if self.inc is None and not self.skip:
            self._start(memoryview(self.buf), final=True)
        inc, self.inc = self.inc, None
        if inc is None:
            self.on_result(Retrieved(None, "", "", "", self.size, "failed", self.skip or "empty part"))
            return
        mismatch = self.writer.check_identity(inc)
        outcome = self.writer.finish(inc, self.source, "", self.source)
        self.writer.make_next_file(background=True)  # the next part is arriving already
        if outcome.status != 0:
            self.on_result(Retrieved(None, inc.sop_class, inc.sop_instance, inc.ts, inc.size, "failed",
                                     outcome.message))
            return
        note = "; ".join(n for n in (mismatch, outcome.message) if n)
        self.on_result(Retrieved(str(outcome.path) if outcome.path else None, inc.sop_class, inc.sop_instance,
                                 outcome.stored_transfer_syntax or inc.ts, inc.size, "stored", note))

    def abort(self) -> None:
        inc, self.inc = self.inc, None
        if inc is not None:
            inc.discard()


@dataclass
class RetrieveOutcome:
    stored: int = 0
    failed: int = 0
    bytes: int = 0
    expected: int | None = None
    requests: int = 0
    errors: list[WebError] = field(default_factory=list)

    @property
    def missing(self) -> int:
        if self.expected is None:
            return 0
        return max(0, self.expected - self.stored - self.failed)


def retrieve_instances(client: WebClient, writer: StorageWriter, study: str, series: str | None = None,
                       instance: str | None = None, *, transfer_syntax: str = "*", jobs: int = 1,
                       count: bool = True, on_result: Callable[[Retrieved], None] | None = None,
                       on_expected: Callable[[int | None], None] | None = None,
                       log: Callable[[str], None] | None = None) -> RetrieveOutcome:
    """A study, series or instance into ``writer``; ``count``: ask QIDO-RS first how
    many instances to expect (to warn about a shorter answer and size the progress bar).
    A request that fails is in ``errors`` (what it brought before is stored); the others go on."""
    from dcmcli.web import qido

    outcome = RetrieveOutcome()
    lock = threading.Lock()
    source = urlsplit(client.base).netloc

    def result(r: Retrieved) -> None:
        with lock:
            if r.outcome == "stored":
                outcome.stored += 1
            else:
                outcome.failed += 1
            outcome.bytes += r.size
        if on_result:
            on_result(r)

    targets: list[str] = [resource(study, series, instance)]
    if instance:
        outcome.expected = 1
    elif count or jobs > 1:
        try:
            if jobs > 1 and not series:
                listed = qido.series_of(client, study)
                if listed:
                    targets = [resource(study, s) for s, _ in listed]
                    counts = [n for _, n in listed]
                    outcome.expected = sum(counts) if all(n is not None for n in counts) else None  # type: ignore[misc]
                else:
                    outcome.expected = 0
            else:
                outcome.expected = qido.count_instances(client, study, series)
        except WebError as exc:  # no QIDO-RS here: retrieve without knowing how many
            if exc.exit_code == ExitCode.NOT_AUTHORISED:
                raise
            if log:
                log(f"cannot count the instances first (QIDO-RS): {exc.message}")
            outcome.expected = None
    if on_expected:
        on_expected(outcome.expected)

    def one(path: str) -> None:
        handler = DicomParts(writer, source, result)
        what = f"WADO-RS retrieve of {path}"
        headers = {"Accept": dicom_accept(transfer_syntax), "Accept-Encoding": "identity"}
        with lock:
            outcome.requests += 1
        try:
            with client.stream("GET", path, what, headers=headers) as resp:
                ctype = resp.headers.get("content-type", "")
                try:
                    read_parts(_chunks(resp, client, what, path), ctype, handler)
                except Truncated as exc:
                    raise WebError(f"{what}: {exc} (the instance in progress was discarded)",
                                   "try again; the server or the connection cut the answer", url=str(resp.request.url),
                                   exit_code=ExitCode.ASSOCIATION_ABORTED) from None
                except MultipartError as exc:
                    hint = ("BASE-URL must be the DICOMweb root (e.g. http://host:8042/dicom-web)"
                            if not ctype.startswith("multipart/") else "run with -d for the exchange")
                    raise WebError(f"{what}: {exc}", hint, url=str(resp.request.url)) from None
        except WebError as exc:
            if transfer_syntax != "*" and exc.status in (406, 500, 501):
                exc.hint = (f"the server may not be able to send every object in {transfer_syntax}; "
                            f"try --transfer-syntax '*' (as stored)")
            with lock:
                outcome.errors.append(exc)

    run_each(one, targets, jobs, "dcmcli-wado")
    return outcome


def _chunks(resp: Any, client: WebClient, what: str, path: str) -> Iterable[bytes]:
    """The body's chunks as they arrive (up to httpcore's read size, 1 MB),
    transport failures as WebErrors. Read in the thread that parses and
    writes them: a reader thread of its own ahead of the disk was measured
    slower (bench/bench_wado.py: GIL hand-offs and a queue, for a client
    whose CPU is the limit on two cores), and the kernel's socket buffer
    already holds what arrives during a write."""
    import httpx

    from dcmcli.web.http import transport_failure

    try:
        yield from resp.iter_bytes()
    except httpx.HTTPError as exc:
        raise transport_failure(exc, what, "GET", client.url(path), client.options.timeout) from None


# ---------------------------------------------------------------------------
# other resources: to files

class AtomicFile:
    """A file written under a hidden temporary name and renamed when complete."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.parent / f".{os.getpid()}-{uuid.uuid4().hex}.part"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self.fp: IO[bytes] | None = open(self.tmp, "wb")
        except OSError as exc:
            raise OutputError(f"cannot write {str(final)!r}: {exc.strerror or exc}", "check the output path") from None
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        assert self.fp is not None
        try:
            self.fp.write(data)
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {str(self.final)!r}: {exc.strerror or exc}",
                              "check the free space and permissions") from None
        self.size += len(data)

    def commit(self) -> Path:
        assert self.fp is not None
        try:
            self.fp.close()
            self.fp = None
            os.replace(self.tmp, self.final)
        except OSError as exc:
            self.discard()
            raise OutputError(f"cannot write {str(self.final)!r}: {exc.strerror or exc}",
                              "check the output path") from None
        return self.final

    def discard(self) -> None:
        if self.fp is not None:
            self.fp.close()
            self.fp = None
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


class FileParts(PartHandler):
    """Each part into its own file: ``name(n, media_type)`` chooses it."""

    def __init__(self, name: Callable[[int, str], Path], on_file: Callable[[Path, str, int], None]) -> None:
        self.name = name
        self.on_file = on_file
        self.n = 0
        self.cur: AtomicFile | None = None
        self.media = ""

    def begin(self, headers: dict[str, str]) -> None:
        self.n += 1
        ctype = headers.get("content-type", "application/octet-stream")
        self.media = ctype
        self.cur = AtomicFile(self.name(self.n, parse_content_type(ctype)[0]))

    def data(self, chunk: bytes | memoryview) -> None:
        assert self.cur is not None
        self.cur.write(chunk)

    def end(self) -> None:
        cur, self.cur = self.cur, None
        if cur is not None:
            self.on_file(cur.commit(), self.media, cur.size)

    def abort(self) -> None:
        cur, self.cur = self.cur, None
        if cur is not None:
            cur.discard()


@dataclass
class OtherRequest:
    """A WADO-RS request for something other than instances (metadata, frames,
    rendered, thumbnail, bulk data): its path, Accept header, query and how
    its answer's files are named."""

    mode: str
    path: str
    accept: str
    params: list[tuple[str, str]]
    label: str
    frames: list[str]

    def file_name(self, n: int, media: str) -> str:
        """The name of the answer's part ``n`` (from 1) of type ``media``."""
        ext = EXTENSIONS.get(media, ".bin")
        if self.frames:
            stem = f"{self.label}.frame{self.frames[n - 1] if n <= len(self.frames) else n}"
        else:
            stem = (self.label if self.mode == "bulkdata" else f"{self.label}.{self.mode}") + (f".{n}" if n > 1 else "")
        return stem + ext


def other_request(mode: str, study: str | None, series: str | None, instance: str | None, *, frames: str | None,
                  media_type: str | None, viewport: str | None, window: str | None, bulkdata: str | None,
                  transfer_syntax: str) -> OtherRequest:
    """The request of ``wado retrieve --metadata/--frames/--rendered/--thumbnail/--bulkdata`` (PS3.18 10.4)."""
    params: list[tuple[str, str]] = []
    if mode == "bulkdata":
        assert bulkdata is not None
        path, label = bulkdata, _bulk_label(bulkdata)
    else:
        path = resource(study, series, instance)
        label = (instance or series or study or "")
    if mode == "frames" or (mode == "rendered" and frames):
        if not instance:
            raise UsageError("--frames needs --instance", "give --study, --series and --instance")
        numbers = [p.strip() for p in (frames or "").split(",") if p.strip()]
        if not numbers or not all(n.isdigit() and int(n) > 0 for n in numbers):
            raise UsageError(f"invalid --frames {frames!r}", "give frame numbers from 1, e.g. 1,2,5")
        path += "/frames/" + ",".join(numbers)
    else:
        numbers = []
    if mode == "metadata":
        path += "/metadata"
        accept = "application/dicom+json"
    elif mode in ("rendered", "thumbnail"):
        if mode == "rendered" and not instance:
            raise UsageError("--rendered needs --instance", "give --study, --series and --instance")
        path += "/" + mode
        accept = media_type or "image/jpeg"
        if viewport:
            params.append(("viewport", viewport))
        if window:
            params.append(("window", window))
    else:  # frames, bulkdata
        media = media_type or "application/octet-stream"
        ts = transfer_syntax.strip() or "*"
        accept = f'multipart/related; type="{media}"' + (f"; transfer-syntax={ts}" if media ==
                                                         "application/octet-stream" else "")
    return OtherRequest(mode, path, accept, params, label, numbers)


def _bulk_label(uri: str) -> str:
    """A file name for a BulkDataURI's content, from the URI: the instance's UID
    and the rest after it (Orthanc's ``.../instances/UID/bulk/7fe00010`` ->
    ``UID.bulk.7fe00010``), else its last segments; safe characters only."""
    import re
    from urllib.parse import unquote, urlsplit

    parts = [unquote(x) for x in urlsplit(uri).path.split("/") if x]
    if "instances" in parts[:-1]:
        parts = parts[parts.index("instances") + 1:]
    else:
        parts = parts[-2:]
    label = re.sub(r"[^A-Za-z0-9._-]", "_", ".".join(parts)).strip("._")
    return label[:200] or "bulkdata"


def fetch_to(client: WebClient, path: str, what: str, accept: str, *, params: list[tuple[str, str]] | None = None,
             output: str | None, name: Callable[[int, str], Path],
             on_file: Callable[[Path, str, int], None], stdout: IO[bytes] | None = None) -> int:
    """GET a resource; a multipart answer becomes one file per part, any other
    one file (``output``, '-' for stdout, else ``name(1, media)``). Returns the files written."""
    headers = {"Accept": accept, "Accept-Encoding": "identity"}
    with client.stream("GET", path, what, params=params, headers=headers) as resp:
        ctype = resp.headers.get("content-type", "application/octet-stream")
        media, _ = parse_content_type(ctype)
        chunks = _chunks(resp, client, what, path)
        if media.startswith("multipart/"):
            if output == "-":
                raise UsageError("a multipart answer (several parts) cannot go to stdout", "give -od DIR")
            handler = FileParts(name if output is None else _numbered(Path(output)), on_file)
            try:
                return read_parts(chunks, ctype, handler)
            except Truncated as exc:
                raise WebError(f"{what}: {exc} (the part in progress was discarded)", "try again",
                               exit_code=ExitCode.ASSOCIATION_ABORTED) from None
            except MultipartError as exc:
                raise WebError(f"{what}: {exc}", "run with -d for the exchange") from None
        if output == "-":
            assert stdout is not None
            n = 0
            for chunk in chunks:
                stdout.write(chunk)
                n += len(chunk)
            stdout.flush()
            on_file(Path("-"), ctype, n)
            return 1
        target = Path(output) if output else name(1, media)
        f = AtomicFile(target)
        try:
            for chunk in chunks:
                f.write(chunk)
        except BaseException:
            f.discard()
            raise
        on_file(f.commit(), ctype, f.size)
        return 1


def _numbered(base: Path) -> Callable[[int, str], Path]:
    def name(n: int, media: str) -> Path:
        return base if n == 1 else base.with_name(f"{base.stem}.{n}{base.suffix}")
    return name


def elapsed(t0: float) -> float:
    return round(time.perf_counter() - t0, 3)


#: wado retrieve as a DICOMweb user agent (dcmcli/conformance).
CONFORMANCE = [ApplicationEntity("WADO", "wado", web=(
    ("Studies", "Retrieve (WADO-RS)", "Study; Series; Instance; Study / Series / Instance Metadata; Frames; Rendered "
                                      "Study / Series / Instance / Frames; Study / Series / Instance Thumbnail; Bulkdata"),
))]
