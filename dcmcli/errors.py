"""The one exit-code table of dcmcli, and the errors that map onto it.

Every subcommand ends with one of these codes. The numbers follow DCMTK's
``ofexit.h`` ranges (1 usage, 20-39 input, 40-59 output, 60-79 network) but,
unlike DCMTK, they mean the same thing for every command.
"""

from __future__ import annotations

from enum import IntEnum

from dcmcli.records import dataclass


class ExitCode(IntEnum):
    OK = 0
    USAGE = 1
    INPUT_UNREADABLE = 20
    NO_INPUT_FILES = 21
    INVALID_INPUT = 22
    NO_VALID_INPUT = 23
    CANNOT_CONVERT = 24
    FILE_ID_NOT_COMPLIANT = 25
    DICOMDIR_INVALID = 26
    NOT_IN_PROFILE = 27
    OUTPUT_NOT_WRITABLE = 40
    CANNOT_CONNECT = 60
    ASSOCIATION_REJECTED = 61
    ASSOCIATION_ABORTED = 62
    NO_REPORT = 63
    CANNOT_LISTEN = 64
    NO_ACCEPTABLE_CONTEXT = 65
    OPERATION_FAILED = 66
    OPERATION_WARNING = 67
    INTERRUPTED = 68
    NOT_AUTHORISED = 69
    INTERNAL = 70
    TLS_FAILED = 71


@dataclass(frozen=True)
class ExitCodeInfo:
    code: ExitCode
    name: str
    meaning: str


EXIT_CODES: tuple[ExitCodeInfo, ...] = (
    ExitCodeInfo(ExitCode.OK, "ok", "success (warnings too, unless --warnings-as-errors)"),
    ExitCodeInfo(ExitCode.USAGE, "usage", "command-line usage error: unknown option, bad value, invalid AE title"),
    ExitCodeInfo(ExitCode.INPUT_UNREADABLE, "input-unreadable", "an input file or directory does not exist or cannot be read"),
    ExitCodeInfo(ExitCode.NO_INPUT_FILES, "no-input-files", "no input files were found (a pattern matched nothing, a directory was empty)"),
    ExitCodeInfo(ExitCode.INVALID_INPUT, "invalid-input", "an input file named on the command line is not DICOM or is truncated"),
    ExitCodeInfo(ExitCode.NO_VALID_INPUT, "no-valid-input", "input files were found, but none of them could be used"),
    ExitCodeInfo(ExitCode.CANNOT_CONVERT, "cannot-convert", "an object cannot be converted to the transfer syntax asked for: the codec cannot carry it, is not installed, or the lossless check failed"),
    ExitCodeInfo(ExitCode.FILE_ID_NOT_COMPLIANT, "file-id-not-compliant", "dcmdir: files to be referenced from a DICOMDIR are not below its folder or their names break PS3.10 (A-Z, 0-9, _; at most 8 characters per component, 8 components); --copy-to copies them under compliant names"),
    ExitCodeInfo(ExitCode.DICOMDIR_INVALID, "dicomdir-invalid", "dcmdir: a DICOMDIR cannot be read (truncated, corrupt) or fails the check (missing or mismatching files, broken offsets, missing keys)"),
    ExitCodeInfo(ExitCode.NOT_IN_PROFILE, "not-in-profile", "dcmdir: files are in a transfer syntax the media profile does not allow (--transcode converts them)"),
    ExitCodeInfo(ExitCode.OUTPUT_NOT_WRITABLE, "output-not-writable", "the output directory or file cannot be created or written"),
    ExitCodeInfo(ExitCode.CANNOT_CONNECT, "cannot-connect", "cannot connect: connection refused, unknown host, or connect timeout"),
    ExitCodeInfo(ExitCode.ASSOCIATION_REJECTED, "association-rejected", "the peer rejected the association (A-ASSOCIATE-RJ)"),
    ExitCodeInfo(ExitCode.ASSOCIATION_ABORTED, "association-aborted", "the association was aborted, the connection dropped, or a DIMSE/ACSE timeout expired"),
    ExitCodeInfo(ExitCode.NO_REPORT, "no-report", "the N-EVENT-REPORT awaited (a storage commitment result) did not come within --wait"),
    ExitCodeInfo(ExitCode.CANNOT_LISTEN, "cannot-listen", "cannot listen on the port: in use, or not permitted"),
    ExitCodeInfo(ExitCode.NO_ACCEPTABLE_CONTEXT, "no-acceptable-context", "the peer accepted none of the presentation contexts needed"),
    ExitCodeInfo(ExitCode.OPERATION_FAILED, "operation-failed", "one or more operations failed with a DIMSE failure status; for movescu and getscu also: any sub-operation failed, or an object the peer counts as sent never arrived"),
    ExitCodeInfo(ExitCode.OPERATION_WARNING, "operation-warning", "operations (or sub-operations) completed with warnings and --warnings-as-errors was given"),
    ExitCodeInfo(ExitCode.INTERRUPTED, "interrupted", "interrupted by the user (SIGINT) before the work was done"),
    ExitCodeInfo(ExitCode.NOT_AUTHORISED, "not-authorised", "the server refused the credentials, or wants some (HTTP 401 or 403)"),
    ExitCodeInfo(ExitCode.INTERNAL, "internal", "an unexpected internal error (a bug: run with -d and report it)"),
    ExitCodeInfo(ExitCode.TLS_FAILED, "tls-failed", "the TLS handshake failed: a certificate not trusted, expired or for another host name, no client certificate where one is required, no TLS version or cipher in common, or TLS on one side only"),
)

# When a run meets several problems, the exit code names the most severe one.
_SEVERITY: tuple[ExitCode, ...] = (
    ExitCode.INTERNAL,
    ExitCode.INTERRUPTED,
    ExitCode.CANNOT_LISTEN,
    ExitCode.CANNOT_CONNECT,
    ExitCode.TLS_FAILED,
    ExitCode.NOT_AUTHORISED,
    ExitCode.ASSOCIATION_REJECTED,
    ExitCode.NO_ACCEPTABLE_CONTEXT,
    ExitCode.ASSOCIATION_ABORTED,
    ExitCode.NO_REPORT,
    ExitCode.OUTPUT_NOT_WRITABLE,
    ExitCode.OPERATION_FAILED,
    ExitCode.CANNOT_CONVERT,
    ExitCode.DICOMDIR_INVALID,
    ExitCode.FILE_ID_NOT_COMPLIANT,
    ExitCode.NOT_IN_PROFILE,
    ExitCode.NO_VALID_INPUT,
    ExitCode.NO_INPUT_FILES,
    ExitCode.INPUT_UNREADABLE,
    ExitCode.INVALID_INPUT,
    ExitCode.OPERATION_WARNING,
    ExitCode.USAGE,
    ExitCode.OK,
)


def worst(*codes: ExitCode) -> ExitCode:
    """Return the most severe of ``codes`` (``OK`` when empty)."""
    present = set(codes)
    for code in _SEVERITY:
        if code in present:
            return code
    return ExitCode.OK


class DcmcliError(Exception):
    """An error with a plain one-line message, a hint, and an exit code."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, hint: str | None = None, *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class UsageError(DcmcliError):
    exit_code = ExitCode.USAGE


class InputError(DcmcliError):
    exit_code = ExitCode.INPUT_UNREADABLE


class OutputError(DcmcliError):
    exit_code = ExitCode.OUTPUT_NOT_WRITABLE


class NetworkError(DcmcliError):
    """Base of every association-level failure; may carry a negotiation report."""

    exit_code = ExitCode.CANNOT_CONNECT

    def __init__(self, message: str, hint: str | None = None, *, report: object | None = None,
                 exit_code: ExitCode | None = None) -> None:
        super().__init__(message, hint, exit_code=exit_code)
        self.report = report


class ConnectError(NetworkError):
    exit_code = ExitCode.CANNOT_CONNECT


class TlsError(NetworkError):
    exit_code = ExitCode.TLS_FAILED


class AssociationRejected(NetworkError):
    exit_code = ExitCode.ASSOCIATION_REJECTED


class NoAcceptableContext(NetworkError):
    exit_code = ExitCode.NO_ACCEPTABLE_CONTEXT


class AssociationAborted(NetworkError):
    exit_code = ExitCode.ASSOCIATION_ABORTED


class ListenError(DcmcliError):
    exit_code = ExitCode.CANNOT_LISTEN
