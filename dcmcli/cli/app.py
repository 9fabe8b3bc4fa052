"""The ``dcmcli`` typer app: registers the subcommands and maps click's own
usage errors onto the shared exit-code table."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

try:  # typer >= 0.20 vendors click; older typer uses the click package
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc  # type: ignore[no-redef]

from dcmcli.errors import EXIT_CODES, ExitCode

EXIT_CODE_EPILOG = "Exit codes (the same for every subcommand; `dcmcli exit-codes` lists them):\n\n" + "\n\n".join(
    f"{int(e.code):>3}  {e.name}: {e.meaning}" for e in EXIT_CODES)

app = typer.Typer(
    name="dcmcli",
    help="DICOM command-line toolbox: DCMTK's vocabulary, consistent exit codes, JSON output.",
    epilog=EXIT_CODE_EPILOG,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from dcmcli.conformance.installation import version_lines

        typer.echo("\n".join(version_lines()))
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print dcmcli's version, its Implementation Class UID and the versions of pydicom, "
                                               "pynetdicom and every codec plugin, and exit.")] = False,
) -> None:
    """DICOM command-line toolbox: DCMTK's vocabulary, consistent exit codes, JSON output."""


#: Subcommands register themselves on import (each module is thin: parse, call the core).
COMMANDS = {"exit-codes": "exitcodes", "echoscu": "echoscu", "storescu": "storescu", "storescp": "storescp",
            "findscu": "findscu", "movescu": "movescu", "getscu": "getscu", "mwlscp": "mwlscp", "dcmconv": "dcmconv",
            "demo": "demo", "nactionscu": "nactionscu", "ncreatescu": "ncreatescu", "wado": "wado", "dcmdir": "dcmdir",
            "printscu": "printscu", "conformance": "conformance", "doctor": "doctor"}


def load_commands(names: tuple[str, ...] = tuple(COMMANDS)) -> typer.Typer:
    """Import the subcommand modules (each registers itself on ``app``)."""
    import importlib

    for name in names:
        importlib.import_module(f"dcmcli.cli.{COMMANDS[name]}")
    return app


def plain_usage_message(message: str) -> str:
    """click's wording in dcmcli's: no quotes around option names, no final
    period, numbers said to be numbers."""
    import re

    text = message.strip().rstrip(".")
    text = re.sub(r"'(-[^']*)' / '(--[^']*)'", r"\1/\2", text)
    text = re.sub(r"Invalid value for '([^']*)'", r"invalid value for \1", text).replace("Invalid value for ",
                                                                                          "invalid value for ")
    text = re.sub(r"No such command '([^']*)'", r"no such command \1", text)
    text = re.sub(r"Missing argument '([^']*)'", r"missing argument \1", text)
    text = re.sub(r"Missing option '([^']*)'", r"missing option \1", text)
    text = text.replace("No such option: ", "no such option ").replace("Got unexpected extra argument",
                                                                        "unexpected extra argument")
    text = re.sub(r"'([^']*)' is not a valid (float|integer)( range)?", r"'\1' is not a number", text)
    text = re.sub(r"(-?[\d.]+) is not in the range (-?[\d.]+)<=x<=(-?[\d.]+)", r"\1 is not between \2 and \3", text)
    text = re.sub(r"(-?[\d.]+) is not in the range x>=(-?[\d.]+)", r"\1 is less than \2", text)
    text = re.sub(r"is not one of ((?:'[^']*'(?:, )?)+)", lambda m: "is not one of " + m.group(1).replace("'", ""), text)
    return text


def _plain_usage_metavars() -> None:
    """typer writes required arguments as {PEER} in usage lines; DCMTK users read PEER."""
    try:
        from typer.core import TyperArgument
    except ImportError:  # pragma: no cover
        return
    original = TyperArgument.make_metavar

    def make_metavar(self, ctx, *args, **kwargs):  # type: ignore[no-untyped-def]
        var = original(self, ctx, *args, **kwargs)
        return var[1:-1] if var.startswith("{") and var.endswith("}") else var

    TyperArgument.make_metavar = make_metavar  # type: ignore[method-assign]


_plain_usage_metavars()

_EXIT = tuple({typer.Exit, getattr(click_exc, "Exit", typer.Exit)})
# click raises this UsageError for no_args_is_help; it is a request for help, not an error
_NO_ARGS_IS_HELP: type[Exception] = getattr(click_exc, "NoArgsIsHelpError", ())  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = sys.argv[1:] if argv is None else argv
    prog = "dcmcli"
    # Running one subcommand builds only that one: typer validates every
    # parameter of every command it builds, which costs start-up time.
    # `dcmcli --version` needs none (one keeps typer from taking the root
    # callback for the app's only command).
    if args and args[0] in COMMANDS:
        load_commands((args[0],))
    else:
        load_commands(("exit-codes",) if args[:1] == ["--version"] else tuple(COMMANDS))
    try:
        rv = app(args=args, prog_name=prog, standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:  # `dcmcli` alone: the help, as --help gives it, and exit 0 (as DCMTK)
        text = exc.format_message()  # rich help has printed itself to stdout already; plain help has not
        if text.strip():
            sys.stdout.write(text.rstrip("\n") + "\n")
        sys.exit(int(ExitCode.OK))
    except click_exc.UsageError as exc:
        # One prefix for every error of a command ("storescu: error:"), as at run time.
        # a sub-command of a group is named with its group ("wado query: error:")
        name = (exc.ctx.command_path.split(" ", 1)[1] if exc.ctx is not None and exc.ctx.parent is not None
                and " " in exc.ctx.command_path else prog)
        path = exc.ctx.command_path if exc.ctx is not None else prog
        sys.stderr.write(f"{name}: error: {plain_usage_message(exc.format_message())}; see '{path} --help'\n")
        sys.exit(int(ExitCode.USAGE))
    except _EXIT as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # e.g. `dcmcli storescu --help | head`
        sys.exit(0)
    except (KeyboardInterrupt, getattr(click_exc, "Abort", KeyboardInterrupt)):
        sys.stderr.write(f"{prog}: error: interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
    except getattr(click_exc, "ClickException", click_exc.UsageError) as exc:
        sys.stderr.write(f"{prog}: error: {exc.format_message()}\n")
        sys.exit(int(ExitCode.USAGE))
    sys.exit(rv if isinstance(rv, int) else 0)
