"""dcmcli storescu: send files, directories and globs (C-STORE)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import (DCMTK_PANEL, Common, CommonExtNeg, NoRecurse, PeerArgument, RelatedGeneral,
                                WarningsAsErrors, common_extended_options, dcmcli_command)
from dcmcli.cli.report import show_inputs, show_report
from dcmcli.dicomfile import collect_inputs
from dcmcli.errors import ExitCode, UsageError, worst
from dcmcli.net.peer import parse_peer
from dcmcli.net.services.store import StoreOptions, StoreResult, StoreSender
from dcmcli.uids import uid_name
from dcmcli.output import human_size




def _expand_dicomdirs(paths: list[str], dicomdirs: list[Path], out: object) -> list[str]:
    """Inputs with each DICOMDIR (given with --dicomdir, or a file named DICOMDIR)
    replaced by the files it references; a missing one is then reported as any missing input."""
    named = [p for p in paths if Path(p).name.upper() == "DICOMDIR" and Path(p).is_file()]
    if not named and not dicomdirs:
        return paths
    from dcmcli.media.fileset import referenced_files

    expanded: list[str] = []
    for p in paths:
        if p in named:
            dicomdirs = [*dicomdirs, Path(p)]
        else:
            expanded.append(p)
    for d in dicomdirs:
        files, problems = referenced_files(d)
        for problem in problems:
            out.warn(problem.line(str(d)))  # type: ignore[attr-defined]
        out.info(f"{d}: {len(files)} referenced files")  # type: ignore[attr-defined]
        expanded += [str(f) for f in files]
    return expanded


#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('Send a folder, recursively (DCMTK: storescu +sd +r -aec ARCHIVE pacs 104 dir).',
     'dcmcli storescu -aec ARCHIVE pacs 104 dir/'),
    ('Send over 4 associations in parallel, retrying a dropped association twice.',
     "dcmcli storescu -j 4 --retries 2 pacs 104 'study/*.dcm'"),
    ('Allow lossy compression for a peer that accepts only lossy JPEG.',
     'dcmcli storescu --allow-lossy pacs 104 ct/'),
    ('Send everything a CD\'s DICOMDIR references (DCMTK: dcmsend +rd pacs 104 /cdrom/DICOMDIR).',
     'dcmcli storescu pacs 104 --dicomdir /cdrom/DICOMDIR'),
    ('Offer a private SOP class as storage (SOP Class Common Extended Negotiation), with its related general class.',
     'dcmcli storescu -cen --related-general 1.2.3.4.5=SecondaryCaptureImageStorage pacs 104 private/'),
    ('Per-file results as JSON Lines for a pipeline.',
     'dcmcli storescu --json pacs 104 dir/ > results.jsonl'),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["association", "result", "skipped", "retry", "summary"]


@dcmcli_command(app, "storescu", network="scu", default_aet="STORESCU")
def storescu(
    common: Common,
    peer: PeerArgument,
    args: Annotated[list[str], typer.Argument(
        metavar="[PORT] FILE-OR-DIR...", help="TCP port (unless PEER has :port), then files, directories, globs.")],
    halt_on_error: Annotated[bool, typer.Option("--halt-on-error", help="Stop at the first failed file.")] = False,
    retries: Annotated[int, typer.Option("--retries", min=0, metavar="N",
                                         help="Re-open an association that failed or aborted, N times, with backoff.")] = 0,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, max=64, metavar="N",
                                      help="Send over N parallel associations.")] = 1,
    no_check: Annotated[bool, typer.Option("--no-check", help="Do not walk files to detect truncation before sending.")] = False,
    allow_lossy: Annotated[bool, typer.Option(
        "--allow-lossy", help="When the peer refuses a file's syntax, allow lossy compression of a file that is "
                              "not lossy already (it then gets a new SOP Instance UID).")] = False,
    no_compress: Annotated[bool, typer.Option(
        "--no-compress-fallback", help="Do not propose compressed syntaxes as fallbacks (only the file's own and "
                                       "uncompressed).")] = False,
    warnings_as_errors: WarningsAsErrors = False,
    common_ext_neg: CommonExtNeg = False,
    related_general: RelatedGeneral = None,
    dicomdir: Annotated[list[Path] | None, typer.Option(
        "--dicomdir", metavar="DICOMDIR",
        help="Send every instance this DICOMDIR references (repeatable; as DCMTK's dcmsend +rd). A file named "
             "DICOMDIR among the inputs is read the same way.")] = None,
    no_recurse: NoRecurse = False,
    scan_pattern: Annotated[str | None, typer.Option(
        "+sp", "--scan-pattern", metavar="PATTERN", rich_help_panel=DCMTK_PANEL,
        help="Only files whose name matches PATTERN (e.g. '*.dcm') when scanning directories.")] = None,
    dcmtk_defaults: Annotated[bool, typer.Option(
        "+sd", "--scan-directories", "+r", "--recurse", "-nh", "--no-halt", "-R", "--required",
        rich_help_panel=DCMTK_PANEL,
        help="Accepted for DCMTK scripts; what they ask for is dcmcli's default (directories are scanned and "
             "recursed, a failed file does not halt, only the contexts the files need are proposed).")] = False,
    dcmtk_propose: Annotated[bool, typer.Option(
        "-xe", "--propose-little", "-xb", "--propose-big", "-xi", "--propose-implicit", "-xs", "--propose-lossless",
        "-xy", "--propose-jpeg8", "-xx", "--propose-jpeg12", "-xv", "--propose-j2k-lossless", "-xw",
        "--propose-j2k-lossy", "-xt", "--propose-jls-lossless", "-xu", "--propose-jls-lossy", "-xr",
        "--propose-rle", "-xd", "--propose-deflated", "--propose-uncompr", rich_help_panel=DCMTK_PANEL,
        help="Accepted for DCMTK scripts and not needed: dcmcli proposes each file's own transfer syntax, an "
             "uncompressed fallback and compressed ones, and converts a file to what the peer accepts.")] = False,
) -> int:
    """Send DICOM files to a storage SCP, each in its own transfer syntax when the peer accepts it.

    Otherwise a file is converted to what the peer accepted: decompressed, or compressed losslessly when
    the peer takes only compressed syntaxes; lossy only for lossy files or with --allow-lossy.

    Usage as in DCMTK: dcmcli storescu OPTIONS peer port file-or-dir...
    """
    target, paths = parse_peer(peer, args)
    cen, related = common_extended_options(common_ext_neg, related_general)
    if not paths and not dicomdir:
        raise UsageError("no files given", "name files, directories or globs after the peer and port")
    out = common.out
    if dcmtk_defaults:
        out.debug("+sd/+r/-nh/-R: dcmcli does this by default")
    if dcmtk_propose:
        out.debug("-x? proposal flags: dcmcli proposes each file's own syntax plus fallbacks and converts as needed")
    paths = _expand_dicomdirs(paths, dicomdir or [], out)
    inputs = collect_inputs(paths, check_complete=not no_check, recurse=not no_recurse, pattern=scan_pattern)
    show_inputs(out, inputs)
    codes = inputs.exit_codes()
    files = inputs.files
    skipped = len(inputs.skipped)
    empty = inputs.nothing_to_send()
    if empty is not None:
        code, msg = empty
        out.emit("summary", {"sent": 0, "warned": 0, "failed": 0, "skipped": skipped, "not_attempted": 0,
                             "bytes": 0, "seconds": 0.0, "mb_per_s": 0.0, "interrupted": False,
                             "exit_code": int(code)}, None)
        out.error_line(f"{msg}; nothing sent")
        return int(code)

    with out.progress(len(files), f"sending to {target}") as bar:
        def on_result(r: StoreResult) -> None:
            bar.advance()
            sent_as = f" as {uid_name(r.sent_transfer_syntax)}" if (
                r.sent_transfer_syntax and r.sent_transfer_syntax != r.transfer_syntax) else ""
            if r.outcome == "sent":
                human = f"[green]sent[/] {r.path}{sent_as}" if out.verbosity > 0 else None
            elif r.outcome == "warning":
                human = f"[yellow]warning[/] {r.path}{sent_as}: {r.message} ({r.status.hex if r.status else ''})"
            elif r.outcome == "not-attempted":
                human = None  # the association error is reported once, below
            else:
                status = f" ({r.status.hex})" if r.status else ""
                human = f"[red]failed[/] {r.path}: {r.message}{status}"
            out.emit("result", r.as_dict, human)

        def on_retry(exc: Exception, attempt: int, delay: float) -> None:
            out.emit("retry", {"attempt": attempt, "delay": delay, "error": str(exc)}, None)
            out.warn(f"{exc}; retry {attempt} of {retries} in {delay:g} s")

        sender = StoreSender(common.settings, target,
                             StoreOptions(halt_on_error=halt_on_error, retries=retries, jobs=jobs,
                                          compress=not no_compress, allow_lossy=allow_lossy,
                                          common_extended=cen, related_general=related),
                             on_result=on_result, on_association=lambda rep: show_report(out, rep),
                             on_retry=on_retry)
        run = sender.send(files)

    results = run.results
    n_sent = sum(1 for r in results if r.outcome in ("sent", "warning"))
    n_warn = sum(1 for r in results if r.outcome == "warning")
    n_fail = sum(1 for r in results if r.outcome == "failed")
    n_bytes = sum(r.size for r in results if r.outcome in ("sent", "warning"))
    # never tried: the association they needed failed, or --halt-on-error stopped first (no result then)
    not_attempted = sum(1 for r in results if r.outcome == "not-attempted") + len(files) - len(results)
    code = worst(run.exit_code(warnings_as_errors), *codes,
                 *([ExitCode.INTERRUPTED] if run.interrupted else []))
    mbps = n_bytes / run.elapsed / 1e6 if run.elapsed > 0 else 0.0
    summary = {"sent": n_sent, "warned": n_warn, "failed": n_fail, "skipped": skipped,
               "not_attempted": not_attempted, "bytes": n_bytes, "seconds": round(run.elapsed, 3),
               "mb_per_s": round(mbps, 2), "interrupted": run.interrupted, "exit_code": int(code)}
    stopped = " (interrupted)" if run.interrupted else " (halted)" if run.halted else ""
    human = (f"{n_sent} sent ({n_warn} with warnings), {n_fail} failed, {skipped} skipped"
             + (f", {not_attempted} not attempted{stopped}" if not_attempted else "")
             + f"; {human_size(n_bytes)} in {run.elapsed:.2f} s ({mbps:.1f} MB/s)")
    out.emit("summary", summary, human if out.verbosity >= 0 else None)
    if run.interrupted:
        out.error_line(f"interrupted after {n_sent + n_fail} of {len(files)} files")
        return int(code)
    for err in run.errors:  # its negotiation report came before the files' results
        out.error_line(str(err))
    if not run.errors and code not in (ExitCode.OK, ExitCode.OPERATION_WARNING):
        out.error_line(f"{n_fail} of {len(files)} files failed" if n_fail else "some inputs were not usable")
    elif code == ExitCode.OPERATION_WARNING:
        out.error_line(f"{n_warn} files stored with warnings (--warnings-as-errors)")
    return int(code)
