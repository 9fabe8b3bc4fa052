"""dcmcli findscu: query a peer (C-FIND) and print the matches as a table, DICOM JSON, NDJSON or CSV."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import Common, OutputDirectory, PeerArgument, QueryFilesArgument, dcmcli_command
from dcmcli.cli.report import show_report
from dcmcli.errors import ExitCode, OutputError, UsageError
from dcmcli.net.peer import parse_peer
from dcmcli.net.services.query import FindOptions, FindOutcome, Match, build_query, find, find_status_hint
from dcmcli.output import Output

if TYPE_CHECKING:
    from dcmcli.render import Writers
from dcmcli.status import Category


#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('Studies of a patient, as a table (DCMTK: findscu -S -k QueryRetrieveLevel=STUDY -k PatientID=123 ...).',
     'dcmcli findscu -aec ARCHIVE pacs 104 -k PatientID=123'),
    ('Series of a study, with chosen return keys, as CSV.',
     'dcmcli findscu -L SERIES -k StudyInstanceUID=1.2.3 -k Modality -k SeriesDescription --csv - pacs 104'),
    ("Today's worklist for a modality (DCMTK: findscu -W ...), as DICOM JSON lines.",
     "dcmcli findscu -W -k 'ScheduledProcedureStepSequence[0].Modality=CT' -k 'ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261201' --ndjson - ris 104"),
    ("Write each match as rsp0001.dcm ... like DCMTK's -X.",
     'dcmcli findscu -X -od answers pacs 104 query.dcm'),
    ('Stop after 20 matches.',
     "dcmcli findscu --limit 20 -k 'PatientName=DOE*' pacs 104"),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["association", "match", "summary"]


@dcmcli_command(app, "findscu", network="scu", default_aet="FINDSCU", query=True)
def findscu(
    common: Common,
    peer: PeerArgument,
    args: QueryFilesArgument = None,
    worklist: Annotated[bool, typer.Option("-W", "--worklist", rich_help_panel="Query options",
                                           help="Modality Worklist information model.")] = False,
    cancel_after: Annotated[int | None, typer.Option("--cancel", min=0, metavar="N",
                                                     help="Send C-CANCEL after N responses.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, metavar="N",
                                              help="Stop after N matches (C-CANCEL; later ones are dropped).")] = None,
    repeat: Annotated[int, typer.Option("--repeat", min=1, metavar="N", help="Repeat the query N times.")] = 1,
    relational: Annotated[bool, typer.Option("--relational", help="Ask for relational queries (extended negotiation).")] = False,
    datetime_: Annotated[bool, typer.Option("--datetime", help="Ask for combined date-time matching.")] = False,
    fuzzy: Annotated[bool, typer.Option("--fuzzy", help="Ask for fuzzy semantic matching of person names.")] = False,
    timezone: Annotated[bool, typer.Option("--timezone", help="Ask for timezone query adjustment.")] = False,
    csv_file: Annotated[str | None, typer.Option("--csv", metavar="FILE",
                                                 help="Write the matches as CSV to FILE ('-': stdout).")] = None,
    ndjson_file: Annotated[str | None, typer.Option(
        "--ndjson", metavar="FILE", help="Write the matches as DICOM JSON, one object per line, to FILE ('-': stdout).")] = None,
    xml_file: Annotated[str | None, typer.Option(
        "-Xs", "--extract-single", "--xml", metavar="FILE",
        help="Write every match into one XML file in DCMTK's format (as DCMTK's findscu -Xs; '-': stdout).")] = None,
    extract: Annotated[bool, typer.Option("-X", "--extract", help="Write each match as a DICOM file rsp0001.dcm, ... "
                                                                    "(below -od).")] = False,
    output_directory: OutputDirectory = Path("."),
    no_default_keys: Annotated[bool, typer.Option(
        "--no-default-keys", help="Send exactly the keys given (no usual return keys, no unique keys added).")] = False,
) -> int:
    """Query a peer (C-FIND) and print the matches: a table, --json (DICOM JSON per match), --ndjson, --csv.

    With no -k, the usual return keys of the level are asked for. Usage as in DCMTK:
    dcmcli findscu OPTIONS peer port [query-file...]
    """
    out = common.out
    assert common.query is not None
    from dcmcli.dataset import skip_pixel_imports

    skip_pixel_imports()  # nothing here decodes pixels
    target, files = parse_peer(peer, list(args or []))
    model, sop_class = common.query.resolve("find", "worklist" if worklist else None)
    from dcmcli.dataset import fast_json, read_dataset_file, to_json

    bases = [ds for f in files for ds in read_dataset_file(Path(f))]
    query = build_query(model, common.query.level, common.query.keys, bases, default_keys=not no_default_keys)
    for note in query.notes:
        out.warn(note)
    if common.debug:
        out.debug(f"identifier:\n{query.identifier}")
    flags = {n for n, on in (("relational", relational), ("datetime", datetime_), ("fuzzy", fuzzy),
                             ("timezone", timezone)) if on}
    from dcmcli.render import Column, open_writers

    columns = [Column.of(p) for p in query.columns]
    writers = open_writers(columns, csv_file, ndjson_file, out)
    table = writers.table
    if extract:
        try:
            output_directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create {str(output_directory)!r}: {exc.strerror or exc}",
                              "check -od") from None
    written = 0
    t0 = time.perf_counter()
    xml = None
    if xml_file is not None:
        from dcmcli.render import XmlWriter, open_output

        if xml_file == "-" and (out.json_mode or writers.stdout_taken):
            raise UsageError("--xml - and another output both write to stdout", "send one of them to a file")
        xml_stream = open_output(xml_file, "the XML file")
        assert xml_stream is not None
        xml = XmlWriter(xml_stream)
        if xml_file == "-":
            writers.stdout_taken = True
            writers.table = table = None

    def on_match(m: Match) -> None:
        nonlocal written
        if xml is not None:
            xml.add(m.data, m.transfer_syntax)
        # Flat identifiers go straight from bytes to DICOM JSON; pydicom
        # parses only what that cannot (sequences, other character sets) and -X.
        record = None if extract else fast_json(m.data, m.transfer_syntax)
        ds = None
        if record is None:
            ds = m.dataset()
            record = to_json(ds)
        writers.add(record)
        out.emit("match", lambda: {"n": m.number, "repeat": m.repeat, "status": m.status.as_dict(), "dataset": record})
        if extract:
            written += 1
            _write_response(ds, output_directory / f"rsp{written:04d}.dcm", sop_class)

    def on_outcome(o: FindOutcome) -> None:
        if table is not None and table.rows:
            table.print(sys.stdout, rich=out.stdout_is_terminal)
            table.rows.clear()

    try:
        outcomes = find(common.settings, target, sop_class, query.identifier,
                        FindOptions(cancel_after=cancel_after, limit=limit, repeat=repeat, extended=flags),
                        on_match=on_match, on_report=lambda r: show_report(out, r), on_outcome=on_outcome)
    finally:
        writers.close()
        if xml is not None:
            xml.close()
            if xml.stream is not sys.stdout:
                xml.stream.close()
    return _summary(out, outcomes, time.perf_counter() - t0, writers)


def _write_response(ds: Any, path: Path, sop_class: str) -> None:
    from dcmcli.dataset import write_part10

    try:
        write_part10(ds, path, sop_class)
    except OSError as exc:
        raise OutputError(f"cannot write {str(path)!r}: {exc.strerror or exc}", "check -od") from None


def _summary(out: Output, outcomes: list[FindOutcome], seconds: float, writers: Writers) -> int:
    last = outcomes[-1]
    matches = sum(o.matches for o in outcomes)
    failed = last.status.category == Category.FAILURE
    code = ExitCode.OPERATION_FAILED if failed else ExitCode.OK
    summary = {"matches": matches, "queries": len(outcomes), "status": last.status.as_dict(),
               "error_comment": last.error_comment or None, "cancelled": any(o.cancelled for o in outcomes),
               "seconds": round(seconds, 3), "outcomes": [o.as_dict() for o in outcomes], "exit_code": int(code)}
    if failed:
        out.emit("summary", summary, None)
        comment = f": {last.error_comment}" if last.error_comment else ""
        offending = (f" (offending: {', '.join(last.as_dict()['offending_elements'])})"  # type: ignore[arg-type]
                     if last.offending_elements else "")
        out.error_line(f"C-FIND failed after {matches} match{'es' if matches != 1 else ''}: {last.status.meaning} "
                       f"({last.status.hex}){comment}{offending}; {find_status_hint(last.status.code)}")
        return int(code)
    if matches == 0:
        human = "no matches"
    else:
        human = f"{matches} match{'es' if matches != 1 else ''}"
    if summary["cancelled"] and last.status.category == Category.CANCEL:
        human += f", cancelled as asked ({last.status.meaning}, {last.status.hex})"
    elif summary["cancelled"]:
        human += f"; C-CANCEL sent, but the peer had answered everything ({last.status.meaning}, {last.status.hex})"
    human += f" in {seconds:.2f} s"
    writers.summary(out, summary, human)
    return int(code)
