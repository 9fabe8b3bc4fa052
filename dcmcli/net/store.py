"""The Storage SCU core (storescu).

Files are grouped into associations by ``plan_batches``; each file goes in
its own transfer syntax, streamed from disk without decoding, when that
context was accepted, and decompressed on the fly when only the uncompressed
fallback was. Failed associations are re-opened with backoff (``retries``),
and ``jobs`` runs several associations in parallel.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from pynetdicom import _config
from pynetdicom.association import Association

from dcmcli.dicomfile import FileInfo
from dcmcli.errors import AssociationAborted, AssociationRejected, ExitCode, NetworkError, worst
from dcmcli.net.association import DcmcliAE, NegotiationReport, abort_info, open_association
from dcmcli.net.contexts import plan_batches
from dcmcli.net.peer import Peer
from dcmcli.net.uids import DEFLATED, UNCOMPRESSED_FALLBACK, uid_name
from dcmcli.status import Category, Status, describe
from dcmcli.transcode import TranscodeError, load_uncompressed


@dataclass
class StoreOptions:
    halt_on_error: bool = False
    retries: int = 0
    retry_delay: float = 1.0
    jobs: int = 1
    priority: int = 2


@dataclass
class StoreResult:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    outcome: str  # sent | warning | failed | not-sent
    sent_transfer_syntax: str | None = None
    status: Status | None = None
    message: str = ""
    size: int = 0
    seconds: float = 0.0
    exit_code: ExitCode = ExitCode.OK

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "outcome": self.outcome,
            "sop_class_uid": self.sop_class_uid,
            "sop_class": uid_name(self.sop_class_uid),
            "sop_instance_uid": self.sop_instance_uid,
            "transfer_syntax": self.transfer_syntax,
            "sent_transfer_syntax": self.sent_transfer_syntax,
            "status": self.status.as_dict() if self.status else None,
            "message": self.message,
            "bytes": self.size,
            "seconds": round(self.seconds, 6),
            "exit_code": int(self.exit_code),
        }


@dataclass
class StoreRun:
    results: list[StoreResult] = field(default_factory=list)
    errors: list[NetworkError] = field(default_factory=list)
    elapsed: float = 0.0
    halted: bool = False

    def exit_code(self, warnings_as_errors: bool = False) -> ExitCode:
        codes = [r.exit_code for r in self.results] + [e.exit_code for e in self.errors]
        if not warnings_as_errors:
            codes = [c for c in codes if c != ExitCode.OPERATION_WARNING]
        return worst(*codes)


@contextlib.contextmanager
def _sendable(info: FileInfo) -> Iterator[Path]:
    """The path to stream; a padded copy for a deflated stream of odd length.

    PS3.5 A.5 pads a deflated bit stream of odd length with one byte; files
    that lack it would go out as an odd-length PDV, which peers reject.
    """
    if info.transfer_syntax != DEFLATED or (info.size - info.dataset_offset) % 2 == 0:
        yield info.path
        return
    with tempfile.TemporaryDirectory(prefix="dcmcli-pad-") as tmp:
        padded = Path(tmp) / info.path.name
        shutil.copyfile(info.path, padded)
        with padded.open("ab") as fp:
            fp.write(b"\x00")
        yield padded


class StoreSender:
    """Send files to one peer; report each result and each association."""

    def __init__(self, ae_factory: Callable[[], DcmcliAE], peer: Peer, options: StoreOptions, *,
                 on_result: Callable[[StoreResult], None] | None = None,
                 on_association: Callable[[NegotiationReport], None] | None = None,
                 on_retry: Callable[[NetworkError, int, float], None] | None = None) -> None:
        self.ae_factory = ae_factory
        self.peer = peer
        self.options = options
        self.on_result = on_result or (lambda r: None)
        self.on_association = on_association or (lambda r: None)
        self.on_retry = on_retry or (lambda e, n, d: None)
        self._halt = threading.Event()
        self._lock = threading.Lock()
        # Files go to the wire as they are on disk: no decode, no re-encode.
        _config.STORE_SEND_CHUNKED_DATASET = True

    def send(self, files: Sequence[FileInfo]) -> StoreRun:
        run = StoreRun()
        t0 = time.perf_counter()
        jobs = max(1, min(self.options.jobs, len(files) or 1))
        if jobs == 1:
            self._send_group(list(files), run)
        else:
            size = -(-len(files) // jobs)
            groups = [list(files[i:i + size]) for i in range(0, len(files), size)]
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="storescu") as pool:
                for fut in [pool.submit(self._send_group, g, run) for g in groups]:
                    fut.result()
        run.elapsed = time.perf_counter() - t0
        run.halted = self._halt.is_set()
        return run

    # -- one worker ------------------------------------------------------
    def _record(self, run: StoreRun, result: StoreResult) -> None:
        with self._lock:
            run.results.append(result)
        self.on_result(result)
        if self.options.halt_on_error and result.exit_code not in (ExitCode.OK, ExitCode.OPERATION_WARNING):
            self._halt.set()

    def _send_group(self, files: list[FileInfo], run: StoreRun) -> None:
        ae = self.ae_factory()
        for batch in plan_batches(files, key=lambda f: (f.sop_class_uid, f.transfer_syntax)):
            pending = list(batch.items)
            attempt = 0
            while pending and not self._halt.is_set():
                try:
                    with open_association(ae, self.peer, batch.contexts) as (assoc, report):
                        self.on_association(report)
                        while pending and not self._halt.is_set():
                            result = self._send_one(assoc, pending[0])
                            if result is None:  # association lost with this file in flight
                                raise AssociationAborted(
                                    f"association with {self.peer} lost while sending {pending[0].path}: "
                                    f"{abort_info(assoc)}", "check the peer's log; --retries re-opens it",
                                    report=report)
                            pending.pop(0)
                            self._record(run, result)
                except NetworkError as exc:
                    transient = not isinstance(exc, AssociationRejected) or (
                        exc.report is not None and (exc.report.rejection or {}).get("result") == 2)  # type: ignore[attr-defined]
                    if transient and attempt < self.options.retries and not self._halt.is_set():
                        attempt += 1
                        delay = self.options.retry_delay * (2 ** (attempt - 1))
                        self.on_retry(exc, attempt, delay)
                        if self._halt.wait(delay):
                            break
                        continue
                    with self._lock:
                        run.errors.append(exc)
                    for info in pending:
                        self._record(run, StoreResult(info.path, info.sop_class_uid, info.sop_instance_uid,
                                                      info.transfer_syntax, "not-sent", message=exc.message,
                                                      size=info.size, exit_code=exc.exit_code))
                    pending = []
                    if self.options.halt_on_error:
                        self._halt.set()

    def _send_one(self, assoc: Association, info: FileInfo) -> StoreResult | None:
        """Send one file; None means the association died and the file must be retried."""
        accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == info.sop_class_uid]
        native = any(cx.transfer_syntax[0] == info.transfer_syntax for cx in accepted)
        fallback = [cx.transfer_syntax[0] for cx in accepted if cx.transfer_syntax[0] in UNCOMPRESSED_FALLBACK]
        base = dict(path=info.path, sop_class_uid=info.sop_class_uid, sop_instance_uid=info.sop_instance_uid,
                    transfer_syntax=info.transfer_syntax, size=info.size)
        t0 = time.perf_counter()
        try:
            if native:
                sent_ts = info.transfer_syntax
                with _sendable(info) as path:
                    rsp = assoc.send_c_store(path, priority=self.options.priority)
            elif fallback:
                ds = load_uncompressed(info.path)
                sent_ts = fallback[0]
                rsp = assoc.send_c_store(ds, priority=self.options.priority)
            else:
                return StoreResult(**base, outcome="failed", exit_code=ExitCode.NO_ACCEPTABLE_CONTEXT,
                                   message=f"the peer accepted no context for {uid_name(info.sop_class_uid)} "
                                           f"in {uid_name(info.transfer_syntax)} or uncompressed")
        except TranscodeError as exc:
            return StoreResult(**base, outcome="failed", exit_code=ExitCode.INVALID_INPUT,
                               message=f"the peer refused {uid_name(info.transfer_syntax)} and {exc}")
        except OSError as exc:
            if not assoc.is_established:
                return None
            return StoreResult(**base, outcome="failed", exit_code=ExitCode.INPUT_UNREADABLE,
                               message=f"cannot read the file: {exc.strerror or exc}")
        except (ValueError, AttributeError) as exc:  # pynetdicom refuses what it cannot encode
            if not assoc.is_established:
                return None
            return StoreResult(**base, outcome="failed", exit_code=ExitCode.INVALID_INPUT,
                               message=f"cannot send this data set: {exc}")
        elapsed = time.perf_counter() - t0
        if "Status" not in rsp:
            return None
        status = describe(int(rsp.Status), "C-STORE")
        if status.category == Category.SUCCESS:
            outcome, code = "sent", ExitCode.OK
        elif status.category == Category.WARNING:
            outcome, code = "warning", ExitCode.OPERATION_WARNING
        else:
            outcome, code = "failed", ExitCode.OPERATION_FAILED
        comment = rsp.get("ErrorComment")
        message = status.meaning + (f" ({comment})" if comment else "")
        return StoreResult(**base, outcome=outcome, sent_transfer_syntax=str(sent_ts), status=status,
                           message=message, seconds=elapsed, exit_code=code)
