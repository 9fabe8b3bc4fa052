"""dcmcli printscu: print DICOM images on a DICOM printer (Basic Grayscale or
Color Print Management), show its status, and preview the film as a PNG.

Thin: options to the core's option objects; the job itself is
dcmcli/net/services/print/job.py on the generic N-service session."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import Common, WarningsAsErrors, dcmcli_command
from dcmcli.cli.report import show_report
from dcmcli.errors import ExitCode, NoAcceptableContext, UsageError, worst
from dcmcli.output import Output, Verbosity

SESSION, FILM, BOX, IMAGE, JOB = ("Film session", "Film box", "Image box", "Image preparation", "Print job")

#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ("Does the printer answer, and what is its status (Printer N-GET)?",
     "dcmcli printscu --status -aec PRINTER printer 104"),
    ("Print a CT series four to a film on 14x17 blue film, two copies, the file's window.",
     "dcmcli printscu -aec PRINTER --layout 2x2 --film-size 14INX17IN --medium 'BLUE FILM' --copies 2 "
     "printer 104 ct/"),
    ("Look at the film first: write it as a PNG without sending anything.",
     "dcmcli printscu --preview-only --preview film.png --layout 3x5 ct/"),
    ("A lung window, 12-bit P-values, landscape, reversed polarity, following the print job up to a minute.",
     "dcmcli printscu --window -600,1500 --bits 12 --orientation LANDSCAPE --polarity REVERSE --wait 60 "
     "printer 104 chest.dcm"),
    ("A colour ultrasound image on a colour printer (automatic when the input is colour and the printer takes it).",
     "dcmcli printscu --color printer 104 us.dcm"),
    ("A Presentation LUT and the light box the film is read on.",
     "dcmcli printscu --presentation-lut IDENTITY --illumination 2000 --reflected-ambient-light 10 printer 104 "
     "mr.dcm"),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["association", "printer", "skipped", "preview", "presentation-lut", "film-session", "film-box",
          "annotation-box", "image-box", "print", "event-report", "print-job", "summary"]


def _choice(value: str | None, allowed: tuple[str, ...], option: str, free: bool = False) -> str | None:
    if value is None:
        return None
    v = value.strip().upper()
    if v not in allowed and not (free and v):
        raise UsageError(f"invalid {option} {value!r}", f"give one of {', '.join(allowed)}")
    return v


def _density(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    v = value.strip().upper()
    if v in ("BLACK", "WHITE") or v.isdigit():
        return v
    raise UsageError(f"invalid {option} {value!r}", "give BLACK, WHITE or a density in hundredths of OD (150)")


def _window(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        centre, width = (float(p) for p in value.split(","))
    except ValueError:
        raise UsageError(f"invalid --window {value!r}", "give CENTRE,WIDTH such as 40,400") from None
    if width < 1:
        raise UsageError(f"invalid --window {value!r}: the width must be at least 1", "give CENTRE,WIDTH such as 40,400")
    return centre, width


@dcmcli_command(app, "printscu", network="scu", default_aet="PRINTSCU")
def printscu(
    common: Common,
    args: Annotated[list[str], typer.Argument(
        metavar="PEER PORT IMAGE-FILE-OR-DIR...",
        help="The printer (peer port, or [AET@]host:port), then the images (files or folders; multi-frame "
             "objects frame by frame). --status needs only the printer, --preview-only only the images.")],
    status: Annotated[bool, typer.Option("--status", help="Show the printer's status (N-GET of the Printer, and its "
                                                          "configuration when supported); no film is sent.")] = False,
    color: Annotated[bool, typer.Option("--color", help="Basic Color Print Management (automatic when an input "
                                                        "is colour and the printer accepts it).")] = False,
    preview: Annotated[Path | None, typer.Option(
        "--preview", metavar="FILE.png",
        help="Write each film as the printer lays it out, from the pixels sent (FILE.png, FILE-2.png, ...).")] = None,
    preview_only: Annotated[bool, typer.Option("--preview-only",
                                               help="Write the --preview and send nothing (no printer needed).")] = False,
    copies: Annotated[int, typer.Option("--copies", min=1, max=99, rich_help_panel=SESSION,
                                        help="Number of Copies.")] = 1,
    priority: Annotated[str | None, typer.Option("--priority", metavar="HIGH|MED|LOW", rich_help_panel=SESSION,
                                                 help="Print Priority.")] = None,
    medium: Annotated[str | None, typer.Option("--medium", metavar="PAPER|CLEAR FILM|BLUE FILM|...",
                                               rich_help_panel=SESSION, help="Medium Type.")] = None,
    destination: Annotated[str | None, typer.Option("--destination", metavar="MAGAZINE|PROCESSOR|BIN_i",
                                                    rich_help_panel=SESSION, help="Film Destination.")] = None,
    label: Annotated[str | None, typer.Option("--label", metavar="TEXT", rich_help_panel=SESSION,
                                              help="Film Session Label.")] = None,
    layout: Annotated[str, typer.Option("--layout", metavar="COLSxROWS", rich_help_panel=FILM,
                                        help="Image Display Format: 2x2, STANDARD\\C,R, ROW\\a,b,..., "
                                             "COL\\a,b,...")] = "1x1",
    orientation: Annotated[str | None, typer.Option("--orientation", metavar="PORTRAIT|LANDSCAPE",
                                                    rich_help_panel=FILM, help="Film Orientation.")] = None,
    film_size: Annotated[str | None, typer.Option("--film-size", metavar="14INX17IN|...", rich_help_panel=FILM,
                                                  help="Film Size ID.")] = None,
    magnification: Annotated[str | None, typer.Option("--magnification", metavar="REPLICATE|BILINEAR|CUBIC|NONE",
                                                      rich_help_panel=FILM, help="Magnification Type.")] = None,
    smoothing: Annotated[str | None, typer.Option("--smoothing", metavar="TYPE", rich_help_panel=FILM,
                                                  help="Smoothing Type (printer-specific).")] = None,
    border_density: Annotated[str | None, typer.Option(
        "--border-density", metavar="BLACK|WHITE|N", rich_help_panel=FILM,
        help="Density around and between the images (N: hundredths of OD; preview default BLACK).")] = None,
    empty_density: Annotated[str | None, typer.Option(
        "--empty-density", metavar="BLACK|WHITE|N", rich_help_panel=FILM,
        help="Density of boxes without an image (preview default WHITE).")] = None,
    min_density: Annotated[int | None, typer.Option("--min-density", min=0, metavar="N", rich_help_panel=FILM,
                                                    help="Min Density (hundredths of OD).")] = None,
    max_density: Annotated[int | None, typer.Option("--max-density", min=0, metavar="N", rich_help_panel=FILM,
                                                    help="Max Density (hundredths of OD).")] = None,
    trim: Annotated[bool | None, typer.Option("--trim/--no-trim", rich_help_panel=FILM,
                                              help="Trim: a box around each image.")] = None,
    configuration_info: Annotated[str | None, typer.Option("--configuration-info", metavar="TEXT",
                                                           rich_help_panel=FILM,
                                                           help="Configuration Information (printer-specific).")] = None,
    annotations: Annotated[list[str] | None, typer.Option(
        "--annotation", metavar="TEXT", rich_help_panel=FILM,
        help="Text of the next annotation box of each film (repeatable: positions 1, 2, ...; Basic Annotation "
             "Box, when the printer offers it).")] = None,
    annotation_format: Annotated[str | None, typer.Option(
        "--annotation-format", metavar="ID", rich_help_panel=FILM,
        help="Annotation Display Format ID (printer-specific; with --annotation).")] = None,
    presentation_lut: Annotated[str | None, typer.Option(
        "--presentation-lut", metavar="IDENTITY|LIN OD", rich_help_panel=FILM,
        help="Create a Presentation LUT of this shape and reference it from each film box (when the printer "
             "offers the Presentation LUT SOP class).")] = None,
    illumination: Annotated[int | None, typer.Option("--illumination", min=0, metavar="CD/M2", rich_help_panel=FILM,
                                                     help="Illumination of the light box (with a Presentation "
                                                          "LUT).")] = None,
    reflected: Annotated[int | None, typer.Option("--reflected-ambient-light", min=0, metavar="CD/M2",
                                                  rich_help_panel=FILM, help="Reflected Ambient Light.")] = None,
    polarity: Annotated[str | None, typer.Option("--polarity", metavar="NORMAL|REVERSE", rich_help_panel=BOX,
                                                 help="Polarity of every image box.")] = None,
    requested_size: Annotated[float | None, typer.Option("--requested-size", min=0.0, metavar="MM",
                                                         rich_help_panel=BOX,
                                                         help="Requested Image Size: the image's width on film.")] = None,
    window: Annotated[str | None, typer.Option("--window", metavar="CENTRE,WIDTH", rich_help_panel=IMAGE,
                                               help="VOI window for every image (else the file's VOI LUT or first "
                                                    "window, else the pixel range).")] = None,
    auto_window: Annotated[bool, typer.Option("--auto-window", rich_help_panel=IMAGE,
                                              help="Window from each image's pixel range, whatever the file "
                                                   "says.")] = False,
    bits: Annotated[int, typer.Option("--bits", metavar="8|12", rich_help_panel=IMAGE,
                                      help="Grayscale P-values of 8 or 12 bits.")] = 8,
    max_size: Annotated[int | None, typer.Option("--max-size", min=16, metavar="PIXELS", rich_help_panel=IMAGE,
                                                 help="Resample images larger than this many rows or columns "
                                                      "(bilinear).")] = None,
    session_print: Annotated[bool, typer.Option("--session-print", rich_help_panel=JOB,
                                                help="Print the whole film session with one N-ACTION at the end "
                                                     "(else each film box).")] = False,
    wait: Annotated[float, typer.Option("--wait", min=0, metavar="SECONDS", rich_help_panel=JOB,
                                        help="Follow each print job (event reports, else N-GET each second) up to "
                                             "this long, until DONE or FAILURE.")] = 0.0,
    keep: Annotated[bool, typer.Option("--keep", rich_help_panel=JOB,
                                       help="Do not N-DELETE the film boxes and the film session.")] = False,
    warnings_as_errors: WarningsAsErrors = False,
) -> int:
    """Print DICOM images on a DICOM printer: film session, film boxes, image boxes, print, print job.

    Usage: dcmcli printscu OPTIONS peer port IMAGE-FILE-OR-DIR...; dcmcli printscu --status peer port;
    dcmcli printscu --preview-only --preview FILE.png IMAGE-FILE-OR-DIR...
    """
    from dcmcli.net.peer import parse_peer
    from dcmcli.net.services.print import job as pj
    from dcmcli.net.services.print.image import ImageSkipped, Preparation, is_color, read_images, to_gray

    out = common.out
    t0 = time.perf_counter()
    if preview_only and preview is None:
        raise UsageError("--preview-only needs --preview FILE.png", "add --preview film.png")
    if preview_only and status:
        raise UsageError("--preview-only sends nothing, --status asks the printer", "give one of them")
    if bits not in (8, 12):
        raise UsageError(f"invalid --bits {bits}", "give 8 or 12")
    target = None
    files = list(args)
    if not preview_only:
        target, files = parse_peer(args[0], files[1:])
    if status and files:
        raise UsageError("--status asks the printer only: no image files", "leave out the files, or --status")
    if not status and not files:
        raise UsageError("no images to print", "dcmcli printscu peer port IMAGE-FILE-OR-DIR...")
    session_options = pj.SessionOptions(copies=copies,
                                        priority=_choice(priority, ("HIGH", "MED", "LOW"), "--priority"),
                                        medium=medium.strip().upper() if medium else None,
                                        destination=destination.strip().upper() if destination else None,
                                        label=label)
    film = pj.FilmOptions(
        layout=pj.parse_layout(layout), orientation=_choice(orientation, ("PORTRAIT", "LANDSCAPE"), "--orientation"),
        film_size=film_size.strip().upper() if film_size else None,
        magnification=_choice(magnification, ("REPLICATE", "BILINEAR", "CUBIC", "NONE"), "--magnification"),
        smoothing=smoothing.strip().upper() if smoothing else None,
        border_density=_density(border_density, "--border-density"),
        empty_density=_density(empty_density, "--empty-density"), min_density=min_density, max_density=max_density,
        trim=trim, configuration_info=configuration_info, illumination=illumination,
        reflected_ambient_light=reflected, annotation_format=annotation_format)
    if annotation_format and not annotations:
        raise UsageError("--annotation-format goes with --annotation", "add the annotation texts, or leave it out")
    box = pj.BoxOptions(_choice(polarity, ("NORMAL", "REVERSE"), "--polarity"), requested_size)
    plut = _choice(presentation_lut, ("IDENTITY", "LIN OD"), "--presentation-lut")
    if (illumination is not None or reflected is not None) and plut is None:
        out.warn("--illumination and --reflected-ambient-light are used with a Presentation LUT: add "
                 "--presentation-lut IDENTITY for them to matter")
    prep_window = _window(window)

    codes: list[ExitCode] = []
    events: list[Any] = []

    def on_skip(s: ImageSkipped) -> None:
        out.warn(str(s))
        out.emit("skipped", {"path": s.path, "reason": s.why}, None)
        if s.exit_code != ExitCode.OK:
            codes.append(s.exit_code)

    images = []
    want_color = color
    if files:
        from dcmcli.dicomfile import find_inputs

        candidates, _ = find_inputs(files)
        want_color = color or any(is_color(str(c.path)) for c in candidates)
        prep = Preparation(want_color, bits, prep_window, auto_window, max_size)
        images = list(read_images(files, prep, on_skip))
        for image in images:
            for note in image.notes:
                out.info(f"{image.source} frame {image.frame}: {note}")
        if not images:
            code = worst(*codes) if codes else ExitCode.NO_VALID_INPUT
            _summary(out, "preview" if preview_only else "print", [], 0, None, [], None, t0, code)
            out.error_line(f"nothing to print: none of the inputs is an image that can be printed; "
                           f"{'install the codec named above' if ExitCode.CANNOT_CONVERT in codes else 'give image files'}")
            return int(code)

    if preview_only:
        assert preview is not None
        _write_preview(out, preview, images, film, box, want_color)
        code = worst(ExitCode.OK, *codes)
        _summary(out, "preview", images, len(pj.pages(images, film.layout.boxes)), None, [], None, t0, code)
        return int(code)

    assert target is not None
    from dcmcli.net.services.normalized import open_session
    from dcmcli.uids import BASIC_COLOR_PRINT_META, BASIC_GRAYSCALE_PRINT_META

    offered = pj.proposed_classes(color, want_color, status, bool(annotations))
    printer_info = None
    jobs: list[pj.PrintJobState] = []
    films_printed = 0
    last_failure = None

    def on_event(e: Any) -> None:
        events.append(e)
        from dcmcli.cli.nservice import show_event

        if out.verbosity >= Verbosity.VERBOSE or out.json_mode:
            show_event(out, e)

    with open_session(common.settings, target, offered, on_event=on_event,
                      on_report=lambda r: show_report(out, r)) as session:
        use_color = want_color and session.assoc.context_for(BASIC_COLOR_PRINT_META) is not None
        if not use_color and session.assoc.context_for(BASIC_GRAYSCALE_PRINT_META) is None:
            wanted = "Basic Color Print Management" if color else "Basic Grayscale Print Management"
            raise NoAcceptableContext(
                f"{target} does not accept {wanted} (the printer refused its meta SOP class)",
                "leave out --color: it may be a grayscale printer" if color else
                "check that the peer is a DICOM printer and the called AE title (-aec) names it",
                report=session.assoc.report)
        session.via = pj.via_meta(use_color)
        if use_color and plut:
            out.warn("a Presentation LUT is for grayscale films: --presentation-lut is not used for a colour one")
        if want_color and not use_color:
            out.warn(f"{target} does not accept colour printing: the colour images are printed as grayscale")
            images = [to_gray(i, bits) for i in images]
        printer_info = pj.printer_status(session, configuration=status)
        _show_printer(out, printer_info, status)
        if status:
            code = _status_code(printer_info, warnings_as_errors)
            _summary(out, "status", [], 0, printer_info, [], printer_info.result.status.as_dict(), t0, code)
            if code == ExitCode.OPERATION_FAILED:
                out.error_line(_printer_failure(printer_info))
            return int(code)
        if printer_info.status == "FAILURE":
            code = ExitCode.OPERATION_FAILED
            _summary(out, "print", images, 0, printer_info, [], printer_info.result.status.as_dict(), t0, code)
            out.error_line(_printer_failure(printer_info) + "; nothing was printed")
            return int(code)
        if printer_info.result.status.category.value == "failure":
            out.warn(f"the printer's status could not be read ({_printer_failure(printer_info)}): printing anyway")
        if printer_info.status == "WARNING" and warnings_as_errors:
            codes.append(ExitCode.OPERATION_WARNING)
        if preview is not None:
            _write_preview(out, preview, images, film, box, use_color)
        options = pj.JobOptions(session_options, film, box, color=use_color, presentation_lut=plut,
                                session_print=session_print, keep=keep, wait=wait,
                                annotations=tuple(annotations or ()))
        steps: list[pj.Step] = []

        def on_step(step: pj.Step) -> None:
            nonlocal films_printed
            steps.append(step)
            if step.kind == "print" and not step.failed:
                films_printed += 1 if step.detail.get("target") == "film-box" else len(
                    pj.pages(images, film.layout.boxes))
            _show_step(out, step, session_options)

        try:
            jobs = pj.run_job(session, images, options, on_step)
        except pj.JobFailed as exc:
            last_failure = exc.step
        for s in steps:
            if s.result is not None and s.result.status.category.value == "warning" and warnings_as_errors:
                codes.append(ExitCode.OPERATION_WARNING)
    if last_failure is not None:
        codes.append(ExitCode.OPERATION_FAILED)
    if any(j.execution_status == "FAILURE" for j in jobs):
        codes.append(ExitCode.OPERATION_FAILED)
    code = worst(ExitCode.OK, *codes)
    final = last_failure.result.status.as_dict() if last_failure is not None and last_failure.result else None
    _summary(out, "print", images, films_printed, printer_info, jobs, final, t0, code)
    if last_failure is not None and last_failure.result is not None:
        r = last_failure.result
        comment = f": {r.error_comment}" if r.error_comment else ""
        out.error_line(f"{r.operation} of the {last_failure.kind.replace('-', ' ')} failed: {r.status.meaning} "
                       f"({r.status.hex}){comment}; {_hint(last_failure)}")
    elif any(j.execution_status == "FAILURE" for j in jobs):
        failed = next(j for j in jobs if j.execution_status == "FAILURE")
        out.error_line(f"print job {failed.sop_instance_uid} ended FAILURE"
                       f"{': ' + failed.execution_status_info if failed.execution_status_info else ''}; "
                       "check the printer (film, processor, its log)")
    return int(code)


def _hint(step: Any) -> str:
    code = step.result.status.code
    if step.kind == "film-session" and code in (0x0106, 0x0116):
        return "the printer refuses a film session value: check --medium, --destination, --priority, --copies " \
               "(--status -v shows the printer)"
    if step.kind == "film-box" and code in (0x0106, 0x0117, 0x0116):
        return "the printer refuses this film box: check --layout, --film-size, --orientation, --magnification, " \
               "the densities and --trim"
    if step.kind == "annotation-box":
        return "the printer refuses the annotation: check --annotation-format and the texts' length (64 characters)"
    if step.kind == "image-box":
        return "the printer refuses the image: try --bits 8, --max-size, or leave out --polarity/--requested-size"
    from dcmcli.cli.nservice import hint_for

    return hint_for(step.result)


def _status_code(info: Any, warnings_as_errors: bool) -> ExitCode:
    from dcmcli.status import Category

    if info.result.status.category == Category.FAILURE or info.status == "FAILURE":
        return ExitCode.OPERATION_FAILED
    if warnings_as_errors and (info.status == "WARNING" or info.result.status.category == Category.WARNING):
        return ExitCode.OPERATION_WARNING
    return ExitCode.OK


def _printer_failure(info: Any) -> str:
    r = info.result
    if r.status.category.value == "failure":
        comment = f": {r.error_comment}" if r.error_comment else ""
        return f"N-GET of the printer failed: {r.status.meaning} ({r.status.hex}){comment}"
    why = f" ({info.attributes.get('printer_status_info')})" if info.attributes.get("printer_status_info") else ""
    return f"the printer reports FAILURE{why}"


def _show_printer(out: Output, info: Any, asked: bool) -> None:
    d = info.as_dict()
    head = f"printer status: {d['status'] or 'not given'}"
    if d["status_info"] and d["status_info"] != d["status"]:
        head += f" ({d['status_info']})"
    parts = [head]
    for key, label in (("name", "name"), ("manufacturer", "manufacturer"), ("model", "model"),
                       ("serial_number", "serial"), ("software_versions", "software"),
                       ("last_calibration", "calibrated")):
        if d[key]:
            parts.append(f"{label}: {d[key]}")
    if info.result.status.code != 0:
        parts.append(f"N-GET answered {info.result.status.meaning} ({info.result.status.hex})")
    human = ", ".join(parts)
    if d["configuration"]:
        human += f"\n  printer configuration: {len(d['configuration'])} item(s)"
    out.emit("printer", d, human, plain=True, min_verbosity=Verbosity.NORMAL if asked else Verbosity.VERBOSE)


def _show_step(out: Output, step: Any, session_options: Any) -> None:
    r = step.result
    d = step.detail
    status = r.status.as_dict() if r is not None else None
    said = f"{r.status.meaning} ({r.status.hex})" if r is not None else ""
    comment = r.error_comment or None if r is not None else None
    if comment:
        said += f": {comment}"
    failed_or_warned = r is not None and r.status.category.value in ("failure", "warning", "cancel")
    if step.kind == "presentation-lut":
        out.emit("presentation-lut", {"shape": d["shape"], "sop_instance_uid": r.sop_instance_uid if r else None,
                                      "status": status, "refused": bool(d.get("refused"))},
                 f"presentation LUT {d['shape']}: " + ("not offered by the printer, films go without it"
                                                       if d.get("refused") else said),
                 plain=True, min_verbosity=Verbosity.NORMAL if d.get("refused") or failed_or_warned
                 else Verbosity.VERBOSE)
    elif step.kind == "annotation-box":
        if r is None:
            why = ("the printer does not offer Basic Annotation Box: the annotations are left out"
                   if not d["offered"] else f"film {d['film']} has {d['boxes']} annotation box"
                   f"{'es' if d['boxes'] != 1 else ''} for {d['texts']} annotations: the rest are left out")
            out.warn(why)
            return
        out.emit("annotation-box", {"film": d["film"], "position": d["position"], "sop_instance_uid": r.sop_instance_uid,
                                    "text": d["text"], "status": status, "error_comment": comment},
                 f"  annotation box {d['position']}: {d['text']!r}: {said}", plain=True,
                 min_verbosity=Verbosity.NORMAL if failed_or_warned else Verbosity.VERBOSE)
    elif step.kind == "film-session":
        out.emit("film-session", {"sop_instance_uid": r.sop_instance_uid or None, "status": status,
                                  "error_comment": comment, "color": d["color"],
                                  "copies": session_options.copies, "priority": session_options.priority,
                                  "medium": session_options.medium, "destination": session_options.destination,
                                  "label": session_options.label},
                 f"film session {r.sop_instance_uid or ''}: {'refused: ' if step.failed else ''}{said}", plain=True,
                 min_verbosity=Verbosity.NORMAL if failed_or_warned else Verbosity.VERBOSE)
    elif step.kind == "film-box":
        out.emit("film-box", {"index": d["index"], "films": d["films"], "sop_instance_uid": r.sop_instance_uid or None,
                              "display_format": d["display_format"], "image_boxes": d["image_boxes"],
                              "images": d["images"], "status": status, "error_comment": comment},
                 f"film {d['index']}/{d['films']} ({d['display_format']}, {d['images']} image"
                 f"{'s' if d['images'] != 1 else ''}): film box {'refused: ' if step.failed else ''}{said}",
                 plain=True,
                 min_verbosity=Verbosity.NORMAL if failed_or_warned else Verbosity.VERBOSE)
    elif step.kind == "image-box":
        out.emit("image-box", {"film": d["film"], "position": d["position"], "sop_instance_uid": r.sop_instance_uid,
                               "source": d["source"], "frame": d["frame"], "rows": d["rows"], "columns": d["columns"],
                               "bits": d["bits"], "color": d["color"], "status": status, "error_comment": comment},
                 f"  image box {d['position']}: {d['source']} frame {d['frame']} ({d['columns']}x{d['rows']}, "
                 f"{'RGB' if d['color'] else str(d['bits']) + '-bit'}): {said}", plain=True,
                 min_verbosity=Verbosity.NORMAL if failed_or_warned else Verbosity.VERBOSE)
    elif step.kind == "print":
        what = f"film {d['film']}" if d["target"] == "film-box" else "film session"
        job = f", print job {d['print_job_uid']}" if d.get("print_job_uid") else ""
        out.emit("print", {"target": d["target"], "film": d["film"], "sop_instance_uid": r.sop_instance_uid or None,
                           "status": status, "error_comment": comment, "print_job_uid": d.get("print_job_uid")},
                 f"{what} printed: {said}{job}" if not step.failed else f"{what} not printed: {said}", plain=True)
    elif step.kind == "print-job":
        state = d["state"]
        out.emit("print-job", {"sop_instance_uid": state.sop_instance_uid,
                               "execution_status": state.execution_status,
                               "execution_status_info": state.execution_status_info, "via": state.via,
                               "status": status},
                 f"  print job {state.sop_instance_uid}: {state.execution_status or 'status not known'}"
                 f"{' (' + state.execution_status_info + ')' if state.execution_status_info else ''}", plain=True,
                 min_verbosity=Verbosity.NORMAL if state.execution_status else Verbosity.VERBOSE)
    elif step.kind == "delete" and r is not None and r.status.category.value == "failure":
        out.warn(f"N-DELETE of {r.sop_instance_uid} failed: {said}")


def _write_preview(out: Output, path: Path, images: list[Any], film: Any, box: Any, color: bool) -> None:
    from dcmcli.net.services.print.job import pages
    from dcmcli.net.services.print.preview import write_preview

    written = write_preview(path, pages(images, film.layout.boxes), film.layout, film, box.polarity, color)
    out.emit("preview", {"files": written},
             "preview: " + ", ".join(f"{w['path']} ({w['width']}x{w['height']})" for w in written), plain=True)


def _summary(out: Output, mode: str, images: list[Any], films: int, printer: Any, jobs: list[Any],
             status: dict[str, object] | None, t0: float, code: ExitCode) -> None:
    summary = {"mode": mode, "images": len(images), "films": films,
               "printer_status": printer.status if printer is not None else None,
               "print_jobs": [{"sop_instance_uid": j.sop_instance_uid, "execution_status": j.execution_status}
                              for j in jobs],
               "status": status, "seconds": round(time.perf_counter() - t0, 3), "exit_code": int(code)}
    human = None
    if mode == "print" and code in (ExitCode.OK, ExitCode.OPERATION_WARNING):
        human = f"{len(images)} image{'s' if len(images) != 1 else ''} on {films} film{'s' if films != 1 else ''}"
    out.emit("summary", summary, human, plain=True)
