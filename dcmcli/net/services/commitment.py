"""Storage Commitment Push Model (PS3.4 J): the SCU (nactionscu --commit) and
the SCP (storescp --commitment).

SCU: a Transaction UID and a Referenced SOP Sequence per request (built
from the files' UIDs; the files are only read), N-ACTION type 1 to the
well-known instance, then the N-EVENT-REPORT, on the same association or on
a new one from the peer to our listener (the shared acceptor with an
``EventListener`` accepting only Storage Commitment from the peer's
address), whichever comes first.

SCP: ``CommitmentService`` answers N-ACTIONs about what the storage SCP
beside it has stored (``CommitmentIndex``, fed by its received objects) and
sends the report on the same association while it is open, else on a new
association to the requester (``--commitment-peer AET=host:port``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.net.acceptor import Acceptor, AcceptorOptions, ServedAssociation, Service
from dcmcli.net.association import AssociationSettings, NegotiationReport, request_association, resolve
from dcmcli.net.dimse import N_ACTION_RQ, N_ACTION_RSP, N_EVENT_REPORT_RQ, N_EVENT_REPORT_RSP, Message, request, response
from dcmcli.net.peer import Peer
from dcmcli.net.services.normalized import (NORMALIZED_SYNTAXES, EventListener, EventReport, NResult,
                                           open_session, sop_reference)
from dcmcli.net.ul import ConnectionClosed, Context, PeerAborted, ProtocolError, RoleSelection
from dcmcli.records import dataclass
from dcmcli.status import Category, Status, describe
from dcmcli.uids import STORAGE_COMMITMENT_INSTANCE, STORAGE_COMMITMENT_PUSH, is_uid

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from dcmcli.dicomfile import FileInfo

#: Action Type ID of "Request Storage Commitment" (PS3.4 J.3.2.1).
REQUEST_COMMITMENT = 1
#: Event Type IDs of the report (PS3.4 J.3.2.2): all committed; some failed.
ALL_COMMITTED, SOME_FAILED = 1, 2


@dataclass(frozen=True)
class Reference:
    sop_class_uid: str
    sop_instance_uid: str
    path: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"sop_class_uid": self.sop_class_uid, "sop_instance_uid": self.sop_instance_uid, "path": self.path}


def referenced_item(ref: Reference, failure_reason: int | None = None) -> Dataset:
    """One item of a Referenced (or, with a reason, Failed) SOP Sequence."""
    if failure_reason is None:
        return sop_reference(ref.sop_class_uid, ref.sop_instance_uid)
    return sop_reference(ref.sop_class_uid, ref.sop_instance_uid, FailureReason=failure_reason)


@dataclass
class CommitRequest:
    transaction_uid: str
    references: list[Reference]
    study_instance_uid: str | None = None

    def action_information(self) -> Dataset:
        from pydicom.dataset import Dataset as DS

        ds = DS()
        ds.TransactionUID = self.transaction_uid
        ds.ReferencedSOPSequence = [referenced_item(ref) for ref in self.references]
        return ds


@dataclass
class CommitResult:
    """One request: the N-ACTION's answer and, once it came, the report's verdict per reference."""

    request: CommitRequest
    response: NResult | None = None
    report: EventReport | None = None
    committed: list[Reference] = field(default_factory=list)
    failed: list[tuple[Reference, Status]] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.response is not None and self.response.status.category == Category.FAILURE:
            return "refused"
        if self.report is None:
            return "no-report"
        return "failed" if self.failed else "committed"

    def as_dict(self) -> dict[str, object]:
        return {"transaction_uid": self.request.transaction_uid, "outcome": self.outcome,
                "study_instance_uid": self.request.study_instance_uid,
                "via": self.report.via if self.report else None,
                "calling_aet": self.report.calling_aet if self.report else None,
                "event_type_id": self.report.event_type_id if self.report else None,
                "committed": [r.as_dict() for r in self.committed],
                "failed": [{**r.as_dict(), "failure_reason": s.as_dict()} for r, s in self.failed],
                "not_reported": [r.as_dict() for r in self.unreported()]}

    def unreported(self) -> list[Reference]:
        seen = {r.sop_instance_uid for r in self.committed} | {r.sop_instance_uid for r, _ in self.failed}
        return [r for r in self.request.references if r.sop_instance_uid not in seen] if self.report else []


def requests_from_files(files: Sequence[FileInfo], one_per_study: bool = False) -> list[CommitRequest]:
    """One request for all files (or one per study, as dcm4che's stgcmtscu), each with a new Transaction UID."""
    from pydicom.uid import generate_uid

    from dcmcli.dicomfile import read_top_level

    groups: dict[str | None, list[Reference]] = {}
    for info in files:
        study = None
        if one_per_study:
            raw = read_top_level(Path(info.path), info.dataset_offset, info.transfer_syntax, [0x0020000D])
            study = raw.get(0x0020000D, b"").decode("latin-1").strip(" \x00") or None
        refs = groups.setdefault(study, [])
        if all(r.sop_instance_uid != info.sop_instance_uid for r in refs):
            refs.append(Reference(info.sop_class_uid, info.sop_instance_uid, str(info.path)))
    return [CommitRequest(str(generate_uid()), refs, study) for study, refs in groups.items()]


def read_report(result: CommitResult, report: EventReport) -> None:
    """Fill in the verdicts of ``result`` from its report's data set."""
    ds = report.dataset()
    by_uid = {r.sop_instance_uid: r for r in result.request.references}
    result.report = report
    result.committed, result.failed = [], []
    if ds is None:
        return
    for item in ds.get("ReferencedSOPSequence", []) or []:
        uid = str(item.get("ReferencedSOPInstanceUID", ""))
        result.committed.append(by_uid.get(uid) or Reference(str(item.get("ReferencedSOPClassUID", "")), uid))
    for item in ds.get("FailedSOPSequence", []) or []:
        uid = str(item.get("ReferencedSOPInstanceUID", ""))
        reason = item.get("FailureReason")
        status = describe(int(reason), "STORAGE-COMMITMENT") if reason is not None else \
            Status(0x0110, Category.FAILURE, "failed (no Failure Reason given)")
        result.failed.append((by_uid.get(uid) or Reference(str(item.get("ReferencedSOPClassUID", "")), uid), status))


def transaction_of(report: EventReport) -> str | None:
    try:
        ds = report.dataset()
    except Exception:  # noqa: BLE001 - an unparsable report matches nothing
        return None
    return str(ds.get("TransactionUID", "")) or None if ds is not None else None


def commit(settings: AssociationSettings, peer: Peer, requests: Sequence[CommitRequest], *, wait: float,
           listen_port: int | None = None, on_listening: Callable[[int], None] | None = None,
           on_response: Callable[[CommitResult], None] | None = None,
           on_result: Callable[[CommitResult], None] | None = None,
           on_report: Callable[[NegotiationReport], None] | None = None,
           on_log: Callable[[str, str], None] | None = None) -> list[CommitResult]:
    """Ask ``peer`` to commit each request; wait up to ``wait`` seconds for all reports."""
    log = on_log or (lambda level, message: None)
    results = {r.transaction_uid: CommitResult(r) for r in requests}
    cond = threading.Condition()

    def on_event(report: EventReport) -> None:
        tuid = transaction_of(report)
        with cond:
            result = results.get(tuid or "")
            if result is None or result.report is not None:
                log("warning", f"an N-EVENT-REPORT from {report.calling_aet} for transaction {tuid or '(none)'}, "
                               f"which is none of ours waiting; ignored")
                return
            read_report(result, report)
            cond.notify_all()
        if on_result:
            on_result(result)

    def done() -> bool:
        with cond:
            return all(r.report is not None or r.outcome == "refused" for r in results.values())

    acceptor = None
    if listen_port is not None:
        address = resolve(peer)[0]
        acceptor = Acceptor(settings, AcceptorOptions(port=listen_port, allowed_hosts=[address], max_associations=4,
                                                      shutdown_timeout=5.0),
                            [EventListener([STORAGE_COMMITMENT_PUSH], on_event)], on_log=log,
                            on_association=on_report)
        port = acceptor.start()
        if on_listening:
            on_listening(port)
    try:
        deadline = time.monotonic() + wait
        with open_session(settings, peer, [STORAGE_COMMITMENT_PUSH], on_event=on_event, on_report=on_report) as s:
            for req in requests:
                result = results[req.transaction_uid]
                result.response = s.action(STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_INSTANCE, REQUEST_COMMITMENT,
                                           req.action_information())
                if on_response:
                    on_response(result)
            s.wait(max(0.0, deadline - time.monotonic()), done)
        with cond:  # released (by us, or the peer): reports may still come to the listener
            while acceptor is not None and not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                cond.wait(remaining)
    finally:
        if acceptor is not None:
            acceptor.stop(5.0)
    return list(results.values())


# -- the SCP ---------------------------------------------------------------------

class CommitmentIndex:
    """What a storage SCP has stored since it started: SOP Instance UID -> (SOP Class UID, path)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stored: dict[str, tuple[str, str | None]] = {}

    def add(self, sop_instance_uid: str, sop_class_uid: str, path: str | None) -> None:
        with self._lock:
            self._stored[sop_instance_uid] = (sop_class_uid, path)

    def get(self, sop_instance_uid: str) -> tuple[str, str | None] | None:
        with self._lock:
            found = self._stored.get(sop_instance_uid)
        if found is not None and found[1] is not None and not Path(found[1]).exists():
            return None  # removed since: not committed
        return found


@dataclass
class Commitment:
    """What the SCP did with one request (the ``commitment`` event of storescp)."""

    transaction_uid: str
    calling_aet: str
    committed: list[Reference]
    failed: list[tuple[Reference, int]]
    via: str | None = None  # how the report went: same-association, new-association, or None (not sent)
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"transaction_uid": self.transaction_uid, "calling_aet": self.calling_aet,
                "committed": [r.as_dict() for r in self.committed],
                "failed": [{**r.as_dict(), "failure_reason": describe(code, "STORAGE-COMMITMENT").as_dict()}
                           for r, code in self.failed],
                "via": self.via, "error": self.error}


class CommitmentService(Service):
    """Storage Commitment Push Model SCP over a ``CommitmentIndex``."""

    name = "storage commitment"

    def __init__(self, index: CommitmentIndex, settings: AssociationSettings, peers: dict[str, Peer], *,
                 on_commitment: Callable[[Commitment], None] | None = None) -> None:
        self.index = index
        self.settings = settings
        self.peers = peers
        self.on_commitment = on_commitment or (lambda c: None)

    def transfer_syntaxes(self, abstract_syntax: str) -> Sequence[str] | None:
        return NORMALIZED_SYNTAXES if abstract_syntax == STORAGE_COMMITMENT_PUSH else None

    def handle(self, assoc: ServedAssociation, msg: Message) -> None:
        cmd = msg.command
        if cmd.field != N_ACTION_RQ:
            assoc.channel.discard_data()
            assoc.refuse(msg, 0x0211, "this SCP takes only N-ACTION for Storage Commitment")
            return
        data = assoc.channel.read_data(16 << 20) if cmd.has_dataset else None

        def answer(status: int, comment: str | None = None) -> None:
            if status:
                assoc.log("warning", f"storage commitment N-ACTION from {assoc.calling_aet}@{assoc.address} "
                                     f"refused: {comment} (0x{status:04X})")
            assoc.send(msg.context_id, response(N_ACTION_RSP, cmd.message_id, status,
                                                affected_sop_class=STORAGE_COMMITMENT_PUSH,
                                                affected_sop_instance=cmd.text(0x1001) or None,
                                                action_type_id=cmd.number(0x1008), error_comment=comment))

        if cmd.number(0x1008) != REQUEST_COMMITMENT:
            return answer(0x0123, f"no such action type {cmd.number(0x1008)} (1 requests storage commitment)")
        if cmd.text(0x1001) != STORAGE_COMMITMENT_INSTANCE:
            return answer(0x0117, f"the request must name the well-known instance {STORAGE_COMMITMENT_INSTANCE}")
        from dcmcli.dataset import InvalidDataset, decode

        try:
            ds = decode(data or b"", assoc.accepted[msg.context_id][1]) if data else None
        except InvalidDataset:
            ds = None
        tuid = str(ds.get("TransactionUID", "")) if ds is not None else ""
        if not is_uid(tuid):
            return answer(0x0120 if not tuid else 0x0106, "the Action Information has no valid Transaction UID")
        refs = ds.get("ReferencedSOPSequence") if ds is not None else None
        if not refs:
            return answer(0x0120, "the Action Information has no Referenced SOP Sequence")
        answer(0x0000)
        committed: list[Reference] = []
        failed: list[tuple[Reference, int]] = []
        for item in refs:
            ref = Reference(str(item.get("ReferencedSOPClassUID", "")), str(item.get("ReferencedSOPInstanceUID", "")))
            found = self.index.get(ref.sop_instance_uid)
            if found is None:
                failed.append((ref, 0x0112))
            elif found[0] != ref.sop_class_uid:
                failed.append((ref, 0x0119))
            else:
                committed.append(Reference(ref.sop_class_uid, ref.sop_instance_uid, found[1]))
        result = Commitment(tuid, assoc.calling_aet, committed, failed)
        report = self._report(result)
        event_type = SOME_FAILED if failed else ALL_COMMITTED
        if self._send_here(assoc, msg.context_id, report, event_type):
            result.via = "same-association"
        else:
            result.via, result.error = self._send_new(assoc, report, event_type)
        self.on_commitment(result)

    @staticmethod
    def _report(result: Commitment) -> Dataset:
        from pydicom.dataset import Dataset as DS

        ds = DS()
        ds.TransactionUID = result.transaction_uid
        if result.committed:
            ds.ReferencedSOPSequence = [referenced_item(ref) for ref in result.committed]
        if result.failed:
            ds.FailedSOPSequence = [referenced_item(ref, code) for ref, code in result.failed]
        return ds

    def _send_here(self, assoc: ServedAssociation, context_id: int, report: Any, event_type: int) -> bool:
        """The report on the requestor's association; False when it released or left first."""
        from dcmcli.dataset import encode

        data = encode(report, assoc.accepted[context_id][1])
        mid = assoc.state.get("commitment_message_id", 0) + 1
        assoc.state["commitment_message_id"] = mid
        try:
            assoc.send(context_id, request(N_EVENT_REPORT_RQ, mid, dataset=True,
                                           affected_sop_class=STORAGE_COMMITMENT_PUSH,
                                           affected_sop_instance=STORAGE_COMMITMENT_INSTANCE,
                                           event_type_id=event_type), data)
            answer = assoc.channel.receive()
            if answer is None:  # it released instead of answering
                return False
            assoc.channel.discard_data()
            if answer.command.field != N_EVENT_REPORT_RSP:
                raise ProtocolError(f"a {answer.command.name} where the N-EVENT-REPORT-RSP was due")
            if answer.command.status:
                assoc.log("warning", f"{assoc.calling_aet} answered the commitment report with "
                                     f"0x{answer.command.status:04X}")
            return True
        except PeerAborted:
            return False
        except (ConnectionClosed, ProtocolError) as exc:
            assoc.log("info", f"commitment report on the same association failed ({exc}); trying a new one")
            if not assoc.conn.closed:
                assoc.conn.abort(2, 0)
            return False

    def _send_new(self, assoc: ServedAssociation, report: Any, event_type: int) -> tuple[str | None, str | None]:
        """The report on a new association to the requester, as ``--commitment-peer`` names it."""
        from dataclasses import replace

        from dcmcli.dataset import encode
        from dcmcli.errors import NetworkError

        target = self.peers.get(assoc.calling_aet)
        if target is None:
            why = (f"no --commitment-peer for {assoc.calling_aet}: the report for its request could not be sent "
                   f"after it released")
            assoc.log("warning", why)
            return None, why
        settings = replace(self.settings, called_aet=target.ae_title or assoc.calling_aet, called_aet_given=False)
        try:
            out = request_association(settings, Peer(target.host, target.port, target.ae_title or assoc.calling_aet),
                                      [Context(None, STORAGE_COMMITMENT_PUSH, list(NORMALIZED_SYNTAXES))],
                                      roles=[RoleSelection(STORAGE_COMMITMENT_PUSH, False, True)])
        except NetworkError as exc:
            assoc.log("warning", f"cannot send the commitment report to {target}: {exc.message}")
            return None, exc.message
        try:
            cid = out.context_for(STORAGE_COMMITMENT_PUSH)
            assert cid is not None
            mid = out.next_message_id()
            final = out.exchange(cid, request(N_EVENT_REPORT_RQ, mid, dataset=True,
                                              affected_sop_class=STORAGE_COMMITMENT_PUSH,
                                              affected_sop_instance=STORAGE_COMMITMENT_INSTANCE,
                                              event_type_id=event_type),
                                 encode(report, out.accepted[cid][1]), mid)
            out.release()
        except (ConnectionClosed, PeerAborted, ProtocolError) as exc:
            out.abort()
            why = f"the commitment report to {target} was lost: {exc}"
            assoc.log("warning", why)
            return None, why
        if final.status:
            assoc.log("warning", f"{target} answered the commitment report with 0x{final.status:04X}")
        return "new-association", None


def parse_commitment_peer(text: str) -> tuple[str, Peer]:
    """``AET=host:port`` (storescp --commitment-peer)."""
    from dcmcli.errors import UsageError
    from dcmcli.net.peer import parse_peer, validate_ae_title

    aet, sep, where = text.partition("=")
    if not sep or not where:
        raise UsageError(f"invalid --commitment-peer {text!r}", "write it as AET=host:port")
    title = validate_ae_title(aet, "AE title of --commitment-peer")
    peer, _ = parse_peer(where, [])
    return title, Peer(peer.host, peer.port, title)


__all__ = ["CommitRequest", "CommitResult", "Reference", "requests_from_files", "commit", "read_report",
           "CommitmentIndex", "CommitmentService", "Commitment", "parse_commitment_peer"]


_SC = (STORAGE_COMMITMENT_PUSH,)
#: Storage commitment as requestor (nactionscu --commit) and as storescp's SCP (--commitment).
CONFORMANCE = [
    ApplicationEntity(
        "NACTIONSCU", "nactionscu",
        contexts=(
            Contexts(_SC, NORMALIZED_SYNTAXES, "SCU", True, when="--commit",
                     note="N-ACTION 1 (Request Storage Commitment) to the well-known instance "
                          f"{STORAGE_COMMITMENT_INSTANCE}; the report (N-EVENT-REPORT) is taken on this association"),
            Contexts(_SC, NORMALIZED_SYNTAXES, "SCU", False, when="--commit --port PORT",
                     role_selection="answered: the peer may be SCP (it sends the report as SCP of the class)",
                     note="the report on a new association from the peer, accepted from its address only"),
        ),
        statuses=(Statuses("STORAGE-COMMITMENT", "SCU", behaviour={
            "success": "every instance committed: exit 0",
            "failure": "the failed references printed with each Failure Reason in plain words; exit 66 "
                       "(63 when no report came within --wait)"}),),
        initiation=("One association for all the requests of a run (`--one-per-study`: a Transaction UID per "
                    "study); released after the reports came or `--wait` passed.",),
    ),
    ApplicationEntity(
        "STORESCP", "storescp",
        contexts=(
            Contexts(_SC, NORMALIZED_SYNTAXES, "SCP", False, when="--commitment",
                     note="for the instances this storescp stored since it started (an index, checked against "
                          "the files still there)"),
            Contexts(_SC, NORMALIZED_SYNTAXES, "SCP", True, when="--commitment, the requestor released first",
                     role_selection="proposes SCP role (the report is sent as SCP)",
                     note="the report on a new association to the --commitment-peer AET=host:port named"),
        ),
        statuses=(
            Statuses("N-ACTION", "SCP", (0x0000, 0x0106, 0x0117, 0x0120, 0x0123), {
                0x0000: "the request is taken; the report follows",
                0x0106: "the Transaction UID is not a valid UID",
                0x0117: "the request names another instance than the well-known one",
                0x0120: "no Transaction UID, or no Referenced SOP Sequence",
                0x0123: "an action type other than 1 (Request Storage Commitment)"}),
            Statuses("STORAGE-COMMITMENT", "SCP", (0x0112, 0x0119), {
                0x0112: "Failure Reason of a reference this storescp does not have (or whose file is gone)",
                0x0119: "Failure Reason of a reference stored with another SOP class"}),
        ),
        acceptance=("The report goes on the requester's association while that is open, else on a new "
                    "association to the `--commitment-peer` given for the requester's AE title.",),
    ),
]
