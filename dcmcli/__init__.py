"""dcmcli: a DICOM command-line toolbox.

The package is layered like DCMTK: plain, typed cores (``dcmcli.net`` for
associations, ``dcmcli.errors`` and ``dcmcli.status`` for the shared tables,
``dcmcli.output`` for reporting) and a thin typer layer in ``dcmcli.cli``.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: dcmcli's own Implementation Class UID (UUID-derived root, PS3.5 B.2).
IMPLEMENTATION_CLASS_UID = "2.25.232300382606218194586959400769231542194"
#: Implementation Version Name (at most 16 characters, PS3.7 D.3.3.2.4).
IMPLEMENTATION_VERSION_NAME = f"DCMCLI_{__version__}"[:16]
