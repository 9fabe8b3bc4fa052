"""dcmcli demo: a storescp in this process on a free port, then echoscu and
storescu against it with sample objects that ship with pydicom. Needs
nothing outside; shows what the three main commands print."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dcmcli.cli.app import app
from dcmcli.cli.options import Common, dcmcli_command
from dcmcli.dicomfile import read_file_info
from dcmcli.errors import ExitCode
from dcmcli.net.acceptor import AcceptorOptions
from dcmcli.net.association import AssociationSettings
from dcmcli.net.peer import Peer
from dcmcli.net.services.echo import echo
from dcmcli.net.services.storage import StoreServer
from dcmcli.net.services.store import StoreOptions, StoreSender
from dcmcli.net.services.writer import LAYOUTS, WriterOptions
from dcmcli.uids import uid_name

SAMPLES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm", "rtplan.dcm")


#: Everyday tasks, for the man page (generated: python -m dcmcli.cli.gendocs).
EXAMPLES = [
    ('See echoscu, storescu and storescp work, with nothing outside.',
     'dcmcli demo'),
]
#: The --json events this command prints (their fields: dcmcli/events.schema.json).
EVENTS = ["demo", "echo", "result", "stored", "summary"]


@dcmcli_command(app, "demo", network="local")
def demo(common: Common) -> int:
    """Start a storescp in-process on a free port and send sample objects to it (needs nothing outside)."""
    from pydicom.data import get_testdata_file

    out = common.out
    with tempfile.TemporaryDirectory(prefix="dcmcli-demo-") as tmp:
        server = StoreServer(AssociationSettings(calling_aet="DEMO-SCP"), AcceptorOptions(port=0, bind="127.0.0.1"),
                             WriterOptions(output_dir=Path(tmp), template=LAYOUTS["study"]))
        port = server.start()
        try:
            peer = Peer("127.0.0.1", port, "DEMO-SCP")
            out.emit("demo", {"step": "storescp", "port": port},
                     f"[bold]1.[/] storescp listening on 127.0.0.1:{port}, writing to {tmp}")
            for r in echo(AssociationSettings(calling_aet="DEMO-SCU"), peer, 3):
                out.emit("echo", {"peer": peer, **r.as_dict()},
                         f"[bold]2.[/] echoscu {peer}: {r.status.meaning} in {r.rtt_ms:.2f} ms")
            files = [read_file_info(Path(p)) for p in (get_testdata_file(n) for n in SAMPLES) if p]
            sender = StoreSender(AssociationSettings(calling_aet="DEMO-SCU"), peer, StoreOptions())
            run = sender.send(files)
            for r in run.results:
                out.emit("result", r.as_dict(),
                         f"[bold]3.[/] storescu {r.path.name} ({uid_name(r.sop_class_uid)}, "
                         f"{uid_name(r.transfer_syntax)}): {r.outcome}")
        finally:
            server.stop(5)
        stored = sorted(p.relative_to(tmp) for p in Path(tmp).rglob("*.dcm"))
        for p in stored:
            out.emit("stored", {"path": str(p)}, f"[bold]4.[/] stored {p}")
        ok = len(stored) == len(files) and all(r.outcome == "sent" for r in run.results)
        out.emit("summary", {"sent": len(run.results), "stored": len(stored),
                             "exit_code": int(ExitCode.OK if ok else ExitCode.OPERATION_FAILED)},
                 f"demo {'succeeded' if ok else 'FAILED'}: {len(stored)} of {len(files)} objects stored")
        return int(ExitCode.OK if ok else ExitCode.OPERATION_FAILED)
