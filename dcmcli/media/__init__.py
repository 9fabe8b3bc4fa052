"""The media core: DICOMDIR File-sets (PS3.10, PS3.3 Annex F, PS3.11 profiles).

- ``records.py``: the directory record rules (which record type a SOP class
  gets, the keys of each record type, PS3.3 F.5), records built from a file's
  element headers, PS3.10 file ID rules, the media application profiles.
- ``dicomdir.py``: reading a DICOMDIR as bytes (records, their offsets, the
  tree) and writing one (offsets computed before a byte is written, a
  temporary file renamed into place).
- ``fileset.py``: what the FSC, FSU and FSR do: create, update, delete,
  check, and the files a DICOMDIR references.

No typer here; ``dcmcli/cli/dcmdir.py`` is the thin command on top.
"""
