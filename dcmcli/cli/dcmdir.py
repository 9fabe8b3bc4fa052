"""dcmcli dcmdir: make, update, list, check and prune DICOMDIRs (File-set Creator, Updater, Reader)."""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from dcmcli.cli.app import app
from dcmcli.cli.options import DCMTK_PANEL, Common, NoRecurse, dcmcli_command
from dcmcli.errors import ExitCode, UsageError, worst
from dcmcli.output import Output

#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('A DICOMDIR for files already in a media folder with PS3.10 names (DCMTK: cd media && dcmmkdir +r DICOM).',
     'dcmcli dcmdir create media/DICOMDIR media/DICOM'),
    ('Build a whole media folder from any files: copied under compliant names, DICOMDIR at its root.',
     'dcmcli dcmdir create --copy-to /media/usb --fileset-id CT_2024 ~/exports/'),
    ('The same for a DVD with JPEG, converting (losslessly) what the profile does not allow.',
     'dcmcli dcmdir create --copy-to dvd --profile STD-GEN-DVD-JPEG --transcode incoming/'),
    ('Add files to an existing DICOMDIR (DCMTK: dcmmkdir +A); duplicates are skipped.',
     'dcmcli dcmdir update media/DICOMDIR media/DICOM/NEW'),
    ('Show what a CD holds, as a tree; as NDJSON or CSV for scripts.',
     'dcmcli dcmdir list /cdrom/DICOMDIR; dcmcli dcmdir list --csv - /cdrom/DICOMDIR'),
    ('Check a DICOMDIR and the files it references (exit 26 on any problem).',
     'dcmcli dcmdir check --profile STD-GEN-CD /cdrom/DICOMDIR'),
    ('Remove a study from a media folder, records and files.',
     'dcmcli dcmdir delete --purge media/DICOMDIR 1.2.840.113619.2.55.3.604688119'),
    ('Send everything a DICOMDIR references (DCMTK: dcmsend +rd).',
     'dcmcli storescu pacs 104 --dicomdir /cdrom/DICOMDIR'),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["result", "skipped", "record", "problem", "summary"]


class Mode(str, Enum):
    create = "create"
    update = "update"
    list = "list"
    check = "check"
    delete = "delete"


MEDIA = "Media options (create, update, check)"


@dcmcli_command(app, "dcmdir", network="local", no_args_is_help=True)
def dcmdir(
    common: Common,
    mode: Annotated[Mode, typer.Argument(metavar="MODE", case_sensitive=False,
                                         help="create, update, list, check or delete.")],
    args: Annotated[list[str] | None, typer.Argument(
        metavar="DICOMDIR [FILE-OR-DIR|UID]...",
        help="The DICOMDIR (not with create --copy-to), then files and folders (create, update) or UIDs, "
             "Patient IDs or files (delete).")] = None,
    copy_to: Annotated[Path | None, typer.Option(
        "--copy-to", metavar="DIR", rich_help_panel=MEDIA,
        help="create/update: copy the inputs into media folder DIR under generated PS3.10 names "
             "(DICOM/Pnnnnnnn/Snnnnnnn/Rnnnnnnn/Innnnnnn), DIR/DICOMDIR at its root.")] = None,
    profile: Annotated[str | None, typer.Option(
        "--profile", metavar="PROFILE", rich_help_panel=MEDIA,
        help="Media application profile (PS3.11): STD-GEN-CD (default), STD-GEN-DVD-RAM, STD-GEN-BD, "
             "STD-GEN-MIME, STD-GEN-{DVD,BD,USB,MMC,CF,SD}-JPEG, STD-GEN-{DVD,BD,USB,MMC,CF,SD}-J2K. "
             "Its transfer syntaxes are checked (check: only when given).")] = None,
    transcode: Annotated[bool, typer.Option(
        "--transcode", rich_help_panel=MEDIA,
        help="With --copy-to: convert files in a syntax the profile does not allow (losslessly: decompressed, "
             "or JPEG lossless / JPEG 2000 lossless for the -JPEG / -J2K profiles).")] = False,
    no_xfer_check: Annotated[bool, typer.Option(
        "-Nxc", "--no-xfer-check", rich_help_panel=MEDIA,
        help="A transfer syntax outside the profile is only a warning (as DCMTK's -Nxc).")] = False,
    invent: Annotated[bool, typer.Option(
        "+I", "--invent", rich_help_panel=MEDIA,
        help="Make up type 1 record keys a file lacks (StudyID, SeriesNumber, InstanceNumber, ...), with a "
             "warning for each (as DCMTK's +I); by default such a file fails.")] = False,
    fileset_id: Annotated[str | None, typer.Option(
        "+F", "--fileset-id", metavar="ID", rich_help_panel=MEDIA,
        help="File-set ID (0004,1130): up to 16 characters A-Z 0-9 _ space (default: none).")] = None,
    descriptor: Annotated[Path | None, typer.Option(
        "+R", "--descriptor", metavar="FILE", rich_help_panel=MEDIA,
        help="File-set descriptor file (e.g. README) below the DICOMDIR's folder.")] = None,
    char_set: Annotated[str | None, typer.Option(
        "+C", "--char-set", metavar="CHARSET", rich_help_panel=MEDIA,
        help="Character set of the descriptor file (default with +R: ISO_IR 100).")] = None,
    purge: Annotated[bool, typer.Option("--purge", help="delete: remove the referenced files too.")] = False,
    csv_file: Annotated[str | None, typer.Option(
        "--csv", metavar="FILE", help="list: one row per instance as CSV to FILE ('-': stdout).")] = None,
    no_files: Annotated[bool, typer.Option(
        "--no-files", help="check: the DICOMDIR alone, without opening the files it references.")] = False,
    no_recurse: NoRecurse = False,
    pattern: Annotated[str | None, typer.Option(
        "+p", "--pattern", metavar="PATTERN", rich_help_panel=DCMTK_PANEL,
        help="Only files whose name matches PATTERN when scanning folders.")] = None,
    dcmtk_recurse: Annotated[bool, typer.Option(
        "+r", "--recurse", rich_help_panel=DCMTK_PANEL, help="Accepted for DCMTK scripts: dcmcli recurses.")] = False,
) -> int:
    """Make, update, list, check and prune DICOMDIRs: File-set Creator, Updater and Reader (PS3.10, PS3.11).

    create DICOMDIR FILE-OR-DIR...: a DICOMDIR for files already in its folder, whose names must follow PS3.10
    (every offender is named); or create --copy-to DIR FILE-OR-DIR...: a whole media folder from any files.
    update DICOMDIR FILE-OR-DIR...: add files to a DICOMDIR written by anyone (same SOP Instance UID: skipped).
    list DICOMDIR: the Patient/Study/Series/Instance tree (--json records, --csv rows). check DICOMDIR: each
    problem one line (files, UIDs, transfer syntaxes, offsets, record keys, profile). delete DICOMDIR UID|FILE...:
    remove instances, series, studies or patients (--purge: and their files).
    """
    from dcmcli.media.records import parse_profile

    out = common.out
    t0 = time.perf_counter()
    rest = list(args or [])
    prof = parse_profile(profile or "STD-GEN-CD")
    if mode in (Mode.create, Mode.update) and copy_to is not None:
        target = copy_to / "DICOMDIR"
        inputs = rest
    else:
        if not rest:
            raise UsageError(f"{mode.value} needs the DICOMDIR", f"dcmcli dcmdir {mode.value} DICOMDIR ...")
        target, inputs = Path(rest[0]), rest[1:]
    if transcode and copy_to is None:
        raise UsageError("--transcode converts the files it copies", "give --copy-to DIR too")
    if mode in (Mode.list, Mode.check) and inputs:
        raise UsageError(f"{mode.value} takes one DICOMDIR", f"dcmcli dcmdir {mode.value} DICOMDIR")
    if mode == Mode.create and not inputs:
        raise UsageError("no files given", "name files or folders after the DICOMDIR (or after --copy-to DIR)")
    if mode == Mode.delete and not inputs:
        raise UsageError("nothing to delete", "name UIDs, Patient IDs or files after the DICOMDIR")
    if mode == Mode.list:
        return _list(out, target, csv_file, t0)
    if mode == Mode.check:
        return _check(out, target, prof if profile else None, not no_files, t0)
    if mode == Mode.delete:
        return _delete(out, target, inputs, purge, t0)
    from dcmcli.media.fileset import Options

    options = Options(profile=prof, copy_to=copy_to, transcode=transcode, xfer_check=not no_xfer_check,
                      invent=invent, fileset_id=fileset_id, descriptor=descriptor, descriptor_charset=char_set,
                      recurse=not no_recurse, pattern=pattern)
    return _add(out, target, inputs, options, mode == Mode.create, t0)


def _summary(out: Output, mode: str, target: Path, code: ExitCode, t0: float, human: str | None, **counts: object
             ) -> int:
    fields = {"mode": mode, "dicomdir": str(target), "records": 0, "added": 0, "duplicates": 0, "failed": 0,
              "skipped": 0, "deleted": 0, "problems": 0}
    fields.update(counts)
    fields.update({"seconds": round(time.perf_counter() - t0, 3), "exit_code": int(code)})
    out.emit("summary", fields, human if out.verbosity >= 0 else None)
    return int(code)


def _add(out: Output, target: Path, inputs: list[str], options: object, new: bool, t0: float) -> int:
    from dcmcli.media.fileset import NotCompliant, NotInProfile, add_files

    mode = "create" if new else "update"

    def on_result(r: object) -> None:
        d = r.as_dict()  # type: ignore[attr-defined]
        if d["outcome"] == "added":
            human = (f"[green]added[/] {d['path']} as {d['file_id']} ({d['record_type']})"
                     + (f"; {d['message']}" if d["message"] else "")) if out.verbosity > 0 else None
            out.emit("result", d, human)
        elif d["outcome"] == "duplicate":
            out.emit("result", d, None)
            out.warn(f"{d['path']}: {d['message']}")
        else:
            out.emit("result", d, None)
            if not out.json_mode:
                out.error(f"{d['path']}: {d['message']}")

    from dcmcli.cli.report import show_skipped

    def on_skipped(item: object) -> None:
        show_skipped(out, item)  # type: ignore[arg-type]

    try:
        outcome = add_files(target, inputs, options, new=new, on_result=on_result, on_skipped=on_skipped,
                            on_note=out.warn)  # type: ignore[arg-type]
    except (NotCompliant, NotInProfile) as exc:
        for path, why in exc.offenders:
            out.emit("problem", {"dicomdir": str(target), "offset": None, "record_type": None, "file": path,
                                 "rule": "name" if isinstance(exc, NotCompliant) else "profile", "message": why},
                     None)
            if not out.json_mode:
                out.error(f"{path}: {why}")
        _summary(out, mode, target, exc.exit_code, t0, None, problems=len(exc.offenders))
        out.error_line(str(exc))
        return int(exc.exit_code)
    added, dups, failed = outcome.count("added"), outcome.count("duplicate"), outcome.count("failed")
    code = worst(*outcome.codes)
    human = (f"{'created' if new else 'updated'} {target}: {added} added, {dups} duplicate{'s' if dups != 1 else ''}"
             f" skipped, {failed} failed, {len(outcome.skipped)} other files skipped; {outcome.records} records"
             if outcome.written else f"{target} unchanged: nothing added")
    return _summary(out, mode, target, code, t0, human, records=outcome.records, added=added, duplicates=dups,
                    failed=failed, skipped=len(outcome.skipped))


def _list(out: Output, target: Path, csv_file: str | None, t0: float) -> int:
    from dcmcli.media.dicomdir import read_dicomdir

    d = read_dicomdir(target)
    for p in d.problems:
        out.warn(p.line(str(target)))
    n = 0
    if csv_file is not None:
        n = _csv(d, csv_file, out)
    elif out.json_mode:
        stack = [(r, 0) for r in reversed(d.roots)]
        while stack:
            rec, depth = stack.pop()
            n += 1
            out.emit("record", {"type": rec.type, "offset": rec.offset, "depth": depth,
                                "parent_offset": rec.parent.offset if rec.parent is not None else None,
                                "keys": rec.keys(), "file": "/".join(rec.file_id) if rec.file_id else None})
            stack.extend((c, depth + 1) for c in reversed(rec.children))
    elif out.verbosity >= 0:
        n = _tree(d, out)
    else:
        n = sum(1 for _ in d.walk())
    # the tree is the output; the summary is for --json
    return _summary(out, "list", target, ExitCode.OK, t0, None, records=n, problems=len(d.problems))


def _label(rec: object) -> str:
    """One line of the tree (the hot path of list: short-VR values read straight from the record's bytes)."""
    from dcmcli.media.dicomdir import decode_text

    elements = rec.elements  # type: ignore[attr-defined]

    def v(tag: int) -> str:
        elem = elements.get(tag)
        return decode_text(elem[8:]) if elem is not None and len(elem) > 8 else ""

    kind = v(0x00041430)
    if kind == "IMAGE" or kind not in ("PATIENT", "STUDY", "SERIES"):
        fid = v(0x00041500).replace("\\", "/") or "(no file)"
        number = v(0x00200013)
        return f"{kind}{' #' + number if number else ''} {fid}"
    if kind == "PATIENT":
        return f"PATIENT {v(0x00100010) or '(no name)'} [{v(0x00100020)}]"
    if kind == "STUDY":
        desc = v(0x00081030)
        return f"STUDY {v(0x00080020)} {desc + ' ' if desc else ''}#{v(0x00200010)} [{v(0x0020000D)}]"
    n = len(rec.children)  # type: ignore[attr-defined]
    return f"SERIES {v(0x00080060)} #{v(0x00200011)} [{v(0x0020000E)}] ({n} instance{'s' if n != 1 else ''})"


def _tree(d: object, out: Output) -> int:
    from dcmcli.media.dicomdir import Dicomdir

    assert isinstance(d, Dicomdir)
    n = 0
    head = f"{d.path}  File-set ID {d.fileset_id or '(none)'}, UID {d.fileset_uid}"
    if out.stdout_is_terminal:
        from rich.markup import escape
        from rich.tree import Tree

        tree = Tree(escape(head))
        stack = [(r, tree) for r in reversed(d.roots)]
        while stack:
            rec, node = stack.pop()
            n += 1
            style = {"PATIENT": "bold", "STUDY": "cyan", "SERIES": "green"}.get(rec.type, "")
            branch = node.add(f"[{style}]{escape(_label(rec))}[/]" if style else escape(_label(rec)))
            stack.extend((c, branch) for c in reversed(rec.children))
        out.console.print(tree, soft_wrap=False, crop=False)
        return n
    lines = [head]
    stack2 = [(r, 1) for r in reversed(d.roots)]
    while stack2:
        rec, depth = stack2.pop()
        n += 1
        lines.append("  " * depth + _label(rec))
        stack2.extend((c, depth + 1) for c in reversed(rec.children))
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return n


_CSV_COLUMNS = ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyID", "StudyDescription",
                "AccessionNumber", "SeriesInstanceUID", "Modality", "SeriesNumber", "RecordType", "InstanceNumber",
                "ReferencedSOPClassUIDInFile", "ReferencedSOPInstanceUIDInFile", "ReferencedTransferSyntaxUIDInFile",
                "ReferencedFileID")


def _csv(d: object, name: str, out: Output) -> int:
    import csv

    from dcmcli.render import open_output
    from dcmcli.media.dicomdir import Dicomdir

    assert isinstance(d, Dicomdir)
    if name == "-" and out.json_mode:
        raise UsageError("--json and --csv - both write to stdout", "send one of them to a file")
    stream = open_output(name, "the CSV file")
    assert stream is not None
    n = 0
    try:
        w = csv.writer(stream, lineterminator="\n")
        w.writerow(_CSV_COLUMNS)
        for leaf in d.leaves():
            n += 1
            row: dict[str, str] = {"RecordType": leaf.type, "ReferencedFileID": "/".join(leaf.file_id or ())}
            rec = leaf
            while rec is not None:
                for k in _CSV_COLUMNS:
                    if k not in row:
                        v = rec.text(k) if k in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate",
                                                 "StudyID", "StudyDescription", "AccessionNumber",
                                                 "SeriesInstanceUID", "Modality", "SeriesNumber", "InstanceNumber",
                                                 "ReferencedSOPClassUIDInFile", "ReferencedSOPInstanceUIDInFile",
                                                 "ReferencedTransferSyntaxUIDInFile") else ""
                        if v:
                            row[k] = v
                rec = rec.parent
            w.writerow([row.get(k, "") for k in _CSV_COLUMNS])
    finally:
        if stream is not sys.stdout:
            stream.close()
        else:
            stream.flush()
    return n


def _check(out: Output, target: Path, profile: object, files: bool, t0: float) -> int:
    from dcmcli.media.fileset import check

    if not target.exists():
        from dcmcli.errors import InputError

        raise InputError(f"{target} does not exist", "name the DICOMDIR file")
    d, problems = check(target, profile, files=files)  # type: ignore[arg-type]
    for p in problems:
        out.emit("problem", {"dicomdir": str(target), **p.as_dict()}, None)
        if not out.json_mode:
            sys.stdout.write(p.line(str(target)) + "\n")
    n = sum(1 for _ in d.walk()) if d is not None else 0
    code = ExitCode.DICOMDIR_INVALID if problems else ExitCode.OK
    human = (f"{target}: {len(problems)} problem{'s' if len(problems) != 1 else ''} in {n} records"
             if problems else f"{target}: {n} records, no problems")
    _summary(out, "check", target, code, t0, human if not problems else None, records=n, problems=len(problems))
    if problems:
        out.error_line(human + "; each is a line above")
    return int(code)


def _delete(out: Output, target: Path, inputs: list[str], purge: bool, t0: float) -> int:
    from dcmcli.media.fileset import delete

    def on_result(r: object) -> None:
        d = r.as_dict()  # type: ignore[attr-defined]
        human = (f"{d['outcome']} {d['file_id']} ({d['record_type']})" if out.verbosity > 0 else None)
        out.emit("result", d, human)
        if d["exit_code"]:
            out.warn(f"{d['path']}: {d['message']}")

    outcome = delete(target, inputs, purge=purge, on_result=on_result)
    n = len(outcome.results)
    code = worst(*outcome.codes)
    human = f"{target}: {n} instance{'s' if n != 1 else ''} removed" + (", files purged" if purge else "") + \
            f"; {outcome.records} records left"
    return _summary(out, "delete", target, code, t0, human, records=outcome.records, deleted=n)
