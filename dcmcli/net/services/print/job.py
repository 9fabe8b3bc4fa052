"""Print Management SCU (PS3.4 H): one print job on one association.

The steps, each one request of the generic N-service session
(``normalized.NSession``, on the meta SOP class's context):

1. N-GET of the Printer (its status; a printer in FAILURE is not used);
2. N-CREATE of a Presentation LUT when asked for and offered;
3. N-CREATE of the Basic Film Session (copies, priority, medium, destination, label);
4. per film: N-CREATE of a Basic Film Box (layout, film size, densities ...),
   whose response names its image boxes; N-SET of its annotation boxes (when
   asked for and offered) and of each image box with the prepared pixels;
   N-ACTION print on the film box (``session_print``: once, on the film
   session, after the last film);
5. the Print Job named by the N-ACTION response followed to DONE or FAILURE:
   its N-EVENT-REPORTs, else N-GET polls (``wait`` seconds at most);
6. N-DELETE of each film box and of the film session (unless ``keep``).

No typer, no sockets here. ``on_step`` receives each step's outcome (a ``Step``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any

from dcmcli.errors import UsageError
from dcmcli.conformance import ApplicationEntity, Contexts, Statuses
from dcmcli.net.services.normalized import NORMALIZED_SYNTAXES, EventReport, NResult, NSession
from dcmcli.net.services.print.image import PreparedImage
from dcmcli.records import dataclass
from dcmcli.status import Category
from dcmcli.uids import (BASIC_ANNOTATION_BOX, BASIC_COLOR_IMAGE_BOX, BASIC_COLOR_PRINT_META, BASIC_FILM_BOX,
                         BASIC_FILM_SESSION, BASIC_GRAYSCALE_IMAGE_BOX, BASIC_GRAYSCALE_PRINT_META, PRESENTATION_LUT, PRINT_JOB, PRINTER,
                         PRINTER_CONFIGURATION, PRINTER_CONFIGURATION_INSTANCE, PRINTER_INSTANCE)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


def proposed_classes(color: bool, colour_input: bool, status: bool, annotations: bool) -> list[str]:
    """The SOP classes printscu proposes: the grayscale meta SOP class, the
    colour one with ``--color`` (alone) or when an input is colour or for
    ``--status`` (both, the printer picks), Print Job and Presentation LUT,
    Printer Configuration Retrieval with ``--status``, Basic Annotation Box
    with ``--annotation``."""
    metas = [BASIC_COLOR_PRINT_META] if color else ([BASIC_COLOR_PRINT_META, BASIC_GRAYSCALE_PRINT_META]
                                                    if colour_input or status else [BASIC_GRAYSCALE_PRINT_META])
    return [*metas, PRINT_JOB, PRESENTATION_LUT] + ([PRINTER_CONFIGURATION] if status else []) + \
        ([BASIC_ANNOTATION_BOX] if annotations else [])


def meta_class(color: bool) -> str:
    return BASIC_COLOR_PRINT_META if color else BASIC_GRAYSCALE_PRINT_META


def image_box_class(color: bool) -> str:
    return BASIC_COLOR_IMAGE_BOX if color else BASIC_GRAYSCALE_IMAGE_BOX


def via_meta(color: bool) -> dict[str, str]:
    """The classes used on a meta SOP class's context (PS3.4 H.3)."""
    meta = meta_class(color)
    return {c: meta for c in (BASIC_FILM_SESSION, BASIC_FILM_BOX, image_box_class(color), PRINTER)}


# -- the layout ---------------------------------------------------------------------

@dataclass(frozen=True)
class Layout:
    """An Image Display Format (PS3.3 C.13.8.1): STANDARD\\C,R, ROW\\a,b,..
    (rows of a, b, .. images), COL\\a,b,.. (columns of a, b, .. images)."""

    kind: str  # STANDARD, ROW, COL
    counts: tuple[int, ...]  # STANDARD: (columns, rows)

    @property
    def display_format(self) -> str:
        return f"{self.kind}\\{','.join(map(str, self.counts))}"

    @property
    def boxes(self) -> int:
        return self.counts[0] * self.counts[1] if self.kind == "STANDARD" else sum(self.counts)

    def cells(self) -> list[tuple[float, float, float, float]]:
        """Each box's (x, y, width, height) as fractions of the film, in image box position order."""
        if self.kind == "STANDARD":
            cols, rows = self.counts
            return [(c / cols, r / rows, 1 / cols, 1 / rows) for r in range(rows) for c in range(cols)]
        out = []
        lines = len(self.counts)
        for i, n in enumerate(self.counts):
            for j in range(n):
                if self.kind == "ROW":
                    out.append((j / n, i / lines, 1 / n, 1 / lines))
                else:
                    out.append((i / lines, j / n, 1 / lines, 1 / n))
        return out


def parse_layout(text: str) -> Layout:
    """``3x5`` (columns x rows), ``STANDARD\\3,5``, ``ROW\\2,1``, ``COL\\1,2``."""
    t = text.strip().upper().replace("/", "\\")
    bad = UsageError(f"invalid --layout {text!r}",
                     "give COLSxROWS (2x2), STANDARD\\C,R, ROW\\a,b,... or COL\\a,b,...")
    try:
        if "\\" in t:
            kind, _, rest = t.partition("\\")
            counts = tuple(int(n) for n in rest.split(","))
        else:
            kind, counts = "STANDARD", tuple(int(n) for n in t.split("X"))
    except ValueError:
        raise bad from None
    if kind not in ("STANDARD", "ROW", "COL") or not counts or any(n < 1 or n > 99 for n in counts):
        raise bad
    if kind == "STANDARD" and len(counts) != 2:
        raise bad
    return Layout(kind, counts)


# -- what the SCU asks for ----------------------------------------------------------

@dataclass
class SessionOptions:
    """Basic Film Session attributes; None: the printer's default."""

    copies: int = 1
    priority: str | None = None  # HIGH, MED, LOW
    medium: str | None = None  # PAPER, CLEAR FILM, BLUE FILM, ...
    destination: str | None = None  # MAGAZINE, PROCESSOR, BIN_i
    label: str | None = None

    def dataset(self) -> Dataset:
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.NumberOfCopies = str(self.copies)
        for keyword, value in (("PrintPriority", self.priority), ("MediumType", self.medium),
                               ("FilmDestination", self.destination), ("FilmSessionLabel", self.label)):
            if value is not None:
                setattr(ds, keyword, value)
        return ds


@dataclass
class FilmOptions:
    """Basic Film Box attributes; None: the printer's default."""

    layout: Layout = field(default_factory=lambda: Layout("STANDARD", (1, 1)))
    orientation: str | None = None  # PORTRAIT, LANDSCAPE
    film_size: str | None = None  # 14INX17IN ...
    magnification: str | None = None  # REPLICATE, BILINEAR, CUBIC, NONE
    smoothing: str | None = None
    border_density: str | None = None  # BLACK, WHITE or hundredths of OD
    empty_density: str | None = None
    min_density: int | None = None
    max_density: int | None = None
    trim: bool | None = None
    configuration_info: str | None = None
    illumination: int | None = None  # cd/m2, with a Presentation LUT
    reflected_ambient_light: int | None = None
    annotation_format: str | None = None  # Annotation Display Format ID (with annotations)

    def dataset(self, session_uid: str, plut_uid: str | None) -> Dataset:
        from pydicom.dataset import Dataset

        ds = Dataset()
        ds.ImageDisplayFormat = self.layout.display_format
        ref = Dataset()
        ref.ReferencedSOPClassUID = BASIC_FILM_SESSION
        ref.ReferencedSOPInstanceUID = session_uid
        ds.ReferencedFilmSessionSequence = [ref]
        for keyword, value in (("FilmOrientation", self.orientation), ("FilmSizeID", self.film_size),
                               ("MagnificationType", self.magnification), ("SmoothingType", self.smoothing),
                               ("BorderDensity", self.border_density), ("EmptyImageDensity", self.empty_density),
                               ("MinDensity", self.min_density), ("MaxDensity", self.max_density),
                               ("ConfigurationInformation", self.configuration_info),
                               ("AnnotationDisplayFormatID", self.annotation_format),
                               ("Illumination", self.illumination),
                               ("ReflectedAmbientLight", self.reflected_ambient_light)):
            if value is not None:
                setattr(ds, keyword, value)
        if self.trim is not None:
            ds.Trim = "YES" if self.trim else "NO"
        if plut_uid:
            lut = Dataset()
            lut.ReferencedSOPClassUID = PRESENTATION_LUT
            lut.ReferencedSOPInstanceUID = plut_uid
            ds.ReferencedPresentationLUTSequence = [lut]
        return ds


@dataclass
class BoxOptions:
    polarity: str | None = None  # NORMAL, REVERSE
    requested_size: float | None = None  # mm, the image's width on film


@dataclass
class JobOptions:
    session: SessionOptions
    film: FilmOptions
    box: BoxOptions
    color: bool = False
    presentation_lut: str | None = None  # PresentationLUTShape: IDENTITY, LIN OD (None: IDENTITY when offered)
    session_print: bool = False
    keep: bool = False
    wait: float = 0.0  # seconds to follow a print job
    annotations: tuple[str, ...] = ()  # text of annotation boxes 1, 2, ... of each film (Basic Annotation Box)


# -- what happened ------------------------------------------------------------------

@dataclass
class PrinterInfo:
    """What an N-GET of the Printer (and its configuration) said."""

    result: NResult
    attributes: dict[str, Any] = field(default_factory=dict)
    configuration: list[dict[str, Any]] | None = None

    @property
    def status(self) -> str | None:
        value = self.attributes.get("printer_status")
        return str(value) if value else None

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "status_info": self.attributes.get("printer_status_info"),
                "name": self.attributes.get("printer_name"), "manufacturer": self.attributes.get("manufacturer"),
                "model": self.attributes.get("model"), "serial_number": self.attributes.get("serial_number"),
                "software_versions": self.attributes.get("software_versions"),
                "last_calibration": self.attributes.get("last_calibration"),
                "response": self.result.status.as_dict(), "error_comment": self.result.error_comment or None,
                "configuration": self.configuration}


_PRINTER_KEYWORDS = (("printer_status", "PrinterStatus"), ("printer_status_info", "PrinterStatusInfo"),
                     ("printer_name", "PrinterName"), ("manufacturer", "Manufacturer"),
                     ("model", "ManufacturerModelName"), ("serial_number", "DeviceSerialNumber"),
                     ("software_versions", "SoftwareVersions"))


def printer_status(session: NSession, configuration: bool = False) -> PrinterInfo:
    """N-GET of the Printer SOP instance (every attribute it has: naming one
    it lacks gets 0105 from some printers), and of the Printer Configuration
    Retrieval instance when ``configuration`` and the peer accepted it."""
    r = session.get(PRINTER, PRINTER_INSTANCE)
    info = PrinterInfo(r)
    ds = r.dataset() if r.data else None
    if ds is not None:
        for key, keyword in _PRINTER_KEYWORDS:
            value = ds.get(keyword)
            if value is not None and str(value) != "":
                info.attributes[key] = "\\".join(map(str, value)) if _is_multi(value) else str(value)
        when = f"{ds.get('DateOfLastCalibration', '')} {ds.get('TimeOfLastCalibration', '')}".strip()
        if when:
            info.attributes["last_calibration"] = when
    if configuration and session.accepts(PRINTER_CONFIGURATION):
        c = session.get(PRINTER_CONFIGURATION, PRINTER_CONFIGURATION_INSTANCE)
        cds = c.dataset() if c.data else None
        if cds is not None and "PrinterConfigurationSequence" in cds:
            from dcmcli.dataset import to_json

            info.configuration = [to_json(item) for item in cds.PrinterConfigurationSequence]
    return info


def _is_multi(value: object) -> bool:
    return isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue"


@dataclass
class Step:
    """One request of the job, for the caller's events."""

    kind: str  # printer, presentation-lut, film-session, film-box, image-box, print, print-job, delete
    result: NResult | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.result is not None and self.result.status.category in (Category.FAILURE, Category.CANCEL)


class JobFailed(Exception):
    """A request of the job failed; the job was stopped (and cleaned up)."""

    def __init__(self, step: Step) -> None:
        super().__init__(step.kind)
        self.step = step


@dataclass
class PrintJobState:
    sop_instance_uid: str
    execution_status: str | None = None  # PENDING, PRINTING, DONE, FAILURE
    execution_status_info: str | None = None
    via: str = "none"  # event-report, n-get, none

    @property
    def finished(self) -> bool:
        return self.execution_status in ("DONE", "FAILURE")


_JOB_EVENTS = {1: "PENDING", 2: "PRINTING", 3: "DONE", 4: "FAILURE"}


def pages(images: Sequence[PreparedImage], per_film: int) -> list[list[PreparedImage]]:
    return [list(images[i:i + per_film]) for i in range(0, len(images), per_film)]


def run_job(session: NSession, images: Sequence[PreparedImage], options: JobOptions,
            on_step: Callable[[Step], None]) -> list[PrintJobState]:
    """The whole job (steps 2-6 of the module's list); raises ``JobFailed``
    after cleaning up when a request fails. Returns the print jobs followed."""
    jobs: list[PrintJobState] = []
    created: list[tuple[str, str]] = []  # (class, instance) to delete, newest last
    # Print job reports may come before the N-ACTION response that names the
    # job has been read (while it is awaited): each is kept for follow_job.
    reports: dict[str, EventReport] = {}
    earlier = session.on_event

    def on_event(e: EventReport) -> None:
        if e.sop_class_uid == PRINT_JOB:
            reports[e.sop_instance_uid] = e
        earlier(e)

    session.on_event = on_event

    def do(kind: str, r: NResult, **detail: Any) -> Step:
        step = Step(kind, r, detail)
        on_step(step)
        if step.failed:
            raise JobFailed(step)
        return step

    try:
        plut_uid = None
        # A printer offering Presentation LUTs may require one matching the
        # image depth (dcmprscp refuses an 8-bit image box otherwise): IDENTITY
        # when none was asked for, which is what a film without one means.
        shape = options.presentation_lut or ("IDENTITY" if session.accepts(PRESENTATION_LUT) else None)
        if shape and not options.color:
            if session.accepts(PRESENTATION_LUT):
                from pydicom.dataset import Dataset

                lut = Dataset()
                lut.PresentationLUTShape = shape
                r = do("presentation-lut", session.create(PRESENTATION_LUT, None, lut), shape=shape,
                       asked=options.presentation_lut is not None)
                plut_uid = r.result.sop_instance_uid if r.result else None
                if plut_uid:
                    created.append((PRESENTATION_LUT, plut_uid))
            else:
                on_step(Step("presentation-lut", None, {"shape": options.presentation_lut, "refused": True}))
        r = do("film-session", session.create(BASIC_FILM_SESSION, None, options.session.dataset()),
               color=options.color)
        session_uid = r.result.sop_instance_uid if r.result else ""
        if not session_uid:
            from dcmcli.status import Status

            r.result = NResult("N-CREATE", BASIC_FILM_SESSION, "", Status(0x0110, Category.FAILURE,
                                                                          "processing failure"),
                               "the printer's response names no film session instance")
            raise JobFailed(r)
        created.append((BASIC_FILM_SESSION, session_uid))
        box_class = image_box_class(options.color)
        films = pages(images, options.film.layout.boxes)
        for index, film in enumerate(films, 1):
            fb = session.create(BASIC_FILM_BOX, None, options.film.dataset(session_uid, plut_uid))
            boxes = _image_boxes(fb)
            step = do("film-box", fb, index=index, films=len(films),
                      display_format=options.film.layout.display_format, image_boxes=len(boxes), images=len(film))
            if fb.sop_instance_uid:
                created.append((BASIC_FILM_BOX, fb.sop_instance_uid))
            problem = ("the printer's response names no film box instance" if not fb.sop_instance_uid else
                       f"the film box has {len(boxes)} image boxes for {len(film)} images"
                       if len(boxes) < len(film) else "")
            if problem:
                from dcmcli.status import Status

                step.result = NResult("N-CREATE", BASIC_FILM_BOX, fb.sop_instance_uid,
                                      Status(0x0110, Category.FAILURE, "processing failure"), problem)
                raise JobFailed(step)
            if options.annotations:
                _annotate(session, fb, index, options.annotations, do, on_step)
            for position, image in enumerate(film, 1):
                sop_class, uid = boxes[position - 1]
                do("image-box", session.set(sop_class or box_class, uid, _image_box(image, position, options.box)),
                   film=index, position=position, source=image.source, frame=image.frame, rows=image.rows,
                   columns=image.columns, bits=image.bits, color=image.color)
            if not options.session_print:
                a = session.action(BASIC_FILM_BOX, fb.sop_instance_uid, 1, None)
                job = _print_job(a)
                do("print", a, target="film-box", film=index, print_job_uid=job)
                if job:
                    jobs.append(follow_job(session, job, options.wait, on_step, reports))
                if not options.keep:
                    _delete(session, created, BASIC_FILM_BOX, fb.sop_instance_uid, on_step)
        if options.session_print:
            a = session.action(BASIC_FILM_SESSION, session_uid, 1, None)
            job = _print_job(a)
            do("print", a, target="film-session", film=None, print_job_uid=job)
            if job:
                jobs.append(follow_job(session, job, options.wait, on_step, reports))
    except JobFailed:
        _cleanup(session, created, on_step)
        raise
    finally:
        session.on_event = earlier
    if not options.keep:
        _cleanup(session, created, on_step)
    return jobs


def _image_boxes(fb: NResult) -> list[tuple[str, str]]:
    ds = fb.dataset() if fb.data else None
    if ds is None or "ReferencedImageBoxSequence" not in ds:
        return []
    return [(str(i.get("ReferencedSOPClassUID", "")), str(i.get("ReferencedSOPInstanceUID", "")))
            for i in ds.ReferencedImageBoxSequence]


def _annotate(session: NSession, fb: NResult, film: int, texts: Sequence[str], do: Callable[..., Step],
              on_step: Callable[[Step], None]) -> None:
    """N-SET of the film box's annotation boxes (Basic Annotation Box, negotiated on its own context)."""
    from pydicom.dataset import Dataset

    ds = fb.dataset() if fb.data else None
    boxes = [str(i.get("ReferencedSOPInstanceUID", "")) for i in (ds.get("ReferencedBasicAnnotationBoxSequence") or [])
             ] if ds is not None else []
    if not session.accepts(BASIC_ANNOTATION_BOX) or len(boxes) < len(texts):
        on_step(Step("annotation-box", None, {"film": film, "offered": session.accepts(BASIC_ANNOTATION_BOX),
                                              "boxes": len(boxes), "texts": len(texts)}))
    if not session.accepts(BASIC_ANNOTATION_BOX):
        return
    for position, (uid, text) in enumerate(zip(boxes, texts), 1):
        box = Dataset()
        box.AnnotationPosition = position
        box.TextString = text
        do("annotation-box", session.set(BASIC_ANNOTATION_BOX, uid, box), film=film, position=position, text=text)


def _image_box(image: PreparedImage, position: int, box: BoxOptions) -> Dataset:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.ImageBoxPosition = position
    if box.polarity:
        ds.Polarity = box.polarity
    if box.requested_size is not None:
        ds.RequestedImageSize = f"{box.requested_size:g}"
    if image.color:
        ds.BasicColorImageSequence = [image.image_item()]
    else:
        ds.BasicGrayscaleImageSequence = [image.image_item()]
    return ds


def _print_job(a: NResult) -> str | None:
    ds = a.dataset() if a.data else None
    if ds is not None and ds.get("ReferencedPrintJobSequence"):
        return str(ds.ReferencedPrintJobSequence[0].get("ReferencedSOPInstanceUID", "")) or None
    return None


def follow_job(session: NSession, uid: str, wait: float, on_step: Callable[[Step], None],
               reports: dict[str, EventReport] | None = None) -> PrintJobState:
    """The print job's N-EVENT-REPORTs (Pending 1, Printing 2, Done 3,
    Failure 4) on this association (``reports``: those already received),
    and an N-GET of its Execution Status each second without one, until DONE
    or FAILURE or ``wait`` seconds."""
    state = PrintJobState(uid)

    def take(e: EventReport) -> None:
        ds = e.dataset() if e.data else None
        state.execution_status = _JOB_EVENTS.get(e.event_type_id, state.execution_status)
        if ds is not None and ds.get("ExecutionStatusInfo"):
            state.execution_status_info = str(ds.ExecutionStatusInfo)
        state.via = "event-report"
        on_step(Step("print-job", None, {"state": state}))

    if reports and uid in reports:
        take(reports.pop(uid))
    if wait <= 0 or state.finished:
        if state.via == "none":
            on_step(Step("print-job", None, {"state": state}))
        return state
    earlier = session.on_event

    def on_event(e: EventReport) -> None:
        earlier(e)
        if e.sop_class_uid == PRINT_JOB and e.sop_instance_uid == uid:
            take(e)

    session.on_event = on_event
    deadline = time.monotonic() + wait
    try:
        while not state.finished:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if session.wait(min(1.0, remaining), lambda: state.finished):
                break
            if session.released or not session.accepts(PRINT_JOB):
                break
            r = session.get(PRINT_JOB, uid, [0x21000020, 0x21000030])
            ds = r.dataset() if r.data else None
            if r.status.category == Category.FAILURE:
                on_step(Step("print-job", r, {"state": state}))
                break
            if ds is not None and ds.get("ExecutionStatus"):
                before = state.execution_status
                state.execution_status = str(ds.ExecutionStatus)
                state.execution_status_info = str(ds.get("ExecutionStatusInfo", "")) or None
                state.via = "n-get"
                if state.execution_status != before:
                    on_step(Step("print-job", r, {"state": state}))
    finally:
        session.on_event = earlier
    return state


def _delete(session: NSession, created: list[tuple[str, str]], sop_class: str, uid: str,
            on_step: Callable[[Step], None]) -> None:
    try:
        created.remove((sop_class, uid))
    except ValueError:
        return
    on_step(Step("delete", session.delete(sop_class, uid), {}))


def _cleanup(session: NSession, created: list[tuple[str, str]], on_step: Callable[[Step], None]) -> None:
    """N-DELETE what the job created (film boxes, then the session, then the LUT);
    a failure here is shown, never raised."""
    if session.assoc.conn.closed:
        return
    order = [c for c in created if c[0] == BASIC_FILM_BOX] + [c for c in created if c[0] == BASIC_FILM_SESSION] + \
        [c for c in created if c[0] == PRESENTATION_LUT]
    has_session = any(c[0] == BASIC_FILM_SESSION for c in order)
    for sop_class, uid in order:
        if sop_class == BASIC_FILM_BOX and has_session:
            continue  # deleting the session deletes its film boxes (PS3.4 H.4.1.2.2)
        try:
            on_step(Step("delete", session.delete(sop_class, uid), {}))
        except Exception:  # noqa: BLE001 - the job's own error is the one to report
            return
    created.clear()


# -- the conformance statement's declaration (dcmcli.conformance) -------------------

_PRINT_SCU = {
    "success": "the next request; the film printed; exit 0",
    "warning": "printed with its meaning (B600-B60A: memory, empty pages, image size, density); exit 0, or 67 "
               "with --warnings-as-errors",
    "failure": "printed with its meaning and the Error Comment; the job stops, what was created is deleted; "
               "exit 66 (65 when the printer refuses the meta SOP class)"}
CONFORMANCE = [
    ApplicationEntity(
        "PRINTSCU", "printscu",
        "Prints images on a DICOM printer: the printer's status (N-GET), a film session, film boxes of the layout "
        "asked for with their image boxes (N-CREATE, N-SET), printing (N-ACTION) and the print job followed to "
        "its end (N-EVENT-REPORT, else N-GET), then N-DELETE; `--status` only asks the printer.",
        contexts=(
            Contexts((BASIC_GRAYSCALE_PRINT_META,), NORMALIZED_SYNTAXES, "SCU", True,
                     when="unless --color", note="Basic Film Session, Film Box, Grayscale Image Box and Printer on it"),
            Contexts((BASIC_COLOR_PRINT_META,), NORMALIZED_SYNTAXES, "SCU", True,
                     when="--color, a colour input, or --status", note="the colour image box on it"),
            Contexts((PRINT_JOB, PRESENTATION_LUT), NORMALIZED_SYNTAXES, "SCU", True),
            Contexts((PRINTER_CONFIGURATION,), NORMALIZED_SYNTAXES, "SCU", True, when="--status"),
            Contexts((BASIC_ANNOTATION_BOX,), NORMALIZED_SYNTAXES, "SCU", True, when="--annotation"),
        ),
        statuses=(Statuses("N-GET", "SCU", behaviour=_PRINT_SCU), Statuses("N-CREATE", "SCU", behaviour=_PRINT_SCU),
                  Statuses("N-SET", "SCU", behaviour=_PRINT_SCU), Statuses("N-ACTION", "SCU", behaviour=_PRINT_SCU),
                  Statuses("N-DELETE", "SCU", behaviour=_PRINT_SCU),
                  Statuses("N-EVENT-REPORT", "SCP", (0x0000,),
                           {0x0000: "every Printer and Print Job event report is answered success and shown"})),
        initiation=("One association per run for every film of the session, released after the last N-DELETE "
                    "(or the status).",),
    ),
]
