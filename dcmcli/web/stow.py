"""STOW-RS (PS3.18 10.5): files into a server, in batches, streamed from disk.

Each batch is one POST of ``multipart/related; type="application/dicom"``
with its Content-Length computed from the files' sizes and the body read
from disk in chunks as it is sent. The answer's Referenced SOP Sequence
(with Warning Reason) and Failed SOP Sequence (with Failure Reason) give a
result per file, matched by SOP Instance UID; a file the answer does not
mention counts as failed. Servers answer a partly failed batch 202, 400 or
409 with that same body (Orthanc: 400), so every answer that carries one is
read; only an answer without it is an HTTP failure.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dcmcli.dicomfile import FileInfo
from dcmcli.errors import ExitCode
from dcmcli.conformance import ApplicationEntity
from dcmcli.records import dataclass
from dcmcli.web.http import WebClient, WebError, run_each
from dcmcli.web.multipart import BodyPart, MultipartBody

REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
SOP_CLASS = "00081150"
SOP_INSTANCE = "00081155"
RETRIEVE_URL = "00081190"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"


@dataclass
class Stored:
    """One file's result (the ``result`` event of wado store)."""

    info: FileInfo
    outcome: str  # stored, warning, failed
    status: int | None  # Failure Reason or Warning Reason (None: stored, or not said)
    message: str
    http_status: int | None
    retrieve_url: str | None
    batch: int
    seconds: float

    def as_dict(self) -> dict[str, object]:
        from dcmcli.status import describe
        from dcmcli.uids import uid_name

        return {"path": str(self.info.path), "outcome": self.outcome, "sop_class_uid": self.info.sop_class_uid,
                "sop_class": uid_name(self.info.sop_class_uid), "sop_instance_uid": self.info.sop_instance_uid,
                "transfer_syntax": self.info.transfer_syntax, "bytes": self.info.size,
                "status": describe(self.status, "C-STORE").as_dict() if self.status is not None else None,
                "message": self.message, "http_status": self.http_status, "retrieve_url": self.retrieve_url,
                "batch": self.batch, "seconds": round(self.seconds, 3)}


def batches(files: Sequence[FileInfo], count: int, size: int) -> Iterator[list[FileInfo]]:
    """Files in order, at most ``count`` per batch and about ``size`` bytes
    (a file larger than ``size`` goes alone)."""
    cur: list[FileInfo] = []
    total = 0
    for f in files:
        if cur and (len(cur) >= count or (size and total + f.size > size)):
            yield cur
            cur, total = [], 0
        cur.append(f)
        total += f.size
    if cur:
        yield cur


def _values(item: dict[str, Any], tag: str) -> list[Any]:
    return list((item.get(tag) or {}).get("Value") or [])


def _first(item: dict[str, Any], tag: str) -> Any:
    values = _values(item, tag)
    return values[0] if values else None


def reason_text(code: int | None, failure: bool) -> str:
    if code is None:
        return ""
    from dcmcli.status import describe

    return f"{describe(code, 'C-STORE').meaning} (0x{code:04X})"


def store(client: WebClient, files: Sequence[FileInfo], *, study: str | None = None, batch: int = 50,
          batch_size: int = 100 * 1024 * 1024, jobs: int = 1, on_result: Callable[[Stored], None],
          on_batch_error: Callable[[WebError, list[FileInfo]], None] | None = None,
          stop: threading.Event | None = None) -> list[WebError]:
    """Send ``files`` in batches; ``on_result`` is called for every file.
    Returns the errors of batches that failed as a whole (their files are
    reported as failed too)."""
    path = f"studies/{study}" if study else "studies"
    errors: list[WebError] = []
    lock = threading.Lock()

    def send(numbered: tuple[int, list[FileInfo]]) -> None:
        n, group = numbered
        if stop is not None and stop.is_set():
            return
        t0 = time.perf_counter()
        try:
            results = _send_batch(client, path, group, n, t0)
        except WebError as exc:
            with lock:
                errors.append(exc)
            if on_batch_error:
                on_batch_error(exc, group)
            seconds = time.perf_counter() - t0
            results = [Stored(f, "failed", None, exc.message, exc.status, None, n, seconds) for f in group]
            if exc.exit_code in (ExitCode.NOT_AUTHORISED, ExitCode.CANNOT_CONNECT) and stop is not None:
                stop.set()  # every later batch would fail the same way
        for r in results:
            on_result(r)

    numbered = list(enumerate(batches(files, max(1, batch), batch_size), 1))
    run_each(send, numbered, jobs, "dcmcli-stow")
    return errors


def _send_batch(client: WebClient, path: str, group: list[FileInfo], n: int, t0: float) -> list[Stored]:
    body = MultipartBody([BodyPart(f.path, f.size) for f in group])
    what = f"STOW-RS of batch {n} ({len(group)} file{'s' if len(group) != 1 else ''})"
    headers = {"Content-Type": body.content_type, "Content-Length": str(body.length),
               "Accept": "application/dicom+json"}
    with client.stream("POST", path, what, content=iter(body), headers=headers, ok=()) as resp:
        try:
            raw = resp.read()
        except Exception as exc:
            from dcmcli.web.http import transport_failure

            raise transport_failure(exc, what, "POST", client.url(path), client.options.timeout) from None
        status = resp.status_code
        answer = _parse(raw)
        if answer is None:
            if 200 <= status < 300:
                if status in (200, 204) and not raw.strip():
                    return [Stored(f, "stored", None, "", status, None, n, time.perf_counter() - t0) for f in group]
                raise WebError(f"{what}: the answer (HTTP {status}) is not DICOM JSON, so not a STOW-RS service "
                               f"({resp.request.url})", "BASE-URL must be the DICOMweb root, e.g. "
                               "http://host:8042/dicom-web", status=status, method="POST", url=str(resp.request.url))
            raise client.failure(resp, what)
    seconds = time.perf_counter() - t0
    referenced = {str(_first(i, SOP_INSTANCE)): i for i in _values(answer, REFERENCED_SOP_SEQUENCE)
                  if isinstance(i, dict)}
    failed = {str(_first(i, SOP_INSTANCE)): i for i in _values(answer, FAILED_SOP_SEQUENCE) if isinstance(i, dict)}
    out = []
    for f in group:
        uid = f.sop_instance_uid
        if uid in failed:
            code = _first(failed[uid], FAILURE_REASON)
            code = int(code) if code is not None else None
            out.append(Stored(f, "failed", code, f"refused: {reason_text(code, True) or 'no reason given'}",
                              status, None, n, seconds))
        elif uid in referenced:
            item = referenced[uid]
            warn = _first(item, WARNING_REASON)
            url = _first(item, RETRIEVE_URL)
            if warn is not None:
                out.append(Stored(f, "warning", int(warn), f"stored with a warning: {reason_text(int(warn), False)}",
                                  status, url, n, seconds))
            else:
                out.append(Stored(f, "stored", None, "", status, url, n, seconds))
        else:
            why = (f"the server refused the batch (HTTP {status}) without naming this file" if status >= 300
                   else "the server's answer does not mention this file")
            out.append(Stored(f, "failed", None, why, status, None, n, seconds))
    return out


def _parse(raw: bytes) -> dict[str, Any] | None:
    """A STOW-RS answer's DICOM JSON object (some servers wrap it in a list), or None."""
    if not raw.strip():
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        return None
    if not any(k in data for k in (REFERENCED_SOP_SEQUENCE, FAILED_SOP_SEQUENCE)):
        return None
    return data


#: wado store as a DICOMweb user agent (dcmcli/conformance).
CONFORMANCE = [ApplicationEntity("WADO", "wado", web=(
    ("Studies", "Store (STOW-RS)", "All Studies; Study"),
))]
