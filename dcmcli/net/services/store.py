"""The Storage SCU core (storescu).

Files are grouped into associations by ``plan_batches``; each file goes in
its own transfer syntax, streamed from disk without decoding (over the lean
upper layer in ``dcmcli.net.ul``), when that context was accepted; otherwise
it is transcoded (``dcmcli.transcode``) to the best syntax the peer accepted:
uncompressed, else lossless compression, else (allowed only for lossy files
or with ``allow_lossy``) lossy. Failed associations are re-opened with
backoff (``retries``), and ``jobs`` runs several associations in parallel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import field
from pathlib import Path


from dcmcli.conformance import OWN, ApplicationEntity, Contexts, Statuses
from dcmcli.dicomfile import FileInfo
from dcmcli.errors import AssociationAborted, AssociationRejected, ExitCode, NetworkError, NoAcceptableContext, worst
from dcmcli.net.association import Association, AssociationSettings, NegotiationReport, lost_reason, open_association
from dcmcli.net.contexts import CEN_PROPOSED, plan_batches, storage_common_extended
from dcmcli.net.dimse import C_STORE_RSP, c_store_rq
from dcmcli.net.peer import Peer
from dcmcli.net.ul import ConnectionClosed, PeerAborted, ProtocolError
from dcmcli.records import dataclass
from dcmcli.uids import DEFLATED, ILE, UNCOMPRESSED_FALLBACK, is_lossy, storage_sop_classes, uid_name
from dcmcli.status import Category, Status, describe
from dcmcli.transcode.catalog import LOSSLESS_PREFERENCE, LOSSY_PREFERENCE


@dataclass
class StoreOptions:
    halt_on_error: bool = False
    retries: int = 0
    retry_delay: float = 1.0
    jobs: int = 1
    priority: int = 2
    compress: bool = True  # also propose compressed syntaxes, for peers that take only those
    allow_lossy: bool = False  # may compress lossily a file that is not lossy already
    #: Send a SOP Class Common Extended Negotiation item per SOP class (service
    #: class Storage, PS3.4 Table B.3-3's related general classes; private ones too).
    common_extended: bool = False
    #: The user's related general SOP classes (--related-general), over the table's.
    related_general: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class StoreResult:
    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    outcome: str  # sent | warning | failed | not-attempted (the association it needed failed first)
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
    interrupted: bool = False  # Ctrl-C: the results are what was done before

    def exit_code(self, warnings_as_errors: bool = False) -> ExitCode:
        codes = [r.exit_code for r in self.results] + [e.exit_code for e in self.errors]
        if not warnings_as_errors:
            codes = [c for c in codes if c != ExitCode.OPERATION_WARNING]
        return worst(*codes)


class _Lost(Exception):
    """The association died while a file was in flight."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class StoreSender:
    """Send files to one peer; report each result and each association."""

    def __init__(self, settings: AssociationSettings, peer: Peer, options: StoreOptions, *,
                 on_result: Callable[[StoreResult], None] | None = None,
                 on_association: Callable[[NegotiationReport], None] | None = None,
                 on_retry: Callable[[NetworkError, int, float], None] | None = None) -> None:
        self.settings = settings
        self.peer = peer
        self.options = options
        self.on_result = on_result or (lambda r: None)
        self.on_association = on_association or (lambda r: None)
        self.on_retry = on_retry or (lambda e, n, d: None)
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def send(self, files: Sequence[FileInfo]) -> StoreRun:
        """Send every file; Ctrl-C stops the run (the association in flight is
        aborted, parallel ones finish their file) and returns what was done."""
        run = StoreRun()
        t0 = time.perf_counter()
        jobs = max(1, min(self.options.jobs, len(files) or 1))
        try:
            if jobs == 1:
                self._send_group(list(files), run)
            else:
                size = -(-len(files) // jobs)
                groups = [list(files[i:i + size]) for i in range(0, len(files), size)]
                pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="storescu")
                try:
                    for fut in [pool.submit(self._send_group, g, run) for g in groups]:
                        fut.result()
                finally:
                    self._halt_on_exit(pool)
        except KeyboardInterrupt:
            run.interrupted = True
            self._halt.set()
        run.elapsed = time.perf_counter() - t0
        run.halted = self._halt.is_set()
        return run

    def _halt_on_exit(self, pool: ThreadPoolExecutor) -> None:
        """Stop the workers after their current file (on Ctrl-C) and wait for them."""
        import sys

        if sys.exc_info()[0] is not None:
            self._halt.set()
        pool.shutdown(wait=True)

    # -- one worker ------------------------------------------------------
    def _record(self, run: StoreRun, result: StoreResult) -> None:
        with self._lock:
            run.results.append(result)
        self.on_result(result)
        if self.options.halt_on_error and result.exit_code not in (ExitCode.OK, ExitCode.OPERATION_WARNING):
            self._halt.set()

    def _extra_contexts(self, sop_class: str, files: Sequence[FileInfo]) -> list[list[str]]:
        """Compressed syntaxes to propose for one SOP class beside its files' own
        and the uncompressed fallback: lossless ones if any of its files has
        Pixel Data, lossy ones too if one of those is lossy (or allow_lossy)."""
        with_pixels = [f for f in files if f.has_pixels]
        if not self.options.compress or not with_pixels:
            return []
        groups = [list(LOSSLESS_PREFERENCE)]
        if self.options.allow_lossy or any(is_lossy(f.transfer_syntax) for f in with_pixels):
            groups.append(list(LOSSY_PREFERENCE))
        return groups

    def _send_group(self, files: list[FileInfo], run: StoreRun) -> None:
        for batch in plan_batches(files, key=lambda f: (f.sop_class_uid, f.transfer_syntax),
                                  extra_for=self._extra_contexts):
            lossy_proposed = any(list(c.transfer_syntax) == list(LOSSY_PREFERENCE) for c in batch.contexts)
            common = storage_common_extended((c.abstract_syntax for c in batch.contexts), self.options.related_general,
                                             enabled=self.options.common_extended)
            pending = list(batch.items)
            attempt = 0
            while pending and not self._halt.is_set():
                reported = None
                in_flight = False  # the association died with pending[0] sent (or partly)
                try:
                    with open_association(self.settings, self.peer, batch.contexts, common_extended=common) as conn:
                        report = conn.report
                        reported = report
                        self.on_association(report)
                        message_id = 0
                        while pending and not self._halt.is_set():
                            message_id = message_id % 0xFFFF + 1
                            try:
                                result = self._send_one(conn, pending[0], message_id)
                            except _Lost as lost:
                                in_flight = True
                                raise AssociationAborted(
                                    f"association with {self.peer} lost while sending {pending[0].path}: {lost.why}",
                                    "check the peer's log; --retries re-opens it", report=report) from None
                            pending.pop(0)
                            self._record(run, result)
                            if conn.conn.closed:  # a file failed mid-stream: go on with a new association
                                break
                except NetworkError as exc:
                    if exc.report is not None and exc.report is not reported:  # before the files' results
                        self.on_association(exc.report)  # type: ignore[arg-type]
                    if isinstance(exc, NoAcceptableContext) and self.options.compress and not lossy_proposed \
                            and any(f.has_pixels for f in batch.items):
                        exc.hint = (exc.hint or "") + "; if it takes only lossy compression, --allow-lossy lets " \
                                                      "storescu compress for it"
                    rejected_transient = isinstance(exc, AssociationRejected) and (
                        exc.report is not None and (exc.report.rejection or {}).get("result") == 2)  # type: ignore[attr-defined]
                    transient = not isinstance(exc, AssociationRejected) or rejected_transient
                    if transient and attempt < self.options.retries and not self._halt.is_set():
                        attempt += 1
                        delay = self.options.retry_delay * (2 ** (attempt - 1))
                        self.on_retry(exc, attempt, delay)
                        if self._halt.wait(delay):
                            break
                        continue
                    if rejected_transient:
                        exc.hint = (f"{exc.hint}; the rejection is transient: " if exc.hint else "transient: ") + (
                            "--retries N tries again with backoff" if not self.options.retries
                            else f"still rejected after {attempt} retries; raise --retries")
                    with self._lock:
                        run.errors.append(exc)
                    for n, info in enumerate(pending):
                        self._record(run, StoreResult(info.path, info.sop_class_uid, info.sop_instance_uid,
                                                      info.transfer_syntax,
                                                      "failed" if n == 0 and in_flight else "not-attempted",
                                                      message=exc.message, size=info.size, exit_code=exc.exit_code))
                    pending = []
                    if self.options.halt_on_error:
                        self._halt.set()

    def _transcode_target(self, conn: Association, info: FileInfo) -> tuple[int, str] | None:
        """The context to send ``info`` on when its own syntax was refused:
        uncompressed first, then a lossless compressed syntax, then (for a
        lossy file, or with allow_lossy) a lossy one."""
        sop = info.sop_class_uid
        offered = {t: cid for cid, (a, t) in sorted(conn.accepted.items()) if a == sop}
        order = list(UNCOMPRESSED_FALLBACK) + list(LOSSLESS_PREFERENCE)
        if self.options.allow_lossy or is_lossy(info.transfer_syntax):
            order += list(LOSSY_PREFERENCE)
        for ts in order:
            if ts in offered:
                return offered[ts], ts
        return None

    def _send_one(self, conn: Association, info: FileInfo, message_id: int) -> StoreResult:
        """Send one file and read its response; raise ``_Lost`` if the association dies."""
        sop, ts = info.sop_class_uid, info.transfer_syntax
        native = [cid for cid, (a, t) in conn.accepted.items() if a == sop and t == ts]
        base = dict(path=info.path, sop_class_uid=sop, sop_instance_uid=info.sop_instance_uid,
                    transfer_syntax=ts, size=info.size)
        t0 = time.perf_counter()
        try:
            if native:
                command = c_store_rq(message_id, sop, info.sop_instance_uid, self.options.priority)
                cid, sent_ts = native[0], ts
                try:
                    fp = info.path.open("rb")
                    fp.seek(info.dataset_offset)
                except OSError as exc:
                    return StoreResult(**base, outcome="failed", exit_code=ExitCode.INPUT_UNREADABLE,
                                       message=f"cannot read the file: {exc.strerror or exc}")
                length = info.size - info.dataset_offset
                # PS3.5 A.5: a deflated stream of odd length is padded with one byte.
                pad = ts == DEFLATED and length % 2 == 1
                with fp:
                    conn.send(cid, command)
                    try:
                        conn.channel.send_data_file(cid, fp, length, pad)
                    except OSError as exc:  # the file, not the network: the association is unusable
                        conn.abort()
                        return StoreResult(**base, outcome="failed", exit_code=ExitCode.INPUT_UNREADABLE,
                                           message=f"cannot read the file: {exc}")
            else:
                choice = self._transcode_target(conn, info)
                if choice is None:
                    lossy = "" if self.options.allow_lossy or is_lossy(ts) else " (lossy syntaxes need --allow-lossy)"
                    return StoreResult(**base, outcome="failed", exit_code=ExitCode.NO_ACCEPTABLE_CONTEXT,
                                       message=f"the peer accepted no context for {uid_name(sop)} in {uid_name(ts)}"
                                               f" or any syntax it can be converted to{lossy}")
                cid, sent_ts = choice
                from dcmcli.transcode import TranscodeError, encode_dataset
                from dcmcli.transcode.files import load_as

                try:
                    ds = load_as(info.path, sent_ts)
                    data = encode_dataset(ds, implicit=sent_ts == ILE)
                except TranscodeError as exc:
                    return StoreResult(**base, outcome="failed", exit_code=ExitCode.CANNOT_CONVERT,
                                       message=f"the peer refused {uid_name(ts)}, and {exc}")
                except OSError as exc:
                    return StoreResult(**base, outcome="failed", exit_code=ExitCode.INPUT_UNREADABLE,
                                       message=f"cannot read the file: {exc.strerror or exc}")
                except Exception as exc:  # pydicom cannot parse what the header walk let through
                    return StoreResult(**base, outcome="failed", exit_code=ExitCode.CANNOT_CONVERT,
                                       message=f"the peer refused {uid_name(ts)}, and the file cannot be read "
                                               f"for conversion: {exc}")
                if data is None:
                    return StoreResult(**base, outcome="failed", exit_code=ExitCode.CANNOT_CONVERT,
                                       message=f"cannot encode the data set in {uid_name(sent_ts)}")
                if str(ds.SOPInstanceUID) != info.sop_instance_uid:  # lossy: a new instance
                    base["sop_instance_uid"] = str(ds.SOPInstanceUID)
                command = c_store_rq(message_id, sop, str(ds.SOPInstanceUID), self.options.priority)
                conn.send(cid, command, data)
            rsp = conn.receive().command
            if rsp.field != C_STORE_RSP or rsp.responding_to != message_id:
                raise ProtocolError(f"a {rsp.name} for message {rsp.responding_to} answered C-STORE {message_id}")
        except (PeerAborted, ConnectionClosed, ProtocolError) as exc:
            if isinstance(exc, ProtocolError):
                conn.conn.abort(2, exc.reason)
            raise _Lost(lost_reason(exc, self.settings)) from None
        elapsed = time.perf_counter() - t0
        status = describe(rsp.status, "C-STORE")
        if status.category == Category.SUCCESS:
            outcome, code = "sent", ExitCode.OK
        elif status.category == Category.WARNING:
            outcome, code = "warning", ExitCode.OPERATION_WARNING
        else:
            outcome, code = "failed", ExitCode.OPERATION_FAILED
        comment = rsp.text(0x0902)
        message = status.meaning + (f" ({comment})" if comment else "")
        return StoreResult(**base, outcome=outcome, sent_transfer_syntax=str(sent_ts), status=status,
                           message=message, seconds=elapsed, exit_code=code)


_FILES = "the SOP class of each file sent (any storage SOP class, private ones too)"
#: The AE this module is (dcmcli/conformance: the conformance statement is built from it).
CONFORMANCE = [ApplicationEntity(
    "STORESCU", "storescu",
    "Sends files, folders (recursively) and globs, or the instances a DICOMDIR references (`--dicomdir`), "
    "with C-STORE. Each file goes in its own transfer syntax, streamed from disk, when the peer accepts it; "
    "else it is transcoded to the best syntax the peer accepted (uncompressed, then lossless; lossy only for "
    "a lossy file or with `--allow-lossy`, with a new SOP Instance UID).",
    contexts=(
        Contexts(storage_sop_classes, OWN, "SCU", True, label=_FILES, one_per_syntax=True,
                 note="one context per transfer syntax the class's files are in", extended=CEN_PROPOSED),
        Contexts(storage_sop_classes, UNCOMPRESSED_FALLBACK, "SCU", True, label=_FILES,
                 note="the uncompressed fallback, for files whose own syntax is refused"),
        Contexts(storage_sop_classes, LOSSLESS_PREFERENCE, "SCU", True, label=_FILES,
                 when="a file of the class has Pixel Data (not with --no-compress-fallback)",
                 note="the peer picks one; files are compressed losslessly to it, verified bit for bit"),
        Contexts(storage_sop_classes, LOSSY_PREFERENCE, "SCU", True, label=_FILES,
                 when="a file of the class is lossy already, or --allow-lossy (not with --no-compress-fallback)"),
    ),
    statuses=(Statuses("C-STORE", "SCU", behaviour={
        "success": "the file counts as sent; exit 0",
        "warning": "sent, the warning printed with its meaning; exit 0, or 67 with --warnings-as-errors",
        "failure": "the file counts as failed, the meaning and Error Comment printed; the other files are still "
                   "sent (not with --halt-on-error); exit 66"}),),
    initiation=(
        "All files go on one association (`-j N`: N in parallel), released after the last; more than 128 "
        "contexts are spread over several associations, each SOP class's contexts together.",
        "An association that cannot be opened is reported with the exit code of the cause (60, 61, 62, 71); "
        "`--retries N` re-opens it with exponential backoff. Its files are reported as not attempted.",
    ),
)]
