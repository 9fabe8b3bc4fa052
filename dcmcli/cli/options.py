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
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dcmcli.errors import DcmcliError, ExitCode, UsageError
from dcmcli.net.association import AssociationSettings
from dcmcli.net.peer import validate_ae_title
from dcmcli.net.services.writer import DUPLICATE_POLICIES, LAYOUTS, WriterOptions
from dcmcli.output import LOG_LEVELS, Output, Verbosity
from dcmcli.records import dataclass

if TYPE_CHECKING:
    from dcmcli.net.acceptor import AcceptorOptions, UserTable
    from dcmcli.net.tls import TlsOptions
    from dcmcli.net.ul import UserIdentity

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

# The listener options: every server (storescp, mwlscp) and its access control.
LISTENER = "Listener options"
_BIND = Annotated[str, typer.Option("--bind", metavar="ADDRESS", rich_help_panel=LISTENER,
                                    help="Address to listen on (default: all IPv4 addresses); :: for IPv6.")]
_ALLOW_CALLING = Annotated[list[str] | None, typer.Option(
    "--allow-calling", metavar="AETITLE", rich_help_panel=LISTENER,
    help="Accept only these calling AE titles (repeatable).")]
_REQUIRE_CALLED = Annotated[bool, typer.Option(
    "--require-called", rich_help_panel=LISTENER, help="Reject associations whose called AE title is not -aet.")]
_MAX_ASSOC = Annotated[int, typer.Option("--max-associations", min=1, metavar="N", rich_help_panel=LISTENER,
                                         help="Simultaneous associations; more are rejected.")]
_SHUTDOWN = Annotated[float, typer.Option(
    "--shutdown-timeout", min=0, metavar="SECONDS", rich_help_panel=LISTENER,
    help="On SIGINT/SIGTERM, wait this long for associations in flight before aborting them.")]

# TLS (DCMTK's spellings and long ones) and user identity: every network command.
TLS = "TLS options (secure transport, PS3.15 B)"
IDENTITY = "User identity (PS3.7 D.3.3.7)"


def _list_profiles(value: bool) -> None:
    if value:
        from dcmcli.net.tls import PROFILES

        for name, (flag, *_rest, words) in PROFILES.items():
            typer.echo(f"{flag}  {name:10s} {words}")
        raise typer.Exit(0)


def _list_ciphers(value: bool) -> None:
    if value:
        from dcmcli.net.tls import PROFILES, TlsOptions, list_ciphers

        for name, (flag, *_rest) in PROFILES.items():
            typer.echo(f"{flag} {name}: " + " ".join(list_ciphers(TlsOptions(profile=name))))
        raise typer.Exit(0)


_TLS_PAIR = Annotated[tuple[Path, Path], typer.Option(
    "+tls", "--enable-tls", metavar="KEY CERT", rich_help_panel=TLS,
    help="Use TLS with this private key and certificate (PEM; -der for DER).")]
_TLS_ANON = Annotated[bool, typer.Option("+tla", "--anonymous-tls", rich_help_panel=TLS,
                                         help="Use TLS without a key and certificate of our own (SCUs).")]
_TLS_KEY = Annotated[Path | None, typer.Option("--tls-key", metavar="FILE", rich_help_panel=TLS,
                                               help="Our private key (as +tls KEY CERT).")]
_TLS_CERT = Annotated[Path | None, typer.Option("--tls-cert", metavar="FILE", rich_help_panel=TLS,
                                                help="Our certificate (as +tls KEY CERT).")]
_TLS_PW = Annotated[str | None, typer.Option("+pw", "--use-passwd", "--tls-key-password", metavar="PASSWORD",
                                             rich_help_panel=TLS, help="The private key's password.")]
_TLS_PW_ENV = Annotated[str | None, typer.Option(
    "--tls-key-password-env", metavar="VAR", rich_help_panel=TLS,
    help="Read the private key's password from this environment variable.")]
_TLS_PS = Annotated[bool, typer.Option("+ps", "--std-passwd", rich_help_panel=TLS,
                                       help="Ask for the private key's password on the terminal (the default when "
                                            "the key is encrypted and no password is given).")]
_TLS_DER = Annotated[bool, typer.Option("-der", "--der-keys", rich_help_panel=TLS,
                                        help="Key and certificate files are DER (default: PEM, -pem; a PEM file is still "
                                             "recognised). A DER key is read with the cryptography package "
                                             "(pip install 'dcmcli[tls]').")]
_TLS_PEM = Annotated[bool, typer.Option("-pem", "--pem-keys", rich_help_panel=TLS,
                                        help="Key and certificate files are PEM (the default).")]
_TLS_CF = Annotated[list[Path] | None, typer.Option(
    "+cf", "--add-cert-file", metavar="FILE", rich_help_panel=TLS,
    help="Trust the certificates in FILE (a CA or the peer's own; repeatable).")]
_TLS_CD = Annotated[list[Path] | None, typer.Option(
    "+cd", "--add-cert-dir", metavar="DIR", rich_help_panel=TLS, help="Trust every certificate in DIR (repeatable).")]
_TLS_SYS = Annotated[bool, typer.Option("--tls-system-ca", rich_help_panel=TLS,
                                        help="Also trust the system's certificate authorities.")]
_TLS_CRL = Annotated[list[Path] | None, typer.Option(
    "+crl", "--add-crl-file", metavar="FILE", rich_help_panel=TLS,
    help="Check peer certificates against this revocation list (PEM; repeatable).")]
_TLS_PY = Annotated[bool, typer.Option("+py", "--profile-bcp195-nd", rich_help_panel=TLS,
                                       help="BCP 195 non-downgrading profile: TLS 1.2+, ECDHE AES-GCM (the default).")]
_TLS_PX = Annotated[bool, typer.Option("+px", "--profile-bcp195", rich_help_panel=TLS,
                                       help="BCP 195 profile: TLS 1.2+, also DHE.")]
_TLS_PZ = Annotated[bool, typer.Option("+pz", "--profile-bcp195-ex", rich_help_panel=TLS,
                                       help="BCP 195 extended profile: TLS 1.3 only.")]
_TLS_PH = Annotated[bool, typer.Option("+ph", "--list-profiles", callback=_list_profiles, is_eager=True,
                                       rich_help_panel=TLS, help="List the TLS profiles and exit.")]
_TLS_CC = Annotated[bool, typer.Option("+cc", "--list-ciphers", callback=_list_ciphers, is_eager=True,
                                       rich_help_panel=TLS, help="List each profile's cipher suites and exit.")]
_TLS_CS = Annotated[list[str] | None, typer.Option(
    "+cs", "--cipher", metavar="CIPHER", rich_help_panel=TLS,
    help="Use only these TLS 1.2 cipher suites (OpenSSL names; repeatable).")]
_TLS_RC = Annotated[bool, typer.Option("-rc", "--require-peer-cert", rich_help_panel=TLS,
                                       help="The peer must present a trusted certificate (SCUs: the default; "
                                            "servers: mutual TLS).")]
_TLS_VC = Annotated[bool, typer.Option("-vc", "--verify-peer-cert", rich_help_panel=TLS,
                                       help="Verify the peer's certificate if it presents one (servers: the default).")]
_TLS_IC = Annotated[bool, typer.Option("-ic", "--ignore-peer-cert", rich_help_panel=TLS,
                                       help="Do not verify the peer's certificate (with a warning: for tests only).")]
_USR = Annotated[str | None, typer.Option("-usr", "--user", metavar="NAME", rich_help_panel=IDENTITY,
                                          help="Send this user name (with -pwd: and passcode).")]
_PWD = Annotated[str | None, typer.Option("-pwd", "--password", metavar="PASSWORD", rich_help_panel=IDENTITY,
                                          help="The passcode sent with -usr.")]
_JWT = Annotated[str | None, typer.Option("--jwt", metavar="TOKEN", rich_help_panel=IDENTITY,
                                          help="Send this JSON Web Token.")]
_SAML = Annotated[Path | None, typer.Option("--saml", metavar="FILE", rich_help_panel=IDENTITY,
                                            help="Send the SAML assertion in FILE.")]
_RSP = Annotated[bool, typer.Option("-rsp", "--pos-response", rich_help_panel=IDENTITY,
                                    help="Ask the peer to confirm the user identity (positive response).")]
_REQUIRE_USER = Annotated[Path | None, typer.Option(
    "--require-user", metavar="FILE", rich_help_panel=LISTENER,
    help="Accept only requestors whose user identity is in FILE: lines 'user:password' (or 'user' for a name "
         "alone), 'jwt-hs256:SECRET' for JSON Web Tokens signed with SECRET. Others are rejected.")]

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
                                                   help="An extra request header (repeatable); sent to BASE-URL's server only, as the credentials.")]
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
    ("tls_pair", _TLS_PAIR, (None, None), {"scu", "scp", "web"}),
    ("tls_anonymous", _TLS_ANON, False, {"scu"}),
    ("tls_key", _TLS_KEY, None, {"scu", "scp", "web"}),
    ("tls_cert", _TLS_CERT, None, {"scu", "scp", "web"}),
    ("tls_password", _TLS_PW, None, {"scu", "scp", "web"}),
    ("tls_password_env", _TLS_PW_ENV, None, {"scu", "scp", "web"}),
    ("tls_prompt", _TLS_PS, False, {"scu", "scp", "web"}),
    ("tls_der", _TLS_DER, False, {"scu", "scp", "web"}),
    ("tls_pem", _TLS_PEM, False, {"scu", "scp", "web"}),
    ("tls_cert_files", _TLS_CF, None, {"scu", "scp", "web"}),
    ("tls_cert_dirs", _TLS_CD, None, {"scu", "scp", "web"}),
    ("tls_system_ca", _TLS_SYS, False, {"scu", "scp", "web"}),
    ("tls_crls", _TLS_CRL, None, {"scu", "scp", "web"}),
    ("tls_bcp195_nd", _TLS_PY, False, {"scu", "scp", "web"}),
    ("tls_bcp195", _TLS_PX, False, {"scu", "scp", "web"}),
    ("tls_bcp195_ex", _TLS_PZ, False, {"scu", "scp", "web"}),
    ("tls_list_profiles", _TLS_PH, False, {"scu", "scp", "web"}),
    ("tls_list_ciphers", _TLS_CC, False, {"scu", "scp", "web"}),
    ("tls_ciphers", _TLS_CS, None, {"scu", "scp", "web"}),
    ("tls_require", _TLS_RC, False, {"scu", "scp", "web"}),
    ("tls_verify", _TLS_VC, False, {"scu", "scp", "web"}),
    ("tls_ignore", _TLS_IC, False, {"scu", "scp", "web"}),
    ("identity_user", _USR, None, {"scu"}),
    ("identity_password", _PWD, None, {"scu"}),
    ("jwt", _JWT, None, {"scu"}),
    ("saml", _SAML, None, {"scu"}),
    ("pos_response", _RSP, False, {"scu"}),
    ("require_user", _REQUIRE_USER, None, {"listen"}),
    ("bind", _BIND, "", {"listen"}),
    ("allow_calling", _ALLOW_CALLING, None, {"listen"}),
    ("require_called", _REQUIRE_CALLED, False, {"listen"}),
    ("max_associations", _MAX_ASSOC, 10, {"listen"}),
    ("shutdown_timeout", _SHUTDOWN, 30.0, {"listen"}),
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
    #: The listener's options (port 0 until the command sets it), for servers.
    acceptor: AcceptorOptions | None = None
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
    tls = tls_options(values, out, implied=True)  # +cf, +tls KEY CERT, -ic, profiles: as for DICOM TLS
    if tls is not None:
        from dcmcli.net.tls import client_context

        if opts.cacert:
            tls.trusted_files.append(Path(opts.cacert))
        if opts.insecure:
            tls.verify = "ignore"
        opts.ssl_context = client_context(tls)
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
    source = "--token"
    if values.get("token_env"):
        if token is not None:
            raise UsageError("--token and --token-env both give the token", "give one of them")
        source = f"--token-env {values['token_env']}"
        token = os.environ.get(values["token_env"])
        if token is None:
            raise UsageError(f"{source}: the variable is not set", "export it first")
    if token is not None and user is not None:
        raise UsageError("-u and a bearer token both authenticate", "give one of them")
    if token is not None:
        from dcmcli.web.http import check_token

        opts.token = check_token(token, source)
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
    if "tls_pair" in values and "http_timeout" not in values:
        settings.tls = tls_options(values, out)
        if settings.tls is not None:  # key, certificates, profile checked now, not at the first connection
            settings.tls_context("requestor" if "call" in values else "acceptor")
    if "identity_user" in values:
        settings.user_identity = user_identity(values)
    writer = writer_options(values) if "output_directory" in values else None
    query = query_args(values) if "key" in values else None
    acceptor = listener_options(values) if "bind" in values else None
    web = http_options(values, out) if "http_timeout" in values else None
    return Common(command, settings, out, verbosity, verbosity >= Verbosity.DEBUG, writer, query, acceptor, web)


def tls_options(values: dict[str, Any], out: Output, implied: bool = False) -> TlsOptions | None:
    """The TLS options given, checked once; None when TLS is not asked for.
    ``implied``: TLS is the URL's business (wado's https), any TLS option counts."""
    key, cert = values.get("tls_pair") or (None, None)
    if values.get("tls_key") or values.get("tls_cert"):
        if key is not None:
            raise UsageError("+tls and --tls-key/--tls-cert both name our key", "give one of them")
        key, cert = values.get("tls_key"), values.get("tls_cert")
        if key is None or cert is None:
            raise UsageError("--tls-key and --tls-cert go together", "give both (or +tls KEY CERT)")
    anonymous = bool(values.get("tls_anonymous"))
    tls_asked = key is not None or anonymous
    tls_flags = [n for n in ("tls_cert_files", "tls_cert_dirs", "tls_crls", "tls_ciphers", "tls_password",
                             "tls_password_env") if values.get(n)]
    tls_flags += [n for n in ("tls_system_ca", "tls_bcp195", "tls_bcp195_ex", "tls_require", "tls_verify",
                              "tls_ignore", "tls_der") if values.get(n)]
    if implied and (tls_flags or key is not None):
        tls_asked = True
    if not tls_asked:
        if tls_flags and not implied:
            raise UsageError(f"TLS options ({tls_flags[0].replace('tls_', '').replace('_', '-')}) without TLS",
                             "add +tls KEY CERT (or +tla for a requestor without a certificate)")
        return None
    if anonymous and key is not None:
        raise UsageError("+tla and +tls KEY CERT contradict each other", "give one of them")
    from dcmcli.net.tls import TlsOptions  # ssl: only when TLS is asked for (5 ms of every start)

    profiles = [p for flag, p in (("tls_bcp195_nd", "bcp195-nd"), ("tls_bcp195", "bcp195"),
                                  ("tls_bcp195_ex", "bcp195-ex")) if values.get(flag)]
    if len(profiles) > 1:
        raise UsageError("more than one TLS profile given", "give one of +py, +px, +pz")
    verify = [v for flag, v in (("tls_require", "require"), ("tls_verify", "if-presented"),
                                ("tls_ignore", "ignore")) if values.get(flag)]
    if len(verify) > 1:
        raise UsageError("more than one of -rc, -vc, -ic given", "give one of them")
    if values.get("tls_der") and values.get("tls_pem"):
        raise UsageError("-der and -pem contradict each other", "give one of them")
    password = values.get("tls_password")
    env = values.get("tls_password_env")
    if env:
        if password is not None:
            raise UsageError("+pw and --tls-key-password-env both give the key's password", "give one of them")
        password = os.environ.get(env)
        if password is None:
            raise UsageError(f"the environment variable {env} (--tls-key-password-env) is not set", "set it")
    if verify == ["ignore"]:
        out.warn("-ic: the peer's certificate is not verified: anyone can pretend to be the peer (tests only)")
    return TlsOptions(key=key, cert=cert, key_password=password, der=bool(values.get("tls_der")),
                      trusted_files=list(values.get("tls_cert_files") or []),
                      trusted_dirs=list(values.get("tls_cert_dirs") or []),
                      system_ca=bool(values.get("tls_system_ca")), crls=list(values.get("tls_crls") or []),
                      profile=profiles[0] if profiles else "bcp195-nd", ciphers=list(values.get("tls_ciphers") or []),
                      verify=verify[0] if verify else None)


def user_identity(values: dict[str, Any]) -> UserIdentity | None:
    """-usr/-pwd, --jwt, --saml as the A-ASSOCIATE-RQ's user identity item."""
    from dcmcli.net.ul import UserIdentity

    user, password, jwt, saml = (values.get(k) for k in ("identity_user", "identity_password", "jwt", "saml"))
    given = [n for n, v in (("-usr", user), ("--jwt", jwt), ("--saml", saml)) if v]
    if len(given) > 1:
        raise UsageError(f"more than one user identity given ({', '.join(given)})", "give one of -usr, --jwt, --saml")
    if password and not user:
        raise UsageError("-pwd without -usr", "give the user name with -usr")
    rsp = bool(values.get("pos_response"))
    if user:
        return UserIdentity(2 if password else 1, rsp, user.encode("utf-8"), (password or "").encode("utf-8"))
    if jwt:
        return UserIdentity(5, rsp, jwt.encode("ascii", "replace"))
    if saml:
        try:
            return UserIdentity(4, rsp, Path(saml).read_bytes())
        except OSError as exc:
            raise DcmcliError(f"cannot read the SAML assertion {str(saml)!r}: {exc.strerror or exc}",
                              "check --saml", exit_code=ExitCode.INPUT_UNREADABLE) from None
    if rsp:
        raise UsageError("-rsp without a user identity", "give -usr, --jwt or --saml")
    return None


def _users(path: Path | None) -> UserTable | None:
    if path is None:
        return None
    from dcmcli.net.acceptor import UserTable

    try:
        return UserTable.parse(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DcmcliError(f"cannot read the user file {str(path)!r}: {exc.strerror or exc}", "check --require-user",
                          exit_code=ExitCode.INPUT_UNREADABLE) from None


def listener_options(values: dict[str, Any]) -> AcceptorOptions:
    from dcmcli.net.acceptor import AcceptorOptions

    return AcceptorOptions(
        bind=values.get("bind") or "",
        allowed_calling=[validate_ae_title(a, "calling AE title (--allow-calling)")
                         for a in (values.get("allow_calling") or [])],
        require_called=bool(values.get("require_called")), max_associations=int(values.get("max_associations") or 10),
        users=_users(values.get("require_user")),
        shutdown_timeout=float(values.get("shutdown_timeout") if values.get("shutdown_timeout") is not None else 30.0))


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
                   query: bool = False, listener: bool = False, web: bool = False, label: str | None = None,
                   **typer_kwargs: Any) -> Callable[[Callable[..., int | None]], Callable[..., None]]:
    """Register ``fn(common, **own_options)`` as subcommand ``name`` with the shared options
    (``storage``: also the storage writer's, for commands that receive objects; ``query``: the
    information model, key and level options of findscu, movescu and getscu; ``listener``: a
    server's bind address, access control and limits, as ``common.acceptor``; ``web``: the HTTP
    options of the wado actions). ``label`` names the command in messages and events when it is
    not ``name`` (a sub-command of a group: "wado query")."""
    shared = [s for s in _SHARED if network in s[3] or (storage and "store" in s[3]) or (query and "query" in s[3])
              or (listener and "listen" in s[3]) or (web and "web" in s[3])]
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

#: The help panel of DCMTK spellings that change nothing here, or do what dcmcli does anyway.
DCMTK_PANEL = "DCMTK compatibility"
NoRecurse = Annotated[bool, typer.Option(
    "-r", "--no-recurse", rich_help_panel=DCMTK_PANEL,
    help="Do not recurse into sub-directories (DCMTK's default; dcmcli recurses unless told).")]

#: -od for commands that write files but are not storage receivers (findscu -X).
OutputDirectory = Annotated[Path, typer.Option("-od", "--output-directory", metavar="DIR", rich_help_panel=OUTPUT,
                                               help="Write the files of -X below DIR.")]

# The normalized services (nactionscu, ncreatescu): the request's data set, the answer's, and the wait.
NSERVICE = "Request options"
SetKey = Annotated[list[str] | None, typer.Option(
    "-s", "--set", metavar="KEY", rich_help_panel=NSERVICE,
    help="An attribute of the request's data set, as findscu's -k: Keyword=value, (gggg,eeee)=value, "
         "Sequence[0].Keyword=value (repeatable; on top of --dataset and the preset).")]
DatasetFile = Annotated[list[str] | None, typer.Option(
    "--dataset", metavar="FILE", rich_help_panel=NSERVICE,
    help="The request's data set from FILE (DICOM or DICOM JSON; repeatable, later ones on top).")]
ResponseOut = Annotated[str | None, typer.Option(
    "--out", metavar="FILE", rich_help_panel=OUTPUT,
    help="Write the data set of the (last) response as a DICOM file.")]
EventListenPort = Annotated[int | None, typer.Option(
    "--port", min=0, max=65535, metavar="PORT", rich_help_panel=NSERVICE,
    help="Listen on PORT for N-EVENT-REPORTs the peer sends on a new association (the shared acceptor, only "
         "this peer's address); the peer must know this AE title, host and port.")]

# SOP Class Common Extended Negotiation (PS3.7 D.3.3.6): the storage SCUs (storescu, getscu's storage contexts).
CommonExtNeg = Annotated[bool, typer.Option(
    "-cen", "--common-ext-neg", "--rel-ext-neg",
    help="Send a SOP Class Common Extended Negotiation item for each storage SOP class proposed: service class "
         "Storage (1.2.840.10008.4.2) and the class's related general SOP classes (PS3.4 Table B.3-3, e.g. Digital "
         "Mammography -> Digital X-Ray), so that a receiver may accept a class it does not know, a private one "
         "too, as storage (dcm4che's --rel-ext-neg).")]
RelatedGeneral = Annotated[list[str] | None, typer.Option(
    "--related-general", metavar="SOPCLASS=GENERAL[,GENERAL...]",
    help="The related general SOP classes sent for SOPCLASS, a private specialised class (UIDs or keywords; "
         "repeatable; instead of the table's for a standard class). Implies -cen.")]


def common_extended_options(enabled: bool, specs: list[str] | None) -> tuple[bool, dict[str, tuple[str, ...]]]:
    """-cen and --related-general as (send the items, the user's related general SOP classes)."""
    from dcmcli.uids import parse_related_general

    related = parse_related_general(list(specs or []))
    return enabled or bool(related), related
