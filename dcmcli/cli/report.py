"""How commands show a negotiation report (the JSON event always with --json,
plain lines on stderr with -v) and the inputs they skip."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcmcli.net.association import NegotiationReport
from dcmcli.output import Output, Verbosity

if TYPE_CHECKING:
    from dcmcli.dicomfile import Inputs, Skipped


def show_report(out: Output, report: NegotiationReport) -> None:
    out.emit("association", report.as_dict, None)
    if out.verbosity >= Verbosity.VERBOSE:
        for line in report.lines():
            out.info(line)


def show_skipped(out: Output, item: Skipped) -> None:
    """One input left out: the ``skipped`` event, and its warning line."""
    out.emit("skipped", {"path": item.path, "reason": item.reason}, None)
    out.warn(item.warning)


def show_inputs(out: Output, inputs: Inputs) -> None:
    """What input discovery left out, and the files whose file meta and data
    set disagree (their data set's UIDs are used, as DCMTK does)."""
    for item in inputs.unreadable + inputs.skipped:
        show_skipped(out, item)
    for info in inputs.files:
        if info.warning:
            out.warn(f"{info.path}: {info.warning}")
