"""dcmcli mwlscp: a Modality Worklist SCP (C-FIND) serving .wl, DICOM JSON and CSV files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import DCMTK_PANEL, Common, dcmcli_command
from dcmcli.cli.report import show_report
from dcmcli.cli.serving import log_printer, serve
from dcmcli.errors import ExitCode, InputError, UsageError
from dcmcli.net.peer import validate_ae_title, validate_port
from dcmcli.output import Output

#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ("Serve DCMTK's worklist folder layout: DIR/<called AE>/*.wl (DCMTK: wlmscpfs -dfp DIR 11112).",
     "dcmcli mwlscp -dfp /srv/worklist 11112"),
    ("Serve a worklist kept in a spreadsheet (header row of keywords or sequence paths) to any called AE title.",
     "dcmcli mwlscp --source today.csv 11112"),
    ("Answer every called AE title from the OFFIS folder, names matched case-insensitively, at most 500 matches.",
     "dcmcli mwlscp -dfp /srv/worklist --default-ae OFFIS --case-insensitive-pn --max-matches 500 11112"),
    ("One JSON line per association and per query, for a log collector.",
     "dcmcli mwlscp --json -dfp /srv/worklist 0"),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["listening", "association", "query", "stopped"]



@dcmcli_command(app, "mwlscp", network="scp", default_aet="MWLSCP", listener=True)
def mwlscp(
    common: Common,
    port: Annotated[str, typer.Argument(metavar="PORT", help="TCP port to listen on (0: any free port, printed).")],
    data_files_path: Annotated[Path | None, typer.Option(
        "-dfp", "--data-files-path", metavar="DIR",
        help="wlmscpfs's layout: DIR/<called AE title>/ holds the worklist: *.wl (DICOM), *.json (DICOM JSON), "
             "*.csv files.")] = None,
    source: Annotated[list[Path] | None, typer.Option(
        "--source", metavar="FILE-OR-DIR",
        help="Worklist files (.wl, .json, .csv) or folders of them served to every called AE title (repeatable).")] = None,
    default_ae: Annotated[str | None, typer.Option(
        "--default-ae", metavar="AETITLE",
        help="The -dfp folder for called AE titles that have none (default: such associations are rejected).")] = None,
    case_insensitive_pn: Annotated[bool, typer.Option(
        "--case-insensitive-pn", help="Match person names case-insensitively (default: case-sensitive).")] = False,
    combined_datetime: Annotated[bool, typer.Option(
        "--combined-datetime",
        help="Match date and time range pairs as one datetime range even when the requestor did not ask for it "
             "by extended negotiation (PS3.4 C.2.2.2.5).")] = False,
    reject_incomplete: Annotated[bool, typer.Option(
        "--reject-incomplete", "-efr", "--enable-file-reject",
        help="Do not serve items that lack type 1 attributes of the worklist model (warned once per file).")] = False,
    serve_incomplete: Annotated[bool, typer.Option(
        "-dfr", "--disable-file-reject", rich_help_panel=DCMTK_PANEL,
        help="Serve incomplete items too (the default here; wlmscpfs rejects them by default).")] = False,
    max_matches: Annotated[int | None, typer.Option(
        "--max-matches", min=1, metavar="N",
        help="Answer at most N matches, then 0xA700 (out of resources) telling the requestor to narrow the query.")] = None,
) -> int:
    """Serve a Modality Worklist (C-FIND SCP, PS3.4 Annex K) from .wl, DICOM JSON and CSV files.

    Files are re-read when they change (cached by modification time). Usage as in DCMTK:
    dcmcli mwlscp OPTIONS port
    """
    from dcmcli.net.acceptor import Acceptor, VerificationService
    from dcmcli.net.services.worklist import WorklistService, WorklistServiceOptions
    from dcmcli.worklist import Worklist, WorklistOptions, safe_ae_folder

    out = common.out
    if data_files_path is None and not source:
        raise UsageError("no worklist given", "give -dfp DIR (wlmscpfs's layout) and/or --source FILE-OR-DIR")
    if reject_incomplete and serve_incomplete:
        raise UsageError("--reject-incomplete and --disable-file-reject contradict each other", "give one of them")
    if data_files_path is not None and not data_files_path.is_dir():
        raise InputError(f"the worklist folder {str(data_files_path)!r} does not exist or is not a folder",
                         "give -dfp the folder that holds one folder per called AE title")
    for s in source or []:
        if not s.exists():
            raise InputError(f"worklist source {str(s)!r} does not exist", "check the path")
    if default_ae is not None:
        default_ae = validate_ae_title(default_ae, "AE title (--default-ae)")
        if data_files_path is None:
            raise UsageError("--default-ae names a folder below -dfp, and no -dfp was given", "give -dfp DIR")
        if not safe_ae_folder(default_ae) or not (data_files_path / default_ae).is_dir():
            raise InputError(f"there is no folder {str(data_files_path / default_ae)!r} for --default-ae",
                             "create it or name an existing AE folder")
    log = log_printer(out)
    worklist = Worklist(WorklistOptions(folder=data_files_path, sources=tuple(source or ()), default_ae=default_ae,
                                        reject_incomplete=reject_incomplete), on_log=log)
    files, items = worklist.load()
    service = WorklistService(worklist, WorklistServiceOptions(case_insensitive_pn=case_insensitive_pn,
                                                               combined_datetime=combined_datetime,
                                                               max_matches=max_matches),
                              on_query=query_printer(out))
    acceptor = common.acceptor
    assert acceptor is not None
    acceptor.port = validate_port(port)
    acceptor.check_called = worklist.refusal
    server = _Server(Acceptor(common.settings, acceptor, [VerificationService(), service], on_log=log,
                              on_association=lambda report: show_report(out, report)),
                     common.settings.calling_aet, data_files_path, list(source or []), files, items)
    aborted = serve(out, server, lambda info: (
        f"listening on {info['bind']}:{info['port']} as {info['ae_title']}, serving {items} worklist "
        f"item{'s' if items != 1 else ''} from {files} file{'s' if files != 1 else ''}"))
    out.emit("stopped", {"queries": service.queries, "aborted_associations": aborted},
             f"stopped: {service.queries} quer{'ies' if service.queries != 1 else 'y'} answered"
             + (f", {aborted} association{'s' if aborted != 1 else ''} aborted" if aborted else ""))
    return int(ExitCode.OK)


class _Server:
    """The acceptor, with what the listening event says about the worklist."""

    def __init__(self, acceptor, aet: str, folder: Path | None, sources: list[Path], files: int,  # type: ignore[no-untyped-def]
                 items: int) -> None:
        self.acceptor, self.aet, self.folder, self.sources = acceptor, aet, folder, sources
        self.files, self.items = files, items

    @property
    def listening(self) -> bool:
        return bool(self.acceptor.listening)

    def start(self) -> int:
        return int(self.acceptor.start())

    def stop(self, timeout: float | None = None) -> int:
        return int(self.acceptor.stop(timeout))

    def listening_info(self) -> dict[str, object]:
        o = self.acceptor.options
        return {"port": self.acceptor.port, "bind": o.bind or "0.0.0.0", "ae_title": self.aet,
                "data_files_path": str(self.folder) if self.folder is not None else None,
                "sources": [str(s) for s in self.sources], "files": self.files, "items": self.items}


def query_printer(out: Output):  # type: ignore[no-untyped-def]
    """The ``query`` event: one per C-FIND answered."""
    from dcmcli.status import describe

    def on_query(r) -> None:  # type: ignore[no-untyped-def]
        status = describe(r.status, "C-FIND")
        data = {"calling_aet": r.calling_aet, "called_aet": r.called_aet, "peer": r.peer, "keys": r.keys,
                "identifier": r.identifier, "matches": r.matches, "items_searched": r.items_searched,
                "status": status.as_dict(), "message": r.message or None, "cancelled": r.cancelled,
                "seconds": r.seconds}
        words = (f"query from {r.calling_aet} to {r.called_aet}: {r.matches} match{'es' if r.matches != 1 else ''}"
                 f" of {r.items_searched}, {status.meaning} ({status.hex})"
                 + (f": {r.message}" if r.message else "") + f", {r.seconds * 1000:.1f} ms")
        if out.verbosity >= 1:
            words += "\n  keys: " + (" ".join(r.keys) or "(none)")
        out.emit("query", data, words, plain=True)

    return on_query
