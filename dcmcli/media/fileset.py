"""What a File-set Creator, Updater and Reader do (PS3.10 8, PS3.11):
create and update a DICOMDIR from files, delete records, check one, and
name the files it references.

Every operation works on the records in memory and writes the DICOMDIR once,
at the end, through a temporary file renamed into place, and only after the
files it references are in place (copied, converted); deleted files go after
the new DICOMDIR is written. So a DICOMDIR on disk never references a file
that is not there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import field
from pathlib import Path

from dcmcli.dicomfile import FileInfo, Inputs, InvalidFile, collect_inputs, read_file_info
from dcmcli.errors import DcmcliError, ExitCode, OutputError, UsageError
from dcmcli.conformance import ApplicationEntity
from dcmcli.media.dicomdir import Dicomdir, DicomdirError, Problem, Record, read_dicomdir, write_dicomdir
from dcmcli.media.records import (CHILDREN, KEYWORD_TAG, PROFILES, REQUIRED, REF_CLASS, REF_INSTANCE,
                                  REF_SYNTAX, SINGLE_LEVEL_TYPES, InstanceRecords, Profile, RecordError,
                                  build_records, file_id_problem, read_instance, text_element)
from dcmcli import uids
from dcmcli.records import dataclass


@dataclass
class Result:
    """What happened to one input file (or one deleted instance)."""

    path: str
    outcome: str  # added, duplicate, failed, deleted, purged
    file_id: str | None = None
    record_type: str | None = None
    sop_instance_uid: str | None = None
    transfer_syntax: str | None = None
    message: str = ""
    exit_code: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "outcome": self.outcome, "file_id": self.file_id,
                "record_type": self.record_type, "sop_instance_uid": self.sop_instance_uid,
                "transfer_syntax": self.transfer_syntax, "message": self.message, "exit_code": self.exit_code}


@dataclass
class Options:
    profile: Profile = PROFILES["STD-GEN-CD"]
    copy_to: Path | None = None
    transcode: bool = False
    xfer_check: bool = True  # False: a syntax outside the profile is only a warning (DCMTK's -Nxc)
    invent: bool = False
    fileset_id: str | None = None
    descriptor: Path | None = None
    descriptor_charset: str | None = None
    recurse: bool = True
    pattern: str | None = None


@dataclass
class Outcome:
    dicomdir: Path
    results: list[Result] = field(default_factory=list)
    skipped: list[object] = field(default_factory=list)
    codes: list[ExitCode] = field(default_factory=list)
    records: int = 0
    written: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)


class NotCompliant(DcmcliError):
    exit_code = ExitCode.FILE_ID_NOT_COMPLIANT

    def __init__(self, message: str, hint: str, offenders: list[tuple[str, str]]) -> None:
        super().__init__(message, hint)
        self.offenders = offenders


class NotInProfile(DcmcliError):
    exit_code = ExitCode.NOT_IN_PROFILE

    def __init__(self, message: str, hint: str, offenders: list[tuple[str, str]]) -> None:
        super().__init__(message, hint)
        self.offenders = offenders


# -- the tree of records --------------------------------------------------------------

class Index:
    """Where each patient, study, series and instance of a DICOMDIR is."""

    def __init__(self, d: Dicomdir) -> None:
        self.d = d
        self.patients: dict[str, Record] = {}
        self.studies: dict[str, Record] = {}
        self.series: dict[str, Record] = {}
        self.instances: dict[str, Record] = {}
        self.file_ids: set[tuple[str, ...]] = set()
        for root in d.roots:
            if root.type == "PATIENT":
                self.patients.setdefault(root.text("PatientID"), root)
            for rec in root.walk():
                kind = rec.type
                if kind == "STUDY":
                    self.studies.setdefault(rec.text("StudyInstanceUID"), rec)
                elif kind == "SERIES":
                    self.series.setdefault(rec.text("SeriesInstanceUID"), rec)
                fid = rec.file_id
                if fid is not None:
                    self.file_ids.add(tuple(p.upper() for p in fid))
                    if rec.sop_instance_uid:
                        self.instances.setdefault(rec.sop_instance_uid, rec)

    def _child(self, parent: Record | None, elements: dict[int, bytes], table: dict[str, Record], key: str
               ) -> Record:
        rec = table.get(key)
        if rec is not None:
            return rec
        rec = Record(dict(elements), parent=parent)
        (parent.children if parent is not None else self.d.roots).append(rec)
        table[key] = rec
        return rec

    def add(self, recs: InstanceRecords) -> Record:
        """Link the instance's records in (reusing its patient, study and series); returns the leaf."""
        if recs.leaf_type in SINGLE_LEVEL_TYPES:
            leaf = Record(dict(recs.leaf))
            self.d.roots.append(leaf)
        else:
            patient = self._child(None, recs.patient, self.patients, recs.patient_id)
            study = self._child(patient, recs.study, self.studies, recs.study_uid)
            series = self._child(study, recs.series, self.series, recs.series_uid)
            leaf = Record(dict(recs.leaf), parent=series)
            series.children.append(leaf)
        self.instances[recs.sop_instance_uid] = leaf
        return leaf

    def generated_id(self, leaf: Record) -> tuple[str, ...]:
        """A PS3.10 file ID for a copied file: DICOM/Pnnnnnnn/Snnnnnnn/Rnnnnnnn/Innnnnnn (its place in the tree)."""
        chain = []
        rec: Record | None = leaf.parent
        while rec is not None:
            siblings = rec.parent.children if rec.parent is not None else self.d.roots
            chain.append(_position(siblings, rec))
            rec = rec.parent
        chain.reverse()
        folder = ("DICOM",) + tuple(f"{p}{n:07d}" for p, n in zip("PSR", chain))
        n = len(leaf.parent.children) if leaf.parent is not None else len(self.d.roots)
        while True:
            candidate = folder + (f"I{n:07d}",)
            if candidate not in self.file_ids and not self.d.root_dir.joinpath(*candidate).exists():
                self.file_ids.add(candidate)
                return candidate
            n += 1


_POSITIONS: dict[int, tuple[int, dict[int, int]]] = {}


def _position(siblings: list[Record], rec: Record) -> int:
    known = _POSITIONS.get(id(siblings))
    if known is None or known[0] != len(siblings) or id(rec) not in known[1]:
        known = (len(siblings), {id(r): i + 1 for i, r in enumerate(siblings)})
        _POSITIONS[id(siblings)] = known
    return known[1][id(rec)]


# -- create and update ------------------------------------------------------------------

def discover(args: list[str], *, recurse: bool, pattern: str | None) -> tuple[Inputs, dict[Path, dict[int, bytes]]]:
    """``dicomfile.collect_inputs`` for the FSC: the same inputs, problems and
    exit codes, but each file read once (``records.read_instance``: file meta,
    record keys, the truncation walk), with its record keys kept."""
    scanned: dict[Path, dict[int, bytes]] = {}

    def read(path: Path) -> FileInfo:
        info, values = read_instance(path)
        scanned[path] = values
        return info  # type: ignore[return-value]

    inputs = collect_inputs(args, action="referenced from a DICOMDIR", recurse=recurse, pattern=pattern, read=read)
    kept = {f.path for f in inputs.files}
    return inputs, {p: v for p, v in scanned.items() if p in kept}


_REAL: dict[str, str] = {}


def _real(folder: str) -> str:
    real = _REAL.get(folder)
    if real is None:
        real = _REAL[folder] = os.path.realpath(folder)
    return real


def _file_id_of(path: Path, root: Path) -> tuple[tuple[str, ...] | None, str | None]:
    """The file ID of ``path`` below ``root`` (symbolic links resolved, once per folder), or why not."""
    base = _real(str(root))
    real = os.path.join(_real(os.path.dirname(os.path.abspath(path))), path.name)
    if not real.startswith(base.rstrip(os.sep) + os.sep):
        return None, f"not below the DICOMDIR's folder {root}"
    parts = tuple(real[len(base.rstrip(os.sep)) + 1:].split(os.sep))
    problem = file_id_problem(parts)
    return (parts, None) if problem is None else (None, problem)


def _transcode_target(info: FileInfo, profile: Profile) -> str:
    if info.transfer_syntax in uids.UNCOMPRESSED or uids.is_lossy(info.transfer_syntax) or not info.has_pixels:
        return uids.ELE
    return profile.lossless_target


def add_files(dicomdir: Path, inputs: Iterable[str], options: Options, *, new: bool,
              on_result: Callable[[Result], None] = lambda r: None,
              on_skipped: Callable[[object], None] = lambda s: None,
              on_note: Callable[[str], None] = lambda s: None) -> Outcome:
    """create (``new``) or update: add ``inputs`` to the DICOMDIR."""
    import uuid

    root = options.copy_to if options.copy_to is not None else dicomdir.parent
    if new:
        if dicomdir.exists():
            raise UsageError(f"{dicomdir} exists already", "use dcmcli dcmdir update to add files to it, or remove it")
        if options.copy_to is not None:
            try:
                options.copy_to.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create {options.copy_to}: {exc.strerror or exc}",
                                  "check the path and its permissions") from None
        if not dicomdir.parent.is_dir():
            raise OutputError(f"the folder of {dicomdir} does not exist", "create it first, or give --copy-to")
        # the File-set UID: a UUID-derived UID (PS3.5 B.2), without importing pydicom
        d = Dicomdir(dicomdir, f"2.25.{uuid.uuid4().int}", fileset_id=options.fileset_id or "")
    else:
        d = read_dicomdir(dicomdir)
        for p in d.problems:
            on_note(f"{p.line(str(dicomdir))}; the update keeps the records readers can reach")
        if options.fileset_id is not None:
            d.fileset_id = options.fileset_id
    if options.descriptor is not None:
        fid, why = _file_id_of(options.descriptor, root)
        if fid is None:
            raise NotCompliant(f"the descriptor file {options.descriptor}: {why}",
                               "put it below the DICOMDIR's folder under a PS3.10 name (e.g. README)",
                               [(str(options.descriptor), why or "")])
        d.descriptor = fid
        d.descriptor_charset = options.descriptor_charset or "ISO_IR 100"
    elif options.descriptor_charset:
        raise UsageError("--char-set names the descriptor file's character set", "give --descriptor FILE too")
    _validate_fileset_id(d.fileset_id)

    out = Outcome(dicomdir)
    found, scanned = discover(list(inputs), recurse=options.recurse, pattern=options.pattern)
    own = os.path.realpath(dicomdir)
    found.skipped = [s for s in found.skipped if os.path.realpath(s.path) != own]  # the DICOMDIR itself
    for item in found.unreadable + found.skipped:
        out.skipped.append(item)
        on_skipped(item)
    out.codes += found.exit_codes()
    files = found.files
    empty = found.nothing_to_send()
    if empty is not None and not (not new and not list(inputs)):
        code, msg = empty
        raise DcmcliError(f"{msg}; nothing added", "name DICOM files or folders", exit_code=code)

    # What breaks PS3.10 or the profile is reported for every file at once, before anything is written.
    ids: dict[Path, tuple[str, ...]] = {}
    if options.copy_to is None:
        offenders = []
        for info in files:
            fid, why = _file_id_of(info.path, root)
            if fid is None:
                offenders.append((str(info.path), why or ""))
            else:
                ids[info.path] = fid
        if offenders:
            raise NotCompliant(f"{len(offenders)} of {len(files)} files cannot be referenced as they are "
                               "(PS3.10 file IDs: below the DICOMDIR's folder, components of 1-8 characters "
                               "A-Z 0-9 _, at most 8)",
                               "give --copy-to DIR to copy them into a media folder under compliant names",
                               offenders)
    allowed = set(options.profile.syntaxes)
    outside = [(str(f.path), f.transfer_syntax) for f in files if f.transfer_syntax not in allowed]
    if outside and options.xfer_check and not (options.transcode and options.copy_to is not None):
        hint = ("give --copy-to DIR --transcode to convert them, or --profile with a profile that allows them"
                if not options.transcode else "--transcode converts only files it copies: give --copy-to DIR")
        raise NotInProfile(f"{len(outside)} of {len(files)} files are in a transfer syntax "
                           f"{options.profile.name} does not allow (it allows "
                           f"{', '.join(uids.uid_name(t) for t in options.profile.syntaxes)})", hint,
                           [(p, uids.uid_name(t)) for p, t in outside])
    for p, t in outside:
        if not (options.transcode and options.copy_to is not None):
            on_note(f"{p}: {uids.uid_name(t)} is not allowed by {options.profile.name} (kept: no transfer syntax check)")

    index = Index(d)
    pending: list[tuple[FileInfo, Record, str | None]] = []  # (file, leaf, target syntax for --transcode)
    for n, info in enumerate(files, 1):
        dup = index.instances.get(info.sop_instance_uid)
        if dup is not None:
            r = Result(str(info.path), "duplicate", "/".join(dup.file_id or ()) or None, dup.type,
                       info.sop_instance_uid, info.transfer_syntax,
                       f"SOP Instance UID {info.sop_instance_uid} is in the DICOMDIR already "
                       f"({'/'.join(dup.file_id or ())}); skipped")
            out.results.append(r)
            on_result(r)
            continue
        try:
            recs = build_records(info, invent=options.invent, sequence_no=n, values=scanned.get(info.path))
        except RecordError as exc:
            r = Result(str(info.path), "failed", None, None, info.sop_instance_uid, info.transfer_syntax,
                       str(exc), int(ExitCode.INVALID_INPUT))
            out.results.append(r)
            out.codes.append(ExitCode.INVALID_INPUT)
            on_result(r)
            continue
        except (InvalidFile, OSError, ValueError) as exc:
            r = Result(str(info.path), "failed", None, None, info.sop_instance_uid, info.transfer_syntax,
                       f"cannot read it: {exc}", int(ExitCode.INVALID_INPUT))
            out.results.append(r)
            out.codes.append(ExitCode.INVALID_INPUT)
            on_result(r)
            continue
        for note in recs.notes:
            on_note(f"{info.path}: {note}")
        leaf = index.add(recs)
        target = None
        if options.copy_to is not None:
            fid = index.generated_id(leaf)
            if options.transcode and info.transfer_syntax not in allowed:
                target = _transcode_target(info, options.profile)
        else:
            fid = ids[info.path]
        leaf.set_file_id(fid)
        pending.append((info, leaf, target))

    # Copy (or convert) before the DICOMDIR names the copies.
    for info, leaf, target in pending:
        fid = leaf.file_id or ()
        r = Result(str(info.path), "added", "/".join(fid), leaf.type, info.sop_instance_uid,
                   target or info.transfer_syntax)
        if options.copy_to is not None:
            problem = _place(info, d.root_dir.joinpath(*fid), target, r)
            if problem is not None:
                _unlink_record(d, index, leaf)
                r.outcome, r.message, r.exit_code = "failed", problem[1], int(problem[0])
                out.codes.append(problem[0])
            elif target is not None:
                leaf.elements[REF_SYNTAX] = text_element(REF_SYNTAX, target)
        out.results.append(r)
        on_result(r)
    if out.count("added") or (new and not files):
        write_dicomdir(d)
        out.written = True
    out.records = sum(1 for _ in d.walk())
    _POSITIONS.clear()
    return out


def _place(info: FileInfo, dest: Path, target: str | None, r: Result) -> tuple[ExitCode, str] | None:
    """Copy (or convert to ``target``) one file into the media folder."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return ExitCode.OUTPUT_NOT_WRITABLE, f"cannot create {dest.parent}: {exc.strerror or exc}"
    if target is None:
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            shutil.copyfile(info.path, tmp)
            os.replace(tmp, dest)
        except OSError as exc:
            try:
                tmp.unlink()
            except OSError:
                pass
            return ExitCode.OUTPUT_NOT_WRITABLE, f"cannot copy to {dest}: {exc.strerror or exc}"
        return None
    from dcmcli.transcode.core import TranscodeOptions
    from dcmcli.transcode.files import ConvertJob, convert_file

    result = convert_file(ConvertJob(info.path, dest, target), TranscodeOptions())
    if result["outcome"] != "converted":
        return ExitCode(int(result["exit_code"])), f"cannot convert to {uids.uid_name(target)}: {result['message']}"
    r.message = f"converted from {uids.uid_name(info.transfer_syntax)} to {uids.uid_name(target)}"
    return None


def _unlink_record(d: Dicomdir, index: Index, leaf: Record) -> None:
    """Take a leaf out again (its copy failed), and the parents it leaves empty."""
    index.instances.pop(leaf.sop_instance_uid, None)
    rec: Record | None = leaf
    while rec is not None:
        siblings = rec.parent.children if rec.parent is not None else d.roots
        if rec in siblings and (rec is leaf or not rec.children):
            siblings.remove(rec)
            for table in (index.patients, index.studies, index.series):
                for k, v in list(table.items()):
                    if v is rec:
                        del table[k]
            rec = rec.parent
        else:
            break


def _validate_fileset_id(value: str) -> None:
    if len(value) > 16 or not all("A" <= c <= "Z" or "0" <= c <= "9" or c in "_ " for c in value):
        raise UsageError(f"File-set ID {value!r} is not a CS value of at most 16 characters A-Z, 0-9, _ and space",
                         "e.g. --fileset-id STUDY_2024")


# -- delete ----------------------------------------------------------------------------

def delete(dicomdir: Path, targets: list[str], *, purge: bool,
           on_result: Callable[[Result], None] = lambda r: None) -> Outcome:
    """Remove the records of instances, series, studies or patients (named by
    UID, Patient ID or referenced file), and the parents they leave empty;
    with ``purge``, the files too (after the new DICOMDIR is in place)."""
    d = read_dicomdir(dicomdir)
    out = Outcome(dicomdir)
    root = d.root_dir.resolve()
    chosen: list[Record] = []
    unmatched: list[str] = []
    for target in targets:
        hits: list[Record] = []
        p = Path(target)
        if p.exists() and p.is_file():
            try:
                parts = tuple(x.upper() for x in p.resolve().relative_to(root).parts)
            except ValueError:
                parts = ()
            hits = [r for r in d.walk() if r.file_id and tuple(x.upper() for x in r.file_id) == parts]
        elif "/" in target or "\\" in target:  # a Referenced File ID whose file is gone already
            parts = tuple(x.upper() for x in target.replace("\\", "/").strip("/").split("/"))
            hits = [r for r in d.walk() if r.file_id and tuple(x.upper() for x in r.file_id) == parts]
        if not hits:
            for rec in d.walk():
                kind = rec.type
                if (rec.sop_instance_uid == target or (kind == "SERIES" and rec.text("SeriesInstanceUID") == target)
                        or (kind == "STUDY" and rec.text("StudyInstanceUID") == target)
                        or (kind == "PATIENT" and rec.text("PatientID") == target)):
                    hits.append(rec)
        if not hits:
            unmatched.append(target)
        chosen += [h for h in hits if h not in chosen]
    if unmatched:
        raise DcmcliError(f"{', '.join(unmatched)}: no record of {dicomdir} has this UID, Patient ID or file",
                          "dcmcli dcmdir list shows what it holds", exit_code=ExitCode.NO_INPUT_FILES)
    files: list[tuple[Record, Path]] = []
    for rec in chosen:
        siblings = rec.parent.children if rec.parent is not None else d.roots
        if rec not in siblings:
            continue  # inside a record removed already
        siblings.remove(rec)
        for sub in rec.walk():
            path = d.file_path(sub)
            if path is not None:
                files.append((sub, path))
        parent = rec.parent
        while parent is not None and not parent.children and parent.type in ("PATIENT", "STUDY", "SERIES"):
            up = parent.parent.children if parent.parent is not None else d.roots
            up.remove(parent)
            parent = parent.parent
    write_dicomdir(d)
    out.written = True
    for rec, path in files:
        r = Result(str(path), "deleted", "/".join(rec.file_id or ()), rec.type, rec.sop_instance_uid,
                   rec.transfer_syntax)
        if purge:
            try:
                path.unlink()
                r.outcome = "purged"
            except FileNotFoundError:
                r.outcome, r.message = "purged", "the file was missing already"
            except OSError as exc:
                r.message = f"record removed, but the file could not be deleted: {exc.strerror or exc}"
                r.exit_code = int(ExitCode.OUTPUT_NOT_WRITABLE)
                out.codes.append(ExitCode.OUTPUT_NOT_WRITABLE)
        out.results.append(r)
        on_result(r)
    out.records = sum(1 for _ in d.walk())
    return out


# -- check ---------------------------------------------------------------------------------

def check(dicomdir: Path, profile: Profile | None = None, *, files: bool = True) -> tuple[Dicomdir | None,
                                                                                          list[Problem]]:
    """Every problem of a DICOMDIR: structure (offsets, hierarchy), record keys
    (PS3.3 F.5), referenced files (there, DICOM, UIDs and transfer syntax as
    recorded, PS3.10 names), the profile's transfer syntaxes."""
    try:
        d = read_dicomdir(dicomdir)
    except DicomdirError as exc:
        message = exc.message
        for prefix in (f"{dicomdir}: ", f"{dicomdir} "):
            if message.startswith(prefix):
                message = ("it " if prefix.endswith(" ") else "") + message[len(prefix):]
        return None, [Problem(message, rule="readable")]
    problems = list(d.problems)
    if d.path.name != "DICOMDIR":
        problems.append(Problem(f"the file is named {d.path.name!r}; PS3.10 names it DICOMDIR", rule="name"))
    if d.transfer_syntax != uids.ELE:
        problems.append(Problem(f"the DICOMDIR is encoded in {uids.uid_name(d.transfer_syntax)}, not Explicit VR "
                                "Little Endian as PS3.10 requires (dcmcli dcmdir update rewrites it so)",
                                rule="structure"))
    seen: dict[str, Record] = {}

    def visit(rec: Record, parent_type: str) -> None:
        kind = rec.type
        if not kind:
            problems.append(Problem("Directory Record Type (0004,1430) is missing or empty", rec.offset, kind,
                                    rule="keys"))
        elif kind not in REQUIRED and kind not in ("TOPIC", "HL7 STRUC DOC", "FILM SESSION"):
            problems.append(Problem(f"unknown Directory Record Type {kind!r}", rec.offset, kind, rule="keys"))
        allowed = CHILDREN.get(parent_type)
        if kind and allowed is not None and kind not in allowed:
            article = "an" if kind[0] in "AEIOU" else "a"
            problems.append(Problem(f"{article} {kind} record cannot be below "
                                    f"{'the root' if parent_type == 'ROOT' else 'a ' + parent_type + ' record'} "
                                    "(PS3.3 F.4)", rec.offset, kind, rule="hierarchy"))
        type1, type2 = REQUIRED.get(kind, ((), ()))
        for kw in type1:
            tag = KEYWORD_TAG[kw]
            if tag not in rec.elements:
                problems.append(Problem(f"{kw} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is missing (type 1 in a "
                                        f"{kind} record, PS3.3 F.5)", rec.offset, kind, rule="keys"))
            elif not (rec.raw(tag) or b"").strip(b" \x00"):
                problems.append(Problem(f"{kw} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is empty (type 1 in a "
                                        f"{kind} record, PS3.3 F.5)", rec.offset, kind, rule="keys"))
        for kw in type2:
            tag = KEYWORD_TAG[kw]
            if tag not in rec.elements:
                problems.append(Problem(f"{kw} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is missing (type 2 in a "
                                        f"{kind} record, PS3.3 F.5)", rec.offset, kind, rule="keys"))
        if rec.file_id is not None:
            _check_leaf(d, rec, profile, problems, files)
            uid = rec.sop_instance_uid
            if uid and uid in seen:
                problems.append(Problem(f"SOP Instance UID {uid} is referenced twice (also by the record at "
                                        f"offset {seen[uid].offset})", rec.offset, kind, rule="duplicate"))
            elif uid:
                seen[uid] = rec
        elif kind in ("IMAGE",) or (kind in REQUIRED and kind not in ("PATIENT", "STUDY", "SERIES", "PRIVATE")
                                    and kind not in SINGLE_LEVEL_TYPES):
            problems.append(Problem("a leaf record with no Referenced File ID (0004,1500)", rec.offset, kind,
                                    rule="keys"))
        for child in rec.children:
            visit(child, kind)

    for root in d.roots:
        visit(root, "ROOT")
    return d, problems


def _check_leaf(d: Dicomdir, rec: Record, profile: Profile | None, problems: list[Problem], files: bool) -> None:
    kind = rec.type
    parts = rec.file_id or ()
    fid = "/".join(parts)
    why = file_id_problem(parts)
    if why is not None:
        problems.append(Problem(f"Referenced File ID {fid!r} breaks PS3.10: {why}", rec.offset, kind, fid,
                                rule="name"))
    for tag, kw in ((REF_CLASS, "ReferencedSOPClassUIDInFile"), (REF_INSTANCE, "ReferencedSOPInstanceUIDInFile"),
                    (REF_SYNTAX, "ReferencedTransferSyntaxUIDInFile")):
        if not rec.text(tag):
            problems.append(Problem(f"{kw} ({tag >> 16:04X},{tag & 0xFFFF:04X}) is missing or empty (type 1C "
                                    "with a Referenced File ID)", rec.offset, kind, fid, rule="keys"))
    if profile is not None and rec.transfer_syntax and rec.transfer_syntax not in profile.syntaxes:
        problems.append(Problem(f"{uids.uid_name(rec.transfer_syntax)} is not allowed by {profile.name}",
                                rec.offset, kind, fid, rule="profile"))
    if not files:
        return
    path = d.root_dir.joinpath(*parts)
    if not path.is_file():
        # ISO 9660 readers may present names in lower case
        alt = d.root_dir.joinpath(*(p.lower() for p in parts))
        if alt.is_file():
            path = alt
        else:
            problems.append(Problem(f"the referenced file {fid} is missing", rec.offset, kind, fid, rule="file"))
            return
    try:
        info = read_file_info(path, check_complete=True)
    except InvalidFile as exc:
        problems.append(Problem(f"the referenced file {fid} is not usable DICOM: {exc}", rec.offset, kind, fid,
                                rule="file"))
        return
    for label, recorded, actual in (("SOP Class UID", rec.sop_class_uid, info.sop_class_uid),
                                    ("SOP Instance UID", rec.sop_instance_uid, info.sop_instance_uid),
                                    ("transfer syntax", rec.transfer_syntax, info.transfer_syntax)):
        if recorded and recorded != actual:
            problems.append(Problem(f"the record says {label} {recorded} but {fid} has {actual}", rec.offset, kind,
                                    fid, rule="file"))


def referenced_files(dicomdir: Path) -> tuple[list[Path], list[Problem]]:
    """The files a DICOMDIR references, in its order (storescu --dicomdir)."""
    d = read_dicomdir(dicomdir)
    out: list[Path] = []
    for rec in d.leaves():
        path = d.file_path(rec)
        if path is None:
            continue
        if not path.exists():  # a CD mounted with ISO 9660 names mapped to lower case
            lower = d.root_dir.joinpath(*(p.lower() for p in rec.file_id or ()))
            if lower.exists():
                path = lower
        out.append(path)
    return out, list(d.problems)


#: dcmdir as a File-set Creator, Updater and Reader (dcmcli/conformance; the profiles: records.PROFILES).
CONFORMANCE = [ApplicationEntity(
    "DCMDIR", "dcmdir",
    "Creates a DICOMDIR for files already under PS3.10 names, or a whole media folder (`--copy-to`); adds "
    "files to any DICOMDIR keeping its records; lists, checks and deletes records (and files, `--purge`).",
    media=("FSC", "FSU", "FSR"))]
