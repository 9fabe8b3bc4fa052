"""dcmcli doctor: check the installation (packages, codecs, the syntaxes they decode and encode, peers)."""

from __future__ import annotations

from dcmcli.cli.app import app
from dcmcli.cli.options import Common, dcmcli_command
from dcmcli.errors import ExitCode

#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ("Is everything dcmcli needs installed? (exit 24 when a codec or package is missing)", "dcmcli doctor"),
    ("Only what is missing, for a CI log.", "dcmcli doctor --json | jq -c 'select(.ok == false)'"),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["check", "summary"]


@dcmcli_command(app, "doctor", network="local")
def doctor(common: Common) -> int:
    """Check this installation: every package dcmcli uses (with its version), for each transfer syntax
    the codec plugins that decode and encode it (and what would add a missing one), and the optional
    peers of the interop tests and benchmarks (DCMTK, GDCM, Orthanc, OpenSSL) on the PATH.

    Exit 0 when every required package is installed and every syntax can be decoded and encoded; 24
    (cannot-convert) otherwise. Missing optional peers are reported and change nothing.
    """
    from dcmcli.conformance.installation import checks

    out = common.out
    results = checks()
    for c in results:
        mark = "[green]ok[/]     " if c.ok else ("[red]MISSING[/]" if c.required else "[yellow]absent[/] ")
        out.emit("check", c.as_dict(), f"{mark} {c.area:<7} {c.name}: {c.detail}", plain=False)
    problems = [c for c in results if not c.ok]
    required = [c for c in problems if c.required]
    code = ExitCode.CANNOT_CONVERT if required else ExitCode.OK
    human = (f"{len(results)} checks: " + ("everything dcmcli needs is installed" if not required else
             f"{len(required)} required missing ({', '.join(c.name for c in required)})")
             + (f"; {len(problems) - len(required)} optional absent" if len(problems) > len(required) else ""))
    out.emit("summary", {"checks": len(results), "problems": len(problems), "required_problems": len(required),
                         "exit_code": int(code)}, human)
    return int(code)
