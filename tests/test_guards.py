"""The typed guards (bufferlint.guards): each kind under both evaluations, how they read
from code (bufferlint.conditions), and what travels to workers and the cache."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import libcst as cst
import pytest

from bufferlint import guards
from bufferlint.conditions import ConditionReader
from bufferlint.guards import (
    CONFIG,
    FALSE,
    STATE,
    TRUE,
    AllOf,
    AnyOf,
    HasAttr,
    IsMeta,
    IsNone,
    Not,
    Opaque,
    PathGuard,
    ReadsState,
)

BUFFERS = {"b"}


@pytest.mark.parametrize(
    ("guard", "expected"),
    [
        (HasAttr("b"), TRUE),  # the buffer exists, as garbage
        (HasAttr("config"), CONFIG),  # not a buffer: an ordinary attribute
        (IsNone("b"), FALSE),
        (IsNone("config"), CONFIG),
        (IsMeta("b"), FALSE),  # materialized: no longer on meta
        (ReadsState("b"), STATE),  # reads garbage
        (Opaque("self.use_rope"), CONFIG),
        (Not(HasAttr("b")), FALSE),
        (Not(IsNone("b")), TRUE),
        (Not(ReadsState("b")), STATE),
        (Not(Opaque("x")), CONFIG),
        (AllOf((HasAttr("b"), IsNone("b"))), FALSE),
        (AllOf((HasAttr("b"), Not(IsNone("b")))), TRUE),
        (AllOf((ReadsState("b"), Opaque("x"))), STATE),
        (AllOf((HasAttr("b"), Opaque("x"))), CONFIG),
        (AllOf((ReadsState("b"), IsMeta("b"))), FALSE),  # FALSE decides, state or not
        (AnyOf((HasAttr("b"), ReadsState("b"))), TRUE),
        (AnyOf((IsMeta("b"), IsNone("b"))), FALSE),
        (AnyOf((IsMeta("b"), ReadsState("b"))), STATE),
        (AnyOf((IsMeta("b"), Opaque("x"))), CONFIG),
    ],
)
def test_after_to_empty(guard: guards.Guard, expected: str) -> None:
    assert guards.after_to_empty(guard, BUFFERS) == expected


@pytest.mark.parametrize(
    ("guard", "registered", "expected"),
    [
        (HasAttr("b"), {}, FALSE),  # not registered yet
        (HasAttr("b"), {"b": "computed"}, TRUE),
        (HasAttr("config"), {}, CONFIG),
        (IsNone("b"), {}, STATE),  # an attribute that is no buffer yet: unknown
        (IsNone("b"), {"b": "none"}, TRUE),  # registered as a None placeholder
        (IsNone("b"), {"b": "computed"}, FALSE),
        (IsNone("config"), {}, CONFIG),
        (IsMeta("b"), {"b": "computed"}, STATE),
        (ReadsState("b"), {"b": "computed"}, STATE),
        (Opaque("self.use_rope"), {}, CONFIG),
        (Not(HasAttr("b")), {}, TRUE),
        (Not(IsNone("b")), {"b": "none"}, FALSE),
        (Not(IsMeta("b")), {}, STATE),
        (AllOf((Not(HasAttr("b")), Opaque("x"))), {}, CONFIG),
        (AllOf((Not(HasAttr("b")), Not(IsNone("b")))), {}, STATE),
        (AllOf((HasAttr("b"), ReadsState("b"))), {}, FALSE),
        (AllOf((Not(HasAttr("b")), Not(HasAttr("b")))), {}, TRUE),
        (AnyOf((HasAttr("b"), ReadsState("b"))), {"b": "computed"}, TRUE),
        (AnyOf((HasAttr("b"), ReadsState("b"))), {}, STATE),
        (AnyOf((HasAttr("b"), HasAttr("b"))), {}, FALSE),
        (AnyOf((HasAttr("b"), Opaque("x"))), {}, CONFIG),
    ],
)
def test_during_construction(guard: guards.Guard, registered: dict, expected: str) -> None:
    assert guards.during_construction(guard, registered, BUFFERS) == expected


def test_on_path_flips_only_certain_values() -> None:
    condition = HasAttr("b")
    body, orelse = PathGuard(condition, True, "c"), PathGuard(condition, False, "c")
    assert [guards.on_path(body, v) for v in (TRUE, FALSE, STATE, CONFIG)] == [
        TRUE,
        FALSE,
        STATE,
        CONFIG,
    ]
    assert [guards.on_path(orelse, v) for v in (TRUE, FALSE, STATE, CONFIG)] == [
        FALSE,
        TRUE,
        STATE,
        CONFIG,
    ]


@pytest.mark.parametrize(
    ("guard", "expected"),
    [
        (HasAttr("b"), True),
        (IsNone("b"), True),
        (IsMeta("b"), True),
        (ReadsState("b"), True),
        (HasAttr("c"), False),
        (Opaque("self.b"), False),  # code is not looked at
        (Not(IsMeta("b")), True),
        (AllOf((Opaque("x"), ReadsState("b"))), True),
        (AnyOf((Opaque("x"), HasAttr("c"))), False),
    ],
)
def test_reads_buffers(guard: guards.Guard, expected: bool) -> None:
    assert guards.reads_buffers(guard, frozenset(BUFFERS)) is expected


class _Counting(set):
    """A set of buffers that counts the membership tests: one per leaf evaluated."""

    tests = 0

    def __contains__(self, name: object) -> bool:
        self.tests += 1
        return super().__contains__(name)


def _nested(depth: int, leaf: guards.Guard) -> guards.Guard:
    guard = leaf
    for level in range(depth):
        guard = Not(AllOf((guard,))) if level % 2 else Not(guard)
    return guard


def test_nested_nots_evaluate_each_operand_once() -> None:
    """Evaluating `not`'s operand twice, once for each outcome, is exponential in depth."""
    guard = _nested(200, HasAttr("b"))
    buffers = _Counting({"b"})
    assert guards.after_to_empty(guard, buffers) == TRUE  # an even number of nots
    assert buffers.tests == 1
    buffers.tests = 0
    assert guards.during_construction(guard, {}, buffers) == FALSE
    assert buffers.tests == 1
    buffers.tests = 0
    assert guards.reads_buffers(guard, buffers)
    assert buffers.tests == 1


def _every_kind() -> Iterator[guards.Guard]:
    leaves = [HasAttr("b"), IsNone("b"), IsMeta("b"), ReadsState("b"), Opaque("x > 1")]
    yield from leaves
    yield Not(leaves[0])
    yield AllOf(tuple(leaves))
    yield AnyOf((Not(leaves[1]), AllOf((leaves[2],))))


@pytest.mark.parametrize("guard", list(_every_kind()))
def test_guards_pickle_and_hash(guard: guards.Guard) -> None:
    path = PathGuard(guard, False, "code")
    for value in (guard, path):
        copy = pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        assert copy == value and hash(copy) == hash(value)
    with pytest.raises(AttributeError):
        path.polarity = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ('hasattr(self, "b")', HasAttr("b")),
        ('getattr(self, "b", None)', HasAttr("b")),
        ('hasattr(other, "b")', Opaque('hasattr(other, "b")')),
        ('not hasattr(self, "b")', Not(HasAttr("b"))),
        ('not not hasattr(self, "b")', HasAttr("b")),
        ("self.b is None", IsNone("b")),
        ("self.b is not None", Not(IsNone("b"))),
        ("self.b.is_meta", IsMeta("b")),
        ('self.b.device.type == "meta"', IsMeta("b")),
        ('self.b.device != torch.device("meta")', Not(IsMeta("b"))),
        ("self.b.size(0) != n", ReadsState("b")),
        ("len(self.b) < n", ReadsState("b")),
        ("self.use_rope", Opaque("self.use_rope")),
        (
            'a and hasattr(self, "b") and self.c is None',
            AllOf((Opaque("a"), HasAttr("b"), IsNone("c"))),
        ),
        ("a or (b and c)", AnyOf((Opaque("a"), AllOf((Opaque("b"), Opaque("c")))))),
        ("(lambda: self.b.shape)()", Opaque("(lambda: self.b.shape)()")),  # not run by the test
    ],
)
def test_conditions_read_as_guards(code: str, expected: guards.Guard) -> None:
    module = cst.parse_module(f"if {code}:\n    pass\n")
    test = module.body[0].test  # type: ignore[attr-defined]
    assert ConditionReader("self", module.code_for_node).guard(test) == expected
