"""What each application entity of dcmcli proposes and accepts, declared
next to the code that does it; ``dcmcli.conformance.statement`` turns the
declarations into the DICOM Conformance Statement (PS3.2 Annex N).

The convention (README "Layout"): a service module (``dcmcli/net/services/``,
``dcmcli/media/``, ``dcmcli/web/``) that proposes or accepts presentation
contexts has a module-level ``CONFORMANCE`` list of ``ApplicationEntity``
objects, built from the same constants its code uses (the UID registry,
``uids.py``; the status table, ``status.py``). The statement finds them by
walking those packages, so a new service (printscu's) appears in the
statement once its module declares its AE the same way. Several modules may
contribute to one AE (storescp's storage and storage commitment): entries
with the same ``name`` are merged, in module order.

Nothing here imports pydicom or typer; declaring costs a service module
nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import field

from dcmcli.records import dataclass


#: SOP classes: a tuple of UIDs, or a function of the registry that lists them (``uids.storage_sop_classes``).
SopClasses = tuple[str, ...] | Callable[[], Sequence[str]]
#: Transfer syntaxes: a tuple, a function of the registry, or OWN (each file's own transfer syntax).
Syntaxes = tuple[str, ...] | Callable[[], Sequence[str]] | str

OWN = "own"  # the transfer syntax each file is in (storescu proposes it as it is)


@dataclass(frozen=True)
class Contexts:
    """Presentation contexts of an AE: ``sop_classes`` each with ``transfer_syntaxes``.

    ``role`` is the AE's role for these SOP classes (SCU or SCP);
    ``proposed``: the AE proposes them as association requestor (else it
    accepts them); ``one_per_syntax``: one context per transfer syntax (else
    one context listing them all, in this order of preference);
    ``role_selection``: the SCU/SCP Role Selection item sent or answered
    (PS3.7 D.3.3.4), e.g. "proposes SCP role"; ``extended``: SOP Class
    Extended Negotiation; ``when``: the condition (an option), empty when always.
    """

    sop_classes: SopClasses
    transfer_syntaxes: Syntaxes
    role: str
    proposed: bool
    label: str = ""  # names a set of SOP classes given as a function ("every storage SOP class")
    one_per_syntax: bool = False
    role_selection: str = ""
    extended: str = ""
    when: str = ""
    note: str = ""

    def classes(self) -> list[str]:
        return list(self.sop_classes() if callable(self.sop_classes) else self.sop_classes)

    def syntaxes(self) -> list[str]:
        if self.transfer_syntaxes == OWN:
            return []
        ts = self.transfer_syntaxes
        return list(ts() if callable(ts) else ts)  # type: ignore[operator]


@dataclass(frozen=True)
class Statuses:
    """The DIMSE statuses of one service as this AE uses them.

    As SCP: ``codes`` are those it returns, each with the condition
    (``conditions``). As SCU: ``codes`` are those it treats specially; every
    other code is read through the status table (category and meaning) and
    ``behaviour`` says what the user sees (the exit code) per category.
    """

    service: str  # "C-STORE", "C-FIND", ... (a key of status.SERVICE, or "STORAGE-COMMITMENT")
    role: str  # SCU or SCP
    codes: tuple[int, ...] = ()
    conditions: dict[int, str] = field(default_factory=dict)
    behaviour: dict[str, str] = field(default_factory=dict)  # category -> what happens


@dataclass(frozen=True)
class ApplicationEntity:
    """One application entity: a subcommand in one role (DCMTK's tools are one AE each)."""

    name: str  # the default AE title (-aet)
    command: str  # the subcommand ("storescu", "wado retrieve")
    function: str = ""  # the functional definition (N.4.1.x): what it does and what triggers it
    contexts: tuple[Contexts, ...] = ()
    statuses: tuple[Statuses, ...] = ()
    initiation: tuple[str, ...] = ()  # association initiation policy, one sentence each
    acceptance: tuple[str, ...] = ()  # association acceptance policy
    media: tuple[str, ...] = ()  # media roles (FSC, FSU, FSR)
    web: tuple[tuple[str, str, str], ...] = ()  # DICOMweb (service, transaction, resource) as user agent


__all__ = ["ApplicationEntity", "Contexts", "Statuses", "OWN"]
