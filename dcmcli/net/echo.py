"""Verification (C-ECHO) and the storage-support probe."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.presentation import build_context

from dcmcli.errors import AssociationAborted
from dcmcli.net.association import DcmcliAE, NegotiationReport, abort_info, open_association
from dcmcli.net.contexts import chunk_pairs
from dcmcli.net.peer import Peer
from dcmcli.net.uids import ELE, ILE, uid_name
from dcmcli.status import Status, describe


@dataclass
class EchoResult:
    number: int
    status: Status
    rtt_ms: float

    def as_dict(self) -> dict[str, object]:
        return {"n": self.number, "status": self.status.as_dict(), "rtt_ms": round(self.rtt_ms, 3)}


def echo(ae: DcmcliAE, peer: Peer, repeat: int = 1, *,
         on_report: Callable[[NegotiationReport], None] | None = None,
         on_result: Callable[[EchoResult], None] | None = None) -> list[EchoResult]:
    """Send ``repeat`` C-ECHO requests on one association."""
    results: list[EchoResult] = []
    with open_association(ae, peer, [build_context(Verification, [ELE, ILE])]) as (assoc, report):
        if on_report:
            on_report(report)
        for n in range(1, repeat + 1):
            t0 = time.perf_counter()
            rsp = assoc.send_c_echo(msg_id=n)
            rtt = (time.perf_counter() - t0) * 1000.0
            if "Status" not in rsp:
                raise AssociationAborted(f"no answer to C-ECHO {n} from {peer}: {abort_info(assoc)}",
                                         "raise -td if the peer is slow; check the peer's log", report=report)
            res = EchoResult(n, describe(int(rsp.Status), "C-ECHO"), rtt)
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


def probe(ae: DcmcliAE, peer: Peer, sop_classes: Sequence[str], transfer_syntaxes: Sequence[str], *,
          on_report: Callable[[NegotiationReport], None] | None = None) -> list[ProbeResult]:
    """Propose every (SOP class, transfer syntax) pair, one context each, 128 per association."""
    pairs = [(sop, [ts]) for sop in sop_classes for ts in transfer_syntaxes]
    results: list[ProbeResult] = []
    from dcmcli.errors import NoAcceptableContext

    for contexts in chunk_pairs(pairs):
        try:
            with open_association(ae, peer, contexts) as (_assoc, report):
                if on_report:
                    on_report(report)
        except NoAcceptableContext as exc:  # a batch the peer wants none of is an answer too
            report = exc.report  # type: ignore[assignment]
            if on_report:
                on_report(report)
        for c in report.contexts:
            results.append(ProbeResult(c.abstract_syntax, c.transfer_syntaxes[0], c.result == 0, c.result))
    return results
