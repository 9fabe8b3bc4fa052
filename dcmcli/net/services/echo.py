"""Verification (C-ECHO) and the storage-support probe."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.errors import AssociationAborted, NoAcceptableContext
from dcmcli.net.association import AssociationSettings, NegotiationReport, lost_reason, open_association
from dcmcli.net.contexts import CEN_PROPOSED, chunk_pairs, storage_common_extended
from dcmcli.net.dimse import C_ECHO_RSP, c_echo_rq
from dcmcli.net.peer import Peer
from dcmcli.net.ul import Context, ConnectionClosed, PeerAborted, ProtocolError
from dcmcli.records import dataclass
from dcmcli.uids import (ELE, ILE, J2K, J2K_LOSSLESS, JPEG_BASELINE, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, RLE,
                         VERIFICATION, storage_sop_classes, uid_name)
from dcmcli.status import Status, describe

#: What C-ECHO is proposed in.
ECHO_SYNTAXES = (ELE, ILE)
#: The transfer syntaxes the storage probe proposes by default (--probe-ts).
PROBE_SYNTAXES = (ILE, ELE, RLE, JPEG_BASELINE, JPEG_LOSSLESS_SV1, JPEG_LS_LOSSLESS, J2K_LOSSLESS, J2K)


@dataclass
class EchoResult:
    number: int
    status: Status
    rtt_ms: float

    def as_dict(self) -> dict[str, object]:
        return {"n": self.number, "status": self.status.as_dict(), "rtt_ms": round(self.rtt_ms, 3)}


def echo(settings: AssociationSettings, peer: Peer, repeat: int = 1, *,
         on_report: Callable[[NegotiationReport], None] | None = None,
         on_result: Callable[[EchoResult], None] | None = None) -> list[EchoResult]:
    """Send ``repeat`` C-ECHO requests on one association."""
    results: list[EchoResult] = []
    with open_association(settings, peer, [Context(None, VERIFICATION, list(ECHO_SYNTAXES))]) as assoc:
        report = assoc.report
        if on_report:
            on_report(report)
        context_id = next(iter(assoc.accepted))
        for n in range(1, repeat + 1):
            t0 = time.perf_counter()
            try:
                assoc.send(context_id, c_echo_rq(n))
                rsp = assoc.receive().command
                if rsp.field != C_ECHO_RSP or rsp.responding_to != n:
                    raise ProtocolError(f"a {rsp.name} for message {rsp.responding_to} answered C-ECHO {n}")
            except (ConnectionClosed, PeerAborted, ProtocolError) as exc:
                if isinstance(exc, ProtocolError):
                    assoc.conn.abort(2, exc.reason)
                raise AssociationAborted(f"no answer to C-ECHO {n} from {peer}: {lost_reason(exc, settings)}",
                                         "raise -td if the peer is slow; check the peer's log", report=report) from None
            rtt = (time.perf_counter() - t0) * 1000.0
            res = EchoResult(n, describe(rsp.status, "C-ECHO"), rtt)
            results.append(res)
            if on_result:
                on_result(res)
    return results


@dataclass
class ProbeResult:
    sop_class_uid: str
    transfer_syntax: str
    accepted: bool
    result: int | None

    def as_dict(self) -> dict[str, object]:
        return {"sop_class_uid": self.sop_class_uid, "sop_class": uid_name(self.sop_class_uid),
                "transfer_syntax": self.transfer_syntax, "transfer_syntax_name": uid_name(self.transfer_syntax),
                "accepted": self.accepted, "result": self.result}


def probe(settings: AssociationSettings, peer: Peer, sop_classes: Sequence[str], transfer_syntaxes: Sequence[str], *,
          on_report: Callable[[NegotiationReport], None] | None = None, common_extended: bool = False,
          related_general: dict[str, tuple[str, ...]] | None = None) -> list[ProbeResult]:
    """Propose every (SOP class, transfer syntax) pair, one context each, 128 per association;
    with ``common_extended`` also a SOP Class Common Extended Negotiation item per class (as
    storescu -cen sends them), so that the probe answers whether the peer takes a class it may
    not know, a private one, as storage."""
    pairs = [(sop, [ts]) for sop in sop_classes for ts in transfer_syntaxes]
    results: list[ProbeResult] = []
    for contexts in chunk_pairs(pairs):
        common = storage_common_extended((c.abstract_syntax for c in contexts), related_general,
                                         enabled=common_extended)
        try:
            with open_association(settings, peer, contexts, common_extended=common) as assoc:
                report = assoc.report
        except NoAcceptableContext as exc:  # a batch the peer wants none of is an answer too
            report = exc.report  # type: ignore[assignment]
        if on_report:
            on_report(report)
        for c in report.contexts:
            results.append(ProbeResult(c.abstract_syntax, c.transfer_syntaxes[0], c.result == 0, c.result))
    return results


#: The AE this module is (dcmcli/conformance: the conformance statement is built from it).
CONFORMANCE = [ApplicationEntity(
    "ECHOSCU", "echoscu",
    "Verifies DICOM communication with a peer (C-ECHO, `-r N` round trips on one association). With "
    "`--propose-storage` it probes which storage SOP classes and transfer syntaxes the peer accepts: one "
    "context per (SOP class, transfer syntax) pair, 128 per association, nothing sent on them.",
    contexts=(
        Contexts((VERIFICATION,), ECHO_SYNTAXES, "SCU", True),
        Contexts(storage_sop_classes, PROBE_SYNTAXES, "SCU", True, label="every storage SOP class",
                 one_per_syntax=True, when="--propose-storage (--propose and --probe-ts choose others)",
                 note="a probe: no C-STORE is sent", extended=CEN_PROPOSED),
    ),
    statuses=(Statuses("C-ECHO", "SCU", (0x0000,), behaviour={
        "success": "printed with the round-trip time; exit 0",
        "failure": "printed with its meaning; exit 66"}),),
    initiation=("One association per run (the probe: one per 128 contexts), released after the last C-ECHO.",),
)]
