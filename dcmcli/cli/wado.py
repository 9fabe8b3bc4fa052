"""dcmcli wado: DICOMweb (QIDO-RS query, WADO-RS retrieve, STOW-RS store) and WADO-URI.

Thin: each action parses its options and calls the web core (dcmcli/web/);
httpx is imported only there, so no other command pays for it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import _KEY, Common, WarningsAsErrors, dcmcli_command
from dcmcli.errors import ExitCode, OutputError, UsageError, worst
from dcmcli.output import Output, human_size

wado_app = typer.Typer(
    name="wado", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]})
app.add_typer(wado_app, name="wado")


@wado_app.callback()
def _wado() -> None:
    """DICOMweb and WADO-URI: query (QIDO-RS), retrieve (WADO-RS), store (STOW-RS), uri (WADO-URI).

    Each action has its own help (dcmcli wado ACTION --help) and takes the same HTTP options: -u/--user,
    --token/--token-env, -H, --cacert, --insecure, -to/--timeout; proxies come from HTTP_PROXY, HTTPS_PROXY
    and NO_PROXY. HTTP failures exit with the shared table's codes: cannot connect 60, connection lost or
    timeout 62, 401/403 69, any other 4xx/5xx 66.
    """


#: Everyday tasks, for the man pages (generated: python -m dcmcli.cli.gendocs).
QUERY_EXAMPLES = [
    ("Studies of a patient (QIDO-RS), as a table.",
     "dcmcli wado query http://pacs:8042/dicom-web -k PatientID=123"),
    ("Series of a study, with chosen attributes, as CSV.",
     "dcmcli wado query -L series --study 1.2.3 -k Modality -k SeriesDescription --csv - http://pacs:8042/dicom-web"),
    ("Every instance of a CT series, all pages of a server that limits its answers, as DICOM JSON lines.",
     "dcmcli wado query -L instances --study 1.2.3 --series 1.2.3.4 --all-pages --ndjson - https://pacs/dicom-web"),
]
RETRIEVE_EXAMPLES = [
    ("A study into a folder per study and series, as stored on the server (curl and a multipart parser).",
     "dcmcli wado retrieve --study 1.2.3 --layout study -od incoming http://pacs:8042/dicom-web"),
    ("The metadata of a series as DICOM JSON.",
     "dcmcli wado retrieve --study 1.2.3 --series 1.2.3.4 --metadata -o series.json http://pacs:8042/dicom-web"),
    ("Frames 1 and 5 of an instance, and a rendered PNG of it.",
     "dcmcli wado retrieve --study 1.2.3 --series 1.2.3.4 --instance 1.2.3.4.5 --frames 1,5 -od frames URL; "
     "dcmcli wado retrieve ... --rendered --media-type image/png -o image.png URL"),
]
STORE_EXAMPLES = [
    ("Store a folder (STOW-RS) in batches of 100 objects, 2 requests at once (DCMTK has no STOW; dcm4che: stowrs).",
     "dcmcli wado store --batch 100 -j 2 -u admin http://pacs:8042/dicom-web ./study"),
]
URI_EXAMPLES = [
    ("An object as DICOM by WADO-URI (Orthanc's root is /wado).",
     "dcmcli wado uri --study 1.2.3 --series 1.2.3.4 --object 1.2.3.4.5 -o obj.dcm http://pacs:8042/wado"),
    ("The same object as a 256-pixel JPEG to stdout.",
     "dcmcli wado uri --study 1.2.3 --series 1.2.3.4 --object 1.2.3.4.5 --content-type image/jpeg --rows 256 "
     "-o - http://pacs:8042/wado > obj.jpg"),
]
EXAMPLES = QUERY_EXAMPLES + RETRIEVE_EXAMPLES + STORE_EXAMPLES + URI_EXAMPLES
#: The --json events of the actions (their fields: dcmcli/events.schema.json).
EVENTS = ["match", "retrieved", "written", "result", "skipped", "http-error", "summary"]
EVENTS_OF = {"query": ["match", "http-error", "summary"], "retrieve": ["retrieved", "written", "http-error", "summary"],
             "store": ["result", "skipped", "http-error", "summary"], "uri": ["written", "http-error", "summary"]}
#: The group's page lists the events every action names alike (result and summary: each action's own page).
GROUP_EVENTS = ["match", "retrieved", "written", "skipped", "http-error"]
EXAMPLES_OF = {"query": QUERY_EXAMPLES, "retrieve": RETRIEVE_EXAMPLES, "store": STORE_EXAMPLES, "uri": URI_EXAMPLES}

#: Which exit code each HTTP outcome gets (every action's help and man page).
HTTP_EXITS = ("HTTP outcomes and exit codes: cannot connect (refused, unknown host, TLS, connect timeout) 60; "
              "connection lost, answer cut, or no answer within --timeout 62; HTTP 401 and 403 69 (not-authorised); "
              "any other 4xx or 5xx, an answer that is not DICOMweb, objects refused or missing 66; warnings "
              "with --warnings-as-errors 67; output not writable 40; bad inputs 20-23.")

BaseUrl = Annotated[str, typer.Argument(metavar="BASE-URL",
                                        help="The DICOMweb root, e.g. http://host:8042/dicom-web.")]
StudyUid = Annotated[str | None, typer.Option("--study", metavar="UID", help="Study Instance UID.")]
SeriesUid = Annotated[str | None, typer.Option("--series", metavar="UID", help="Series Instance UID (with --study).")]
Jobs = Annotated[int, typer.Option("-j", "--jobs", min=1, max=32, metavar="N", help="Requests in parallel.")]
Output_ = Annotated[str | None, typer.Option("-o", "--output", metavar="FILE", help="Write to FILE ('-': stdout).")]


def _client(common: Common, base: str) -> Any:
    from dcmcli.web.http import WebClient

    return WebClient(base, common.web, log=common.out.debug if common.debug else None)


def _guard(out: Output, body: Callable[[], int]) -> int:
    """Run an action; an HTTP failure also becomes an ``http-error`` event (--json) before its error line."""
    from dcmcli.web.http import WebError

    try:
        return body()
    except WebError as exc:
        out.emit("http-error", exc.as_dict(), None)
        raise


def _log(out: Output) -> Callable[[str, str], None]:
    def on_log(level: str, message: str) -> None:
        {"debug": out.debug, "info": out.info, "warning": out.warn}.get(level, out.error)(message)
    return on_log


_LEVELS = {"study": "studies", "studies": "studies", "series": "series", "image": "instances",
           "instance": "instances", "instances": "instances"}


# ---------------------------------------------------------------------------
@dcmcli_command(wado_app, "query", epilog=HTTP_EXITS, network="local", web=True, label="wado query")
def query(
    common: Common,
    base_url: BaseUrl,
    level: Annotated[str, typer.Option("-L", "--level", metavar="LEVEL",
                                       help="studies (default), series or instances (findscu's STUDY, SERIES, "
                                            "IMAGE work too).")] = "studies",
    key: _KEY = None,
    study: Annotated[str | None, typer.Option("--study", metavar="UID",
                                              help="Search within this study (series or instances).")] = None,
    series: Annotated[str | None, typer.Option("--series", metavar="UID",
                                               help="Search within this series (instances; with --study).")] = None,
    includefield: Annotated[list[str] | None, typer.Option(
        "--includefield", metavar="ATTRIBUTE", help="Also return this attribute (keyword or tag; 'all': every "
                                                    "one the server has; repeatable).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, metavar="N",
                                              help="At most N results (a page, with --all-pages).")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, metavar="N", help="Skip the first N results.")] = 0,
    fuzzy: Annotated[bool, typer.Option("--fuzzy", help="Ask for fuzzy matching of person names.")] = False,
    all_pages: Annotated[bool, typer.Option("--all-pages", help="Ask for page after page (of --limit, default 100) "
                                                                "until the server has no more.")] = False,
    csv_file: Annotated[str | None, typer.Option("--csv", metavar="FILE",
                                                 help="Write the results as CSV to FILE ('-': stdout).")] = None,
    ndjson_file: Annotated[str | None, typer.Option(
        "--ndjson", metavar="FILE", help="Write the results as DICOM JSON, one object per line ('-': stdout).")] = None,
    no_default_keys: Annotated[bool, typer.Option(
        "--no-default-keys", help="Without -k, ask for no attributes (the server's defaults).")] = False,
) -> int:
    """Search (QIDO-RS) for studies, series or instances and print them as findscu does: a table, --json, --csv, --ndjson.

    Keys are findscu's -k: Keyword=value matches (wildcards, ranges, UID lists as the server supports them),
    Keyword alone is a return key (includefield). Usage: dcmcli wado query [options] BASE-URL
    """
    out = common.out
    from dcmcli.dataset import skip_pixel_imports

    skip_pixel_imports()  # nothing here decodes pixels
    from dcmcli.render import Column, open_writers
    from dcmcli.web.qido import build_qido, search

    lv = _LEVELS.get(level.strip().lower())
    if lv is None:
        raise UsageError(f"unknown level {level!r}", "give studies, series or instances")
    q = build_qido(lv, list(key or []), study=study, series=series, includefield=includefield, fuzzy=fuzzy,
                   default_keys=not no_default_keys)
    for note in q.notes:
        out.warn(note)
    columns = [Column.of(p) for p in q.columns]
    writers = open_writers(columns, csv_file, ndjson_file, out)
    table = writers.table
    t0 = time.perf_counter()
    count = pages = 0

    def body() -> int:
        nonlocal count, pages
        with _client(common, base_url) as client:
            for page in search(client, q, limit=limit, offset=offset, all_pages=all_pages):
                pages += 1
                if page.warning and not all_pages:
                    out.warn(f"the server says: {page.warning} (--all-pages asks for the rest)")
                for record in page.records:
                    count += 1
                    writers.add(record)
                    out.emit("match", lambda r=record, n=count: {"n": n, "dataset": r})
        return 0

    try:
        _guard(out, body)
    finally:
        writers.close()
    if table is not None and table.rows:
        table.print(sys.stdout, rich=out.stdout_is_terminal)
    seconds = time.perf_counter() - t0
    summary = {"matches": count, "pages": pages, "level": lv, "seconds": round(seconds, 3), "exit_code": 0}
    human = f"{count} match{'es' if count != 1 else ''}" if count else "no matches"
    human += f" in {seconds:.2f} s"
    writers.summary(out, summary, human)
    return 0


# ---------------------------------------------------------------------------
@dcmcli_command(wado_app, "retrieve", epilog=HTTP_EXITS, network="local", web=True, storage=True, label="wado retrieve")
def retrieve(
    common: Common,
    base_url: BaseUrl,
    study: StudyUid = None,
    series: SeriesUid = None,
    instance: Annotated[str | None, typer.Option("--instance", "--object", metavar="UID",
                                                 help="SOP Instance UID (with --study and --series).")] = None,
    transfer_syntax: Annotated[str, typer.Option(
        "--transfer-syntax", metavar="UID|*",
        help="Transfer syntax to ask for; '*' (default): as stored, so that the server need not transcode "
             "(a server that cannot transcode leaves objects out).")] = "*",
    metadata: Annotated[bool, typer.Option("--metadata", help="The metadata as DICOM JSON (to -o, default "
                                                               "stdout) instead of the objects.")] = False,
    frames: Annotated[str | None, typer.Option("--frames", metavar="LIST",
                                               help="These frames of --instance (e.g. 1,2,5), one file each "
                                                    "below -od, in --media-type.")] = None,
    rendered: Annotated[bool, typer.Option("--rendered", help="The rendered image (of --instance, or its "
                                                              "--frames), in --media-type.")] = False,
    thumbnail: Annotated[bool, typer.Option("--thumbnail", help="The thumbnail of the study, series or "
                                                                "instance, in --media-type.")] = False,
    bulkdata: Annotated[str | None, typer.Option("--bulkdata", metavar="URI",
                                                 help="Retrieve this bulk data URI (from the metadata; absolute, "
                                                      "or relative to BASE-URL).")] = None,
    media_type: Annotated[str | None, typer.Option(
        "--media-type", metavar="TYPE",
        help="Media type of --frames/--bulkdata (default application/octet-stream, as stored) or "
             "--rendered/--thumbnail (default image/jpeg; image/png, image/gif).")] = None,
    viewport: Annotated[str | None, typer.Option("--viewport", metavar="W,H",
                                                 help="Rendered size in pixels (--rendered, --thumbnail).")] = None,
    window: Annotated[str | None, typer.Option("--window", metavar="CENTER,WIDTH[,FUNCTION]",
                                               help="Windowing of the rendered image.")] = None,
    output: Output_ = None,
    jobs: Jobs = 1,
    no_count: Annotated[bool, typer.Option("--no-count", help="Do not ask QIDO-RS first how many instances to "
                                                              "expect (no check for a short answer).")] = False,
) -> int:
    """Retrieve (WADO-RS) a study, series or instance into -od with storescp's layouts; or its metadata, frames,
    rendered image, thumbnail or bulk data.

    Objects stream to disk as they arrive, each through a hidden .part file renamed when complete. A retrieval
    that brings fewer instances than the server's QIDO-RS counts is a failure (exit 66) with a warning.
    Usage: dcmcli wado retrieve [options] --study UID [--series UID [--instance UID]] BASE-URL
    """
    out = common.out
    modes = [m for m, on in (("metadata", metadata), ("frames", frames is not None), ("rendered", rendered),
                             ("thumbnail", thumbnail), ("bulkdata", bulkdata is not None)) if on]
    if len(modes) > 1 and modes != ["frames", "rendered"]:
        raise UsageError(f"{' and '.join('--' + m for m in modes)} are different retrievals", "give one of them")
    mode = "rendered" if "rendered" in modes else (modes[0] if modes else "instances")
    t0 = time.perf_counter()
    if mode == "instances":
        return _guard(out, lambda: _retrieve_instances(common, base_url, study, series, instance, transfer_syntax,
                                                       jobs, not no_count, t0, output))
    return _guard(out, lambda: _retrieve_other(common, base_url, mode, study, series, instance, frames,
                                               media_type, viewport, window, bulkdata, output, transfer_syntax, t0))


def _retrieve_instances(common: Common, base_url: str, study: str | None, series: str | None,
                        instance: str | None, transfer_syntax: str, jobs: int, count: bool, t0: float,
                        output: str | None) -> int:
    from dcmcli.net.services.writer import StorageWriter
    from dcmcli.web.retrieve import resource, retrieve_instances

    out = common.out
    if output is not None:
        raise UsageError("-o is for --metadata, --rendered, --thumbnail and --bulkdata", "objects go below -od DIR")
    what = resource(study, series, instance)
    ts = transfer_syntax.strip()
    if ts != "*":
        from dcmcli.uids import parse_transfer_syntax

        ts = parse_transfer_syntax(ts)
    if common.writer is not None and common.writer.store_as is None:
        from dcmcli.dataset import skip_pixel_imports

        skip_pixel_imports()
    assert common.writer is not None
    writer = StorageWriter(common.writer, on_log=_log(out))
    writer.prepare()
    bar: dict[str, Any] = {}
    lock = threading.Lock()
    import contextlib

    stack = contextlib.ExitStack()
    done = {"parts": 0, "bytes": 0, "disk": 0}

    def on_expected(n: int | None) -> None:
        """A bar by parts (the total from QIDO-RS, when it said) and bytes, on a terminal's stderr only."""
        if out.json_mode or out.verbosity < 0 or not out.stderr_is_terminal or n == 0:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("retrieving"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[size]}"),
                            TimeElapsedColumn(), console=out.err_console, transient=True)
        stack.enter_context(progress)
        bar["progress"], bar["task"] = progress, progress.add_task("retrieving", total=n, size="")

    def on_result(r: Any) -> None:
        with lock:
            done["parts"] += 1
            done["bytes"] += r.size
            if bar.get("progress") is not None:
                bar["progress"].update(bar["task"], completed=done["parts"], size=human_size(done["bytes"]))
        if r.outcome != "stored" and "out of resources" in r.message:  # the writer's A700: disk full, not writable
            with lock:
                done["disk"] += 1
        if r.outcome == "stored":
            human = f"{r.path} ({human_size(r.size)})"
            out.emit("retrieved", r.as_dict, human, min_verbosity=1, plain=True)
        else:
            out.emit("retrieved", r.as_dict, None)
            out.warn(f"{r.sop_instance_uid or 'a part'} not stored: {r.message}")

    try:
        with stack, _client(common, base_url) as client:
            outcome = retrieve_instances(client, writer, study or "", series, instance, transfer_syntax=ts,
                                         jobs=jobs, count=count, on_result=on_result, on_expected=on_expected,
                                         log=out.info)
    finally:
        writer.close()
    seconds = time.perf_counter() - t0
    codes = [ExitCode.OK]
    if outcome.failed or outcome.missing:
        codes.append(ExitCode.OPERATION_FAILED)
    if done["disk"]:
        codes.append(ExitCode.OUTPUT_NOT_WRITABLE)
    codes += [e.exit_code for e in outcome.errors]
    code = worst(*codes)
    for e in outcome.errors:
        out.emit("http-error", e.as_dict(), None)
    summary = {"mode": "instances", "resource": what, "stored": outcome.stored, "failed": outcome.failed,
               "expected": outcome.expected, "missing": outcome.missing, "bytes": outcome.bytes,
               "files": outcome.stored, "requests": outcome.requests, "seconds": round(seconds, 3),
               "mb_per_s": round(outcome.bytes / 1e6 / seconds, 1) if seconds > 0 else None,
               "errors": [e.as_dict() for e in outcome.errors], "exit_code": int(code)}
    human = (f"{outcome.stored} instance{'s' if outcome.stored != 1 else ''} stored below "
             f"{common.writer.output_dir} ({human_size(outcome.bytes)} in {seconds:.2f} s)")
    if outcome.failed:
        human += f", {outcome.failed} failed"
    out.emit("summary", summary, human if code == ExitCode.OK else None)
    if outcome.missing and not outcome.errors:
        out.warn(f"the server's QIDO-RS counts {outcome.expected} instance(s) in {what}, the retrieval brought "
                 f"{outcome.stored + outcome.failed}: {outcome.missing} missing")
    if code == ExitCode.OK:
        return 0
    if outcome.errors:
        for e in outcome.errors[1:]:
            out.warn(str(e))
        more = f" ({human}; {len(outcome.errors) - 1} more failed request(s) above)" if len(outcome.errors) > 1 \
            else (f" ({human})" if outcome.stored else "")
        first = outcome.errors[0]
        out.error_line(f"{first.message}{more}" + (f"; {first.hint}" if first.hint else ""))
    elif outcome.missing:
        hint = ("the server may have left out objects it cannot send in the transfer syntax asked for; retry "
                "with --transfer-syntax '*'" if transfer_syntax != "*" else
                "see the server's log (it may have skipped objects it could not read or send)")
        out.error_line(f"{human}; {outcome.missing} of {outcome.expected} instances missing; {hint}")
    else:
        out.error_line(f"{human}; see the warnings above")
    return int(code)


def _retrieve_other(common: Common, base_url: str, mode: str, study: str | None, series: str | None,
                    instance: str | None, frames: str | None, media_type: str | None, viewport: str | None,
                    window: str | None, bulkdata: str | None, output: str | None, transfer_syntax: str,
                    t0: float) -> int:
    from dcmcli.dataset import skip_pixel_imports
    from dcmcli.web.http import redact as redact_url
    from dcmcli.web.retrieve import fetch_to, other_request

    skip_pixel_imports()
    out = common.out
    od = common.writer.output_dir if common.writer else Path(".")
    req = other_request(mode, study, series, instance, frames=frames, media_type=media_type, viewport=viewport,
                        window=window, bulkdata=bulkdata, transfer_syntax=transfer_syntax)
    path, accept, params, label, numbers = req.path, req.accept, req.params, req.label, req.frames
    if (viewport or window) and mode not in ("rendered", "thumbnail"):
        raise UsageError("--viewport and --window are for --rendered and --thumbnail", "add --rendered")
    if mode == "metadata" and output is None:
        output = "-"
    if output == "-" and out.json_mode:
        raise UsageError("--json and -o - both write to stdout", "give -o FILE")
    written: list[dict[str, Any]] = []

    def name(n: int, media: str) -> Path:
        return od / req.file_name(n, media)

    def on_file(p: Path, ctype: str, size: int) -> None:
        record = {"path": str(p), "content_type": ctype, "bytes": size}
        written.append(record)
        out.emit("written", record, f"{p} ({ctype}, {human_size(size)})" if str(p) != "-" else None, plain=True)

    if output not in (None, "-"):
        parent = Path(output).parent
        if not parent.is_dir():
            raise OutputError(f"cannot write {output!r}: {parent} is not a directory", "check -o")
    with _client(common, base_url) as client:
        if mode == "bulkdata":
            path = client.resolve(path)
            if client.sends_credentials(path) == "elsewhere":
                out.warn(f"{redact_url(path)} is not on BASE-URL's server: the credentials are not sent there")
        fetch_to(client, path, f"WADO-RS {mode} of {label}", accept, params=params, output=output, name=name,
                 on_file=on_file, stdout=sys.stdout.buffer)
    seconds = time.perf_counter() - t0
    total = sum(int(w["bytes"]) for w in written)
    summary = {"mode": mode, "resource": redact_url(path), "stored": 0, "failed": 0, "expected": None, "missing": 0,
               "bytes": total, "files": len(written), "requests": 1, "seconds": round(seconds, 3),
               "mb_per_s": round(total / 1e6 / seconds, 1) if seconds > 0 else None, "errors": [], "exit_code": 0}
    code = ExitCode.OK
    if numbers and mode == "frames" and len(written) != len(numbers):
        code = ExitCode.OPERATION_FAILED
        summary["missing"] = max(0, len(numbers) - len(written))
        summary["exit_code"] = int(code)
    human = f"{len(written)} file{'s' if len(written) != 1 else ''} ({human_size(total)}) in {seconds:.2f} s"
    out.emit("summary", summary, human if output != "-" else None)
    if code != ExitCode.OK:
        out.error_line(f"asked for {len(numbers)} frames, the server sent {len(written)}; check the frame numbers")
    return int(code)


# ---------------------------------------------------------------------------
@dcmcli_command(wado_app, "store", epilog=HTTP_EXITS, network="local", web=True, label="wado store")
def store(
    common: Common,
    base_url: BaseUrl,
    inputs: Annotated[list[str], typer.Argument(metavar="FILE-OR-DIR...",
                                                help="Files, directories (recursive) and globs.")],
    study: Annotated[str | None, typer.Option("--study", metavar="UID",
                                              help="Store into this study only (the server refuses others).")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, metavar="N",
                                       help="At most N objects per request.")] = 50,
    batch_size: Annotated[float, typer.Option("--batch-size", min=0.001, metavar="MB",
                                              help="About this many megabytes per request (a larger file goes "
                                                   "alone).")] = 100.0,
    jobs: Jobs = 1,
    warnings_as_errors: WarningsAsErrors = False,
) -> int:
    """Store (STOW-RS) files, directories and globs, in batches streamed from disk; a result per file.

    Non-DICOM files are skipped and counted (named on the command line: exit 22). The server's Failed SOP
    Sequence (Failure Reason) and Warning Reason give each file's outcome. Usage: dcmcli wado store [options]
    BASE-URL FILE-OR-DIR...
    """
    out = common.out
    from dcmcli.dataset import skip_pixel_imports
    from dcmcli.dicomfile import collect_inputs

    skip_pixel_imports()
    found = collect_inputs(inputs, action="stored")
    from dcmcli.cli.report import show_inputs

    show_inputs(out, found)
    codes = found.exit_codes()
    files = found.files
    skipped = len(found.unreadable) + len(found.skipped)
    t0 = time.perf_counter()
    counts = {"stored": 0, "warning": 0, "failed": 0}
    sent_bytes = [0]
    empty = found.nothing_to_send()
    if empty is not None:
        code, message = empty
        out.emit("summary", _store_summary(counts, skipped, 0, 0, 0.0, int(code)), None)
        out.error_line(f"{message}; nothing stored")
        return int(code)
    lock = threading.Lock()
    batches_sent = {"n": 0}
    import contextlib

    stack = contextlib.ExitStack()
    tick = stack.enter_context(out.progress(len(files), "storing")) if not out.json_mode else None

    def on_result(r: Any) -> None:
        with lock:
            counts[r.outcome] += 1
            sent_bytes[0] += r.info.size
            batches_sent["n"] = max(batches_sent["n"], r.batch)
            if tick is not None:
                tick.advance()
        line = f"{r.info.path}: {r.outcome}" + (f" ({r.message})" if r.message else "")
        out.emit("result", r.as_dict, line if r.outcome == "stored" else None, min_verbosity=1, plain=True)
        with lock:
            whole_batch = r.info.path in refused_with_batch
        if r.outcome != "stored" and not whole_batch:  # a batch's own failure is said once, below
            out.warn(line)

    refused_with_batch: set[Any] = set()

    def on_batch_error(exc: Any, group: list[Any]) -> None:
        with lock:
            refused_with_batch.update(f.path for f in group)
        out.emit("http-error", exc.as_dict(), None)

    from dcmcli.web.stow import store as stow

    stop = threading.Event()
    with stack, _client(common, base_url) as client:
        errors = stow(client, files, study=study, batch=batch, batch_size=int(batch_size * 1024 * 1024), jobs=jobs,
                      on_result=on_result, on_batch_error=on_batch_error, stop=stop)
    seconds = time.perf_counter() - t0
    if counts["failed"]:
        codes.append(ExitCode.OPERATION_FAILED)
    if counts["warning"] and warnings_as_errors:
        codes.append(ExitCode.OPERATION_WARNING)
    codes += [e.exit_code for e in errors]
    attempted = counts["stored"] + counts["warning"] + counts["failed"]
    if attempted < len(files):  # stopped early (credentials or connection): the rest were never sent
        counts["failed"] += len(files) - attempted
    code = worst(*codes)
    summary = _store_summary(counts, skipped, batches_sent["n"], sent_bytes[0], seconds, int(code))
    human = (f"{counts['stored']} stored, {counts['warning']} with warnings, {counts['failed']} failed, "
             f"{skipped} skipped ({human_size(sent_bytes[0])} in {seconds:.2f} s)")
    out.emit("summary", summary, human)
    if errors:
        first = errors[0]
        for e in errors[1:]:
            out.warn(str(e))
        more = f" (and {len(errors) - 1} more batch{'es' if len(errors) > 2 else ''} above)" if len(errors) > 1 else ""
        out.error_line(f"{first}{more}")
    elif code not in (ExitCode.OK,):
        what = {ExitCode.OPERATION_FAILED: f"{counts['failed']} file(s) refused by the server",
                ExitCode.OPERATION_WARNING: "stored with warnings (--warnings-as-errors)"}.get(
                    code, "some inputs were not usable")
        out.error_line(f"{what}; see the lines above")
    return int(code)


def _store_summary(counts: dict[str, int], skipped: int, batches: int, size: int, seconds: float,
                   code: int) -> dict[str, Any]:
    return {"stored": counts["stored"], "warned": counts["warning"], "failed": counts["failed"], "skipped": skipped,
            "batches": batches, "bytes": size, "seconds": round(seconds, 3),
            "mb_per_s": round(size / 1e6 / seconds, 1) if seconds > 0 else None, "exit_code": code}


# ---------------------------------------------------------------------------
@dcmcli_command(wado_app, "uri", epilog=HTTP_EXITS, network="local", web=True, label="wado uri")
def uri(
    common: Common,
    base_url: Annotated[str, typer.Argument(metavar="BASE-URL",
                                            help="The WADO-URI endpoint, e.g. http://host:8042/wado.")],
    study: Annotated[str, typer.Option("--study", "--studyUID", metavar="UID", help="Study Instance UID.")],
    series: Annotated[str, typer.Option("--series", "--seriesUID", metavar="UID", help="Series Instance UID.")],
    instance: Annotated[str, typer.Option("--object", "--objectUID", "--instance", metavar="UID",
                                          help="SOP Instance UID.")],
    content_type: Annotated[str, typer.Option("--content-type", metavar="TYPE",
                                              help="application/dicom (default), image/jpeg, image/png, "
                                                   "image/gif, ...")] = "application/dicom",
    transfer_syntax: Annotated[str | None, typer.Option("--transfer-syntax", metavar="UID",
                                                        help="Transfer syntax (application/dicom only).")] = None,
    frame: Annotated[int | None, typer.Option("--frame", min=1, metavar="N", help="Frame number (images).")] = None,
    rows: Annotated[int | None, typer.Option("--rows", min=1, metavar="N", help="Rows of the image.")] = None,
    columns: Annotated[int | None, typer.Option("--columns", min=1, metavar="N", help="Columns of the image.")] = None,
    window_center: Annotated[float | None, typer.Option("--window-center", metavar="VALUE",
                                                        help="Window center (with --window-width).")] = None,
    window_width: Annotated[float | None, typer.Option("--window-width", metavar="VALUE", help="Window width.")] = None,
    anonymize: Annotated[bool, typer.Option("--anonymize", help="Ask the server to remove patient identification "
                                                                "(application/dicom).")] = False,
    output: Annotated[str | None, typer.Option("-o", "--output", metavar="FILE",
                                               help="Write to FILE ('-': stdout; default: OBJECT-UID.dcm/.jpg/... "
                                                    "in the current directory).")] = None,
) -> int:
    """Retrieve one object by WADO-URI (PS3.18 chapter 9), as DICOM or as an image, to a file or stdout.

    Usage: dcmcli wado uri [options] --study UID --series UID --object UID BASE-URL
    """
    out = common.out
    from dcmcli.dataset import skip_pixel_imports

    skip_pixel_imports()
    from dcmcli.web.retrieve import EXTENSIONS, fetch_to
    from dcmcli.web.uri import UriRequest

    if (window_center is None) != (window_width is None):
        raise UsageError("--window-center and --window-width go together", "give both")
    ts = None
    if transfer_syntax:
        from dcmcli.uids import parse_transfer_syntax

        ts = parse_transfer_syntax(transfer_syntax)
    req = UriRequest(study, series, instance, content_type, ts, frame, rows, columns, window_center, window_width,
                     anonymize)
    if output == "-" and out.json_mode:
        raise UsageError("--json and -o - both write to stdout", "give -o FILE")
    written: list[dict[str, Any]] = []
    t0 = time.perf_counter()

    def name(n: int, media: str) -> Path:
        return Path(f"{instance}{EXTENSIONS.get(content_type.split(';')[0].strip(), '.bin')}")

    def on_file(p: Path, ctype: str, size: int) -> None:
        record = {"path": str(p), "content_type": ctype, "bytes": size}
        written.append(record)
        out.emit("written", record, None)

    def body() -> int:
        with _client(common, base_url) as client:
            fetch_to(client, req.url(client.base), f"WADO-URI of {instance}", f"{content_type}, */*;q=0.5",
                     output=output, name=name, on_file=on_file, stdout=sys.stdout.buffer)
        return 0

    _guard(out, body)
    seconds = time.perf_counter() - t0
    w = written[0] if written else {"path": None, "content_type": None, "bytes": 0}
    summary = {**w, "seconds": round(seconds, 3), "exit_code": 0}
    _check_media(out, content_type, w)
    human = f"{w['path']} ({w['content_type']}, {human_size(int(w['bytes'] or 0))}) in {seconds:.2f} s"
    out.emit("summary", summary, human if output != "-" else None)
    return 0


def _check_media(out: Output, asked: str, w: dict[str, Any]) -> None:
    got = str(w.get("content_type") or "").split(";")[0].strip().lower()
    if got and asked.lower() not in (got, "*/*") and not got.startswith("multipart/"):
        out.warn(f"asked for {asked}, the server labelled the answer {got}")
