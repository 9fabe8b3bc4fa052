"""dcmcli.records.dataclass behaves as dataclasses.dataclass (repr, equality,
hashing), with the methods shared instead of compiled per class."""

from __future__ import annotations

import dataclasses
from dataclasses import field

import pytest

from dcmcli import records


def _shapes(deco):  # type: ignore[no-untyped-def]
    @deco
    class Plain:
        a: int = 0
        b: list = field(default_factory=list)
        hidden: str = field(default="x", repr=False)
        ignored: int = field(default=1, compare=False)

    @deco(frozen=True)
    class Frozen:
        a: int = 0
        b: tuple = ()
        unhashed: int = field(default=0, hash=False)

    @deco(eq=False)
    class Identity:
        a: int = 0

    @deco(frozen=True)
    class Child(Frozen):
        c: str = "c"

    return Plain, Frozen, Identity, Child


def _behaviour(deco):  # type: ignore[no-untyped-def]
    Plain, Frozen, Identity, Child = _shapes(deco)
    p = Plain(1, [2], "h", 5)
    f = Frozen(1, (2,), 3)
    c = Child(1, (2,), 3, "z")
    return [
        repr(p), repr(f), repr(c),
        p == Plain(1, [2], "other", 9), p == Plain(2), p.__eq__(object()), Plain.__hash__ is None,
        f == Frozen(1, (2,), 4), hash(f) == hash(Frozen(1, (2,), 99)), hash(f) == hash((1, (2,))),
        c == Child(1, (2,), 0, "z"), c == Frozen(1, (2,), 3), hash(c) == hash((1, (2,), "z")),
        Identity(1) == Identity(1), type(hash(Identity(1))) is int,
        {f: 1}.get(Frozen(1, (2,), 3)), {f: 1}.get(Frozen(1, (2,), 7)),
    ]


def test_same_behaviour_as_the_standard_decorator() -> None:
    assert _behaviour(records.dataclass) == _behaviour(dataclasses.dataclass)


def test_frozen_stays_frozen_and_fields_are_dataclass_fields() -> None:
    _, Frozen, _, Child = _shapes(records.dataclass)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Frozen().a = 2  # type: ignore[misc]
    assert [f.name for f in dataclasses.fields(Child)] == ["a", "b", "unhashed", "c"]
    assert dataclasses.replace(Child(), c="d").c == "d"


def test_a_class_own_methods_are_kept() -> None:
    @records.dataclass
    class Own:
        a: int = 0

        def __repr__(self) -> str:
            return "own"

        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = object.__hash__

    assert repr(Own()) == "own" and Own(1) == Own(2) and isinstance(hash(Own()), int)


def test_refuses_what_it_does_not_share() -> None:
    with pytest.raises(TypeError):
        records.dataclass(order=True)
