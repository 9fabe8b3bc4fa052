"""The UID and SOP-class registry both cores use: transfer syntaxes, SOP
classes, the Query/Retrieve information models, their names, and parsing of
user-given UIDs, keywords and short names.

The constants are plain strings so that sending and receiving need neither
pydicom nor pynetdicom (importing them costs about 0.9 s); their
dictionaries are loaded only when a name or a list is asked for.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

from dcmcli.errors import UsageError
from dcmcli.records import dataclass

VERIFICATION = "1.2.840.10008.1.1"

ILE = "1.2.840.10008.1.2"
ELE = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"
EBE = "1.2.840.10008.1.2.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"
JPEG_LOSSLESS_P14 = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"
JPEG_LS_NEAR_LOSSLESS = "1.2.840.10008.1.2.4.81"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
J2K = "1.2.840.10008.1.2.4.91"
J2K_MC_LOSSLESS = "1.2.840.10008.1.2.4.92"
J2K_MC = "1.2.840.10008.1.2.4.93"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
HTJ2K = "1.2.840.10008.1.2.4.203"
JPEGXL_LOSSLESS = "1.2.840.10008.1.2.4.110"
JPEGXL_JPEG_RECOMPRESSION = "1.2.840.10008.1.2.4.111"
JPEGXL = "1.2.840.10008.1.2.4.112"
RLE = "1.2.840.10008.1.2.5"

#: What a sender falls back to when the peer refuses the file's own syntax.
UNCOMPRESSED_FALLBACK: tuple[str, ...] = (ELE, ILE)
UNCOMPRESSED: frozenset[str] = frozenset({ELE, ILE, EBE, DEFLATED})

_UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")

#: Short names accepted wherever a transfer syntax is asked for.
SHORT_NAMES: dict[str, str] = {
    "ile": ILE, "implicit": ILE,
    "ele": ELE, "explicit": ELE,
    "ebe": EBE, "big": EBE,
    "deflate": DEFLATED, "deflated": DEFLATED,
    "rle": RLE,
    "jpeg-baseline": JPEG_BASELINE, "jpeg8": JPEG_BASELINE,
    "jpeg-extended": JPEG_EXTENDED, "jpeg12": JPEG_EXTENDED,
    "jpeg-lossless": JPEG_LOSSLESS_SV1, "jpeg-lossless-sv1": JPEG_LOSSLESS_SV1,
    "jpeg-lossless-p14": JPEG_LOSSLESS_P14,
    "jpeg-ls-lossless": JPEG_LS_LOSSLESS, "jpeg-ls": JPEG_LS_LOSSLESS,
    "jpeg-ls-near-lossless": JPEG_LS_NEAR_LOSSLESS,
    "j2k-lossless": J2K_LOSSLESS, "jpeg2000-lossless": J2K_LOSSLESS,
    "j2k": J2K, "jpeg2000": J2K,
    "htj2k-lossless": HTJ2K_LOSSLESS, "htj2k-lossless-rpcl": HTJ2K_LOSSLESS_RPCL, "htj2k": HTJ2K,
    "jpegxl-lossless": JPEGXL_LOSSLESS, "jxl-lossless": JPEGXL_LOSSLESS,
    "jpegxl-recompression": JPEGXL_JPEG_RECOMPRESSION, "jxl-jpeg": JPEGXL_JPEG_RECOMPRESSION,
    "jpegxl": JPEGXL, "jxl": JPEGXL,
}

#: Transfer syntaxes newer than pydicom 3.0's dictionary: (name, keyword).
EXTRA_SYNTAXES: dict[str, tuple[str, str]] = {
    JPEGXL_LOSSLESS: ("JPEG XL Lossless", "JPEGXLLossless"),
    JPEGXL_JPEG_RECOMPRESSION: ("JPEG XL JPEG Recompression", "JPEGXLJPEGRecompression"),
    JPEGXL: ("JPEG XL", "JPEGXL"),
}

_LOSSLESS_COMPRESSED = (RLE, JPEG_LS_LOSSLESS, JPEG_LOSSLESS_SV1, JPEG_LOSSLESS_P14, J2K_LOSSLESS,
                        HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL, J2K_MC_LOSSLESS, JPEGXL_LOSSLESS)

#: Syntaxes whose pixel data went through lossy compression (video included).
#: JPEG XL JPEG Recompression carries a (lossy) baseline JPEG losslessly: the pixels are lossy.
_LOSSY_IMAGE = frozenset({JPEG_BASELINE, JPEG_EXTENDED, JPEG_LS_NEAR_LOSSLESS, J2K, J2K_MC, HTJ2K,
                          JPEGXL_JPEG_RECOMPRESSION, JPEGXL})


def is_lossy(ts: str) -> bool:
    """True for lossy image syntaxes and the MPEG/HEVC video syntaxes (.4.100 - .4.108)."""
    ts = str(ts)
    if ts in _LOSSY_IMAGE:
        return True
    prefix = "1.2.840.10008.1.2.4."
    if ts.startswith(prefix):
        head = ts[len(prefix):].split(".")[0]
        return head.isdigit() and 100 <= int(head) <= 108
    return False


@functools.lru_cache(maxsize=1)
def all_transfer_syntaxes() -> list[str]:
    """Every transfer syntax pydicom knows, in storescp's default preference order.

    Compressed syntaxes come first (lossless, then lossy and video), as with
    DCMTK's storescp +xa: a sender that offers its file's own compressed
    syntax beside uncompressed ones then never has to transcode, and the
    object is stored as it was. Uncompressed last: explicit little endian,
    implicit little endian, deflated, explicit big endian.
    """
    order: list[str] = list(_LOSSLESS_COMPRESSED)
    for ts in [*_known_transfer_syntaxes(), *EXTRA_SYNTAXES]:
        if str(ts) not in order and str(ts) not in UNCOMPRESSED:
            order.append(str(ts))
    return order + [ELE, ILE, DEFLATED, EBE]


#: In pydicom's dictionary but not syntaxes a data set is sent in (JPIP
#: references) or not supported by pydicom 3.0 (encapsulated uncompressed).
_NOT_DATA_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95", "1.2.840.10008.1.2.1.98"})


@functools.lru_cache(maxsize=1)
def _known_transfer_syntaxes() -> list[str]:
    """pydicom's AllTransferSyntaxes, read from its dictionary (no pydicom import: 0.4 s)."""
    return [uid for uid, entry in _uid_dictionary().items()
            if entry[1] == "Transfer Syntax" and not entry[3] and uid not in _NOT_DATA_SYNTAXES]


@functools.lru_cache(maxsize=1)
def _uid_dictionary() -> dict[str, tuple[str, ...]]:
    """pydicom's UID dictionary, read from its data module without importing
    the pydicom package (which would pull in numpy: half a second)."""
    try:
        spec = importlib.util.find_spec("pydicom")
        locations = list(spec.submodule_search_locations or []) if spec else []
        path = Path(locations[0]) / "_uid_dict.py"
        # Loaded as a module of its own: its compiled .pyc is used (0.4 ms, not 7 ms).
        module_spec = importlib.util.spec_from_file_location("dcmcli._pydicom_uid_dict", path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module.UID_dictionary  # type: ignore[no-any-return]
    except Exception:  # another layout: take the slow road
        from pydicom._uid_dict import UID_dictionary

        return UID_dictionary  # type: ignore[return-value]


@functools.lru_cache(maxsize=4096)
def uid_name(uid: str) -> str:
    """The UID's name from pydicom's dictionary, or the UID itself."""
    entry = _uid_dictionary().get(str(uid))
    if entry:
        return entry[0]
    extra = EXTRA_SYNTAXES.get(str(uid))
    return extra[0] if extra else str(uid)


def parse_transfer_syntax(text: str) -> str:
    """A transfer syntax from a UID, a pydicom keyword or a short name."""
    t = text.strip()
    if _UID_RE.match(t):
        return t
    low = t.lower()
    if low in SHORT_NAMES:
        return SHORT_NAMES[low]
    for ts in _known_transfer_syntaxes():
        if _uid_dictionary()[ts][4].lower() == low:
            return ts
    for ts, (_, keyword) in EXTRA_SYNTAXES.items():
        if keyword.lower() == low:
            return ts
    raise UsageError(f"unknown transfer syntax {text!r}",
                     f"give a UID, a keyword such as JPEGLSLossless, or one of: {', '.join(sorted(SHORT_NAMES))}")


#: Storage SOP classes newer than pydicom 3.0's dictionary (pynetdicom 3.0 knows them).
EXTRA_STORAGE = ("1.2.840.10008.5.1.4.1.1.66.7", "1.2.840.10008.5.1.4.1.1.66.8",  # Label Map, Height Map Segmentation
                 "1.2.840.10008.5.1.4.1.1.9.100.1", "1.2.840.10008.5.1.4.1.1.9.100.2")  # Waveform Annotation ...


@functools.lru_cache(maxsize=1)
def storage_sop_classes() -> list[str]:
    """Every current storage SOP class: pydicom's dictionary (its "... Storage"
    SOP classes, without Storage Commitment and the DICOMDIR's Media Storage
    Directory) and the newer ones. Read without importing pydicom or
    pynetdicom: storescp and getscu start 0.4 s sooner."""
    out = [uid for uid, entry in _uid_dictionary().items()
           if entry[1] == "SOP Class" and not entry[3] and "Storage" in entry[0]
           and "Commitment" not in entry[0] and uid != "1.2.840.10008.1.3.10"]
    return out + [u for u in EXTRA_STORAGE if u not in out]


@functools.lru_cache(maxsize=1)
def _keywords() -> dict[str, str]:
    """Lower-case keyword -> UID for every SOP class pydicom's dictionary names."""
    return {entry[4].lower(): uid for uid, entry in _uid_dictionary().items()
            if len(entry) > 4 and entry[4] and "SOP Class" in entry[1]}


def is_uid(text: str) -> bool:
    """A syntactically valid UID (PS3.5 9.1): digits and dots, no empty component, at most 64 characters."""
    return len(text) <= 64 and bool(_UID_RE.match(text))


def parse_sop_class(text: str) -> str:
    """A SOP class from a UID or a keyword such as ``CTImageStorage``."""
    t = text.strip()
    if _UID_RE.match(t):
        return t
    uid = N_SOP_CLASS_NAMES.get(t.lower()) or _keywords().get(t.lower())
    if uid is None and not t.lower().endswith("storage"):
        uid = _keywords().get(t.lower() + "storage")
    if uid is None:
        raise UsageError(f"unknown SOP class {text!r}", "give a UID or a keyword such as CTImageStorage")
    return uid


def keyword_of(uid: str) -> str:
    """The UID's keyword (``CTImageStorage``), or the UID itself."""
    entry = _uid_dictionary().get(str(uid))
    return entry[4] if entry and len(entry) > 4 and entry[4] else str(uid)


# -- SOP classes of the other services -----------------------------------------

STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"
MPPS = "1.2.840.10008.3.1.2.3.3"
IAN = "1.2.840.10008.5.1.4.33"
PROCEDURAL_EVENT_LOGGING = "1.2.840.10008.1.40"
MEDIA_CREATION = "1.2.840.10008.5.1.1.33"
UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"
UPS_WATCH = "1.2.840.10008.5.1.4.34.6.2"
UPS_PULL = "1.2.840.10008.5.1.4.34.6.3"
UPS_EVENT = "1.2.840.10008.5.1.4.34.6.4"
UPS_QUERY = "1.2.840.10008.5.1.4.34.6.5"

# Print Management (PS3.4 H): the meta SOP classes negotiated, the classes used on their context.
BASIC_FILM_SESSION = "1.2.840.10008.5.1.1.1"
BASIC_FILM_BOX = "1.2.840.10008.5.1.1.2"
BASIC_GRAYSCALE_IMAGE_BOX = "1.2.840.10008.5.1.1.4"
BASIC_COLOR_IMAGE_BOX = "1.2.840.10008.5.1.1.4.1"
BASIC_GRAYSCALE_PRINT_META = "1.2.840.10008.5.1.1.9"
BASIC_COLOR_PRINT_META = "1.2.840.10008.5.1.1.18"
PRINT_JOB = "1.2.840.10008.5.1.1.14"
BASIC_ANNOTATION_BOX = "1.2.840.10008.5.1.1.15"
PRINTER = "1.2.840.10008.5.1.1.16"
PRINTER_CONFIGURATION = "1.2.840.10008.5.1.1.16.376"
PRESENTATION_LUT = "1.2.840.10008.5.1.1.23"

# Well-known SOP instances (PS3.4): the one instance an N-ACTION of these classes names.
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
PROCEDURAL_EVENT_LOGGING_INSTANCE = "1.2.840.10008.1.40.1"
UPS_GLOBAL_SUBSCRIPTION = "1.2.840.10008.5.1.4.34.5"
UPS_FILTERED_GLOBAL_SUBSCRIPTION = "1.2.840.10008.5.1.4.34.5.1"
PRINTER_INSTANCE = "1.2.840.10008.5.1.1.17"
PRINTER_CONFIGURATION_INSTANCE = "1.2.840.10008.5.1.1.17.376"

#: Short names of the normalized SOP classes (nactionscu, ncreatescu), beside keywords and UIDs.
N_SOP_CLASS_NAMES = {
    "commitment": STORAGE_COMMITMENT_PUSH, "mpps": MPPS, "ian": IAN, "event-logging": PROCEDURAL_EVENT_LOGGING,
    "media-creation": MEDIA_CREATION, "ups-push": UPS_PUSH, "ups-watch": UPS_WATCH, "ups-pull": UPS_PULL,
    "ups-event": UPS_EVENT, "printer": PRINTER, "print-job": PRINT_JOB, "film-session": BASIC_FILM_SESSION,
    "film-box": BASIC_FILM_BOX, "presentation-lut": PRESENTATION_LUT,
}
#: Short names of the well-known instances.
WELL_KNOWN_INSTANCES = {
    "commitment": STORAGE_COMMITMENT_INSTANCE, "event-logging": PROCEDURAL_EVENT_LOGGING_INSTANCE,
    "ups-global": UPS_GLOBAL_SUBSCRIPTION, "ups-filtered-global": UPS_FILTERED_GLOBAL_SUBSCRIPTION,
    "printer": PRINTER_INSTANCE, "printer-configuration": PRINTER_CONFIGURATION_INSTANCE,
}


# -- Query/Retrieve information models (PS3.4 C, K, U, V, X, Y, ...) ---------------

_QR = "1.2.840.10008.5.1.4.1.2"


@dataclass(frozen=True)
class QueryModel:
    """One information model: its short name (``-M``), its FIND, MOVE and GET
    SOP classes (None where the standard defines none), and its
    Query/Retrieve levels (empty when the model has no QueryRetrieveLevel)."""

    name: str
    title: str
    find: str | None
    move: str | None = None
    get: str | None = None
    levels: tuple[str, ...] = ()

    def uid(self, service: str) -> str | None:
        return {"find": self.find, "move": self.move, "get": self.get}[service]


QUERY_MODELS: tuple[QueryModel, ...] = (
    QueryModel("patient", "Patient Root", f"{_QR}.1.1", f"{_QR}.1.2", f"{_QR}.1.3",
               ("PATIENT", "STUDY", "SERIES", "IMAGE")),
    QueryModel("study", "Study Root", f"{_QR}.2.1", f"{_QR}.2.2", f"{_QR}.2.3", ("STUDY", "SERIES", "IMAGE")),
    QueryModel("patient-study", "Patient/Study Only (retired)", f"{_QR}.3.1", f"{_QR}.3.2", f"{_QR}.3.3",
               ("PATIENT", "STUDY")),
    QueryModel("composite", "Composite Instance Root", None, f"{_QR}.4.2", f"{_QR}.4.3",
               ("STUDY", "SERIES", "IMAGE", "FRAME")),
    QueryModel("without-bulk-data", "Composite Instance Retrieve Without Bulk Data", None, None, f"{_QR}.5.3",
               ("STUDY", "SERIES", "IMAGE")),
    QueryModel("worklist", "Modality Worklist", "1.2.840.10008.5.1.4.31"),
    QueryModel("gp-worklist", "General Purpose Worklist (retired)", "1.2.840.10008.5.1.4.32.1"),
    QueryModel("ups", "Unified Procedure Step - Pull", UPS_PULL),
    QueryModel("ups-watch", "Unified Procedure Step - Watch", UPS_WATCH),
    QueryModel("ups-query", "Unified Procedure Step - Query", UPS_QUERY),
    QueryModel("hanging-protocol", "Hanging Protocol", "1.2.840.10008.5.1.4.38.2", "1.2.840.10008.5.1.4.38.3",
               "1.2.840.10008.5.1.4.38.4"),
    QueryModel("color-palette", "Color Palette", "1.2.840.10008.5.1.4.39.2", "1.2.840.10008.5.1.4.39.3",
               "1.2.840.10008.5.1.4.39.4"),
    QueryModel("implant-template", "Generic Implant Template", "1.2.840.10008.5.1.4.43.2",
               "1.2.840.10008.5.1.4.43.3", "1.2.840.10008.5.1.4.43.4"),
    QueryModel("implant-assembly", "Implant Assembly Template", "1.2.840.10008.5.1.4.44.2",
               "1.2.840.10008.5.1.4.44.3", "1.2.840.10008.5.1.4.44.4"),
    QueryModel("implant-group", "Implant Template Group", "1.2.840.10008.5.1.4.45.2",
               "1.2.840.10008.5.1.4.45.3", "1.2.840.10008.5.1.4.45.4"),
    QueryModel("defined-procedure", "Defined Procedure Protocol", "1.2.840.10008.5.1.4.20.1",
               "1.2.840.10008.5.1.4.20.2", "1.2.840.10008.5.1.4.20.3"),
    QueryModel("protocol-approval", "Protocol Approval", "1.2.840.10008.5.1.4.1.1.200.4",
               "1.2.840.10008.5.1.4.1.1.200.5", "1.2.840.10008.5.1.4.1.1.200.6"),
    QueryModel("inventory", "Inventory", "1.2.840.10008.5.1.4.1.1.201.2", "1.2.840.10008.5.1.4.1.1.201.3",
               "1.2.840.10008.5.1.4.1.1.201.4"),
    QueryModel("repository", "Repository Query", "1.2.840.10008.5.1.4.1.1.201.6"),
    QueryModel("relevant-patient", "General Relevant Patient Information", "1.2.840.10008.5.1.4.37.1"),
    QueryModel("relevant-patient-breast", "Breast Imaging Relevant Patient Information",
               "1.2.840.10008.5.1.4.37.2"),
    QueryModel("relevant-patient-cardiac", "Cardiac Relevant Patient Information", "1.2.840.10008.5.1.4.37.3"),
    QueryModel("product-characteristics", "Product Characteristics", "1.2.840.10008.5.1.4.41"),
    QueryModel("substance-approval", "Substance Approval", "1.2.840.10008.5.1.4.42"),
)

_MODEL_BY_NAME = {m.name: m for m in QUERY_MODELS}
_MODEL_ALIASES = {"patientroot": "patient", "studyroot": "study", "psonly": "patient-study", "mwl": "worklist",
                  "patientstudyonly": "patient-study", "compositeinstanceroot": "composite", "nobulk": "without-bulk-data"}


def model_of(uid: str) -> QueryModel | None:
    """The information model a FIND, MOVE or GET SOP class belongs to."""
    for m in QUERY_MODELS:
        if uid in (m.find, m.move, m.get):
            return m
    return None


def parse_model(text: str, service: str) -> tuple[QueryModel, str]:
    """An information model from a short name (``study``), a keyword or a UID
    of any of its SOP classes; returns the model and its SOP class for
    ``service`` ("find", "move" or "get")."""
    t = text.strip()
    low = t.lower().replace("_", "-")
    model = _MODEL_BY_NAME.get(low) or _MODEL_BY_NAME.get(_MODEL_ALIASES.get(low.replace("-", ""), ""))
    uid: str | None = None
    if model is None:
        uid = t if _UID_RE.match(t) else _keywords().get(t.lower())
        model = model_of(uid) if uid else None
    names = ", ".join(m.name for m in QUERY_MODELS if m.uid(service))
    if model is None:
        if uid:  # a SOP class outside the registry: use it as it is
            return QueryModel(uid, uid_name(uid), uid if service == "find" else None,
                              uid if service == "move" else None, uid if service == "get" else None), uid
        raise UsageError(f"unknown information model {text!r}", f"use one of {names}, a keyword or a UID")
    chosen = model.uid(service)
    if chosen is None:
        raise UsageError(f"the {model.title} information model has no C-{service.upper()}",
                         f"models with C-{service.upper()}: {names}")
    return model, chosen


# -- SOP Class Common Extended Negotiation (PS3.7 D.3.3.6, PS3.4 B.3.1.3-B.3.1.4, B.4.1.2) ----------

#: The Service Class UID a Common Extended Negotiation item names for a storage SOP class (PS3.4 B.3.1.3).
STORAGE_SERVICE_CLASS = "1.2.840.10008.4.2"

_DX_PRESENTATION, _DX_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1"
_ENHANCED_SR, _COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.33"
_COMPREHENSIVE_3D_SR, _EXTENSIBLE_SR = "1.2.840.10008.5.1.4.1.1.88.34", "1.2.840.10008.5.1.4.1.1.88.35"
#: The general SR classes a specialised SR's content also fits, most specific first.
_SR_GENERAL = (_ENHANCED_SR, _COMPREHENSIVE_SR, _COMPREHENSIVE_3D_SR, _EXTENSIBLE_SR)

#: PS3.4 Table B.3-3 "Standard and Related General SOP Classes": each listed
#: standard storage SOP class, and the more general classes its instances
#: also are (a receiver that stores one of those may store it). PS3.4
#: B.3.1.4: a standard class not listed here conveys no related general
#: class (Mammography, Chest and Colon CAD SR, Key Object Selection are not
#: listed); implementation-defined (private) specialised classes may
#: (``parse_related_general``, storescu/getscu --related-general).
RELATED_GENERAL_SOP_CLASSES: dict[str, tuple[str, ...]] = {
    "1.2.840.10008.5.1.4.1.1.9.1.1": ("1.2.840.10008.5.1.4.1.1.9.1.2",),  # 12-lead ECG -> General ECG
    "1.2.840.10008.5.1.4.1.1.1.2": (_DX_PRESENTATION,),  # Digital Mammography X-Ray, For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1": (_DX_PROCESSING,),  # Digital Mammography X-Ray, For Processing
    "1.2.840.10008.5.1.4.1.1.1.3": (_DX_PRESENTATION,),  # Digital Intra-Oral X-Ray, For Presentation
    "1.2.840.10008.5.1.4.1.1.1.3.1": (_DX_PROCESSING,),  # Digital Intra-Oral X-Ray, For Processing
    "1.2.840.10008.5.1.4.1.1.88.11": _SR_GENERAL,  # Basic Text SR
    _ENHANCED_SR: _SR_GENERAL[1:],
    _COMPREHENSIVE_SR: _SR_GENERAL[2:],
    _COMPREHENSIVE_3D_SR: _SR_GENERAL[3:],
    "1.2.840.10008.5.1.4.1.1.88.40": _SR_GENERAL,  # Procedure Log
    "1.2.840.10008.5.1.4.1.1.88.72": _SR_GENERAL,  # Simplified Adult Echo SR
    "1.2.840.10008.5.1.4.1.1.88.67": _SR_GENERAL,  # X-Ray Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.68": _SR_GENERAL,  # Radiopharmaceutical Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.73": _SR_GENERAL,  # Patient Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.71": _SR_GENERAL,  # Acquisition Context SR (Enhanced/Comprehensive without SCOORD3D)
    "1.2.840.10008.5.1.4.1.1.78.6": (_ENHANCED_SR,),  # Spectacle Prescription Report
    "1.2.840.10008.5.1.4.1.1.79.1": (_ENHANCED_SR,),  # Macular Grid Thickness and Volume Report
    "1.2.840.10008.5.1.4.1.1.2.1": ("1.2.840.10008.5.1.4.1.1.2.2",),  # Enhanced CT -> Legacy Converted Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4.1": ("1.2.840.10008.5.1.4.1.1.4.4",),  # Enhanced MR -> Legacy Converted Enhanced MR
    "1.2.840.10008.5.1.4.1.1.130": ("1.2.840.10008.5.1.4.1.1.128.1",),  # Enhanced PET -> Legacy Converted Enhanced PET
}


def related_general_sop_classes(sop_class: str, extra: dict[str, tuple[str, ...]] | None = None) -> tuple[str, ...]:
    """The Related General SOP Classes a Common Extended Negotiation item conveys
    for ``sop_class``: the user's (``extra``, from ``parse_related_general``), else
    PS3.4 Table B.3-3's, else none."""
    if extra and sop_class in extra:
        return extra[sop_class]
    return RELATED_GENERAL_SOP_CLASSES.get(sop_class, ())


def parse_related_general(specs: list[str]) -> dict[str, tuple[str, ...]]:
    """``SOPCLASS=GENERAL[,GENERAL...]`` (UIDs or keywords; repeatable) into
    {SOP class: related general SOP classes}: what a private specialised class
    tells a receiver it also is (PS3.4 B.3.1.4 note)."""
    out: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        sop, sep, general = spec.partition("=")
        names = [g.strip() for g in general.split(",") if g.strip()]
        if not sep or not sop.strip() or not names:
            raise UsageError(f"malformed related general SOP classes {spec!r}",
                             "write SOPCLASS=GENERAL[,GENERAL...], e.g. 1.2.3.4=SecondaryCaptureImageStorage")
        uid = parse_sop_class(sop)
        related = tuple(dict.fromkeys(parse_sop_class(n) for n in names))
        for u in (uid, *related):
            if not is_uid(u):
                raise UsageError(f"{u!r} is not a valid UID", "a UID is digits and dots, at most 64 characters")
        out[uid] = tuple(dict.fromkeys((*out.get(uid, ()), *related)))
    return out
