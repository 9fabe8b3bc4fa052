"""Generate dcmcli's man pages, static shell completions and conformance statement from the code.

    python -m dcmcli.cli.gendocs            # (re)write man/, completions/ and CONFORMANCE.md
    python -m dcmcli.cli.gendocs --check    # exit 1 and list the files that are stale

Everything is read from the click tree that typer builds
(``typer.main.get_command(app)``): subcommands, their help, every option with
all its spellings, metavars, defaults, choices and help panels, and the exit
code table ``dcmcli.errors.EXIT_CODES``. Nothing about individual options is
written here, so after a CLI change the generator is simply re-run
(``tests/test_docs.py`` fails until it is).

Outputs (paths relative to the repository root):

* ``man/dcmcli.1`` and one ``man/dcmcli-<command>.1`` per subcommand, in
  plain roff using the man(7) macros; a group of actions (``dcmcli wado
  query``) has a page for the group and one per action, ``dcmcli-wado-query.1``;
* ``completions/dcmcli.bash``, ``completions/_dcmcli`` (zsh) and
  ``completions/dcmcli.fish``: static scripts that need neither Python nor
  click's ``_DCMCLI_COMPLETE`` mechanism at completion time;
* ``CONFORMANCE.md``: the DICOM Conformance Statement, ``dcmcli conformance``'s
  Markdown (``dcmcli.conformance.statement``, from the AEs the service modules
  declare and the registries).

The output is deterministic: no dates, only ``dcmcli.__version__``.

Works with the click that typer vendors (typer >= 0.22: parameters carry a
``type_descriptor``) as well as with plain click types (older typer).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Iterable, Sequence
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, get_args

import typer

from dcmcli import __version__
from dcmcli.errors import EXIT_CODES
from dcmcli.records import dataclass

PROG = "dcmcli"
#: The repository root (this file is dcmcli/cli/gendocs.py).
ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python -m dcmcli.cli.gendocs"
MAN_DIR = "man"
COMPLETIONS_DIR = "completions"
CONFORMANCE_FILE = "CONFORMANCE.md"
BASH_FILE = f"{COMPLETIONS_DIR}/{PROG}.bash"
ZSH_FILE = f"{COMPLETIONS_DIR}/_{PROG}"
FISH_FILE = f"{COMPLETIONS_DIR}/{PROG}.fish"


# --------------------------------------------------------------------------
# A plain description of the command tree, read from click's objects
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class Opt:
    """One option, everything the generators need."""

    opts: tuple[str, ...]  # primary spellings, e.g. ("-aet", "--aetitle")
    secondary: tuple[str, ...]  # the "off" spellings of a --x/--no-x flag
    takes_value: bool
    metavar: str  # "" for flags
    help: str
    default: str | None
    range: str | None
    required: bool
    multiple: bool
    choices: tuple[str, ...]
    path: str | None  # None, "file" (files and directories) or "dir"
    panel: str | None
    #: Values offered by the completions (the choices, or every transfer syntax name for a SYNTAX).
    completions: tuple[str, ...] = ()

    @property
    def spellings(self) -> tuple[str, ...]:
        return self.opts + self.secondary

    @property
    def dash_spellings(self) -> tuple[str, ...]:
        return tuple(s for s in self.spellings if s.startswith("-"))

    @property
    def plus_spellings(self) -> tuple[str, ...]:
        """DCMTK's +option spellings (+te, +U8, +P)."""
        return tuple(s for s in self.spellings if s.startswith("+"))


@dataclass(frozen=True)
class Arg:
    """One positional argument."""

    metavar: str  # as shown in the synopsis: brackets if optional, "..." if variadic
    help: str
    required: bool
    variadic: bool
    choices: tuple[str, ...]
    path: str | None


@dataclass(frozen=True)
class Cmd:
    name: str  # "dcmcli" for the group, else the subcommand name
    help: str
    short_help: str
    epilog: str
    options: tuple[Opt, ...]
    arguments: tuple[Arg, ...]
    #: (what it does, command line) pairs from the command module's EXAMPLES.
    examples: tuple[tuple[str, str], ...] = ()
    #: JSON event names from the command module's EVENTS.
    events: tuple[str, ...] = ()
    #: The words after "dcmcli" ("wado query" for an action of a group); empty: ``name``.
    path: str = ""
    #: The group's name, for an action of a group ("wado"), else None.
    parent: str | None = None
    #: A group's actions (described as commands of their own).
    actions: tuple[Cmd, ...] = ()

    @property
    def command(self) -> str:
        """The command as typed and as events name it: "storescu", "wado query"."""
        return self.path or self.name


def _context(cmd: Any, name: str, parent: Any | None) -> Any:
    """A click context for ``cmd`` (so that e.g. help_option_names are inherited)."""
    return cmd.context_class(cmd, info_name=name, parent=parent, **(cmd.context_settings or {}))


def _clean(text: str | None) -> str:
    """Help text as click shows it: dedented, cut at ``\\f``."""
    if not text:
        return ""
    return inspect.cleandoc(text.split("\f")[0]).strip()


def _first_paragraph(text: str) -> str:
    para = re.split(r"\n\s*\n", text.strip(), maxsplit=1)[0] if text.strip() else ""
    return " ".join(line.strip() for line in para.replace("\b", "").splitlines() if line.strip())


def _element_annotation(desc: Any) -> Any:
    ann = desc.annotation
    if getattr(desc, "is_list", False) or getattr(desc, "is_tuple", False):
        args = [a for a in get_args(ann) if a is not Ellipsis]
        if args:
            ann = args[0]
    return ann


def _choices(p: Any) -> tuple[str, ...]:
    desc = getattr(p, "type_descriptor", None)
    if desc is not None:
        raw = desc.choices if desc.is_choice else None
    else:  # plain click: click.Choice
        raw = getattr(getattr(p, "type", None), "choices", None)
    return tuple(str(c.value) if isinstance(c, Enum) else str(c) for c in (raw or ()))


_TYPE_NAMES = {int: "INTEGER", float: "FLOAT", str: "TEXT", bool: "BOOLEAN"}


def _type_name(p: Any) -> str:
    """click-style placeholder for an option without a metavar (INTEGER, TEXT, PATH...)."""
    desc = getattr(p, "type_descriptor", None)
    if desc is not None:
        if desc.is_file:
            return "FILENAME"
        if desc.is_path:
            return {"file": "FILE", "dir": "DIRECTORY"}.get(desc.path_type, "PATH")
        ann = _element_annotation(desc)
        if ann in _TYPE_NAMES:
            return _TYPE_NAMES[ann]
        if isinstance(ann, type) and issubclass(ann, PurePath):
            return "PATH"
        return ann.__name__.upper() if isinstance(ann, type) else "VALUE"
    name = str(getattr(getattr(p, "type", None), "name", "value"))
    return name.replace(" range", "").upper()


def _path_kind(p: Any, metavar: str | None) -> str | None:
    """How to complete the value: "file" (files and directories), "dir", or None.

    Path and File types decide first; a Path that allows both, or a plain
    string, is completed as a directory or a file when its explicit metavar
    says DIR or FILE/PATH (e.g. ``-od DIR``, ``FILE-OR-DIR...``).
    """
    kind: str | None = None
    desc = getattr(p, "type_descriptor", None)
    if desc is not None:
        ann = _element_annotation(desc)
        if desc.is_file:
            return "file"
        if desc.is_path or (isinstance(ann, type) and issubclass(ann, PurePath)):
            info = desc.parameter_info
            file_ok, dir_ok = getattr(info, "file_okay", True), getattr(info, "dir_okay", True)
            if dir_ok and not file_ok:
                return "dir"
            if file_ok and not dir_ok:
                return "file"
            kind = "file"
    else:
        t = getattr(p, "type", None)
        if type(t).__name__ == "File":
            return "file"
        if type(t).__name__ == "Path" and hasattr(t, "dir_okay"):
            if t.dir_okay and not t.file_okay:
                return "dir"
            if t.file_okay and not t.dir_okay:
                return "file"
            kind = "file"
    words = set(re.findall(r"[A-Z]+", (metavar or "").upper()))
    if words & {"FILE", "FILES", "FILENAME", "PATH", "PATHS"}:
        return "file"
    if words & {"DIR", "DIRS", "DIRECTORY"}:
        return "dir"
    return kind


def _range(p: Any) -> str | None:
    lo, hi = getattr(p, "min", None), getattr(p, "max", None)
    if lo is None and hi is None:
        t = getattr(p, "type", None)
        lo, hi = getattr(t, "min", None), getattr(t, "max", None)
    if lo is not None and hi is not None:
        return f"{lo} to {hi}"
    if lo is not None:
        return f"at least {lo}"
    if hi is not None:
        return f"at most {hi}"
    return None


def _default(p: Any) -> str | None:
    """The default worth printing: not None, False, empty or computed."""
    show = getattr(p, "show_default", True)
    if show is False:
        return None
    if isinstance(show, str):
        return show
    value = p.default
    if value is None or value is False or callable(value):
        return None
    if getattr(p, "is_flag", False) and getattr(p, "secondary_opts", None) and isinstance(value, bool):
        return (p.opts if value else p.secondary_opts)[-1]
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v.value if isinstance(v, Enum) else v) for v in value)
    elif isinstance(value, Enum):
        value = value.value
    text = str(value)
    return text if text else None


def _spellings(names: Sequence[str], from_set: bool) -> tuple[str, ...]:
    """Single-dash spellings first. click builds the help option's names from a
    set, so their order changes with the hash seed: sort those completely."""
    if from_set:
        return tuple(sorted(names, key=lambda s: (s.startswith("--"), s)))
    return tuple(sorted(names, key=lambda s: s.startswith("--")))


def _option(p: Any, is_help: bool = False) -> Opt:
    counted = bool(getattr(p, "count", False))
    takes_value = not (getattr(p, "is_flag", False) or counted)
    choices = _choices(p)
    if not takes_value:
        metavar = ""
    elif p.metavar:
        metavar = p.metavar
    elif choices:
        metavar = "|".join(choices)
    else:
        metavar = " ".join([_type_name(p)] * max(1, p.nargs))
    return Opt(
        opts=_spellings(p.opts, is_help), secondary=_spellings(p.secondary_opts, is_help),
        takes_value=takes_value, metavar=metavar,
        help=_clean(getattr(p, "help", None)),
        # a count (-vvv) starts at 0 and has no upper limit unless one is given
        default=None if counted and not p.default else _default(p),
        range=None if counted and getattr(p, "max", None) is None else _range(p),
        required=bool(p.required), multiple=bool(p.multiple), choices=choices if takes_value else (),
        path=_path_kind(p, p.metavar) if takes_value else None,
        panel=getattr(p, "rich_help_panel", None) or None,
        completions=(choices or (_syntax_names() if metavar == "SYNTAX" else ())) if takes_value else ())


def _syntax_names() -> tuple[str, ...]:
    from dcmcli.uids import SHORT_NAMES

    return tuple(sorted(SHORT_NAMES))


def _argument(p: Any) -> Arg:
    metavar = p.metavar or (p.name or "ARG").upper()
    variadic = p.nargs == -1
    if variadic and not metavar.endswith("..."):
        metavar += "..."
    if not p.required and not metavar.startswith("["):
        metavar = f"[{metavar}]"
    return Arg(metavar=metavar, help=_clean(getattr(p, "help", None)), required=bool(p.required),
               variadic=variadic, choices=_choices(p), path=_path_kind(p, p.metavar))


def _describe(cmd: Any, name: str, ctx: Any, action: str | None = None, parent: str | None = None) -> Cmd:
    options: list[Opt] = []
    arguments: list[Arg] = []
    help_option = cmd.get_help_option(ctx)
    for p in cmd.get_params(ctx):  # includes the help option
        if getattr(p, "hidden", False):
            continue
        if p.param_type_name == "argument":
            arguments.append(_argument(p))
        elif p.param_type_name == "option":
            options.append(_option(p, is_help=p is help_option))
    help_text = _clean(cmd.help)
    short = _clean(cmd.short_help) or _first_paragraph(help_text)
    module = sys.modules.get(getattr(getattr(cmd, "callback", None), "__module__", "") or "")
    examples = getattr(module, "EXAMPLES", ())
    events = getattr(module, "EVENTS", ())
    if action is not None:  # an action of a group: its own lists, when its module has them
        examples = getattr(module, "EXAMPLES_OF", {}).get(action, examples)
        events = getattr(module, "EVENTS_OF", {}).get(action, events)
    elif hasattr(cmd, "list_commands"):  # the group itself: the events every action names alike
        events = getattr(module, "GROUP_EVENTS", events)
    return Cmd(name=name, help=help_text, short_help=short, epilog=_clean(getattr(cmd, "epilog", None)),
               options=tuple(options), arguments=tuple(arguments), examples=tuple(examples), events=tuple(events),
               path=f"{parent} {action}" if parent and action else "", parent=parent)


def load(app: typer.Typer | None = None) -> tuple[Cmd, tuple[Cmd, ...]]:
    """Walk the typer app: the group, and its visible subcommands sorted by name."""
    if app is None:
        from dcmcli.cli.app import load_commands

        app = load_commands()
    group = typer.main.get_command(app)
    if not hasattr(group, "list_commands"):
        raise TypeError(f"{PROG}: expected a typer app with subcommands, got a single command")
    ctx = _context(group, PROG, None)
    root = _describe(group, PROG, ctx)
    subs = []
    for name in sorted(group.list_commands(ctx)):
        cmd = group.get_command(ctx, name)
        if cmd is None or getattr(cmd, "hidden", False):
            continue
        sub_ctx = _context(cmd, name, ctx)
        described = _describe(cmd, name, sub_ctx)
        actions: list[Cmd] = []
        if hasattr(cmd, "list_commands"):  # a group (wado): a page of its own and one per action
            for action in sorted(cmd.list_commands(sub_ctx)):
                child = cmd.get_command(sub_ctx, action)
                if child is None or getattr(child, "hidden", False):
                    continue
                actions.append(_describe(child, f"{name}-{action}", _context(child, action, sub_ctx), action, name))
            from dataclasses import replace

            described = replace(described, actions=tuple(actions))
        subs.append(described)
        subs += actions
    return root, tuple(subs)


# --------------------------------------------------------------------------
# Man pages (roff, man(7) macros)
# --------------------------------------------------------------------------

def _esc(text: str) -> str:
    """Escape text for roff: backslashes, and every hyphen as \\- (so options copy-paste)."""
    return text.replace("\\", "\\e").replace("-", "\\-")


def _text(text: str) -> str:
    """One escaped text line; a leading . or ' must not be read as a request."""
    line = _esc(text.strip())
    return "\\&" + line if line.startswith((".", "'")) else line


def _quoted(text: str) -> str:
    """An escaped, double-quoted macro argument."""
    return '"' + _esc(text).replace('"', "\\(dq") + '"'


_TOKEN = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]|\.(?=[A-Za-z0-9_]))*"


def _metavar_roff(metavar: str) -> str:
    """Placeholders (UPPER-CASE words) in italics, literal values in bold, brackets etc. roman."""
    out = []
    for piece in re.split(f"({_TOKEN})", metavar):
        if re.fullmatch(_TOKEN, piece):
            font = "I" if piece.upper() == piece and re.search(r"[A-Z]", piece) else "B"
            out.append(f"\\f{font}{_esc(piece)}\\fR")
        elif piece:
            out.append(_esc(piece))
    return "".join(out)


def _paragraphs(text: str) -> list[str]:
    """Help text to roff: blank lines separate paragraphs; click's \\b keeps lines as they are."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        if not para.strip():
            continue
        if out:
            out.append(".PP")
        if para.lstrip(" ").startswith("\b"):
            out.append(".nf")
            for line in para.lstrip(" ")[1:].strip("\n").splitlines():
                line = _esc(line.rstrip())
                out.append("\\&" + line if line.startswith((".", "'")) else line)
            out.append(".fi")
        else:
            out.append(_text(" ".join(line.strip() for line in para.splitlines() if line.strip())))
    return out


def _name_line(text: str) -> str:
    """The NAME description: no final period, lower-case first letter unless an acronym."""
    text = text.rstrip().rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    return text


def _th(title: str) -> list[str]:
    return [
        f'.\\" Generated by {_esc(REGENERATE)} from the typer app; do not edit.',
        f".TH {_quoted(title.upper())} 1 \"\" {_quoted(f'{PROG} {__version__}')} {_quoted(f'{PROG} manual')}",
        ".nh",  # no hyphenation: option names and UIDs must stay whole
        ".ad l",  # ragged right: no stretched spaces around long tokens
    ]


def _option_items(options: Iterable[Opt]) -> list[str]:
    out: list[str] = []
    for o in options:
        tag = ", ".join(f"\\fB{_esc(s)}\\fR" for s in o.spellings)
        if o.takes_value:
            tag += " " + _metavar_roff(o.metavar)
        out += [".TP", tag]
        out += _paragraphs(o.help) if o.help else []
        extras = []  # already escaped
        if o.required:
            extras.append("required")
        if o.choices and o.metavar != "|".join(o.choices):
            extras.append("one of " + ", ".join(f"\\fB{_esc(c)}\\fR" for c in o.choices))
        if o.range:
            extras.append(f"range: {_esc(o.range)}")
        if o.default is not None:
            extras.append(f"default: \\fB{_esc(o.default)}\\fR")
        if extras:
            if o.help:
                out.append(".br")
            text = "; ".join(extras)
            out.append(text[0].upper() + text[1:])  # starts with a letter: never a request
    return out


def _options_section(options: Sequence[Opt]) -> list[str]:
    if not options:
        return []
    out = [".SH OPTIONS"]
    out += _option_items(o for o in options if o.panel is None)
    panels: list[str] = []
    for o in options:
        if o.panel is not None and o.panel not in panels:
            panels.append(o.panel)
    for panel in panels:
        out += [f".SS {_quoted(panel)}"]
        out += _option_items(o for o in options if o.panel == panel)
    return out


def _exit_status() -> list[str]:
    out = [".SH EXIT STATUS", _text(f"Every {PROG} command exits with one of these codes:")]
    for e in EXIT_CODES:
        out += [".TP 5n", f"\\fB{int(e.code)}\\fR", f"\\fI{_esc(e.name)}\\fR: " + _esc(e.meaning)]
    return out


def man_page(cmd: Cmd) -> str:
    """The man page of one subcommand."""
    page = f"{PROG}-{cmd.name}"
    out = _th(page)
    out += [".SH NAME", f"{_esc(page)} \\- {_esc(_name_line(cmd.short_help))}"]
    synopsis = "\\fIACTION\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]..." if cmd.actions else "[\\fIOPTIONS\\fR]"
    if cmd.arguments:
        synopsis += " " + " ".join(_metavar_roff(a.metavar) for a in cmd.arguments)
    out += [".SH SYNOPSIS", f".B {_esc(PROG)} {_esc(cmd.command)}", synopsis]
    if cmd.help:
        out += [".SH DESCRIPTION"] + _paragraphs(cmd.help)
    if cmd.actions:
        out.append(".SH ACTIONS")
        for a in cmd.actions:
            out += [".TP", f"\\fB{_esc(a.path.split()[-1])}\\fR",
                    _text(a.short_help) + f" See {PROG}-{a.name}(1)."]
    if cmd.arguments:
        out.append(".SH ARGUMENTS")
        for a in cmd.arguments:
            out += [".TP", _metavar_roff(a.metavar)] + (_paragraphs(a.help) if a.help else [])
    out += _options_section(cmd.options)
    if cmd.epilog:
        out += [".SH NOTES"] + _paragraphs(cmd.epilog)
    if cmd.examples:
        out.append(".SH EXAMPLES")
        for what, line in cmd.examples:
            out += [".PP", _text(what), ".PP", ".RS 4", ".nf", f"\\f(CR{_esc(line)}\\fR", ".fi", ".RE"]
    if cmd.events:
        out += [".SH JSON EVENTS", _text(f"With --json, {PROG} {cmd.command} prints one JSON object per line; each has "
                                         f"event and command, and the fields below (the schema: "
                                         f"dcmcli/events.schema.json).")]
        for event in cmd.events:
            out += [".TP", f"\\fB{_esc(event)}\\fR", _esc(", ".join(event_fields(event, cmd.command)))]
    out += _exit_status()
    related = [f"{PROG}-{a.name}" for a in cmd.actions] + ([f"{PROG}-{cmd.parent}"] if cmd.parent else [])
    refs = [f".BR {_esc(PROG)} (1)"] + [f".BR {_esc(r)} (1)" for r in related]
    out += [".SH SEE ALSO"] + [r + ("," if i < len(refs) - 1 else "") for i, r in enumerate(refs)]
    return "\n".join(out) + "\n"


def event_fields(event: str, command: str) -> list[str]:
    """The fields of an event (beyond event and command), from the schema."""
    import json

    schema = json.loads((Path(__file__).resolve().parents[1] / "events.schema.json").read_text(encoding="utf-8"))
    ref = None
    for rule in schema["allOf"]:
        cond = rule["if"]["properties"]
        if cond["event"]["const"] == event and cond.get("command", {}).get("const", command) == command:
            ref = rule["then"]["$ref"].rsplit("/", 1)[1]
            break
    if ref is None:
        raise KeyError(f"event {event!r} of {command} is not in events.schema.json")
    definition = schema["$defs"][ref]
    variants = definition.get("oneOf", [definition])
    names: list[str] = []
    for v in variants:
        names += [n for n in v["properties"] if n not in ("event", "command") and n not in names]
    return names


def overview_page(root: Cmd, subs: Sequence[Cmd]) -> str:
    """man/dcmcli.1. The group's epilog is left out: it is the exit-code table,
    which EXIT STATUS gives from EXIT_CODES."""
    out = _th(PROG)
    out += [".SH NAME", f"{_esc(PROG)} \\- {_esc(_name_line(root.short_help))}"]
    out += [".SH SYNOPSIS", f".B {_esc(PROG)}", "[\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]..."]
    if root.help:
        out += [".SH DESCRIPTION"] + _paragraphs(root.help)
        out += [".PP", _text(f"Each command has its own page, {PROG}-COMMAND(1), "
                             f"and its own help: {PROG} COMMAND --help.")]
    out += _options_section(root.options)
    out.append(".SH COMMANDS")
    for c in subs:
        out += [".TP", f"\\fB{_esc(c.command)}\\fR", _text(c.short_help)]
    out += _exit_status()
    out.append(".SH SEE ALSO")
    refs = [f".BR {_esc(PROG)}\\-{_esc(c.name)} (1)" for c in subs]
    out += [r + ("," if i < len(refs) - 1 else "") for i, r in enumerate(refs)]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# Shell completions
# --------------------------------------------------------------------------

_SAFE_WORD = re.compile(r"[A-Za-z0-9_.,:+@%/=-]+")


def _words(values: Iterable[str]) -> list[str]:
    """Values that can go into a completion word list unquoted (others are left out)."""
    return [v for v in values if _SAFE_WORD.fullmatch(v)]


def _one_line(text: str) -> str:
    return " ".join(_first_paragraph(text).split())


def _header(shell: str) -> list[str]:
    return [f"# {shell} completion for {PROG} {__version__}",
            f"# Generated by {REGENERATE} from the typer app; do not edit.",
            "# Static: completing needs neither Python nor dcmcli itself."]


def bash_completion(root: Cmd, subs: Sequence[Cmd]) -> str:
    def words(ws: Iterable[str]) -> str:
        return " ".join(_words(ws))

    def spellings(c: Cmd) -> str:
        return words(s for o in c.options for s in o.spellings)

    out = _header("bash") + [
        f"# Install: copy to /usr/share/bash-completion/completions/{PROG}, or source it.",
        "",
        f"_{PROG}_files()",
        "{",
        "    # $1: -f (files and directories) or -d (directories); $2: the word to complete",
        "    local IFS=$'\\n'",
        "    compopt -o filenames 2>/dev/null",
        '    COMPREPLY=( $(compgen "$1" -- "$2") )',
        "}",
        "",
        f"_{PROG}()",
        "{",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" sub="" i',
        '    (( COMP_CWORD > 0 )) && prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    # --option=value: "=" is in COMP_WORDBREAKS, so bash splits it into three words',
        '    if [[ $cur == "=" ]]; then',
        '        cur=""',
        '    elif [[ $prev == "=" ]] && (( COMP_CWORD > 1 )); then',
        '        prev="${COMP_WORDS[COMP_CWORD-2]}"',
        "    fi",
        "    # the subcommand is the first word that is not an option",
        "    for (( i = 1; i < COMP_CWORD; i++ )); do",
        '        if [[ ${COMP_WORDS[i]} != [-+]* ]]; then',
        '            sub="${COMP_WORDS[i]}"',
        "            break",
        "        fi",
        "    done",
        "    COMPREPLY=()",
        '    case "$sub" in',
        '        "")',
        "            if [[ $cur == -* ]]; then",
        f'                COMPREPLY=( $(compgen -W "{spellings(root)}" -- "$cur") )',
        "            else",
        f'                COMPREPLY=( $(compgen -W "{words(c.name for c in subs if not c.parent)}" -- "$cur") )',
        "            fi",
        "            ;;",
    ]
    for c in subs:
        if c.parent:
            continue  # an action: inside its group's branch
        out.append(f"        {c.name})")
        if c.actions:
            out += [
                '            local action="" j',
                "            for (( j = i + 1; j < COMP_CWORD; j++ )); do",
                '                if [[ ${COMP_WORDS[j]} != [-+]* ]]; then',
                '                    action="${COMP_WORDS[j]}"',
                "                    break",
                "                fi",
                "            done",
                '            case "$action" in',
                '                "")',
                "                    if [[ $cur == -* ]]; then",
                f'                        COMPREPLY=( $(compgen -W "{spellings(c)}" -- "$cur") )',
                "                    else",
                f'                        COMPREPLY=( $(compgen -W "{words(a.path.split()[-1] for a in c.actions)}"'
                ' -- "$cur") )',
                "                    fi",
                "                    ;;",
            ]
            for a in c.actions:
                out.append(f"                {a.path.split()[-1]})")
                out += ["        " + line for line in _bash_body(a, words, spellings)]
            out += ["            esac", "            ;;"]
            continue
        out += _bash_body(c, words, spellings)
    out += [
        "    esac",
        "    return 0",
        "}",
        "",
        f"complete -F _{PROG} {PROG}",
    ]
    return "\n".join(out) + "\n"


def _bash_body(c: Cmd, words: Any, spellings: Any) -> list[str]:
    """The bash case branch of one command (its options' values, then options or arguments)."""
    out: list[str] = []
    value_opts = [o for o in c.options if o.takes_value]
    if value_opts:
        out.append('            case "$prev" in')
        for o in value_opts:
            if o.completions:
                out.append(f"                {'|'.join(o.spellings)})")
                out.append(f'                    COMPREPLY=( $(compgen -W "{words(o.completions)}" -- "$cur") )')
                out.append("                    return 0 ;;")
            elif o.path:
                out.append(f"                {'|'.join(o.spellings)})")
                out.append(f'                    _{PROG}_files {"-d" if o.path == "dir" else "-f"} "$cur"')
                out.append("                    return 0 ;;")
        plain = [s for o in value_opts if not o.completions and not o.path for s in o.spellings]
        if plain:  # a value nothing is known about: offer nothing (not the options)
            out.append(f"                {'|'.join(plain)})")
            out.append("                    return 0 ;;")
        out.append("            esac")
    out += [
        "            if [[ $cur == [-+]* ]]; then",
        f'                COMPREPLY=( $(compgen -W "{spellings(c)}" -- "$cur") )',
    ]
    kinds = {a.path for a in c.arguments if a.path}
    choices = [ch for a in c.arguments for ch in a.choices]
    if kinds:
        out += ["            else", f'                _{PROG}_files {"-f" if "file" in kinds else "-d"} "$cur"']
    elif choices:
        out += ["            else", f'                COMPREPLY=( $(compgen -W "{words(choices)}" -- "$cur") )']
    out += ["            fi", "            ;;"]
    return out


def _zq(text: str) -> str:
    """zsh single quotes."""
    return "'" + text.replace("'", "'\\''") + "'"


def _z_descr(text: str) -> str:
    """An _arguments [explanation]: backslash-escape the brackets."""
    return _one_line(text).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def _z_msg(text: str) -> str:
    """An _arguments message: backslash-escape colons."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _z_action(choices: Sequence[str], path: str | None) -> str:
    if choices:
        return "(" + " ".join(_words(choices)) + ")"
    if path == "dir":
        return "_files -/"
    if path == "file":
        return "_files"
    return " "  # nothing to complete; just show the message


def _z_option_specs(o: Opt) -> list[str]:
    exclusive = "*" if o.multiple else "(" + " ".join(o.spellings) + ")"
    specs = []
    for s in o.spellings:
        name = s
        if o.takes_value:
            # -j4 or -j 4; --opt=value or --opt value (also -aet=VALUE: click treats it as long)
            name += "+" if re.fullmatch(r"-[^-]", s) else "="
        spec = f"{exclusive}{name}[{_z_descr(o.help)}]"
        if o.takes_value:
            spec += f":{_z_msg(o.metavar)}:{_z_action(o.completions, o.path)}"
        specs.append(_zq(spec))
    return specs


def _z_argument_specs(args: Sequence[Arg]) -> list[str]:
    specs = []
    for i, a in enumerate(args, start=1):
        if a.variadic:
            specs.append(_zq(f"*:{_z_msg(a.metavar)}:{_z_action(a.choices, a.path)}"))
            break
        colon = ":" if a.required else "::"
        specs.append(_zq(f"{i}{colon}{_z_msg(a.metavar)}:{_z_action(a.choices, a.path)}"))
    return specs


def zsh_completion(root: Cmd, subs: Sequence[Cmd]) -> str:
    def arguments(flags: str, specs: list[str], indent: str) -> list[str]:
        lines = [f"{indent}_arguments {flags} \\"]
        lines += [f"{indent}    {s} \\" for s in specs[:-1]]
        lines.append(f"{indent}    {specs[-1]}" if specs else f"{indent}    ")
        return lines

    out = [f"#compdef {PROG}"] + _header("zsh") + [
        f"# Install: copy to a directory in $fpath as _{PROG}, or source it after compinit.",
        "",
    ]
    for c in subs:
        if c.actions:  # a group: its actions, then each action's own arguments
            fn = f"_{PROG}_{c.name.replace('-', '_')}"
            specs = [s for o in c.options for s in _z_option_specs(o)] + ["'1: :->action'", "'*:: :->args'"]
            out += [f"{fn}() {{", '    local curcontext="$curcontext" state line', "    local -a actions",
                    "    actions=("]
            out += [f"        {_zq(a.path.split()[-1] + ':' + _one_line(a.short_help))}" for a in c.actions]
            out += ["    )"] + arguments("-C", specs, "    ") + [
                "    case $state in",
                f"        action) _describe -t actions '{PROG} {c.name} action' actions ;;",
                "        args)",
                "            case $words[1] in"]
            out += [f"                {a.path.split()[-1]}) _{PROG}_{a.name.replace('-', '_')} ;;" for a in c.actions]
            out += ["            esac", "            ;;", "    esac", "}", ""]
            continue
        specs = [s for o in c.options for s in _z_option_specs(o)] + _z_argument_specs(c.arguments)
        out += [f"_{PROG}_{c.name.replace('-', '_')}() {{"] + arguments("-S", specs, "    ") + ["}", ""]
    out += [
        f"_{PROG}() {{",
        '    local curcontext="$curcontext" state line ret=1',
        "    typeset -A opt_args",
        "    local -a commands",
        "    commands=(",
    ]
    out += [f"        {_zq(c.name + ':' + _one_line(c.short_help))}" for c in subs if not c.parent]
    out += ["    )"]
    root_specs = [s for o in root.options for s in _z_option_specs(o)]
    out += arguments("-C", root_specs + ["'1: :->command'", "'*:: :->args'"], "    ")
    out[-1] += " && ret=0"
    out += [
        "    case $state in",
        "        command)",
        f"            _describe -t commands '{PROG} command' commands && ret=0",
        "            ;;",
        "        args)",
        f'            curcontext="${{curcontext%:*:*}}:{PROG}-$words[1]:"',
        "            case $words[1] in",
    ]
    for c in subs:
        if not c.parent:
            out.append(f"                {c.name}) _{PROG}_{c.name.replace('-', '_')} && ret=0 ;;")
    out += [
        "            esac",
        "            ;;",
        "    esac",
        "    return ret",
        "}",
        "",
        "if [[ $zsh_eval_context[-1] == loadautofunc ]]; then",
        f'    _{PROG} "$@"',
        "else",
        f"    compdef _{PROG} {PROG}",
        "fi",
    ]
    return "\n".join(out) + "\n"


def _fq(text: str) -> str:
    """fish single quotes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish_names(spellings: Iterable[str]) -> str:
    parts = []
    for s in spellings:
        if s.startswith("+"):
            continue  # +te: not an option to fish; offered as a word (see fish_completion)
        if s.startswith("--"):
            parts.append(f"-l {s[2:]}")
        elif len(s) == 2:
            parts.append(f"-s {s[1:]}")
        else:  # -aet: an old-style (single-dash, long) option
            parts.append(f"-o {s[1:]}")
    return " ".join(parts)


def _fish_value(choices: Sequence[str], path: str | None, takes_value: bool) -> str:
    if not takes_value:
        return ""
    if choices:
        return " -x -a " + _fq(" ".join(_words(choices)))
    if path == "dir":
        return " -x -a '(__fish_complete_directories)'"
    if path == "file":
        return " -r -F"
    return " -x"


def fish_completion(root: Cmd, subs: Sequence[Cmd]) -> str:
    out = _header("fish") + [
        f"# Install: copy to ~/.config/fish/completions/{PROG}.fish or"
        f" /usr/share/fish/vendor_completions.d/{PROG}.fish.",
        "",
        f"complete -c {PROG} -f",
    ]
    for o in root.options:
        out.append(f"complete -c {PROG} -n __fish_use_subcommand {_fish_names(o.spellings)}"
                   f"{_fish_value(o.choices, o.path, o.takes_value)} -d {_fq(_one_line(o.help))}")
    for c in subs:
        if not c.parent:
            out.append(f"complete -c {PROG} -n __fish_use_subcommand -a {c.name} -d {_fq(_one_line(c.short_help))}")
    for c in subs:
        cond = _fq(f"__fish_seen_subcommand_from {c.name}")
        if c.actions:
            names = " ".join(a.path.split()[-1] for a in c.actions)
            out += ["", f"# {c.name}"]
            for a in c.actions:
                out.append(f"complete -c {PROG} -n {_fq(f'__fish_seen_subcommand_from {c.name}; and not __fish_seen_subcommand_from {names}')}"
                           f" -a {a.path.split()[-1]} -d {_fq(_one_line(a.short_help))}")
            continue
        if c.parent:
            cond = _fq(f"__fish_seen_subcommand_from {c.parent}; and __fish_seen_subcommand_from {c.path.split()[-1]}")
        out += ["", f"# {c.name}"]
        for o in c.options:
            if o.dash_spellings:
                out.append(f"complete -c {PROG} -n {cond} {_fish_names(o.spellings)}"
                           f"{_fish_value(o.completions, o.path, o.takes_value)} -d {_fq(_one_line(o.help))}")
            if o.plus_spellings:
                out.append(f"complete -c {PROG} -n {cond} -a {_fq(' '.join(o.plus_spellings))}"
                           f" -d {_fq(_one_line(o.help))}")
        kinds = {a.path for a in c.arguments if a.path}
        choices = [ch for a in c.arguments for ch in a.choices]
        if "file" in kinds:
            out.append(f"complete -c {PROG} -n {cond} -F")
        elif "dir" in kinds:
            out.append(f"complete -c {PROG} -n {cond} -a '(__fish_complete_directories)'")
        elif choices:
            out.append(f"complete -c {PROG} -n {cond} -a {_fq(' '.join(_words(choices)))}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------
# Write / check
# --------------------------------------------------------------------------

def render(app: typer.Typer | None = None) -> dict[str, str]:
    """Every generated file: relative path -> content."""
    root, subs = load(app)
    files = {f"{MAN_DIR}/{PROG}.1": overview_page(root, subs)}
    for c in subs:
        files[f"{MAN_DIR}/{PROG}-{c.name}.1"] = man_page(c)
    files[BASH_FILE] = bash_completion(root, subs)
    files[ZSH_FILE] = zsh_completion(root, subs)
    files[FISH_FILE] = fish_completion(root, subs)
    from dcmcli.conformance.statement import markdown

    files[CONFORMANCE_FILE] = markdown()  # the conformance statement, generated from the code as the man pages are
    return files


def _obsolete(root_dir: Path, files: dict[str, str]) -> list[str]:
    """Man pages of subcommands that no longer exist."""
    found = sorted((root_dir / MAN_DIR).glob(f"{PROG}-*.1"))
    return [f"{MAN_DIR}/{p.name}" for p in found if f"{MAN_DIR}/{p.name}" not in files]


def stale(root_dir: Path = ROOT, app: typer.Typer | None = None) -> list[str]:
    """The generated files that are missing, differ, or are obsolete (empty: all up to date)."""
    files = render(app)
    out = []
    for rel, text in files.items():
        path = root_dir / rel
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            out.append(rel)
    out += [f"{rel} (obsolete)" for rel in _obsolete(root_dir, files)]
    return out


def write(root_dir: Path = ROOT, app: typer.Typer | None = None) -> list[str]:
    """(Re)write the generated files; return those that changed or were removed."""
    files = render(app)
    changed = []
    for rel, text in files.items():
        path = root_dir / rel
        data = text.encode("utf-8")
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        changed.append(rel)
    for rel in _obsolete(root_dir, files):
        (root_dir / rel).unlink()
        changed.append(f"{rel} (removed)")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and list the stale files if any differ")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="directory that holds man/ and completions/ (default: the repository root)")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale(args.root)
        if out_of_date:
            print("stale generated files (run `" + REGENERATE + "`):", file=sys.stderr)
            for rel in out_of_date:
                print(f"  {rel}", file=sys.stderr)
            return 1
        print("man pages, completions and CONFORMANCE.md are up to date")
        return 0
    for rel in write(args.root):
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
