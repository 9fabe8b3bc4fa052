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

from dcmcli import __version__
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
        typer.echo(f"dcmcli {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """DICOM command-line toolbox: DCMTK's vocabulary, consistent exit codes, JSON output."""


#: Subcommands register themselves on import (each module is thin: parse, call the core).
COMMANDS = {"exit-codes": "exitcodes", "echoscu": "echoscu", "storescu": "storescu", "storescp": "storescp",
            "findscu": "findscu", "movescu": "movescu", "getscu": "getscu", "dcmconv": "dcmconv", "demo": "demo"}


def load_commands(names: tuple[str, ...] = tuple(COMMANDS)) -> typer.Typer:
    """Import the subcommand modules (each registers itself on ``app``)."""
    import importlib

    for name in names:
        importlib.import_module(f"dcmcli.cli.{COMMANDS[name]}")
    return app


_EXIT = tuple({typer.Exit, getattr(click_exc, "Exit", typer.Exit)})
# click raises this UsageError for no_args_is_help; it is a request for help, not an error
_NO_ARGS_IS_HELP: type[Exception] = getattr(click_exc, "NoArgsIsHelpError", ())  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    args = sys.argv[1:] if argv is None else argv
    prog = "dcmcli"
    # Running one subcommand builds only that one: typer validates every
    # parameter of every command it builds, which costs start-up time.
    load_commands((args[0],) if args and args[0] in COMMANDS else tuple(COMMANDS))
    try:
        rv = app(args=args, prog_name=prog, standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:  # `dcmcli` alone: the help, as --help gives it, and exit 0 (as DCMTK)
        text = exc.format_message()  # rich help has printed itself to stdout already; plain help has not
        if text.strip():
            sys.stdout.write(text.rstrip("\n") + "\n")
        sys.exit(int(ExitCode.OK))
    except click_exc.UsageError as exc:
        cmd = exc.ctx.command_path if exc.ctx is not None else prog
        sys.stderr.write(f"{cmd}: error: {exc.format_message()}; see '{cmd} --help'\n")
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
