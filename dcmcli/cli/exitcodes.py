"""dcmcli exit-codes: the exit-code table every command shares."""

from __future__ import annotations

from dcmcli.cli.app import app
from dcmcli.cli.options import Common, dcmcli_command
from dcmcli.errors import EXIT_CODES


#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('The table as JSON Lines.',
     'dcmcli exit-codes --json'),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["exit-code"]


@dcmcli_command(app, "exit-codes", network="local")
def exit_codes(common: Common) -> int:
    """List the exit codes every dcmcli command uses."""
    for e in EXIT_CODES:
        common.out.emit("exit-code", {"code": int(e.code), "name": e.name, "meaning": e.meaning},
                        f"{int(e.code):>3}  {e.name:<22} {e.meaning}")
    return 0
