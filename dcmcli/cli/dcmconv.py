"""dcmcli dcmconv: convert files to another transfer syntax (the transcoding
core's command-line face: DCMTK's dcmconv, dcmcjpeg, dcmcjpls, dcmcrle and
their decoders in one command)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import (Common, WriteBig, WriteDeflated, WriteImplicit, WriteLittle, dcmcli_command,
                                written_syntax)
from dcmcli.dicomfile import collect_inputs
from dcmcli.errors import ExitCode, UsageError, worst
from dcmcli.uids import uid_name
from dcmcli.output import ProgressTicker, human_size

SYNTAX = "Transfer syntax"
LOSSY = "Lossy compression"
FILES = "Files"


def _list_syntaxes(common: Common) -> int:
    from dcmcli.transcode.catalog import catalog

    for info in catalog():
        def human(i=info) -> str:  # type: ignore[no-untyped-def]
            kind = "lossless" if i.lossless else "lossy"
            dec = ", ".join(i.decode) or f"[red]no[/] (install {' or '.join(i.decode_missing) or '?'})"
            enc = ", ".join(i.encode) or f"[red]no[/] (install {' or '.join(i.encode_missing) or '?'})"
            return (f"{i.uid:<26} {i.short or i.keyword:<22} {kind:<8} decode: {dec}; encode: {enc}\n"
                    f"{'':<26} {i.name}")
        out_human = human() if not common.out.json_mode else None
        common.out.emit("syntax", info.as_dict, out_human)
    return int(ExitCode.OK)


#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('Compress losslessly with JPEG-LS (DCMTK: dcmcjpls in.dcm out.dcm).',
     'dcmcli dcmconv -t jpeg-ls-lossless in.dcm out.dcm'),
    ('Decompress a tree into another (DCMTK: dcmdjpeg, file by file).',
     'dcmcli dcmconv -t ele in/ out/'),
    ('Lossy JPEG 2000 at 10:1 (new SOP Instance UIDs, Lossy Image Compression set).',
     'dcmcli dcmconv -t j2k --ratio 10 in/ out/'),
    ('What this installation can decode and encode.',
     'dcmcli dcmconv --list-syntaxes'),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["result", "skipped", "summary", "syntax"]


@dcmcli_command(app, "dcmconv", network="local")
def dcmconv(
    common: Common,
    paths: Annotated[list[str] | None, typer.Argument(
        metavar="PATHS",
        help="INPUT OUTPUT (a file to a file), or INPUT... OUTPUT-DIRECTORY (files, directories and globs; "
             "directory trees are mirrored).")] = None,
    transfer_syntax: Annotated[str | None, typer.Option(
        "-t", "--transfer-syntax", metavar="SYNTAX", rich_help_panel=SYNTAX,
        help="Output syntax: a UID, a keyword (JPEGLSLossless) or a short name (jpeg-ls-lossless, rle, "
             "j2k-lossless, htj2k-lossless, jpegxl-lossless, jpeg-baseline...); --list-syntaxes shows them. "
             "Default: each file keeps its own.")] = None,
    xfer_little: WriteLittle = False,
    xfer_implicit: WriteImplicit = False,
    xfer_big: WriteBig = False,
    xfer_deflated: WriteDeflated = False,
    list_syntaxes: Annotated[bool, typer.Option(
        "--list-syntaxes", rich_help_panel=SYNTAX,
        help="List every transfer syntax, and whether this installation can decode and encode it, then exit.")] = False,
    quality: Annotated[int, typer.Option("--quality", min=1, max=100, metavar="Q", rich_help_panel=LOSSY,
                                         help="JPEG baseline and extended quality, 1-100.")] = 90,
    ratio: Annotated[float, typer.Option("--ratio", min=1.0, metavar="R", rich_help_panel=LOSSY,
                                         help="JPEG 2000 and HTJ2K lossy: target compression ratio R:1.")] = 10.0,
    near: Annotated[int, typer.Option("--near", min=1, max=255, metavar="N", rich_help_panel=LOSSY,
                                      help="JPEG-LS near-lossless: largest allowed error per sample.")] = 2,
    distance: Annotated[float, typer.Option("--distance", min=0.01, max=25.0, metavar="D", rich_help_panel=LOSSY,
                                            help="JPEG XL lossy: Butteraugli distance (1.0 visually lossless).")] = 1.0,
    qstep: Annotated[float | None, typer.Option(
        "--qstep", min=1e-6, max=0.5, metavar="S", rich_help_panel=LOSSY,
        help="HTJ2K lossy: a fixed quantisation step (a fraction of the sample range) instead of --ratio.")] = None,
    effort: Annotated[int, typer.Option("--effort", min=1, max=9, metavar="E", rich_help_panel=SYNTAX,
                                        help="JPEG XL encoder effort, 1 (fast) to 9 (smallest).")] = 3,
    predictor: Annotated[int, typer.Option("--predictor", min=1, max=7, metavar="P", rich_help_panel=SYNTAX,
                                           help="JPEG lossless process 14 (jpeg-lossless-p14): predictor 1-7.")] = 1,
    keep_uid: Annotated[bool, typer.Option("--keep-uid", rich_help_panel=LOSSY,
                                           help="Keep the SOP Instance UID after lossy compression "
                                                "(default: a new one, with a Source Image Sequence).")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", rich_help_panel=SYNTAX,
                                            help="Do not decode lossless output again to check it bit for bit.")] = False,
    utf8: Annotated[bool, typer.Option("+U8", "--convert-to-utf8", rich_help_panel=FILES,
                                       help="Convert text values to UTF-8 (Specific Character Set ISO_IR 192).")] = False,
    no_meta: Annotated[bool, typer.Option("-F", "--no-meta", "--write-dataset", rich_help_panel=FILES,
                                          help="Write the bare data set, without preamble and file meta.")] = False,
    overwrite_input: Annotated[bool, typer.Option("--overwrite-input", rich_help_panel=FILES,
                                                  help="Allow the output to replace an input file.")] = False,
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=0, max=256, metavar="N", rich_help_panel=FILES,
                                      help="Convert in N processes (0, the default: the number of cores).")] = 0,
) -> int:
    """Convert DICOM files to another transfer syntax, compressing or decompressing as needed.

    Uncompressed encodings, RLE, JPEG, JPEG-LS, JPEG 2000, HTJ2K and JPEG XL, in and out.

    Usage: dcmcli dcmconv OPTIONS input output, or dcmcli dcmconv OPTIONS input... output-directory
    """
    from dcmcli.transcode.core import TranscodeOptions

    out = common.out
    t_start = time.perf_counter()
    if list_syntaxes:
        return _list_syntaxes(common)
    args = list(paths or [])
    if len(args) < 2:
        raise UsageError("give the input and the output", "dcmcli dcmconv -t SYNTAX input output")
    target = written_syntax(xfer_little, xfer_implicit, xfer_big, xfer_deflated, transfer_syntax, "-t")

    *inputs, output = args
    found = collect_inputs(inputs, action="converted")
    from dcmcli.cli.report import show_skipped

    for item in found.unreadable + found.skipped:
        show_skipped(out, item)
    codes = found.exit_codes()
    empty = found.nothing_to_send()
    if empty is not None:
        code, msg = empty
        out.emit("summary", {"converted": 0, "failed": 0, "skipped": len(found.skipped), "bytes_in": 0,
                             "bytes_out": 0, "seconds": 0.0, "exit_code": int(code)}, None)
        out.error_line(f"{msg}; nothing converted")
        return int(code)

    from dcmcli.transcode.files import convert_many, plan_jobs

    work = plan_jobs(inputs, output, found.files, target, overwrite_input=overwrite_input)
    options = TranscodeOptions(quality=quality, ratio=ratio, near=near, distance=distance, effort=effort,
                               qstep=qstep, predictor=predictor, keep_uid=keep_uid, verify=not no_verify,
                               utf8=utf8)
    workers = jobs or os.cpu_count() or 1
    with contextlib.ExitStack() as stack:
        bar: list[ProgressTicker] = []

        def on_start() -> None:  # after the workers are forked: the bar has a thread
            bar.append(stack.enter_context(out.progress(len(work), "converting")))

        def on_result(r: dict[str, object]) -> None:
            if bar:
                bar[0].advance()
            if r["outcome"] == "converted":
                human = (f"[green]converted[/] {r['path']} -> {r['output']} ({uid_name(str(r['transfer_syntax']))}"
                         + (f", {r['ratio']}:1" if r.get("ratio") else "") + ")") if out.verbosity > 0 else None
                out.emit("result", r, human)
            else:  # the reason goes to stderr, with the other errors
                out.emit("result", r, None)
                if not out.json_mode:
                    out.error(f"{r['path']}: {r['message']}")

        results = convert_many(work, options, meta=not no_meta, workers=workers, on_result=on_result,
                               on_start=on_start)

    converted = [r for r in results if r["outcome"] == "converted"]
    failed = [r for r in results if r["outcome"] != "converted"]
    code = worst(*codes, *(ExitCode(int(r["exit_code"])) for r in failed))  # type: ignore[call-overload]
    size_of = {str(f.path): f.size for f in found.files}  # before conversion (--overwrite-input)
    n_in = sum(size_of.get(str(r["path"]), 0) for r in converted)
    n_out = sum(int(r.get("bytes", 0)) for r in converted)  # type: ignore[call-overload]
    summary = {"converted": len(converted), "failed": len(failed), "skipped": len(found.skipped),
               "bytes_in": n_in, "bytes_out": n_out, "seconds": round(time.perf_counter() - t_start, 3),
               "exit_code": int(code)}
    out.emit("summary", summary,
             f"{len(converted)} converted, {len(failed)} failed, {len(found.skipped)} skipped"
             + (f"; {human_size(n_in)} -> {human_size(n_out)}" if converted else "")
             if out.verbosity >= 0 else None)
    if failed:
        out.error_line(f"{len(failed)} of {len(results)} files could not be converted")
    return int(code)
