"""How commands show a negotiation report: JSON event always with --json,
plain lines on stderr with -v."""

from __future__ import annotations

from dcmcli.net.association import NegotiationReport
from dcmcli.output import Output, Verbosity


def show_report(out: Output, report: NegotiationReport) -> None:
    out.emit("association", report.as_dict, None)
    if out.verbosity >= Verbosity.VERBOSE:
        for line in report.lines():
            out.info(line)
