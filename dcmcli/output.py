"""Output for every command: results, log lines, progress.

- Results go to stdout: rich text for people, or JSON Lines with ``--json``
  (one object per line, each with an ``event`` key; see README).
- Log lines (warnings, errors, ``-v`` detail) go to stderr.
- Progress bars go to stderr, only when stderr is a TTY and not ``-q``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

LOG = logging.getLogger("dcmcli")


class Verbosity(IntEnum):
    QUIET = -1
    NORMAL = 0
    VERBOSE = 1
    DEBUG = 2
    TRACE = 3


LOG_LEVELS: dict[str, Verbosity] = {
    "fatal": Verbosity.QUIET,
    "error": Verbosity.QUIET,
    "warn": Verbosity.NORMAL,
    "info": Verbosity.VERBOSE,
    "debug": Verbosity.DEBUG,
    "trace": Verbosity.TRACE,
}


class ProgressTicker(Protocol):
    def advance(self, n: int = 1) -> None: ...


class _NoProgress:
    def advance(self, n: int = 1) -> None:
        return None


class _RichProgress:
    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress = progress
        self._task = task
        self._lock = threading.Lock()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._progress.advance(self._task, n)


def _raise_broken_pipe() -> None:
    raise BrokenPipeError("stdout closed by the reader")


def human_size(n: float) -> str:
    """Bytes for people: 812 B, 40.2 KB, 263.1 MB (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "as_dict"):
        return _jsonable(value.as_dict())
    return str(value)


class Output:
    """One object a command writes everything through."""

    def __init__(self, command: str, *, json_mode: bool = False, verbosity: Verbosity = Verbosity.NORMAL,
                 stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        self.command = command
        self.json_mode = json_mode
        self.verbosity = verbosity
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self._lock = threading.Lock()
        self._console: Console | None = None
        self._plain_stdout: bool | None = None  # stdout is a file or pipe (asked once)
        self._err_console: Console | None = None
        self._configure_logging()

    # rich is imported only when something is rendered with it: a -q or
    # --json run never pays for it.
    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self._stdout, highlight=False, soft_wrap=True)
            # rich answers a closed pipe (`| head`) with exit 1; let run_guarded end with 0 instead
            self._console.on_broken_pipe = _raise_broken_pipe  # type: ignore[method-assign]
        return self._console

    @property
    def err_console(self) -> Console:
        if self._err_console is None:
            from rich.console import Console

            self._err_console = Console(file=self._stderr, highlight=False, soft_wrap=True)
        return self._err_console

    @property
    def stdout_is_terminal(self) -> bool:
        isatty = getattr(self._stdout, "isatty", None)
        return bool(isatty and isatty())

    @property
    def stderr_is_terminal(self) -> bool:
        isatty = getattr(self._stderr, "isatty", None)
        return bool(isatty and isatty())

    # -- logging -----------------------------------------------------------
    def _configure_logging(self) -> None:
        level = {
            Verbosity.QUIET: logging.ERROR,
            Verbosity.NORMAL: logging.WARNING,
            Verbosity.VERBOSE: logging.INFO,
            Verbosity.DEBUG: logging.DEBUG,
            Verbosity.TRACE: logging.DEBUG,
        }[self.verbosity]
        handler: logging.Handler
        if self.stderr_is_terminal:
            from rich.logging import RichHandler

            handler = RichHandler(console=self.err_console, show_time=False, show_path=False,
                                  rich_tracebacks=self.verbosity >= Verbosity.DEBUG)
            handler.setFormatter(logging.Formatter("%(message)s"))
        else:
            handler = logging.StreamHandler(self._stderr)
            handler.setFormatter(logging.Formatter(f"{self.command}: %(levelname)s: %(message)s"))
        for old in list(LOG.handlers):
            LOG.removeHandler(old)
        LOG.addHandler(handler)
        LOG.propagate = False
        LOG.setLevel(level)

    # -- results -----------------------------------------------------------
    def emit(self, event: str, data: dict[str, Any] | Callable[[], dict[str, Any]], human: str | None = None, *,
             style: str | None = None, min_verbosity: Verbosity = Verbosity.NORMAL, plain: bool = False) -> None:
        """Write one result: a JSON line with ``--json``, else ``human`` (rich markup).

        ``data`` may be a function, called only with ``--json``.
        """
        with self._lock:
            if self.json_mode:
                import json  # only with --json (1.3 ms of every other start)

                payload = data() if callable(data) else data
                record = {"event": event, "command": self.command, **_jsonable(payload)}
                self._stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
                self._stdout.flush()
            elif human is not None and self.verbosity >= min_verbosity:
                if plain and style is None:
                    # text without markup (a line per received
                    # object): written as it is to a file or pipe, rich only
                    # on a terminal (where it wraps), its markup escaped.
                    if self._plain_stdout is None:
                        self._plain_stdout = not self.stdout_is_terminal
                    if self._plain_stdout:
                        self._stdout.write(human + "\n")
                        self._stdout.flush()  # a server's log is read as it grows
                        return
                    from rich.markup import escape

                    human = escape(human)
                self.console.print(human, style=style)

    def error_line(self, message: str) -> None:
        """The one-line error a failed command ends with (stderr)."""
        with self._lock:
            if self.stderr_is_terminal:
                self.err_console.print(f"[bold red]{self.command}: error:[/] {message}", highlight=False)
            else:
                self._stderr.write(f"{self.command}: error: {message}\n")
                self._stderr.flush()

    def error(self, message: str) -> None:
        LOG.error(message)

    def warn(self, message: str) -> None:
        LOG.warning(message)

    def info(self, message: str) -> None:
        LOG.info(message)

    def debug(self, message: str) -> None:
        LOG.debug(message)

    # -- progress ----------------------------------------------------------
    @contextlib.contextmanager
    def progress(self, total: int, description: str) -> Iterator[ProgressTicker]:
        """A progress bar on stderr, only for a TTY and never with ``-q``."""
        if not self.stderr_is_terminal or self.verbosity <= Verbosity.QUIET or total <= 1:
            yield _NoProgress()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=self.err_console, transient=True)
        with progress:
            task = progress.add_task(description, total=total)
            yield _RichProgress(progress, task)
