"""Presentation-context planning.

A sender proposes, for every SOP class in its input, one context per
transfer syntax found in the files (so each file can go as it is), one
uncompressed fallback context (so a file can still go, decompressed, to a
peer that refuses its syntax) and, when asked, contexts that each list
several compressed syntaxes, for peers that take only compressed data (the
peer picks one; the sender transcodes to it); those can differ per SOP class
(none for a class whose files have no pixels to compress). PS3.8 allows at most 128 contexts on one
association; larger plans are spread over several associations, keeping all
contexts of one SOP class together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import field
from typing import Generic, TypeVar

from dcmcli.net.ul import CommonExtendedNegotiation, Context
from dcmcli.records import dataclass
from dcmcli.uids import STORAGE_SERVICE_CLASS, UNCOMPRESSED_FALLBACK, VERIFICATION, related_general_sop_classes

MAX_CONTEXTS = 128

#: The conformance statement's Extended Negotiation column of the storage contexts proposed (storescu, getscu).
CEN_PROPOSED = ("with `-cen`: SOP Class Common Extended Negotiation (PS3.7 D.3.3.6) for each SOP class, service "
                f"class Storage `{STORAGE_SERVICE_CLASS}`, the related general SOP classes of PS3.4 Table B.3-3 "
                "(or `--related-general`)")

T = TypeVar("T")


@dataclass
class Batch(Generic[T]):
    """Contexts for one association and the items it will carry."""

    contexts: list[Context] = field(default_factory=list)
    items: list[T] = field(default_factory=list)


def contexts_for(sop_class: str, syntaxes: Iterable[str], *, fallback: bool = True,
                 extra: Sequence[Sequence[str]] = ()) -> list[tuple[str, list[str]]]:
    """The (abstract syntax, [transfer syntaxes]) pairs proposed for one SOP class."""
    pairs: list[tuple[str, list[str]]] = []
    for ts in dict.fromkeys(syntaxes):
        pairs.append((sop_class, [ts]))
    if fallback:
        pairs.append((sop_class, list(UNCOMPRESSED_FALLBACK)))
    for group in extra:
        if group:
            pairs.append((sop_class, list(group)))
    return pairs


def plan_batches(items: Sequence[T], key: "callable[[T], tuple[str, str]]", *,  # type: ignore[valid-type]
                 fallback: bool = True, extra: Sequence[Sequence[str]] = (),
                 extra_for: Callable[[str, Sequence[T]], Sequence[Sequence[str]]] | None = None,
                 limit: int = MAX_CONTEXTS) -> list[Batch[T]]:
    """Group ``items`` (anything with a (sop class, transfer syntax) ``key``) into batches.

    ``extra`` (groups of compressed syntaxes) is proposed for every SOP
    class; ``extra_for(sop_class, its_items)``, when given, says instead
    which groups one SOP class gets."""
    by_class: dict[str, dict[str, None]] = {}
    members: dict[str, list[T]] = {}
    for item in items:
        sop, ts = key(item)
        by_class.setdefault(sop, {})[ts] = None
        members.setdefault(sop, []).append(item)
    batches: list[Batch[T]] = []
    current: Batch[T] = Batch()
    for sop, syntaxes in by_class.items():
        groups = extra_for(sop, members[sop]) if extra_for is not None else extra
        pairs = contexts_for(sop, syntaxes, fallback=fallback, extra=groups)
        if len(pairs) > limit:  # pathological: more syntaxes than fit; keep the first ones and the fallbacks
            tail = int(fallback) + sum(1 for g in groups if g)
            pairs = pairs[: limit - tail] + pairs[len(pairs) - tail:]
        if current.contexts and len(current.contexts) + len(pairs) > limit:
            batches.append(current)
            current = Batch()
        current.contexts.extend(Context(None, a, list(t)) for a, t in pairs)
        current.items.extend(members[sop])
    if current.contexts:
        batches.append(current)
    # Keep the caller's order of items within each batch.
    order = {id(item): n for n, item in enumerate(items)}
    for b in batches:
        b.items.sort(key=lambda i: order[id(i)])
    return batches


def chunk_pairs(pairs: Sequence[tuple[str, list[str]]], limit: int = MAX_CONTEXTS) -> list[list[Context]]:
    """Split context pairs into lists of at most ``limit`` contexts."""
    return [[Context(None, a, list(t)) for a, t in pairs[i:i + limit]] for i in range(0, len(pairs), limit)]


def storage_common_extended(sop_classes: Iterable[str], related: dict[str, tuple[str, ...]] | None = None, *,
                            enabled: bool = True) -> list[CommonExtendedNegotiation]:
    """One SOP Class Common Extended Negotiation item (PS3.7 D.3.3.6) per
    storage SOP class proposed, in order: the Storage Service Class and the
    class's related general SOP classes (``related``, the user's, else PS3.4
    Table B.3-3's). A private class is offered as storage this way: a receiver
    that does not know it may accept it (PS3.4 B.4.1.2). None unless
    ``enabled`` (-cen, or --related-general)."""
    if not enabled:
        return []
    return [CommonExtendedNegotiation(sop, STORAGE_SERVICE_CLASS, list(related_general_sop_classes(sop, related)))
            for sop in dict.fromkeys(sop_classes) if sop != VERIFICATION]
