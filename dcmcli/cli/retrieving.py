"""What movescu and getscu share on the command line: the progress bar fed
by pending responses, the events, and the final line with the four counts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from dcmcli.errors import ExitCode
from dcmcli.net.services.retrieve import Progress, RetrieveOutcome
from dcmcli.output import Output
from dcmcli.status import Category


@contextlib.contextmanager
def progress_bar(out: Output, description: str) -> Iterator[Any]:
    """A bar on a TTY's stderr, its total learned from the first pending
    response (remaining + done); a ``progress`` event per response."""
    state: dict[str, Any] = {"bar": None, "task": None}
    ctx: contextlib.ExitStack = contextlib.ExitStack()

    def on_progress(p: Progress) -> None:
        out.emit("progress", p.as_dict, None)
        done = (p.completed or 0) + (p.failed or 0) + (p.warning or 0)
        if p.status.category == Category.PENDING and out.verbosity > 0 and not out.stderr_is_terminal:
            out.info(f"{p.status.meaning}: {p.remaining if p.remaining is not None else '?'} remaining, "
                     f"{p.completed or 0} completed, {p.failed or 0} failed, {p.warning or 0} warning")
        if not out.stderr_is_terminal or out.verbosity < 0 or out.json_mode:
            return
        if state["bar"] is None and p.remaining is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.fields[detail]}"), console=out.err_console, transient=True)
            ctx.enter_context(bar)
            state["bar"], state["task"] = bar, bar.add_task(description, total=done + p.remaining, detail="")
        if state["bar"] is not None:
            detail = f"{p.failed} failed" if p.failed else ""
            state["bar"].update(state["task"], completed=done,
                                total=done + (p.remaining or 0) if p.remaining is not None else None, detail=detail)

    with ctx:
        yield on_progress


def finish(out: Output, outcome: RetrieveOutcome, what: str, *, receiving: bool, warnings_as_errors: bool) -> int:
    """The summary event and line; the exit code by RetrieveOutcome.exit_code's rule."""
    code = outcome.exit_code(warnings_as_errors, receiving=receiving)
    summary = {**outcome.as_dict(), "exit_code": int(code)}
    counts = (f"{outcome.completed} completed, {outcome.failed} failed, {outcome.warning} warning"
              + (f", {outcome.remaining} remaining" if outcome.remaining else ""))
    if receiving:
        counts += f"; {outcome.received} received" + (f", {outcome.refused} refused by us" if outcome.refused else "")
        if outcome.missing:
            counts += f", {outcome.missing} never arrived"
    status = f"{outcome.status.meaning} ({outcome.status.hex})"
    if outcome.status.category == Category.FAILURE:
        out.emit("summary", summary, None)
        comment = f": {outcome.error_comment}" if outcome.error_comment else ""
        out.error_line(f"{what} failed: {status}{comment}; {counts}" + (f"; {outcome.hint}" if outcome.hint else ""))
        _failed_uids(out, outcome)
        return int(code)
    if outcome.completed + outcome.failed + outcome.warning == 0 and not outcome.cancelled and not outcome.received:
        line = f"{what}: nothing to retrieve (no instance matched); {status}"
    else:
        line = f"{what}: {counts} in {outcome.seconds:.2f} s; {status}"
        if outcome.cancelled:
            line += ", cancelled as asked"
    out.emit("summary", summary, line if out.verbosity >= 0 else None, plain=True)  # no markup: no rich off a TTY
    _failed_uids(out, outcome)
    if code == ExitCode.OPERATION_FAILED:
        why = []
        if outcome.failed:
            why.append(f"{outcome.failed} sub-operation{'s' if outcome.failed != 1 else ''} failed")
        if outcome.refused:
            why.append(f"we refused {outcome.refused} object{'s' if outcome.refused != 1 else ''}")
        if receiving and outcome.missing:
            why.append(f"{outcome.missing} object{'s' if outcome.missing != 1 else ''} the peer counts as sent "
                       f"never arrived")
        hint = ("; the peer may not be able to send them in the syntaxes offered (-v shows the contexts; "
                "see its log)" if outcome.failed > outcome.refused or outcome.missing else "")
        out.error_line(f"{what} incomplete: {', '.join(why)}{hint}")
    elif code == ExitCode.OPERATION_WARNING:
        out.error_line(f"{what} completed with warnings (--warnings-as-errors)")
    return int(code)


def skip_pixel_imports_unless_converting(common: Any) -> None:
    """movescu and getscu decode no pixels unless --store-as converts."""
    if common.writer is not None and common.writer.store_as is None:
        from dcmcli.dataset import skip_pixel_imports

        skip_pixel_imports()


def identifiers_from_keys(common: Any, target: Any, model: Any, files: list[str]) -> tuple[Any, list[Any]]:
    """The identifier from the query files and -k keys, and what the
    retrieve sends: itself, or (without the level's unique key) one per
    parent of the matches a C-FIND finds first."""
    from pathlib import Path

    from dcmcli.cli.serving import log_printer
    from dcmcli.dataset import read_dataset_file
    from dcmcli.net.services.query import build_query
    from dcmcli.net.services.retrieve import resolve_identifiers

    out = common.out
    bases = [ds for f in files for ds in read_dataset_file(Path(f))]
    query = build_query(model, common.query.level, common.query.keys, bases, default_keys=False)
    for note in query.notes:
        out.warn(note)
    identifiers = resolve_identifiers(common.settings, target, model, query.identifier, log_printer(out))
    return query.identifier, identifiers


def nothing_to_retrieve(out: Output, service: str) -> int:
    """No instance matched: the same summary as any retrieve (one schema), exit 0."""
    from dcmcli.status import describe

    return finish(out, RetrieveOutcome(service, describe(0x0000, service)), service, receiving=False,
                  warnings_as_errors=False)


def _failed_uids(out: Output, outcome: RetrieveOutcome) -> None:
    if outcome.failed_uids and out.verbosity >= 0:
        shown = outcome.failed_uids[:20]
        out.warn(f"failed SOP instances: {', '.join(shown)}"
                 + (f" and {len(outcome.failed_uids) - 20} more" if len(outcome.failed_uids) > 20 else ""))
