"""The options every command shares, defined once.

``@dcmcli_command(app, "storescu", network="scu", default_aet="STORESCU")``
adds the shared options to a command's signature (so typer shows identical
flags and help everywhere) and hands the command a ``Common`` object with the
association settings and the output already built. It also turns every
``DcmcliError`` into one plain line on stderr and the table's exit code.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from dcmcli.errors import DcmcliError, ExitCode, UsageError
from dcmcli.net.association import AssociationSettings
from dcmcli.net.peer import validate_ae_title
from dcmcli.net.services.writer import DUPLICATE_POLICIES, LAYOUTS, WriterOptions
from dcmcli.output import LOG_LEVELS, Output, Verbosity

NETWORK = "Network options"
OUTPUT = "Output options"
STORAGE = "Storage options (received objects)"
QUERY = "Query options"
HTTP = "HTTP options"

Layout = Enum("Layout", {name: name for name in LAYOUTS}, type=str)  # type: ignore[misc]
OnDuplicate = Enum("OnDuplicate", {name: name for name in DUPLICATE_POLICIES}, type=str)  # type: ignore[misc]


class LogLevel(str, Enum):
    fatal = "fatal"
    error = "error"
    warn = "warn"
    info = "info"
    debug = "debug"
    trace = "trace"


# Each shared option, written once: (name, annotation, default, groups it belongs to)
_AET = Annotated[str | None, typer.Option("-aet", "--aetitle", metavar="AETITLE", rich_help_panel=NETWORK,
                                          help="My AE title (calling AE title of an SCU, own title of an SCP); default: the command name in capitals, e.g. STORESCU.")]
_AEC = Annotated[str | None, typer.Option("-aec", "--call", metavar="AETITLE", rich_help_panel=NETWORK,
                                          help="The peer's (called) AE title (default: ANY-SCP); or give the peer "
                                               "as AET@host:port.")]
_PDU = Annotated[int, typer.Option("-pdu", "--max-pdu", min=0, max=4294967295, metavar="BYTES", rich_help_panel=NETWORK,
                                   help="Maximum PDU size to receive (DCMTK's default is 16384); 0 means unlimited.")]
_TO = Annotated[float, typer.Option("-to", "--timeout", min=0, metavar="SECONDS", rich_help_panel=NETWORK,
                                    help="Connect timeout (0: no limit).")]
_TA = Annotated[float, typer.Option("-ta", "--acse-timeout", min=0.1, metavar="SECONDS", rich_help_panel=NETWORK,
                                    help="Timeout for ACSE messages (association request, release).")]
_TD = Annotated[float, typer.Option("-td", "--dimse-timeout", min=0, metavar="SECONDS", rich_help_panel=NETWORK,
                                    help="Timeout waiting for DIMSE messages (0: no limit).")]
_NODELAY = Annotated[bool, typer.Option("--tcp-nodelay/--no-tcp-nodelay", rich_help_panel=NETWORK,
                                        help="Set TCP_NODELAY on every socket (avoids 40 ms stalls per message).")]
_VERBOSE = Annotated[bool, typer.Option("-v", "--verbose", rich_help_panel=OUTPUT,
                                        help="Verbose: the negotiation report and more detail on stderr.")]
_DEBUG = Annotated[bool, typer.Option("-d", "--debug", rich_help_panel=OUTPUT,
                                      help="Debug output and tracebacks on errors.")]
_QUIET = Annotated[bool, typer.Option("-q", "--quiet", rich_help_panel=OUTPUT,
                                      help="Quiet: errors only; no progress bar, no per-item lines.")]
_LL = Annotated[LogLevel | None, typer.Option("-ll", "--log-level", rich_help_panel=OUTPUT, case_sensitive=False,
                                              help="Log level (overrides -q/-v/-d).")]
_JSON = Annotated[bool, typer.Option("--json", rich_help_panel=OUTPUT,
                                     help="Print JSON Lines on stdout: one object per result or event.")]

# The storage writer's options: storescp, movescu's receiver and getscu.
_OD = Annotated[Path, typer.Option("-od", "--output-directory", metavar="DIR", rich_help_panel=STORAGE,
                                   help="Write received objects below DIR (created when missing).")]
_LAYOUT = Annotated[Layout | None, typer.Option("--layout", rich_help_panel=STORAGE,  # type: ignore[valid-type]
                                                help="Output layout: flat (default), study (study/series folders), "
                                                     "patient (patient/study/series).")]
_TEMPLATE = Annotated[str | None, typer.Option(
    "--template", metavar="TEMPLATE", rich_help_panel=STORAGE,
    help="Attribute template for file names, e.g. {PatientID}/{StudyInstanceUID}/{SOPInstanceUID}.dcm")]
_DUPLICATE = Annotated[OnDuplicate, typer.Option(  # type: ignore[valid-type]
    "--on-duplicate", rich_help_panel=STORAGE,
    help="A SOP instance that is already stored: overwrite (default), keep the first, rename the new one, "
         "or reject (0111).")]
_STORE_AS = Annotated[str | None, typer.Option(
    "--store-as", metavar="SYNTAX", rich_help_panel=STORAGE,
    help="Store received objects in this transfer syntax (e.g. jpeg-ls-lossless, ele); an object that cannot be "
         "converted is stored as received, with a warning. A lossy syntax keeps the SOP Instance UID (marked "
         "Lossy Image Compression 01).")]
_FSYNC = Annotated[bool, typer.Option("--fsync", rich_help_panel=STORAGE,
                                      help="Flush each object and its folder to disk before acknowledging it "
                                           "(safe against power loss; slower).")]
_ACCEPT_INVALID = Annotated[bool, typer.Option(
    "--accept-invalid", rich_help_panel=STORAGE,
    help="Store data sets whose element structure is broken (an element past the end, encapsulated Pixel Data "
         "in an uncompressed syntax); by default they are refused with 0xC000 and a reason.")]
_IGNORE = Annotated[bool, typer.Option("--ignore", rich_help_panel=STORAGE,
                                       help="Receive and acknowledge, but store nothing.")]
_XCR = Annotated[str | None, typer.Option(
    "-xcr", "--exec-on-reception", metavar="COMMAND", rich_help_panel=STORAGE,
    help="Run COMMAND after each object (#p dir, #f file, #a calling AE, #c called AE, #r peer); no shell.")]
_XCS = Annotated[str | None, typer.Option(
    "-xcs", "--exec-on-eostudy", metavar="COMMAND", rich_help_panel=STORAGE,
    help="Run COMMAND when a study is complete (no object for --eostudy-timeout); placeholders as -xcr.")]
_TOS = Annotated[float, typer.Option("-tos", "--eostudy-timeout", min=0.1, metavar="SECONDS", rich_help_panel=STORAGE,
                                     help="Seconds without objects that end a study.")]

# The query options: findscu, movescu, getscu.
class Level(str, Enum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"
    FRAME = "FRAME"


_PATIENT = Annotated[bool, typer.Option("-P", "--patient", rich_help_panel=QUERY,
                                        help="Patient Root information model.")]
_STUDY = Annotated[bool, typer.Option("-S", "--study", rich_help_panel=QUERY,
                                      help="Study Root information model (the default).")]
_PSONLY = Annotated[bool, typer.Option("-O", "--psonly", rich_help_panel=QUERY,
                                       help="Patient/Study Only information model (retired).")]
_MODEL = Annotated[str | None, typer.Option(
    "-M", "--model", metavar="MODEL", rich_help_panel=QUERY,
    help="Information model by name (patient, study, patient-study, composite, worklist, ups, hanging-protocol, "
         "color-palette, implant-template, ...), keyword or UID.")]
_KEY = Annotated[list[str] | None, typer.Option(
    "-k", "--key", metavar="KEY", rich_help_panel=QUERY,
    help="A key: Keyword=value, (gggg,eeee)=value, Keyword (return key), Sequence[0].Keyword=value "
         "(repeatable; overrides the query files).")]
_LEVEL = Annotated[Level | None, typer.Option("-L", "--level", rich_help_panel=QUERY, case_sensitive=False,
                                              help="Query/Retrieve Level (default: STUDY; PATIENT with -P).")]

# The HTTP options: every wado action (DICOMweb, WADO-URI).
_USER = Annotated[str | None, typer.Option(
    "-u", "--user", metavar="USER[:PASSWORD]", rich_help_panel=HTTP,
    help="HTTP basic authentication. Without :PASSWORD the password comes from the variable --password-env names "
         "(default DCMCLI_PASSWORD), else it is asked for on the terminal.")]
_PASSWORD_ENV = Annotated[str, typer.Option("--password-env", metavar="VAR", rich_help_panel=HTTP,
                                            help="Environment variable holding the password for -u.")]
_TOKEN = Annotated[str | None, typer.Option("--token", metavar="TOKEN", rich_help_panel=HTTP,
                                            help="Bearer token (Authorization: Bearer TOKEN).")]
_TOKEN_ENV = Annotated[str | None, typer.Option("--token-env", metavar="VAR", rich_help_panel=HTTP,
                                                help="Environment variable holding the bearer token (kept out of "
                                                     "the process list).")]
_HEADER = Annotated[list[str] | None, typer.Option("-H", "--header", metavar="'NAME: VALUE'", rich_help_panel=HTTP,
                                                   help="An extra request header (repeatable).")]
_CACERT = Annotated[Path | None, typer.Option("--cacert", metavar="FILE", rich_help_panel=HTTP,
                                              help="Trust the CA certificates in FILE (PEM) for https.")]
_INSECURE = Annotated[bool, typer.Option("--insecure", rich_help_panel=HTTP,
                                         help="Do not check the server's TLS certificate (a warning says so).")]
_HTTP_TIMEOUT = Annotated[float, typer.Option("-to", "--timeout", min=0, metavar="SECONDS", rich_help_panel=HTTP,
                                              help="Timeout to connect and for each read or write (0: no limit).")]

_SHARED: list[tuple[str, Any, Any, set[str]]] = [
    ("aetitle", _AET, None, {"scu", "scp"}),
    ("call", _AEC, None, {"scu"}),
    ("max_pdu", _PDU, 131072, {"scu", "scp"}),
    ("timeout", _TO, 15.0, {"scu"}),
    ("acse_timeout", _TA, 30.0, {"scu", "scp"}),
    ("dimse_timeout", _TD, 120.0, {"scu", "scp"}),
    ("tcp_nodelay", _NODELAY, True, {"scu", "scp"}),
    ("verbose", _VERBOSE, False, {"scu", "scp", "local"}),
    ("debug", _DEBUG, False, {"scu", "scp", "local"}),
    ("quiet", _QUIET, False, {"scu", "scp", "local"}),
    ("log_level", _LL, None, {"scu", "scp", "local"}),
    ("json_output", _JSON, False, {"scu", "scp", "local"}),
    ("output_directory", _OD, Path("."), {"store"}),
    ("layout", _LAYOUT, None, {"store"}),
    ("template", _TEMPLATE, None, {"store"}),
    ("on_duplicate", _DUPLICATE, "overwrite", {"store"}),
    ("store_as", _STORE_AS, None, {"store"}),
    ("fsync", _FSYNC, False, {"store"}),
    ("ignore", _IGNORE, False, {"store"}),
    ("accept_invalid", _ACCEPT_INVALID, False, {"store"}),
    ("exec_on_reception", _XCR, None, {"store"}),
    ("exec_on_eostudy", _XCS, None, {"store"}),
    ("eostudy_timeout", _TOS, 30.0, {"store"}),
    ("patient_root", _PATIENT, False, {"query"}),
    ("study_root", _STUDY, False, {"query"}),
    ("psonly", _PSONLY, False, {"query"}),
    ("model", _MODEL, None, {"query"}),
    ("key", _KEY, None, {"query"}),
    ("level", _LEVEL, None, {"query"}),
    ("user", _USER, None, {"web"}),
    ("password_env", _PASSWORD_ENV, "DCMCLI_PASSWORD", {"web"}),
    ("token", _TOKEN, None, {"web"}),
    ("token_env", _TOKEN_ENV, None, {"web"}),
    ("header", _HEADER, None, {"web"}),
    ("cacert", _CACERT, None, {"web"}),
    ("insecure", _INSECURE, False, {"web"}),
    ("http_timeout", _HTTP_TIMEOUT, 30.0, {"web"}),
]


@dataclass
class Common:
    command: str
    settings: AssociationSettings
    out: Output
    verbosity: Verbosity
    debug: bool
    #: The storage writer's options, for commands that receive objects.
    writer: WriterOptions | None = None
    #: The query options, for findscu, movescu and getscu.
    query: QueryArgs | None = None
    #: The HTTP options, for the wado actions (a dcmcli.web.http.HttpOptions).
    web: Any = None


@dataclass
class QueryArgs:
    """-P/-S/-O/-M, -k and -L as given."""

    model: str | None  # None: not given (Study Root)
    keys: list[str]
    level: str | None

    def resolve(self, service: str, also: str | None = None) -> tuple[Any, str]:
        """The information model and its SOP class for "find", "move" or "get";
        ``also`` is a model a command's own flag names (findscu -W)."""
        from dcmcli.uids import parse_model

        if also and self.model:
            raise UsageError(f"more than one information model given ({self.model}, {also})",
                             "give one of -P, -S, -O, -W or -M")
        return parse_model(also or self.model or "study", service)


def query_args(values: dict[str, Any]) -> QueryArgs:
    chosen = [name for flag, name in (("patient_root", "patient"), ("study_root", "study"), ("psonly", "patient-study"))
              if values.get(flag)]
    if values.get("model"):
        chosen.append(values["model"])
    if len(chosen) > 1:
        raise UsageError(f"more than one information model given ({', '.join(chosen)})",
                         "give one of -P, -S, -O, -W or -M")
    level = values.get("level")
    return QueryArgs(chosen[0] if chosen else None, list(values.get("key") or []),
                     level.value if level is not None else None)


def writer_options(values: dict[str, Any]) -> WriterOptions:
    """The shared storage options as the writer's settings (checked here, once)."""
    from dcmcli.uids import parse_transfer_syntax

    layout = values.get("layout")
    template = values.get("template")
    if layout is not None and template:
        raise UsageError("--layout and --template both name the output layout", "give one of them")
    chosen = template or LAYOUTS[Layout(layout).value if layout is not None else "flat"]
    store_as = values.get("store_as")
    return WriterOptions(
        output_dir=Path(values.get("output_directory") or "."), template=chosen,
        duplicates=OnDuplicate(values.get("on_duplicate") or "overwrite").value,
        store_as=parse_transfer_syntax(store_as) if store_as else None, fsync=bool(values.get("fsync")),
        ignore=bool(values.get("ignore")), accept_invalid=bool(values.get("accept_invalid")),
        exec_on_reception=values.get("exec_on_reception"),
        exec_on_eostudy=values.get("exec_on_eostudy"), eostudy_timeout=float(values.get("eostudy_timeout") or 30.0))


def http_options(values: dict[str, Any], out: Output) -> Any:
    """The HTTP options as the web core's settings (httpx is not imported here)."""
    from dcmcli.web.http import HttpOptions

    opts = HttpOptions(timeout=float(values.get("http_timeout") or 0), insecure=bool(values.get("insecure")),
                       cacert=str(values["cacert"]) if values.get("cacert") else None)
    user = values.get("user")
    if user is not None:
        name, sep, password = user.partition(":")
        if not name:
            raise UsageError("-u needs a user name", "write -u USER or -u USER:PASSWORD")
        if not sep:
            var = values.get("password_env") or "DCMCLI_PASSWORD"
            password = os.environ.get(var)
            if password is None:
                if not sys.stdin.isatty():
                    raise UsageError(f"no password for -u {name} (${var} is not set and there is no terminal to ask on)",
                                     f"write -u {name}:PASSWORD or set {var}")
                import getpass

                password = getpass.getpass(f"password for {name}: ")
        opts.user, opts.password = name, password
    token = values.get("token")
    if values.get("token_env"):
        if token:
            raise UsageError("--token and --token-env both give the token", "give one of them")
        token = os.environ.get(values["token_env"])
        if token is None:
            raise UsageError(f"--token-env {values['token_env']}: the variable is not set", "export it first")
    if token and user is not None:
        raise UsageError("-u and a bearer token both authenticate", "give one of them")
    opts.token = token or None
    for header in values.get("header") or []:
        name, sep, value = header.partition(":")
        if not sep or not name.strip() or any(c in name for c in " \t\r\n") or "\n" in value or "\r" in value:
            raise UsageError(f"malformed header {header!r}", "write -H 'Name: value'")
        opts.headers.append((name.strip(), value.strip()))
    if opts.insecure:
        out.warn("--insecure: the server's TLS certificate is not checked; anyone between can read and change "
                 "the traffic")
    return opts


def _verbosity(values: dict[str, Any]) -> Verbosity:
    if values.get("log_level") is not None:
        return LOG_LEVELS[values["log_level"].value]
    if values.get("debug"):
        return Verbosity.DEBUG
    if values.get("quiet"):
        return Verbosity.QUIET
    if values.get("verbose"):
        return Verbosity.VERBOSE
    return Verbosity.NORMAL


def _build(command: str, values: dict[str, Any], default_aet: str) -> Common:
    verbosity = _verbosity(values)
    out = Output(command, json_mode=bool(values.get("json_output")), verbosity=verbosity)
    settings = AssociationSettings()
    aet = values.get("aetitle")
    settings.calling_aet = validate_ae_title(default_aet if aet is None else aet, "AE title (-aet)")
    if values.get("call") is not None:
        settings.called_aet = validate_ae_title(values["call"], "called AE title (-aec)")
        settings.called_aet_given = True
    if "max_pdu" in values:
        settings.max_pdu = int(values["max_pdu"])
    if "timeout" in values:
        settings.connect_timeout = values["timeout"] or None
    if "acse_timeout" in values:
        settings.acse_timeout = values["acse_timeout"]
    if "dimse_timeout" in values:
        settings.dimse_timeout = values["dimse_timeout"] or None
    if "tcp_nodelay" in values:
        settings.tcp_nodelay = bool(values["tcp_nodelay"])
    if verbosity >= Verbosity.DEBUG:
        settings.trace = out.debug  # A-ASSOCIATE contents and every command set, as DCMTK's -d
    writer = writer_options(values) if "output_directory" in values else None
    query = query_args(values) if "key" in values else None
    web = http_options(values, out) if "http_timeout" in values else None
    return Common(command, settings, out, verbosity, verbosity >= Verbosity.DEBUG, writer, query, web)


def run_guarded(command: str, get_out: Callable[[], Output | None], debug: bool,
                body: Callable[[], int | None]) -> None:
    """Run a command body; map every outcome to one line and an exit code."""

    def say(message: str) -> None:
        (get_out() or Output(command)).error_line(message)

    try:
        code = body()
    except DcmcliError as exc:
        if debug:
            traceback.print_exc()
        out = get_out()
        report = getattr(exc, "report", None)
        if out is not None and report is not None:
            from dcmcli.cli.report import show_report

            show_report(out, report)  # the negotiation report, for -v and --json
        say(str(exc))
        raise typer.Exit(int(exc.exit_code)) from None
    except KeyboardInterrupt:
        say("interrupted")
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except typer.Exit:
        raise
    except BrokenPipeError:  # `dcmcli ... | head`: the reader has what it wanted; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        raise typer.Exit(int(ExitCode.OK)) from None
    except Exception as exc:  # a bug: say so plainly, trace only with -d
        if debug:
            traceback.print_exc()
        say(
            f"internal error: {type(exc).__name__}: {exc}; run with -d and report it")
        raise typer.Exit(int(ExitCode.INTERNAL)) from None
    raise typer.Exit(int(code or 0))


def dcmcli_command(app: typer.Typer, name: str, *, network: str, default_aet: str = "DCMCLI", storage: bool = False,
                   query: bool = False, web: bool = False, label: str | None = None, **typer_kwargs: Any) -> Callable[[Callable[..., int | None]], Callable[..., None]]:
    """Register ``fn(common, **own_options)`` as subcommand ``name`` with the shared options
    (``storage``: also the storage writer's, for commands that receive objects; ``query``: the
    information model, key and level options of findscu, movescu and getscu; ``web``: the HTTP
    options of the wado actions). ``label`` names the command in messages and events when it is
    not ``name`` (a sub-command of a group: "wado query")."""
    shared = [s for s in _SHARED if network in s[3] or (storage and "store" in s[3]) or (query and "query" in s[3])
              or (web and "web" in s[3])]
    shown = label or name

    def decorate(fn: Callable[..., int | None]) -> Callable[..., None]:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)  # resolve in fn's own module
        own = [p.replace(annotation=hints.get(p.name, p.annotation))
               for p in sig.parameters.values() if p.name != "common"]
        extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
                 for n, a, d, _ in shared]
        names = [n for n, *_ in shared]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> None:
            values = {n: kwargs.pop(n) for n in names}
            holder: dict[str, Common] = {}

            def body() -> int | None:
                common = _build(shown, values, default_aet)
                holder["c"] = common
                return fn(common, **kwargs)

            debug = bool(values.get("debug")) or (values.get("log_level") in (LogLevel.debug, LogLevel.trace))
            run_guarded(shown, lambda: holder["c"].out if "c" in holder else None, debug, body)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
                  else p for p in own]
        wrapper.__signature__ = sig.replace(parameters=params + extra)  # type: ignore[attr-defined]
        annotations = {k: v for k, v in hints.items() if k != "common"}
        annotations.update({n: a for n, a, *_ in shared})
        wrapper.__annotations__ = annotations
        del wrapper.__wrapped__  # typer must see the new signature, not fn's
        app.command(name, **typer_kwargs)(wrapper)
        return wrapper

    return decorate


# DCMTK's +te +ti +tb +td: the transfer syntax written (dcmconv's output, storescp's stored files).
XFER_PANEL = "Transfer syntax written"
WriteLittle = Annotated[bool, typer.Option("+te", "--write-xfer-little", rich_help_panel=XFER_PANEL,
                                           help="Write Explicit VR Little Endian (as DCMTK's +te).")]
WriteImplicit = Annotated[bool, typer.Option("+ti", "--write-xfer-implicit", rich_help_panel=XFER_PANEL,
                                             help="Write Implicit VR Little Endian (as DCMTK's +ti).")]
WriteBig = Annotated[bool, typer.Option("+tb", "--write-xfer-big", rich_help_panel=XFER_PANEL,
                                        help="Write Explicit VR Big Endian (as DCMTK's +tb).")]
WriteDeflated = Annotated[bool, typer.Option("+td", "--write-xfer-deflated", rich_help_panel=XFER_PANEL,
                                             help="Write Deflated Explicit VR Little Endian (as DCMTK's +td).")]


def written_syntax(little: bool, implicit: bool, big: bool, deflated: bool, given: str | None,
                   name: str) -> str | None:
    """The syntax +te/+ti/+tb/+td or the command's own option ``name`` (its value ``given``) ask for;
    more than one is a usage error."""
    from dcmcli.uids import DEFLATED, EBE, ELE, ILE, parse_transfer_syntax

    chosen = [ts for on, ts in ((little, ELE), (implicit, ILE), (big, EBE), (deflated, DEFLATED)) if on]
    if len(chosen) + (given is not None) > 1:
        raise UsageError("more than one output transfer syntax given", f"give one of {name}, +te, +ti, +tb, +td")
    return chosen[0] if chosen else (parse_transfer_syntax(given) if given else None)


#: The positional arguments and options several commands take, written once.
PeerArgument = Annotated[str, typer.Argument(metavar="PEER", help="Host name or address, or [AET@]host:port.")]
QueryFilesArgument = Annotated[list[str] | None, typer.Argument(
    metavar="[PORT] [QUERY-FILE]...",
    help="TCP port (unless PEER has :port), then query files (DICOM or DICOM JSON); -k keys override them.")]
FromFiles = Annotated[list[str] | None, typer.Option(
    "--from-files", metavar="FILE-OR-DIR",
    help="Retrieve exactly the instances of these files (by their UIDs; repeatable; one request per series).")]
CancelAfter = Annotated[int | None, typer.Option("--cancel-after", min=0, metavar="N",
                                                 help="Send C-CANCEL after N sub-operations.")]

WarningsAsErrors = Annotated[bool, typer.Option("--warnings-as-errors", rich_help_panel=OUTPUT,
                                                help=f"Exit {int(ExitCode.OPERATION_WARNING)} when any operation "
                                                     "ended with a warning status (default: exit 0).")]

#: -od for commands that write files but are not storage receivers (findscu -X).
OutputDirectory = Annotated[Path, typer.Option("-od", "--output-directory", metavar="DIR", rich_help_panel=OUTPUT,
                                               help="Write the files of -X below DIR.")]
